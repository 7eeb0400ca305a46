package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/tollgate/tollgate/gateway/jsvm"
	"github.com/tollgate/tollgate/gateway/session"
)

// Causes of JS middleware failures.
const (
	CauseJSTimeout  Cause = "js_timeout"
	CauseJSError    Cause = "js_error"
	CauseJSOverride Cause = "js_override"
	CauseBodyTooBig Cause = "body_too_large"
)

const (
	msgJSTimeout = "JS middleware timed out"
	msgJSError   = "There was a problem running the JS middleware"
	// maxJSBody bounds the request body handed to JS middleware.
	maxJSBody = 10 << 20
	// jsIdleVMs is how many reset VMs each API keeps for reuse.
	jsIdleVMs = 64
)

// hook names where a JS middleware runs.
const (
	hookPre         = "pre"
	hookPostKeyAuth = "post_key_auth"
	hookPost        = "post"
)

// jsMiddleware runs one JS middleware of an API. All of an API's
// middleware share one compiled Program (as in Tyk, one namespace per API).
type jsMiddleware struct {
	gw             *Gateway
	prog           *jsvm.Program
	name           string
	hook           string
	requireSession bool
}

var _ step = (*jsMiddleware)(nil)

// compileJS loads and compiles an API's JS middleware, once, at load.
// It returns the steps for each hook.
func (g *Gateway) compileJS(def *APIDefinition) (map[string][]step, error) {
	cm := def.CustomMiddleware
	hooks := []struct {
		name string
		defs []MiddlewareDefinition
	}{{hookPre, cm.Pre}, {hookPostKeyAuth, cm.PostKeyAuth}, {hookPost, cm.Post}}
	var sources []jsvm.Source
	type entry struct {
		hook string
		def  MiddlewareDefinition
	}
	var entries []entry
	for _, h := range hooks {
		for i, md := range h.defs {
			if md.Disabled {
				continue
			}
			field := fmt.Sprintf("custom_middleware.%s[%d]", h.name, i)
			if md.Name == "" {
				return nil, fmt.Errorf("%s.name: missing; name the middleware's global variable", field)
			}
			path := g.cfg.ResolvePath(md.Path)
			code, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("%s.path: %w", field, err)
			}
			sources = append(sources, jsvm.Source{Name: md.Name, File: path, Code: code})
			entries = append(entries, entry{h.name, md})
		}
	}
	if len(entries) == 0 {
		return nil, nil
	}
	if cm.Driver != "" && cm.Driver != "otto" {
		return nil, fmt.Errorf("custom_middleware.driver: %q is not supported; tollgate runs JS middleware on otto", cm.Driver)
	}
	if !g.cfg.EnableJSVM {
		return nil, errors.New("custom_middleware: the API has JS middleware but enable_jsvm is false in tyk.conf")
	}
	prog, err := jsvm.Compile(jsvm.Spec{APIID: def.APIID, OrgID: def.OrgID, ConfigData: def.ConfigData}, sources, jsvm.Config{
		Timeout: g.cfg.jsvmTimeout(),
		Log:     g.log.With("api_id", def.APIID, "prefix", "jsvm"),
		RawLog:  g.rawLog,
		Host:    &jsHost{gw: g, def: def},
		Client:  &http.Client{Transport: g.transport},
		// Idle VMs kept for reuse: enough for the requests a gateway runs
		// at once, so a burst does not copy VMs afresh. An idle VM holds
		// the compiled scripts' heap, tens of KiB for small middleware.
		MaxIdle: jsIdleVMs,
	})
	if err != nil {
		return nil, fmt.Errorf("custom_middleware: %w", err)
	}
	steps := map[string][]step{}
	for _, e := range entries {
		steps[e.hook] = append(steps[e.hook], &jsMiddleware{
			gw: g, prog: prog, name: e.def.Name, hook: e.hook,
			requireSession: e.def.RequireSession && e.hook != hookPre,
		})
	}
	return steps, nil
}

