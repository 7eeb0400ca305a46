package gateway

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// APIDefinition is one Tyk API definition file. JSON names are Tyk's. Only
// what tollgate acts on is a field; any other field in a file is reported
// in one load warning for that file.
type APIDefinition struct {
	// APIID identifies the API; required and unique across app_path.
	APIID string `json:"api_id"`
	// Name is for people and logs.
	Name string `json:"name"`
	// OrgID is the owning organisation, passed to middleware.
	OrgID string `json:"org_id"`
	// Active must be true for the API to be served. A definition without
	// it is inactive, as in Tyk.
	Active bool `json:"active"`
	// UseKeylessAccess serves the API without any key.
	UseKeylessAccess bool `json:"use_keyless"`
	// Proxy says where the API listens and where it forwards to.
	Proxy ProxyConfig `json:"proxy"`
	// VersionData holds the API's versions; global_headers live there.
	VersionData VersionData `json:"version_data"`

	// file is where the definition was read from; "" when built in code.
	file string
}

// ProxyConfig is the definition's proxy section.
type ProxyConfig struct {
	// ListenPath is the path prefix the API is served under, e.g.
	// "/security/". The longest listen_path matching a request wins; a
	// prefix matches only at a "/" boundary ("/a" serves "/a" and "/a/x",
	// not "/ab").
	ListenPath string `json:"listen_path"`
	// TargetURL is the upstream base URL. Required unless every version has
	// an override_target.
	TargetURL string `json:"target_url"`
	// StripListenPath removes the listen path before forwarding:
	// "/security/users" reaches the upstream as "/users".
	StripListenPath bool `json:"strip_listen_path"`
	// PreserveHostHeader forwards the client's Host instead of the
	// upstream's.
	PreserveHostHeader bool `json:"preserve_host_header"`
}

// VersionData is the definition's version_data section.
type VersionData struct {
	// NotVersioned serves one version ("Default", or the only one listed)
	// whatever the request says.
	NotVersioned bool `json:"not_versioned"`
	// Versions by name.
	Versions map[string]VersionInfo `json:"versions"`
}

// VersionInfo is one entry of version_data.versions.
type VersionInfo struct {
	// Name of the version.
	Name string `json:"name"`
	// GlobalHeaders are set on every request forwarded upstream, replacing
	// any value the client sent.
	GlobalHeaders map[string]string `json:"global_headers"`
	// GlobalHeadersRemove are removed from every forwarded request.
	GlobalHeadersRemove []string `json:"global_headers_remove"`
}

// File is the path the definition was loaded from, or "".
func (d *APIDefinition) File() string { return d.file }

// ParseAPIDefinition parses one definition and checks it. Warnings list the
// fields tollgate does not implement.
func ParseAPIDefinition(data []byte) (*APIDefinition, Warnings, error) {
	var def APIDefinition
	rep, err := decodeStrict(data, &def)
	if err != nil {
		return nil, nil, err
	}
	if err := def.validate(); err != nil {
		return nil, nil, err
	}
	var warnings Warnings
	if len(rep.Unknown) > 0 {
		warnings = append(warnings, "fields not implemented by tollgate, ignored: "+strings.Join(rep.Unknown, ", "))
	}
	return &def, warnings, nil
}

// ErrKeyAuthUnavailable is returned for an API that asks for keys: this
// build has no key authentication, and serving such an API without it would
// open it to everyone.
var ErrKeyAuthUnavailable = errors.New("use_keyless: the API requires keys (use_keyless is false), but key authentication is not available in this build; refusing to serve it unauthenticated")

func (d *APIDefinition) validate() error {
	if strings.TrimSpace(d.APIID) == "" {
		return errors.New("api_id: missing; every API needs a unique api_id")
	}
	if !d.UseKeylessAccess {
		return ErrKeyAuthUnavailable
	}
	lp := d.Proxy.ListenPath
	if lp == "" {
		return errors.New("proxy.listen_path: missing; say where the API is served, e.g. \"/my-api/\"")
	}
	if !strings.HasPrefix(lp, "/") {
		return fmt.Errorf("proxy.listen_path: %q must start with \"/\"", lp)
	}
	if d.Proxy.TargetURL == "" {
		return errors.New("proxy.target_url: missing; give the upstream's base URL, e.g. \"http://127.0.0.1:9000\"")
	}
	if _, err := parseTarget(d.Proxy.TargetURL); err != nil {
		return fmt.Errorf("proxy.target_url: %w", err)
	}
	if _, err := d.servedVersion(); err != nil {
		return err
	}
	return nil
}

