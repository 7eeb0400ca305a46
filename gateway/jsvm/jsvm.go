package jsvm

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robertkrimen/otto"
)

//go:embed tyk.js
var tykJS []byte

// DefaultTimeout is how long a middleware may run when Config.Timeout is
// not set (Tyk's jsvm_timeout default).
const DefaultTimeout = 5 * time.Second

// Host is what the JS API reaches of the gateway. Every call gets the run's
// context, whose deadline is the end of the middleware's time, so a call
// that blocks is cut off with the script. Errors become JS exceptions and
// may end up in logs: they must not contain raw keys.
type Host interface {
	// GetKeyData returns the session of key as JSON (TykGetKeyData).
	GetKeyData(ctx context.Context, key, apiID string) (sessionJSON string, err error)
	// SetKeyData stores sessionJSON as the session of key (TykSetKeyData);
	// suppressReset keeps the key's quota and rate-limit counters.
	SetKeyData(ctx context.Context, key, sessionJSON string, suppressReset bool) error
	// BatchRequest runs a batch as the /tyk/batch endpoint does and returns
	// the replies as JSON (TykBatchRequest).
	BatchRequest(ctx context.Context, requestJSON string) (replyJSON string, err error)
}

// Config is how a Program runs its middleware.
type Config struct {
	// Timeout bounds each run (jsvm_timeout); <= 0 means DefaultTimeout.
	Timeout time.Duration
	// Log receives log(msg) as an Info record with type=log-msg;
	// nil means slog.Default().
	Log *slog.Logger
	// RawLog receives rawlog(msg) as msg+"\n"; nil discards it.
	RawLog io.Writer
	// Host serves TykGetKeyData, TykSetKeyData and TykBatchRequest; when
	// nil those functions throw.
	Host Host
	// Client makes TykMakeHttpRequest's requests, each bounded by the run's
	// time; nil means http.DefaultClient.
	Client *http.Client
	// Memory stops runs, and the scripts' load in Compile, when the heap
	// passes its limit (ErrMemoryLimit); nil means no memory limit.
	Memory *MemoryBudget
	// MaxIdle is how many idle VMs a Program keeps for reuse; <= 0 means
	// 2*GOMAXPROCS.
	MaxIdle int
	// FreshVM copies the compiled VM for every run and drops it afterwards
	// instead of reusing a reset one. It is much slower and exists to
	// compare the two.
	FreshVM bool
	// UserCore is a script run after tollgate's JS API and before the
	// sources, with their limits (tyk.conf's tyk_js_path): what it defines
	// every middleware can use, and every run starts with.
	UserCore *Source
}

// Source is one middleware script.
type Source struct {
	// Name is the global variable the script assigns its
	// TykJS.TykMiddleware.NewMiddleware instance to; Run is called with it.
	Name string
	// File names the script in errors; empty means Name + ".js".
	File string
	// Code is the script.
	Code []byte
}

// Spec is the API a Program belongs to. Scripts receive it as their third
// argument: {APIID, OrgID, config_data}.
type Spec struct {
	// APIID is the API's api_id.
	APIID string
	// OrgID is the API's org_id.
	OrgID string
	// ConfigData is the API's config_data; nil is passed as {}.
	ConfigData map[string]any
}

// Stats are a Program's counters since Compile.
type Stats struct {
	// Runs counts calls to Run.
	Runs uint64
	// VMsCreated counts VMs copied from the compiled one.
	VMsCreated uint64
	// VMsDiscarded counts VMs thrown away: after a failed or interrupted
	// run, when they could not be reset, when the idle pool was full, and
	// after every run with FreshVM.
	VMsDiscarded uint64
	// Timeouts counts runs that ended with ErrTimeout.
	Timeouts uint64
	// MemoryStops counts runs that ended with ErrMemoryLimit.
	MemoryStops uint64
	// Idle is how many VMs wait for reuse now.
	Idle int
}

