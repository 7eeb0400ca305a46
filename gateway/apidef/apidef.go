// Package apidef holds tollgate's configuration types: tyk.conf (Config) and
// API definitions (APIDefinition), with Tyk's JSON names, their strict
// decoding (line and field in every error, duplicate keys refused), load
// warnings for settings tollgate does not act on, and load errors that name
// the file.
//
//	cfg, warnings, err := apidef.LoadConfig("tyk.conf")
//	defs, warnings, err := apidef.LoadAPIDefinitions(cfg.AppDir(), cfg.APIDefinitionSizeLimit())
package apidef

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tollgate/tollgate/gateway/conffile"
)

// APIDefinition is one Tyk API definition file. JSON names are Tyk's. Only
// what tollgate acts on is a field; any other field in a file is reported
// in one load warning for that file.
type APIDefinition struct {
	// APIID identifies the API; required and unique across app_path.
	APIID string `json:"api_id"`
	// Name is for people and logs.
	Name string `json:"name"`
	// OrgID is the owning organisation, passed to middleware.
	OrgID string `json:"org_id"`
	// Active must be true for the API to be served. A definition without
	// it is inactive, as in Tyk.
	Active bool `json:"active"`
	// UseKeylessAccess serves the API without any key. Otherwise every
	// request needs a key (see Auth) whose session grants this API.
	UseKeylessAccess bool `json:"use_keyless"`
	// Auth says where the key is read from.
	Auth AuthConfig `json:"auth"`
	// Definition says where the version name is read from.
	Definition VersionDefinition `json:"definition"`
	// Proxy says where the API listens and where it forwards to.
	Proxy ProxyConfig `json:"proxy"`
	// VersionData holds the API's versions, their paths and headers.
	VersionData VersionData `json:"version_data"`
	// EnableNonTransactionalRateLimiter updates the rate-limit window in a
	// plain pipeline instead of MULTI/EXEC. Tyk reads it from tyk.conf only;
	// tollgate also honours it here, where the seed API sets it.
	EnableNonTransactionalRateLimiter bool `json:"enable_non_transactional_rate_limiter"`
	// CustomMiddleware lists the API's JS middleware by hook.
	CustomMiddleware MiddlewareSection `json:"custom_middleware"`
	// CustomPluginAuthEnabled authenticates the API's requests with the
	// custom_middleware.auth_check JS middleware instead of the auth
	// token. EnableCoProcessAuth is its older name (Tyk reads either).
	CustomPluginAuthEnabled bool `json:"custom_plugin_auth_enabled"`
	EnableCoProcessAuth     bool `json:"enable_coprocess_auth"`
	// UseStandardAuth asks for the auth token as well as custom auth;
	// tollgate does not combine the two (see CustomAuth).
	UseStandardAuth bool `json:"use_standard_auth"`
	// ConfigData is passed to JS middleware as config.config_data.
	ConfigData map[string]any `json:"config_data"`
	// ConfigDataDisabled hides config_data from JS middleware, as in Tyk.
	ConfigDataDisabled bool `json:"config_data_disabled"`
	// CacheOptions turns the response cache on (see CacheOptions).
	CacheOptions CacheOptions `json:"cache_options"`
	// CORS answers browsers' preflights and adds CORS headers to every
	// response of the API (see CORSConfig).
	CORS CORSConfig `json:"CORS"`
	// SessionLifetime, in seconds, is how long Redis keeps the session of
	// a key of this API when the session sets no session_lifetime of its
	// own; a key of several APIs gets the longest. 0: no TTL.
	SessionLifetime int64 `json:"session_lifetime"`
	// SessionLifetimeRespectsKeyExpiration keeps a session at least until
	// its key expires, when that is later than the lifetime.
	SessionLifetimeRespectsKeyExpiration bool `json:"session_lifetime_respects_key_expiration"`
	// DoNotTrack leaves the API's requests out of analytics.
	DoNotTrack bool `json:"do_not_track"`
	// EventHandlers are what the API does when an event fires, e.g. a
	// webhook on KeyExpired.
	EventHandlers EventHandlerSection `json:"event_handlers"`

	// file is where the definition was read from; "" when built in code.
	file string
	// raw is the file's JSON, returned as is by GET /tyk/apis.
	raw []byte
}

