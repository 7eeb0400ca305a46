package jsvm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/jsvm"

	"github.com/tollgate/tollgate/specs"
)

// Env is one spec's fixture: a Host that records what scripts ask of it,
// captured logs, and the Config scripts are compiled with.
type Env struct {
	Host   *recordingHost
	Logs   *specs.SyncBuffer
	RawLog *specs.SyncBuffer
	Config jsvm.Config
}

func NewEnv() *Env {
	env := &Env{Host: newRecordingHost(), Logs: &specs.SyncBuffer{}, RawLog: &specs.SyncBuffer{}}
	env.Config = jsvm.Config{
		Timeout: 5 * time.Second,
		Log:     slog.New(slog.NewJSONHandler(env.Logs, nil)),
		RawLog:  env.RawLog,
		Host:    env.Host,
	}
	return env
}

// testSpec is the API every spec's scripts belong to.
func testSpec() jsvm.Spec {
	return jsvm.Spec{
		APIID:      "api-1",
		OrgID:      "org-1",
		ConfigData: map[string]any{"greeting": "hello", "limit": 3},
	}
}

// middleware is a script defining the middleware "mw" whose callback runs
// body and then returns ReturnData(request, session.meta_data).
func middleware(body string) string {
	return `var mw = new TykJS.TykMiddleware.NewMiddleware({});
mw.NewProcessRequest(function (request, session, config) {
` + body + `
    return mw.ReturnData(request, session.meta_data);
});
`
}

// Compile compiles code as the middleware "mw" in the file mw.js.
func (e *Env) Compile(code string) *jsvm.Program {
	GinkgoHelper()
	prog, err := jsvm.Compile(testSpec(), []jsvm.Source{{Name: "mw", File: "mw.js", Code: []byte(code)}}, e.Config)
	Expect(err).NotTo(HaveOccurred())
	return prog
}

// Run runs the middleware "mw" and expects it to succeed.
func Run(ctx context.Context, prog *jsvm.Program, req jsvm.Request, session string) *jsvm.Result {
	GinkgoHelper()
	res, err := prog.Run(ctx, "mw", req, []byte(session))
	Expect(err).NotTo(HaveOccurred())
	return res
}

// RunBody compiles middleware(body), runs it on a plain GET and returns
// the headers it set.
func (e *Env) RunBody(ctx context.Context, body string) map[string]string {
	GinkgoHelper()
	return Run(ctx, e.Compile(middleware(body)), plainGet(), `{}`).Request.SetHeaders
}

func plainGet() jsvm.Request {
	return jsvm.Request{Method: "GET", URL: "/get", RequestURI: "/get", Scheme: "http"}
}

// LogRecords returns the JSON log records written so far.
func (e *Env) LogRecords() []map[string]any {
	GinkgoHelper()
	var records []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(e.Logs.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		Expect(json.Unmarshal([]byte(line), &rec)).To(Succeed())
		records = append(records, rec)
	}
	return records
}

// setCall is one TykSetKeyData call.
type setCall struct {
	Key           string
	Session       string
	SuppressReset bool
}

// recordingHost records the key and batch calls scripts make. It answers
// GetKeyData with Session and BatchRequest with BatchReply, or fails with
// Err. A BatchRequest is also announced on Batches and then waits until
// ReleaseBatches is closed (if set) or the run's time is up.
type recordingHost struct {
	mu         sync.Mutex
	gets       [][2]string
	sets       []setCall
	batches    []string
	Session    string
	BatchReply string
	Err        error

	Batches        chan string
	ReleaseBatches chan struct{}
}

func newRecordingHost() *recordingHost {
	return &recordingHost{Session: `{}`, BatchReply: `[]`, Batches: make(chan string, 64)}
}

func (h *recordingHost) GetKeyData(_ context.Context, key, apiID string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gets = append(h.gets, [2]string{key, apiID})
	return h.Session, h.Err
}

func (h *recordingHost) SetKeyData(_ context.Context, key, session string, suppressReset bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sets = append(h.sets, setCall{key, session, suppressReset})
	return h.Err
}

func (h *recordingHost) BatchRequest(ctx context.Context, body string) (string, error) {
	h.mu.Lock()
	h.batches = append(h.batches, body)
	release, reply, err := h.ReleaseBatches, h.BatchReply, h.Err
	h.mu.Unlock()
	select {
	case h.Batches <- body:
	default:
	}
	if release != nil {
		select {
		case <-release:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	return reply, err
}

func (h *recordingHost) Gets() [][2]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][2]string(nil), h.gets...)
}

func (h *recordingHost) Sets() []setCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]setCall(nil), h.sets...)
}

func (h *recordingHost) BatchBodies() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.batches...)
}

// echoUpstream answers 201 with an X-Upstream header and a JSON body
// describing the request it received.
func echoUpstream() *httptest.Server {
	GinkgoHelper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body bytes.Buffer
		_, _ = body.ReadFrom(r.Body)
		form, _ := url.ParseQuery(body.String())
		w.Header().Set("X-Upstream", "echo")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"method":      r.Method,
			"path":        r.URL.Path,
			"body":        body.String(),
			"contentType": r.Header.Get("Content-Type"),
			"test":        r.Header.Get("X-Test"),
			"form":        form.Get("name"),
		})
	}))
	DeferCleanup(srv.Close)
	return srv
}

// slowUpstream accepts requests and never answers until the client gives
// up.
func slowUpstream() *httptest.Server {
	GinkgoHelper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	DeferCleanup(srv.Close)
	DeferCleanup(func() { close(release) }) // runs first: no handler blocks Close
	return srv
}

// ownClient is an HTTP client whose idle connections are closed when the
// spec ends, so that none of its goroutines outlive the spec.
func ownClient() *http.Client {
	transport := &http.Transport{}
	DeferCleanup(transport.CloseIdleConnections)
	return &http.Client{Transport: transport}
}

// scriptError extracts the *jsvm.ScriptError from err.
func scriptError(err error) *jsvm.ScriptError {
	GinkgoHelper()
	var se *jsvm.ScriptError
	Expect(errors.As(err, &se)).To(BeTrue(), "expected a *jsvm.ScriptError in %v", err)
	return se
}
