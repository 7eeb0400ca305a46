// Command wrkbench measures the tollgate binary the way an operator would:
// wrk sends the load from a process of its own, to a bare
// httputil.ReverseProxy and to tollgate, each in a process of its own, in
// front of the same upstream, again in its own process. It is `make
// bench-wrk`:
//
//	go run ./tools/wrkbench                          # 3 rounds of 10 s per case
//	go run ./tools/wrkbench -rounds 5 -duration 20s -connections 64
//
// Each round runs every case once, in turn, so that a slow moment of the
// machine hits them alike: the bare proxy; the keyless gateway; and a keyed
// API with auth, rate limit and quota (one key allowed 100,000,000
// requests a second and 1,000,000,000 an hour), on each store: the
// embedded simulated cluster, one redis-server it starts on a free
// 127.0.0.1 port, and the real cluster of `make cluster-up` when it
// answers on 127.0.0.1:7000. It prints the median req/s of the rounds as a
// ratio to the bare proxy's median, and the median p50 and p99 latencies
// that wrk reports. wrk must be installed (Debian: apt-get install wrk).
//
// Everything listens on 127.0.0.1 and stops when the command ends.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wrkbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rounds := fs.Int("rounds", 3, "rounds of every case (1 to 20)")
	duration := fs.Duration("duration", 10*time.Second, "wrk's duration per case and round (1s to 60s)")
	connections := fs.Int("connections", 32, "wrk's connections (1 to 1000)")
	threads := fs.Int("threads", 2, "wrk's threads (1 to 16)")
	tyk := fs.String("tyk", "", "a Tyk gateway binary to measure too, on the redis-server store")
	tykTemplates := fs.String("tyk-templates", "", "Tyk's templates folder (its error templates); default: templates beside the -tyk binary")
	role := fs.String("role", "", "internal: serve as the upstream or the bare proxy")
	addr := fs.String("addr", "", "internal: the role's listen address")
	target := fs.String("target", "", "internal: the bare proxy's upstream")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	switch *role {
	case "upstream":
		return serveRole(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"ok":true}`)
		}), stderr)
	case "bare":
		to, err := url.Parse(*target)
		if err != nil {
			fmt.Fprintf(stderr, "wrkbench: -target: %v\n", err)
			return 2
		}
		transport := &http.Transport{MaxIdleConnsPerHost: 256}
		return serveRole(*addr, &httputil.ReverseProxy{Transport: transport, Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(to) }}, stderr)
	case "":
	default:
		fmt.Fprintf(stderr, "wrkbench: -role: %q is neither upstream nor bare\n", *role)
		return 2
	}
	switch {
	case *rounds < 1 || *rounds > 20:
		fmt.Fprintf(stderr, "wrkbench: -rounds: %d is not between 1 and 20\n", *rounds)
		return 2
	case *duration < time.Second || *duration > time.Minute:
		fmt.Fprintf(stderr, "wrkbench: -duration: %v is not between 1s and 60s\n", *duration)
		return 2
	case *connections < 1 || *connections > 1000:
		fmt.Fprintf(stderr, "wrkbench: -connections: %d is not between 1 and 1000\n", *connections)
		return 2
	case *threads < 1 || *threads > 16 || *threads > *connections:
		fmt.Fprintf(stderr, "wrkbench: -threads: %d is not between 1 and 16 (and at most -connections)\n", *threads)
		return 2
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		fmt.Fprintln(stderr, "wrkbench: wrk is not installed (Debian: apt-get install wrk)")
		return 2
	}
	b := &bench{wrk: wrk, duration: *duration, connections: *connections, threads: *threads, stderr: stderr, tyk: *tyk, tykTemplates: *tykTemplates}
	if b.tyk != "" && b.tykTemplates == "" {
		b.tykTemplates = filepath.Join(filepath.Dir(b.tyk), "templates")
	}
	defer b.stopAll()
	if err := b.setUp(ctx); err != nil {
		fmt.Fprintf(stderr, "wrkbench: %v\n", err)
		return 1
	}
	results := map[string][]wrkResult{}
	for round := 1; round <= *rounds; round++ {
		for _, c := range b.cases {
			if ctx.Err() != nil {
				return 1
			}
			r, err := b.load(ctx, c)
			if err != nil {
				fmt.Fprintf(stderr, "wrkbench: %s: %v\n", c.name, err)
				return 1
			}
			fmt.Fprintf(stderr, "round %d  %-22s %9.0f req/s  p50 %7.0f µs  p99 %7.0f µs  (%d non-2xx)\n", round, c.name, r.rps, r.p50, r.p99, r.non2xx)
			results[c.name] = append(results[c.name], r)
		}
	}
	report(stdout, b, results, *rounds)
	return 0
}

// serveRole serves h on addr until the process is killed.
func serveRole(addr string, h http.Handler, stderr io.Writer) int {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintf(stderr, "wrkbench: %v\n", err)
		return 1
	}
	return 0
}

// loadCase is one thing wrk measures.
type loadCase struct {
	name   string
	url    string
	header string // "Name: value", or empty
}

type bench struct {
	wrk                  string
	duration             time.Duration
	connections, threads int
	stderr               io.Writer

	// tyk is a Tyk gateway binary to measure beside tollgate, or "";
	// tykTemplates its templates folder.
	tyk, tykTemplates string

	dir    string
	procs  []*exec.Cmd
	cases  []loadCase
	stores []string
}

// setUp starts the upstream, the bare proxy, a redis-server and one
// tollgate per store, and lists the cases.
func (b *bench) setUp(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "tollgate-wrkbench")
	if err != nil {
		return err
	}
	b.dir = dir
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Fprintln(b.stderr, "building the tollgate binary...")
	binary := filepath.Join(dir, "tollgate")
	build := exec.CommandContext(ctx, "go", "build", "-o", binary, "./gateway/cmd/tollgate")
	build.Stdout, build.Stderr = b.stderr, b.stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build ./gateway/cmd/tollgate (run from the repository's root): %w", err)
	}
	upstream, err := b.start(ctx, "upstream", self, "-role", "upstream", "-addr", "%s")
	if err != nil {
		return err
	}
	bare, err := b.start(ctx, "bare proxy", self, "-role", "bare", "-addr", "%s", "-target", "http://"+upstream)
	if err != nil {
		return err
	}
	b.cases = append(b.cases, loadCase{name: "bare", url: "http://" + bare + "/"})

	stores := []struct{ name, storage string }{{"simulated", ""}}
	redisAddr, err := b.startRedis(ctx)
	if err != nil {
		fmt.Fprintf(b.stderr, "redis store not measured: %v\n", err)
	} else {
		host, port, _ := net.SplitHostPort(redisAddr)
		stores = append(stores, struct{ name, storage string }{"redis", fmt.Sprintf(`"storage": {"type": "redis", "host": %q, "port": %s},`, host, port)})
	}
	if clusterUp() {
		stores = append(stores, struct{ name, storage string }{"cluster", `"storage": {"type": "redis", "enable_cluster": true, "addrs": ["127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"]},`})
	} else {
		fmt.Fprintln(b.stderr, "cluster store not measured: no Redis Cluster answers on 127.0.0.1:7000 (make cluster-up)")
	}
	if b.tyk != "" {
		if redisAddr == "" {
			return errors.New("-tyk: Tyk is measured on the redis-server store, and redis-server did not start")
		}
		gw, key, err := b.startTyk(ctx, upstream, redisAddr)
		if err != nil {
			return fmt.Errorf("-tyk: %w", err)
		}
		b.stores = append(b.stores, "tyk")
		b.cases = append(b.cases,
			loadCase{name: "keyless/tyk", url: "http://" + gw + "/k/"},
			loadCase{name: "auth/tyk", url: "http://" + gw + "/a/", header: "x-key: " + key})
	}
	for _, st := range stores {
		gw, key, err := b.startGateway(ctx, binary, upstream, st.name, st.storage)
		if err != nil {
			return fmt.Errorf("tollgate on the %s store: %w", st.name, err)
		}
		b.stores = append(b.stores, st.name)
		b.cases = append(b.cases,
			loadCase{name: "keyless/" + st.name, url: "http://" + gw + "/k/"},
			loadCase{name: "auth/" + st.name, url: "http://" + gw + "/a/", header: "x-key: " + key})
	}
	return nil
}

// start runs name (argv, "%s" replaced by a free 127.0.0.1 address) and
// waits until it accepts connections; it returns the address.
func (b *bench) start(ctx context.Context, name string, argv ...string) (string, error) {
	addr, err := freeAddr()
	if err != nil {
		return "", err
	}
	for i, a := range argv {
		argv[i] = strings.ReplaceAll(a, "%s", addr)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	log, err := os.Create(filepath.Join(b.dir, strings.ReplaceAll(name, " ", "-")+".log"))
	if err != nil {
		return "", err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return "", fmt.Errorf("starting %s: %w", name, err)
	}
	b.procs = append(b.procs, cmd)
	if err := waitListening(ctx, addr); err != nil {
		return "", fmt.Errorf("%s (log: %s): %w", name, log.Name(), err)
	}
	return addr, nil
}

// startRedis starts redis-server without persistence; it returns its
// address.
func (b *bench) startRedis(ctx context.Context) (string, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return "", errors.New("redis-server is not installed")
	}
	addr, err := freeAddr()
	if err != nil {
		return "", err
	}
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.CommandContext(ctx, path, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no", "--dir", b.dir)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return "", err
	}
	b.procs = append(b.procs, cmd)
	return addr, waitListening(ctx, addr)
}

// clusterUp tells whether make cluster-up's cluster answers.
func clusterUp() bool {
	conn, err := net.DialTimeout("tcp", "127.0.0.1:7000", time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(conn, "CLUSTER INFO\r\n"); err != nil {
		return false
	}
	buf := make([]byte, 256)
	n, _ := io.ReadAtLeast(conn, buf, 32)
	return strings.Contains(string(buf[:n]), "cluster_state:ok")
}

const keylessAPI = `{"api_id": "k", "name": "k", "active": true, "use_keyless": true,
  "proxy": {"listen_path": "/k/", "target_url": "http://%s", "strip_listen_path": true}}`

const keyedAPI = `{"api_id": "a", "name": "a", "active": true,
  "auth": {"auth_header_name": "x-key"},
  "proxy": {"listen_path": "/a/", "target_url": "http://%s", "strip_listen_path": true}}`

const benchKey = `{"access_rights": {"a": {"api_id": "a"}}, "rate": 100000000, "per": 1, "quota_max": 1000000000, "quota_renewal_rate": 3600}`

// startGateway runs the tollgate binary on a tyk.conf of its own with the
// keyless and the keyed API, and creates the benchmark's key.
func (b *bench) startGateway(ctx context.Context, binary, upstream, store, storage string) (string, string, error) {
	return b.launch(ctx, binary, filepath.Join(b.dir, store), benchKey, func(port, apps string) map[string]string {
		return map[string]string{
			"tyk.conf": fmt.Sprintf(`{"listen_address": "127.0.0.1", "listen_port": %s, "secret": "wrkbench", %s
	  "app_path": "apps", "proxy_default_timeout": 10%s}`, port, storage, os.Getenv("TOLLGATE_BENCH_LIMITER")),
			"apps/k.json": fmt.Sprintf(keylessAPI, upstream),
			"apps/a.json": fmt.Sprintf(keyedAPI, upstream),
		}
	})
}

// launch writes the files files(port, apps folder) names (relative to dir)
// into dir, runs binary --conf dir/tyk.conf on a free 127.0.0.1 port, its
// log in dir, until the bench stops it, and creates a key with session
// through its control API. It returns the address and the key.
func (b *bench) launch(ctx context.Context, binary, dir, session string, files func(port, apps string) map[string]string) (string, string, error) {
	apps := filepath.Join(dir, "apps")
	if err := os.MkdirAll(apps, 0o700); err != nil {
		return "", "", err
	}
	addr, err := freeAddr()
	if err != nil {
		return "", "", err
	}
	_, port, _ := net.SplitHostPort(addr)
	for name, content := range files(port, apps) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return "", "", err
		}
	}
	logFile, err := os.Create(filepath.Join(dir, filepath.Base(binary)+".log"))
	if err != nil {
		return "", "", err
	}
	cmd := exec.CommandContext(ctx, binary, "--conf", filepath.Join(dir, "tyk.conf"))
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		return "", "", err
	}
	b.procs = append(b.procs, cmd)
	if err := waitListening(ctx, addr); err != nil {
		return "", "", fmt.Errorf("%w (log: %s)", err, logFile.Name())
	}
	key, err := createKey(ctx, addr, session)
	if err != nil {
		return "", "", fmt.Errorf("%w (log: %s)", err, logFile.Name())
	}
	return addr, key, nil
}

// Tyk's definitions of the two APIs: Tyk needs its version data spelled
// out, where tollgate takes a definition without it as unversioned.
const (
	tykKeylessAPI = `{"api_id": "k", "name": "k", "org_id": "", "active": true, "use_keyless": true,
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default"}}},
  "proxy": {"listen_path": "/k/", "target_url": "http://%s", "strip_listen_path": true}}`
	tykKeyedAPI = `{"api_id": "a", "name": "a", "org_id": "", "active": true,
  "auth": {"auth_header_name": "x-key"},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default"}}},
  "proxy": {"listen_path": "/a/", "target_url": "http://%s", "strip_listen_path": true}}`
	tykKey = `{"access_rights": {"a": {"api_id": "a", "api_name": "a", "versions": ["Default"]}}, "org_id": "",
  "rate": 100000000, "per": 1, "quota_max": 1000000000, "quota_renewal_rate": 3600}`
)

// startTyk runs the Tyk binary with its defaults on the redis-server at
// redisAddr, serving the two APIs, and creates the key.
func (b *bench) startTyk(ctx context.Context, upstream, redisAddr string) (string, string, error) {
	host, redisPort, _ := net.SplitHostPort(redisAddr)
	return b.launch(ctx, b.tyk, filepath.Join(b.dir, "tyk"), tykKey, func(port, apps string) map[string]string {
		return map[string]string{
			"tyk.conf": fmt.Sprintf(`{"listen_address": "127.0.0.1", "listen_port": %s, "secret": "wrkbench", "node_secret": "wrkbench",
	  "storage": {"type": "redis", "host": %q, "port": %s}, "app_path": %q, "template_path": %q, "proxy_default_timeout": 10}`,
				port, host, redisPort, apps, b.tykTemplates),
			"apps/k.json": fmt.Sprintf(tykKeylessAPI, upstream),
			"apps/a.json": fmt.Sprintf(tykKeyedAPI, upstream),
		}
	})
}

// createKey creates a key with session through the control API at addr.
func createKey(ctx context.Context, addr, session string) (string, error) {
	// A gateway may listen before it has loaded its APIs.
	var last error
	for range 50 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/tyk/keys/create", strings.NewReader(session))
		req.Header.Set("x-tyk-authorization", "wrkbench")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		var created struct {
			Key string `json:"key"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&created)
		resp.Body.Close()
		if err == nil && created.Key != "" && resp.StatusCode == http.StatusOK {
			return created.Key, nil
		}
		last = fmt.Errorf("creating the key: status %d, %v", resp.StatusCode, err)
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return "", last
}

