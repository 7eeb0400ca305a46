package jsvm

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrMemoryLimit is wrapped by the error Run (and Compile) returns when
// the run was stopped because the heap passed the MemoryBudget's limit:
//
//	running <name>: JS middleware stopped: the heap passed the JS memory limit (heap 70 MiB, limit 64 MiB)
var ErrMemoryLimit = errors.New("JS middleware stopped: the heap passed the JS memory limit")

// DefaultMemoryLimit is the limit NewMemoryBudget uses when given none:
// half of the Go memory limit (GOMEMLIMIT, debug.SetMemoryLimit) when one
// is set, else 512 MiB. Half, because the heap grows between two looks
// and a script's last step, a string doubled say, cannot be cut short.
func DefaultMemoryLimit() uint64 {
	limit, _ := defaultMemoryLimit()
	return limit
}

// DefaultMemorySource says where DefaultMemoryLimit comes from, for a log:
// "half of GOMEMLIMIT" or "default".
func DefaultMemorySource() string {
	_, source := defaultMemoryLimit()
	return source
}

func defaultMemoryLimit() (uint64, string) {
	if limit := debug.SetMemoryLimit(-1); limit > 0 && limit != math.MaxInt64 {
		return uint64(limit) / 2, "half of GOMEMLIMIT"
	}
	return fallbackMemoryLimit, "default"
}

const fallbackMemoryLimit = 512 << 20

// heapMetric is what the limit is compared with: the bytes of heap
// objects, live or garbage not yet swept (runtime.MemStats.HeapAlloc).
// Reading it does not stop the world, unlike runtime.ReadMemStats.
const heapMetric = "/memory/classes/heap/objects:bytes"

// How often the watcher looks: the further the heap is below the limit,
// the longer it waits, assuming the heap grows by at most a byte a
// nanosecond (about 1 GB/s; otto doubling a string manages a few hundred
// MB/s), between these bounds.
const (
	minWatchInterval = time.Millisecond
	maxWatchInterval = 10 * time.Millisecond
)

// MemoryOptions configure a MemoryBudget.
type MemoryOptions struct {
	// Limit is the heap size, in bytes, past which runs are stopped;
	// 0 means DefaultMemoryLimit().
	Limit uint64
	// Log receives a line for every time the limit is passed; nil
	// discards it.
	Log *slog.Logger
	// Heap reports the heap size compared with Limit; nil means the
	// runtime's (heapMetric). Tests use it to pass the limit on demand.
	Heap func() uint64
}

