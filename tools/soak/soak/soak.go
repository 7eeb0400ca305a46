// Package soak sends a long stream of requests to an HTTP target while it
// samples a process's goroutines, heap and RSS, and tells whether they grow
// with the requests: a leak hunter.
//
//	rep, err := soak.Run(ctx, soak.Config{
//		Target:      soak.Target{Handler: h, Mix: soak.Repeat(soak.Request{Method: "GET", Path: "/"})},
//		Sampler:     soak.Self(), // h runs in this process
//		Requests:    100_000,
//		Duration:    time.Minute, // whichever comes first
//		Concurrency: 8,
//		Thresholds:  soak.DefaultThresholds(),
//	})
//	if err != nil { ... }
//	rep.WriteSummary(os.Stdout)
//	if rep.Failed() { ... } // rep.Breaches name goroutines, heap, rss or requests
//
// A run has four phases. Warmup sends the first requests, so pools, caches
// and lazily built state exist before anything is measured. Then the load
// stops, idle connections are closed, and the baseline is read. The load
// sends the rest of the requests, pausing every Interval to read the
// sampler with no request in flight, so that a reading shows what the
// target keeps rather than what it is busy with. The drain closes idle
// connections again and reads until the goroutines are back within the
// slack of the baseline, or Drain has passed.
//
// Growth is judged two ways: the least-squares slope of each metric
// against the number of requests over the load's samples (per 100,000
// requests), and the difference between the reading after the drain and
// the baseline.
package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/gateway"
)

// Request is one request of the load. Path is appended to the target's
// base URL.
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   string
	// Want is the status the request should get; 0 accepts any. Other
	// statuses are counted as unexpected, and the run fails.
	Want int
	// Check, if set, is called with an answer whose status is Want (or
	// any answer, when Want is 0): an error makes it unexpected too, the
	// error describing it (a header or a body the answer must carry, a
	// bound on how long it took). The body it sees is read up to
	// MaxCheckedBody bytes.
	Check func(Answer) error
	// Kind, if set, names what the request is: the report counts the
	// requests of each kind and how many of them went wrong
	// (Report.Kinds).
	Kind string
	// Alone sends the request with no other request in flight: the load
	// pauses around it as it does around a sample. For a request whose
	// effect reaches every request in flight (one that stops every JS run
	// in flight, say).
	Alone bool
	// Send, if set, makes the request in place of Run's client, for what
	// Method, Path, Header and Body cannot say: a body sent a byte at a
	// time, files changed around a request. base is the target's base URL.
	// Its answer is checked with Want and Check as any other; an error
	// counts as a request without an answer. It must return when ctx ends.
	Send func(ctx context.Context, base string) (Answer, error)
}

// Answer is what a request got back.
type Answer struct {
	Status int
	Header http.Header
	// Body is read only for a Request with Check, up to MaxCheckedBody
	// bytes.
	Body []byte
}

// MaxCheckedBody bounds the part of a body a Request's Check sees.
const MaxCheckedBody = 64 << 10

// Mix returns the i-th request of a run (i counts from 0). It is called
// from several goroutines at once.
type Mix func(i int64) Request

// Repeat is a Mix that sends req every time.
func Repeat(req Request) Mix {
	return func(int64) Request { return req }
}

// Target is what the load is sent to: a running server at URL, or
// Handler, which Run serves on 127.0.0.1:0 for the length of the run.
type Target struct {
	// Name describes the target in the summary and on the chart.
	Name string
	// URL is the base URL of a running server ("http://127.0.0.1:8080").
	URL string
	// Handler is served by Run when URL is empty.
	Handler http.Handler
	// Mix makes the requests.
	Mix Mix
	// Quiesce, if set, is called with no request in flight before the
	// baseline and before the drain readings, after Run has closed its own
	// idle connections. It lets the target close what is merely pooled
	// (its own idle keep-alive connections to upstreams), so pooled
	// connections are not counted as growth.
	Quiesce func(ctx context.Context) error
	// Notes, if set, is called at the end; its lines are added to the
	// summary (e.g. how many webhooks a scenario's target received).
	Notes func() []string
}

// Limits on Config, so that a typing mistake cannot start a run that
// would not end or would exhaust the machine.
const (
	MaxRequests    = 100_000_000
	MaxDuration    = 24 * time.Hour
	MaxConcurrency = 1024
	MinInterval    = 10 * time.Millisecond
	MaxInterval    = 10 * time.Minute
	MaxDrain       = 10 * time.Minute
	MaxSamples     = 100_000
)

