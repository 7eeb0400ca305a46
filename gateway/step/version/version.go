// Package version is the chain's version step: it resolves the version a
// request asks for (header, url-param or url), refuses missing, unknown and
// expired versions, applies the version's extended_paths (black_list and
// white_list refuse; ignored marks the request as needing no key), and
// hands the later steps the version's name and its upstream proxy.
package version

import (
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/tollgate/tollgate/gateway/apidef"
	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/gateway/upstream"
)

// expiryLayout is the format of version_data.versions.*.expires.
const expiryLayout = "2006-01-02 15:04"

// step is an API's versions, compiled.
type step struct {
	def      *apidef.APIDefinition
	versions map[string]*compiled
	// fixed is the version every request gets when the API is not
	// versioned (or lists one version); nil when the request must say.
	fixed    *compiled
	fallback *compiled // default_version
}

var _ chain.Step = (*step)(nil)

// compiled is one version, compiled.
type compiled struct {
	name      string
	expires   time.Time // zero: never
	ignored   []pathRule
	blackList []pathRule
	whiteList []pathRule
	proxy     http.Handler
}

// pathRule is one extended_paths entry.
type pathRule struct {
	re      *regexp.Regexp
	methods map[string]bool
}

func (p pathRule) matches(method, path string) bool {
	return p.methods[method] && p.re.MatchString(path)
}

// New compiles the versions of def, each with its proxy over transport.
// Warnings report entries that load but may not do what their author
// meant.
func New(def *apidef.APIDefinition, transport http.RoundTripper, log *slog.Logger) (chain.Step, []string, error) {
	s := &step{def: def, versions: map[string]*compiled{}}
	var warnings []string
	versions := def.VersionData.Versions
	if len(versions) == 0 {
		versions = map[string]apidef.VersionInfo{"Default": {Name: "Default"}}
	}
	names := make([]string, 0, len(versions))
	for name := range versions {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		v, ws, err := compileVersion(def, name, versions[name], transport, log)
		if err != nil {
			return nil, nil, err
		}
		warnings = append(warnings, ws...)
		s.versions[name] = v
	}
	switch {
	case len(def.VersionData.Versions) == 0:
		s.fixed = s.versions["Default"]
	case def.VersionData.NotVersioned && s.versions["Default"] != nil:
		s.fixed = s.versions["Default"]
	case def.VersionData.NotVersioned:
		s.fixed = s.versions[names[0]] // validated: the only one
	}
	if dv := def.VersionData.DefaultVersion; dv != "" {
		s.fallback = s.versions[dv]
	}
	return s, warnings, nil
}

func compileVersion(def *apidef.APIDefinition, name string, v apidef.VersionInfo, transport http.RoundTripper, log *slog.Logger) (*compiled, []string, error) {
	field := "version_data.versions." + name
	vs := &compiled{name: name}
	if v.Expires != "" && v.Expires != "-1" {
		t, err := time.Parse(expiryLayout, v.Expires)
		if err != nil {
			return nil, nil, fmt.Errorf("%s.expires: %q is not a date like %q", field, v.Expires, expiryLayout)
		}
		vs.expires = t
	}
	targetRaw, targetField := def.Proxy.TargetURL, "proxy.target_url"
	if v.OverrideTarget != "" {
		targetRaw, targetField = v.OverrideTarget, field+".override_target"
	}
	target, err := apidef.ParseTarget(targetRaw)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", targetField, err)
	}
	vs.proxy = upstream.New(upstream.Settings{
		Target: target, ListenPath: def.ListenPath(), Strip: def.Proxy.StripListenPath,
		PreserveHost: def.Proxy.PreserveHostHeader, SetHeaders: v.GlobalHeaders, RemoveHeaders: v.GlobalHeadersRemove,
	}, def.APIID, transport, log)

	var warnings []string
	if !v.UseExtendedPaths {
		if n := len(v.ExtendedPaths.Ignored) + len(v.ExtendedPaths.BlackList) + len(v.ExtendedPaths.WhiteList); n > 0 {
			warnings = append(warnings, fmt.Sprintf("%s.extended_paths: %d entries are not applied because use_extended_paths is false", field, n))
		}
		return vs, warnings, nil
	}
	lists := []struct {
		name  string
		in    []apidef.EndpointMeta
		rules *[]pathRule
	}{
		{"ignored", v.ExtendedPaths.Ignored, &vs.ignored},
		{"black_list", v.ExtendedPaths.BlackList, &vs.blackList},
		{"white_list", v.ExtendedPaths.WhiteList, &vs.whiteList},
	}
	for _, l := range lists {
		for i, e := range l.in {
			at := fmt.Sprintf("%s.extended_paths.%s[%d]", field, l.name, i)
			rule, ws := compilePathRule(at, e)
			warnings = append(warnings, ws...)
			*l.rules = append(*l.rules, rule)
		}
	}
	return vs, warnings, nil
}

