// Package chain is the contract every step of an API's request chain is
// written against: the Step interface, the per-request state (Call), the
// one error writer with every cause and message (errors.go), the base of
// response-writer wrappers, the client's address and the request body.
//
// A step is a package of its own under gateway/step/; the order of the
// steps, and which of them an ignored path skips, is fixed in one table,
// gateway/order.go. A step answers a request by writing an error and
// returning false:
//
//	func (s *myStep) Serve(c *chain.Call) bool {
//		if c.R.Header.Get("X-Forbidden") != "" {
//			chain.WriteError(c.W, c.R, http.StatusForbidden, chain.CauseEndpointForbidden, chain.MsgEndpointForbidden)
//			return false
//		}
//		return true
//	}
package chain

import (
	"context"
	"net/http"
	"time"

	"github.com/tollgate/tollgate/gateway/apidef"
	"github.com/tollgate/tollgate/gateway/limit"
	"github.com/tollgate/tollgate/gateway/session"
)

// Step is one middleware of an API's chain, built once when the API loads.
// Serve returns false when the step has answered the request itself; the
// chain stops there and the upstream is not called.
type Step interface {
	Serve(c *Call) bool
}

// Call is one request's trip through an API's chain: what each step
// learnt, for the steps after it.
type Call struct {
	// W is where the response goes; a step may wrap it to see the
	// response the upstream writes (see Writer).
	W http.ResponseWriter
	R *http.Request
	// API is the definition being served.
	API *apidef.APIDefinition
	// Now is when the request arrived, by the gateway's clock.
	Now time.Time
	// ClientIP is the caller's address, as Trust.ClientIP decided it.
	ClientIP string
	// StoreBudget bounds each Redis operation of the request (see
	// StoreContext).
	StoreBudget time.Duration

	// Path is the request path relative to the listen path ("/users/7").
	Path string
	// Version is the version's name and Upstream its proxy, set by the
	// version step.
	Version  string
	Upstream http.Handler
	// Ignored is set for extended_paths.ignored: no key is needed, and
	// the steps gateway/order.go marks are skipped.
	Ignored bool

	Key     string // the raw key; never log it
	KeyID   string // the key as stored in Redis (hashed with hash_keys)
	Session *session.State
	// SessionDirty is set when JS middleware changed the session's
	// meta_data; the change is stored once, after the chain, composed with
	// whatever else changed the stored session meanwhile. MetaBefore is the
	// meta_data the request started with, so only what the chain changed is
	// written.
	SessionDirty bool
	MetaBefore   map[string]any
	// SessionTransient is set when the session is not a stored key's but
	// one a custom auth_check returned for this request: it lives only as
	// long as the request, and nothing writes it to the store.
	SessionTransient bool
	// Quota is the key's quota as the rate-limit step counted it, in the
	// same round trip as the rate limit; nil when the quota step is to
	// count it itself.
	Quota *QuotaCounted

	body     []byte // read once, see ReadBody
	bodyRead bool

	afterProxy []func()
}

// QuotaCounted is a quota decision made ahead of the quota step.
type QuotaCounted struct {
	Decision limit.QuotaDecision
	Err      error
}

// NewCall starts a request's trip through the API served at listenPath.
func NewCall(w http.ResponseWriter, r *http.Request, api *apidef.APIDefinition, listenPath string, now time.Time, clientIP string) *Call {
	return &Call{W: w, R: r, API: api, Now: now, ClientIP: clientIP, Path: relativePath(r.URL.Path, listenPath)}
}

// KeyHash names the key in logs without revealing it.
func (c *Call) KeyHash() string { return session.Hash(c.Key) }

// AfterProxy runs f once the upstream has answered (a cache miss stores
// the response there). Functions run in the order they were added.
func (c *Call) AfterProxy(f func()) { c.afterProxy = append(c.afterProxy, f) }

// Proxied runs what steps asked to run after the upstream answered.
func (c *Call) Proxied() {
	for _, f := range c.afterProxy {
		f()
	}
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

// StoreContext is the context a step gives one Redis operation: the
// request's, bounded by StoreBudget, so a store that hangs costs the
// request that long and no longer. Call cancel when the operation is done.
func (c *Call) StoreContext() (ctx context.Context, cancel context.CancelFunc) {
	if c.StoreBudget <= 0 {
		return c.R.Context(), func() {}
	}
	return context.WithTimeout(c.R.Context(), c.StoreBudget)
}
