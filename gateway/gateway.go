package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/gateway/analytics"
	"github.com/tollgate/tollgate/gateway/apidef"
	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/gateway/event"
	"github.com/tollgate/tollgate/gateway/jsvm"
	"github.com/tollgate/tollgate/gateway/limit"
	"github.com/tollgate/tollgate/gateway/lograte"
	"github.com/tollgate/tollgate/gateway/notify"
	"github.com/tollgate/tollgate/gateway/session"
	"github.com/tollgate/tollgate/gateway/storage"
	"github.com/tollgate/tollgate/gateway/upstream"
)

// Config is tyk.conf; see apidef.Config.
type Config = apidef.Config

// Warnings are settings in a loaded file that tollgate does not act on.
type Warnings = apidef.Warnings

// LoadConfig reads tyk.conf; see apidef.LoadConfig.
func LoadConfig(path string) (*Config, Warnings, error) { return apidef.LoadConfig(path) }

// ParseConfig parses tyk.conf's JSON; see apidef.ParseConfig.
func ParseConfig(data []byte) (*Config, Warnings, error) { return apidef.ParseConfig(data) }

// Gateway serves the APIs of one configuration. It is an http.Handler;
// Listen serves it on a port.
type Gateway struct {
	cfg *Config
	log *slog.Logger
	// reqLog is log for warnings that can repeat with every request or
	// event (a store or a webhook target down): one line per message and
	// API per 10 s, with a count of what was left out.
	reqLog     *slog.Logger
	now        func() time.Time
	dial       func(ctx context.Context, network, addr string) (net.Conn, error)
	rawLog     io.Writer // where JS rawlog() writes
	tlsConfig  *tls.Config
	store      *storage.Store
	transport  *http.Transport
	healthPath string
	trust      *chain.Trust // whose X-Real-IP and X-Forwarded-For are believed
	// storeBudget bounds each Redis operation of a request.
	storeBudget time.Duration

	sessions *sessions
	events   *event.Bus
	// lanes own every webhook's queue and workers (see events.go).
	lanes *event.Lanes
	// globalEvents are tyk.conf's event handlers.
	globalEvents eventHandlers
	limiters     limiters
	quota        *limit.Quota

	analytics *analytics.Recorder // nil when enable_analytics is off
	// recording counts requests on their way to an analytics record, so
	// Shutdown can let those the server cut off hand theirs in.
	recording inFlight
	limits    ShutdownLimits
	debug     *debugEndpoints // profiler, summary and metrics; debug_listen's listener
	metrics   *metrics        // this gateway's Prometheus registry
	// jsMemory stops JS runs past jsvm_memory_limit; nil when
	// enable_jsvm is off.
	jsMemory *jsvm.MemoryBudget

	// notify carries reloads and key changes between the gateways of a
	// deployment over Redis pub/sub; nil without node_secret or secret.
	notify *notify.Notifier

	health healthProbe // /hello's Redis check

	routes   atomic.Pointer[routeTable]
	reloadMu sync.Mutex // one Reload at a time

	shutdownOnce sync.Once
}

var _ http.Handler = (*Gateway)(nil)

// Option changes how New builds a Gateway.
type Option func(*Gateway)

// WithLogger sends the gateway's log to l. Default: discarded.
func WithLogger(l *slog.Logger) Option {
	return func(g *Gateway) { g.log = l }
}

// WithClock gives the gateway its notion of now: key expiry, version
// expiry, rate limit and quota windows follow it. Default time.Now.
func WithClock(now func() time.Time) Option {
	return func(g *Gateway) { g.now = now }
}

// WithDialer makes upstream connections through dial, e.g. to reach
// upstream host names that only exist in a test.
func WithDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) Option {
	return func(g *Gateway) { g.dial = dial }
}

// WithTLSConfig sets the TLS configuration of upstream and webhook
// connections, e.g. the roots to trust. Default: Go's.
func WithTLSConfig(c *tls.Config) Option {
	return func(g *Gateway) { g.tlsConfig = c }
}

