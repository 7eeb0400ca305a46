package soak

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Thresholds decide whether a run failed.
type Thresholds struct {
	// GoroutineSlack is how many goroutines more than the baseline may be
	// left after the drain. Always checked when goroutines are measured.
	GoroutineSlack int64
	// HeapMiBPer100k bounds the heap's growth per 100,000 requests, by the
	// least-squares slope (or, with fewer than MinFitPoints samples, by the
	// reading after the drain). 0: not checked.
	HeapMiBPer100k float64
	// HeapGrowthMiB bounds the heap after the drain minus the baseline.
	// 0: not checked.
	HeapGrowthMiB float64
	// RSSMiBPer100k bounds the RSS's least-squares growth per 100,000
	// requests. 0: not checked; RSS lags the heap (the runtime returns
	// memory to the system lazily), so it is noisy on short runs.
	RSSMiBPer100k float64
}

// DefaultThresholds fit the tollgate gateway: a handful of goroutines of
// slack for pooled connections, and 8 MiB of heap per 100,000 requests
// (a leak of about 80 bytes per request). Tyk #804 leaked a goroutine
// with its stack, several KiB, per JS call.
func DefaultThresholds() Thresholds {
	return Thresholds{GoroutineSlack: 8, HeapMiBPer100k: 8}
}

func (t Thresholds) validate() error {
	var errs []error
	if t.GoroutineSlack < 0 {
		errs = append(errs, fmt.Errorf("Thresholds.GoroutineSlack %d: must not be negative", t.GoroutineSlack))
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"HeapMiBPer100k", t.HeapMiBPer100k}, {"HeapGrowthMiB", t.HeapGrowthMiB}, {"RSSMiBPer100k", t.RSSMiBPer100k}} {
		if f.v < 0 || math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			//lint:ignore ST1005 the message starts with the Go field it names
			errs = append(errs, fmt.Errorf("Thresholds.%s %v: must be a number, 0 or more", f.name, f.v))
		}
	}
	return errors.Join(errs...)
}

// MinFitPoints is the number of samples a least-squares slope needs.
const MinFitPoints = 3

// Growth is how one metric changed over a run.
type Growth struct {
	Metric Metric
	// Measured is false when the sampler could not see this metric.
	Measured bool
	// Baseline and AfterDrain are the readings before the load (after the
	// warmup) and after the drain.
	Baseline, AfterDrain int64
	// Points is the number of samples the fit used (FitSamples).
	Points int
	// Intercept and Slope are the least-squares line through those samples,
	// value = Intercept + Slope × requests; Slope is NaN with fewer than
	// MinFitPoints samples.
	Intercept, Slope float64
}

// Delta is the reading after the drain minus the baseline.
func (g Growth) Delta() int64 { return g.AfterDrain - g.Baseline }

// Per100k is the least-squares growth per 100,000 requests (NaN when it
// could not be fitted).
func (g Growth) Per100k() float64 { return g.Slope * 100_000 }

// Breach is a threshold a run went past.
type Breach struct {
	Metric Metric
	// Value and Limit are in the metric's unit: goroutines, MiB, MiB per
	// 100,000 requests, or failed requests.
	Value, Limit float64
	Message      string
}

// Report is what a run measured and concluded.
type Report struct {
	// Target is Target.Name.
	Target      string
	Started     time.Time
	Concurrency int
	Interval    time.Duration
	// Requests is the number of requests answered, Warmup those of them
	// sent before the baseline.
	Requests, Warmup int64
	// Elapsed is the time spent sending requests (warmup and load).
	Elapsed time.Duration
	// Statuses counts the answers by status code.
	Statuses map[int]int64
	// Errors counts requests that got no answer (transport errors,
	// timeouts); FirstError is the first of them.
	Errors     int64
	FirstError string
	// Unexpected counts answers whose status was not the Request's Want.
	Unexpected      int64
	FirstUnexpected string
	// Kinds counts the requests that named their Kind, by kind, in the
	// order of their names.
	Kinds []KindCount
	// Interrupted is true when the run's context ended before the load
	// did; Abandoned counts the requests then given up in flight.
	Interrupted bool
	Abandoned   int64
	// Samples are every reading, in order.
	Samples []Sample
	// Baseline and AfterDrain are the readings growth is measured between.
	Baseline, AfterDrain Sample
	// Drained is how long the drain took.
	Drained time.Duration
	// GoroutinesGained lists the functions that have more goroutines
	// waiting in them after the drain than at the baseline, by how many
	// more, the most first; empty when the sampler cannot say
	// (GoroutineLister).
	GoroutinesGained []GoroutineGroup
	// Growth is by metric, in the order of Metrics.
	Growth     []Growth
	Thresholds Thresholds
	// Breaches is empty when the run passed.
	Breaches []Breach
	// Notes are the target's own lines (Target.Notes).
	Notes []string
}

