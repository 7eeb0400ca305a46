// Package cache is the chain's response cache. It keeps an upstream's
// answer in Redis, per API, per caller and per request, so a repeated safe
// request is answered without reaching the upstream. It is the last step of the chain: auth, rate
// limit, quota and JS post middleware run on a hit as on a miss.
//
// A cached entry is only ever read back for the caller that stored it:
// the entry key hashes the caller's key (or, on a keyless API, its IP)
// together with the key's last_updated, so a key deleted and created
// again, or reset through the control API, starts with no entries.
//
// Entries keyed by client IP are shared by everyone behind that address,
// so the cache follows a shared cache's rules (RFC 9111): shared.go says
// which responses are never stored and which requests never use the
// cache. A GET or HEAD whose If-None-Match names a cached 2xx's ETag is
// answered 304, as Tyk does.
package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/gateway/apidef"
	"github.com/tollgate/tollgate/gateway/chain"
)

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

// Store is where entries live: Redis, shared by every gateway.
type Store interface {
	// Get returns an entry's bytes; found is false for none.
	Get(ctx context.Context, key string) (data []byte, found bool, err error)
	Set(ctx context.Context, key string, data []byte, ttl time.Duration) error
}

// RedisStore keeps entries in Redis.
type RedisStore struct {
	Client redis.UniversalClient
}

var _ Store = RedisStore{}

func (s RedisStore) Get(ctx context.Context, key string) ([]byte, bool, error) {
	data, err := s.Client.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	return data, err == nil, err
}

func (s RedisStore) Set(ctx context.Context, key string, data []byte, ttl time.Duration) error {
	return s.Client.Set(ctx, key, data, ttl).Err()
}

// Counters count what an API's cache step did, for the gateway's
// metrics. The gateway keeps them per API across reloads, so they only
// grow.
type Counters struct {
	// Hits are requests answered from the cache; Misses are requests that
	// looked for an entry and found none usable; Stores are responses
	// written to the cache. A lookup the store could not answer is none
	// of these.
	Hits, Misses, Stores atomic.Uint64
}