// AuthConfig is the definition's auth section: where the key comes from.
type AuthConfig struct {
	// AuthHeaderName is the header holding the key. Default
	// "Authorization"; a "Bearer " prefix is removed.
	AuthHeaderName string `json:"auth_header_name"`
	// UseParam also reads the key from the query parameter ParamName
	// (default: the header name); it wins over the header when present.
	UseParam  bool   `json:"use_param"`
	ParamName string `json:"param_name"`
	// UseCookie also reads the key from the cookie CookieName (default:
	// the header name); it wins over header and parameter when present.
	UseCookie  bool   `json:"use_cookie"`
	CookieName string `json:"cookie_name"`
}

// CustomAuth tells whether the API authenticates with its JS auth_check
// (custom_plugin_auth_enabled or enable_coprocess_auth, as Tyk's
// api_loader decides) rather than with the auth token.
func (d *APIDefinition) CustomAuth() bool {
	return d.CustomPluginAuthEnabled || d.EnableCoProcessAuth
}

// EventHandlerSection is event_handlers, in an API definition or tyk.conf.
type EventHandlerSection struct {
	// Events maps an event name (KeyExpired) to its handlers.
	Events map[string][]EventHandlerEntry `json:"events"`
}

// EventHandlerEntry is one handler of an event.
type EventHandlerEntry struct {
	// HandlerName is "eh_web_hook_handler" (a webhook) or "eh_log_handler".
	HandlerName string `json:"handler_name"`
	// HandlerMeta configures the handler; for a webhook see
	// event.WebhookConfig.
	HandlerMeta json.RawMessage `json:"handler_meta"`
}

// MiddlewareSection is the definition's custom_middleware section.
type MiddlewareSection struct {
	// Pre runs before authentication, with an empty session.
	Pre []MiddlewareDefinition `json:"pre"`
	// PostKeyAuth runs right after authentication.
	PostKeyAuth []MiddlewareDefinition `json:"post_key_auth"`
	// Post runs after rate limit and quota, just before the upstream.
	Post []MiddlewareDefinition `json:"post"`
	// AuthCheck authenticates requests in place of the auth token when
	// the API sets custom_plugin_auth_enabled (or enable_coprocess_auth):
	// it refuses a request, or returns the session the request runs with.
	AuthCheck MiddlewareDefinition `json:"auth_check"`
	// Driver must be "otto" (or empty): the JS engine.
	Driver string `json:"driver"`
}

// MiddlewareDefinition is one JS middleware.
type MiddlewareDefinition struct {
	// Name is the global variable holding the middleware object
	// (var name = new TykJS.TykMiddleware.NewMiddleware({})).
	Name string `json:"name"`
	// Path is the JS file; relative paths resolve against tyk.conf's folder.
	Path string `json:"path"`
	// RequireSession passes the key's session to the middleware and writes
	// the SessionMeta it returns back to the session (once per request).
	RequireSession bool `json:"require_session"`
	// RawBodyOnly is accepted for compatibility.
	RawBodyOnly bool `json:"raw_body_only"`
	// Disabled middleware is not loaded.
	Disabled bool `json:"disabled"`
}

// VersionDefinition is the definition's definition section.
type VersionDefinition struct {
	// Location is "header", "url-param" or "url" (the first path segment
	// below the listen path). Default "header".
	Location string `json:"location"`
	// Key is the header or parameter name, e.g. "x-api-version".
	Key string `json:"key"`
	// StripVersioningData removes the version from the request before the
	// path lists and the upstream see it: the header, the query parameter,
	// or, with "url", the version's path segment and its slash ("/v1/users"
	// becomes "/users"; "/v1" alone is left, as in Tyk).
	StripVersioningData bool `json:"strip_versioning_data"`
	// StripPath is Tyk's older name for StripVersioningData with "url".
	StripPath bool `json:"strip_path"`
}