// KindCount is what became of the requests of one Kind.
type KindCount struct {
	Kind string
	// Sent counts them; Unexpected those answered otherwise than they
	// wanted, Errors those without an answer.
	Sent, Unexpected, Errors    int64
	FirstUnexpected, FirstError string
}

// add sums two counts of the same kind; k may be nil.
func (k *KindCount) add(o *KindCount) *KindCount {
	if k == nil {
		c := *o
		return &c
	}
	k.Sent += o.Sent
	k.Unexpected += o.Unexpected
	k.Errors += o.Errors
	if k.FirstUnexpected == "" {
		k.FirstUnexpected = o.FirstUnexpected
	}
	if k.FirstError == "" {
		k.FirstError = o.FirstError
	}
	return k
}

// Kind is the count of the requests of kind, zero if none was sent.
func (r *Report) Kind(kind string) KindCount {
	for _, k := range r.Kinds {
		if k.Kind == kind {
			return k
		}
	}
	return KindCount{Kind: kind}
}

// Failed reports whether a threshold was passed or requests failed.
func (r *Report) Failed() bool { return len(r.Breaches) > 0 }

// ReqPerSec is the rate of answered requests while sending.
func (r *Report) ReqPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Of is the growth of metric m.
func (r *Report) Of(m Metric) Growth {
	for _, g := range r.Growth {
		if g.Metric == m {
			return g
		}
	}
	return Growth{Metric: m}
}

// Breach is the breach of metric m, if there is one.
func (r *Report) Breach(m Metric) (Breach, bool) {
	for _, b := range r.Breaches {
		if b.Metric == m {
			return b, true
		}
	}
	return Breach{}, false
}