// responseCache is the cache step of one API.
type responseCache struct {
	store   Store
	counts  *Counters
	log     *slog.Logger
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

var _ chain.Step = (*responseCache)(nil)

// New builds the response cache of an API from its cache_options and its
// versions' extended_paths.cache; nil when enable_cache is off. What it
// does is counted in counts, which may be nil.
func New(def *apidef.APIDefinition, store Store, counts *Counters, log *slog.Logger) (chain.Step, []string, error) {
	opts := &def.CacheOptions
	if !opts.EnableCache {
		return nil, nil, nil
	}
	rc, warnings, err := newResponseCache(store, log, def.APIID, opts)
	if err != nil {
		return nil, nil, err
	}
	if counts == nil {
		counts = &Counters{}
	}
	rc.counts = counts
	for name, v := range def.VersionData.Versions {
		field := "version_data.versions." + name + ".extended_paths.cache"
		if !v.UseExtendedPaths {
			if len(v.ExtendedPaths.Cache) > 0 {
				warnings = append(warnings, fmt.Sprintf("%s: %d entries are not applied because use_extended_paths is false", field, len(v.ExtendedPaths.Cache)))
			}
			continue
		}
		for i, p := range v.ExtendedPaths.Cache {
			re, w := apidef.CompilePath(fmt.Sprintf("%s[%d]", field, i), p, apidef.PathMatching{}, false)
			if w != "" {
				warnings = append(warnings, w)
			}
			rc.paths[name] = append(rc.paths[name], re)
		}
	}
	if !rc.allSafe && len(rc.paths) == 0 {
		warnings = append(warnings, "cache_options.enable_cache: neither cache_all_safe_requests nor any extended_paths.cache entry is set, so nothing is cached")
	}
	return rc, warnings, nil
}

// newResponseCache validates cache_options.
func newResponseCache(store Store, log *slog.Logger, apiID string, o *apidef.CacheOptions) (*responseCache, []string, error) {
	if o.CacheTimeout < 0 {
		return nil, nil, fmt.Errorf("cache_options.cache_timeout: %d is negative", o.CacheTimeout)
	}
	rc := &responseCache{
		store: store, log: log, apiID: apiID, prefix: cachePrefix + apiID + "-",
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
	var warnings []string
	for i, code := range o.CacheResponseCodes {
		if code < 100 || code > 599 {
			return nil, nil, fmt.Errorf("cache_options.cache_response_codes[%d]: %d is not an HTTP status", i, code)
		}
		if code == http.StatusPartialContent || code == http.StatusNotModified {
			warnings = append(warnings, fmt.Sprintf("cache_options.cache_response_codes[%d]: %d is never cached: it is not a whole response another request could be given", i, code))
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
	return rc, warnings, nil
}

func isSafeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// cacheable tells whether the request's response may come from, and go
// to, the cache.
func (rc *responseCache) cacheable(c *chain.Call) bool {
	if !isSafeMethod(c.R.Method) {
		return false
	}
	if rc.allSafe {
		return true
	}
	if c.Version == "" {
		return false
	}
	for _, re := range rc.paths[c.Version] {
		if re.MatchString(c.Path) {
			return true
		}
	}
	return false
}

// entryKey names the request's entry: the API, the caller (key hash and
// its last_updated, or the client IP on keyless APIs), the method, the full
// URL and the cache_by_headers values, hashed.
func (rc *responseCache) entryKey(c *chain.Call) string {
	h := sha256.New()
	field := func(s string) {
		// Length-prefixed, so no two field lists hash alike.
		var n [8]byte
		h.Write(strconv.AppendInt(n[:0], int64(len(s)), 10))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	field(rc.apiID)
	if c.Key != "" {
		field("key")
		// The key itself, inside this SHA-256: its log hash (Tyk's
		// murmur32) ignores a key's last bytes, so two keys could share it.
		field(c.Key)
		if c.Session != nil {
			field(c.Session.LastUpdated)
		} else {
			field("")
		}
	} else {
		field("ip")
		field(c.ClientIP)
	}
	field(c.R.Method)
	field(c.R.Host)
	field(c.R.URL.RequestURI())
	for _, name := range rc.byHeaders {
		field(name)
		field(strings.Join(c.R.Header.Values(name), "\x00"))
	}
	var sum [sha256.Size]byte
	return rc.prefix + hex.EncodeToString(h.Sum(sum[:0]))
}

func (rc *responseCache) Serve(c *chain.Call) bool {
	if !rc.cacheable(c) {
		return true
	}
	if sharedByAddress(c) && someonesOwn(c) {
		return true // someone's own request; see shared.go
	}
	key := rc.entryKey(c)
	ctx, cancel := c.StoreContext()
	data, found, err := rc.store.Get(ctx, key)
	cancel()
	if err != nil {
		rc.log.Warn("response cache not used: store unavailable", "api_id", rc.apiID, "error", err)
		return true
	}
	if found {
		if e, ok := decodeCacheEntry(data); ok && c.Now.Unix() < e.Expires {
			rc.counts.Hits.Add(1)
			e.replay(c.W, notModified(c.R, e))
			return false
		}
	}
	rc.counts.Misses.Add(1)
	rec := &cacheRecorder{Writer: chain.Writer{ResponseWriter: c.W}, before: c.W.Header().Clone()}
	c.W = rec
	c.AfterProxy(func() { rc.keep(c, key, rec) })
	return true
}

// keep stores the response rec saw, if it may be cached.
func (rc *responseCache) keep(c *chain.Call, key string, rec *cacheRecorder) {
	if rec.overflow || !rec.wroteHeader || !rc.codes[rec.status] {
		return
	}
	h := rec.Header()
	if chain.IsGatewayError(h) {
		return // the gateway's own error, not the upstream's answer
	}
	if why := refusal(c, rec.status, h); why != "" {
		rc.log.Debug("response not cached", "api_id", rc.apiID, "reason", why)
		return
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
		Expires: c.Now.Add(ttl).Unix(),
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
	ctx, cancel := c.StoreContext()
	defer cancel()
	if err := rc.store.Set(ctx, key, data, ttl); err != nil {
		rc.log.Warn("response not cached: store unavailable", "api_id", rc.apiID, "error", err)
		return
	}
	rc.counts.Stores.Add(1)
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

// replay answers from the entry; notModified answers 304 with the
// entry's headers and no body, as Tyk does (net/http leaves out
// Content-Type and Content-Length on a 304).
func (e cacheEntry) replay(w http.ResponseWriter, notModified bool) {
	h := w.Header()
	for name, values := range e.Header {
		if _, ok := h[name]; !ok {
			h[name] = values
		}
	}
	h.Set(cachedResponseHeader, "1")
	if notModified {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if _, ok := e.Header["Content-Length"]; !ok {
		h.Set("Content-Length", strconv.Itoa(len(e.Body)))
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(e.Body)
}

// cacheRecorder passes a response through to the client and keeps a copy
// of its status and body, up to maxCachedBody.
type cacheRecorder struct {
	chain.Writer
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

// Purge deletes every cache entry of apiID on every node of client and
// returns how many it deleted.
func Purge(ctx context.Context, client redis.UniversalClient, apiID string) (int, error) {
	pattern := globEscape(cachePrefix+apiID+"-") + "*"
	var n atomic.Int64
	var err error
	if cc, ok := client.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			return scanDelete(ctx, node, pattern, &n)
		})
	} else {
		err = scanDelete(ctx, client, pattern, &n)
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
