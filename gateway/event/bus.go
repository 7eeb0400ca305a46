// Package event carries gateway events (KeyExpired, ...) from the request
// path to their handlers without ever holding a request up: a bounded
// queue feeds a fixed pool of workers that the Bus owns.
//
//	bus := event.NewBus(event.Options{})
//	defer bus.Close(ctx)                       // delivers what is queued, then stops
//	cancel := bus.Subscribe(func(e event.Event) { ... })
//	defer cancel()
//	bus.Publish(event.Event{Type: event.KeyExpired, ...}) // never blocks
package event

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Name is an event type, named as Tyk names it.
type Name string

// The events the gateway fires.
const (
	KeyExpired        Name = "KeyExpired"
	QuotaExceeded     Name = "QuotaExceeded"
	RateLimitExceeded Name = "RateLimitExceeded"
)

// Fired reports whether the gateway fires events named name.
func Fired(name Name) bool {
	switch name {
	case KeyExpired, QuotaExceeded, RateLimitExceeded:
		return true
	}
	return false
}

// Event is one occurrence. Meta is event-specific, e.g. KeyFailureMeta.
type Event struct {
	Type      Name
	APIID     string
	TimeStamp time.Time
	Meta      any
}

// KeyFailureMeta describes an event about a key (Tyk's
// EventKeyFailureMeta). Key is the raw key, as Tyk passes it to webhook
// templates; never log it.
type KeyFailureMeta struct {
	Message            string
	Path               string
	Origin             string
	Key                string
	OriginatingRequest string // base64 of the request in wire format
}

// Options size a Bus.
type Options struct {
	// QueueSize bounds the events waiting for a worker. Default 1024.
	QueueSize int
	// Workers is the number of goroutines delivering events. Default 4.
	Workers int
}

// Bus delivers published events to subscribers on its own workers.
type Bus struct {
	queue chan Event
	stop  chan struct{} // closed when Close gives up waiting
	wg    sync.WaitGroup

	mu     sync.RWMutex // guards closed and subs
	closed bool
	subs   map[uint64]func(Event)
	nextID uint64

	dropped   atomic.Uint64
	delivered atomic.Uint64
}

// NewBus starts a Bus and its workers.
func NewBus(o Options) *Bus {
	if o.QueueSize <= 0 {
		o.QueueSize = 1024
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	b := &Bus{
		queue: make(chan Event, o.QueueSize),
		stop:  make(chan struct{}),
		subs:  map[uint64]func(Event){},
	}
	b.wg.Add(o.Workers)
	for range o.Workers {
		go b.work()
	}
	return b
}

func (b *Bus) work() {
	defer b.wg.Done()
	for e := range b.queue {
		select {
		case <-b.stop:
			b.dropped.Add(1)
			continue // Close gave up: drain without delivering
		default:
		}
		b.deliver(e)
	}
}

func (b *Bus) deliver(e Event) {
	b.mu.RLock()
	subs := make([]func(Event), 0, len(b.subs))
	for _, fn := range b.subs {
		subs = append(subs, fn)
	}
	b.mu.RUnlock()
	for _, fn := range subs {
		fn(e)
	}
	b.delivered.Add(1)
}

// Subscribe calls fn, on a worker, for every event published from now on.
// fn must not block for long: it holds one of the bus's few workers.
// The returned function unsubscribes.
func (b *Bus) Subscribe(fn func(Event)) (cancel func()) {
	b.mu.Lock()
	id := b.nextID
	b.nextID++
	b.subs[id] = fn
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		delete(b.subs, id)
		b.mu.Unlock()
	}
}

// Publish queues e and returns at once. When the queue is full, or the bus
// is closed, e is dropped and counted, and Publish returns false.
func (b *Bus) Publish(e Event) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		b.dropped.Add(1)
		return false
	}
	select {
	case b.queue <- e:
		return true
	default:
		b.dropped.Add(1)
		return false
	}
}

// Dropped counts events that were not delivered: queue full, bus closed,
// or abandoned at Close.
func (b *Bus) Dropped() uint64 { return b.dropped.Load() }

// Delivered counts events handed to the subscribers.
func (b *Bus) Delivered() uint64 { return b.delivered.Load() }

// Close stops accepting events and delivers those already queued until ctx
// ends; what is left then is dropped. It returns when every worker has
// exited. Safe to call twice.
func (b *Bus) Close(ctx context.Context) error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.queue)
	}
	b.mu.Unlock()
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		b.stopOnce()
		<-done
		return ctx.Err()
	}
}

func (b *Bus) stopOnce() {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
}
