package gateway

import (
	"net/http"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/tollgate/tollgate/gateway/chain"
)

// canonical makes every rule see the request the upstream will get. It
// runs before anything else routes the request, and answers it itself when
// the request line is not canonical:
//
//   - a path with dot segments or repeated slashes, in any encoding
//     ("/a/../b", "/a/%2e%2e/b", "/a/..%2fb", "//b"), gets 301 to the
//     cleaned path with the query kept, as Tyk (gorilla/mux) answers;
//   - a method that differs from a standard one only in case ("get") is
//     400: methods are case-sensitive, and a rule for GET must not be
//     walked around by an upstream that is not (Tyk forwards them);
//   - a path holding a backslash, a NUL, bytes that are not UTF-8 (an
//     overlong "%c0%ae" among them) or a dot segment with parameters
//     ("/..;/") is 400: some upstreams read those as separators or dots
//     that no rule here could see (Tyk forwards them).
//
// What passes is forwarded in the form the rules saw: an encoded slash
// ("%2F") reaches the upstream as "/", so no rule can match one segment
// while the upstream resolves two.
func canonical(w http.ResponseWriter, r *http.Request) bool {
	if std, ok := caseVariant(r.Method); ok {
		chain.WriteError(w, r, http.StatusBadRequest, chain.CauseMethodCase, "Method "+r.Method+" is not "+std+": methods are case-sensitive")
		return false
	}
	p := r.URL.Path
	if why := unsafePath(p); why != "" {
		chain.WriteError(w, r, http.StatusBadRequest, chain.CauseBadPath, "Request path refused: "+why)
		return false
	}
	if clean := cleanPath(p); clean != p {
		u := *r.URL
		u.Path, u.RawPath = clean, ""
		w.Header().Set("Location", u.String())
		w.WriteHeader(http.StatusMovedPermanently)
		return false
	}
	r.URL.RawPath = ""
	return true
}

// standardMethods are the methods of RFC 9110 and PATCH.
var standardMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace,
}

// caseVariant reports the standard method m spells in another case.
func caseVariant(m string) (string, bool) {
	for _, std := range standardMethods {
		if m != std && strings.EqualFold(m, std) {
			return std, true
		}
	}
	return "", false
}

// unsafePath says why a decoded path cannot be forwarded as it is, or "".
func unsafePath(p string) string {
	switch {
	case strings.IndexByte(p, '\\') >= 0:
		return "a backslash is not a path separator here, but may be one upstream"
	case strings.IndexByte(p, 0) >= 0:
		return "it contains a NUL byte"
	case !utf8.ValidString(p):
		return "it is not valid UTF-8 once decoded"
	}
	for seg := range strings.SplitSeq(p, "/") {
		if name, _, params := strings.Cut(seg, ";"); params && (name == "." || name == "..") {
			return "a dot segment with parameters (" + seg + ") is a dot segment upstream"
		}
	}
	return ""
}

// cleanPath is gorilla/mux's cleanPath, which Tyk redirects to: path.Clean
// keeping a trailing slash.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}