// Config is one soak run.
type Config struct {
	Target  Target
	Sampler Sampler
	// Requests stops the run after this many requests, warmup included
	// (1 to MaxRequests).
	Requests int64
	// Duration stops the run after this long, warmup included, if it comes
	// before Requests (1 s to MaxDuration).
	Duration time.Duration
	// Concurrency is the number of clients sending requests in a loop
	// (1 to MaxConcurrency).
	Concurrency int
	// Interval is the time between samples during the load. Default 1 s.
	Interval time.Duration
	// Warmup is the number of requests sent before the baseline, at most a
	// tenth of Requests (and a tenth of Duration). Default 0.
	Warmup int64
	// Drain bounds the wait, after the load, for the goroutines to come
	// back to the baseline. Default 10 s.
	Drain time.Duration
	// Poll is the time between readings while settling before the baseline
	// and during the drain. Default 100 ms.
	Poll time.Duration
	// Timeout bounds each request. Default 10 s.
	Timeout time.Duration
	// Thresholds decide whether the run failed.
	Thresholds Thresholds
	// OnSample, if set, is called with every sample as it is taken, from
	// Run's own goroutines, one call at a time.
	OnSample func(Sample)
	// Log receives the errors of the server Run starts for a Handler.
	// Default: discarded.
	Log *slog.Logger
}

// Phase is the part of a run a sample was taken in.
type Phase string

const (
	PhaseWarmup   Phase = "warmup"
	PhaseBaseline Phase = "baseline"
	PhaseLoad     Phase = "load"
	PhaseDrain    Phase = "drain"
)

// Sample is a Reading taken at a moment of the run.
type Sample struct {
	// Elapsed is the time since the run started.
	Elapsed time.Duration
	// Requests is the number of requests answered so far.
	Requests int64
	Phase    Phase
	Reading
}

