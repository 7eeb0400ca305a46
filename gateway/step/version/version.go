// Package version is the chain's version step: it resolves the version a
// request asks for (header, url-param or url), refuses missing, unknown and
// expired versions, applies the version's path lists (extended_paths, or
// the legacy paths: black_list and white_list refuse, ignored marks the
// request as needing no key, a "reply" action answers in place of the
// upstream), and hands the later steps the version's name and its
// upstream proxy.
//
// The lists match as Tyk's VersionCheck does (gateway/api_definition.go,
// URLAllowedAndIgnored): entries of ignored, then black_list, then
// white_list, each pattern tried on the path below the listen path and on
// the full path; the first entry whose path and method match decides, and
// once a white_list entry is enabled whatever no entry decides is refused.
package version

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
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
	name    string
	expires time.Time // zero: never
	// expiryEnforced: requests after expires are refused; a not_versioned
	// API's version never expires, as in Tyk (TestOldVersioning_Expires).
	expiryEnforced bool
	// rules are the enabled entries of ignored, black_list and white_list,
	// in that order.
	rules []pathRule
	// whiteListed: some white_list entry is enabled, so a request no entry
	// decides is refused.
	whiteListed bool
	proxy       http.Handler
}

// list names the path list an entry comes from.
type list int

const (
	ignoredList list = iota
	blackList
	whiteList
)

// pathRule is one enabled entry of a path list.
type pathRule struct {
	list list
	re   *regexp.Regexp
	// actions are the entry's method_actions by method; nil when it has
	// none, and then method says which requests it applies to ("": all).
	actions map[string]action
	method  string
}

// action is what an entry does for one method.
type action struct {
	kind    actionKind
	code    int
	data    []byte
	headers map[string]string
}

type actionKind int

const (
	applyList actionKind = iota // no_action: ignore, refuse or allow as the list says
	reply                       // answer with code, data and headers
	refuse                      // an action Tyk does not know: 403
)

// matches tells whether the entry's pattern is found in the path below the
// listen path or in the full path, as Tyk tries both.
func (p *pathRule) matches(rel, full string) bool {
	return p.re.MatchString(rel) || (full != rel && p.re.MatchString(full))
}

// actionFor is what the entry does for method; false when the entry does
// not apply to method.
func (p *pathRule) actionFor(method string) (action, bool) {
	if p.actions != nil {
		a, ok := p.actions[method]
		return a, ok
	}
	if p.method != "" && p.method != method {
		return action{}, false
	}
	return action{kind: applyList}, true
}

// Matching is how path lists match: tyk.conf's http_server_options and
// ignore_endpoint_case.
type Matching struct {
	apidef.PathMatching
	// IgnoreCase matches every entry case-insensitively.
	IgnoreCase bool
}

// New compiles the versions of def, each with its proxy over transport.
// Warnings report entries that load but may not do what their author
// meant.
func New(def *apidef.APIDefinition, m Matching, transport http.RoundTripper, log *slog.Logger) (chain.Step, []string, error) {
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
		v, ws, err := compileVersion(def, name, versions[name], m, transport, log)
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

func compileVersion(def *apidef.APIDefinition, name string, v apidef.VersionInfo, m Matching, transport http.RoundTripper, log *slog.Logger) (*compiled, []string, error) {
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
	// A not_versioned API forwards to target_url whatever its version
	// says, as Tyk does (TestNotVersioned).
	if v.OverrideTarget != "" && !def.VersionData.NotVersioned {
		targetRaw, targetField = v.OverrideTarget, field+".override_target"
	}
	target, err := apidef.ParseTarget(targetRaw)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", targetField, err)
	}
	settings := upstream.Settings{
		Target: target, ListenPath: def.ListenPath(), Strip: def.Proxy.StripListenPath,
		DisableStripSlash: def.Proxy.DisableStripSlash, PreserveHost: def.Proxy.PreserveHostHeader,
	}
	if !v.GlobalHeadersDisabled {
		settings.SetHeaders, settings.RemoveHeaders = v.GlobalHeaders, v.GlobalHeadersRemove
	}
	vs.proxy = upstream.New(settings, def.APIID, transport, log)
	vs.expiryEnforced = !def.VersionData.NotVersioned
	warnings := compileLists(vs, field, v, m)
	return vs, warnings, nil
}

