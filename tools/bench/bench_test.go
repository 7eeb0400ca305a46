// Package bench measures the gateway over loopback HTTP against a bare
// httputil.ReverseProxy, in the same process and the same run:
//
//	make bench
//
// Every benchmark sends GET requests from parallel clients through a proxy
// to the same small upstream and reports requests per second ("req/s") and
// the median and 99th percentile latency of a request in microseconds
// ("p50-µs", "p99-µs"). The ratio to the baseline is what to watch; the
// absolute figures depend on the machine, and on the simulated cluster
// sharing its CPUs.
//
// The gateway benchmarks run once per store, as sub-benchmarks: "simulated"
// (the embedded simulated cluster, make run's default), "redis" (one
// redis-server the benchmark binary starts on a free 127.0.0.1 port and
// stops when it exits; skipped when redis-server is not installed) and
// "cluster" (the real Redis Cluster named by TOLLGATE_REDIS_CLUSTER, as
// make bench sets it while make cluster-up's cluster answers).
//
// TOLLGATE_BENCH_LIMITER adds tyk.conf fields to the keyed benchmark, to
// compare the rate limiters: for example
// TOLLGATE_BENCH_LIMITER=', "enable_redis_rolling_limiter": true'.
package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/gateway"
)

var quiet = slog.New(slog.DiscardHandler)

// serve runs h on 127.0.0.1:0 until the benchmark ends.
func serve(b *testing.B, h http.Handler) string {
	b.Helper()
	srv, err := gateway.Listen("127.0.0.1:0", h, quiet)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv.URL()
}

// upstream answers every request with a small fixed body.
func upstream(b *testing.B) string {
	return serve(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
}

// load sends b.N GET requests to url from parallel clients, each request
// with the headers of header(i) for its client's i. It reports req/s and
// the p50 and p99 latency (request sent to body read) in microseconds.
func load(b *testing.B, url string, header func(worker int) http.Header) {
	b.Helper()
	transport := &http.Transport{MaxIdleConnsPerHost: 256}
	b.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	var worker int
	var workerMu = make(chan struct{}, 1)
	// One slot per request, allocated before the clock starts: recording a
	// latency is an atomic increment and a store, never an allocation.
	latencies := make([]time.Duration, b.N)
	var recorded atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		workerMu <- struct{}{}
		h := header(worker)
		worker++
		<-workerMu
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.Header = h.Clone()
			sent := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			latencies[recorded.Add(1)-1] = time.Since(sent)
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	done := latencies[:recorded.Load()]
	slices.Sort(done)
	b.ReportMetric(percentile(done, 0.50), "p50-µs")
	b.ReportMetric(percentile(done, 0.99), "p99-µs")
}

// percentile is the nearest-rank p-th percentile of sorted, in
// microseconds; 0 for no values.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	i = min(max(i, 0), len(sorted)-1)
	return float64(sorted[i]) / float64(time.Microsecond)
}

func noHeaders(int) http.Header { return http.Header{} }

// BenchmarkBaseline is a bare httputil.ReverseProxy: the ceiling any
// proxy on this machine can reach.
func BenchmarkBaseline(b *testing.B) {
	target, _ := url.Parse(upstream(b))
	// The same connection reuse as the gateway's transport, so the ratio
	// compares proxies, not connection pools.
	transport := &http.Transport{MaxIdleConnsPerHost: 256}
	b.Cleanup(transport.CloseIdleConnections)
	rp := &httputil.ReverseProxy{Transport: transport, Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}
	load(b, serve(b, rp)+"/", noHeaders)
}

// startGateway starts a gateway on a new simulated cluster serving the
// given API definition ("{{upstream}}" replaced).
func startGateway(b *testing.B, def string, conf string, opts ...gateway.Option) (*gateway.Gateway, string) {
	return startGatewayOn(b, simulated, def, conf, opts...)
}

