package event

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Handler handles one event; a Webhook is one. Handle must return soon
// after ctx ends.
type Handler interface {
	Handle(ctx context.Context, e Event) error
}

// ErrLaneFull is returned by Lane.Handle when the event was dropped: the
// lane's queue was full, or the lane was retired.
var ErrLaneFull = errors.New("event dropped: the handler's queue is full")

// Defaults of LaneOptions.
const (
	DefaultLaneQueueSize = 128
	DefaultLaneWorkers   = 2
	DefaultLaneTimeout   = 10 * time.Second
)

// LaneOptions size one Lane.
type LaneOptions struct {
	// QueueSize bounds the events waiting for this handler. Default
	// DefaultLaneQueueSize.
	QueueSize int
	// Workers is how many of this handler's events run at once. Default
	// DefaultLaneWorkers.
	Workers int
	// Timeout bounds one Handle call. Default DefaultLaneTimeout.
	Timeout time.Duration
	// OnError, if set, is told on a worker of each event Handle failed.
	OnError func(e Event, err error)
}

// LaneStats count what lanes did with the events offered to them.
type LaneStats struct {
	Handled uint64 // Handle returned (Failed included)
	Failed  uint64 // Handle returned an error
	Dropped uint64 // not handled: queue full, lane retired, or given up at Close
	Pending uint64 // accepted, not yet handled or dropped
}

// Lanes gives each handler its own queue and workers, so a handler whose
// target hangs holds up only its own events. Lanes owns every worker it
// starts: Close stops them and waits.
//
//	lanes := event.NewLanes()
//	defer lanes.Close(ctx)
//	lane := lanes.Add(webhook, event.LaneOptions{})
//	lane.Offer(e)          // never blocks; false when dropped
//	lane.Retire(grace)     // on reload: finish what is queued within grace
type Lanes struct {
	ctx    context.Context // ends when Close gives up waiting
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex // guards closed and lanes
	closed bool
	lanes  map[*Lane]struct{}

	handled, failed, dropped, pending atomic.Uint64
}

// NewLanes returns an empty set of lanes.
func NewLanes() *Lanes {
	ctx, cancel := context.WithCancel(context.Background())
	return &Lanes{ctx: ctx, cancel: cancel, lanes: map[*Lane]struct{}{}}
}

// Lane is one handler's queue and workers.
type Lane struct {
	owner   *Lanes
	h       Handler
	timeout time.Duration
	onError func(Event, error)
	queue   chan Event
	ctx     context.Context // ends at the retirement grace, or when Close gives up
	cancel  context.CancelFunc
	grace   *time.Timer // set by Retire

	mu      sync.RWMutex // guards retired (and closing queue)
	retired bool
	running atomic.Int32 // workers not yet exited

	handled, failed, dropped atomic.Uint64
}

// Add starts a lane of o.Workers goroutines for h. After Close it returns
// a lane that drops every event.
func (ls *Lanes) Add(h Handler, o LaneOptions) *Lane {
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultLaneQueueSize
	}
	if o.Workers <= 0 {
		o.Workers = DefaultLaneWorkers
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultLaneTimeout
	}
	ctx, cancel := context.WithCancel(ls.ctx)
	l := &Lane{owner: ls, h: h, timeout: o.Timeout, onError: o.OnError,
		queue: make(chan Event, o.QueueSize), ctx: ctx, cancel: cancel}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.closed {
		l.retired = true
		close(l.queue)
		cancel()
		return l
	}
	ls.lanes[l] = struct{}{}
	l.running.Store(int32(o.Workers))
	ls.wg.Add(o.Workers)
	for range o.Workers {
		go l.work()
	}
	return l
}

// Offer queues e for the lane's handler and returns at once. When the
// queue is full, or the lane is retired, e is dropped and counted, and
// Offer returns false.
func (l *Lane) Offer(e Event) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if !l.retired {
		// Counted before it is queued, so a worker taking it at once never
		// takes the count below zero.
		l.owner.pending.Add(1)
		select {
		case l.queue <- e:
			return true
		default:
			l.owner.pending.Add(^uint64(0))
		}
	}
	l.drop()
	return false
}

// Handle offers e: a Lane stands in for its handler where handlers are
// listed. It returns ErrLaneFull when e was dropped.
func (l *Lane) Handle(_ context.Context, e Event) error {
	if !l.Offer(e) {
		return ErrLaneFull
	}
	return nil
}

func (l *Lane) drop() {
	l.dropped.Add(1)
	l.owner.dropped.Add(1)
}

func (l *Lane) work() {
	defer l.owner.wg.Done()
	defer l.exit()
	for e := range l.queue {
		if l.ctx.Err() != nil {
			// Retired past its grace, or Close gave up: drain, do not deliver.
			l.drop()
			l.owner.pending.Add(^uint64(0))
			continue
		}
		ctx, cancel := context.WithTimeout(l.ctx, l.timeout)
		err := l.h.Handle(ctx, e)
		cancel()
		l.handled.Add(1)
		l.owner.handled.Add(1)
		if err != nil {
			l.failed.Add(1)
			l.owner.failed.Add(1)
			if l.onError != nil {
				l.onError(e, err)
			}
		}
		l.owner.pending.Add(^uint64(0))
	}
}

// exit runs as each worker ends; the last one releases the lane.
func (l *Lane) exit() {
	if l.running.Add(-1) > 0 {
		return
	}
	l.mu.Lock()
	if l.grace != nil {
		l.grace.Stop()
	}
	l.mu.Unlock()
	l.cancel()
	l.owner.mu.Lock()
	delete(l.owner.lanes, l)
	l.owner.mu.Unlock()
}

// Retire stops the lane accepting events and returns at once. What is
// queued is still handled for up to grace; then the event in flight is
// cut off and the rest dropped. The workers then exit. Safe to call twice.
func (l *Lane) Retire(grace time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.retired {
		return
	}
	l.retired = true
	close(l.queue)
	if grace > 0 && l.running.Load() > 0 {
		l.grace = time.AfterFunc(grace, l.cancel)
	}
}

// Stats returns the lane's counters so far (Pending is not kept per lane).
func (l *Lane) Stats() LaneStats {
	return LaneStats{Handled: l.handled.Load(), Failed: l.failed.Load(), Dropped: l.dropped.Load()}
}

// Stats returns the counters of every lane ever added, retired ones too.
func (ls *Lanes) Stats() LaneStats {
	return LaneStats{
		Handled: ls.handled.Load(),
		Failed:  ls.failed.Load(),
		Dropped: ls.dropped.Load(),
		Pending: ls.pending.Load(),
	}
}

// Close retires every lane, lets the workers handle what is queued until
// ctx ends, then cuts off the handlers still running and drops the rest.
// It returns when every worker has exited. Safe to call twice.
func (ls *Lanes) Close(ctx context.Context) error {
	ls.mu.Lock()
	ls.closed = true
	lanes := make([]*Lane, 0, len(ls.lanes))
	for l := range ls.lanes {
		lanes = append(lanes, l)
	}
	ls.mu.Unlock()
	for _, l := range lanes {
		l.Retire(0) // no grace of its own: ctx bounds it
	}
	// Cut off means ctx ended while events were still queued or being
	// handled; an expired ctx with nothing left to do cuts nothing.
	var cutOff atomic.Bool
	stop := context.AfterFunc(ctx, func() {
		cutOff.Store(ls.pending.Load() > 0)
		ls.cancel()
	})
	ls.wg.Wait()
	stop()
	ls.cancel()
	if cutOff.Load() {
		return ctx.Err()
	}
	return nil
}
