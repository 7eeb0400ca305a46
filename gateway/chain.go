package gateway

import (
	"net/http"
	"time"

	"github.com/tollgate/tollgate/gateway/session"
)

// The request path of every API, in order. This is the one place that
// fixes it; the README repeats it.
//
//  0. CORS           preflights answered before anything else; CORS
//     headers on every response, errors included
//  1. version        resolve the API version (header, url-param or url),
//     refuse missing, unknown or expired versions; apply
//     extended_paths: black_list and white_list refuse,
//     ignored marks the request as needing no key
//  2. JS pre         custom_middleware.pre, with an empty session
//  3. auth           read the key (header, param or cookie), load its
//     session, refuse missing, unknown, inactive or expired
//     keys and keys without access to this API version
//  4. JS post_key_auth
//  5. rate limit     sliding window per key in Redis
//  6. quota          requests per renewal period per key in Redis
//  7. JS post        custom_middleware.post
//  8. cache          a cached response answers here; a miss is stored
//     after the proxy
//  9. session write  a session changed by JS is stored, once
//  10. proxy         forward to the version's target (or target_url)
//
// Ignored paths skip 3 to 6.
func (g *Gateway) buildChain(api *apiSpec, js map[string][]step, cors, cache []step) []step {
	steps := append([]step(nil), cors...)
	steps = append(steps, versionCheck{})
	steps = append(steps, js[hookPre]...)
	if !api.def.UseKeylessAccess {
		steps = append(steps, newAuthToken(g, api.def.Auth))
		steps = append(steps, js[hookPostKeyAuth]...)
		steps = append(steps,
			&rateLimit{gw: g, window: g.window(g.transactionalLimiter(api.def))},
			&quota{gw: g, quota: g.quota},
		)
	} else {
		steps = append(steps, js[hookPostKeyAuth]...)
	}
	steps = append(steps, js[hookPost]...)
	steps = append(steps, cache...)
	return steps
}

// step is one middleware of the chain. serve returns false when it has
// answered the request itself and the chain stops there.
type step interface {
	serve(c *call) bool
}

// call is one request's trip through an API's chain: what each step
// learnt, for the steps after it.
type call struct {
	w   http.ResponseWriter
	r   *http.Request
	api *apiSpec
	now time.Time

	// path is the request path relative to the listen path ("/users/7").
	path    string
	version *versionSpec
	// ignored is set for extended_paths.ignored: no key is needed.
	ignored bool

	key     string // the raw key; never log it
	keyID   string // the key as stored in Redis (hashed with hash_keys)
	session *session.State
	// sessionDirty is set when JS middleware changed the session; it is
	// stored once, after the chain.
	sessionDirty bool

	body     []byte // read once, for JS middleware
	bodyRead bool

	// afterProxy run, in order, once the proxy has answered (a cache miss
	// stores the response there). Steps may also replace w to see the
	// response the proxy writes.
	afterProxy []func()
}

// keyHash names the key in logs without revealing it.
func (c *call) keyHash() string { return session.Hash(c.key) }

// serve runs the chain, then proxies if every step let the request pass.
// It returns what the chain learnt, for analytics.
func (api *apiSpec) serve(w http.ResponseWriter, r *http.Request, now time.Time) *call {
	c := &call{w: w, r: r, api: api, now: now, path: relativePath(r.URL.Path, api.listenPath)}
	for _, s := range api.chain {
		if !s.serve(c) {
			return c
		}
	}
	if c.sessionDirty {
		api.gw.writeSession(c)
	}
	c.version.proxy.ServeHTTP(c.w, r)
	for _, f := range c.afterProxy {
		f()
	}
	return c
}

// relativePath is path below the listen path, always starting with "/".
func relativePath(path, listenPath string) string {
	if listenPath == "/" {
		return path
	}
	rest := path[len(listenPath):]
	if rest == "" || rest[0] != '/' {
		return "/" + rest
	}
	return rest
}
