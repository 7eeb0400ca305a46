package specs

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega/types"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/gateway/notify"
)

// Steady state: an operation run again and again against a running
// gateway must not leave behind anything that grows with the number of
// runs. The leak guard sees what is still running when a spec ends, after
// Shutdown has tidied up; this sees what piles up while the gateway runs:
// a subscription, a transport or its idle connections, a context
// registration, a map entry per key or nonce, a JS VM kept after use.
//
//	Expect(specs.Repeating(reload, 100)).NotTo(specs.GrowIn(
//		specs.Goroutines, specs.LiveHeap(1<<10), env.UpstreamConns(), env.RedisClients()))
//
// GrowIn runs the operation a few times to warm up (pools fill, lazily
// built things are built), reads every measure, runs the operation n
// times, reads them again, runs it n more times and reads a third time. A
// measure grew when it rose by more than its allowance in both windows: a
// leak grows with every run, a pool that fills late grows once, and noise
// rarely grows twice. The failure names each measure that grew, by how
// much in each window and per run, and for goroutines the functions that
// gained them. Every reading is printed to the spec's output either way.

// Repetition is an operation and how often GrowIn runs it; make one with
// Repeating.
type Repetition struct {
	op     func(run int)
	n      int
	warmup int
	ctx    context.Context
}

// Repeating is op run n times in each of GrowIn's two windows, after a
// warm-up of n/4 runs (at least 5). op gets the number of the run, counted
// from 0 across the warm-up and both windows, to make distinct keys or
// nonces; it fails the spec as any spec code does.
func Repeating(op func(run int), n int) Repetition {
	n = max(n, 1)
	return Repetition{op: op, n: n, warmup: max(n/4, 5)}
}

// AfterWarmingUp sets how many runs come before the first reading: enough
// for whatever the operation legitimately fills (a pool, a cache bounded
// by time) to be full.
func (r Repetition) AfterWarmingUp(runs int) Repetition {
	r.warmup = max(runs, 0)
	return r
}

// WithContext stops the runs when ctx ends (a SpecTimeout), failing the
// match instead of running on after the spec has been given up.
func (r Repetition) WithContext(ctx context.Context) Repetition {
	r.ctx = ctx
	return r
}

func (r Repetition) String() string {
	return fmt.Sprintf("an operation run %d times to warm up, then %d times, then %d more", r.warmup, r.n, r.n)
}

// Gauge is one thing that must not grow with the number of runs:
// Goroutines, LiveHeap, Count, OpenConns, and the Env's Redis and upstream
// counts.
type Gauge struct {
	name  string
	bytes bool // the value is a size, printed in KiB/MiB
	read  func() (sample, error)
	// slack is the growth allowed in a window whatever its length, perRun
	// the growth allowed per run on top of it.
	slack, perRun float64
	// profilesHeap makes the runs record every allocation (see LiveHeap).
	profilesHeap bool
	// settles marks a value that may be above its steady level right
	// after a run (a goroutine or a connection on its way out): it is
	// read again for a while until it is within its allowance.
	settles bool
}

// Current reads the gauge once, for a spec that checks a value rather
// than a growth: Eventually(env.RedisClients().Current).Should(BeZero()).
func (g Gauge) Current() (int64, error) {
	s, err := g.read()
	return s.value, err
}

// sample is one reading: the value and, where known, what it is made of.
type sample struct {
	value int64
	parts map[string]int64
}

// settleFor bounds how long a settling measure is read again; settlePoll
// is how often.
const (
	settleFor  = time.Second
	settlePoll = 10 * time.Millisecond
)

// Goroutines counts the process's goroutines, allowing 2 more a window. A
// failure lists the functions that gained goroutines, named by the
// function each goroutine started in.
var Goroutines = Gauge{name: "goroutines", read: readGoroutines, slack: 2, settles: true}

// heapProfileRate is the runtime.MemProfileRate while LiveHeap is
// measured: on average one sample per 512 bytes allocated, dense enough to
// estimate the simulated cluster's share to a few KiB, where recording
// every allocation would make JS middleware runs several times slower.
const heapProfileRate = 512

// liveHeapSlack is the growth of the live heap allowed in a window on top
// of LiveHeap's per-run allowance: what the collector, the runtime's own
// caches and the harness move by between two readings.
const liveHeapSlack = 64 << 10

