// Package analytics records one line per request to Redis, in batches,
// off the request path, from one goroutine it owns.
//
//	rec := analytics.New(client, cfg.AnalyticsConfig)
//	rec.Record(analytics.Record{...}) // never blocks
//	_ = rec.Close(ctx)                // writes what is buffered
package analytics

import (
	"context"
	"encoding/json"
	"slices"
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
type Recorder struct {
	client   redis.UniversalClient
	ignored  []string
	interval time.Duration

	queue   chan Record
	dropped atomic.Uint64
	written atomic.Uint64
	flushMu sync.Mutex // one flush at a time

	stop, done chan struct{}
}

// New starts a recorder writing to client; Close stops it.
func New(client redis.UniversalClient, c apidef.AnalyticsConfig) *Recorder {
	size := c.RecordsBufferSize
	if size <= 0 {
		size = 10_000
	}
	interval := time.Duration(c.FlushInterval * float64(time.Second))
	if interval <= 0 {
		interval = time.Second
	}
	a := &Recorder{
		client: client, ignored: c.IgnoredIPs, interval: interval,
		queue: make(chan Record, size),
		stop:  make(chan struct{}), done: make(chan struct{}),
	}
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
		case <-a.stop:
			return
		case <-t.C:
			_ = a.flush(context.Background())
		}
	}
}

// Record buffers one record, or drops and counts it when the buffer is
// full.
func (a *Recorder) Record(rec Record) {
	if slices.Contains(a.ignored, rec.IPAddress) {
		return
	}
	select {
	case a.queue <- rec:
	default:
		a.dropped.Add(1)
	}
}

// flush writes every buffered record in one RPUSH: the synchronous step
// of run, also used at Close.
func (a *Recorder) flush(ctx context.Context) error {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	var batch []any
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
	if err := a.client.RPush(ctx, Key, batch...).Err(); err != nil {
		a.dropped.Add(uint64(len(batch)))
		return err
	}
	a.written.Add(uint64(len(batch)))
	return nil
}

// Close stops the goroutine and writes what is left, within ctx.
func (a *Recorder) Close(ctx context.Context) error {
	close(a.stop)
	<-a.done
	return a.flush(ctx)
}

// Dropped counts records dropped because the buffer was full or Redis
// refused them.
func (a *Recorder) Dropped() uint64 { return a.dropped.Load() }

// Written counts records written to Redis.
func (a *Recorder) Written() uint64 { return a.written.Load() }
