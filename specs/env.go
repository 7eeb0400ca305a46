// Package specs holds tollgate's behaviour specs and their harness. The
// harness starts real parts for every spec: a simulated Redis Cluster of
// miniredis nodes, a recording upstream on 127.0.0.1, and a gateway serving
// API definitions written to its app_path, all stopped by DeferCleanup.
package specs

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
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
	// Cluster is the simulated Redis Cluster the gateways store in; nil on
	// the real tier (see RealCluster), where only specs without the label
	// simulated-only run.
	Cluster *cluster.Cluster
	// Addrs are the cluster's node addresses, on either tier.
	Addrs []string
	// Redis is a ClusterClient of the spec's own, for looking at what the
	// gateway stored.
	Redis *redis.ClusterClient
	// Upstream records what the gateway forwards.
	Upstream *RecordingUpstream
	// AppDir is the gateways' app_path.
	AppDir string
	// Clock is the time the gateways and the cluster's nodes see; it moves
	// only when the spec calls Advance.
	Clock *Clock
	// Secret is tyk.conf's secret, for the control API.
	Secret string

	// Instance is the first gateway: env.Get, env.URL, env.Gateway.
	*Instance

	settings  envSettings
	instances []*Instance
}

// Instance is one running gateway and a client for it.
type Instance struct {
	Gateway *gateway.Gateway
	// Server serves Gateway at URL; a spec may shut it down itself, as
	// cmd/tollgate does on SIGTERM, before the gateway.
	Server *gateway.Server
	URL    string

	client *http.Client
	logs   interface {
		io.Writer
		String() string
	}
}

// EnvOption adjusts the configuration NewEnv starts the gateway with.
type EnvOption func(*envSettings)

type envSettings struct {
	config    string   // tyk.conf JSON, before app_path and storage are filled in
	apis      []string // API definition JSON
	aliases   []string // upstream host names that reach the recording upstream
	baseDir   string   // where relative paths in the config resolve
	wallClock bool
	// hosts maps further upstream host names to addresses (host:port).
	hosts map[string]string
	roots *x509.CertPool
	// logTail keeps only the end of each gateway's log (see WithLogTail).
	logTail bool
	// noGateway leaves the first gateway unstarted (see WithoutGateway).
	noGateway bool
	// gatewayOpts are passed to gateway.New after the harness's own.
	gatewayOpts []gateway.Option
}

// WithGatewayOptions starts the gateways with these options as well, e.g.
// gateway.WithShutdownLimits.
func WithGatewayOptions(opts ...gateway.Option) EnvOption {
	return func(s *envSettings) { s.gatewayOpts = append(s.gatewayOpts, opts...) }
}

// WithUpstreamAt makes the gateways reach addr (host:port) when a
// definition names host, trusting roots for HTTPS: for a webhook target
// such as the seed's https://api/... .
func WithUpstreamAt(host, addr string, roots *x509.CertPool) EnvOption {
	return func(s *envSettings) {
		if s.hosts == nil {
			s.hosts = map[string]string{}
		}
		s.hosts[host] = addr
		s.roots = roots
	}
}

// WithBaseDir resolves relative paths of tyk.conf and of API definitions
// (JS middleware, templates) against dir, as if tyk.conf were there.
func WithBaseDir(dir string) EnvOption {
	return func(s *envSettings) { s.baseDir = dir }
}

// WithWallClock runs the gateways and the cluster on the real clock
// instead of the spec's: for JS middleware, whose Date is the real one.
// Clock.Advance is then not available.
func WithWallClock() EnvOption {
	return func(s *envSettings) { s.wallClock = true }
}

// WithLogTail keeps only the last 64 KiB of each gateway's log, for
// Logs(), and prints it only if the spec fails, instead of sending every
// line to the spec's output as it comes. A steady-state spec runs an
// operation hundreds of times: a log kept whole would grow with every run
// and look like the leak the spec is looking for.
func WithLogTail() EnvOption {
	return func(s *envSettings) { s.logTail = true }
}