// WithRawLog is where JS middleware's rawlog() writes. Default: nowhere.
func WithRawLog(w io.Writer) Option {
	return func(g *Gateway) { g.rawLog = w }
}

// ShutdownLimits bound the phases of Gateway.Shutdown, each from the moment
// it starts, so a phase that runs out of time does not take the next one's.
type ShutdownLimits struct {
	// Flush bounds writing what is buffered for Redis (analytics records),
	// including letting requests the server cut off at its grace hand in
	// their records (at most half of it). It is not shortened by the
	// context given to Shutdown: an expired grace must not cost what is
	// buffered. Default DefaultFlushLimit.
	Flush time.Duration
	// Webhooks bounds delivering the events still queued or in flight
	// (webhooks) after the flush; then deliveries in flight are cancelled
	// and the queue is dropped. The context given to Shutdown may end it
	// sooner. Default DefaultWebhookLimit.
	Webhooks time.Duration
}

// Defaults of ShutdownLimits.
const (
	DefaultFlushLimit   = 10 * time.Second
	DefaultWebhookLimit = 5 * time.Second
)

// WithShutdownLimits sets how long Shutdown's flush and webhook phases may
// take; a zero field keeps its default.
func WithShutdownLimits(l ShutdownLimits) Option {
	return func(g *Gateway) { g.limits = l }
}

// sessionCacheSize bounds the local session cache.
const sessionCacheSize = 100_000

// New builds a gateway from cfg: it opens storage (or starts the embedded
// cluster) and loads the API definitions in app_path. A definition that
// cannot be loaded is logged with its file and field and left out; the
// others are served. A missing app_path is an error.
func New(cfg *Config, opts ...Option) (*Gateway, error) {
	g := &Gateway{
		cfg:        cfg,
		log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		now:        time.Now,
		rawLog:     io.Discard,
		healthPath: cfg.HealthPath(),
	}
	for _, o := range opts {
		o(g)
	}
	if g.limits.Flush <= 0 {
		g.limits.Flush = DefaultFlushLimit
	}
	if g.limits.Webhooks <= 0 {
		g.limits.Webhooks = DefaultWebhookLimit
	}
	g.recording.idle = make(chan struct{}, 1)
	g.reqLog = slog.New(lograte.NewHandler(g.log.Handler(), lograte.Options{Now: g.now}))
	if err := apidef.ValidateDebugListen(cfg.DebugListen); err != nil {
		return nil, err
	}
	proxies, err := apidef.ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	g.trust = chain.NewTrust(proxies)
	g.storeBudget = cfg.Storage.RequestBudget()
	g.metrics = newMetrics(g)
	g.debug = newDebugEndpoints(g.log, g.metrics.handler)
	store, err := storage.Open(cfg.Storage, g.log)
	if err != nil {
		return nil, err
	}
	g.store = store
	g.store.Client.AddHook(g.metrics.redis)
	g.transport = upstream.NewTransport(cfg.ProxyTimeout(), g.dial)
	g.transport.TLSClientConfig = g.tlsConfig
	g.sessions = &sessions{
		store: session.NewStore(g.store.Client, cfg.SessionOptions()),
		cache: session.NewCache(cfg.LocalSessionCache.TTL(), sessionCacheSize, g.now),
	}
	g.events = event.NewBus(event.Options{})
	g.lanes = event.NewLanes()
	g.quota = limit.NewQuota(g.store.Client, g.now)
	g.limiters = newLimiters(g.store.Client, g.quota, cfg, g.now)
	global, warnings, err := g.compileEventHandlers(cfg.EventHandlers, "tyk.conf event_handlers")
	if err != nil {
		_ = g.Shutdown(context.Background())
		return nil, err
	}
	for _, w := range warnings {
		g.log.Warn(w)
	}
	g.globalEvents = global
	g.events.Subscribe(g.dispatchEvent)
	if key := cfg.NotificationKey(); key != "" {
		g.notify = notify.New(g.store.Client, []byte(key), g.now, g.log, g.onNotification)
	} else {
		g.log.Info("cluster notifications off: tyk.conf has neither node_secret nor secret, so /tyk/reload/group and key changes reach this gateway only")
	}
	if cfg.EnableAnalytics {
		g.analytics = analytics.New(g.store.Client, cfg.AnalyticsConfig, g.log)
	}
	if cfg.EnableJSVM {
		g.jsMemory = jsvm.NewMemoryBudget(jsvm.MemoryOptions{Limit: cfg.JSMemoryLimit(), Log: g.log})
		g.log.Info("JS memory limit", "limit_mib", g.jsMemory.Limit()>>20, "from", jsMemorySource(cfg))
	}
	if err := g.Reload(); err != nil && g.routes.Load() == nil {
		_ = g.Shutdown(context.Background())
		return nil, err
	}
	if cfg.EnableHTTPProfiler && cfg.Secret == "" {
		g.log.Warn("enable_http_profiler is on but tyk.conf has no secret: the debug endpoints refuse every call on the gateway's port")
	}
	if cfg.DebugListen != "" {
		if err := g.debug.listen(cfg.DebugListen); err != nil {
			_ = g.Shutdown(context.Background())
			return nil, err
		}
	}
	return g, nil
}