// servedVersion picks the version whose settings apply to every request.
// Version selection by header or parameter is not part of this build, so a
// definition must be not_versioned, or list exactly one version.
func (d *APIDefinition) servedVersion() (VersionInfo, error) {
	vs := d.VersionData.Versions
	if v, ok := vs["Default"]; ok && (d.VersionData.NotVersioned || len(vs) == 1) {
		return v, nil
	}
	if len(vs) == 0 {
		return VersionInfo{}, nil
	}
	if len(vs) == 1 {
		for _, v := range vs {
			return v, nil
		}
	}
	if d.VersionData.NotVersioned {
		return VersionInfo{}, fmt.Errorf("version_data.versions: not_versioned is true but %d versions are listed and none is named \"Default\"", len(vs))
	}
	return VersionInfo{}, fmt.Errorf("version_data: %d versions are listed, but selecting a version per request is not available in this build; set not_versioned or list one version", len(vs))
}

// parseTarget checks that an upstream URL is absolute http(s).
func parseTarget(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q must be an absolute http:// or https:// URL", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q has no host", raw)
	}
	return u, nil
}

// LoadAPIDefinitions reads every *.json file in dir, in name order. A file
// that cannot be used is reported in the returned error, which names the
// file and the field or line; the other files still load. Inactive APIs
// are skipped without error. Two files with the same api_id or
// listen_path: the first (by name) wins, the second is an error.
func LoadAPIDefinitions(dir string) ([]*APIDefinition, Warnings, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("app_path: %w", err)
	}
	var files []string
	for _, e := range entries {
		if !e.IsDir() && filepath.Ext(e.Name()) == ".json" {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(files)
	var (
		defs     []*APIDefinition
		warnings Warnings
		errs     []error
		byID     = map[string]string{}
		byPath   = map[string]string{}
	)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("loading API definition: %w", err))
			continue
		}
		def, ws, err := ParseAPIDefinition(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("loading API definition %s: %w", f, err))
			continue
		}
		for _, w := range ws {
			warnings = append(warnings, f+": "+w)
		}
		def.file = f
		if !def.Active {
			warnings = append(warnings, fmt.Sprintf("%s: API %q is not served: active is false or missing", f, def.APIID))
			continue
		}
		if other, dup := byID[def.APIID]; dup {
			errs = append(errs, fmt.Errorf("loading API definition %s: api_id: %q is already used by %s", f, def.APIID, other))
			continue
		}
		lp := normalizeListenPath(def.Proxy.ListenPath)
		if other, dup := byPath[lp]; dup {
			errs = append(errs, fmt.Errorf("loading API definition %s: proxy.listen_path: %q is already served by %s", f, def.Proxy.ListenPath, other))
			continue
		}
		byID[def.APIID], byPath[lp] = f, f
		defs = append(defs, def)
	}
	if len(errs) > 0 {
		return defs, warnings, &DefinitionErrors{Errs: errs}
	}
	return defs, warnings, nil
}

// DefinitionErrors are the files of app_path that could not be loaded,
// one error each, naming the file and the field or line.
type DefinitionErrors struct {
	Errs []error
}

func (e *DefinitionErrors) Error() string { return errors.Join(e.Errs...).Error() }

// Unwrap lets errors.Is and errors.As look at each file's error.
func (e *DefinitionErrors) Unwrap() []error { return e.Errs }

// normalizeListenPath drops a trailing slash so "/a" and "/a/" are the
// same route.
func normalizeListenPath(p string) string {
	if len(p) > 1 {
		p = strings.TrimRight(p, "/")
		if p == "" {
			p = "/"
		}
	}
	return p
}