func (c *Config) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	t := &c.Target
	switch {
	case t.URL == "" && t.Handler == nil:
		bad("Target: neither URL nor Handler is set")
	case t.URL != "" && t.Handler != nil:
		bad("Target: both URL and Handler are set; choose one")
	case t.URL != "" && !strings.HasPrefix(t.URL, "http://") && !strings.HasPrefix(t.URL, "https://"):
		bad("Target.URL %q: not an http:// or https:// URL", t.URL)
	}
	if t.Mix == nil {
		bad("Target.Mix is not set")
	}
	if c.Sampler == nil {
		bad("Sampler is not set")
	}
	if c.Requests < 1 || c.Requests > MaxRequests {
		bad("Requests %d: must be between 1 and %d", c.Requests, MaxRequests)
	}
	if c.Duration < time.Second || c.Duration > MaxDuration {
		bad("Duration %v: must be between 1s and %v", c.Duration, MaxDuration)
	}
	if c.Concurrency < 1 || c.Concurrency > MaxConcurrency {
		bad("Concurrency %d: must be between 1 and %d", c.Concurrency, MaxConcurrency)
	}
	if c.Interval != 0 && (c.Interval < MinInterval || c.Interval > MaxInterval) {
		bad("Interval %v: must be between %v and %v", c.Interval, MinInterval, MaxInterval)
	}
	if c.Interval > 0 && c.Duration/c.Interval > MaxSamples {
		bad("Interval %v with Duration %v would take %d samples; at most %d", c.Interval, c.Duration, c.Duration/c.Interval, MaxSamples)
	}
	if c.Warmup < 0 {
		bad("Warmup %d: must not be negative", c.Warmup)
	}
	if c.Drain < 0 || c.Drain > MaxDrain {
		bad("Drain %v: must be between 0 and %v", c.Drain, MaxDrain)
	}
	if c.Poll < 0 || c.Timeout < 0 {
		bad("Poll %v, Timeout %v: must not be negative", c.Poll, c.Timeout)
	}
	if err := c.Thresholds.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c *Config) setDefaults() {
	if c.Interval == 0 {
		c.Interval = time.Second
	}
	if c.Drain == 0 {
		c.Drain = 10 * time.Second
	}
	if c.Poll == 0 {
		c.Poll = 100 * time.Millisecond
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	c.Warmup = min(c.Warmup, c.Requests/10)
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// settleMax bounds the wait for the goroutines to settle before the
// baseline.
const settleMax = 3 * time.Second

// Run sends the load and samples the target's process, and reports what
// grew. It returns an error when the run could not be made (bad Config,
// the handler could not be served, the sampler failed); the report then
// holds what was measured until then, or is nil. Cancelling ctx stops the
// load early; the drain and the report still follow.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	cfg.setDefaults()
	r := &runner{cfg: cfg, base: strings.TrimSuffix(cfg.Target.URL, "/"), statuses: map[int]int64{}, kinds: map[string]*KindCount{}}
	if cfg.Target.Handler != nil {
		srv, err := gateway.Listen("127.0.0.1:0", cfg.Target.Handler, cfg.Log)
		if err != nil {
			return nil, fmt.Errorf("soak: serving the handler: %w", err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
		r.base = srv.URL()
	}
	r.transport = &http.Transport{
		MaxIdleConns:        cfg.Concurrency,
		MaxIdleConnsPerHost: cfg.Concurrency,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	defer r.transport.CloseIdleConnections()
	// A redirect is the answer to check, not a request to make: a client
	// that followed it would report the status of another request.
	r.client = &http.Client{Transport: r.transport, Timeout: cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return r.run(ctx)
}

type runner struct {
	cfg       Config
	base      string
	transport *http.Transport
	client    *http.Client
	start     time.Time

	next atomic.Int64 // index of the next request to send
	done atomic.Int64 // requests answered (any status)
	// gate is held for reading around each request and for writing
	// around each sample, so samples are taken with no request in flight.
	gate sync.RWMutex

	mu              sync.Mutex // guards what follows
	samples         []Sample
	statuses        map[int]int64
	kinds           map[string]*KindCount
	errs            int64
	firstErr        string
	unexpected      int64
	firstUnexpected string
	interrupted     int64
}

func (r *runner) run(ctx context.Context) (*Report, error) {
	cfg := &r.cfg
	r.start = time.Now()
	deadline := r.start.Add(cfg.Duration)
	// The load stops when ctx ends or sampling fails. Sampling goes on
	// after ctx ends (Ctrl-C on the command line), so that the run still
	// gets its baseline, drain and report; each of those is bounded in
	// time on its own (settleMax, Drain, the sampler's timeout).
	loadCtx, stopLoad := context.WithCancelCause(ctx)
	defer stopLoad(nil)
	sampleCtx := context.WithoutCancel(ctx)
	var loadTime time.Duration

	if cfg.Warmup > 0 {
		stop := r.sampleEvery(sampleCtx, PhaseWarmup, stopLoad)
		warmEnd := r.start.Add(cfg.Duration / 10)
		loadTime += r.load(loadCtx, cfg.Warmup, warmEnd)
		if err := stop(); err != nil {
			return r.report(loadTime, 0), err
		}
	}
	warmup := r.done.Load()

	if err := r.quiesce(sampleCtx); err != nil {
		return r.report(loadTime, 0), err
	}
	baseline, err := r.settle(sampleCtx)
	if err != nil {
		return r.report(loadTime, 0), err
	}
	r.record(baseline, PhaseBaseline)
	baseGroups := r.goroutineGroups(sampleCtx)

	stop := r.sampleEvery(sampleCtx, PhaseLoad, stopLoad)
	loadTime += r.load(loadCtx, cfg.Requests, deadline)
	interrupted := ctx.Err() != nil
	if err := stop(); err != nil {
		return r.report(loadTime, warmup), err
	}
	end, err := cfg.Sampler.Read(sampleCtx)
	if err != nil {
		return r.report(loadTime, warmup), fmt.Errorf("sampling at the end of the load: %w", err)
	}
	r.record(end, PhaseLoad)

	drainStart := time.Now()
	if err := r.drain(sampleCtx, baseline); err != nil {
		return r.report(loadTime, warmup), err
	}
	rep := r.report(loadTime, warmup)
	rep.Drained = time.Since(drainStart)
	rep.Interrupted = interrupted
	rep.GoroutinesGained = gained(baseGroups, r.goroutineGroups(sampleCtx))
	rep.judge()
	return rep, nil
}

// load sends requests until limit requests have been sent in all, until
// deadline, or until ctx ends, and returns how long it took.
func (r *runner) load(ctx context.Context, limit int64, deadline time.Time) time.Duration {
	began := time.Now()
	var wg sync.WaitGroup
	for range r.cfg.Concurrency {
		wg.Go(func() { r.sendLoop(ctx, limit, deadline) })
	}
	wg.Wait()
	// Each client took one index past the limit before it stopped.
	if r.next.Load() > limit {
		r.next.Store(limit)
	}
	return time.Since(began)
}

// sendLoop is one client: it sends requests one after another.
func (r *runner) sendLoop(ctx context.Context, limit int64, deadline time.Time) {
	var (
		statuses                      = map[int]int64{}
		kinds                         = map[string]*KindCount{}
		errs, unexpected, interrupted int64
		firstErr, firstUnexpected     string
	)
	defer func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		for code, n := range statuses {
			r.statuses[code] += n
		}
		for name, k := range kinds {
			r.kinds[name] = r.kinds[name].add(k)
		}
		r.errs += errs
		r.unexpected += unexpected
		r.interrupted += interrupted
		if r.firstErr == "" {
			r.firstErr = firstErr
		}
		if r.firstUnexpected == "" {
			r.firstUnexpected = firstUnexpected
		}
	}()
	for ctx.Err() == nil && time.Now().Before(deadline) {
		i := r.next.Add(1) - 1
		if i >= limit {
			return
		}
		req := r.cfg.Target.Mix(i)
		if req.Alone {
			r.gate.Lock()
		} else {
			r.gate.RLock()
		}
		ans, err := r.send(ctx, req)
		if req.Alone {
			r.gate.Unlock()
		} else {
			r.gate.RUnlock()
		}
		if err != nil && ctx.Err() != nil {
			interrupted++
			continue
		}
		var kind *KindCount
		if req.Kind != "" {
			if kind = kinds[req.Kind]; kind == nil {
				kind = &KindCount{Kind: req.Kind}
				kinds[req.Kind] = kind
			}
			kind.Sent++
		}
		if err != nil {
			errs++
			if firstErr == "" {
				firstErr = err.Error()
			}
			if kind != nil {
				kind.Errors++
				if kind.FirstError == "" {
					kind.FirstError = err.Error()
				}
			}
			r.done.Add(1)
			continue
		}
		statuses[ans.Status]++
		if why := mismatch(req, ans); why != "" {
			unexpected++
			if firstUnexpected == "" {
				firstUnexpected = why
			}
			if kind != nil {
				kind.Unexpected++
				if kind.FirstUnexpected == "" {
					kind.FirstUnexpected = why
				}
			}
		}
		r.done.Add(1)
	}
}

// mismatch says how ans differs from what req wants; "" when it does not.
func mismatch(req Request, ans Answer) string {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	if req.Want != 0 && ans.Status != req.Want {
		return fmt.Sprintf("%s %s answered %d, want %d", method, req.Path, ans.Status, req.Want)
	}
	if req.Check != nil {
		if err := req.Check(ans); err != nil {
			return fmt.Sprintf("%s %s answered %d: %v", method, req.Path, ans.Status, err)
		}
	}
	return ""
}

// send makes one request and reads its whole response.
func (r *runner) send(ctx context.Context, req Request) (Answer, error) {
	if req.Send != nil {
		return req.Send(ctx, r.base)
	}
	var body io.Reader
	if req.Body != "" {
		body = strings.NewReader(req.Body)
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	hreq, err := http.NewRequestWithContext(ctx, method, r.base+req.Path, body)
	if err != nil {
		return Answer{}, err
	}
	if req.Header != nil {
		hreq.Header = req.Header.Clone()
	}
	resp, err := r.client.Do(hreq)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	ans := Answer{Status: resp.StatusCode, Header: resp.Header}
	if req.Check != nil {
		if ans.Body, err = io.ReadAll(io.LimitReader(resp.Body, MaxCheckedBody)); err != nil {
			return Answer{}, fmt.Errorf("%s %s: reading the response: %w", method, req.Path, err)
		}
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return Answer{}, fmt.Errorf("%s %s: reading the response: %w", method, req.Path, err)
	}
	return ans, nil
}

// sampleEvery reads the sampler every Interval, until the returned stop is
// called; stop waits for the sampling goroutine and returns its error. A
// failed reading stops the load through stopLoad.
func (r *runner) sampleEvery(ctx context.Context, phase Phase, stopLoad context.CancelCauseFunc) (stop func() error) {
	ctx, cancel := context.WithCancel(ctx)
	var (
		wg  sync.WaitGroup
		err error
	)
	wg.Go(func() {
		tick := time.NewTicker(r.cfg.Interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			// Hold the load while reading: the reading then sees what
			// the target retains, not the requests it is serving.
			r.gate.Lock()
			reading, rerr := r.cfg.Sampler.Read(ctx)
			if rerr == nil && ctx.Err() == nil {
				r.record(reading, phase)
			}
			r.gate.Unlock()
			if ctx.Err() != nil {
				return
			}
			if rerr != nil {
				err = fmt.Errorf("sampling during the %s: %w", phase, rerr)
				stopLoad(err)
				return
			}
		}
	})
	return func() error {
		cancel()
		wg.Wait()
		return err
	}
}

// record keeps a reading as a sample of the run.
func (r *runner) record(reading Reading, phase Phase) Sample {
	s := Sample{Elapsed: time.Since(r.start), Requests: r.done.Load(), Phase: phase, Reading: reading}
	r.mu.Lock()
	r.samples = append(r.samples, s)
	r.mu.Unlock()
	if r.cfg.OnSample != nil {
		r.cfg.OnSample(s)
	}
	return s
}

// quiesce closes idle connections: Run's own, then the target's.
func (r *runner) quiesce(ctx context.Context) error {
	r.transport.CloseIdleConnections()
	if r.cfg.Target.Quiesce != nil {
		if err := r.cfg.Target.Quiesce(ctx); err != nil {
			return fmt.Errorf("quiescing the target: %w", err)
		}
	}
	return nil
}

// settle reads until the goroutine count holds still for three readings
// (connections closing, handlers returning), at most settleMax, and
// returns the last reading.
func (r *runner) settle(ctx context.Context) (Reading, error) {
	deadline := time.Now().Add(settleMax)
	reading, err := r.cfg.Sampler.Read(ctx)
	if err != nil {
		return reading, fmt.Errorf("sampling the baseline: %w", err)
	}
	if reading.Goroutines < 0 {
		return reading, nil
	}
	tick := time.NewTicker(r.cfg.Poll)
	defer tick.Stop()
	for same := 0; same < 2 && time.Now().Before(deadline); {
		<-tick.C
		next, err := r.cfg.Sampler.Read(ctx)
		if err != nil {
			return reading, fmt.Errorf("sampling the baseline: %w", err)
		}
		if next.Goroutines == reading.Goroutines {
			same++
		} else {
			same = 0
		}
		reading = next
	}
	return reading, nil
}

// goroutineGroups asks the sampler where the goroutines are, if it can
// tell; nil otherwise.
func (r *runner) goroutineGroups(ctx context.Context) []GoroutineGroup {
	l, ok := r.cfg.Sampler.(GoroutineLister)
	if !ok {
		return nil
	}
	groups, err := l.GoroutinesByFunction(ctx)
	if err != nil {
		return nil
	}
	return groups
}

// gained lists the functions with more goroutines after than before, by
// how many more, the most first.
func gained(before, after []GoroutineGroup) []GoroutineGroup {
	had := map[string]int{}
	for _, g := range before {
		had[g.Function] = g.Count
	}
	var out []GoroutineGroup
	for _, g := range after {
		if n := g.Count - had[g.Function]; n > 0 {
			out = append(out, GoroutineGroup{Function: g.Function, Count: n})
		}
	}
	slices.SortStableFunc(out, func(a, b GoroutineGroup) int { return b.Count - a.Count })
	return out
}

// drain closes idle connections and reads every Poll until the goroutines
// are within the slack of the baseline, or Drain has passed; every reading
// is a drain sample, the last one is the reading after the drain.
func (r *runner) drain(ctx context.Context, baseline Reading) error {
	if err := r.quiesce(ctx); err != nil {
		return err
	}
	deadline := time.Now().Add(r.cfg.Drain)
	tick := time.NewTicker(r.cfg.Poll)
	defer tick.Stop()
	for {
		reading, err := r.cfg.Sampler.Read(ctx)
		if err != nil {
			return fmt.Errorf("sampling during the drain: %w", err)
		}
		r.record(reading, PhaseDrain)
		if reading.Goroutines < 0 || baseline.Goroutines < 0 ||
			reading.Goroutines <= baseline.Goroutines+r.cfg.Thresholds.GoroutineSlack ||
			!time.Now().Before(deadline) {
			return nil
		}
		<-tick.C
	}
}