// limiters are the rate limiters tyk.conf chose: the GCRA by default, a
// fixed window, or the rolling log, which comes updated in MULTI/EXEC and
// in a plain pipeline.
type limiters struct {
	chosen *limit.Limits
	// pipelined is the rolling log without MULTI/EXEC; nil for the others.
	pipelined *limit.Limits
	// pipelinedEverywhere is tyk.conf's enable_non_transactional_rate_limiter.
	pipelinedEverywhere bool
}

func newLimiters(client redis.UniversalClient, quota *limit.Quota, cfg *Config, now func() time.Time) limiters {
	if !cfg.EnableRedisRollingLimiter && !cfg.EnableSentinelRateLimiter {
		algorithm := limit.AlgorithmGCRA
		if cfg.EnableFixedWindowRateLimiter {
			algorithm = limit.AlgorithmFixedWindow
		}
		return limiters{chosen: limit.NewLimits(client, quota, limit.LimitsOptions{Algorithm: algorithm, Now: now, Credit: cfg.LimitsCredit()})}
	}
	log := func(transactional bool) *limit.Limits {
		return limit.NewLimits(client, quota, limit.LimitsOptions{
			Algorithm: limit.AlgorithmRollingLog,
			Window:    limit.WindowOptions{Transactional: transactional, Sentinel: cfg.EnableSentinelRateLimiter},
			Now:       now,
		})
	}
	return limiters{chosen: log(true), pipelined: log(false), pipelinedEverywhere: cfg.EnableNonTransactionalRateLimiter}
}

// of is the limiter of an API: the rolling log is transactional unless
// tyk.conf or the API turns the non-transactional limiter on.
func (l limiters) of(def *apidef.APIDefinition) *limit.Limits {
	if l.pipelined != nil && (l.pipelinedEverywhere || def.EnableNonTransactionalRateLimiter) {
		return l.pipelined
	}
	return l.chosen
}

// Store is the gateway's Redis store.
func (g *Gateway) Store() *storage.Store { return g.store }

// Events is the gateway's event bus: KeyExpired and friends are published
// there.
func (g *Gateway) Events() *event.Bus { return g.events }

// APIs lists the API definitions being served, longest listen path first.
func (g *Gateway) APIs() []*apidef.APIDefinition {
	rt := g.routes.Load()
	out := make([]*apidef.APIDefinition, len(rt.apis))
	for i, a := range rt.apis {
		out[i] = a.def
	}
	return out
}