// ProxyConfig is the definition's proxy section.
type ProxyConfig struct {
	// ListenPath is the path prefix the API is served under, e.g.
	// "/security/". The longest listen_path matching a request wins; a
	// prefix matches only at a "/" boundary ("/a" serves "/a" and "/a/x",
	// not "/ab").
	ListenPath string `json:"listen_path"`
	// TargetURL is the upstream base URL. Required unless every version has
	// an override_target.
	TargetURL string `json:"target_url"`
	// StripListenPath removes the listen path before forwarding:
	// "/security/users" reaches the upstream as "/users".
	StripListenPath bool `json:"strip_listen_path"`
	// PreserveHostHeader forwards the client's Host instead of the
	// upstream's.
	PreserveHostHeader bool `json:"preserve_host_header"`
	// DisableStripSlash keeps target_url's trailing slash for a request
	// to the listen path itself; by default, as in Tyk, the target's path
	// and the request's are joined with exactly one slash between them and
	// none added at the end ("/base/" + "/" reaches "/base").
	DisableStripSlash bool `json:"disable_strip_slash"`
}

// VersionData is the definition's version_data section.
type VersionData struct {
	// NotVersioned serves one version ("Default", or the only one listed)
	// whatever the request says.
	NotVersioned bool `json:"not_versioned"`
	// DefaultVersion is used when a request names no version.
	DefaultVersion string `json:"default_version"`
	// Versions by name.
	Versions map[string]VersionInfo `json:"versions"`
}

// VersionInfo is one entry of version_data.versions.
type VersionInfo struct {
	// Name of the version.
	Name string `json:"name"`
	// Expires is when the version stops being served, "2006-01-02 15:04"
	// (UTC). Empty or "-1" means never.
	Expires string `json:"expires"`
	// OverrideTarget sends this version's requests to another upstream.
	OverrideTarget string `json:"override_target"`
	// UseExtendedPaths turns ExtendedPaths on; without it the legacy
	// Paths lists apply instead, as in Tyk.
	UseExtendedPaths bool `json:"use_extended_paths"`
	// ExtendedPaths lists paths that are ignored (no key needed),
	// black-listed or white-listed.
	ExtendedPaths ExtendedPaths `json:"extended_paths"`
	// Paths are Tyk's legacy lists, applied when UseExtendedPaths is false.
	Paths LegacyPaths `json:"paths"`
	// IgnoreEndpointCase matches every path of Paths and ExtendedPaths
	// case-insensitively.
	IgnoreEndpointCase bool `json:"ignore_endpoint_case"`
	// GlobalHeaders are set on every request forwarded upstream, replacing
	// any value the client sent.
	GlobalHeaders map[string]string `json:"global_headers"`
	// GlobalHeadersRemove are removed from every forwarded request.
	GlobalHeadersRemove []string `json:"global_headers_remove"`
	// GlobalHeadersDisabled turns global_headers and
	// global_headers_remove off.
	GlobalHeadersDisabled bool `json:"global_headers_disabled"`
}

// ExtendedPaths is a version's extended_paths. A path is a regular
// expression matched, as in Tyk, anywhere in the request path below the
// listen path or in the full request path ("test" matches "/test" and
// "/latest"; "/api/users" matches "/users" under listen path "/api/").
// "{name}" stands for one path segment, "/*" for the rest of the path.
// tyk.conf's http_server_options enable_path_prefix_matching and
// enable_path_suffix_matching anchor paths at the start and the end.
//
// The entries of ignored, then black_list, then white_list are tried in
// that order; the first whose path and method match decides.
type ExtendedPaths struct {
	// Ignored paths are served without a key: auth, granular access,
	// rate limit and quota are skipped.
	Ignored []EndpointMeta `json:"ignored"`
	// BlackList paths are refused with 403 "Requested endpoint is
	// forbidden".
	BlackList []EndpointMeta `json:"black_list"`
	// WhiteList paths are the only ones served once any entry is enabled;
	// everything else is refused with 403 "Requested endpoint is
	// forbidden".
	WhiteList []EndpointMeta `json:"white_list"`
	// Cache paths have their GET, HEAD and OPTIONS responses cached when
	// cache_options.enable_cache is on.
	Cache []string `json:"cache"`
}

