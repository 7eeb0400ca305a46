package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tollgate/tollgate/gateway/storage"
)

// Gateway serves the APIs of one configuration. It is an http.Handler;
// Listen serves it on a port.
type Gateway struct {
	cfg        *Config
	log        *slog.Logger
	store      *storage.Store
	transport  *http.Transport
	healthPath string

	routes   atomic.Pointer[routeTable]
	reloadMu sync.Mutex // one Reload at a time

	shutdownOnce sync.Once
	shutdownErr  error
}

var _ http.Handler = (*Gateway)(nil)

// Option changes how New builds a Gateway.
type Option func(*Gateway)

// WithLogger sends the gateway's log to l. Default: discarded.
func WithLogger(l *slog.Logger) Option {
	return func(g *Gateway) { g.log = l }
}

// WithStore makes the gateway use a store the caller owns and closes,
// instead of opening one from cfg.Storage.
func WithStore(s *storage.Store) Option {
	return func(g *Gateway) { g.store = s }
}

// New builds a gateway from cfg: it opens storage (or starts the embedded
// cluster) and loads the API definitions in app_path. A definition that
// cannot be loaded is logged with its file and field and left out; the
// others are served. A missing app_path is an error.
func New(cfg *Config, opts ...Option) (*Gateway, error) {
	g := &Gateway{
		cfg:        cfg,
		log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		healthPath: cfg.healthPath(),
	}
	for _, o := range opts {
		o(g)
	}
	if g.store == nil {
		store, err := storage.Open(cfg.Storage, g.log)
		if err != nil {
			return nil, err
		}
		g.store = store
	}
	g.transport = newTransport(cfg.proxyTimeout())
	if err := g.Reload(); err != nil && g.routes.Load() == nil {
		g.transport.CloseIdleConnections()
		_ = g.store.Close()
		return nil, err
	}
	return g, nil
}

// Store is the gateway's Redis store.
func (g *Gateway) Store() *storage.Store { return g.store }

// APIs lists the API definitions being served, by listen path.
func (g *Gateway) APIs() []*APIDefinition {
	rt := g.routes.Load()
	out := make([]*APIDefinition, len(rt.apis))
	for i, a := range rt.apis {
		out[i] = a.def
	}
	return out
}

// Reload reads app_path again and swaps the new set of APIs in at once:
// a request already routed finishes on the API it started with. Files that
// fail to load are logged and reported in the error; the rest are served.
// If app_path itself cannot be read, the APIs being served stay.
func (g *Gateway) Reload() error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	defs, warnings, loadErr := LoadAPIDefinitions(g.cfg.AppDir())
	for _, w := range warnings {
		g.log.Warn(w)
	}
	var fileErrs *DefinitionErrors
	if loadErr != nil && !errors.As(loadErr, &fileErrs) {
		g.log.Error("API definitions not loaded; the APIs being served stay", "error", loadErr)
		return loadErr
	}
	if fileErrs != nil {
		for _, e := range fileErrs.Errs {
			g.log.Error("API definition not served", "error", e)
		}
	}
	rt, buildErr := g.buildRoutes(defs)
	g.routes.Store(rt)
	for _, a := range rt.apis {
		g.log.Info("serving API", "api_id", a.def.APIID, "name", a.def.Name, "listen_path", a.def.Proxy.ListenPath, "file", a.def.file)
	}
	return errors.Join(loadErr, buildErr)
}

func (g *Gateway) buildRoutes(defs []*APIDefinition) (*routeTable, error) {
	rt := &routeTable{}
	var errs []error
	for _, def := range defs {
		h, err := newProxy(def, g.transport, g.log)
		if err != nil {
			errs = append(errs, fmt.Errorf("building API %q from %s: %w", def.APIID, def.file, err))
			g.log.Error("API definition not served", "error", errs[len(errs)-1])
			continue
		}
		rt.apis = append(rt.apis, &route{def: def, listenPath: h.listenPath, handler: h})
	}
	sort.SliceStable(rt.apis, func(i, j int) bool {
		return len(rt.apis[i].listenPath) > len(rt.apis[j].listenPath)
	})
	return rt, errors.Join(errs...)
}

// routeTable holds the APIs ordered by listen path, longest first, so the
// first match is the longest.
type routeTable struct {
	apis []*route
}

type route struct {
	def        *APIDefinition
	listenPath string
	handler    http.Handler
}

func (rt *routeTable) match(path string) *route {
	for _, a := range rt.apis {
		lp := a.listenPath
		if lp == "/" || path == lp || (strings.HasPrefix(path, lp) && path[len(lp)] == '/') {
			return a
		}
	}
	return nil
}

// ServeHTTP routes a request: the health endpoint first, then the API with
// the longest matching listen path; anything else is 404.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == g.healthPath {
		g.serveHealth(w, r)
		return
	}
	api := g.routes.Load().match(r.URL.Path)
	if api == nil {
		writeError(w, http.StatusNotFound, CauseUnknownPath, msgUnknownPath)
		return
	}
	api.handler.ServeHTTP(w, r)
}

// Shutdown releases what the gateway holds: idle upstream connections and
// the store it opened (including the embedded cluster). Stop the Server in
// front of it first so no request is in flight. Safe to call twice.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.shutdownOnce.Do(func() {
		g.transport.CloseIdleConnections()
		g.shutdownErr = g.store.Close()
	})
	return g.shutdownErr
}
