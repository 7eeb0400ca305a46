package apidef

import (
	"fmt"
	"regexp"
	"strings"
)

// PathMatching is how the path patterns of extended_paths and of a key's
// allowed_urls are anchored: tyk.conf's http_server_options.
type PathMatching struct {
	// Prefix anchors a pattern starting with "/" at the start of the path
	// (enable_path_prefix_matching).
	Prefix bool
	// Suffix anchors every pattern at the end of the path
	// (enable_path_suffix_matching).
	Suffix bool
}

// PathMatching is the anchoring these options ask for.
func (o HTTPServerOptions) PathMatching() PathMatching {
	return PathMatching{Prefix: o.EnablePathPrefixMatching, Suffix: o.EnablePathSuffixMatching}
}

// muxParam is a "{name}" (or "{name:regexp}") path parameter, as Tyk
// finds them.
var muxParam = regexp.MustCompile(`{([^}]+)}`)

// PreparePath turns a path pattern into the regular expression Tyk
// matches (its internal/httputil.PreparePathRegexp): when the braces
// balance, each "{name}" stands for one path segment; "/*/" for one
// segment and any other "/*" for the rest of the path; then the pattern is
// anchored as m says. "/users/{id}" with Prefix and Suffix is
// "^/users/([^/]+)$".
func PreparePath(pattern string, m PathMatching) string {
	if n := strings.Count(pattern, "{"); n > 0 && n == strings.Count(pattern, "}") {
		pattern = muxParam.ReplaceAllString(pattern, `([^/]+)`)
	}
	if strings.Contains(pattern, "/*") {
		pattern = strings.ReplaceAll(pattern, "/*/", "/[^/]+/")
		pattern = strings.ReplaceAll(pattern, "/*", "/.*")
	}
	if m.Prefix && strings.HasPrefix(pattern, "/") {
		pattern = "^" + pattern
	}
	if m.Suffix && !strings.HasSuffix(pattern, "$") {
		pattern += "$"
	}
	return pattern
}

// CompilePath compiles a path of extended_paths as Tyk matches it: the
// regular expression PreparePath makes, found anywhere in the path unless
// anchored, case-insensitive when ignoreCase. A path that is not a valid
// regular expression (the seed's redacted "authorization/***") is matched
// as literal text, anchored as m says, with a warning naming field, rather
// than refusing the API (Tyk keeps no usable pattern: a request that
// reaches the entry fails).
func CompilePath(field, path string, m PathMatching, ignoreCase bool) (*regexp.Regexp, string) {
	flags := ""
	if ignoreCase {
		flags = "(?i)"
	}
	re, err := regexp.Compile(flags + PreparePath(path, m))
	if err == nil {
		return re, ""
	}
	literal := regexp.QuoteMeta(path)
	if m.Prefix && strings.HasPrefix(path, "/") {
		literal = "^" + literal
	}
	if m.Suffix {
		literal += "$"
	}
	return regexp.MustCompile(flags + literal),
		fmt.Sprintf("%s: %q is not a valid regular expression (%v); it is matched as literal text", field, path, err)
}

// The hooks JS middleware runs at, as named in custom_middleware.
const (
	HookPre         = "pre"
	HookPostKeyAuth = "post_key_auth"
	HookPost        = "post"
	// HookAuthCheck is custom authentication (custom_middleware.auth_check),
	// run in place of the auth token.
	HookAuthCheck = "auth_check"
)

// Hook is the middleware of one hook.
type Hook struct {
	Name string
	Defs []MiddlewareDefinition
}

// Hooks lists the section's middleware by hook, in the order they run.
func (m MiddlewareSection) Hooks() []Hook {
	return []Hook{{HookPre, m.Pre}, {HookPostKeyAuth, m.PostKeyAuth}, {HookPost, m.Post}}
}