// stopAll stops every process started, the gateways with SIGTERM.
func (b *bench) stopAll() {
	for _, p := range slices.Backward(b.procs) {
		if p.Process != nil {
			_ = p.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = p.Process.Kill()
				<-done
			}
		}
	}
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
}

type wrkResult struct {
	rps, p50, p99 float64
	non2xx        int
}

var (
	rpsLine     = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	latencyLine = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	non2xxLine  = regexp.MustCompile(`(?m)^\s+Non-2xx or 3xx responses:\s+(\d+)`)
)

// load runs wrk once on c.
func (b *bench) load(ctx context.Context, c loadCase) (wrkResult, error) {
	args := []string{"-t", strconv.Itoa(b.threads), "-c", strconv.Itoa(b.connections), "-d", b.duration.String(), "--latency"}
	if c.header != "" {
		args = append(args, "-H", c.header)
	}
	cmd := exec.CommandContext(ctx, b.wrk, append(args, c.url)...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.Output()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %w", err)
	}
	return parseWrk(string(out))
}

func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	m := rpsLine.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec in wrk's output:\n%s", out)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	for _, l := range latencyLine.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(l[2], 64)
		switch l[3] {
		case "ms":
			v *= 1e3
		case "s":
			v *= 1e6
		}
		if l[1] == "50" {
			r.p50 = v
		} else {
			r.p99 = v
		}
	}
	if m := non2xxLine.FindStringSubmatch(out); m != nil {
		r.non2xx, _ = strconv.Atoi(m[1])
	}
	return r, nil
}

