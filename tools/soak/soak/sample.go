package soak

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Metric names what is sampled; breaches, the CSV and the chart use these
// names.
type Metric string

const (
	Goroutines Metric = "goroutines"
	Heap       Metric = "heap"
	RSS        Metric = "rss"
	// FailedRequests is the metric of a breach about the requests
	// themselves (no answer, unexpected status), not a sampled one.
	FailedRequests Metric = "requests"
)

// Metrics are the sampled metrics, in the order of the chart's panels.
var Metrics = []Metric{Goroutines, Heap, RSS}

// Unmeasured marks a value a sampler cannot see.
const Unmeasured = -1

// Reading is one look at the process under test. A value a sampler cannot
// see is Unmeasured.
type Reading struct {
	// Goroutines is the number of goroutines.
	Goroutines int64
	// HeapInuse is the heap in use right after a full collection, in bytes
	// (runtime.MemStats.HeapInuse after runtime.GC).
	HeapInuse int64
	// RSS is the resident set size in bytes (VmRSS in /proc/<pid>/status).
	RSS int64
}

// Unknown is a Reading with nothing measured.
func Unknown() Reading {
	return Reading{Goroutines: Unmeasured, HeapInuse: Unmeasured, RSS: Unmeasured}
}

// Value is the reading of m, and whether it was measured.
func (r Reading) Value(m Metric) (int64, bool) {
	var v int64
	switch m {
	case Goroutines:
		v = r.Goroutines
	case Heap:
		v = r.HeapInuse
	case RSS:
		v = r.RSS
	default:
		return 0, false
	}
	return v, v >= 0
}

// A Sampler reads the goroutines, heap and RSS of the process under test.
type Sampler interface {
	Read(ctx context.Context) (Reading, error)
}

// GoroutineGroup is a number of goroutines stopped in one function.
type GoroutineGroup struct {
	Function string `json:"function"`
	Count    int    `json:"count"`
}

// A GoroutineLister is a Sampler that can also say where the goroutines
// are: Run asks it after the drain, so that a report of leaked goroutines
// names the function they wait in.
type GoroutineLister interface {
	Sampler
	// GoroutinesByFunction lists goroutine groups, the largest first.
	GoroutinesByFunction(ctx context.Context) ([]GoroutineGroup, error)
}

// SamplerFunc adapts a function to Sampler.
type SamplerFunc func(ctx context.Context) (Reading, error)

// Read calls f.
func (f SamplerFunc) Read(ctx context.Context) (Reading, error) { return f(ctx) }

// Self samples this process: runtime.NumGoroutine, HeapInuse after
// runtime.GC, and VmRSS from /proc/self/status (Unmeasured where /proc is
// not available). The target must then run in this process.
func Self() Sampler { return SelfExcept() }

// SelfExcept samples this process like Self, but leaves out of the
// goroutine count those with a function in their stack whose name starts
// with one of prefixes. It is for a stand-in that runs in the process but
// would be another process in production: the simulated Redis Cluster
// serves each client connection on a goroutine of its own, and go-redis
// opens connections as concurrency requires, so counting them would report
// a growing connection pool as leaked goroutines.
func SelfExcept(prefixes ...string) Sampler {
	return &selfSampler{prefixes: prefixes}
}

type selfSampler struct {
	prefixes []string
	mu       sync.Mutex // guards buf
	buf      []byte
}

var _ GoroutineLister = (*selfSampler)(nil)

func (s *selfSampler) Read(context.Context) (Reading, error) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	r := Reading{Goroutines: int64(runtime.NumGoroutine()), HeapInuse: int64(m.HeapInuse), RSS: Unmeasured}
	if len(s.prefixes) > 0 {
		s.mu.Lock()
		s.buf = allStacks(s.buf)
		r.Goroutines = int64(len(s.goroutines(s.buf)))
		s.mu.Unlock()
	}
	if rss, err := readRSS("/proc/self/status"); err == nil {
		r.RSS = rss
	}
	return r, nil
}

