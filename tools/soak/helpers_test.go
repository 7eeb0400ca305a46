package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway"
	"github.com/tollgate/tollgate/specs"
	"github.com/tollgate/tollgate/tools/soak/seed"
	"github.com/tollgate/tollgate/tools/soak/soak"
)

// seedDir is fixtures/seed, from this package's folder.
const seedDir = "../../fixtures/seed"

// shortRun is a soak of a few thousand requests, bounded in time, sampled
// often enough for the least-squares fit to have points, with the default
// thresholds.
func shortRun(target soak.Target, sampler soak.Sampler) soak.Config {
	return soak.Config{
		Target:      target,
		Sampler:     sampler,
		Requests:    3000,
		Duration:    90 * time.Second,
		Concurrency: 4,
		Interval:    50 * time.Millisecond,
		Warmup:      300,
		Drain:       2 * time.Second,
		Poll:        20 * time.Millisecond,
		Thresholds:  soak.DefaultThresholds(),
	}
}

// goroutineLeakingHandler answers 204 and leaves behind, for every
// request, a goroutine blocked on a channel, the shape of Tyk #804's leak.
// The spec's cleanup releases them and waits until they have returned.
// started counts the goroutines it left.
func goroutineLeakingHandler() (h http.Handler, started *atomic.Int64) {
	GinkgoHelper()
	release := make(chan struct{})
	var wg sync.WaitGroup
	started = &atomic.Int64{}
	DeferCleanup(func() {
		close(release)
		wg.Wait()
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		wg.Go(func() { <-release })
		w.WriteHeader(http.StatusNoContent)
	}), started
}

// memoryRetainingHandler answers 204 and keeps size bytes of every
// request until the spec ends.
func memoryRetainingHandler(size int) http.Handler {
	GinkgoHelper()
	var (
		mu   sync.Mutex
		kept [][]byte
	)
	DeferCleanup(func() {
		mu.Lock()
		kept = nil
		mu.Unlock()
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, size)
		b[0] = 1
		mu.Lock()
		kept = append(kept, b)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
}

// politeHandler answers 204 and keeps nothing.
func politeHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
}

// every204 is a Mix of GET / expecting 204.
var every204 = soak.Repeat(soak.Request{Method: http.MethodGet, Path: "/", Want: http.StatusNoContent})

// startSeed starts the seed scenario with 8 keys, stopped when the spec
// ends.
func startSeed(opts ...func(*seed.Options)) *seed.Scenario {
	GinkgoHelper()
	o := seed.Options{Dir: seedDir, Keys: 8}
	for _, opt := range opts {
		opt(&o)
	}
	sc, err := seed.Start(o)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) error { return sc.Close(ctx) }, NodeTimeout(15*time.Second))
	return sc
}

// listen serves h on 127.0.0.1:0 until the spec ends, and returns its URL.
func listen(h http.Handler) string {
	GinkgoHelper()
	srv, err := gateway.Listen("127.0.0.1:0", h, slog.New(slog.NewTextHandler(GinkgoWriter, nil)))
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) error { return srv.Shutdown(ctx) }, NodeTimeout(10*time.Second))
	return srv.URL()
}

// withDebugSummary adds GET /debug/summary to h, answered from this
// process's runtime in the shape a gateway's debug summary has (with the
// RSS a gateway without /proc reports: 0); with a secret, only to requests
// carrying it in X-Tyk-Authorization.
func withDebugSummary(h http.Handler, secret string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("GET /debug/summary", func(w http.ResponseWriter, r *http.Request) {
		if secret != "" && r.Header.Get("X-Tyk-Authorization") != secret {
			http.Error(w, `{"error": "Forbidden"}`, http.StatusForbidden)
			return
		}
		if r.URL.Query().Get("gc") == "1" {
			runtime.GC()
		}
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		groups, err := soak.Self().(soak.GoroutineLister).GoroutinesByFunction(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"goroutines":             runtime.NumGoroutine(),
			"heap_inuse_bytes":       m.HeapInuse,
			"heap_alloc_bytes":       m.HeapAlloc,
			"rss_bytes":              0, // as a gateway without /proc reports it
			"num_gc":                 m.NumGC,
			"goroutines_by_function": groups[:min(20, len(groups))],
		})
	})
	return mux
}

// soakCommand runs the command with args, as `go run ./tools/soak args`
// would, and returns its exit status, stdout and stderr.
func soakCommand(ctx context.Context, args ...string) (int, string, string) {
	// The in-process gateway logs to stderr from its own goroutines.
	var stdout, stderr specs.SyncBuffer
	status := run(ctx, args, &stdout, &stderr)
	GinkgoWriter.Printf("soak %s\n-> %d\n%s\n%s\n", strings.Join(args, " "), status, stdout.String(), stderr.String())
	return status, stdout.String(), stderr.String()
}