// LiveHeap is the heap in use by live objects after two collections
// (HeapAlloc, sync.Pools emptied), allowed to grow by perRun bytes a run
// plus 64 KiB a window. While it is measured, allocations are sampled
// densely for the memory profile (see heapProfileRate): what the profile
// finds held by the simulated Redis nodes is left out, since a real Redis
// lives in another process, and a failure lists the allocation sites whose
// live bytes grew.
func LiveHeap(perRun int64) Gauge {
	return Gauge{name: "live heap (the simulated Redis left out)", bytes: true, read: readLiveHeap,
		slack: liveHeapSlack, perRun: float64(perRun), profilesHeap: true}
}

// Count is a count the spec reads (a gateway.Stats field, say), allowed
// to grow by slack a window. Like the goroutines, it is given a while to
// come down to its allowance after a window: what was still running may
// be on its way out.
func Count(name string, slack int, read func() int) Gauge {
	return Gauge{name: name, slack: float64(slack), settles: true, read: func() (sample, error) {
		return sample{value: int64(read())}, nil
	}}
}

// OpenConns counts the connections open at a server of the harness
// (RecordingUpstream, SlowUpstream), counted on the server's side, allowing
// one more a window. Idle connections a transport keeps count too.
func OpenConns(name string, server interface{ OpenConns() int }) Gauge {
	return Gauge{name: "connections open at " + name, slack: 1, settles: true, read: func() (sample, error) {
		return sample{value: int64(server.OpenConns())}, nil
	}}
}

// UpstreamConns counts the connections open at the recording upstream.
func (e *Env) UpstreamConns() Gauge { return OpenConns("the upstream", e.Upstream) }

// RedisClients counts the client connections open on every master of the
// cluster but the spec's own, allowing 3 more a window (a connection pool
// may open one more per node while it sizes itself). The simulated nodes
// count them themselves (miniredis has no CLIENT LIST) and cannot tell
// the spec's own apart, so there they count too: a spec that needs none
// of them reads the cluster only through these gauges, which make none. A
// real cluster's are counted with CLIENT LIST, leaving out the spec's own
// (named SpecClientName) and the links of replicas.
func (e *Env) RedisClients() Gauge {
	return Gauge{name: "Redis client connections", slack: 3, settles: true, read: func() (sample, error) {
		if e.Cluster != nil {
			return e.perSimulatedNode(func(n *cluster.Node) int { return n.Clients() }), nil
		}
		return e.perMaster(func(ctx context.Context, m *redis.Client) (int64, error) {
			list, err := m.ClientList(ctx).Result()
			return int64(othersConnections(list)), err
		})
	}}
}

// othersConnections counts the lines of CLIENT LIST that are neither the
// spec's own connections nor a replica's link to its master.
func othersConnections(list string) int {
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || slices.Contains(fields, "name="+SpecClientName) {
			continue
		}
		if slices.ContainsFunc(fields, func(f string) bool {
			flags, ok := strings.CutPrefix(f, "flags=")
			return ok && strings.ContainsAny(flags, "SM")
		}) {
			continue
		}
		n++
	}
	return n
}

// NotificationSubscribers counts the subscriptions to
// tyk.cluster.notifications on every node: one per gateway.
func (e *Env) NotificationSubscribers() Gauge {
	return Gauge{name: "subscribers to " + notify.Channel, settles: true, read: func() (sample, error) {
		if e.Cluster != nil {
			return e.perSimulatedNode(func(n *cluster.Node) int { return n.Subscribers(notify.Channel) }), nil
		}
		return e.perNode(func(ctx context.Context, n *redis.Client) (int64, error) {
			counts, err := n.PubSubNumSub(ctx, notify.Channel).Result()
			return counts[notify.Channel], err
		})
	}}
}

// RedisKeys counts the keys stored on every master (DBSIZE).
func (e *Env) RedisKeys() Gauge {
	return Gauge{name: "keys in Redis", read: func() (sample, error) {
		if e.Cluster != nil {
			return e.perSimulatedNode(func(n *cluster.Node) int { return n.Keys() }), nil
		}
		return e.perMaster(func(ctx context.Context, m *redis.Client) (int64, error) {
			return m.DBSize(ctx).Result()
		})
	}}
}

