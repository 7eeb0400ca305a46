package gateway

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/gateway/apidef"
	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/gateway/event"
	"github.com/tollgate/tollgate/gateway/jsvm"
	"github.com/tollgate/tollgate/gateway/step/cache"
)

// The gateway's Prometheus metrics, served at /metrics where the debug
// endpoints are (see debug.go). Each Gateway has a registry of its own, so
// several gateways in one process never mix their figures.
//
// Labels take values from a fixed set or from the configuration, never
// from a request: api_id and version name what the API definitions
// define, method is one of metricMethods or "other", status_class is
// "2xx" and so on, cause is one of chain's causes. No key and no request
// path ever becomes a label, so a client cannot grow the number of series.
//
// What is counted on the request path is counted there (requests,
// latency, errors by cause, cache lookups, events published, Redis
// commands); what other parts already count (JS runs and VMs, events
// delivered and dropped, webhooks, analytics records) is read from their
// counters when /metrics is scraped.
const metricsPath = "/metrics"

// metricMethods are the methods requests are labelled with; any other is
// "other".
var metricMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions,
}

// latencyBuckets span a cache hit (well under a millisecond) to
// proxy_default_timeout's default of 30 s.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// redisBuckets span one command on loopback to a slow cluster.
var redisBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}

// redisCommands are the commands Redis metrics name; any other is
// "other". Pipelines and transactions are "pipeline".
var redisCommands = []string{
	"get", "set", "setnx", "del", "unlink", "exists", "expire", "pexpire", "ttl", "pttl",
	"incr", "incrby", "decr", "mget", "eval", "evalsha", "evalsha_ro", "eval_ro", "script",
	"zadd", "zcard", "zcount", "zrange", "zremrangebyscore", "rpush", "lpush", "lrange", "ltrim",
	"hget", "hset", "hgetall", "publish", "scan", "keys", "watch", "ping", "other", "pipeline",
}

// metrics holds one gateway's registry and the metrics it updates as
// requests go through.
type metrics struct {
	reg     *prometheus.Registry
	handler http.Handler

	requests  *prometheus.CounterVec   // api_id, version, method, status_class
	latency   *prometheus.HistogramVec // api_id
	errors    *prometheus.CounterVec   // api_id, cause
	reloads   *prometheus.CounterVec   // outcome
	published *prometheus.CounterVec   // event
	redis     *redisMetrics

	// mu guards what follows and the swap of the route table (swapRoutes),
	// so a scrape sees either the old table and nothing retired from it,
	// or the new table and everything retired: counters never drop.
	mu sync.Mutex
	// retiredJS are the JS counters of the programs reloads replaced, by
	// api_id, for the APIs still served.
	retiredJS map[string]jsvm.Stats
	// retiredHooks are the counters of the API webhooks reloads replaced.
	retiredHooks event.WebhookStats
	// caches are the cache step's counters by api_id, kept across
	// reloads, for the APIs still served.
	caches map[string]*cache.Counters
}

func newMetrics(g *Gateway) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_requests_total",
			Help: "Requests answered, by API (\"\" for paths no API serves), version, method and status class. The health endpoint, the control API, the debug endpoints and /metrics are not counted.",
		}, []string{"api_id", "version", "method", "status_class"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tollgate_request_duration_seconds",
			Help:    "Time from routing a request to an API until its response was written, by API.",
			Buckets: latencyBuckets,
		}, []string{"api_id"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_errors_total",
			Help: "Errors the gateway answered itself, by API (\"\" for none) and cause (the X-Tollgate-Error header): upstream_unreachable, upstream_timeout, rate_limited, quota_exceeded, key_missing, ...",
		}, []string{"api_id", "cause"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_reloads_total",
			Help: "Loads of the API definitions (the one at start included) by outcome: ok, partial (some files left out) or failed (nothing changed).",
		}, []string{"outcome"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_events_published_total",
			Help: "Events the request chain published on the event bus, by event.",
		}, []string{"event"}),
		redis:     newRedisMetrics(),
		retiredJS: map[string]jsvm.Stats{},
		caches:    map[string]*cache.Counters{},
	}
	for _, outcome := range []string{"ok", "partial", "failed"} {
		m.reloads.WithLabelValues(outcome)
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.latency, m.errors, m.reloads, m.published,
		m.redis.calls, m.redis.latency,
		gatewayCollector{g: g},
	)
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return m
}