// LegacyPaths is a version's "paths": Tyk's first form of the lists, plain
// paths that apply to every method.
type LegacyPaths struct {
	Ignored   []string `json:"ignored"`
	WhiteList []string `json:"white_list"`
	BlackList []string `json:"black_list"`
}

// EndpointMeta is one path entry of extended_paths.
type EndpointMeta struct {
	// Disabled entries are left out, as if they were not listed.
	Disabled bool `json:"disabled"`
	// Path is the pattern (see ExtendedPaths).
	Path string `json:"path"`
	// Method is the one method the entry applies to when it has no
	// method_actions; with neither, it applies to every method. Methods
	// are matched case-sensitively, as in Tyk.
	Method string `json:"method"`
	// IgnoreCase matches Path case-insensitively.
	IgnoreCase bool `json:"ignore_case"`
	// MethodActions, when present (even empty), lists the methods the
	// entry applies to and what to do for each; Method is then not read.
	MethodActions map[string]EndpointMethodMeta `json:"method_actions"`
}

// The actions of EndpointMethodMeta.
const (
	// ActionNoAction applies the list: ignore, refuse or allow.
	ActionNoAction = "no_action"
	// ActionReply answers with Code, Data and Headers instead of the
	// upstream, whatever the list.
	ActionReply = "reply"
)

// EndpointMethodMeta is what to do for one method of a path: Action is
// ActionNoAction or ActionReply; any other action refuses the request
// with 403, as Tyk does.
type EndpointMethodMeta struct {
	Action  string            `json:"action"`
	Code    int               `json:"code"`
	Data    string            `json:"data"`
	Headers map[string]string `json:"headers"`
}

// ParseAPIDefinition parses one definition and checks it. Warnings list the
// fields tollgate does not implement.
func ParseAPIDefinition(data []byte) (*APIDefinition, Warnings, error) {
	var def APIDefinition
	rep, err := DecodeStrict(data, &def)
	if err != nil {
		return nil, nil, err
	}
	if err := def.validate(); err != nil {
		return nil, nil, err
	}
	var warnings Warnings
	if len(rep.Unknown) > 0 {
		warnings = append(warnings, "fields not implemented by tollgate, ignored: "+strings.Join(rep.Unknown, ", "))
	}
	def.raw = data
	return &def, warnings, nil
}

// RawJSON is the definition as it was read.
func (d *APIDefinition) RawJSON() []byte { return d.raw }

// File is the file the definition was read from; "" when built in code.
func (d *APIDefinition) File() string { return d.file }

// ListenPath is proxy.listen_path without its trailing slash: the route.
func (d *APIDefinition) ListenPath() string { return NormalizeListenPath(d.Proxy.ListenPath) }

func (d *APIDefinition) validate() error {
	if strings.TrimSpace(d.APIID) == "" {
		return errors.New("api_id: missing; every API needs a unique api_id")
	}
	lp := d.Proxy.ListenPath
	if lp == "" {
		return errors.New("proxy.listen_path: missing; say where the API is served, e.g. \"/my-api/\"")
	}
	if !strings.HasPrefix(lp, "/") {
		return fmt.Errorf("proxy.listen_path: %q must start with \"/\"", lp)
	}
	if d.Proxy.TargetURL != "" {
		if _, err := ParseTarget(d.Proxy.TargetURL); err != nil {
			return fmt.Errorf("proxy.target_url: %w", err)
		}
	}
	if len(d.VersionData.Versions) == 0 && d.Proxy.TargetURL == "" {
		return errors.New("proxy.target_url: missing; give the upstream's base URL, e.g. \"http://127.0.0.1:9000\"")
	}
	if d.VersionData.NotVersioned && d.Proxy.TargetURL == "" {
		return errors.New("proxy.target_url: missing; a not_versioned API forwards to target_url and ignores override_target, as Tyk does")
	}
	for name, v := range d.VersionData.Versions {
		if v.OverrideTarget == "" && d.Proxy.TargetURL == "" {
			return fmt.Errorf("proxy.target_url: missing, and version %q has no override_target", name)
		}
	}
	switch d.Definition.Location {
	case "", "header", "url-param", "url":
	default:
		return fmt.Errorf("definition.location: %q is not one of \"header\", \"url-param\", \"url\"", d.Definition.Location)
	}
	if !d.VersionData.NotVersioned && len(d.VersionData.Versions) > 1 && d.Definition.Key == "" && d.Definition.Location != "url" {
		return errors.New("definition.key: missing; name the header or parameter that carries the version")
	}
	if dv := d.VersionData.DefaultVersion; dv != "" {
		if _, ok := d.VersionData.Versions[dv]; !ok {
			return fmt.Errorf("version_data.default_version: %q is not listed in version_data.versions", dv)
		}
	}
	if d.VersionData.NotVersioned && len(d.VersionData.Versions) > 1 {
		if _, ok := d.VersionData.Versions["Default"]; !ok {
			return fmt.Errorf("version_data.versions: not_versioned is true but %d versions are listed and none is named \"Default\"", len(d.VersionData.Versions))
		}
	}
	return nil
}

