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
	"github.com/tollgate/tollgate/gateway/limit"
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
	cfg        *Config
	log        *slog.Logger
	now        func() time.Time
	dial       func(ctx context.Context, network, addr string) (net.Conn, error)
	rawLog     io.Writer // where JS rawlog() writes
	tlsConfig  *tls.Config
	store      *storage.Store
	transport  *http.Transport
	healthPath string
	trust      *chain.Trust // whose X-Real-IP and X-Forwarded-For are believed

	sessions *sessions
	events   *event.Bus
	// globalEvents are tyk.conf's event handlers.
	globalEvents map[event.Name][]eventHandler
	// eventCtx bounds event handlers; Shutdown cancels it when its own
	// deadline passes, so a slow webhook cannot hold shutdown up.
	eventCtx    context.Context
	eventCancel context.CancelFunc
	limiters    limiters
	quota       *limit.Quota

	analytics *analytics.Recorder // nil when enable_analytics is off
	debug     *debugEndpoints     // profiler, summary and metrics; debug_listen's listener
	metrics   *metrics            // this gateway's Prometheus registry

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
	if err := apidef.ValidateDebugListen(cfg.DebugListen); err != nil {
		return nil, err
	}
	proxies, err := apidef.ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	g.trust = chain.NewTrust(proxies)
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
	g.eventCtx, g.eventCancel = context.WithCancel(context.Background())
	g.limiters = newLimiters(g.store.Client, cfg, g.now)
	g.quota = limit.NewQuota(g.store.Client, g.now)
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
		g.analytics = analytics.New(g.store.Client, cfg.AnalyticsConfig)
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

// limiters are the rate-limit windows: one updated in MULTI/EXEC, one in
// a plain pipeline.
type limiters struct {
	transactional, pipelined *limit.Window
	// pipelinedEverywhere is tyk.conf's enable_non_transactional_rate_limiter.
	pipelinedEverywhere bool
}

func newLimiters(client redis.UniversalClient, cfg *Config, now func() time.Time) limiters {
	window := func(transactional bool) *limit.Window {
		return limit.NewWindow(client, limit.WindowOptions{
			Transactional: transactional,
			Sentinel:      cfg.EnableSentinelRateLimiter,
			Now:           now,
		})
	}
	return limiters{transactional: window(true), pipelined: window(false), pipelinedEverywhere: cfg.EnableNonTransactionalRateLimiter}
}

// of is the window of an API: transactional unless tyk.conf or the API
// turns the non-transactional limiter on.
func (l limiters) of(def *apidef.APIDefinition) *limit.Window {
	if l.pipelinedEverywhere || def.EnableNonTransactionalRateLimiter {
		return l.pipelined
	}
	return l.transactional
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
	defs, warnings, loadErr := apidef.LoadAPIDefinitions(g.cfg.AppDir())
	for _, w := range warnings {
		g.log.Warn(w)
	}
	var fileErrs *apidef.DefinitionErrors
	if loadErr != nil && !errors.As(loadErr, &fileErrs) {
		g.log.Error("API definitions not loaded; the APIs being served stay", "error", loadErr)
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
	start := g.now()
	c := api.serve(w, r, start, ip)
	w.api, w.version = api.def, c.Version
	if g.analytics == nil || api.def.DoNotTrack {
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

// Shutdown releases what the gateway holds: it ends running profiles and
// stops the debug listener, delivers queued events
// until ctx ends (then cuts off webhooks in flight and drops the rest),
// writes the analytics records still buffered,
// ends its cluster-notification subscription,
// closes idle upstream connections and the store it opened (including the
// embedded cluster). Stop the Server in front of it first so no request is
// in flight. Later calls do nothing and return nil.
func (g *Gateway) Shutdown(ctx context.Context) error {
	err := errAlreadyShutDown
	g.shutdownOnce.Do(func() {
		// Running profiles end now, so nothing below waits for them.
		debugErr := g.debug.close(ctx)
		stop := context.AfterFunc(ctx, g.eventCancel)
		evErr := g.events.Close(ctx)
		stop()
		g.eventCancel()
		var anErr error
		if g.analytics != nil {
			anErr = g.analytics.Close(ctx)
		}
		var notifyErr error
		if g.notify != nil {
			notifyErr = g.notify.Close(ctx)
		}
		g.transport.CloseIdleConnections()
		err = errors.Join(debugErr, evErr, anErr, notifyErr, g.store.Close())
	})
	if err == errAlreadyShutDown {
		return nil
	}
	return err
}

// errAlreadyShutDown marks a Shutdown call after the first: it has nothing
// left to do and reports nothing.
var errAlreadyShutDown = errors.New("already shut down")