// MemoryBudget stops JS runs when the Go heap grows past a limit. otto has
// no memory limit of its own: a script that keeps doubling a string can
// take the whole process down within a second, faster than a timeout.
//
//	budget := jsvm.NewMemoryBudget(jsvm.MemoryOptions{Limit: 512 << 20, Log: log})
//	defer budget.Close()
//	prog, err := jsvm.Compile(spec, sources, jsvm.Config{Memory: budget, ...})
//
// Programs compiled with it register every run (and the scripts' load in
// Compile) while it is in flight. One goroutine, owned by the budget,
// looks at the heap through runtime/metrics while at least one run is in
// flight, and waits on a channel otherwise. When the heap is past the
// limit it interrupts every run in flight, the way a timeout does (otto's
// Interrupt channel, and the run's context for the Go calls it is in):
// they fail with ErrMemoryLimit and their VMs are discarded. Go cannot
// tell which goroutine allocated, so every run in flight is stopped,
// whichever API it belongs to, and the log names their APIs. The last
// stopped run to return collects the garbage and returns it to the
// operating system (debug.FreeOSMemory) before its request is answered,
// so the runs after it find the heap below the limit again.
//
// The heap is the process's: the limit must leave room for what the
// gateway holds besides JS. It counts garbage not yet collected too, so
// with GOGC=off the heap passes the limit with garbage alone; runs in
// flight are then stopped and the garbage collected. A single Go call
// cannot be cut short (otto doubling a string copies it in one call), so
// the heap may pass the limit by what the runs in flight allocate in
// their last step.
type MemoryBudget struct {
	limit uint64
	log   *slog.Logger
	heap  func() uint64

	running  sync.Map     // *vm → struct{}: the runs in flight
	inflight atomic.Int64 // len(running)
	// pending counts runs stopped for memory that have not returned yet;
	// the one that brings it to zero collects the garbage.
	pending atomic.Int64
	trips   atomic.Uint64

	wake      chan struct{} // buffered 1: a run entered while none was in flight
	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// NewMemoryBudget starts a budget's watcher; Close stops it.
func NewMemoryBudget(o MemoryOptions) *MemoryBudget {
	if o.Limit == 0 {
		o.Limit = DefaultMemoryLimit()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Heap == nil {
		o.Heap = runtimeHeap()
	}
	b := &MemoryBudget{
		limit: o.Limit,
		log:   o.Log.With("prefix", "jsvm"),
		heap:  o.Heap,
		wake:  make(chan struct{}, 1),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go b.watch()
	return b
}

// runtimeHeap reads heapMetric; the sample is reused, and only the
// watcher calls it.
func runtimeHeap() func() uint64 {
	sample := []metrics.Sample{{Name: heapMetric}}
	return func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
}

// Limit is the heap size, in bytes, past which runs are stopped.
func (b *MemoryBudget) Limit() uint64 { return b.limit }

// Trips counts the times Check found the heap past the limit and stopped
// runs.
func (b *MemoryBudget) Trips() uint64 { return b.trips.Load() }

// Close stops the watcher and waits for it. Runs in flight are not
// stopped. Later calls do nothing; a nil budget may be closed.
func (b *MemoryBudget) Close() {
	if b == nil {
		return
	}
	b.closeOnce.Do(func() { close(b.quit) })
	<-b.done
}

// watch calls Check while runs are in flight, and sleeps on b.wake while
// none is.
func (b *MemoryBudget) watch() {
	defer close(b.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		if b.inflight.Load() == 0 {
			select {
			case <-b.wake:
				continue
			case <-b.quit:
				return
			}
		}
		timer.Reset(b.Check())
		select {
		case <-timer.C:
		case <-b.quit:
			return
		}
	}
}

// Check compares the heap with the limit once and, past it, interrupts
// every run in flight. It returns how long the watcher may wait before the
// next look. The watcher calls it; tests may too.
func (b *MemoryBudget) Check() time.Duration {
	heap := b.heap()
	if heap <= b.limit {
		return min(max(time.Duration(b.limit-heap), minWatchInterval), maxWatchInterval)
	}
	var apis []string
	b.running.Range(func(k, _ any) bool {
		v := k.(*vm)
		if v.stopForMemory(b, heap) {
			if !slices.Contains(apis, v.api) {
				apis = append(apis, v.api)
			}
		}
		return true
	})
	if len(apis) > 0 {
		b.trips.Add(1)
		b.log.Error("the heap passed the JS memory limit: stopping the JS runs in flight",
			"heap_mib", heap>>20, "limit_mib", b.limit>>20, "api_ids", apis)
	}
	return minWatchInterval
}

// enter registers v's run as in flight; cancel ends the run's context,
// so that a Go call the script is waiting in (TykMakeHttpRequest reading a
// large response, say) ends with it.
func (b *MemoryBudget) enter(v *vm, cancel context.CancelFunc) {
	v.mem.Lock()
	v.mem.active, v.mem.stopped, v.mem.heap, v.mem.cancel = true, false, 0, cancel
	v.mem.Unlock()
	b.running.Store(v, struct{}{})
	if b.inflight.Add(1) == 1 {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
}

// leave ends v's run. stopped reports that the budget interrupted it (the
// interrupt may still be pending, so v must not run again), and heap what
// the heap was then. A stopped run must call settle once its VM is
// dropped.
func (b *MemoryBudget) leave(v *vm) (stopped bool, heap uint64) {
	v.mem.Lock()
	v.mem.active, v.mem.cancel = false, nil
	stopped, heap = v.mem.stopped, v.mem.heap
	v.mem.Unlock()
	b.running.Delete(v)
	b.inflight.Add(-1)
	return stopped, heap
}

// settle is called by a run the budget stopped once nothing refers to its
// VM any more; the last of them collects the garbage they left, so the
// next runs are not stopped for it.
func (b *MemoryBudget) settle() {
	if b.pending.Add(-1) == 0 {
		debug.FreeOSMemory()
	}
}

// memState is a VM's part in the budget, guarded by its mutex so that
// the watcher never interrupts a VM between runs.
type memState struct {
	sync.Mutex
	active  bool               // a run is in flight
	stopped bool               // the budget interrupted it
	heap    uint64             // the heap when it did
	cancel  context.CancelFunc // ends the run's context
}

// stopForMemory interrupts v's run if one is in flight and was not
// stopped yet, and reports whether it did. The run is counted in
// b.pending before it can see the interrupt, so its settle never comes
// first.
func (v *vm) stopForMemory(b *MemoryBudget, heap uint64) bool {
	v.mem.Lock()
	defer v.mem.Unlock()
	if !v.mem.active || v.mem.stopped {
		return false
	}
	b.pending.Add(1)
	v.mem.stopped, v.mem.heap = true, heap
	v.interrupt()
	v.mem.cancel()
	return true
}