// perSimulatedNode sums f over the simulated cluster's nodes, without a
// connection.
func (e *Env) perSimulatedNode(f func(n *cluster.Node) int) sample {
	s := sample{parts: map[string]int64{}}
	for _, n := range e.Cluster.Nodes() {
		v := int64(f(n))
		s.value += v
		s.parts["on "+n.Addr()] = v
	}
	return s
}

// perMaster sums f over the cluster's masters.
func (e *Env) perMaster(f func(ctx context.Context, m *redis.Client) (int64, error)) (sample, error) {
	return sumOver(e.Redis.ForEachMaster, f)
}

// perNode sums f over every node, replicas included.
func (e *Env) perNode(f func(ctx context.Context, n *redis.Client) (int64, error)) (sample, error) {
	return sumOver(e.Redis.ForEachShard, f)
}

func sumOver(each func(context.Context, func(context.Context, *redis.Client) error) error, f func(context.Context, *redis.Client) (int64, error)) (sample, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var mu sync.Mutex
	s := sample{parts: map[string]int64{}}
	err := each(ctx, func(ctx context.Context, c *redis.Client) error {
		v, err := f(ctx, c)
		mu.Lock()
		defer mu.Unlock()
		s.value += v
		s.parts["on "+c.Options().Addr] = v
		return err
	})
	return s, err
}

// GrowIn is the matcher of steady state: it runs a Repetition and
// succeeds when any of the gauges grew with the number of runs, so a
// spec says
//
//	Expect(specs.Repeating(op, 100)).NotTo(specs.GrowIn(specs.Goroutines, ...))
func GrowIn(gauges ...Gauge) types.GomegaMatcher {
	return &growthMatcher{gauges: gauges}
}

type growthMatcher struct {
	gauges []Gauge
	result growth
}

func (m *growthMatcher) Match(actual any) (bool, error) {
	r, ok := actual.(Repetition)
	if !ok {
		return false, fmt.Errorf("GrowIn runs a specs.Repetition (specs.Repeating(op, n)), not %T", actual)
	}
	if len(m.gauges) == 0 {
		return false, fmt.Errorf("GrowIn needs at least one gauge")
	}
	result, err := r.measure(m.gauges)
	if err != nil {
		return false, err
	}
	m.result = result
	GinkgoWriter.Print(result.String())
	return result.grew(), nil
}

func (m *growthMatcher) FailureMessage(any) string {
	return "Expected something to grow with the number of runs, but nothing did:\n" + m.result.String()
}

func (m *growthMatcher) NegatedFailureMessage(any) string {
	var names []string
	for _, g := range m.result.measures {
		if g.grew() {
			names = append(names, g.name)
		}
	}
	return fmt.Sprintf("Expected nothing to grow with the number of runs, but %s grew:\n%s", strings.Join(names, " and "), m.result.String())
}

// growth is what GrowIn read.
type growth struct {
	rep      Repetition
	measures []measured
}

type measured struct {
	Gauge
	allowed        float64 // per window
	base, mid, end sample
}

func (g measured) windows() (first, second int64) {
	return g.mid.value - g.base.value, g.end.value - g.mid.value
}

func (g measured) grew() bool {
	first, second := g.windows()
	return float64(first) > g.allowed && float64(second) > g.allowed
}

func (g growth) grew() bool {
	return slices.ContainsFunc(g.measures, measured.grew)
}