// GoroutinesByFunction groups the goroutines it counts by where they are
// stopped.
func (s *selfSampler) GoroutinesByFunction(context.Context) ([]GoroutineGroup, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = allStacks(s.buf)
	counts := map[string]int{}
	for _, g := range s.goroutines(s.buf) {
		counts[stoppedIn(g)]++
	}
	var out []GoroutineGroup
	for fn, n := range counts {
		out = append(out, GoroutineGroup{Function: fn, Count: n})
	}
	slices.SortFunc(out, func(a, b GoroutineGroup) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Function, b.Function))
	})
	return out, nil
}

// goroutines splits a runtime.Stack dump into goroutines, leaving out
// those with a function starting with one of the prefixes.
func (s *selfSampler) goroutines(dump []byte) [][]byte {
	var out [][]byte
	for g := range bytes.SplitSeq(dump, []byte("\n\n")) {
		if !bytes.HasPrefix(g, []byte("goroutine ")) {
			continue
		}
		excluded := false
		for line := range bytes.SplitSeq(g, []byte("\n")) {
			line = bytes.TrimPrefix(line, []byte("created by "))
			for _, p := range s.prefixes {
				if bytes.HasPrefix(line, []byte(p)) {
					excluded = true
				}
			}
		}
		if !excluded {
			out = append(out, g)
		}
	}
	return out
}

// stoppedIn is the innermost function of a goroutine's stack that is not
// the runtime's or the standard library's synchronisation (runtime.*,
// internal/*, sync.*), without its arguments.
func stoppedIn(g []byte) string {
	first := ""
	for line := range bytes.SplitSeq(g, []byte("\n")) {
		if len(line) == 0 || line[0] == '\t' || bytes.HasPrefix(line, []byte("goroutine ")) || bytes.HasPrefix(line, []byte("created by ")) {
			continue
		}
		fn := string(line)
		if i := strings.LastIndexByte(fn, '('); i > 0 {
			fn = fn[:i]
		}
		if first == "" {
			first = fn
		}
		if !strings.HasPrefix(fn, "runtime.") && !strings.HasPrefix(fn, "internal/") && !strings.HasPrefix(fn, "sync.") {
			return fn
		}
	}
	return first
}

// allStacks is runtime.Stack of every goroutine, in buf if it is large
// enough.
func allStacks(buf []byte) []byte {
	if len(buf) == 0 {
		buf = make([]byte, 256<<10)
	}
	for {
		n := runtime.Stack(buf[:cap(buf)], true)
		if n < cap(buf) {
			return buf[:n]
		}
		buf = make([]byte, 2*cap(buf))
	}
}

// Process samples the RSS of another process from /proc/<pid>/status;
// goroutines and heap are Unmeasured.
func Process(pid int) Sampler {
	path := fmt.Sprintf("/proc/%d/status", pid)
	return SamplerFunc(func(context.Context) (Reading, error) {
		rss, err := readRSS(path)
		if err != nil {
			return Unknown(), err
		}
		r := Unknown()
		r.RSS = rss
		return r, nil
	})
}

