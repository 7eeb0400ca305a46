package apidef

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/gateway/conffile"
	"github.com/tollgate/tollgate/gateway/limit"
	"github.com/tollgate/tollgate/gateway/session"
	"github.com/tollgate/tollgate/gateway/storage"
)

// Config is tyk.conf. JSON names are Tyk's, verbatim, so an existing
// tyk.conf loads unchanged. Only the settings tollgate acts on are fields
// here; any other setting in the file is reported in one warning (see
// LoadConfig) rather than silently ignored.
type Config struct {
	// ListenAddress is the interface the gateway binds to. Empty means all
	// interfaces, as in Tyk.
	ListenAddress string `json:"listen_address"`
	// ListenPort is the gateway's HTTP port. Default 8080.
	ListenPort int `json:"listen_port"`
	// Secret guards the control API under /tyk/ (X-Tyk-Authorization).
	Secret string `json:"secret"`
	// NodeSecret signs the notifications gateways send each other over
	// Redis pub/sub (GET /tyk/reload/group, key changes); every gateway of a
	// deployment needs the same one. Default: secret.
	NodeSecret string `json:"node_secret"`
	// AppPath is the folder of API definition files (*.json). Relative paths
	// are resolved against the folder of tyk.conf. Default "apps".
	AppPath string `json:"app_path"`
	// TemplatePath is the folder of webhook templates, resolved like AppPath.
	// Default "templates".
	TemplatePath string `json:"template_path"`
	// MiddlewarePath is the folder of JS middleware, resolved like AppPath.
	// Default "middleware".
	MiddlewarePath string `json:"middleware_path"`
	// Storage is the Redis connection. With no host, hosts or addrs the
	// gateway starts an embedded simulated Redis Cluster (in memory, lost on
	// exit) and says so in its log.
	Storage storage.Config `json:"storage"`
	// ProxyDefaultTimeout is how long, in seconds, the gateway waits for an
	// upstream's response headers before answering 504. Default 30.
	ProxyDefaultTimeout float64 `json:"proxy_default_timeout"`
	// HashKeys stores keys in Redis under their hash, byte for byte as Tyk
	// names them (apikey-<hash>), so the store does not hold usable keys;
	// logs never show raw keys either way. A key's hash function is the one
	// its token names (see HashKeyFunction); other keys get Tyk's murmur32,
	// whose collisions let a guessed key through: a load warning says so.
	HashKeys bool `json:"hash_keys"`
	// HashKeyFunction is the function new keys name in their token:
	// "murmur32", "murmur64", "murmur128" or "sha256". Default "": keys are
	// org id + random id and hash with murmur32, as in Tyk.
	HashKeyFunction string `json:"hash_key_function"`
	// HashKeyFunctionFallback lists the functions hash_key_function was
	// before, so custom keys created under them are still found.
	HashKeyFunctionFallback []string `json:"hash_key_function_fallback"`
	// DisableKeyActionsByUsername finds a key only as it is sent, never as
	// the token a custom key name was stored under.
	DisableKeyActionsByUsername bool `json:"disable_key_actions_by_username"`
	// EnableHashedKeysListing allows GET /tyk/keys with hash_keys on.
	EnableHashedKeysListing bool `json:"enable_hashed_keys_listing"`
	// MinTokenLength is the shortest key accepted. Default 3, as in Tyk.
	MinTokenLength int `json:"min_token_length"`
	// TrustedProxies (tollgate's own) are the addresses, or CIDR ranges,
	// whose X-Real-IP and X-Forwarded-For headers are believed. Default
	// none: the connection's address is the client, and those headers are
	// removed before any rule, middleware or upstream sees them.
	TrustedProxies []string `json:"trusted_proxies"`
	// IgnoreCanonicalMIMEHeaderKey sends the headers JS middleware sets
	// (SetHeaders) and a webhook's header_map with their names as written
	// ("X-CertificateOuid"), instead of canonical ("X-Certificateouid"),
	// for upstreams that compare header names case-sensitively.
	IgnoreCanonicalMIMEHeaderKey bool `json:"ignore_canonical_mime_header_key"`
	// AllowMasterKeys lets a key with no access_rights call every API.
	// Default false: such a key calls none.
	AllowMasterKeys bool `json:"allow_master_keys"`
	// RateLimitResponseHeaders is what X-RateLimit-Limit, -Remaining and
	// -Reset describe. "rate_limits" (or absent: tollgate's default) the
	// key's rate limit, on every answer the rate limit saw, 429 included,
	// so a refused client learns when to retry; "quotas" (Tyk's default)
	// the key's quota, on answers that passed it and not on the 403 Quota
	// exceeded, as Tyk sends them.
	RateLimitResponseHeaders string `json:"rate_limit_response_headers"`
	// EnableRedisRollingLimiter limits keys with Tyk's sliding log in Redis,
	// exact in any window but costing memory and time in proportion to the
	// rate. Default false: a GCRA in Redis, one key and one script call per
	// request whatever the rate (see the README's rate-limit section).
	EnableRedisRollingLimiter bool `json:"enable_redis_rolling_limiter"`
	// EnableFixedWindowRateLimiter limits keys with a counter per window
	// of per seconds. The rolling limiter, when on too, wins.
	EnableFixedWindowRateLimiter bool `json:"enable_fixed_window_rate_limiter"`
	// EnableNonTransactionalRateLimiter updates the rolling limiter's
	// window with a plain pipeline instead of MULTI/EXEC: fewer round
	// trips, and two gateways may each let one extra request through at the
	// boundary. It does not choose the rolling limiter by itself.
	EnableNonTransactionalRateLimiter bool `json:"enable_non_transactional_rate_limiter"`
	// EnableSentinelRateLimiter is the rolling limiter (it turns it on) that
	// blocks a key for the rest of its window once it goes over the limit,
	// so refused requests cost one Redis read.
	EnableSentinelRateLimiter bool `json:"enable_sentinel_rate_limiter"`
	// LimitsCreditPercent (tollgate's own) is how much of a busy key's rate
	// limit and quota, as a percentage of each, a gateway may take from
	// the store in one round trip and hand out itself (GCRA only; see
	// limit.Credit and the README's rate-limit section). Absent: 1. 0: every
	// request asks the store. At most 10.
	LimitsCreditPercent *float64 `json:"limits_credit_percent"`
	// EnableJSVM allows APIs with JS middleware; an API that has some is
	// refused at load while it is false. Default false, as in Tyk.
	EnableJSVM bool `json:"enable_jsvm"`
	// TykJSPath is a JS file loaded into every API's JS VM after Tyk's core
	// and before the API's middleware: functions and values shared by all
	// middleware. Relative to tyk.conf's folder.
	TykJSPath string `json:"tyk_js_path"`
	// JSVMTimeout bounds each JS middleware run, in seconds. Default 5. A
	// run that takes longer is interrupted and the request gets 500.
	JSVMTimeout float64 `json:"jsvm_timeout"`
	// JSVMMemoryLimit (tollgate's own) is the Go heap, in MB (MiB), past
	// which the JS runs in flight are stopped: their requests get 500
	// (js_memory_limit), their VMs are discarded and the garbage is
	// collected; scripts loading at (re)load fail that API's load. otto
	// has no memory limit of its own, so one script growing a string
	// could otherwise take the process down. Default 0: half of
	// GOMEMLIMIT when it is set, else 512. The heap is the process's, so
	// the limit must leave room for what the gateway itself holds (see
	// jsvm.MemoryBudget).
	JSVMMemoryLimit int `json:"jsvm_memory_limit"`
	// MaxAPIDefinitionSize (tollgate's own) is the largest API definition
	// file read from app_path, in bytes. Default 4 MiB. A larger file is a
	// load error naming it; GET /tyk/apis, which returns the definitions
	// as read, is bounded by it too.
	MaxAPIDefinitionSize int64 `json:"max_api_definition_size"`
	// MaxScriptSize (tollgate's own) is the largest JS middleware file or
	// webhook template read, in bytes. Default 4 MiB. A larger file fails
	// the load of the API (or tyk.conf's event handler) naming it.
	MaxScriptSize int64 `json:"max_script_size"`
	// EnableAnalytics records every request (time, API, method, path,
	// status, latency, hashed key, client IP) to the Redis list
	// analytics-tyk-system-analytics, in batches, off the request path.
	EnableAnalytics bool `json:"enable_analytics"`
	// AnalyticsConfig tunes the recording.
	AnalyticsConfig AnalyticsConfig `json:"analytics_config"`
	// EventHandlers are handlers for events of every API, next to each
	// API's own.
	EventHandlers EventHandlerSection `json:"event_handlers"`
	// LocalSessionCache keeps sessions in memory for a few seconds.
	LocalSessionCache LocalSessionCache `json:"local_session_cache"`
	// HealthCheckEndpointName is the path of the liveness endpoint.
	// Default "hello" (served at /hello).
	HealthCheckEndpointName string `json:"health_check_endpoint_name"`
	// EnableHTTPProfiler serves Go's profiler (/debug/pprof/) and a memory
	// and goroutine summary (/debug/summary) on the gateway's port, to
	// callers with the control API secret in X-Tyk-Authorization (Tyk
	// serves them to anyone). Default false: those paths are routed like
	// any other.
	EnableHTTPProfiler bool `json:"enable_http_profiler"`
	// HTTPServerOptions are Tyk's http_server_options; tollgate acts on
	// the path-matching switches.
	HTTPServerOptions HTTPServerOptions `json:"http_server_options"`
	// IgnoreEndpointCase matches the paths of every API's extended_paths
	// and paths case-insensitively.
	IgnoreEndpointCase bool `json:"ignore_endpoint_case"`
	// DebugListen is tollgate's own setting: a loopback address (e.g.
	// "127.0.0.1:6060"; port 0 picks one) where the same debug endpoints
	// are served without the secret. Any other address is refused at
	// load. Default "": no debug listener.
	DebugListen string `json:"debug_listen"`

	// dir is the folder tyk.conf was read from; relative paths resolve
	// against it. Empty means the working directory.
	dir string
}

