package gateway

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/tollgate/tollgate/gateway/apidef"
	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/gateway/jsvm"
	"github.com/tollgate/tollgate/gateway/step/jsmw"
)

// api is an API definition compiled for serving: its chain (see order.go)
// and its event handlers.
type api struct {
	g          *Gateway
	def        *apidef.APIDefinition
	listenPath string
	chain      []chain.Step
	js         *jsmw.Set // nil without JS middleware
	// events are the API's event handlers; Reload retires them with the API.
	events eventHandlers
}

// apiBuild is what the chain's builders share while one API compiles.
type apiBuild struct {
	g        *Gateway
	def      *apidef.APIDefinition
	log      *slog.Logger // the gateway's, with the API's id
	warnings []string

	js         *jsmw.Set
	jsCompiled bool
}

func (b *apiBuild) warn(ws ...string) { b.warnings = append(b.warnings, ws...) }

// jsMiddleware compiles the API's JS middleware once, for every hook's row.
func (b *apiBuild) jsMiddleware() (*jsmw.Set, error) {
	if b.jsCompiled {
		return b.js, nil
	}
	set, err := jsmw.Compile(b.def, jsmw.Options{
		EnableJSVM:     b.g.cfg.EnableJSVM,
		Timeout:        b.g.cfg.JSTimeout(),
		Log:            b.g.log,
		RawLog:         b.g.rawLog,
		Host:           &jsHost{g: b.g, def: b.def},
		Client:         &http.Client{Transport: b.g.transport},
		ResolvePath:    b.g.cfg.ResolvePath,
		MaxScriptSize:  b.g.cfg.ScriptSizeLimit(),
		Memory:         b.g.jsMemory,
		KeepHeaderCase: b.g.cfg.IgnoreCanonicalMIMEHeaderKey,
		UserCorePath:   b.g.cfg.ResolvePath(b.g.cfg.TykJSPath),
	})
	if err != nil {
		return nil, err
	}
	b.js, b.jsCompiled = set, true
	return set, nil
}

// compileAPI turns a definition into an api. Warnings report entries that
// load but may not do what their author meant.
func (g *Gateway) compileAPI(def *apidef.APIDefinition) (*api, []string, error) {
	b := &apiBuild{g: g, def: def, log: g.log.With("api_id", def.APIID)}
	steps, err := b.buildChain()
	if err != nil {
		return nil, nil, err
	}
	events, ws, err := g.compileEventHandlers(def.EventHandlers, "event_handlers")
	if err != nil {
		return nil, nil, err
	}
	b.warn(ws...)
	return &api{g: g, def: def, listenPath: def.ListenPath(), chain: steps, js: b.js, events: events}, b.warnings, nil
}

// serve runs the chain, then, if every step let the request pass, writes
// a session JS changed and proxies. It returns what the chain learnt, for
// analytics.
func (a *api) serve(w http.ResponseWriter, r *http.Request, now time.Time, clientIP string) *chain.Call {
	c := chain.NewCall(w, r, a.def, a.listenPath, now, clientIP)
	c.StoreBudget = a.g.storeBudget
	for _, s := range a.chain {
		if !s.Serve(c) {
			return c
		}
	}
	if c.SessionDirty && !c.SessionTransient {
		a.g.writeSession(c)
	}
	c.Upstream.ServeHTTP(c.W, c.R)
	c.Proxied()
	return c
}

// JSStats reports the JS runtime counters of an API (zero when it has no
// JS middleware): how many VMs were made, reused, discarded.
func (g *Gateway) JSStats(apiID string) jsvm.Stats {
	for _, a := range g.routes.Load().apis {
		if a.def.APIID == apiID {
			return a.js.Stats()
		}
	}
	return jsvm.Stats{}
}