// readRSS reads VmRSS (in kB) from a /proc status file.
func readRSS(path string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("reading RSS: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("reading RSS: %s: unexpected VmRSS line %q", path, sc.Text())
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("reading RSS: %s: %w", path, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("reading RSS: %s has no VmRSS line (a kernel thread, or a process that has exited)", path)
}

// DebugSummaryPath is where a gateway serves its runtime summary.
const DebugSummaryPath = "/debug/summary?gc=1"

// debugSummary is the JSON of GET /debug/summary?gc=1.
type debugSummary struct {
	Goroutines           *int64           `json:"goroutines"`
	HeapInuseBytes       *int64           `json:"heap_inuse_bytes"`
	HeapAllocBytes       *int64           `json:"heap_alloc_bytes"`
	RSSBytes             *int64           `json:"rss_bytes"`
	NumGC                *int64           `json:"num_gc"`
	GoroutinesByFunction []GoroutineGroup `json:"goroutines_by_function"`
}

// Debug samples a gateway through GET <baseURL>/debug/summary?gc=1, which
// collects garbage and answers {"goroutines", "heap_inuse_bytes",
// "rss_bytes", ...}. A non-empty secret is sent as X-Tyk-Authorization,
// for a summary served on the gateway's own port. client may be nil.
func Debug(baseURL, secret string, client *http.Client) Sampler {
	if client == nil {
		// No keep-alive: one request per sample, and no idle connection
		// (with its goroutines) left behind in the sampling process.
		client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	}
	return &debugSampler{url: strings.TrimSuffix(baseURL, "/") + DebugSummaryPath, secret: secret, client: client}
}

type debugSampler struct {
	url, secret string
	client      *http.Client
}

var _ GoroutineLister = (*debugSampler)(nil)

func (d *debugSampler) Read(ctx context.Context) (Reading, error) {
	s, err := d.fetch(ctx)
	if err != nil {
		return Unknown(), err
	}
	r := Unknown()
	if s.Goroutines != nil {
		r.Goroutines = *s.Goroutines
	}
	if s.HeapInuseBytes != nil {
		r.HeapInuse = *s.HeapInuseBytes
	}
	// A gateway without /proc reports an RSS of 0.
	if s.RSSBytes != nil && *s.RSSBytes > 0 {
		r.RSS = *s.RSSBytes
	}
	if r == Unknown() {
		return r, fmt.Errorf("debug summary: GET %s: none of goroutines, heap_inuse_bytes, rss_bytes is given", d.url)
	}
	return r, nil
}

// GoroutinesByFunction is the summary's goroutines_by_function.
func (d *debugSampler) GoroutinesByFunction(ctx context.Context) ([]GoroutineGroup, error) {
	s, err := d.fetch(ctx)
	if err != nil {
		return nil, err
	}
	return s.GoroutinesByFunction, nil
}

func (d *debugSampler) fetch(ctx context.Context) (*debugSummary, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.url, nil)
	if err != nil {
		return nil, fmt.Errorf("debug summary: %w", err)
	}
	if d.secret != "" {
		req.Header.Set("X-Tyk-Authorization", d.secret)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("debug summary: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("debug summary: GET %s: %w", d.url, err)
	}
	if resp.StatusCode != http.StatusOK {
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			hint = " (is the secret right?)"
		}
		return nil, fmt.Errorf("debug summary: GET %s answered %s%s: %.200s", d.url, resp.Status, hint, bytes.TrimSpace(body))
	}
	var s debugSummary
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, fmt.Errorf("debug summary: GET %s: not the expected JSON: %w", d.url, err)
	}
	return &s, nil
}

// Combine reads every sampler and keeps, for each metric, the first
// measured value in the order given: Combine(Debug(...), Process(pid))
// takes goroutines and heap from the debug summary and RSS from /proc
// when the summary has none.
func Combine(samplers ...Sampler) Sampler { return combined(samplers) }

type combined []Sampler

var _ GoroutineLister = combined(nil)

func (c combined) Read(ctx context.Context) (Reading, error) {
	out := Unknown()
	var errs []error
	for _, s := range c {
		r, err := s.Read(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if out.Goroutines < 0 {
			out.Goroutines = r.Goroutines
		}
		if out.HeapInuse < 0 {
			out.HeapInuse = r.HeapInuse
		}
		if out.RSS < 0 {
			out.RSS = r.RSS
		}
	}
	return out, errors.Join(errs...)
}

// GoroutinesByFunction asks the first sampler that can list goroutines;
// none: nil.
func (c combined) GoroutinesByFunction(ctx context.Context) ([]GoroutineGroup, error) {
	for _, s := range c {
		if l, ok := s.(GoroutineLister); ok {
			return l.GoroutinesByFunction(ctx)
		}
	}
	return nil, nil
}