func (m *jsMiddleware) serve(c *call) bool {
	if !c.readBody() {
		return false
	}
	r := c.r
	req := jsvm.Request{
		Headers:    r.Header,
		Body:       string(c.body),
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
	if m.requireSession && c.session != nil {
		var err error
		if sessionJSON, err = c.session.MarshalJSON(); err != nil {
			sessionJSON = []byte("{}")
		}
	}
	res, err := m.prog.Run(r.Context(), m.name, req, sessionJSON)
	if err != nil {
		log := m.gw.log.With("api_id", c.api.def.APIID, "middleware", m.name, "hook", m.hook)
		if c.key != "" {
			log = log.With("key_hash", c.keyHash())
		}
		if errors.Is(err, jsvm.ErrTimeout) {
			log.Error("JS middleware timed out", "error", err)
			writeError(c.w, http.StatusInternalServerError, CauseJSTimeout, msgJSTimeout)
		} else {
			log.Error("JS middleware failed", "error", err)
			writeError(c.w, http.StatusInternalServerError, CauseJSError, msgJSError)
		}
		return false
	}
	if !c.applyJSRequest(res.Request) {
		return false
	}
	if m.requireSession && c.session != nil && res.SessionMeta != nil {
		c.session.MetaData = res.SessionMeta
		c.sessionDirty = true
	}
	return true
}

// readBody reads the request body once, for JS middleware, and puts it
// back for the upstream.
func (c *call) readBody() bool {
	if c.bodyRead {
		return true
	}
	c.bodyRead = true
	if c.r.Body == nil || c.r.Body == http.NoBody {
		return true
	}
	body, err := io.ReadAll(io.LimitReader(c.r.Body, maxJSBody+1))
	if err != nil {
		writeError(c.w, http.StatusBadRequest, CauseJSError, "Reading the request body failed")
		return false
	}
	if len(body) > maxJSBody {
		writeError(c.w, http.StatusRequestEntityTooLarge, CauseBodyTooBig, "Request body too large for JS middleware")
		return false
	}
	c.body = body
	c.r.Body = io.NopCloser(bytes.NewReader(body))
	return true
}

// applyJSRequest applies what JS middleware returned to the request, or
// answers the request itself when the middleware said so.
func (c *call) applyJSRequest(out jsvm.ResultRequest) bool {
	ro := out.ReturnOverrides
	if ro.ResponseError != "" {
		ro.ResponseBody = ro.ResponseError
	}
	if ro.ResponseCode >= 400 && !ro.OverrideError {
		for k, v := range ro.ResponseHeaders {
			c.w.Header().Set(k, v)
		}
		writeError(c.w, ro.ResponseCode, CauseJSOverride, ro.ResponseBody)
		return false
	}
	if ro.ResponseCode != 0 {
		for k, v := range ro.ResponseHeaders {
			c.w.Header().Set(k, v)
		}
		c.w.WriteHeader(ro.ResponseCode)
		_, _ = io.WriteString(c.w, ro.ResponseBody)
		return false
	}
	r := c.r
	if !out.IgnoreBody && out.Body != string(c.body) {
		c.body = []byte(out.Body)
		r.Body = io.NopCloser(bytes.NewReader(c.body))
		r.ContentLength = int64(len(c.body))
		r.Header.Set("Content-Length", strconv.Itoa(len(c.body)))
	}
	if out.URL != "" && out.URL != r.URL.String() {
		if u, err := url.Parse(out.URL); err == nil {
			r.URL.Path, r.URL.RawPath, r.URL.RawQuery = u.Path, u.RawPath, u.RawQuery
		}
	}
	for _, h := range out.DeleteHeaders {
		r.Header.Del(h)
	}
	for k, v := range out.SetHeaders {
		r.Header.Set(k, v)
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

// jsHost gives JS middleware the gateway's keys and routing.
type jsHost struct {
	gw  *Gateway
	def *APIDefinition
}

var _ jsvm.Host = (*jsHost)(nil)

// GetKeyData answers TykGetKeyData: the key's session as JSON.
func (h *jsHost) GetKeyData(ctx context.Context, key, apiID string) (string, error) {
	st, err := h.gw.sessions.Load(ctx, h.gw.sessions.ID(key))
	if err != nil {
		return "", err
	}
	data, err := json.Marshal(st)
	return string(data), err
}

// SetKeyData answers TykSetKeyData: it stores the session as the control
// API's POST would (creating the key if needed, as Tyk does); with
// suppressReset the quota and rate-limit state stay.
//
// The same JSON as last time for a key whose session has no lifetime is
// stored already, as saveKey would find after decoding it: the seed's
// refresh hands over the same session many times a second.
func (h *jsHost) SetKeyData(ctx context.Context, key, sessionJSON string, suppressReset bool) error {
	id := h.gw.sessions.ID(key)
	if suppressReset {
		if last, ok := h.gw.cache.Received(id); ok && last == sessionJSON {
			return nil
		}
	}
	var st session.State
	if err := json.Unmarshal([]byte(sessionJSON), &st); err != nil {
		return fmt.Errorf("TykSetKeyData: session is not valid JSON: %w", err)
	}
	if err := h.gw.saveKey(ctx, id, &st, !suppressReset, true); err != nil {
		return err
	}
	if suppressReset && st.SessionLifetime == 0 {
		h.gw.cache.NoteReceived(id, sessionJSON)
	}
	return nil
}

// batchRequest is TykBatchRequest's input, as Tyk's /tyk/batch takes it.
type batchRequest struct {
	Requests []struct {
		Method      string            `json:"method"`
		Headers     map[string]string `json:"headers"`
		Body        string            `json:"body"`
		RelativeURL string            `json:"relative_url"`
	} `json:"requests"`
	SuppressParallelExecution bool `json:"suppress_parallel_execution"`
}

type batchReply struct {
	RelativeURL string      `json:"relative_url"`
	Code        int         `json:"code"`
	Headers     http.Header `json:"headers"`
	Body        string      `json:"body"`
}

// maxBatch bounds the requests of one TykBatchRequest.
const maxBatch = 100

// BatchRequest answers TykBatchRequest: each request goes through this
// gateway to this API (relative_url is below its listen path), one after
// the other on the calling goroutine.
func (h *jsHost) BatchRequest(ctx context.Context, requestJSON string) (string, error) {
	var in batchRequest
	if err := json.Unmarshal([]byte(requestJSON), &in); err != nil {
		return "", fmt.Errorf("TykBatchRequest: %w", err)
	}
	if len(in.Requests) > maxBatch {
		return "", fmt.Errorf("TykBatchRequest: %d requests, at most %d", len(in.Requests), maxBatch)
	}
	base := strings.TrimSuffix(normalizeListenPath(h.def.Proxy.ListenPath), "/")
	out := make([]batchReply, 0, len(in.Requests))
	for _, br := range in.Requests {
		method := br.Method
		if method == "" {
			method = http.MethodGet
		}
		req, err := http.NewRequestWithContext(ctx, method, base+"/"+strings.TrimPrefix(br.RelativeURL, "/"), strings.NewReader(br.Body))
		if err != nil {
			return "", fmt.Errorf("TykBatchRequest: %w", err)
		}
		for k, v := range br.Headers {
			req.Header.Set(k, v)
		}
		req.RemoteAddr = "127.0.0.1:0"
		rec := httptest.NewRecorder()
		h.gw.ServeHTTP(rec, req)
		out = append(out, batchReply{RelativeURL: br.RelativeURL, Code: rec.Code, Headers: rec.Header(), Body: rec.Body.String()})
	}
	data, err := json.Marshal(out)
	return string(data), err
}

// JSStats reports the JS runtime counters of an API (zero when it has no
// JS middleware): how many VMs were made, reused, discarded.
func (g *Gateway) JSStats(apiID string) jsvm.Stats {
	for _, api := range g.routes.Load().apis {
		if api.def.APIID != apiID {
			continue
		}
		for _, s := range api.chain {
			if m, ok := s.(*jsMiddleware); ok {
				return m.prog.Stats()
			}
		}
	}
	return jsvm.Stats{}
}