// WithoutGateway makes NewEnv start the cluster and the upstream but no
// gateway: for a spec that builds gateways itself from GatewayConfig, such
// as one whose gateway must fail to start. The Env's Instance is then nil.
func WithoutGateway() EnvOption {
	return func(s *envSettings) { s.noGateway = true }
}

// WithConfig starts the gateway with this tyk.conf (JSON). NewEnv sets
// app_path and storage itself. Default: {"secret": "spec-secret"}.
func WithConfig(tykConf string) EnvOption {
	return func(s *envSettings) { s.config = tykConf }
}

// WithAPI writes an API definition to app_path before the gateway starts.
// "{{upstream}}" in it becomes the recording upstream's URL.
func WithAPI(definition string) EnvOption {
	return func(s *envSettings) { s.apis = append(s.apis, definition) }
}

// WithUpstreamHost makes the gateways reach the recording upstream when a
// definition names host (any port): the seed's override_target
// "http://java/security-v1" then works unchanged.
func WithUpstreamHost(host string) EnvOption {
	return func(s *envSettings) { s.aliases = append(s.aliases, host) }
}

// specEpoch is where every spec's clock starts: a fixed, whole second, so
// expiry arithmetic in specs is exact.
var specEpoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// NewEnv starts a simulated cluster, a recording upstream and a gateway
// configured to use that cluster, and registers their shutdown.
func NewEnv(opts ...EnvOption) *Env {
	GinkgoHelper()
	s := envSettings{config: `{"secret": "spec-secret"}`}
	for _, o := range opts {
		o(&s)
	}
	env := &Env{AppDir: GinkgoT().TempDir(), settings: s}

	env.Addrs, env.Cluster = StartCluster(cluster.DefaultNodes)
	env.Clock = &Clock{now: specEpoch, cluster: env.Cluster, wall: s.wallClock}
	if env.Cluster != nil && !s.wallClock {
		env.Cluster.SetTime(specEpoch)
	}
	env.Redis = redis.NewClusterClient(&redis.ClusterOptions{Addrs: env.Addrs, ClientName: SpecClientName})
	DeferCleanup(env.Redis.Close)

	env.Upstream = StartRecordingUpstream()
	for _, def := range s.apis {
		env.WriteAPIFile(apiFileName(def), def)
	}
	if !s.noGateway {
		env.Instance = env.StartGateway()
	}
	return env
}

// SpecClientName is the name (CLIENT SETNAME) of the spec's own Redis
// connections, so that counting a real cluster's clients can leave them
// out.
const SpecClientName = "tollgate-spec"

// GatewayConfig is the tyk.conf the Env's gateways start with: the spec's
// configuration with app_path, the base folder and the cluster filled in.
// A spec may change it and call gateway.New itself.
func (e *Env) GatewayConfig() *gateway.Config {
	GinkgoHelper()
	cfg, warnings, err := gateway.ParseConfig([]byte(e.settings.config))
	Expect(err).NotTo(HaveOccurred())
	Expect(warnings).To(BeEmpty(), "the spec's tyk.conf uses settings tollgate ignores")
	cfg.AppPath = e.AppDir
	if e.settings.baseDir != "" {
		dir, err := filepath.Abs(e.settings.baseDir)
		Expect(err).NotTo(HaveOccurred())
		cfg.SetBaseDir(dir)
	}
	cfg.Storage.EnableCluster = true
	cfg.Storage.Addrs = e.Addrs
	return cfg
}

