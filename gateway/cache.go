package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// The response cache keeps an upstream's answer in Redis, per API, per
// caller and per request, so a repeated safe request is answered without
// reaching the upstream. It is the last step of the chain: auth, rate
// limit, quota and JS post middleware run on a hit as on a miss.
//
// A cached entry is only ever read back for the caller that stored it:
// the entry key hashes the caller's key (or, on a keyless API, its IP)
// together with the key's last_updated, so a key deleted and created
// again, or reset through the control API, starts with no entries.

// cachePrefix starts every cache entry key; "<api_id>-" follows.
const cachePrefix = "cache-"

// cachedResponseHeader marks a response answered from the cache.
const cachedResponseHeader = "X-Tyk-Cached-Response"

// Upstream cache control: with enable_upstream_cache_control, a response
// is cached only when the upstream sets upstreamCacheHeader, for the
// seconds in upstreamCacheTTLHeader (or cache_control_ttl_header) when
// given.
const (
	upstreamCacheHeader    = "X-Tyk-Cache-Action-Set"
	upstreamCacheTTLHeader = "X-Tyk-Cache-Action-Set-Ttl"
)

// defaultCacheTimeout applies when cache_timeout is 0 or absent.
const defaultCacheTimeout = 60 * time.Second

// maxCachedBody bounds what one entry holds; a larger response is passed
// through and not cached.
const maxCachedBody = 1 << 20

// CacheOptions is the definition's cache_options. JSON names are Tyk's.
type CacheOptions struct {
	// EnableCache turns the response cache on.
	EnableCache bool `json:"enable_cache"`
	// CacheTimeout is how long an entry lives, in seconds. Default 60.
	CacheTimeout int64 `json:"cache_timeout"`
	// CacheAllSafeRequests caches every GET, HEAD and OPTIONS request;
	// otherwise only the paths in a version's extended_paths.cache.
	CacheAllSafeRequests bool `json:"cache_all_safe_requests"`
	// CacheResponseCodes are the upstream statuses that are cached.
	// Default: 200 only.
	CacheResponseCodes []int `json:"cache_response_codes"`
	// CacheByHeaders are request headers whose values are part of the
	// entry key: requests differing in them get separate entries.
	CacheByHeaders []string `json:"cache_by_headers"`
	// EnableUpstreamCacheControl lets the upstream decide: a response is
	// cached only if it carries x-tyk-cache-action-set, for the seconds in
	// x-tyk-cache-action-set-ttl when present.
	EnableUpstreamCacheControl bool `json:"enable_upstream_cache_control"`
	// CacheControlTTLHeader names the upstream header with the TTL instead
	// of x-tyk-cache-action-set-ttl.
	CacheControlTTLHeader string `json:"cache_control_ttl_header"`
}

// responseCache is the cache step of one API.
type responseCache struct {
	gw      *Gateway
	apiID   string
	prefix  string // "cache-<api_id>-"
	ttl     time.Duration
	allSafe bool
	// paths are the cached paths by version name.
	paths     map[string][]*regexp.Regexp
	codes     map[int]bool
	byHeaders []string // canonical names
	upstream  bool     // enable_upstream_cache_control
	ttlHeader string   // canonical
}

var _ step = (*responseCache)(nil)

// cacheSteps builds the response cache of an API from its cache_options
// and its versions' extended_paths.cache.
func (g *Gateway) cacheSteps(def *APIDefinition) ([]step, []string, error) {
	opts := &def.CacheOptions
	if !opts.EnableCache {
		return nil, nil, nil
	}
	rc, warnings, err := newResponseCache(g, def.APIID, opts)
	if err != nil {
		return nil, nil, err
	}
	for name, v := range def.VersionData.Versions {
		field := "version_data.versions." + name + ".extended_paths.cache"
		if !v.UseExtendedPaths {
			if len(v.ExtendedPaths.Cache) > 0 {
				warnings = append(warnings, fmt.Sprintf("%s: %d entries are not applied because use_extended_paths is false", field, len(v.ExtendedPaths.Cache)))
			}
			continue
		}
		for i, p := range v.ExtendedPaths.Cache {
			re, err := regexp.Compile(paramPattern.ReplaceAllString(p, "(.*)"))
			if err != nil {
				warnings = append(warnings, fmt.Sprintf("%s[%d]: %q is not a valid regular expression (%v); it is matched as literal text", field, i, p, err))
				re = regexp.MustCompile(regexp.QuoteMeta(p))
			}
			rc.paths[name] = append(rc.paths[name], re)
		}
	}
	if !rc.allSafe && len(rc.paths) == 0 {
		warnings = append(warnings, "cache_options.enable_cache: neither cache_all_safe_requests nor any extended_paths.cache entry is set, so nothing is cached")
	}
	return []step{rc}, warnings, nil
}

