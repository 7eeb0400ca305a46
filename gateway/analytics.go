package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// AnalyticsKey is the Redis list analytics records are appended to, as in
// Tyk. Records are JSON (Tyk writes msgpack).
const AnalyticsKey = "analytics-tyk-system-analytics"

// AnalyticsConfig is tyk.conf's analytics_config.
type AnalyticsConfig struct {
	// IgnoredIPs are clients whose requests are not recorded.
	IgnoredIPs []string `json:"ignored_ips"`
	// RecordsBufferSize bounds the records waiting to be written; when it
	// is full, further records are dropped and counted. Default 10,000.
	RecordsBufferSize int `json:"records_buffer_size"`
	// FlushInterval is how often, in seconds, buffered records are written
	// to Redis in one batch. Default 1.
	FlushInterval float64 `json:"flush_interval"`
}

// AnalyticsRecord is one request, as recorded.
type AnalyticsRecord struct {
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

// analyticsRecorder buffers records and writes them to Redis in batches
// from one goroutine it owns. Recording never blocks a request: a full
// buffer drops the record and counts it.
type analyticsRecorder struct {
	client   redis.UniversalClient
	ignored  []string
	interval time.Duration

	queue   chan AnalyticsRecord
	dropped atomic.Uint64
	written atomic.Uint64
	flushMu sync.Mutex // one flush at a time

	stop, done chan struct{}
}

func newAnalyticsRecorder(client redis.UniversalClient, c AnalyticsConfig) *analyticsRecorder {
	size := c.RecordsBufferSize
	if size <= 0 {
		size = 10_000
	}
	interval := time.Duration(c.FlushInterval * float64(time.Second))
	if interval <= 0 {
		interval = time.Second
	}
	a := &analyticsRecorder{
		client: client, ignored: c.IgnoredIPs, interval: interval,
		queue: make(chan AnalyticsRecord, size),
		stop:  make(chan struct{}), done: make(chan struct{}),
	}
	go a.run()
	return a
}

// run writes what is buffered once an interval until Close.
func (a *analyticsRecorder) run() {
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

// record buffers one record, or drops and counts it when the buffer is
// full.
func (a *analyticsRecorder) record(rec AnalyticsRecord) {
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
func (a *analyticsRecorder) flush(ctx context.Context) error {
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
	if err := a.client.RPush(ctx, AnalyticsKey, batch...).Err(); err != nil {
		a.dropped.Add(uint64(len(batch)))
		return err
	}
	a.written.Add(uint64(len(batch)))
	return nil
}

// close stops the goroutine and writes what is left, within ctx.
func (a *analyticsRecorder) close(ctx context.Context) error {
	close(a.stop)
	<-a.done
	return a.flush(ctx)
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Flush passes streaming flushes through.
func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