// HTTPServerOptions is tyk.conf's http_server_options.
type HTTPServerOptions struct {
	// EnablePathPrefixMatching anchors the paths of extended_paths and of
	// a key's allowed_urls that start with "/" at the start of the path
	// ("/users" matches "/users/7", not "/x/users"), tried both below the
	// listen path and with it. Default false: Tyk's legacy match anywhere
	// in the path.
	EnablePathPrefixMatching bool `json:"enable_path_prefix_matching"`
	// EnablePathSuffixMatching anchors them at the end of the path too.
	EnablePathSuffixMatching bool `json:"enable_path_suffix_matching"`
	// ReadTimeout, in seconds, bounds reading a whole request, body
	// included; WriteTimeout bounds writing its response. 0 means 120, as
	// in Tyk. Keep write_timeout above proxy_default_timeout.
	ReadTimeout  int `json:"read_timeout"`
	WriteTimeout int `json:"write_timeout"`
}

// Timeouts are read_timeout and write_timeout with Tyk's defaults.
func (o HTTPServerOptions) Timeouts() (read, write time.Duration) {
	read, write = 120*time.Second, 120*time.Second
	if o.ReadTimeout > 0 {
		read = time.Duration(o.ReadTimeout) * time.Second
	}
	if o.WriteTimeout > 0 {
		write = time.Duration(o.WriteTimeout) * time.Second
	}
	return read, write
}

