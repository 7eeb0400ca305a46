package cache

import (
	"net/http"
	"strings"

	"github.com/tollgate/tollgate/gateway/chain"
)

// The cache is a shared cache (RFC 9111): on a keyless API, and on a keyed
// API's ignored paths, an entry is keyed by client IP, and everyone behind
// one NAT, proxy or load balancer has the same IP. So, whatever the API:
//
//   - a response with Set-Cookie is never stored: replayed, it would hand
//     one caller's session to the next (RFC 9111 allows storing it; a
//     gateway that cannot tell whose cookie it is must not);
//   - nor one with Cache-Control private or no-store (§3), in either form
//     (private="…" would allow storing it without the named fields), nor
//     no-cache: it may only be reused after revalidation, which the cache
//     does not do (§5.2.2.4);
//   - nor the response to a request with Cache-Control: no-store
//     (§5.2.1.5);
//   - nor a 206 or 304, whatever cache_response_codes lists: they are not
//     whole responses another request can be given (§3);
//
// and on entries keyed by client IP, a request with Authorization or
// Cookie is neither answered from the cache nor stored: it is someone's
// own request, and its answer is likely someone's own data. So is one a
// custom auth_check admitted without naming an AuthValue: the script told
// who the caller is, in a header the cache cannot know, and did not say.
//
// Where the entry is keyed by an API key (its hash and last_updated), it
// is only ever read back by the holder of that key, so the cache is
// private to the key there: a Cookie does not stop storing, nor does an
// Authorization header that carries the key itself. An Authorization
// header that is not the key (the API reads its key from another header,
// a parameter or a cookie) belongs to someone the key does not tell apart,
// for example the end users of one application's key, so RFC 9111 §3.5
// applies: the response is stored only when it says public, s-maxage or
// must-revalidate.

// sharedByAddress tells whether the request's entry is keyed by client
// IP, so shared by everyone behind that address.
func sharedByAddress(c *chain.Call) bool { return c.Key == "" }

// someonesOwn tells whether a request whose entry would be shared by
// address is someone's own: it has Authorization or Cookie, or a custom
// auth_check admitted it without naming an AuthValue.
func someonesOwn(c *chain.Call) bool {
	return c.R.Header.Get("Authorization") != "" || c.R.Header.Get("Cookie") != "" || c.SessionTransient
}

// refusal says why the response to c, with status and header h, must not
// be stored; "" when it may be.
func refusal(c *chain.Call, status int, h http.Header) string {
	if status == http.StatusPartialContent || status == http.StatusNotModified {
		return "partial or not-modified response"
	}
	if _, ok := h["Set-Cookie"]; ok {
		return "Set-Cookie"
	}
	res := parseCacheControl(h["Cache-Control"])
	switch {
	case res["no-store"]:
		return "Cache-Control: no-store"
	case res["private"]:
		return "Cache-Control: private"
	case res["no-cache"]:
		return "Cache-Control: no-cache"
	}
	if parseCacheControl(c.R.Header["Cache-Control"])["no-store"] {
		return "request Cache-Control: no-store"
	}
	if foreignAuthorization(c) && !res["public"] && !res["s-maxage"] && !res["must-revalidate"] {
		return "Authorization without public, s-maxage or must-revalidate"
	}
	return ""
}

// foreignAuthorization tells whether the request has an Authorization
// header other than the one its key was read from.
func foreignAuthorization(c *chain.Call) bool {
	v := c.R.Header.Get("Authorization")
	if v == "" {
		return false
	}
	if sharedByAddress(c) {
		return true
	}
	name := c.API.Auth.AuthHeaderName
	if name != "" && !strings.EqualFold(name, "Authorization") {
		return true
	}
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		v = v[7:]
	}
	return strings.TrimSpace(v) != c.Key
}

// parseCacheControl returns the directive names (lower case) of
// Cache-Control field values, skipping their arguments, quoted ones
// included (private="Set-Cookie, X-A" names one directive).
func parseCacheControl(values []string) map[string]bool {
	if len(values) == 0 {
		return nil
	}
	out := map[string]bool{}
	for _, v := range values {
		for v != "" {
			v = strings.TrimLeft(v, " \t,")
			end := strings.IndexAny(v, "=,")
			if end < 0 {
				end = len(v)
			}
			if name := strings.ToLower(strings.TrimSpace(v[:end])); name != "" {
				out[name] = true
			}
			v = v[end:]
			if strings.HasPrefix(v, "=") {
				v = skipArgument(v[1:])
			}
		}
	}
	return out
}

// skipArgument returns what follows a directive's argument: a token or a
// quoted string with backslash escapes.
func skipArgument(v string) string {
	v = strings.TrimLeft(v, " \t")
	if !strings.HasPrefix(v, `"`) {
		if i := strings.IndexByte(v, ','); i >= 0 {
			return v[i:]
		}
		return ""
	}
	for i := 1; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case '"':
			return v[i+1:]
		}
	}
	return ""
}

// notModified tells whether a cached entry answers r with 304: r is a GET
// or HEAD whose If-None-Match names the entry's ETag or is "*", and the
// entry is a 2xx (RFC 9110 §13.1.2, §13.2.1). Tags compare weakly (W/
// ignored) and whole: Tyk looks for the ETag anywhere inside the header
// (strings.Contains), so "123456" matched "12345".
func notModified(r *http.Request, e cacheEntry) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if e.Status < 200 || e.Status > 299 {
		return false
	}
	etag := e.Header.Get("Etag")
	conds := r.Header.Values("If-None-Match")
	if etag == "" || len(conds) == 0 {
		return false
	}
	etag = strings.TrimPrefix(etag, "W/")
	for _, v := range conds {
		for v != "" {
			var tag string
			tag, v = nextTag(v)
			if tag == "*" || (tag != "" && strings.TrimPrefix(tag, "W/") == etag) {
				return true
			}
		}
	}
	return false
}

// nextTag reads the first entity tag of an If-None-Match list and returns
// it and the rest. A quoted tag may contain commas; an unquoted one (Tyk's
// tests use 12345) runs to the next comma.
func nextTag(v string) (tag, rest string) {
	v = strings.TrimLeft(v, " \t,")
	start := 0
	if strings.HasPrefix(v, "W/") {
		start = 2
	}
	if strings.HasPrefix(v[start:], `"`) {
		if i := strings.IndexByte(v[start+1:], '"'); i >= 0 {
			end := start + 1 + i + 1
			return v[:end], v[end:]
		}
		return v, ""
	}
	if i := strings.IndexByte(v, ','); i >= 0 {
		return strings.TrimSpace(v[:i]), v[i:]
	}
	return strings.TrimSpace(v), ""
}
