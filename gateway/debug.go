package gateway

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/tollgate/tollgate/gateway/apidef"
	"github.com/tollgate/tollgate/gateway/chain"
)

// The debug endpoints: Go's profiler and a one-look summary of memory and
// goroutines, for someone chasing memory growth in a running gateway, and
// the Prometheus metrics (metrics.go), for someone watching it.
//
// With enable_http_profiler they are served on the gateway's own port to
// callers presenting the control API secret; with debug_listen, on a
// loopback address of their own without it. Importing net/http/pprof also
// adds its handlers to http.DefaultServeMux; tollgate never serves that
// mux, so those registrations are unreachable unless a program embedding
// the gateway serves it itself.
const (
	debugPprofPrefix = "/debug/pprof/"
	debugSummaryPath = "/debug/summary"
)

// maxProfileSeconds bounds the seconds parameter of the CPU profile, the
// execution trace and delta profiles: a larger value is lowered to it and
// the response says so in profileSecondsHeader.
const maxProfileSeconds = 30

// profileSecondsHeader reports the duration a profile was lowered to.
const profileSecondsHeader = "X-Tollgate-Profile-Seconds"

// summaryTopFunctions is how many goroutine groups the summary lists.
const summaryTopFunctions = 20

// isDebugPath reports whether path is one of the debug endpoints.
func isDebugPath(path string) bool {
	return path == debugSummaryPath || path == metricsPath || path == "/debug/pprof" || strings.HasPrefix(path, debugPprofPrefix)
}

// debugEndpoints serves the debug endpoints and owns the debug listener.
// Profiles that run for a while (CPU profile, trace, delta profiles) end
// early when the gateway shuts down or when the http.Server serving them
// does, so neither shutdown waits for a profile.
type debugEndpoints struct {
	mux *http.ServeMux
	log *slog.Logger

	// ctx ends when the gateway shuts down.
	ctx    context.Context
	cancel context.CancelFunc

	mu sync.Mutex
	// stopping holds, per http.Server that served a debug request, a
	// context that ends when that server starts shutting down.
	stopping map[*http.Server]context.Context

	srv *Server // the debug_listen listener; nil without one
}

func newDebugEndpoints(log *slog.Logger, metrics http.Handler) *debugEndpoints {
	d := &debugEndpoints{log: log, mux: http.NewServeMux(), stopping: map[*http.Server]context.Context{}}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.mux.HandleFunc(debugPprofPrefix, pprof.Index)
	d.mux.HandleFunc(debugPprofPrefix+"cmdline", pprof.Cmdline)
	d.mux.HandleFunc(debugPprofPrefix+"profile", pprof.Profile)
	d.mux.HandleFunc(debugPprofPrefix+"symbol", pprof.Symbol)
	d.mux.HandleFunc(debugPprofPrefix+"trace", pprof.Trace)
	for _, name := range []string{"heap", "goroutine", "allocs", "block", "mutex", "threadcreate"} {
		d.mux.Handle(debugPprofPrefix+name, pprof.Handler(name))
	}
	d.mux.HandleFunc(debugSummaryPath, serveSummary)
	d.mux.Handle(metricsPath, metrics)
	return d
}

// ServeHTTP serves a debug endpoint, without checking who asks: the
// gateway's port checks the secret first (serveDebug), the debug listener
// is loopback only.
func (d *debugEndpoints) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !isDebugPath(r.URL.Path) {
		chain.WriteError(w, r, http.StatusNotFound, chain.CauseUnknownPath, chain.MsgUnknownPath)
		return
	}
	// Only the symbol lookup takes a body (pprof POSTs addresses to it);
	// refusing bodies elsewhere keeps seconds in the query, where it is
	// bounded below.
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.URL.Path != debugPprofPrefix+"symbol" {
		w.Header().Set("Allow", "GET, HEAD")
		chain.WriteControlError(w, http.StatusMethodNotAllowed, chain.CauseControlMethod, "Method not supported: use GET")
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(d.ctx, cancel)()
	if srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server); ok {
		defer context.AfterFunc(d.serverStopping(srv), cancel)()
	}
	r = r.WithContext(ctx)
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		if err := r.ParseForm(); err != nil {
			chain.WriteControlError(w, http.StatusBadRequest, chain.CauseControlBadRequest, "Request malformed: "+err.Error())
			return
		}
		boundSeconds(w, r)
	}
	d.mux.ServeHTTP(w, r)
}

// boundSeconds lowers a seconds parameter above maxProfileSeconds.
// net/http/pprof reads it with FormValue, that is from r.Form, parsed here.
func boundSeconds(w http.ResponseWriter, r *http.Request) {
	v := r.Form.Get("seconds")
	if v == "" {
		return
	}
	sec, err := strconv.ParseFloat(v, 64)
	if err != nil || (sec <= maxProfileSeconds && !math.IsNaN(sec)) {
		return // pprof answers what it does with it
	}
	r.Form.Set("seconds", strconv.Itoa(maxProfileSeconds))
	w.Header().Set(profileSecondsHeader, strconv.Itoa(maxProfileSeconds))
}