// LocalSessionCache is tyk.conf's local_session_cache.
type LocalSessionCache struct {
	// DisableCachedSessionState reads every session from Redis.
	DisableCachedSessionState bool `json:"disable_cached_session_state"`
	// CachedSessionTimeout is how long, in seconds, a session is served
	// from memory. Default 10. A key changed through this gateway's control
	// API is dropped from its cache at once; other gateways see the change
	// within this time.
	CachedSessionTimeout int `json:"cached_session_timeout"`
	// CachedSessionEviction is accepted for compatibility; the cache evicts
	// lazily and is bounded in size instead.
	CachedSessionEviction int `json:"cached_session_eviction"`
}

// TTL is how long a session is served from memory; 0 turns the cache off.
func (l LocalSessionCache) TTL() time.Duration {
	if l.DisableCachedSessionState {
		return 0
	}
	if l.CachedSessionTimeout <= 0 {
		return 10 * time.Second
	}
	return time.Duration(l.CachedSessionTimeout) * time.Second
}

const (
	defaultListenPort   = 8080
	defaultProxyTimeout = 30 * time.Second
)

// ListenAddr is the host:port the gateway listens on.
func (c *Config) ListenAddr() string {
	port := c.ListenPort
	if port == 0 {
		port = defaultListenPort
	}
	return fmt.Sprintf("%s:%d", c.ListenAddress, port)
}