// observed is the router's view of one response: what served it, its
// status and the cause of the gateway's error, if any.
type observed struct {
	chain.Writer
	start   time.Time
	method  string
	status  int
	cause   chain.Cause
	api     *apidef.APIDefinition // nil when no API served the request
	version string
	// operator marks the health endpoint, the control API, the debug
	// endpoints and /metrics: not traffic, only their errors count.
	operator bool
}

var _ chain.CauseRecorder = (*observed)(nil)

// observe starts watching the response to r.
func (m *metrics) observe(w http.ResponseWriter, r *http.Request) *observed {
	return &observed{Writer: chain.Writer{ResponseWriter: w}, start: time.Now(), method: r.Method}
}

func (o *observed) WriteHeader(code int) {
	// An informational response (100, 103) is not the answer.
	if o.status == 0 && (code >= http.StatusOK || code == http.StatusSwitchingProtocols) {
		o.status = code
	}
	o.ResponseWriter.WriteHeader(code)
}

func (o *observed) Write(b []byte) (int, error) {
	if o.status == 0 {
		o.status = http.StatusOK
	}
	return o.ResponseWriter.Write(b)
}

// RecordCause is told the cause by chain.WriteError.
func (o *observed) RecordCause(c chain.Cause) { o.cause = c }

// code is the status the client got: net/http answers 200 for a handler
// that wrote nothing.
func (o *observed) code() int {
	if o.status == 0 {
		return http.StatusOK
	}
	return o.status
}

// done counts the response o watched.
func (m *metrics) done(o *observed) {
	apiID := ""
	if o.api != nil {
		apiID = o.api.APIID
	}
	if o.cause != "" {
		m.errors.WithLabelValues(apiID, string(o.cause)).Inc()
	}
	if o.operator {
		return
	}
	m.requests.WithLabelValues(apiID, o.version, methodLabel(o.method), statusClass(o.code())).Inc()
	if o.api != nil {
		m.latency.WithLabelValues(apiID).Observe(time.Since(o.start).Seconds())
	}
}

func methodLabel(m string) string {
	for _, known := range metricMethods {
		if m == known {
			return known
		}
	}
	return "other"
}

func statusClass(code int) string {
	switch code / 100 {
	case 1:
		return "1xx"
	case 2:
		return "2xx"
	case 3:
		return "3xx"
	case 4:
		return "4xx"
	case 5:
		return "5xx"
	}
	return "other"
}

// reloaded counts a load of the API definitions by what Reload returned.
func (m *metrics) reloaded(err error) {
	outcome := "ok"
	switch outcomeOf(err) {
	case reloadedPartly:
		outcome = "partial"
	case reloadFailed:
		outcome = "failed"
	}
	m.reloads.WithLabelValues(outcome).Inc()
}

// cacheCounters are the cache step's counters of apiID, the same across
// reloads.
func (m *metrics) cacheCounters(apiID string) *cache.Counters {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.caches[apiID]
	if !ok {
		c = &cache.Counters{}
		m.caches[apiID] = c
	}
	return c
}

// swapRoutes serves rt from now on. The JS and webhook counters of the
// APIs it replaces are carried over, so reloads do not reset them; a run
// that finishes on a replaced API after the swap is not counted. The series
// of an API no longer served are deleted.
func (g *Gateway) swapRoutes(rt *routeTable) {
	m := g.metrics
	m.mu.Lock()
	defer m.mu.Unlock()
	old := g.routes.Swap(rt)
	served := make(map[string]bool, len(rt.apis))
	for _, a := range rt.apis {
		served[a.def.APIID] = true
	}
	if old != nil {
		for _, a := range old.apis {
			if a.js != nil && served[a.def.APIID] {
				m.retiredJS[a.def.APIID] = addJS(m.retiredJS[a.def.APIID], a.js.Stats())
			}
			m.retiredHooks = addHooks(m.retiredHooks, webhookStats(a.events))
			// Its webhooks deliver what they hold for a while, then stop.
			a.events.retire()
			if !served[a.def.APIID] {
				// An API no longer served takes its series with it, so
				// they do not pile up with every api_id ever served.
				gone := prometheus.Labels{"api_id": a.def.APIID}
				m.requests.DeletePartialMatch(gone)
				m.latency.DeletePartialMatch(gone)
				m.errors.DeletePartialMatch(gone)
			}
		}
	}
	for id := range m.retiredJS {
		if !served[id] {
			delete(m.retiredJS, id)
		}
	}
	for id := range m.caches {
		if !served[id] {
			delete(m.caches, id)
		}
	}
}

// addJS adds b's counters to a's; Idle, a gauge, is left out.
func addJS(a, b jsvm.Stats) jsvm.Stats {
	a.Runs += b.Runs
	a.VMsCreated += b.VMsCreated
	a.VMsDiscarded += b.VMsDiscarded
	a.Timeouts += b.Timeouts
	a.MemoryStops += b.MemoryStops
	return a
}