// compilePathRule compiles one extended_paths entry.
func compilePathRule(at string, e apidef.EndpointMeta) (pathRule, []string) {
	var warnings []string
	rule := pathRule{methods: map[string]bool{}}
	for m, meta := range e.MethodActions {
		rule.methods[strings.ToUpper(m)] = true
		if meta.Action != "" && meta.Action != "no_action" {
			warnings = append(warnings, fmt.Sprintf("%s.method_actions.%s.action: %q is not implemented; the entry acts as no_action", at, m, meta.Action))
		}
	}
	if len(rule.methods) == 0 {
		warnings = append(warnings, fmt.Sprintf("%s.method_actions: empty, so the entry matches no request", at))
	}
	re, w := apidef.CompilePath(at+".path", e.Path, apidef.PathMatching{}, false)
	if w != "" {
		warnings = append(warnings, w)
	}
	rule.re = re
	return rule, warnings
}

func (s *step) Serve(c *chain.Call) bool {
	v := s.fixed
	if v == nil {
		name := requested(c.R, s.def.Definition, c.Path)
		if name == "" {
			v = s.fallback
			if v == nil {
				chain.WriteError(c.W, http.StatusForbidden, chain.CauseVersionMissing, chain.MsgVersionMissing)
				return false
			}
		} else if v = s.versions[name]; v == nil {
			chain.WriteError(c.W, http.StatusForbidden, chain.CauseVersionUnknown, chain.MsgVersionUnknown)
			return false
		}
	}
	if !v.expires.IsZero() {
		if !c.Now.Before(v.expires) {
			chain.WriteError(c.W, http.StatusForbidden, chain.CauseVersionExpired, chain.MsgVersionExpired)
			return false
		}
		c.W.Header().Set("X-Tyk-Api-Expires", v.expires.UTC().Format(http.TimeFormat))
	}
	c.Version, c.Upstream = v.name, v.proxy
	method := c.R.Method
	for _, rule := range v.blackList {
		if rule.matches(method, c.Path) {
			chain.WriteError(c.W, http.StatusForbidden, chain.CauseEndpointForbidden, chain.MsgEndpointForbidden)
			return false
		}
	}
	for _, rule := range v.ignored {
		if rule.matches(method, c.Path) {
			c.Ignored = true
			return true
		}
	}
	if len(v.whiteList) > 0 {
		for _, rule := range v.whiteList {
			if rule.matches(method, c.Path) {
				return true
			}
		}
		chain.WriteError(c.W, http.StatusForbidden, chain.CauseEndpointForbidden, chain.MsgEndpointForbidden)
		return false
	}
	return true
}

// requested reads the version name where the definition says.
func requested(r *http.Request, d apidef.VersionDefinition, path string) string {
	switch d.Location {
	case "url-param":
		return r.URL.Query().Get(d.Key)
	case "url":
		seg, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
		return seg
	default:
		return r.Header.Get(d.Key)
	}
}