// newResponseCache validates cache_options.
func newResponseCache(g *Gateway, apiID string, o *CacheOptions) (*responseCache, []string, error) {
	if o.CacheTimeout < 0 {
		return nil, nil, fmt.Errorf("cache_options.cache_timeout: %d is negative", o.CacheTimeout)
	}
	rc := &responseCache{
		gw: g, apiID: apiID, prefix: cachePrefix + apiID + "-",
		ttl: defaultCacheTimeout, allSafe: o.CacheAllSafeRequests,
		paths: map[string][]*regexp.Regexp{}, codes: map[int]bool{},
		upstream: o.EnableUpstreamCacheControl, ttlHeader: upstreamCacheTTLHeader,
	}
	if o.CacheTimeout > 0 {
		rc.ttl = time.Duration(o.CacheTimeout) * time.Second
	}
	// Tyk #2305: with no list Tyk cached every status, 401s included.
	if len(o.CacheResponseCodes) == 0 {
		rc.codes[http.StatusOK] = true
	}
	for i, code := range o.CacheResponseCodes {
		if code < 100 || code > 599 {
			return nil, nil, fmt.Errorf("cache_options.cache_response_codes[%d]: %d is not an HTTP status", i, code)
		}
		rc.codes[code] = true
	}
	for _, h := range o.CacheByHeaders {
		rc.byHeaders = append(rc.byHeaders, textproto.CanonicalMIMEHeaderKey(h))
	}
	slices.Sort(rc.byHeaders)
	rc.byHeaders = slices.Compact(rc.byHeaders)
	if o.CacheControlTTLHeader != "" {
		rc.ttlHeader = textproto.CanonicalMIMEHeaderKey(o.CacheControlTTLHeader)
	}
	return rc, nil, nil
}

func isSafeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// cacheable tells whether the request's response may come from, and go
// to, the cache.
func (rc *responseCache) cacheable(c *call) bool {
	if !isSafeMethod(c.r.Method) {
		return false
	}
	if rc.allSafe {
		return true
	}
	if c.version == nil {
		return false
	}
	for _, re := range rc.paths[c.version.name] {
		if re.MatchString(c.path) {
			return true
		}
	}
	return false
}

