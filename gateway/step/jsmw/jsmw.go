// Package jsmw is the chain's JS middleware step: custom_middleware run on
// otto through gateway/jsvm, at the pre, post_key_auth and post hooks.
// An API's middleware are compiled once, at load, into one Program (as in
// Tyk, one namespace per API).
package jsmw

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"time"

	"github.com/tollgate/tollgate/gateway/apidef"
	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/gateway/conffile"
	"github.com/tollgate/tollgate/gateway/jsvm"
)

const (
	// maxBody bounds the request body handed to JS middleware.
	maxBody = 10 << 20
	// idleVMs is how many reset VMs each API keeps for reuse.
	idleVMs = 64
)

// Options is what compiling an API's JS middleware needs.
type Options struct {
	// EnableJSVM is tyk.conf's enable_jsvm: without it an API with JS
	// middleware is refused.
	EnableJSVM bool
	Timeout    time.Duration
	Log        *slog.Logger
	RawLog     io.Writer
	// Host gives scripts the gateway's keys and routing.
	Host jsvm.Host
	// Client makes TykMakeHttpRequest's requests.
	Client *http.Client
	// ResolvePath resolves a middleware's path as tyk.conf's paths are.
	ResolvePath func(string) string
	// MaxScriptSize bounds each middleware file, in bytes (tyk.conf's
	// max_script_size); <= 0 means conffile.DefaultMaxSize.
	MaxScriptSize int64
	// Memory stops the API's JS runs, and its scripts' load, when the heap
	// passes its limit; nil means none.
	Memory *jsvm.MemoryBudget
	// UserCorePath is tyk.conf's tyk_js_path, resolved: a script loaded
	// before every API's middleware; "" means none.
	UserCorePath string
	// KeepHeaderCase sets SetHeaders with their names as the script wrote
	// them (tyk.conf's ignore_canonical_mime_header_key).
	KeepHeaderCase bool
}

// Set is an API's JS middleware: one compiled Program and a step per
// middleware, by hook. A nil Set has none.
type Set struct {
	prog  *jsvm.Program
	steps map[string][]chain.Step
	// authCheck is custom_middleware.auth_check when the API
	// authenticates with it, else nil.
	authCheck *middleware
}

// Steps are the middleware of hook, in order.
func (s *Set) Steps(hook string) []chain.Step {
	if s == nil {
		return nil
	}
	return s.steps[hook]
}

// Stats reports the API's JS runtime counters: how many VMs were made,
// reused, discarded. Zero without JS middleware.
func (s *Set) Stats() jsvm.Stats {
	if s == nil {
		return jsvm.Stats{}
	}
	return s.prog.Stats()
}

// middleware runs one JS middleware of an API.
type middleware struct {
	prog           *jsvm.Program
	log            *slog.Logger
	name           string
	hook           string
	requireSession bool
	keepHeaderCase bool
}

var _ chain.Step = (*middleware)(nil)