// ParseTarget checks that an upstream URL is absolute http(s).
func ParseTarget(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q must be an absolute http:// or https:// URL", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q has no host", raw)
	}
	return u, nil
}

// LoadAPIDefinitions reads every *.json file in dir, in name order. A file
// that cannot be used is reported in the returned error, which names the
// file and the field or line; the other files still load. Inactive APIs
// are skipped without error. Two files with the same api_id or
// listen_path: the first (by name) wins, the second is an error.
//
// Only regular files up to maxSize bytes (<= 0: conffile.DefaultMaxSize)
// are read: a named pipe, a device (a link to /dev/zero, say) or a larger
// file is an error naming it, found without reading it, so no file can
// hold a load up or fill memory.
func LoadAPIDefinitions(dir string, maxSize int64) ([]*APIDefinition, Warnings, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("app_path: %w", err)
	}
	var files []string
	for _, e := range entries {
		if !e.IsDir() && filepath.Ext(e.Name()) == ".json" {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(files)
	var (
		defs     []*APIDefinition
		warnings Warnings
		errs     []error
		byID     = map[string]string{}
		byPath   = map[string]string{}
	)
	for _, f := range files {
		data, err := conffile.Read(f, maxSize)
		if err != nil {
			if errors.Is(err, conffile.ErrTooLarge) {
				err = fmt.Errorf("%w (max_api_definition_size in tyk.conf)", err)
			}
			errs = append(errs, fmt.Errorf("loading API definition: %w", err))
			continue
		}
		def, ws, err := ParseAPIDefinition(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("loading API definition %s: %w", f, err))
			continue
		}
		for _, w := range ws {
			warnings = append(warnings, f+": "+w)
		}
		def.file, def.raw = f, data
		if !def.Active {
			warnings = append(warnings, fmt.Sprintf("%s: API %q is not served: active is false or missing", f, def.APIID))
			continue
		}
		if other, dup := byID[def.APIID]; dup {
			errs = append(errs, fmt.Errorf("loading API definition %s: api_id: %q is already used by %s", f, def.APIID, other))
			continue
		}
		lp := NormalizeListenPath(def.Proxy.ListenPath)
		if other, dup := byPath[lp]; dup {
			errs = append(errs, fmt.Errorf("loading API definition %s: proxy.listen_path: %q is already served by %s", f, def.Proxy.ListenPath, other))
			continue
		}
		byID[def.APIID], byPath[lp] = f, f
		defs = append(defs, def)
	}
	if len(errs) > 0 {
		return defs, warnings, &DefinitionErrors{Errs: errs}
	}
	return defs, warnings, nil
}

// DefinitionErrors are the files of app_path that could not be loaded,
// one error each, naming the file and the field or line.
type DefinitionErrors struct {
	Errs []error
}

func (e *DefinitionErrors) Error() string { return errors.Join(e.Errs...).Error() }

// Unwrap lets errors.Is and errors.As look at each file's error.
func (e *DefinitionErrors) Unwrap() []error { return e.Errs }

// NormalizeListenPath drops a trailing slash so "/a" and "/a/" are the
// same route.
func NormalizeListenPath(p string) string {
	if len(p) > 1 {
		p = strings.TrimRight(p, "/")
		if p == "" {
			p = "/"
		}
	}
	return p
}