// entryKey names the request's entry: the API, the caller (key hash and
// its last_updated, or the client IP on keyless APIs), the method, the full
// URL and the cache_by_headers values, hashed.
func (rc *responseCache) entryKey(c *call) string {
	h := sha256.New()
	field := func(s string) {
		// Length-prefixed, so no two field lists hash alike.
		var n [8]byte
		h.Write(strconv.AppendInt(n[:0], int64(len(s)), 10))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	field(rc.apiID)
	if c.key != "" {
		field("key")
		field(c.keyHash())
		if c.session != nil {
			field(c.session.LastUpdated)
		} else {
			field("")
		}
	} else {
		field("ip")
		field(clientIP(c.r))
	}
	field(c.r.Method)
	field(c.r.Host)
	field(c.r.URL.RequestURI())
	for _, name := range rc.byHeaders {
		field(name)
		field(strings.Join(c.r.Header.Values(name), "\x00"))
	}
	var sum [sha256.Size]byte
	return rc.prefix + hex.EncodeToString(h.Sum(sum[:0]))
}

func (rc *responseCache) serve(c *call) bool {
	if !rc.cacheable(c) {
		return true
	}
	key := rc.entryKey(c)
	ctx := c.r.Context()
	data, err := rc.gw.store.Client.Get(ctx, key).Bytes()
	switch {
	case err == nil:
		if e, ok := decodeCacheEntry(data); ok && c.now.Unix() < e.Expires {
			e.replay(c.w)
			return false
		}
	case errors.Is(err, redis.Nil):
	default:
		rc.gw.log.Warn("response cache not used: store unavailable", "api_id", rc.apiID, "error", err)
		return true
	}
	rec := &cacheRecorder{ResponseWriter: c.w, before: c.w.Header().Clone()}
	c.w = rec
	c.afterProxy = append(c.afterProxy, func() { rc.store(c, key, rec) })
	return true
}

// store keeps the response rec saw, if it may be cached.
func (rc *responseCache) store(c *call, key string, rec *cacheRecorder) {
	if rec.overflow || !rec.wroteHeader || !rc.codes[rec.status] {
		return
	}
	h := rec.Header()
	if h.Get(CauseHeader) != "" {
		return // the gateway's own error, not the upstream's answer
	}
	ttl := rc.ttl
	if rc.upstream {
		if _, ok := h[upstreamCacheHeader]; !ok {
			return
		}
		if s, err := strconv.ParseInt(h.Get(rc.ttlHeader), 10, 64); err == nil && s > 0 {
			ttl = time.Duration(s) * time.Second
		}
	}
	e := cacheEntry{
		Status:  rec.status,
		Header:  http.Header{},
		Body:    rec.body.Bytes(),
		Expires: c.now.Add(ttl).Unix(),
	}
	for name, values := range h {
		if hopByHop(name, h) || name == cachedResponseHeader {
			continue
		}
		// Headers the gateway set before the proxy (rate-limit counters)
		// are set afresh on a hit.
		if before, ok := rec.before[name]; ok && slices.Equal(before, values) {
			continue
		}
		e.Header[name] = values
	}
	data := e.encode()
	if err := rc.gw.store.Client.Set(c.r.Context(), key, data, ttl).Err(); err != nil {
		rc.gw.log.Warn("response not cached: store unavailable", "api_id", rc.apiID, "error", err)
	}
}

// hopByHop tells whether a response header belongs to one connection and
// so is never replayed: RFC 9110's list, any Proxy-* header and whatever
// the response's Connection header names.
func hopByHop(name string, h http.Header) bool {
	switch name {
	case "Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	if strings.HasPrefix(name, "Proxy-") {
		return true
	}
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(f)) == name {
				return true
			}
		}
	}
	return false
}

// cacheEntry is one cached response as stored in Redis.
type cacheEntry struct {
	Status  int
	Header  http.Header
	Body    []byte
	Expires int64 // unix seconds, besides the Redis TTL
}

// cacheEntryMagic starts every stored entry, so a value of another shape
// is a miss rather than garbage replayed.
const cacheEntryMagic = "tgc1"

// encode lays the entry out in binary (a hit decodes it on the request
// path, several times faster than JSON): magic, status, expiry, the
// header count, then each name and its values length-prefixed, then the
// body.
func (e cacheEntry) encode() []byte {
	size := len(cacheEntryMagic) + 2 + 8 + 4 + len(e.Body)
	for name, values := range e.Header {
		size += 4 + len(name) + 4
		for _, v := range values {
			size += 4 + len(v)
		}
	}
	b := make([]byte, 0, size)
	b = append(b, cacheEntryMagic...)
	b = binary.BigEndian.AppendUint16(b, uint16(e.Status))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Expires))
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.Header)))
	for name, values := range e.Header {
		b = appendString(b, name)
		b = binary.BigEndian.AppendUint32(b, uint32(len(values)))
		for _, v := range values {
			b = appendString(b, v)
		}
	}
	return append(b, e.Body...)
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// decodeCacheEntry reads what encode wrote; anything else is not an entry.
func decodeCacheEntry(data []byte) (cacheEntry, bool) {
	r := entryReader{b: data}
	if string(r.take(len(cacheEntryMagic))) != cacheEntryMagic {
		return cacheEntry{}, false
	}
	e := cacheEntry{Status: int(r.uint16()), Expires: int64(r.uint64())}
	n := r.uint32()
	if r.bad || n > uint32(len(data)) {
		return cacheEntry{}, false
	}
	e.Header = make(http.Header, n)
	for range n {
		name := r.string()
		count := r.uint32()
		if r.bad || count > uint32(len(data)) {
			return cacheEntry{}, false
		}
		values := make([]string, count)
		for i := range values {
			values[i] = r.string()
		}
		e.Header[name] = values
	}
	if r.bad || e.Status < 100 || e.Status > 599 {
		return cacheEntry{}, false
	}
	e.Body = r.b
	return e, true
}