// serverStopping is a context that ends when srv starts shutting down.
// http.Server.Shutdown waits for requests in flight, and a profile is one
// for up to maxProfileSeconds; ending it at once lets Shutdown return.
func (d *debugEndpoints) serverStopping(srv *http.Server) context.Context {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ctx, ok := d.stopping[srv]; ok {
		return ctx
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.stopping[srv] = ctx
	srv.RegisterOnShutdown(func() {
		cancel()
		d.mu.Lock()
		delete(d.stopping, srv)
		d.mu.Unlock()
	})
	return ctx
}

// listen starts the debug listener on addr, which must be loopback.
func (d *debugEndpoints) listen(addr string) error {
	if err := apidef.ValidateDebugListen(addr); err != nil {
		return err
	}
	srv, err := Listen(addr, d, d.log)
	if err != nil {
		return fmt.Errorf("debug_listen: %w", err)
	}
	d.srv = srv
	d.log.Info("debug endpoints listening, without authentication", "addr", srv.Addr())
	return nil
}

// close ends running profiles and stops the debug listener, waiting for
// its goroutine.
func (d *debugEndpoints) close(ctx context.Context) error {
	d.cancel()
	if d.srv == nil {
		return nil
	}
	if err := d.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("stopping the debug listener: %w", err)
	}
	return nil
}

// DebugAddr is the address the debug_listen listener is bound to (with
// port 0, the port picked), or "" without one.
func (g *Gateway) DebugAddr() string {
	if g.debug == nil || g.debug.srv == nil {
		return ""
	}
	return g.debug.srv.Addr()
}

// serveDebug answers the debug endpoints on the gateway's port: like the
// control API, only with X-Tyk-Authorization equal to tyk.conf's secret,
// and never with no secret set. (Tyk serves them to anyone.)
func (g *Gateway) serveDebug(w http.ResponseWriter, r *http.Request) {
	if g.administrator(w, r, "The debug endpoints are disabled") {
		g.debug.ServeHTTP(w, r)
	}
}

// DebugSummary is the body of /debug/summary. The first five fields keep
// their names: tools watch them over time.
type DebugSummary struct {
	Goroutines     int    `json:"goroutines"`
	HeapInuseBytes uint64 `json:"heap_inuse_bytes"`
	HeapAllocBytes uint64 `json:"heap_alloc_bytes"`
	// RSSBytes is VmRSS from /proc/self/status; 0 where that is not
	// available.
	RSSBytes uint64 `json:"rss_bytes"`
	NumGC    uint32 `json:"num_gc"`
	// StackInuseBytes grows with the number of goroutines and their depth.
	StackInuseBytes uint64 `json:"stack_inuse_bytes"`
	// SysBytes is all the memory the Go runtime got from the OS.
	SysBytes uint64 `json:"sys_bytes"`
	// GoroutinesByFunction groups the goroutines by where they are: the
	// innermost function of their stack outside the runtime (runtime.*,
	// internal/*, sync.*). The largest groups come first, at most 20.
	GoroutinesByFunction []GoroutineGroup `json:"goroutines_by_function"`
}

// GoroutineGroup is a number of goroutines stopped in one function.
type GoroutineGroup struct {
	Function string `json:"function"`
	Count    int    `json:"count"`
}

// serveSummary answers DebugSummary as JSON; ?gc=1 runs a garbage
// collection first, so the heap figures show what is still referenced.
func serveSummary(w http.ResponseWriter, r *http.Request) {
	if gc, _ := strconv.Atoi(r.FormValue("gc")); gc > 0 {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	chain.WriteJSON(w, http.StatusOK, DebugSummary{
		Goroutines:           runtime.NumGoroutine(),
		HeapInuseBytes:       ms.HeapInuse,
		HeapAllocBytes:       ms.HeapAlloc,
		RSSBytes:             readRSS(),
		NumGC:                ms.NumGC,
		StackInuseBytes:      ms.StackInuse,
		SysBytes:             ms.Sys,
		GoroutinesByFunction: goroutinesByFunction(summaryTopFunctions),
	})
}

// readRSS is the process's resident set size from /proc/self/status, or 0
// where there is none.
func readRSS() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest) // "123456 kB"
		if len(fields) != 2 || fields[1] != "kB" {
			return 0
		}
		kb, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			return 0
		}
		return kb * 1024
	}
	return 0
}

// goroutinesByFunction counts the goroutines per innermost function
// outside the runtime and returns the top groups. It takes the same
// goroutine profile as /debug/pprof/goroutine, grouping identical stacks
// before resolving any function name.
func goroutinesByFunction(top int) []GoroutineGroup {
	var records []runtime.StackRecord
	for {
		n := runtime.NumGoroutine()
		records = make([]runtime.StackRecord, n+n/8+8)
		got, ok := runtime.GoroutineProfile(records)
		if ok {
			records = records[:got]
			break
		}
	}
	stacks := map[[32]uintptr]int{}
	for _, rec := range records {
		stacks[rec.Stack0]++
	}
	byFunction := map[string]int{}
	for stack, n := range stacks {
		rec := runtime.StackRecord{Stack0: stack}
		byFunction[waitingIn(rec.Stack())] += n
	}
	groups := make([]GoroutineGroup, 0, len(byFunction))
	for fn, n := range byFunction {
		groups = append(groups, GoroutineGroup{Function: fn, Count: n})
	}
	slices.SortFunc(groups, func(a, b GoroutineGroup) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Function, b.Function))
	})
	return groups[:min(top, len(groups))]
}

// waitingIn names the innermost function of stack outside the runtime and
// the packages it parks in; the innermost function at all if every frame
// is one of those.
func waitingIn(stack []uintptr) string {
	frames := runtime.CallersFrames(stack)
	first := ""
	for {
		f, more := frames.Next()
		if first == "" {
			first = f.Function
		}
		if f.Function != "" && !inRuntime(f.Function) {
			return f.Function
		}
		if !more {
			break
		}
	}
	if first == "" {
		return "unknown"
	}
	return first
}

func inRuntime(fn string) bool {
	return strings.HasPrefix(fn, "runtime.") || strings.HasPrefix(fn, "internal/") ||
		strings.HasPrefix(fn, "sync.") || strings.HasPrefix(fn, "sync/atomic.")
}