// StartGateway starts another gateway on the same cluster, app_path and
// clock, as a second node of a deployment would be.
func (e *Env) StartGateway() *Instance {
	GinkgoHelper()
	cfg := e.GatewayConfig()
	e.Secret = cfg.Secret

	inst := &Instance{}
	var logTo io.Writer
	if e.settings.logTail {
		tail := newTailBuffer(logTailSize)
		inst.logs, logTo = tail, tail
		DeferCleanup(func() {
			if CurrentSpecReport().Failed() {
				GinkgoWriter.Printf("the last %d KiB of the gateway's log:\n%s", logTailSize>>10, tail.String())
			}
		})
	} else {
		buf := &SyncBuffer{}
		inst.logs, logTo = buf, io.MultiWriter(GinkgoWriter, buf)
	}
	log := slog.New(slog.NewTextHandler(logTo, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts := append([]gateway.Option{
		gateway.WithLogger(log),
		gateway.WithClock(e.Clock.Now),
		gateway.WithDialer(e.dialer()),
		gateway.WithTLSConfig(&tls.Config{RootCAs: e.settings.roots}),
	}, e.settings.gatewayOpts...)
	gw, err := gateway.New(cfg, opts...)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) error { return gw.Shutdown(ctx) }, NodeTimeout(10*time.Second))
	inst.Gateway = gw
	inst.Server = serve(gw, gateway.WithTimeouts(cfg))
	inst.URL = inst.Server.URL()

	transport := &http.Transport{}
	DeferCleanup(transport.CloseIdleConnections)
	inst.client = &http.Client{Transport: transport, Timeout: 30 * time.Second}
	e.instances = append(e.instances, inst)
	return inst
}

// dialer connects the aliased upstream host names to the recording
// upstream and everything else as usual.
func (e *Env) dialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	upstream := strings.TrimPrefix(e.Upstream.URL, "http://")
	aliases, hosts := e.settings.aliases, e.settings.hosts
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err == nil && slices.Contains(aliases, host) {
			addr = upstream
		} else if to, ok := hosts[host]; ok && err == nil {
			addr = to
		}
		return d.DialContext(ctx, network, addr)
	}
}

// Clock is the spec's clock: the gateways read it, and Advance moves it
// and every simulated node's clock together, so TTLs in Redis and expiry in
// the gateway agree. A real Redis keeps its own time: on the real tier
// Advance moves the gateways' clock only, and specs that need Redis's TTLs
// to pass with it are labelled simulated-only.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	cluster *cluster.Cluster
	wall    bool
}

// Now is the spec's current time.
func (c *Clock) Now() time.Time {
	if c.wall {
		return time.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves time forward by d for the gateways and the cluster.
func (c *Clock) Advance(d time.Duration) {
	GinkgoHelper()
	Expect(c.wall).To(BeFalse(), "the spec runs on the wall clock (WithWallClock); it cannot be advanced")
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	if c.cluster != nil {
		c.cluster.SetTime(c.now)
	}
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

// RegisterAPI adds an API definition and reloads every gateway; the spec
// fails if the definition does not load.
func (e *Env) RegisterAPI(definition string) {
	GinkgoHelper()
	e.WriteAPIFile(apiFileName(definition), definition)
	for _, inst := range e.instances {
		Expect(inst.Gateway.Reload()).To(Succeed())
	}
}

// Control calls the control API of inst with the secret.
func (e *Env) Control(inst *Instance, method, path, body string) Response {
	GinkgoHelper()
	return inst.Do(method, path, body, "X-Tyk-Authorization", e.Secret)
}

// IssueKey creates a key with the given session (JSON) through the first
// gateway's control API and returns it.
func (e *Env) IssueKey(sessionJSON string) string {
	GinkgoHelper()
	resp := e.Control(e.Instance, http.MethodPost, "/tyk/keys/create", sessionJSON)
	Expect(resp.StatusCode).To(Equal(http.StatusOK), resp.Body)
	key, _ := resp.JSON()["key"].(string)
	Expect(key).NotTo(BeEmpty())
	return key
}

// SetKey creates a custom key: a session stored under a name of the
// spec's choosing (POST /tyk/keys/{name}). It returns the key clients
// present, which Tyk makes of the session's org_id and the name: org_id +
// name without hash_key_function, the token {"org","id","h"} with one.
func (e *Env) SetKey(name, sessionJSON string) string {
	GinkgoHelper()
	resp := e.Control(e.Instance, http.MethodPost, "/tyk/keys/"+name, sessionJSON)
	Expect(resp.StatusCode).To(Equal(http.StatusOK), resp.Body)
	key, _ := resp.JSON()["key"].(string)
	Expect(key).NotTo(BeEmpty())
	return key
}

// Logs is everything the gateway logged so far.
func (i *Instance) Logs() string { return i.logs.String() }

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
func (i *Instance) Get(path string, headers ...string) Response {
	GinkgoHelper()
	return i.Do(http.MethodGet, path, "", headers...)
}

// Do sends a request to the gateway and reads the whole response.
func (i *Instance) Do(method, path, body string, headers ...string) Response {
	GinkgoHelper()
	Expect(len(headers)%2).To(Equal(0), "headers come in name, value pairs")
	req, err := http.NewRequestWithContext(context.Background(), method, i.URL+path, strings.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	for i := 0; i < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := i.client.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: string(data)}
}

// Raw sends a request exactly as given on its own connection: the request
// target is written as it is (dot segments, percent-encodings, absolute
// form), the method as spelled, and a redirect is not followed. Headers
// come as name, value pairs.
func (i *Instance) Raw(method, target string, headers ...string) Response {
	GinkgoHelper()
	Expect(len(headers)%2).To(Equal(0), "headers come in name, value pairs")
	addr := strings.TrimPrefix(i.URL, "http://")
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	Expect(err).NotTo(HaveOccurred())
	defer conn.Close()
	Expect(conn.SetDeadline(time.Now().Add(10 * time.Second))).To(Succeed())
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, addr)
	for n := 0; n < len(headers); n += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", headers[n], headers[n+1])
	}
	b.WriteString("\r\n")
	_, err = io.WriteString(conn, b.String())
	Expect(err).NotTo(HaveOccurred())
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: string(data)}
}