// Program is an API's compiled JS middleware. It is safe for concurrent
// use: each run gets a VM of its own.
type Program struct {
	timeout time.Duration
	mem     *MemoryBudget // nil: no memory limit
	log     *slog.Logger
	rawMu   sync.Mutex // rawlog writes may come from many runs at once
	rawLog  io.Writer
	host    Host
	client  *http.Client
	fresh   bool
	spec    Spec // what scripts get as config

	template *otto.Otto        // never runs after Compile; only copied
	files    map[string]string // middleware name → file
	globals  []string          // the global object's own properties after init
	known    map[string]struct{}

	idle chan *vm
	vms  sync.Map // *otto.Otto → *vm, for the Go functions to find their run

	// loading is the file Compile is running, for its errors.
	loading string

	runs, created, discarded, timeouts, memoryStops atomic.Uint64
}

// Compile runs the tyk.js wrapper and then every source, in order, in one
// VM that becomes the template of every run's VM. A syntax error, an
// exception, or a Source whose Name is not a middleware object afterwards
// is a *ScriptError naming the file and, when known, the line. Scripts
// that run longer than the timeout fail with ErrTimeout, and scripts that
// grow the heap past Config.Memory's limit with ErrMemoryLimit; both
// errors name the file.
func Compile(spec Spec, sources []Source, cfg Config) (*Program, error) {
	p, out, err := compile(spec, sources, cfg)
	if out.memory {
		// The template is out of reach now: collect what its scripts left.
		cfg.Memory.settle()
	}
	return p, err
}

func compile(spec Spec, sources []Source, cfg Config) (*Program, outcome, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.RawLog == nil {
		cfg.RawLog = io.Discard
	}
	if cfg.Client == nil {
		cfg.Client = http.DefaultClient
	}
	if cfg.MaxIdle <= 0 {
		cfg.MaxIdle = 2 * runtime.GOMAXPROCS(0)
	}
	if spec.ConfigData == nil {
		spec.ConfigData = map[string]any{}
	}
	p := &Program{
		timeout: cfg.Timeout,
		mem:     cfg.Memory,
		log:     cfg.Log.With("prefix", "jsvm", "api_id", spec.APIID),
		rawLog:  cfg.RawLog,
		host:    cfg.Host,
		client:  cfg.Client,
		fresh:   cfg.FreshVM,
		spec:    spec,
		files:   make(map[string]string, len(sources)),
		known:   make(map[string]struct{}),
		idle:    make(chan *vm, cfg.MaxIdle),
	}

	tmpl := otto.New()
	if err := p.install(tmpl); err != nil {
		return nil, outcome{}, fmt.Errorf("installing the JS API: %w", err)
	}
	v := p.track(tmpl)
	defer p.vms.Delete(tmpl)
	// The template never runs again, so an interrupt left pending after a
	// late expiry does no harm; Copy does not copy the Interrupt channel.
	// tollgate's own wrapper loads outside the script's time and memory
	// limits: a jsvm_timeout of a few milliseconds is the scripts' to use,
	// and a busy machine must not fail every load with it.
	if err := p.initCore(tmpl); err != nil {
		return nil, outcome{}, err
	}
	out, err := p.guarded(context.Background(), v, func() error {
		if c := cfg.UserCore; c != nil {
			p.loading = c.File
			if err := load(tmpl, c.File, c.Code); err != nil {
				return err
			}
		}
		return p.loadSources(tmpl, sources)
	})
	if err == nil {
		err = p.recordGlobals(tmpl)
	}
	switch {
	case out.memory:
		return nil, out, fmt.Errorf("%s: %w while the script loaded (heap %d MiB, limit %d MiB)",
			p.loading, ErrMemoryLimit, out.heap>>20, p.mem.Limit()>>20)
	case err != nil && out.expired:
		return nil, out, fmt.Errorf("%s: %w after %s while the script loaded", p.loading, ErrTimeout, p.timeout)
	case err != nil:
		return nil, out, err
	}
	p.template = tmpl
	p.loading = ""
	return p, out, nil
}

// initCore loads tollgate's JS API (tyk.js and the native wrappers) into
// tmpl.
func (p *Program) initCore(tmpl *otto.Otto) error {
	p.loading = "tyk.js"
	if err := load(tmpl, "tyk.js", tykJS); err != nil {
		return err
	}
	if err := p.nativeWrapper(tmpl); err != nil {
		return err
	}
	if err := p.hookDefine(tmpl); err != nil {
		return err
	}
	return guardBuiltins(tmpl)
}