// measure runs the repetition, reading the measures after the warm-up
// and after each window. Settling measures are read first, so that what
// they wait for to end is gone before the heap is read.
func (r Repetition) measure(gauges []Gauge) (growth, error) {
	g := growth{rep: r}
	for _, m := range gauges {
		g.measures = append(g.measures, measured{Gauge: m, allowed: m.slack + m.perRun*float64(r.n)})
	}
	order := make([]int, len(gauges))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Compare(boolRank(!gauges[a].settles), boolRank(!gauges[b].settles))
	})
	readAll := func(into func(*measured) *sample, ref func(*measured) *sample) error {
		for _, i := range order {
			m := &g.measures[i]
			var before *sample
			if ref != nil {
				before = ref(m)
			}
			s, err := m.take(before, m.allowed)
			if err != nil {
				return fmt.Errorf("reading %s: %w", m.name, err)
			}
			*into(m) = s
		}
		return nil
	}
	if slices.ContainsFunc(gauges, func(m Gauge) bool { return m.profilesHeap }) {
		// Allocations are sampled densely while the operation runs, so that
		// the heap's growth can be told apart from the simulated cluster's
		// and listed by allocation site.
		defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
		runtime.MemProfileRate = heapProfileRate
	}
	run := 0
	runs := func(n int) error {
		for range n {
			if r.ctx != nil && r.ctx.Err() != nil {
				return fmt.Errorf("stopped after %d runs: %w", run, context.Cause(r.ctx))
			}
			r.op(run)
			run++
		}
		return nil
	}
	if err := runs(r.warmup); err != nil {
		return g, err
	}
	if err := readAll(func(m *measured) *sample { return &m.base }, nil); err != nil {
		return g, err
	}
	if err := runs(r.n); err != nil {
		return g, err
	}
	if err := readAll(func(m *measured) *sample { return &m.mid }, func(m *measured) *sample { return &m.base }); err != nil {
		return g, err
	}
	if err := runs(r.n); err != nil {
		return g, err
	}
	err := readAll(func(m *measured) *sample { return &m.end }, func(m *measured) *sample { return &m.mid })
	return g, err
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// take reads m. A settling measure is read again until it is within
// allowed of ref (the lowest value seen is kept), or, with no ref, until
// it has held still for three readings.
func (m Gauge) take(ref *sample, allowed float64) (sample, error) {
	s, err := m.read()
	if err != nil || !m.settles {
		return s, err
	}
	deadline := time.Now().Add(settleFor)
	still := 0
	for time.Now().Before(deadline) {
		if ref != nil && float64(s.value-ref.value) <= allowed {
			return s, nil
		}
		if ref == nil && still >= 3 {
			return s, nil
		}
		time.Sleep(settlePoll) // polling what other goroutines are finishing
		next, err := m.read()
		if err != nil {
			return s, err
		}
		switch {
		case ref == nil && next.value == s.value:
			still++
		case ref == nil:
			still, s = 0, next
		case next.value <= s.value:
			s = next
		}
	}
	return s, nil
}

func (g growth) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "steady state over %s:\n", g.rep)
	for _, m := range g.measures {
		first, second := m.windows()
		verdict := "steady"
		if m.grew() {
			verdict = "GREW"
		}
		fmt.Fprintf(&b, "  %s: %s → %s → %s, %s: %s and %s in the two windows (allowed %s a window)",
			m.name, m.format(m.base.value), m.format(m.mid.value), m.format(m.end.value),
			verdict, m.signed(first), m.signed(second), m.format(int64(math.Round(m.allowed))))
		if m.grew() {
			fmt.Fprintf(&b, ", about %s a run", m.formatRate(float64(first+second)/float64(2*g.rep.n)))
		}
		b.WriteString("\n")
		if m.grew() {
			for _, p := range partsGrown(m.base.parts, m.end.parts, 8) {
				fmt.Fprintf(&b, "      %s %s\n", m.signed(p.by), p.name)
			}
		}
	}
	return b.String()
}

func (m Gauge) format(v int64) string {
	if !m.bytes {
		return fmt.Sprint(v)
	}
	return formatBytes(float64(v))
}

func (m Gauge) signed(v int64) string {
	if v >= 0 {
		return "+" + m.format(v)
	}
	return "-" + m.format(-v)
}

func (m Gauge) formatRate(v float64) string {
	if m.bytes {
		return formatBytes(v)
	}
	return fmt.Sprintf("%.2f", v)
}

func formatBytes(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1<<20:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case a >= 1<<10:
		return fmt.Sprintf("%.1f KiB", v/(1<<10))
	default:
		return fmt.Sprintf("%.0f B", v)
	}
}

type partGrowth struct {
	name string
	by   int64
}

// partsGrown lists the parts that grew from base to end, largest first.
func partsGrown(base, end map[string]int64, top int) []partGrowth {
	var out []partGrowth
	for name, v := range end {
		if d := v - base[name]; d > 0 {
			out = append(out, partGrowth{name, d})
		}
	}
	slices.SortFunc(out, func(a, b partGrowth) int {
		return cmp.Or(cmp.Compare(b.by, a.by), strings.Compare(a.name, b.name))
	})
	return out[:min(top, len(out))]
}

