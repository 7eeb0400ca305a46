// Package granular is the chain's granular-access step, Tyk's
// GranularAccessMiddleware: when a key's access rights for the API list
// allowed_urls, the request's method and path must match one of them, or
// the request is refused with 403.
//
// A pattern is a regular expression; "{name}" stands for one path segment
// and "/*" for any rest of the path. By default (Tyk's legacy match) it may
// match anywhere in the full request path, listen path included. With
// http_server_options.enable_path_prefix_matching a pattern starting with
// "/" is anchored at the start and tried on the path below the listen path
// and on the full path; enable_path_suffix_matching anchors the end too.
package granular

import (
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"sync"

	"github.com/tollgate/tollgate/gateway/apidef"
	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/gateway/session"
)

type step struct {
	match apidef.PathMatching
	log   *slog.Logger

	mu       sync.Mutex
	compiled map[string]*regexp.Regexp // by pattern; nil for an invalid one
}

var _ chain.Step = (*step)(nil)

// maxPatterns bounds the compiled patterns a step keeps: they come from
// sessions, which any control API caller can write.
const maxPatterns = 1024

// New builds the granular-access step.
func New(m apidef.PathMatching, log *slog.Logger) chain.Step {
	return &step{match: m, log: log, compiled: map[string]*regexp.Regexp{}}
}

func (s *step) Serve(c *chain.Call) bool {
	ad, ok := c.Session.AccessRights[c.API.APIID]
	if !ok || len(ad.AllowedURLs) == 0 {
		return true
	}
	full := c.R.URL.Path
	paths := []string{full}
	if s.match.Prefix {
		paths = []string{c.Path, full}
	}
	for _, spec := range ad.AllowedURLs {
		if !slices.Contains(spec.Methods, c.R.Method) {
			continue
		}
		re := s.pattern(spec)
		if re == nil {
			continue
		}
		for _, p := range paths {
			if re.MatchString(p) {
				return true
			}
		}
	}
	s.log.Info("attempted access to an endpoint the key's allowed_urls do not list", "api_id", c.API.APIID, "key_hash", c.KeyHash(), "method", c.R.Method, "path", full)
	chain.WriteError(c.W, c.R, http.StatusForbidden, chain.CauseURLNotAllowed, chain.MsgURLNotAllowed)
	return false
}

// pattern compiles spec's URL once; nil when it is not a valid regular
// expression, which then matches nothing (as in Tyk).
func (s *step) pattern(spec session.AccessSpec) *regexp.Regexp {
	s.mu.Lock()
	re, ok := s.compiled[spec.URL]
	s.mu.Unlock()
	if ok {
		return re
	}
	re, err := regexp.Compile(apidef.PreparePath(spec.URL, s.match))
	if err != nil {
		s.log.Warn("an allowed_urls pattern is not a valid regular expression; it matches nothing", "url", spec.URL, "error", err)
		re = nil
	}
	s.mu.Lock()
	if len(s.compiled) >= maxPatterns {
		clear(s.compiled)
	}
	s.compiled[spec.URL] = re
	s.mu.Unlock()
	return re
}