// ResolvePath resolves a path from tyk.conf: absolute paths stay, relative
// ones are taken from the folder tyk.conf is in.
func (c *Config) ResolvePath(p string) string {
	if p == "" || filepath.IsAbs(p) || c.dir == "" {
		return p
	}
	return filepath.Join(c.dir, p)
}

// AppDir is the resolved app_path.
func (c *Config) AppDir() string {
	p := c.AppPath
	if p == "" {
		p = "apps"
	}
	return c.ResolvePath(p)
}

// ProxyTimeout is proxy_default_timeout with its default.
func (c *Config) ProxyTimeout() time.Duration {
	if c.ProxyDefaultTimeout <= 0 {
		return defaultProxyTimeout
	}
	return time.Duration(c.ProxyDefaultTimeout * float64(time.Second))
}

// TemplateDir is the resolved template_path.
func (c *Config) TemplateDir() string {
	p := c.TemplatePath
	if p == "" {
		p = "templates"
	}
	return c.ResolvePath(p)
}

// NotificationKey is what notifications between gateways are signed
// with: node_secret, or secret when it is empty.
func (c *Config) NotificationKey() string {
	if c.NodeSecret != "" {
		return c.NodeSecret
	}
	return c.Secret
}

// SetBaseDir makes relative paths in the configuration resolve against
// dir, as LoadConfig does with the folder of tyk.conf.
func (c *Config) SetBaseDir(dir string) { c.dir = dir }

// JSTimeout is jsvm_timeout with its default.
func (c *Config) JSTimeout() time.Duration {
	if c.JSVMTimeout <= 0 {
		return 5 * time.Second
	}
	return time.Duration(c.JSVMTimeout * float64(time.Second))
}

// JSMemoryLimit is jsvm_memory_limit in bytes; 0 when it is not set, for
// jsvm.NewMemoryBudget's default.
func (c *Config) JSMemoryLimit() uint64 {
	if c.JSVMMemoryLimit <= 0 {
		return 0
	}
	return uint64(c.JSVMMemoryLimit) << 20
}

// APIDefinitionSizeLimit is max_api_definition_size with its default.
func (c *Config) APIDefinitionSizeLimit() int64 {
	if c.MaxAPIDefinitionSize <= 0 {
		return conffile.DefaultMaxSize
	}
	return c.MaxAPIDefinitionSize
}

// ScriptSizeLimit is max_script_size with its default.
func (c *Config) ScriptSizeLimit() int64 {
	if c.MaxScriptSize <= 0 {
		return conffile.DefaultMaxSize
	}
	return c.MaxScriptSize
}

// HealthPath is the path of the health endpoint, e.g. "/hello".
func (c *Config) HealthPath() string {
	name := strings.Trim(c.HealthCheckEndpointName, "/")
	if name == "" {
		name = "hello"
	}
	return "/" + name
}

// Warnings about a loaded configuration: settings present in the file that
// tollgate does not act on.
type Warnings []string