// loadSources runs the middleware sources' top level in tmpl, which
// initCore prepared.
func (p *Program) loadSources(tmpl *otto.Otto, sources []Source) error {
	for _, src := range sources {
		file := src.File
		if file == "" {
			file = src.Name + ".js"
		}
		p.loading = file
		if err := load(tmpl, file, src.Code); err != nil {
			return err
		}
		if _, dup := p.files[src.Name]; dup {
			return &ScriptError{File: file, Message: fmt.Sprintf("middleware %q is defined twice", src.Name)}
		}
		if _, err := middleware(tmpl, src.Name); err != nil {
			return &ScriptError{File: file, Message: err.Error()}
		}
		p.files[src.Name] = file
	}
	return nil
}

// recordGlobals records the global names the sources left in tmpl, the
// baseline every reused VM is reset to.
func (p *Program) recordGlobals(tmpl *otto.Otto) error {
	names, err := tmpl.Run(builtinsJS + `[0].getOwnPropertyNames(this)`)
	if err != nil {
		return fmt.Errorf("listing globals: %w", err)
	}
	if p.globals, err = stringArray(names); err != nil {
		return fmt.Errorf("listing globals: %w", err)
	}
	for _, n := range p.globals {
		p.known[n] = struct{}{}
	}
	return nil
}

func load(js *otto.Otto, file string, code []byte) error {
	script, err := js.Compile(file, code)
	if err != nil {
		return scriptError(err, file)
	}
	if _, err := js.Run(script); err != nil {
		return scriptError(err, file)
	}
	return nil
}

// nativeWrapper installs the Go JSON.stringify, stashes the natives
// (stashJS) and replaces tyk.js's ReturnData and ReturnAuthData with Go
// functions that do the same, before any script runs.
func (p *Program) nativeWrapper(tmpl *otto.Otto) error {
	stash, err := tmpl.Run(stashJS)
	if err == nil {
		var global otto.Value
		if global, err = tmpl.Run(`this`); err == nil {
			_, err = stash.Call(otto.UndefinedValue(), global, p.jsonStringify)
		}
	}
	if err != nil {
		return fmt.Errorf("stashing the natives: %w", err)
	}
	proto, err := tmpl.Object(`TykJS.TykMiddleware.MiddlewareComponentMeta.prototype`)
	if err != nil {
		return fmt.Errorf("finding the middleware prototype: %w", err)
	}
	if err := proto.Set("ReturnData", p.returnData("SessionMeta")); err != nil {
		return err
	}
	return proto.Set("ReturnAuthData", p.returnData("Session"))
}

// middleware returns the middleware object named name.
func middleware(js *otto.Otto, name string) (entry, error) {
	this, err := js.Get(name)
	if err != nil || !this.IsObject() {
		return entry{}, fmt.Errorf("%s is not a middleware object (new TykJS.TykMiddleware.NewMiddleware)", name)
	}
	fn, err := this.Object().Get("ProcessRequest")
	if err != nil || !fn.IsFunction() {
		return entry{}, fmt.Errorf("%s has no ProcessRequest: is it a TykJS.TykMiddleware.NewMiddleware?", name)
	}
	return entry{this: this}, nil
}

// call does what tyk.js's DoProcessRequest does, from Go: the three
// arguments are made from Go values and the session's JSON (build.go,
// decode.go) and ProcessRequest is called without otto evaluating a single
// statement of the wrapper; with an Interrupt channel set, otto yields the
// goroutine before every statement and expression it evaluates.
func (v *vm) call(e entry, req *Request, session string, spec *Spec) (otto.Value, error) {
	var (
		args [3]otto.Value
		err  error
	)
	if args[0], err = v.request(req); err != nil {
		return otto.UndefinedValue(), err
	}
	if args[1], err = v.parse(session); err != nil {
		return otto.UndefinedValue(), err
	}
	if args[2], err = v.config(spec); err != nil {
		return otto.UndefinedValue(), err
	}
	fn, err := e.this.Object().Get("ProcessRequest")
	if err != nil {
		return otto.UndefinedValue(), err
	}
	if !fn.IsFunction() {
		return otto.UndefinedValue(), fmt.Errorf("ProcessRequest is %s, not a function", fn.Class())
	}
	out, err := fn.Call(e.this, args[0], args[1], args[2])
	if err != nil {
		return out, err
	}
	if !hasRequest(out) {
		_, _ = v.say.Call(otto.UndefinedValue(), "Middleware didn't return request object!")
	}
	return out, nil
}