// Reload reads app_path again and swaps the new set of APIs in at once:
// a request already routed finishes on the API it started with. Files that
// fail to load are logged and reported in the error; the rest are served.
// If app_path itself cannot be read, the APIs being served stay.
func (g *Gateway) Reload() (err error) {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	defer func() { g.metrics.reloaded(err) }()
	defs, warnings, loadErr := apidef.LoadAPIDefinitions(g.cfg.AppDir(), g.cfg.APIDefinitionSizeLimit())
	for _, w := range warnings {
		g.log.Warn(w)
	}
	var fileErrs *apidef.DefinitionErrors
	if loadErr != nil && !errors.As(loadErr, &fileErrs) {
		if g.routes.Load() == nil {
			g.log.Error("API definitions not loaded; no API is served", "error", loadErr)
		} else {
			g.log.Error("API definitions not loaded; the APIs being served stay", "error", loadErr)
		}
		return loadErr
	}
	if fileErrs != nil {
		for _, e := range fileErrs.Errs {
			g.log.Error("API definition not served", "error", e)
		}
	}
	rt, buildErrs := g.buildRoutes(defs)
	g.swapRoutes(rt)
	for _, a := range rt.apis {
		g.log.Info("serving API", "api_id", a.def.APIID, "name", a.def.Name, "listen_path", a.def.Proxy.ListenPath, "file", a.def.File())
	}
	if fileErrs != nil {
		buildErrs = append(fileErrs.Errs, buildErrs...)
	}
	if len(buildErrs) > 0 {
		return &apidef.DefinitionErrors{Errs: buildErrs}
	}
	return nil
}

// reloadOutcome classifies what Reload returned.
type reloadOutcome int

const (
	reloadedAll    reloadOutcome = iota // every definition is served
	reloadedPartly                      // some files were left out, the rest are served
	reloadFailed                        // nothing changed: the APIs being served stay
)

func outcomeOf(err error) reloadOutcome {
	var fileErrs *apidef.DefinitionErrors
	switch {
	case err == nil:
		return reloadedAll
	case errors.As(err, &fileErrs):
		return reloadedPartly
	default:
		return reloadFailed
	}
}

// buildRoutes compiles the definitions; those that fail are left out and
// returned as errors naming their file.
func (g *Gateway) buildRoutes(defs []*apidef.APIDefinition) (*routeTable, []error) {
	rt := &routeTable{}
	var errs []error
	for _, def := range defs {
		api, warnings, err := g.compileAPI(def)
		if err != nil {
			err = fmt.Errorf("loading API definition %s: %w", def.File(), err)
			g.log.Error("API definition not served", "error", err)
			errs = append(errs, err)
			continue
		}
		for _, w := range warnings {
			g.log.Warn(def.File() + ": " + w)
		}
		rt.apis = append(rt.apis, api)
	}
	sort.SliceStable(rt.apis, func(i, j int) bool {
		return len(rt.apis[i].listenPath) > len(rt.apis[j].listenPath)
	})
	return rt, errs
}

// routeTable holds the APIs ordered by listen path, longest first, so the
// first match is the longest.
type routeTable struct {
	apis []*api
}

func (rt *routeTable) match(path string) *api {
	for _, a := range rt.apis {
		lp := a.listenPath
		if lp == "/" || path == lp || (strings.HasPrefix(path, lp) && path[len(lp)] == '/') {
			return a
		}
	}
	return nil
}

// ServeHTTP routes a request: the health endpoint, the control API and
// (with enable_http_profiler) the debug endpoints and /metrics first, then
// the API with the longest matching listen path; anything else is 404.
// Every response is counted in the gateway's metrics.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o := g.metrics.observe(w, r)
	defer g.metrics.done(o)
	g.route(o, r)
}

func (g *Gateway) route(w *observed, r *http.Request) {
	if !canonical(w, r) {
		return
	}
	path := r.URL.Path
	if path == g.healthPath {
		w.operator = true
		g.serveHealth(w, r)
		return
	}
	if strings.HasPrefix(path, controlPrefix) {
		w.operator = true
		g.serveControl(w, r)
		return
	}
	if g.cfg.EnableHTTPProfiler && isDebugPath(path) {
		w.operator = true
		g.serveDebug(w, r)
		return
	}
	api := g.routes.Load().match(path)
	if api == nil {
		chain.WriteError(w, r, http.StatusNotFound, chain.CauseUnknownPath, chain.MsgUnknownPath)
		return
	}
	ip := g.trust.ClientIP(r)
	tracked := g.analytics != nil && !api.def.DoNotTrack
	if tracked {
		// Shutdown lets requests cut off at the grace hand in their record.
		g.recording.begin()
		defer g.recording.end()
	}
	start := g.now()
	c := api.serve(w, r, start, ip)
	w.api, w.version = api.def, c.Version
	if !tracked {
		return
	}
	rec := analytics.Record{
		TimeStamp: start, APIID: api.def.APIID, APIName: api.def.Name, OrgID: api.def.OrgID,
		Method: r.Method, Path: path, ResponseCode: w.code(),
		RequestTime: g.now().Sub(start).Milliseconds(),
		IPAddress:   ip, UserAgent: r.UserAgent(),
		APIVersion: c.Version,
	}
	if c.Key != "" {
		rec.APIKey = c.KeyHash()
	}
	g.analytics.Record(rec)
}

