package apidef

import (
	"fmt"
	"regexp"
)

// paramPattern matches "{name}" path parameters.
var paramPattern = regexp.MustCompile(`\{[^/{}]*\}`)

// CompilePath compiles a path of extended_paths as Tyk matches it: a
// regular expression, found anywhere in the path below the listen path,
// where "{name}" stands for any text. A path that is not a valid regular
// expression (the seed's redacted "authorization/***") is matched as
// literal text, with a warning naming field, rather than refusing the API.
func CompilePath(field, path string) (*regexp.Regexp, string) {
	re, err := regexp.Compile(paramPattern.ReplaceAllString(path, "(.*)"))
	if err != nil {
		return regexp.MustCompile(regexp.QuoteMeta(path)),
			fmt.Sprintf("%s: %q is not a valid regular expression (%v); it is matched as literal text", field, path, err)
	}
	return re, ""
}

// The hooks JS middleware runs at, as named in custom_middleware.
const (
	HookPre         = "pre"
	HookPostKeyAuth = "post_key_auth"
	HookPost        = "post"
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