// Compile loads and compiles an API's JS middleware, once, at load. It
// returns nil when the API has none.
func Compile(def *apidef.APIDefinition, o Options) (*Set, error) {
	cm := def.CustomMiddleware
	var sources []jsvm.Source
	type entry struct {
		hook string
		def  apidef.MiddlewareDefinition
	}
	var entries []entry
	hooks := cm.Hooks()
	if def.CustomAuth() && !def.UseKeylessAccess && !cm.AuthCheck.Disabled {
		hooks = append(hooks, apidef.Hook{Name: apidef.HookAuthCheck, Defs: []apidef.MiddlewareDefinition{cm.AuthCheck}})
	}
	for _, h := range hooks {
		for i, md := range h.Defs {
			if md.Disabled {
				continue
			}
			field := fmt.Sprintf("custom_middleware.%s[%d]", h.Name, i)
			if h.Name == apidef.HookAuthCheck {
				field = "custom_middleware.auth_check"
			}
			if md.Name == "" {
				return nil, fmt.Errorf("%s.name: missing; name the middleware's global variable", field)
			}
			path := o.ResolvePath(md.Path)
			code, err := conffile.Read(path, o.MaxScriptSize)
			if errors.Is(err, conffile.ErrTooLarge) {
				err = fmt.Errorf("%w (max_script_size in tyk.conf)", err)
			}
			if err != nil {
				return nil, fmt.Errorf("%s.path: %w", field, err)
			}
			sources = append(sources, jsvm.Source{Name: md.Name, File: path, Code: code})
			entries = append(entries, entry{h.Name, md})
		}
	}
	if len(entries) == 0 {
		return nil, nil
	}
	if cm.Driver != "" && cm.Driver != "otto" {
		return nil, fmt.Errorf("custom_middleware.driver: %q is not supported; tollgate runs JS middleware on otto", cm.Driver)
	}
	if !o.EnableJSVM {
		return nil, errors.New("custom_middleware: the API has JS middleware but enable_jsvm is false in tyk.conf")
	}
	log := o.Log.With("api_id", def.APIID)
	var userCore *jsvm.Source
	if o.UserCorePath != "" {
		code, err := conffile.Read(o.UserCorePath, o.MaxScriptSize)
		switch {
		case errors.Is(err, conffile.ErrTooLarge):
			return nil, fmt.Errorf("tyk_js_path in tyk.conf: %w (max_script_size in tyk.conf)", err)
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			// A named pipe, a device or a read that never ends is not the
			// old Tyk 2 default gone missing: the operator should hear of
			// it, as of any other file the gateway must not read.
			return nil, fmt.Errorf("tyk_js_path in tyk.conf: %w", err)
		case err != nil:
			// As Tyk: tyk.conf files often keep Tyk 2's "./js/tyk.js",
			// Tyk's own core then, which tollgate has built in.
			log.Warn("tyk_js_path in tyk.conf cannot be read; the JS middleware runs without it, as in Tyk", "error", err)
		default:
			userCore = &jsvm.Source{File: o.UserCorePath, Code: code}
		}
	}
	configData := def.ConfigData
	if def.ConfigDataDisabled {
		configData = nil
	}
	prog, err := jsvm.Compile(jsvm.Spec{APIID: def.APIID, OrgID: def.OrgID, ConfigData: configData}, sources, jsvm.Config{
		Timeout: o.Timeout,
		Log:     log.With("prefix", "jsvm"),
		RawLog:  o.RawLog,
		Host:    o.Host,
		Client:  o.Client,
		Memory:  o.Memory,
		// Idle VMs kept for reuse: enough for the requests a gateway runs
		// at once, so a burst does not copy VMs afresh. An idle VM holds
		// the compiled scripts' heap, tens of KiB for small middleware.
		MaxIdle:  idleVMs,
		UserCore: userCore,
	})
	if err != nil {
		return nil, fmt.Errorf("custom_middleware: %w", err)
	}
	set := &Set{prog: prog, steps: map[string][]chain.Step{}}
	for _, e := range entries {
		m := &middleware{
			prog: prog, log: log, name: e.def.Name, hook: e.hook, keepHeaderCase: o.KeepHeaderCase,
			// pre and auth_check run before there is a session: Tyk
			// gives them an empty one.
			requireSession: e.def.RequireSession && e.hook != apidef.HookPre && e.hook != apidef.HookAuthCheck,
		}
		if e.hook == apidef.HookAuthCheck {
			set.authCheck = m
			continue
		}
		set.steps[e.hook] = append(set.steps[e.hook], m)
	}
	return set, nil
}

func (m *middleware) Serve(c *chain.Call) bool {
	body, res, ok := m.run(c)
	if !ok {
		return false
	}
	if !apply(c, body, res.Request, m.keepHeaderCase) {
		return false
	}
	if m.requireSession && c.Session != nil && res.SessionMeta != nil && !reflect.DeepEqual(c.Session.MetaData, res.SessionMeta) {
		if !c.SessionDirty {
			c.MetaBefore = c.Session.MetaData
		}
		c.Session.MetaData = res.SessionMeta
		c.SessionDirty = true
	}
	return true
}