// AnalyticsDropped counts analytics records dropped because the buffer was
// full or Redis refused them.
func (g *Gateway) AnalyticsDropped() uint64 {
	if g.analytics == nil {
		return 0
	}
	return g.analytics.Dropped()
}

// Errors Shutdown wraps, so a caller can tell what was cut.
var (
	// ErrBufferedLost: data buffered for Redis (analytics records) was not
	// written, because Redis refused it or the flush limit passed; the
	// error and the log say how many records.
	ErrBufferedLost = errors.New("buffered data not written to Redis")
	// ErrEventsCut: events were still queued or being delivered (webhooks)
	// when the webhook limit or ctx ended; those in flight were cancelled
	// and the queued ones dropped.
	ErrEventsCut = errors.New("event deliveries cut off")
)

// Shutdown stops the gateway in phases, each with its own deadline. Stop
// the Server in front of it first (Server.Shutdown: stop accepting, let
// requests finish until the grace, cut the rest), then:
//
//  1. Stop: running profiles end and the debug listener stops (within ctx).
//  2. Flush, within ShutdownLimits.Flush from a deadline of its own, even
//     when ctx has already ended: requests still inside the gateway (those
//     the server cut off end as soon as their upstream call sees the closed
//     connection) get up to half of it to hand in their analytics records;
//     then every buffered record is written to Redis, retrying writes that
//     got no answer. Records Redis refuses, or that are unwritten at the
//     deadline, are logged with their count and reported as
//     ErrBufferedLost.
//  3. Webhooks, last, so they never hold the flush up: queued events are
//     delivered until ShutdownLimits.Webhooks or ctx ends, whichever comes
//     first; then deliveries in flight are cancelled and the rest dropped,
//     reported as ErrEventsCut (wrapping ctx's error or
//     context.DeadlineExceeded).
//  4. Release, within releaseLimit of its own: the cluster-notification
//     subscription, the JS memory watcher, idle upstream connections and the store (including
//     the embedded cluster).
//
// So Shutdown takes at most Flush, plus the shorter of Webhooks and ctx,
// plus releaseLimit (in practice, milliseconds). Later calls do nothing
// and return nil.
func (g *Gateway) Shutdown(ctx context.Context) error {
	err := errAlreadyShutDown
	g.shutdownOnce.Do(func() {
		// Running profiles end now, so nothing below waits for them.
		debugErr := g.debug.close(ctx)
		flushErr := g.flushAtShutdown(ctx)
		eventsErr := g.cutEvents(ctx)
		err = errors.Join(debugErr, flushErr, eventsErr, g.release(ctx))
	})
	if err == errAlreadyShutDown {
		return nil
	}
	return err
}

// jsMemorySource says where the JS memory limit comes from, for the log.
func jsMemorySource(cfg *Config) string {
	if cfg.JSMemoryLimit() > 0 {
		return "jsvm_memory_limit"
	}
	return jsvm.DefaultMemorySource()
}