// SyncBuffer is a bytes.Buffer that goroutines (a gateway's log, JS
// rawlog) may write into while a spec reads it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logTailSize is how much of a gateway's log WithLogTail keeps.
const logTailSize = 64 << 10

// tailBuffer keeps the last bytes written to it in a ring allocated once,
// so what it holds never grows.
type tailBuffer struct {
	mu   sync.Mutex
	ring []byte
	next int  // where the next byte goes
	full bool // the ring has wrapped
}

func newTailBuffer(size int) *tailBuffer { return &tailBuffer{ring: make([]byte, size)} }

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	if len(p) > len(b.ring) {
		p = p[len(p)-len(b.ring):]
	}
	for len(p) > 0 {
		c := copy(b.ring[b.next:], p)
		p = p[c:]
		b.next += c
		if b.next == len(b.ring) {
			b.next, b.full = 0, true
		}
	}
	return n, nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.full {
		return string(b.ring[:b.next])
	}
	return string(b.ring[b.next:]) + string(b.ring[:b.next])
}

// ConnectCluster returns a go-redis ClusterClient on addrs (one address is
// enough), closed when the spec ends.
//
// go-redis's defaults suit production: five dial attempts 100 ms apart,
// retry backoff up to half a second, several retries. Against a killed node
// a command would then take seconds to fail, and failure specs could not
// tell a prompt error from a hang; these options keep the behaviour
// (redirects followed, one retry) with short waits. PoolSize is raised
// because go-redis starts a background redial probe once a node's pool has
// seen PoolSize failed dials, and that probe outlives Close by up to a
// second, which the leak guard would report.
func ConnectCluster(addrs ...string) *redis.ClusterClient {
	GinkgoHelper()
	client := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:              addrs,
		MaxRedirects:       3,
		MaxRetries:         1,
		MinRetryBackoff:    time.Millisecond,
		MaxRetryBackoff:    10 * time.Millisecond,
		DialTimeout:        time.Second,
		DialerRetries:      1,
		DialerRetryTimeout: time.Millisecond,
		ReadTimeout:        time.Second,
		WriteTimeout:       time.Second,
		PoolSize:           100,
		ClientName:         SpecClientName,
	})
	DeferCleanup(client.Close)
	return client
}