// LoadConfig reads tyk.conf. A file that is not valid JSON, has a value of
// the wrong type, or names a key twice is an error naming the file and the
// line or field. Settings tollgate does not implement come back as a
// warning, listed together, so nobody believes they took effect. Like
// every configuration file, tyk.conf must be a regular file of at most
// conffile.DefaultMaxSize bytes.
func LoadConfig(path string) (*Config, Warnings, error) {
	data, err := conffile.Read(path, conffile.DefaultMaxSize)
	if err != nil {
		return nil, nil, fmt.Errorf("reading config: %w", err)
	}
	cfg, warnings, err := ParseConfig(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	for i, w := range warnings {
		warnings[i] = path + ": " + w
	}
	abs, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, nil, fmt.Errorf("resolving the folder of %s: %w", path, err)
	}
	cfg.dir = abs
	return cfg, warnings, nil
}

// ParseConfig parses tyk.conf's JSON; see LoadConfig.
func ParseConfig(data []byte) (*Config, Warnings, error) {
	var cfg Config
	rep, err := DecodeStrict(data, &cfg)
	if err != nil {
		var dup *DuplicateKeyError
		if errors.As(err, &dup) && dup.Path == "storage.hosts" {
			return nil, nil, fmt.Errorf("storage.hosts: host %q is listed more than once; a JSON object keeps only one port per host, so nodes would be lost: list every node as \"host:port\" in storage.addrs instead", dup.Key)
		}
		return nil, nil, err
	}
	if err := cfg.Storage.Validate(); err != nil {
		return nil, nil, fmt.Errorf("storage.%w", err)
	}
	if err := ValidateDebugListen(cfg.DebugListen); err != nil {
		return nil, nil, err
	}
	if err := cfg.validateRanges(); err != nil {
		return nil, nil, err
	}
	switch cfg.RateLimitResponseHeaders {
	case "", RateLimitHeadersFromRateLimits, RateLimitHeadersFromQuotas:
	default:
		return nil, nil, fmt.Errorf("rate_limit_response_headers: %q is neither %q nor %q", cfg.RateLimitResponseHeaders, RateLimitHeadersFromRateLimits, RateLimitHeadersFromQuotas)
	}
	if cfg.ListenPort < 0 || cfg.ListenPort > 65535 {
		return nil, nil, fmt.Errorf("listen_port: %d is not a TCP port (1 to 65535; 0 or absent means 8080)", cfg.ListenPort)
	}
	if err := cfg.SessionOptions().Validate(); err != nil {
		return nil, nil, err
	}
	switch {
	case cfg.JSVMMemoryLimit < 0:
		return nil, nil, fmt.Errorf("jsvm_memory_limit: %d is negative; give the heap size in MB past which JS runs are stopped, or 0 for the default", cfg.JSVMMemoryLimit)
	case cfg.MaxAPIDefinitionSize < 0:
		return nil, nil, fmt.Errorf("max_api_definition_size: %d is negative; give a size in bytes, or 0 for the default", cfg.MaxAPIDefinitionSize)
	case cfg.MaxScriptSize < 0:
		return nil, nil, fmt.Errorf("max_script_size: %d is negative; give a size in bytes, or 0 for the default", cfg.MaxScriptSize)
	}
	if v := cfg.LimitsCreditPercent; v != nil && !(*v >= 0 && *v <= limit.MaxCredit) {
		return nil, nil, fmt.Errorf("limits_credit_percent: %v is not between 0 and %v; give the percentage of a busy key's rate limit and quota a gateway may take at once, or 0 to ask the store for every request", *v, limit.MaxCredit)
	}
	if cfg.MinTokenLength < 0 {
		return nil, nil, fmt.Errorf("min_token_length: %d is negative", cfg.MinTokenLength)
	}
	if _, err := ParseTrustedProxies(cfg.TrustedProxies); err != nil {
		return nil, nil, err
	}
	var warnings Warnings
	if len(rep.Unknown) > 0 {
		warnings = append(warnings, "settings not implemented by tollgate, ignored: "+strings.Join(rep.Unknown, ", "))
	}
	if cfg.HashKeys && (cfg.HashKeyFunction == "" || cfg.HashKeyFunction == session.HashMurmur32) {
		warnings = append(warnings, "hash_keys: new keys are stored under a 32-bit murmur3 hash (hash_key_function is "+strconv.Quote(cfg.HashKeyFunction)+"); with many keys stored, random guesses soon find one whose hash matches, and Tyk's murmur32 ignores a key's last 1 to 3 bytes: set hash_key_function to \"sha256\" (or \"murmur128\"), and list the old function in hash_key_function_fallback so existing custom keys are still found")
	}
	return &cfg, warnings, nil
}