// run runs the middleware on the request; on a failure it answers the
// request with a 500 and returns false. body is the request body the
// middleware was given.
func (m *middleware) run(c *chain.Call) (body []byte, res *jsvm.Result, ok bool) {
	body, ok = c.Body(maxBody)
	if !ok {
		return nil, nil, false
	}
	r := c.R
	req := jsvm.Request{
		Headers:    r.Header,
		Body:       string(body),
		URL:        r.URL.String(),
		Params:     r.URL.Query(),
		Method:     r.Method,
		RequestURI: r.RequestURI,
		Scheme:     "http",
	}
	if r.TLS != nil {
		req.Scheme = "https"
	}
	sessionJSON := []byte("{}")
	if m.requireSession && c.Session != nil {
		var err error
		if sessionJSON, err = c.Session.MarshalJSON(); err != nil {
			sessionJSON = []byte("{}")
		}
	}
	res, err := m.prog.Run(r.Context(), m.name, req, sessionJSON)
	if err != nil {
		log := m.log.With("middleware", m.name, "hook", m.hook)
		if c.Key != "" {
			log = log.With("key_hash", c.KeyHash())
		}
		switch {
		case errors.Is(err, jsvm.ErrTimeout):
			log.Error("JS middleware timed out", "error", err)
			chain.WriteError(c.W, c.R, http.StatusInternalServerError, chain.CauseJSTimeout, chain.MsgJSTimeout)
		case errors.Is(err, jsvm.ErrMemoryLimit):
			log.Error("JS middleware stopped at the memory limit", "error", err)
			chain.WriteError(c.W, c.R, http.StatusInternalServerError, chain.CauseJSMemory, chain.MsgJSMemory)
		default:
			log.Error("JS middleware failed", "error", err)
			chain.WriteError(c.W, c.R, http.StatusInternalServerError, chain.CauseJSError, chain.MsgJSError)
		}
		return nil, nil, false
	}
	return body, res, true
}

// apply applies what JS middleware returned to the request, or answers the
// request itself when the middleware said so. body is the request body the
// middleware was given; with keepHeaderCase, SetHeaders keep their names as
// written, and DeleteHeaders remove a name so written too, as Tyk's
// ignore_canonical_mime_header_key does.
func apply(c *chain.Call, body []byte, out jsvm.ResultRequest, keepHeaderCase bool) bool {
	ro := out.ReturnOverrides
	if ro.ResponseError != "" {
		ro.ResponseBody = ro.ResponseError
	}
	if ro.ResponseCode >= 400 && !ro.OverrideError {
		for k, v := range ro.ResponseHeaders {
			c.W.Header().Set(k, v)
		}
		chain.WriteError(c.W, c.R, ro.ResponseCode, chain.CauseJSOverride, ro.ResponseBody)
		return false
	}
	if ro.ResponseCode != 0 {
		for k, v := range ro.ResponseHeaders {
			c.W.Header().Set(k, v)
		}
		c.W.WriteHeader(ro.ResponseCode)
		_, _ = io.WriteString(c.W, ro.ResponseBody)
		return false
	}
	r := c.R
	if !out.IgnoreBody && out.Body != string(body) {
		c.SetBody([]byte(out.Body))
		r.Header.Set("Content-Length", strconv.Itoa(len(out.Body)))
	}
	if out.URL != "" && out.URL != r.URL.String() {
		if u, err := url.Parse(out.URL); err == nil {
			r.URL.Path, r.URL.RawPath, r.URL.RawQuery = u.Path, u.RawPath, u.RawQuery
		}
	}
	for _, h := range out.DeleteHeaders {
		r.Header.Del(h)
		if keepHeaderCase {
			delete(r.Header, h)
		}
	}
	for k, v := range out.SetHeaders {
		if keepHeaderCase {
			r.Header[k] = []string{v}
		} else {
			r.Header.Set(k, v)
		}
	}
	if len(out.DeleteParams) > 0 || len(out.AddParams) > 0 || len(out.ExtendedParams) > 0 {
		q := r.URL.Query()
		for _, p := range out.DeleteParams {
			q.Del(p)
		}
		for k, v := range out.AddParams {
			q.Set(k, v)
		}
		for k, vs := range out.ExtendedParams {
			for _, v := range vs {
				q.Add(k, v)
			}
		}
		r.URL.RawQuery = q.Encode()
	}
	return true
}