// startGatewayOn is startGateway on the given store.
func startGatewayOn(b *testing.B, st store, def string, conf string, opts ...gateway.Option) (*gateway.Gateway, string) {
	b.Helper()
	dir := b.TempDir()
	def = strings.ReplaceAll(def, "{{upstream}}", upstream(b))
	if err := os.WriteFile(filepath.Join(dir, "api.json"), []byte(def), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, _, err := gateway.ParseConfig([]byte(conf))
	if err != nil {
		b.Fatal(err)
	}
	cfg.AppPath = dir
	st.configure(b, cfg)
	if base, ok := baseDir(conf); ok {
		cfg.SetBaseDir(base)
	}
	gw, err := gateway.New(cfg, append([]gateway.Option{gateway.WithLogger(quiet)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = gw.Shutdown(context.Background()) })
	return gw, serve(b, gw)
}

// BenchmarkKeyless is the gateway routing and proxying, no key.
func BenchmarkKeyless(b *testing.B) {
	eachStore(b, func(b *testing.B, st store) {
		_, url := startGatewayOn(b, st, `{"api_id": "k", "active": true, "use_keyless": true,
		  "proxy": {"listen_path": "/k/", "target_url": "{{upstream}}", "strip_listen_path": true}}`, `{}`)
		load(b, url+"/k/", noHeaders)
	})
}

// BenchmarkAuthRateLimitQuota is a keyed API: every request loads its
// session (local cache on, as by default), passes the rate limiter (the
// default, GCRA) and counts against a quota, both in Redis. Each client has
// its own key, allowed 100,000,000 requests a second.
func BenchmarkAuthRateLimitQuota(b *testing.B) {
	eachStore(b, func(b *testing.B, st store) {
		_, url := startGatewayOn(b, st, `{"api_id": "a", "active": true,
		  "auth": {"auth_header_name": "x-key"},
		  "enable_non_transactional_rate_limiter": true,
		  "proxy": {"listen_path": "/a/", "target_url": "{{upstream}}", "strip_listen_path": true}}`, `{"secret": "bench"`+os.Getenv("TOLLGATE_BENCH_LIMITER")+`}`)
		keys := createKeys(b, url, 256, `{"access_rights": {"a": {"api_id": "a"}}, "rate": 100000000, "per": 1, "quota_max": 1000000000, "quota_renewal_rate": 3600}`)
		load(b, url+"/a/", func(worker int) http.Header {
			return http.Header{"X-Key": {keys[worker%len(keys)]}}
		})
	})
}

// baseDir is where relative paths of the benchmark's config resolve: the
// seed fixtures, for the seed benchmarks.
func baseDir(conf string) (string, bool) {
	if !strings.Contains(conf, "enable_jsvm") {
		return "", false
	}
	dir, err := filepath.Abs(filepath.Join("..", "..", "fixtures", "seed"))
	return dir, err == nil
}

// seedDefinition is fixtures/seed/apps/security.json; without the JS
// middleware when js is false.
func seedDefinition(b *testing.B, js bool) string {
	b.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "fixtures", "seed", "apps", "security.json"))
	if err != nil {
		b.Fatal(err)
	}
	def := string(data)
	if !js {
		start := strings.Index(def, `"custom_middleware"`)
		end := strings.Index(def, `"cache_options"`)
		def = def[:start] + def[end:]
	}
	return def
}

// benchmarkSeed drives the seed API: header auth on "security", version v1,
// and (with js) the refreshSecurity.js post middleware calling
// TykSetKeyData on every request. "java", the seed's upstream host, is
// the benchmark's upstream.
func benchmarkSeed(b *testing.B, st store, js bool) {
	up := strings.TrimPrefix(upstream(b), "http://")
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if strings.HasPrefix(addr, "java:") {
			addr = up
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	_, url := startGatewayOn(b, st, seedDefinition(b, js), `{"secret": "bench", "enable_jsvm": true}`, gateway.WithDialer(dial))
	keys := createKeys(b, url, 64, fmt.Sprintf(`{"access_rights": {"**************************000001": {"api_id": "**************************000001", "versions": ["v1"]}}, "expires": %d}`, time.Now().Add(time.Hour).Unix()))
	load(b, url+"/security/users/7", func(worker int) http.Header {
		return http.Header{"Security": {keys[worker%len(keys)]}, "X-Api-Version": {"v1"}}
	})
}

// BenchmarkSeedWithoutJS is the seed API with its custom_middleware removed.
func BenchmarkSeedWithoutJS(b *testing.B) {
	eachStore(b, func(b *testing.B, st store) { benchmarkSeed(b, st, false) })
}

// BenchmarkSeedWithJS is the seed API as posted, JS post middleware included.
func BenchmarkSeedWithJS(b *testing.B) {
	eachStore(b, func(b *testing.B, st store) { benchmarkSeed(b, st, true) })
}

// createKeys stores n keys with the given session through the control API
// (secret "bench") and returns them.
func createKeys(b *testing.B, url string, n int, sessionJSON string) []string {
	b.Helper()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("bench-%s-key-%03d", runID, i)
		req, _ := http.NewRequest(http.MethodPost, url+"/tyk/keys/"+keys[i], strings.NewReader(sessionJSON))
		req.Header.Set("X-Tyk-Authorization", "bench")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatalf("creating a key: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("creating a key: status %d", resp.StatusCode)
		}
	}
	return keys
}