// report gathers what the runner measured. Growth needs a baseline and a
// reading after it; without them it stays empty.
func (r *runner) report(loadTime time.Duration, warmup int64) *Report {
	var notes []string
	if r.cfg.Target.Notes != nil {
		notes = r.cfg.Target.Notes()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := &Report{
		Notes:           notes,
		Target:          r.cfg.Target.Name,
		Started:         r.start,
		Concurrency:     r.cfg.Concurrency,
		Interval:        r.cfg.Interval,
		Requests:        r.done.Load(),
		Warmup:          warmup,
		Elapsed:         loadTime,
		Statuses:        r.statuses,
		Errors:          r.errs,
		FirstError:      r.firstErr,
		Unexpected:      r.unexpected,
		FirstUnexpected: r.firstUnexpected,
		Abandoned:       r.interrupted,
		Samples:         slices.Clone(r.samples),
		Kinds:           kindsByName(r.kinds),
		Thresholds:      r.cfg.Thresholds,
	}
	base := slices.IndexFunc(rep.Samples, func(s Sample) bool { return s.Phase == PhaseBaseline })
	if base < 0 || base == len(rep.Samples)-1 {
		return rep
	}
	rep.Baseline, rep.AfterDrain = rep.Samples[base], rep.Samples[len(rep.Samples)-1]
	fit := rep.FitSamples()
	for _, m := range Metrics {
		g := Growth{Metric: m, Slope: math.NaN()}
		b, okB := rep.Baseline.Value(m)
		a, okA := rep.AfterDrain.Value(m)
		g.Measured = okB && okA
		g.Baseline, g.AfterDrain = b, a
		if g.Measured {
			var xs, ys []float64
			for _, s := range fit {
				if v, ok := s.Value(m); ok {
					xs = append(xs, float64(s.Requests))
					ys = append(ys, float64(v))
				}
			}
			g.Points = len(xs)
			if len(xs) >= MinFitPoints {
				g.Intercept, g.Slope = leastSquares(xs, ys)
			}
		}
		rep.Growth = append(rep.Growth, g)
	}
	return rep
}

// kindsByName lists the counts in the order of their kinds' names.
func kindsByName(kinds map[string]*KindCount) []KindCount {
	var out []KindCount
	for _, k := range kinds {
		out = append(out, *k)
	}
	slices.SortFunc(out, func(a, b KindCount) int { return strings.Compare(a.Kind, b.Kind) })
	return out
}

// FitSamples are the samples the least-squares fits use: those of the
// load. The baseline is left out on purpose: it is read with every
// connection closed, the load's samples with the clients' connections
// open, and that step is not growth.
func (r *Report) FitSamples() []Sample {
	var fit []Sample
	for _, s := range r.Samples {
		if s.Phase == PhaseLoad {
			fit = append(fit, s)
		}
	}
	return fit
}

// leastSquares fits y = a + b·x. With no spread in x the slope is NaN.
func leastSquares(xs, ys []float64) (a, b float64) {
	n := float64(len(xs))
	var mx, my float64
	for i := range xs {
		mx += xs[i]
		my += ys[i]
	}
	mx, my = mx/n, my/n
	var sxy, sxx float64
	for i := range xs {
		sxy += (xs[i] - mx) * (ys[i] - my)
		sxx += (xs[i] - mx) * (xs[i] - mx)
	}
	if sxx == 0 {
		return my, math.NaN()
	}
	b = sxy / sxx
	return my - b*mx, b
}

const mib = 1 << 20

// measured is the number of requests between the baseline and the end of
// the load.
func (r *Report) measured() int64 { return r.Requests - r.Warmup }

// drainPer100k is the growth from the baseline to after the drain, per
// 100,000 requests of the load.
func (r *Report) drainPer100k(g Growth) float64 {
	if r.measured() <= 0 {
		return math.NaN()
	}
	return float64(g.Delta()) / float64(r.measured()) * 100_000
}

// judge fills Breaches.
func (r *Report) judge() {
	t := r.Thresholds
	if failed := r.Errors + r.Unexpected; failed > 0 {
		first := r.FirstError
		if first == "" {
			first = r.FirstUnexpected
		}
		r.Breaches = append(r.Breaches, Breach{Metric: FailedRequests, Value: float64(failed), Limit: 0,
			Message: fmt.Sprintf("requests: %d of %d failed (%d without an answer, %d with an unexpected status); first: %s", failed, r.Requests+r.Errors, r.Errors, r.Unexpected, first)})
	}
	if g := r.Of(Goroutines); g.Measured && g.Delta() > t.GoroutineSlack {
		msg := fmt.Sprintf("goroutines: %d after the drain against %d at the baseline, %+d (%+.0f per 100k requests); at most +%d allowed", g.AfterDrain, g.Baseline, g.Delta(), r.drainPer100k(g), t.GoroutineSlack)
		if len(r.GoroutinesGained) > 0 {
			var where []string
			for _, gg := range r.GoroutinesGained[:min(3, len(r.GoroutinesGained))] {
				where = append(where, fmt.Sprintf("%s %+d", gg.Function, gg.Count))
			}
			msg += "; more of them in " + strings.Join(where, ", ")
		}
		r.Breaches = append(r.Breaches, Breach{Metric: Goroutines, Value: float64(g.Delta()), Limit: float64(t.GoroutineSlack), Message: msg})
	}
	if g := r.Of(Heap); g.Measured && t.HeapMiBPer100k > 0 {
		rate, how := g.Per100k()/mib, fmt.Sprintf("least-squares over %d samples", g.Points)
		if math.IsNaN(rate) {
			rate, how = r.drainPer100k(g)/mib, "from the baseline to after the drain"
		}
		if rate > t.HeapMiBPer100k {
			r.Breaches = append(r.Breaches, Breach{Metric: Heap, Value: rate, Limit: t.HeapMiBPer100k,
				Message: fmt.Sprintf("heap: %+.2f MiB per 100k requests (%s); at most %g allowed", rate, how, t.HeapMiBPer100k)})
		}
	}
	if g := r.Of(Heap); g.Measured && t.HeapGrowthMiB > 0 {
		if d := float64(g.Delta()) / mib; d > t.HeapGrowthMiB {
			r.Breaches = append(r.Breaches, Breach{Metric: Heap, Value: d, Limit: t.HeapGrowthMiB,
				Message: fmt.Sprintf("heap: %.1f MiB after the drain against %.1f MiB at the baseline, %+.1f MiB; at most +%g allowed", float64(g.AfterDrain)/mib, float64(g.Baseline)/mib, d, t.HeapGrowthMiB)})
		}
	}
	if g := r.Of(RSS); g.Measured && t.RSSMiBPer100k > 0 && g.Per100k()/mib > t.RSSMiBPer100k {
		r.Breaches = append(r.Breaches, Breach{Metric: RSS, Value: g.Per100k() / mib, Limit: t.RSSMiBPer100k,
			Message: fmt.Sprintf("rss: %+.2f MiB per 100k requests (least-squares over %d samples); at most %g allowed", g.Per100k()/mib, g.Points, t.RSSMiBPer100k)})
	}
}

// Verdict is "PASS" or "FAIL".
func (r *Report) Verdict() string {
	if r.Failed() {
		return "FAIL"
	}
	return "PASS"
}

// SummaryLines are the summary, one figure per line, as WriteSummary
// prints it and the chart shows it.
func (r *Report) SummaryLines() []string {
	var out []string
	add := func(label, format string, a ...any) {
		out = append(out, fmt.Sprintf("%-12s %s", label, fmt.Sprintf(format, a...)))
	}
	if r.Target != "" {
		add("target", "%s", r.Target)
	}
	add("requests", "%d in %s, %.0f req/s, %d clients; the first %d were warmup", r.Requests, r.Elapsed.Round(time.Millisecond), r.ReqPerSec(), r.Concurrency, r.Warmup)
	codes := slices.Sorted(func(yield func(int) bool) {
		for c := range r.Statuses {
			if !yield(c) {
				return
			}
		}
	})
	var st []string
	for _, c := range codes {
		st = append(st, fmt.Sprintf("%d: %d", c, r.Statuses[c]))
	}
	if len(st) == 0 {
		st = append(st, "none")
	}
	add("statuses", "%s; no answer: %d; unexpected: %d", strings.Join(st, ", "), r.Errors, r.Unexpected)
	for _, k := range r.Kinds {
		line := fmt.Sprintf("%s: %d sent, %d as wanted", k.Kind, k.Sent, k.Sent-k.Unexpected-k.Errors)
		if k.Unexpected > 0 {
			line += fmt.Sprintf(", %d unexpected (first: %s)", k.Unexpected, k.FirstUnexpected)
		}
		if k.Errors > 0 {
			line += fmt.Sprintf(", %d without an answer (first: %s)", k.Errors, k.FirstError)
		}
		add("kind", "%s", line)
	}
	if r.Interrupted {
		add("interrupted", "the load was stopped before its end; %d requests in flight were given up", r.Abandoned)
	}
	if len(r.Growth) == 0 {
		add("growth", "not measured: the run ended before the baseline and a reading after it")
	}
	for _, g := range r.Growth {
		label := map[Metric]string{Goroutines: "goroutines", Heap: "heap in use", RSS: "RSS"}[g.Metric]
		if !g.Measured {
			add(label, "not measured by this sampler")
			continue
		}
		drainRate := r.drainPer100k(g)
		if g.Metric == Goroutines {
			add(label, "baseline %d, after drain %d (%+d, %s per 100k); slope %s per 100k requests", g.Baseline, g.AfterDrain, g.Delta(), signed(drainRate, 1), signed(g.Per100k(), 1))
			continue
		}
		add(label, "baseline %.1f MiB, after drain %.1f MiB (%+.1f MiB, %s MiB per 100k); slope %s MiB per 100k requests",
			float64(g.Baseline)/mib, float64(g.AfterDrain)/mib, float64(g.Delta())/mib, signed(drainRate/mib, 2), signed(g.Per100k()/mib, 2))
	}
	add("samples", "%d, every %v during the load; drain %s", len(r.Samples), r.Interval, r.Drained.Round(time.Millisecond))
	t := r.Thresholds
	lim := []string{fmt.Sprintf("goroutines +%d after drain", t.GoroutineSlack)}
	if t.HeapMiBPer100k > 0 {
		lim = append(lim, fmt.Sprintf("heap %g MiB per 100k", t.HeapMiBPer100k))
	}
	if t.HeapGrowthMiB > 0 {
		lim = append(lim, fmt.Sprintf("heap +%g MiB after drain", t.HeapGrowthMiB))
	}
	if t.RSSMiBPer100k > 0 {
		lim = append(lim, fmt.Sprintf("RSS %g MiB per 100k", t.RSSMiBPer100k))
	}
	add("thresholds", "%s", strings.Join(lim, ", "))
	for _, n := range r.Notes {
		add("note", "%s", n)
	}
	add("verdict", "%s", r.Verdict())
	for _, b := range r.Breaches {
		add("", "%s", b.Message)
	}
	return out
}

// WriteSummary prints the summary.
func (r *Report) WriteSummary(w io.Writer) error {
	_, err := io.WriteString(w, strings.Join(r.SummaryLines(), "\n")+"\n")
	return err
}

// signed formats v with its sign, or "n/a" when it could not be computed.
func signed(v float64, decimals int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	return fmt.Sprintf("%+.*f", decimals, v)
}
