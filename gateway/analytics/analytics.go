// Package analytics records one line per request to Redis, in batches,
// off the request path, from one goroutine it owns.
//
//	rec := analytics.New(client, cfg.AnalyticsConfig, log)
//	rec.Record(analytics.Record{...}) // never blocks
//	err := rec.Close(ctx)             // writes what is buffered, retrying until ctx ends
//	var lost *analytics.NotWrittenError
//	if errors.As(err, &lost) { ... }  // lost.Records did not reach Redis
package analytics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/gateway/apidef"
)

// Key is the Redis list analytics records are appended to, as in
// Tyk. Records are JSON (Tyk writes msgpack).
const Key = "analytics-tyk-system-analytics"

// Record is one request, as recorded.
type Record struct {
	TimeStamp    time.Time `json:"timestamp"`
	APIID        string    `json:"api_id"`
	APIName      string    `json:"api_name"`
	OrgID        string    `json:"org_id"`
	APIVersion   string    `json:"api_version"`
	Method       string    `json:"method"`
	Path         string    `json:"path"`
	ResponseCode int       `json:"response_code"`
	// RequestTime is the request's latency in milliseconds.
	RequestTime int64 `json:"request_time"`
	// APIKey is the key's hash, never the key.
	APIKey    string `json:"api_key"`
	IPAddress string `json:"ip_address"`
	UserAgent string `json:"user_agent"`
}

// Recorder buffers records and writes them to Redis in batches
// from one goroutine it owns. Recording never blocks a request: a full
// buffer drops the record and counts it.
//
// A batch Redis refuses (an error reply such as WRONGTYPE or OOM, which a
// retry would only repeat) is dropped, counted and logged. A batch that got
// no answer (a timeout, a node down, a cluster between owners) is kept and
// written first at the next flush, so a write may reach Redis twice when
// its answer, not the write, was lost: records are written at least once.
type Recorder struct {
	client   redis.UniversalClient
	ignored  []string
	interval time.Duration
	size     int
	log      *slog.Logger

	queue   chan Record
	closed  atomic.Bool
	dropped atomic.Uint64
	written atomic.Uint64

	flushMu sync.Mutex // one flush at a time; guards pending
	// pending are encoded records a write did not get an answer for,
	// written first next time; at most size of them are kept.
	pending []any

	// stopRun ends run, and a periodic write it is waiting on, so Close
	// does not wait for a write that Redis is slow to answer.
	stopRun context.CancelFunc
	runCtx  context.Context
	done    chan struct{}
}