// flushAtShutdown is Shutdown's flush phase: a fresh deadline that keeps
// ctx's values but not its end.
func (g *Gateway) flushAtShutdown(ctx context.Context) error {
	if g.analytics == nil {
		return nil
	}
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.limits.Flush)
	defer cancel()
	waitCtx, cancelWait := context.WithTimeout(flushCtx, g.limits.Flush/2)
	running := g.recording.wait(waitCtx)
	cancelWait()
	err := g.analytics.Close(flushCtx)
	if err == nil && running == 0 {
		return nil
	}
	lost := 0
	if notWritten := (*analytics.NotWrittenError)(nil); errors.As(err, &notWritten) {
		lost = notWritten.Records
	}
	g.log.Error("shutdown: analytics records lost", "not_written", lost, "requests_still_running", running,
		"flush_limit", g.limits.Flush, "error", err)
	unrecorded := fmt.Errorf("%d requests still running at the flush limit, their records not taken", running)
	switch {
	case err == nil:
		return fmt.Errorf("%w: %w", ErrBufferedLost, unrecorded)
	case running == 0:
		return fmt.Errorf("%w: %w", ErrBufferedLost, err)
	default:
		return fmt.Errorf("%w: %w; %w", ErrBufferedLost, err, unrecorded)
	}
}

// cutEvents is Shutdown's webhook phase: the bus stops taking events and
// delivers what is queued until the webhook limit or ctx ends; then
// handlers in flight are cancelled and the rest dropped.
func (g *Gateway) cutEvents(ctx context.Context) error {
	eventsCtx, cancel := context.WithTimeout(ctx, g.limits.Webhooks)
	defer cancel()
	droppedBefore := g.events.Dropped() + g.lanes.Stats().Dropped
	// The bus first: its workers only hand events to the webhooks' lanes,
	// whose workers deliver them.
	busErr := g.events.Close(eventsCtx)
	laneErr := g.lanes.Close(eventsCtx)
	dropped := g.events.Dropped() + g.lanes.Stats().Dropped - droppedBefore
	err := errors.Join(busErr, laneErr)
	if err == nil || laneErr == nil && dropped == 0 {
		// The bus's deadline may pass as its last worker exits: nothing
		// was cut. A lane that hit the deadline cut a delivery off.
		return nil
	}
	g.log.Warn("shutdown: events cut off; webhooks in flight were cancelled and queued events dropped",
		"dropped", dropped, "webhook_limit", g.limits.Webhooks, "error", err)
	return fmt.Errorf("%w: %d events dropped or cancelled: %w", ErrEventsCut, dropped, err)
}

// releaseLimit bounds Shutdown's last phase; closing connections and
// ending the notification receiver take milliseconds.
const releaseLimit = 5 * time.Second

// release is Shutdown's last phase, on a deadline of its own so an
// expired ctx does not leave the notification receiver running.
func (g *Gateway) release(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseLimit)
	defer cancel()
	var notifyErr error
	if g.notify != nil {
		notifyErr = g.notify.Close(ctx)
	}
	// Quota this gateway took from the store in advance and did not use
	// goes back before the store closes (limit.Credit).
	limitsErr := g.limiters.chosen.Close(ctx)
	if limitsErr != nil {
		g.log.Error("shutdown: quota held for busy keys not given back to the store", "error", limitsErr)
	}
	g.jsMemory.Close()
	g.transport.CloseIdleConnections()
	return errors.Join(notifyErr, limitsErr, g.store.Close())
}

// inFlight counts requests without a lock on their path; Shutdown waits
// for the count to reach zero.
type inFlight struct {
	n        atomic.Int64
	draining atomic.Bool
	idle     chan struct{} // capacity 1: the last request out while draining says so
}

func (f *inFlight) begin() { f.n.Add(1) }

func (f *inFlight) end() {
	if f.n.Add(-1) == 0 && f.draining.Load() {
		select {
		case f.idle <- struct{}{}:
		default:
		}
	}
}

// wait returns once no request is in flight, or when ctx ends with the
// number still running.
func (f *inFlight) wait(ctx context.Context) int64 {
	f.draining.Store(true)
	for {
		n := f.n.Load()
		if n == 0 {
			return 0
		}
		select {
		case <-f.idle:
		case <-ctx.Done():
			return f.n.Load()
		}
	}
}

// errAlreadyShutDown marks a Shutdown call after the first: it has nothing
// left to do and reports nothing.
var errAlreadyShutDown = errors.New("already shut down")