// readLiveHeap collects twice (a sync.Pool is emptied by its second
// collection) and reads the heap in use by live objects, less what the
// simulated Redis nodes hold, twice, keeping the lower reading: what
// another goroutine allocated in between is not the operation's.
func readLiveHeap() (sample, error) {
	var least sample
	for i := range 2 {
		s := liveHeapNow()
		if i == 0 || s.value < least.value {
			least = s
		}
	}
	return least, nil
}

// liveHeapNow is HeapAlloc after two collections less the bytes the memory
// profile finds allocated by the simulated cluster (miniredis keeps a
// version of every key ever written, which a real Redis, in another
// process, does not). The rest is listed by allocation site.
func liveHeapNow() sample {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var records []runtime.MemProfileRecord
	for {
		n, _ := runtime.MemProfile(nil, false)
		records = make([]runtime.MemProfileRecord, n+n/4+16)
		if got, ok := runtime.MemProfile(records, false); ok {
			records = records[:got]
			break
		}
	}
	s := sample{parts: map[string]int64{}}
	var simulated int64
	for _, r := range records {
		inUse := inUseEstimate(r)
		if inUse == 0 {
			continue
		}
		site, sim := allocationSite(r.Stack())
		if sim {
			simulated += inUse
			continue
		}
		s.parts["allocated in "+site] += inUse
	}
	s.value = int64(ms.HeapAlloc) - simulated
	return s
}

// inUseEstimate is the live bytes a profile record stands for: the
// runtime records an allocation of n bytes with probability
// 1-exp(-n/rate), so its sampled bytes are scaled up as pprof scales them.
func inUseEstimate(r runtime.MemProfileRecord) int64 {
	inUse := r.InUseBytes()
	if inUse <= 0 || r.AllocObjects == 0 || heapProfileRate <= 1 {
		return inUse
	}
	avg := float64(r.AllocBytes) / float64(r.AllocObjects)
	return int64(float64(inUse) / (1 - math.Exp(-avg/heapProfileRate)))
}

// allocationSite names where an allocation was made: the innermost
// function of tollgate's, or else the innermost outside the runtime; sim
// reports an allocation made by the simulated cluster, or by the gauges'
// own reading of a real one (go-redis keeps each slot map its
// ForEachMaster reads for a minute).
func allocationSite(stack []uintptr) (site string, sim bool) {
	var ours, other string
	frames := runtime.CallersFrames(stack)
	for {
		f, more := frames.Next()
		fn := f.Function
		switch {
		case strings.HasPrefix(fn, "github.com/alicebob/miniredis/") || strings.HasPrefix(fn, "github.com/tollgate/tollgate/cluster."),
			fn == "github.com/tollgate/tollgate/specs.sumOver":
			return "", true
		case ours == "" && strings.HasPrefix(fn, "github.com/tollgate/tollgate/"):
			ours = fn
		case other == "" && fn != "" && !strings.HasPrefix(fn, "runtime.") && !strings.HasPrefix(fn, "internal/"):
			other = fn
		}
		if !more {
			break
		}
	}
	return cmp.Or(ours, other, "unknown"), false
}

// readGoroutines counts the goroutines, grouped by the function each
// started in (the outermost frame of its stack).
func readGoroutines() (sample, error) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	s := sample{parts: map[string]int64{}}
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if len(bytes.TrimSpace(g)) == 0 {
			continue
		}
		s.value++
		s.parts["started in "+startedIn(string(g))]++
	}
	return s, nil
}

// startedIn names the function a goroutine's stack (runtime.Stack's text)
// started in: the last function before "created by". A goroutine that has
// not run yet shows only the go statement's wrapper, named after the
// function that holds the statement.
func startedIn(stack string) string {
	fn := "unknown"
	for _, line := range strings.Split(stack, "\n")[1:] {
		if strings.HasPrefix(line, "created by ") || strings.HasPrefix(line, "...") {
			break
		}
		if line == "" || strings.HasPrefix(line, "\t") || strings.HasPrefix(line, "runtime.goexit") {
			continue
		}
		fn = line
		if i := strings.LastIndex(fn, "("); i > 0 && strings.HasSuffix(fn, ")") {
			fn = fn[:i]
		}
	}
	if m := goWrapper.FindStringIndex(fn); m != nil {
		fn = "a go statement in " + fn[:m[0]] + ", not running yet"
	}
	return fn
}

// goWrapper ends the name of the function a go statement wraps its call in.
var goWrapper = regexp.MustCompile(`\.gowrap\d+$`)
