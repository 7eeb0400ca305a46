package gateway

import (
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/tollgate/tollgate/gateway/event"
)

// versionExpiryLayout is the format of version_data.versions.*.expires.
const versionExpiryLayout = "2006-01-02 15:04"

// apiSpec is an API definition compiled for serving: its versions with
// their proxies and path rules, and its chain.
type apiSpec struct {
	gw         *Gateway
	def        *APIDefinition
	listenPath string
	versions   map[string]*versionSpec
	// fixed is the version every request gets when the API is not
	// versioned (or lists one version); nil when the request must say.
	fixed    *versionSpec
	fallback *versionSpec // default_version
	chain    []step
	// events are the API's event handlers by event name.
	events map[event.Name][]eventHandler
}

// versionSpec is one version, compiled.
type versionSpec struct {
	name      string
	expires   time.Time // zero: never
	ignored   []pathRule
	blackList []pathRule
	whiteList []pathRule
	proxy     *proxy
}

// pathRule is one extended_paths entry.
type pathRule struct {
	re      *regexp.Regexp
	methods map[string]bool
}

func (p pathRule) matches(method, path string) bool {
	return p.methods[method] && p.re.MatchString(path)
}

// compileAPI turns a definition into an apiSpec. Warnings report entries
// that load but may not do what their author meant.
func (g *Gateway) compileAPI(def *APIDefinition) (*apiSpec, []string, error) {
	api := &apiSpec{gw: g, def: def, listenPath: normalizeListenPath(def.Proxy.ListenPath), versions: map[string]*versionSpec{}}
	var warnings []string
	versions := def.VersionData.Versions
	if len(versions) == 0 {
		versions = map[string]VersionInfo{"Default": {Name: "Default"}}
	}
	names := make([]string, 0, len(versions))
	for name := range versions {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		vs, ws, err := g.compileVersion(def, api.listenPath, name, versions[name])
		if err != nil {
			return nil, nil, err
		}
		warnings = append(warnings, ws...)
		api.versions[name] = vs
	}
	switch {
	case len(def.VersionData.Versions) == 0:
		api.fixed = api.versions["Default"]
	case def.VersionData.NotVersioned && api.versions["Default"] != nil:
		api.fixed = api.versions["Default"]
	case def.VersionData.NotVersioned:
		api.fixed = api.versions[names[0]] // validated: the only one
	}
	if dv := def.VersionData.DefaultVersion; dv != "" {
		api.fallback = api.versions[dv]
	}
	js, err := g.compileJS(def)
	if err != nil {
		return nil, nil, err
	}
	events, ws, err := g.compileEventHandlers(def.EventHandlers, "event_handlers")
	if err != nil {
		return nil, nil, err
	}
	api.events = events
	warnings = append(warnings, ws...)
	cors, ws, err := g.corsSteps(def)
	if err != nil {
		return nil, nil, err
	}
	warnings = append(warnings, ws...)
	cache, ws, err := g.cacheSteps(def)
	if err != nil {
		return nil, nil, err
	}
	warnings = append(warnings, ws...)
	api.chain = g.buildChain(api, js, cors, cache)
	return api, warnings, nil
}

func (g *Gateway) compileVersion(def *APIDefinition, listenPath, name string, v VersionInfo) (*versionSpec, []string, error) {
	field := "version_data.versions." + name
	vs := &versionSpec{name: name}
	if v.Expires != "" && v.Expires != "-1" {
		t, err := time.Parse(versionExpiryLayout, v.Expires)
		if err != nil {
			return nil, nil, fmt.Errorf("%s.expires: %q is not a date like %q", field, v.Expires, versionExpiryLayout)
		}
		vs.expires = t
	}
	targetRaw, targetField := def.Proxy.TargetURL, "proxy.target_url"
	if v.OverrideTarget != "" {
		targetRaw, targetField = v.OverrideTarget, field+".override_target"
	}
	target, err := parseTarget(targetRaw)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", targetField, err)
	}
	set, remove := headerSettings(v)
	vs.proxy = newProxy(proxySettings{
		target: target, listenPath: listenPath, strip: def.Proxy.StripListenPath,
		preserveHost: def.Proxy.PreserveHostHeader, setHeaders: set, removeHeaders: remove,
	}, def.APIID, g.transport, g.log)

	var warnings []string
	if !v.UseExtendedPaths {
		if n := len(v.ExtendedPaths.Ignored) + len(v.ExtendedPaths.BlackList) + len(v.ExtendedPaths.WhiteList); n > 0 {
			warnings = append(warnings, fmt.Sprintf("%s.extended_paths: %d entries are not applied because use_extended_paths is false", field, n))
		}
		return vs, warnings, nil
	}
	lists := []struct {
		name  string
		in    []EndpointMeta
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

// paramPattern matches "{name}" path parameters.
var paramPattern = regexp.MustCompile(`\{[^/{}]*\}`)

// compilePathRule compiles one extended_paths entry. A path that is not a
// valid regular expression (the seed's redacted "authorization/***") is
// matched as literal text, with a warning, rather than refusing the API.
func compilePathRule(at string, e EndpointMeta) (pathRule, []string) {
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
	pattern := paramPattern.ReplaceAllString(e.Path, "(.*)")
	re, err := regexp.Compile(pattern)
	if err != nil {
		warnings = append(warnings, fmt.Sprintf("%s.path: %q is not a valid regular expression (%v); it is matched as literal text", at, e.Path, err))
		re = regexp.MustCompile(regexp.QuoteMeta(e.Path))
	}
	rule.re = re
	return rule, warnings
}

// versionCheck resolves the request's version and applies its
// extended_paths.
type versionCheck struct{}

var _ step = versionCheck{}

func (versionCheck) serve(c *call) bool {
	api := c.api
	v := api.fixed
	if v == nil {
		name := requestedVersion(c.r, api.def.Definition, c.path)
		if name == "" {
			v = api.fallback
			if v == nil {
				writeError(c.w, http.StatusForbidden, CauseVersionMissing, msgVersionMissing)
				return false
			}
		} else if v = api.versions[name]; v == nil {
			writeError(c.w, http.StatusForbidden, CauseVersionUnknown, msgVersionUnknown)
			return false
		}
	}
	if !v.expires.IsZero() {
		if !c.now.Before(v.expires) {
			writeError(c.w, http.StatusForbidden, CauseVersionExpired, msgVersionExpired)
			return false
		}
		c.w.Header().Set("X-Tyk-Api-Expires", v.expires.UTC().Format(http.TimeFormat))
	}
	c.version = v
	method := c.r.Method
	for _, rule := range v.blackList {
		if rule.matches(method, c.path) {
			writeError(c.w, http.StatusForbidden, CauseEndpointForbidden, msgEndpointForbidden)
			return false
		}
	}
	for _, rule := range v.ignored {
		if rule.matches(method, c.path) {
			c.ignored = true
			return true
		}
	}
	if len(v.whiteList) > 0 {
		for _, rule := range v.whiteList {
			if rule.matches(method, c.path) {
				return true
			}
		}
		writeError(c.w, http.StatusForbidden, CauseEndpointForbidden, msgEndpointForbidden)
		return false
	}
	return true
}

// requestedVersion reads the version name where the definition says.
func requestedVersion(r *http.Request, d VersionDefinition, path string) string {
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