func median(rs []wrkResult, f func(wrkResult) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func report(w io.Writer, b *bench, results map[string][]wrkResult, rounds int) {
	rps := func(r wrkResult) float64 { return r.rps }
	p50 := func(r wrkResult) float64 { return r.p50 }
	p99 := func(r wrkResult) float64 { return r.p99 }
	bare := results["bare"]
	bareRPS, bareP50, bareP99 := median(bare, rps), median(bare, p50), median(bare, p99)
	fmt.Fprintf(w, "\nwrk -t%d -c%d -d%v, medians of %d rounds; bare proxy %.0f req/s, p50 %.0f µs, p99 %.0f µs\n",
		b.threads, b.connections, b.duration, rounds, bareRPS, bareP50, bareP99)
	fmt.Fprintf(w, "%-10s | %-34s | %-34s\n", "store", "keyless: ratio · p50/p99 µs (p99×)", "auth+rate limit+quota: ratio · p50/p99 µs (p99×)")
	for _, st := range b.stores {
		cell := func(name string) string {
			rs := results[name+"/"+st]
			bad := 0
			for _, r := range rs {
				bad += r.non2xx
			}
			s := fmt.Sprintf("%.2f× · %.0f/%.0f (%.2f×)", median(rs, rps)/bareRPS, median(rs, p50), median(rs, p99), median(rs, p99)/bareP99)
			if bad > 0 {
				s += fmt.Sprintf(" %d non-2xx!", bad)
			}
			return s
		}
		fmt.Fprintf(w, "%-10s | %-34s | %-34s\n", st, cell("keyless"), cell("auth"))
	}
	fmt.Fprintln(w)
}

// freeAddr is a free 127.0.0.1 address.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitListening waits up to 60 s for addr to accept a connection.
func waitListening(ctx context.Context, addr string) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("nothing listens on %s after a minute", addr)
}