// compileLists compiles the version's path lists into vs: extended_paths
// when use_extended_paths is on, the legacy paths otherwise, as in Tyk.
func compileLists(vs *compiled, field string, v apidef.VersionInfo, m Matching) []string {
	var warnings []string
	ext, legacy := v.ExtendedPaths, v.Paths
	nExt := len(ext.Ignored) + len(ext.BlackList) + len(ext.WhiteList)
	nLegacy := len(legacy.Ignored) + len(legacy.BlackList) + len(legacy.WhiteList)
	add := func(l list, at string, e apidef.EndpointMeta, ignoreCase bool) {
		rule, ws := compileEntry(at, l, e, m.PathMatching, ignoreCase)
		warnings = append(warnings, ws...)
		vs.rules = append(vs.rules, rule)
		if l == whiteList {
			vs.whiteListed = true
		}
	}
	if !v.UseExtendedPaths {
		if nExt > 0 {
			warnings = append(warnings, fmt.Sprintf("%s.extended_paths: %d entries are not applied because use_extended_paths is false", field, nExt))
		}
		if nLegacy > 0 && v.IgnoreEndpointCase && !m.IgnoreCase {
			warnings = append(warnings, fmt.Sprintf("%s.ignore_endpoint_case: not applied to paths, as in Tyk; only tyk.conf's ignore_endpoint_case is", field))
		}
		for _, l := range []struct {
			list
			name  string
			paths []string
		}{{ignoredList, "ignored", legacy.Ignored}, {blackList, "black_list", legacy.BlackList}, {whiteList, "white_list", legacy.WhiteList}} {
			for i, p := range l.paths {
				add(l.list, fmt.Sprintf("%s.paths.%s[%d]", field, l.name, i), apidef.EndpointMeta{Path: p}, m.IgnoreCase)
			}
		}
		return warnings
	}
	if nLegacy > 0 {
		warnings = append(warnings, fmt.Sprintf("%s.paths: %d entries are not applied because use_extended_paths is true", field, nLegacy))
	}
	for _, l := range []struct {
		list
		name    string
		entries []apidef.EndpointMeta
	}{{ignoredList, "ignored", ext.Ignored}, {blackList, "black_list", ext.BlackList}, {whiteList, "white_list", ext.WhiteList}} {
		for i, e := range l.entries {
			if e.Disabled {
				continue
			}
			at := fmt.Sprintf("%s.extended_paths.%s[%d]", field, l.name, i)
			if e.MethodActions == nil && e.Method == "" {
				warnings = append(warnings, fmt.Sprintf("%s: neither method_actions nor method is set, so the entry applies to every method, as in Tyk", at))
			}
			add(l.list, at, e, m.IgnoreCase || v.IgnoreEndpointCase || e.IgnoreCase)
		}
	}
	return warnings
}

// compileEntry compiles one entry of a path list.
func compileEntry(at string, l list, e apidef.EndpointMeta, m apidef.PathMatching, ignoreCase bool) (pathRule, []string) {
	var warnings []string
	rule := pathRule{list: l}
	if e.Path == "" {
		warnings = append(warnings, fmt.Sprintf("%s.path: empty, so the entry matches every path", at))
	}
	re, w := apidef.CompilePath(at+".path", e.Path, m, ignoreCase)
	if w != "" {
		warnings = append(warnings, w)
	}
	rule.re = re
	if e.MethodActions == nil {
		rule.method = e.Method
		if e.Method != strings.ToUpper(e.Method) {
			warnings = append(warnings, fmt.Sprintf("%s.method: methods are matched case-sensitively, so no request has method %q", at, e.Method))
		}
		return rule, warnings
	}
	if e.Method != "" {
		warnings = append(warnings, fmt.Sprintf("%s.method: not read because method_actions is set, as in Tyk", at))
	}
	if len(e.MethodActions) == 0 {
		warnings = append(warnings, fmt.Sprintf("%s.method_actions: empty, so the entry matches no request", at))
	}
	rule.actions = make(map[string]action, len(e.MethodActions))
	methods := make([]string, 0, len(e.MethodActions))
	for method := range e.MethodActions {
		methods = append(methods, method)
	}
	slices.Sort(methods)
	for _, method := range methods {
		meta := e.MethodActions[method]
		if method != strings.ToUpper(method) {
			warnings = append(warnings, fmt.Sprintf("%s.method_actions.%s: methods are matched case-sensitively, so no request has method %q", at, method, method))
		}
		a := action{kind: applyList}
		switch meta.Action {
		case apidef.ActionNoAction:
		case apidef.ActionReply:
			a = action{kind: reply, code: meta.Code, data: []byte(meta.Data), headers: meta.Headers}
			if meta.Code < 100 || meta.Code > 999 {
				warnings = append(warnings, fmt.Sprintf("%s.method_actions.%s.code: %d is not an HTTP status; the reply is sent with 200 (Tyk fails the request)", at, method, meta.Code))
				a.code = http.StatusOK
			}
		default:
			a.kind = refuse
			warnings = append(warnings, fmt.Sprintf("%s.method_actions.%s.action: %q is neither %q nor %q, so these requests are refused with 403, as in Tyk", at, method, meta.Action, apidef.ActionNoAction, apidef.ActionReply))
		}
		rule.actions[method] = a
	}
	return rule, warnings
}