// LimitsCredit is limits_credit_percent, limit.DefaultCredit when absent.
func (c *Config) LimitsCredit() float64 {
	if c.LimitsCreditPercent == nil {
		return limit.DefaultCredit
	}
	return *c.LimitsCreditPercent
}

// SessionOptions are the settings that decide where a key's session is
// stored and looked for.
func (c *Config) SessionOptions() session.StoreOptions {
	return session.StoreOptions{
		HashKeys:                    c.HashKeys,
		HashFunction:                c.HashKeyFunction,
		HashFunctionFallback:        c.HashKeyFunctionFallback,
		DisableKeyActionsByUsername: c.DisableKeyActionsByUsername,
		MinTokenLength:              c.MinTokenLength,
	}
}

// ParseTrustedProxies reads trusted_proxies: IP addresses or CIDR ranges.
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for i, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted_proxies[%d]: %q is neither an IP address nor a CIDR range (e.g. \"10.0.0.0/8\")", i, s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// ValidateDebugListen accepts an empty address (no debug listener) or a
// host:port whose host is a loopback address: the listener has no
// authentication, so it must not be reachable from another machine.
func ValidateDebugListen(addr string) error {
	if addr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("debug_listen: %q is not host:port (e.g. \"127.0.0.1:6060\"): %w", addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("debug_listen: %q: port %q is not a number from 0 to 65535", addr, port)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("debug_listen: %q is not a loopback address; the debug listener has no authentication, so it only listens on 127.0.0.0/8, ::1 or localhost (e.g. \"127.0.0.1:6060\")", addr)
}

// The values of rate_limit_response_headers.
const (
	RateLimitHeadersFromRateLimits = "rate_limits"
	RateLimitHeadersFromQuotas     = "quotas"
)

// QuotaHeaders tells whether X-RateLimit-* describe the quota
// (rate_limit_response_headers "quotas") rather than the rate limit.
func (c *Config) QuotaHeaders() bool {
	return c.RateLimitResponseHeaders == RateLimitHeadersFromQuotas
}

// seconds checks a duration setting given in seconds: 0 (the default) or
// from min to max, never NaN; it names field.
func seconds(field string, v, min, max float64) error {
	if v == 0 {
		return nil
	}
	if math.IsNaN(v) || v < min || v > max {
		return fmt.Errorf("%s: %v is not a number of seconds from %g to %g (0 for the default)", field, v, min, max)
	}
	return nil
}

// validateRanges refuses numbers tyk.conf cannot mean: negative sizes,
// durations that would overflow or that are too short to be meant.
func (c *Config) validateRanges() error {
	checks := []error{
		seconds("proxy_default_timeout", c.ProxyDefaultTimeout, 0.001, 24*3600),
		seconds("jsvm_timeout", c.JSVMTimeout, 0.001, 3600),
		seconds("analytics_config.flush_interval", c.AnalyticsConfig.FlushInterval, 0.01, 3600),
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	for field, v := range map[string]int{"http_server_options.read_timeout": c.HTTPServerOptions.ReadTimeout, "http_server_options.write_timeout": c.HTTPServerOptions.WriteTimeout} {
		if v < 0 || v > 24*3600 {
			return fmt.Errorf("%s: %d is not a number of seconds from 0 to 86400 (0 for 120)", field, v)
		}
	}
	if n := c.AnalyticsConfig.RecordsBufferSize; n < 0 || n > 10_000_000 {
		return fmt.Errorf("analytics_config.records_buffer_size: %d is not from 0 to 10000000 (0 for the default)", n)
	}
	if t := c.LocalSessionCache.CachedSessionTimeout; t < 0 || t > 24*3600 {
		return fmt.Errorf("local_session_cache.cached_session_timeout: %d is not a number of seconds from 0 to 86400", t)
	}
	return nil
}