// entryReader reads a stored entry; bad is set once it runs short.
type entryReader struct {
	b   []byte
	bad bool
}

func (r *entryReader) take(n int) []byte {
	if r.bad || n < 0 || n > len(r.b) {
		r.bad = true
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *entryReader) uint16() uint16 {
	if b := r.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *entryReader) uint32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *entryReader) uint64() uint64 {
	if b := r.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (r *entryReader) string() string {
	return string(r.take(int(r.uint32())))
}

func (e cacheEntry) replay(w http.ResponseWriter) {
	h := w.Header()
	for name, values := range e.Header {
		if _, ok := h[name]; !ok {
			h[name] = values
		}
	}
	h.Set(cachedResponseHeader, "1")
	if _, ok := e.Header["Content-Length"]; !ok {
		h.Set("Content-Length", strconv.Itoa(len(e.Body)))
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(e.Body)
}

// cacheRecorder passes a response through to the client and keeps a copy
// of its status and body, up to maxCachedBody.
type cacheRecorder struct {
	http.ResponseWriter
	before      http.Header // the headers set before the proxy ran
	status      int
	wroteHeader bool
	body        bytes.Buffer
	overflow    bool
}

func (r *cacheRecorder) WriteHeader(status int) {
	if !r.wroteHeader && status >= 200 {
		r.status, r.wroteHeader = status, true
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *cacheRecorder) Write(p []byte) (int, error) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = http.StatusOK, true
	}
	if !r.overflow {
		if r.body.Len()+len(p) > maxCachedBody {
			r.overflow = true
			r.body = bytes.Buffer{}
		} else {
			r.body.Write(p)
		}
	}
	return r.ResponseWriter.Write(p)
}

// Flush lets streamed responses through as they come.
func (r *cacheRecorder) Flush() {
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap is for http.ResponseController.
func (r *cacheRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// purgeCache deletes every cache entry of apiID on every node and returns
// how many it deleted.
func (g *Gateway) purgeCache(ctx context.Context, apiID string) (int, error) {
	pattern := globEscape(cachePrefix+apiID+"-") + "*"
	var n atomic.Int64
	var err error
	if cc, ok := g.store.Client.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			return scanDelete(ctx, node, pattern, &n)
		})
	} else {
		err = scanDelete(ctx, g.store.Client, pattern, &n)
	}
	if err != nil {
		return int(n.Load()), fmt.Errorf("purging the cache of api %q: %w", apiID, err)
	}
	return int(n.Load()), nil
}

// scanDelete deletes the keys matching pattern on one node, one DEL per key
// so that no command spans slots.
func scanDelete(ctx context.Context, c redis.Cmdable, pattern string, n *atomic.Int64) error {
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, pattern, 500).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range keys {
					p.Del(ctx, k)
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, cmd := range cmds {
				n.Add(cmd.(*redis.IntCmd).Val())
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// globEscape quotes the characters SCAN MATCH treats as patterns.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// controlPurgeCache answers DELETE /tyk/cache/{api_id}: every cached
// response of the API is deleted, on every node.
func (g *Gateway) controlPurgeCache(w http.ResponseWriter, r *http.Request, apiID string) {
	if r.Method != http.MethodDelete {
		controlError(w, http.StatusMethodNotAllowed, CauseControlMethod, "Method not supported: use DELETE")
		return
	}
	if apiID == "" || strings.Contains(apiID, "/") {
		controlError(w, http.StatusNotFound, CauseControlNotFound, "No control API endpoint at this path")
		return
	}
	n, err := g.purgeCache(r.Context(), apiID)
	if err != nil {
		g.log.Warn("control API: cache not purged, store unavailable", "api_id", apiID, "deleted", n, "error", err)
		controlError(w, http.StatusServiceUnavailable, CauseStorageUnavailable, msgStorageUnavailable)
		return
	}
	g.log.Info("cache purged", "api_id", apiID, "deleted", n)
	writeJSON(w, http.StatusOK, controlReply{Status: "ok", Action: "deleted"})
}