func (s *step) Serve(c *chain.Call) bool {
	v := s.fixed
	if v == nil {
		name, repeated := requested(c.R, s.def.Definition, c.Path)
		if repeated {
			chain.WriteError(c.W, c.R, http.StatusBadRequest, chain.CauseVersionRepeated, chain.MsgVersionRepeated+versionSource(s.def.Definition))
			return false
		}
		if name == "" {
			v = s.fallback
			if v == nil {
				chain.WriteError(c.W, c.R, http.StatusForbidden, chain.CauseVersionMissing, chain.MsgVersionMissing)
				return false
			}
		} else if v = s.versions[name]; v == nil {
			chain.WriteError(c.W, c.R, http.StatusForbidden, chain.CauseVersionUnknown, chain.MsgVersionUnknown)
			return false
		}
	}
	if v.expiryEnforced && !v.expires.IsZero() && !c.Now.Before(v.expires) {
		chain.WriteError(c.W, c.R, http.StatusForbidden, chain.CauseVersionExpired, chain.MsgVersionExpired)
		return false
	}
	if !s.def.VersionData.NotVersioned {
		stripVersion(c, s.def.Definition)
	}
	c.Version, c.Upstream = v.name, v.proxy
	method, full := c.R.Method, c.R.URL.Path
	for i := range v.rules {
		rule := &v.rules[i]
		if !rule.matches(c.Path, full) {
			continue
		}
		a, ok := rule.actionFor(method)
		if !ok {
			continue
		}
		switch {
		case a.kind == reply:
			a.write(c.W)
			return false
		case a.kind == refuse || rule.list == blackList:
			chain.WriteError(c.W, c.R, http.StatusForbidden, chain.CauseEndpointForbidden, chain.MsgEndpointForbidden)
			return false
		case rule.list == ignoredList:
			c.Ignored = true
		}
		return pass(c, v)
	}
	if v.whiteListed {
		chain.WriteError(c.W, c.R, http.StatusForbidden, chain.CauseEndpointForbidden, chain.MsgEndpointForbidden)
		return false
	}
	return pass(c, v)
}

// stripVersion removes the version the request named from it, when the
// definition says so (strip_versioning_data, or strip_path with "url"), as
// Tyk's APISpec.Version does: the path lists, the later steps and the
// upstream see the request without it.
func stripVersion(c *chain.Call, d apidef.VersionDefinition) {
	switch {
	case d.Location == "url" && (d.StripVersioningData || d.StripPath):
		seg, rest, ok := strings.Cut(strings.TrimPrefix(c.Path, "/"), "/")
		if !ok || seg == "" {
			return // "/v1" alone: Tyk strips only the segment with its slash
		}
		// c.Path is the end of the request path (see chain.relativePath).
		u := c.R.URL
		prefix := u.Path[:len(u.Path)-len(c.Path)]
		if u.RawPath != "" {
			rawSeg := "/" + url.PathEscape(seg) + "/"
			if rawRest, found := strings.CutPrefix(u.RawPath, prefix+rawSeg); found {
				u.RawPath = prefix + "/" + rawRest
			} else {
				u.RawPath = "" // re-encoded from Path
			}
		}
		c.Path = "/" + rest
		u.Path = prefix + c.Path
	case d.Location == "url-param" && d.StripVersioningData:
		q := c.R.URL.Query()
		q.Del(d.Key)
		c.R.URL.RawQuery = q.Encode()
	case (d.Location == "" || d.Location == "header") && d.StripVersioningData:
		c.R.Header.Del(d.Key)
	}
}

// pass lets the request through; like Tyk, only a request that passes
// is told when its version expires.
func pass(c *chain.Call, v *compiled) bool {
	if !v.expires.IsZero() && c.Now.Before(v.expires) {
		c.W.Header().Set("X-Tyk-Api-Expires", v.expires.UTC().Format(http.TimeFormat))
	}
	return true
}

// write sends a reply action's answer, as Tyk's mock reply does: the
// headers added, the code, the data.
func (a action) write(w http.ResponseWriter) {
	for k, val := range a.headers {
		w.Header().Add(k, val)
	}
	w.WriteHeader(a.code)
	_, _ = w.Write(a.data)
}

// requested reads the version name where the definition says; repeated
// reports a parameter or header given more than once, whose values the
// gateway and the upstream might read differently.
func requested(r *http.Request, d apidef.VersionDefinition, path string) (name string, repeated bool) {
	switch d.Location {
	case "url-param":
		values := r.URL.Query()[d.Key]
		if len(values) == 0 {
			return "", false
		}
		return values[0], len(values) > 1
	case "url":
		seg, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
		return seg, false
	default:
		values := r.Header.Values(d.Key)
		if len(values) == 0 {
			return "", false
		}
		return values[0], len(values) > 1
	}
}

// versionSource names where the version is read, for the error of a
// repeated one.
func versionSource(d apidef.VersionDefinition) string {
	if d.Location == "url-param" {
		return "the query parameter " + d.Key
	}
	return "the header " + http.CanonicalHeaderKey(d.Key)
}