func addHooks(a, b event.WebhookStats) event.WebhookStats {
	a.Sent += b.Sent
	a.Duplicates += b.Duplicates
	a.Failed += b.Failed
	return a
}

// webhookStats adds up the counters of a section's webhooks.
func webhookStats(handlers eventHandlers) event.WebhookStats {
	var sum event.WebhookStats
	for _, h := range handlers.hooks {
		sum = addHooks(sum, h.Stats())
	}
	return sum
}

// publisher is the event bus as the request chain's steps see it: what
// they publish is counted.
func (g *Gateway) publisher() chain.Publisher {
	return countingPublisher{bus: g.events, published: g.metrics.published}
}

type countingPublisher struct {
	bus       *event.Bus
	published *prometheus.CounterVec
}

func (p countingPublisher) Publish(e event.Event) bool {
	name := string(e.Type)
	if !event.Fired(e.Type) {
		name = "other"
	}
	p.published.WithLabelValues(name).Inc()
	return p.bus.Publish(e)
}

// gatewayCollector reads, at scrape time, what other parts of the gateway
// already count.
type gatewayCollector struct{ g *Gateway }

var (
	descJSRuns = prometheus.NewDesc("tollgate_js_runs_total",
		"Runs of JS middleware, by API.", []string{"api_id"}, nil)
	descJSTimeouts = prometheus.NewDesc("tollgate_js_timeouts_total",
		"JS middleware runs interrupted by js_timeout, by API.", []string{"api_id"}, nil)
	descJSMemoryStops = prometheus.NewDesc("tollgate_js_memory_stops_total",
		"JS middleware runs stopped at jsvm_memory_limit, by API.", []string{"api_id"}, nil)
	descJSCreated = prometheus.NewDesc("tollgate_js_vms_created_total",
		"JS VMs made, by API.", []string{"api_id"}, nil)
	descJSDiscarded = prometheus.NewDesc("tollgate_js_vms_discarded_total",
		"JS VMs thrown away (after an error or a timeout, or with the idle pool full), by API.", []string{"api_id"}, nil)
	descJSAlive = prometheus.NewDesc("tollgate_js_vms_alive",
		"JS VMs of the API's current middleware that are running or waiting for reuse: at most the runs in progress plus the idle pool; growth under steady load is a leak.", []string{"api_id"}, nil)
	descJSIdle = prometheus.NewDesc("tollgate_js_vms_idle",
		"JS VMs waiting for reuse, by API.", []string{"api_id"}, nil)
	descCacheLookups = prometheus.NewDesc("tollgate_cache_lookups_total",
		"Response cache lookups by API and result: hit (answered from the cache) or miss.", []string{"api_id", "result"}, nil)
	descCacheStores = prometheus.NewDesc("tollgate_cache_stores_total",
		"Responses written to the response cache, by API.", []string{"api_id"}, nil)
	descEventsDelivered = prometheus.NewDesc("tollgate_events_delivered_total",
		"Events handed to their handlers by the event bus.", nil, nil)
	descEventsDropped = prometheus.NewDesc("tollgate_events_dropped_total",
		"Events dropped because the event bus's queue was full or it was closing.", nil, nil)
	descWebhooks = prometheus.NewDesc("tollgate_webhooks_total",
		"Webhooks by outcome: sent (2xx), failed (another status or no answer), duplicate (not sent: an identical one was sent within event_timeout).", []string{"outcome"}, nil)
	descAnalytics = prometheus.NewDesc("tollgate_analytics_records_total",
		"Analytics records by outcome: written to Redis, or dropped (buffer full or Redis refused them). Absent with enable_analytics off.", []string{"outcome"}, nil)
	descAPIs = prometheus.NewDesc("tollgate_apis_served",
		"API definitions being served.", nil, nil)
	descShareKeys = prometheus.NewDesc("tollgate_limit_share_keys",
		"Keys holding a share of their rate limit or quota on this gateway (limits_credit_percent): at most 16,384; a key no request came for within its share's second leaves within another, its unused quota given back.", nil, nil)
)

func (c gatewayCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descJSRuns, descJSTimeouts, descJSMemoryStops, descJSCreated, descJSDiscarded, descJSAlive, descJSIdle,
		descCacheLookups, descCacheStores, descEventsDelivered, descEventsDropped,
		descWebhooks, descAnalytics, descAPIs, descShareKeys,
	} {
		ch <- d
	}
}