// hasRequest is DoProcessRequest's test: out && out.Request.
func hasRequest(out otto.Value) bool {
	if !out.IsObject() {
		return false
	}
	r, err := out.Object().Get("Request")
	if err != nil {
		return false
	}
	b, err := r.ToBoolean()
	return err == nil && b
}

// Run runs the middleware called name on the caller's goroutine and returns
// what it returned. The run ends after Config.Timeout (ErrTimeout), when
// ctx ends (ctx's error) or when Config.Memory stops it (ErrMemoryLimit);
// a JS exception is a *ScriptError. The VM of a run that failed or was
// interrupted is discarded, so later runs never see its state.
func (p *Program) Run(ctx context.Context, name string, req Request, sessionJSON []byte) (*Result, error) {
	res, out, err := p.run(ctx, name, req, sessionJSON)
	if out.memory {
		// The run's VM is out of reach now that run has returned.
		p.mem.settle()
	}
	return res, err
}

func (p *Program) run(ctx context.Context, name string, req Request, sessionJSON []byte) (*Result, outcome, error) {
	p.runs.Add(1)
	file, ok := p.files[name]
	if !ok {
		return nil, outcome{}, fmt.Errorf("running %s: no such middleware", name)
	}
	if err := ctx.Err(); err != nil {
		return nil, outcome{}, fmt.Errorf("running %s: %w", name, err)
	}
	session := "{}"
	if len(sessionJSON) > 0 {
		session = string(sessionJSON)
	}

	v := p.acquire()
	var (
		res                 *Result
		resultErr, resetErr error
	)
	out, err := p.guarded(ctx, v, func() error {
		if v.entries == nil {
			if err := p.setup(v); err != nil {
				return err
			}
		}
		out, err := v.call(v.entries[name], &req, session, &p.spec)
		if err != nil {
			return scriptError(err, file)
		}
		res, resultErr = readResult(v, out)
		if !p.fresh {
			resetErr = p.reset(v)
		}
		return nil
	})
	switch {
	case err != nil || out.interrupted() || p.fresh:
		p.discard(v)
	case resetErr != nil:
		p.log.Warn("discarding a VM that could not be reset", "middleware", name, "error", resetErr)
		p.discard(v)
	default:
		p.release(v)
	}

	if err != nil {
		switch {
		case out.memory:
			p.memoryStops.Add(1)
			return nil, out, fmt.Errorf("running %s: %w (heap %d MiB, limit %d MiB)", name, ErrMemoryLimit, out.heap>>20, p.mem.Limit()>>20)
		case out.expired && ctx.Err() != nil:
			return nil, out, fmt.Errorf("running %s: %w", name, ctx.Err())
		case out.expired:
			p.timeouts.Add(1)
			return nil, out, fmt.Errorf("running %s: %w after %s", name, ErrTimeout, p.timeout)
		}
		return nil, out, fmt.Errorf("running %s: %w", name, err)
	}
	if resultErr != nil {
		return nil, out, fmt.Errorf("running %s: %w", name, resultErr)
	}
	return res, out, nil
}

// Stats returns the Program's counters.
func (p *Program) Stats() Stats {
	return Stats{
		Runs:         p.runs.Load(),
		VMsCreated:   p.created.Load(),
		VMsDiscarded: p.discarded.Load(),
		Timeouts:     p.timeouts.Load(),
		MemoryStops:  p.memoryStops.Load(),
		Idle:         len(p.idle),
	}
}

// stringArray reads a JS array of strings.
func stringArray(v otto.Value) ([]string, error) {
	arr := v.Object()
	if arr == nil {
		return nil, fmt.Errorf("not an array: %s", v)
	}
	length, err := arr.Get("length")
	if err != nil {
		return nil, err
	}
	n, err := length.ToInteger()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, n)
	for i := range n {
		item, err := arr.Get(strconv.FormatInt(i, 10))
		if err != nil {
			return nil, err
		}
		out = append(out, item.String())
	}
	return out, nil
}