// New starts a recorder writing to client; Close stops it. log receives
// what was dropped; nil discards it.
func New(client redis.UniversalClient, c apidef.AnalyticsConfig, log *slog.Logger) *Recorder {
	size := c.RecordsBufferSize
	if size <= 0 {
		size = 10_000
	}
	interval := time.Duration(c.FlushInterval * float64(time.Second))
	if interval <= 0 {
		interval = time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Recorder{
		client: client, ignored: c.IgnoredIPs, interval: interval, size: size, log: log,
		queue: make(chan Record, size),
		done:  make(chan struct{}),
	}
	a.runCtx, a.stopRun = context.WithCancel(context.Background())
	go a.run()
	return a
}

// run writes what is buffered once an interval until Close.
func (a *Recorder) run() {
	defer close(a.done)
	t := time.NewTicker(a.interval)
	defer t.Stop()
	for {
		select {
		case <-a.runCtx.Done():
			return
		case <-t.C:
			var refusal *refusedError
			if err := a.flush(a.runCtx); err != nil && !errors.As(err, &refusal) {
				a.log.Debug("analytics: write failed, the records are kept for the next flush", "error", err)
			}
		}
	}
}

// Record buffers one record, or drops and counts it when the buffer is
// full or the recorder is closed.
func (a *Recorder) Record(rec Record) {
	if slices.Contains(a.ignored, rec.IPAddress) {
		return
	}
	if a.closed.Load() {
		a.dropped.Add(1)
		return
	}
	select {
	case a.queue <- rec:
	default:
		a.dropped.Add(1)
	}
}

// refusedError is a flush whose batch Redis refused.
type refusedError struct {
	records int
	err     error
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("Redis refused %d analytics records: %v", e.records, e.err)
}

func (e *refusedError) Unwrap() error { return e.err }

// flush writes the pending records and every buffered one in one RPUSH:
// the synchronous step of run, also used by Close.
func (a *Recorder) flush(ctx context.Context) error {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	batch := a.pending
	a.pending = nil
	for {
		select {
		case rec := <-a.queue:
			data, err := json.Marshal(rec)
			if err == nil {
				batch = append(batch, data)
			}
			continue
		default:
		}
		break
	}
	if len(batch) == 0 {
		return nil
	}
	err := a.client.RPush(ctx, Key, batch...).Err()
	switch {
	case err == nil:
		a.written.Add(uint64(len(batch)))
		return nil
	case refused(err):
		a.dropped.Add(uint64(len(batch)))
		a.log.Error("analytics: Redis refused records; they are dropped", "records", len(batch), "error", err)
		return &refusedError{records: len(batch), err: err}
	default:
		if over := len(batch) - a.size; over > 0 {
			// Redis has been unreachable for longer than the buffer lasts:
			// the oldest go, so memory stays bounded.
			a.dropped.Add(uint64(over))
			a.log.Error("analytics: Redis unreachable for a whole buffer; the oldest records are dropped", "records", over, "error", err)
			batch = batch[over:]
		}
		a.pending = batch
		return err
	}
}

// refused tells a refusal (Redis answered with an error such as WRONGTYPE
// or OOM, which a retry would only repeat) from a write that got no answer
// or met a cluster between owners, which a retry may get past.
func refused(err error) bool {
	var reply redis.Error
	if !errors.As(err, &reply) {
		return false
	}
	for _, transient := range []string{"CLUSTERDOWN", "TRYAGAIN", "LOADING", "MASTERDOWN", "READONLY", "MOVED", "ASK"} {
		if strings.HasPrefix(reply.Error(), transient) {
			return false
		}
	}
	return true
}

// NotWrittenError is Close's error when records could not be written:
// Redis refused them, or ctx ended before Redis answered.
type NotWrittenError struct {
	Records int   // how many records are not in Redis
	Err     error // the last reason
}

func (e *NotWrittenError) Error() string {
	return fmt.Sprintf("%d analytics records not written to Redis: %v", e.Records, e.Err)
}

func (e *NotWrittenError) Unwrap() error { return e.Err }

// flushRetry bounds the pause between Close's attempts at a write that got
// no answer.
const flushRetry = 500 * time.Millisecond

// Close stops the goroutine (a periodic write in progress gives up and its
// records stay buffered) and writes everything buffered, retrying writes
// that got no answer until ctx ends. Records Redis refused, and those
// still unwritten when ctx ends, are counted in Dropped and reported as a
// *NotWrittenError. Records arriving after Close are dropped and counted.
func (a *Recorder) Close(ctx context.Context) error {
	a.closed.Store(true)
	a.stopRun()
	<-a.done
	lost := 0
	var last error
	pause := 10 * time.Millisecond
	for {
		err := a.flush(ctx)
		if err == nil {
			break // the queue is empty and nothing is pending
		}
		last = err
		var refusal *refusedError
		if errors.As(err, &refusal) {
			lost += refusal.records
			continue // what was refused is gone; write what remains
		}
		a.log.Debug("analytics: write got no answer; retrying until the flush deadline", "records", a.pendingCount(), "error", err)
		retry := time.NewTimer(pause)
		select {
		case <-retry.C:
			pause = min(2*pause, flushRetry)
			continue
		case <-ctx.Done():
			retry.Stop()
		}
		a.flushMu.Lock()
		n := len(a.pending) + len(a.queue)
		a.pending = nil
		for len(a.queue) > 0 {
			<-a.queue
		}
		a.flushMu.Unlock()
		a.dropped.Add(uint64(n))
		lost += n
		break
	}
	if lost > 0 {
		return &NotWrittenError{Records: lost, Err: last}
	}
	return nil
}

func (a *Recorder) pendingCount() int {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	return len(a.pending)
}

// Dropped counts records dropped: the buffer was full, Redis refused them,
// they were still unwritten when Close's deadline passed, or they came
// after Close.
func (a *Recorder) Dropped() uint64 { return a.dropped.Load() }

// Written counts records written to Redis.
func (a *Recorder) Written() uint64 { return a.written.Load() }