// jsFigures are one API's JS counters: carried over plus current.
type jsFigures struct {
	total       jsvm.Stats
	alive, idle int
}

func (c gatewayCollector) Collect(ch chan<- prometheus.Metric) {
	g, m := c.g, c.g.metrics
	js := map[string]jsFigures{}
	type cacheFigures struct{ hits, misses, stores uint64 }
	caches := map[string]cacheFigures{}
	hooks := webhookStats(g.globalEvents)
	apis := 0

	m.mu.Lock()
	for id, s := range m.retiredJS {
		js[id] = jsFigures{total: s}
	}
	hooks = addHooks(hooks, m.retiredHooks)
	if rt := g.routes.Load(); rt != nil {
		apis = len(rt.apis)
		for _, a := range rt.apis {
			hooks = addHooks(hooks, webhookStats(a.events))
			if a.js == nil {
				continue
			}
			s := a.js.Stats()
			f := js[a.def.APIID]
			f.total = addJS(f.total, s)
			if s.VMsCreated > s.VMsDiscarded { // read one after the other
				f.alive += int(s.VMsCreated - s.VMsDiscarded)
			}
			f.idle += s.Idle
			js[a.def.APIID] = f
		}
	}
	for id, cc := range m.caches {
		caches[id] = cacheFigures{cc.Hits.Load(), cc.Misses.Load(), cc.Stores.Load()}
	}
	m.mu.Unlock()

	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	for id, f := range js {
		counter(descJSRuns, f.total.Runs, id)
		counter(descJSTimeouts, f.total.Timeouts, id)
		counter(descJSMemoryStops, f.total.MemoryStops, id)
		counter(descJSCreated, f.total.VMsCreated, id)
		counter(descJSDiscarded, f.total.VMsDiscarded, id)
		gauge(descJSAlive, f.alive, id)
		gauge(descJSIdle, f.idle, id)
	}
	for id, f := range caches {
		counter(descCacheLookups, f.hits, id, "hit")
		counter(descCacheLookups, f.misses, id, "miss")
		counter(descCacheStores, f.stores, id)
	}
	if g.events != nil {
		counter(descEventsDelivered, g.events.Delivered())
		counter(descEventsDropped, g.events.Dropped())
	}
	counter(descWebhooks, hooks.Sent, "sent")
	counter(descWebhooks, hooks.Failed, "failed")
	counter(descWebhooks, hooks.Duplicates, "duplicate")
	if g.analytics != nil {
		counter(descAnalytics, g.analytics.Written(), "written")
		counter(descAnalytics, g.analytics.Dropped(), "dropped")
	}
	gauge(descAPIs, apis)
	gauge(descShareKeys, g.limiters.chosen.ShareKeys())
}

// redisMetrics count the gateway's Redis commands through a go-redis hook.
type redisMetrics struct {
	calls   *prometheus.CounterVec   // command, result
	latency *prometheus.HistogramVec // command
	// byName are each command's series, looked up once here rather than
	// by label on every command.
	byName map[string]redisSeries
}

type redisSeries struct {
	ok, failed prometheus.Counter
	latency    prometheus.Observer
}

var _ redis.Hook = (*redisMetrics)(nil)

func newRedisMetrics() *redisMetrics {
	r := &redisMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_redis_commands_total",
			Help: "Redis commands the gateway sent, by command (\"pipeline\" for a pipeline or transaction) and result: ok, or error (no answer, or an error reply; a missing key is ok).",
		}, []string{"command", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tollgate_redis_command_duration_seconds",
			Help:    "Time for a Redis command's answer, redirections and retries included, by command.",
			Buckets: redisBuckets,
		}, []string{"command"}),
		byName: map[string]redisSeries{},
	}
	for _, name := range redisCommands {
		r.byName[name] = redisSeries{
			ok:      r.calls.WithLabelValues(name, "ok"),
			failed:  r.calls.WithLabelValues(name, "error"),
			latency: r.latency.WithLabelValues(name),
		}
	}
	return r
}

func (r *redisMetrics) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *redisMetrics) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		r.count(cmd.Name(), start, err)
		return err
	}
}

func (r *redisMetrics) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		r.count("pipeline", start, err)
		return err
	}
}

func (r *redisMetrics) count(name string, start time.Time, err error) {
	s, ok := r.byName[name]
	if !ok {
		s = r.byName["other"]
	}
	s.latency.Observe(time.Since(start).Seconds())
	// A missing key and a transaction that lost its WATCH are answers.
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, redis.TxFailedErr) {
		s.ok.Inc()
		return
	}
	s.failed.Inc()
}
