// Package specs holds tollgate's behaviour specs and their harness. The
// harness starts real parts for every spec: a simulated Redis Cluster of
// miniredis nodes, a recording upstream on 127.0.0.1, and a gateway serving
// API definitions written to its app_path, all stopped by DeferCleanup.
package specs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/gateway"
)

// Env is one spec's world. Build it in a BeforeEach with NewEnv; everything
// in it is stopped when the spec ends.
type Env struct {
	// Cluster is the simulated Redis Cluster the gateway stores in.
	Cluster *cluster.Cluster
	// Redis is a ClusterClient of the spec's own, for looking at what the
	// gateway stored.
	Redis *redis.ClusterClient
	// Upstream records what the gateway forwards.
	Upstream *RecordingUpstream
	// Gateway is the gateway under test; URL is where it listens.
	Gateway *gateway.Gateway
	URL     string
	// AppDir is the gateway's app_path.
	AppDir string

	client *http.Client
	logs   *syncBuffer
}

// EnvOption adjusts the configuration NewEnv starts the gateway with.
type EnvOption func(*envSettings)

type envSettings struct {
	config string   // tyk.conf JSON, before app_path and storage are filled in
	apis   []string // API definition JSON
}

// WithConfig starts the gateway with this tyk.conf (JSON). NewEnv sets
// app_path and storage itself.
func WithConfig(tykConf string) EnvOption {
	return func(s *envSettings) { s.config = tykConf }
}

// WithAPI writes an API definition to app_path before the gateway starts.
// "{{upstream}}" in it becomes the recording upstream's URL.
func WithAPI(definition string) EnvOption {
	return func(s *envSettings) { s.apis = append(s.apis, definition) }
}

// NewEnv starts a simulated cluster, a recording upstream and a gateway
// configured to use that cluster, and registers their shutdown.
func NewEnv(opts ...EnvOption) *Env {
	GinkgoHelper()
	s := envSettings{config: `{}`}
	for _, o := range opts {
		o(&s)
	}
	env := &Env{AppDir: GinkgoT().TempDir(), logs: &syncBuffer{}}

	c, err := cluster.Start(cluster.DefaultNodes)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(c.Close)
	env.Cluster = c
	env.Redis = redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	DeferCleanup(env.Redis.Close)

	env.Upstream = StartRecordingUpstream()
	for _, def := range s.apis {
		env.WriteAPIFile(apiFileName(def), def)
	}

	cfg, warnings, err := gateway.ParseConfig([]byte(s.config))
	Expect(err).NotTo(HaveOccurred())
	Expect(warnings).To(BeEmpty(), "the spec's tyk.conf uses settings tollgate ignores")
	cfg.AppPath = env.AppDir
	cfg.Storage.EnableCluster = true
	cfg.Storage.Addrs = c.Addrs()

	log := slog.New(slog.NewTextHandler(io.MultiWriter(GinkgoWriter, env.logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
	gw, err := gateway.New(cfg, gateway.WithLogger(log))
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) error { return gw.Shutdown(ctx) }, NodeTimeout(10*time.Second))
	env.Gateway = gw
	env.URL = serve(gw).URL()

	transport := &http.Transport{}
	DeferCleanup(transport.CloseIdleConnections)
	env.client = &http.Client{Transport: transport, Timeout: 30 * time.Second}
	return env
}

// apiFileName names a definition's file after its api_id.
func apiFileName(def string) string {
	var head struct {
		APIID string `json:"api_id"`
	}
	_ = json.Unmarshal([]byte(def), &head)
	if head.APIID == "" {
		return fmt.Sprintf("api-%d.json", time.Now().UnixNano())
	}
	return head.APIID + ".json"
}

// WriteAPIFile writes a file into app_path, "{{upstream}}" replaced by the
// recording upstream's URL. The gateway sees it on its next Reload.
func (e *Env) WriteAPIFile(name, content string) {
	GinkgoHelper()
	content = strings.ReplaceAll(content, "{{upstream}}", e.Upstream.URL)
	Expect(os.WriteFile(filepath.Join(e.AppDir, name), []byte(content), 0o600)).To(Succeed())
}

// RegisterAPI adds an API definition and reloads the gateway; the spec
// fails if the definition does not load.
func (e *Env) RegisterAPI(definition string) {
	GinkgoHelper()
	e.WriteAPIFile(apiFileName(definition), definition)
	Expect(e.Gateway.Reload()).To(Succeed())
}

// Logs is everything the gateway logged so far.
func (e *Env) Logs() string { return e.logs.String() }

// Response is an HTTP response read in full, so no body is left open.
type Response struct {
	StatusCode int
	Header     http.Header
	Body       string
}

// JSON decodes the body as a JSON object; the spec fails if it is not one.
func (r Response) JSON() map[string]any {
	GinkgoHelper()
	var m map[string]any
	Expect(json.Unmarshal([]byte(r.Body), &m)).To(Succeed(), "body is not a JSON object: %s", r.Body)
	return m
}

// Get sends GET path to the gateway; headers come as name, value pairs.
func (e *Env) Get(path string, headers ...string) Response {
	GinkgoHelper()
	return e.Do(http.MethodGet, path, "", headers...)
}

// Do sends a request to the gateway and reads the whole response.
func (e *Env) Do(method, path, body string, headers ...string) Response {
	GinkgoHelper()
	Expect(len(headers)%2).To(Equal(0), "headers come in name, value pairs")
	req, err := http.NewRequestWithContext(context.Background(), method, e.URL+path, strings.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	for i := 0; i < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := e.client.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: string(data)}
}

// syncBuffer is a bytes.Buffer that the gateway's goroutines may log into
// while a spec reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
