package jsvm

import (
	"context"
	"fmt"
	"math"

	"github.com/robertkrimen/otto"
)

// vm is one copy of the template, used by one run at a time.
type vm struct {
	js *otto.Otto
	// ctx is the current run's context (nil between runs); the Go
	// functions of the JS API pass it on to the Host and the HTTP client.
	ctx context.Context
	// interrupt asks the running script to stop; armed per run.
	interrupt func()
	// api is the Program's API, for the MemoryBudget's log.
	api string
	// mem is the VM's part in the Program's MemoryBudget.
	mem memState

	// defined is set when the running script called Object.defineProperty
	// or Object.defineProperties, the only ways to add a global that
	// Object.Keys does not list; reset then lists every own property.
	defined bool

	// Set up on first use, under the run's time limit (see setup).
	entries   map[string]entry // middleware name → object and entry point
	global    otto.Value       // the global object
	globalObj *otto.Object
	names     otto.Value   // Object.getOwnPropertyNames as it was after init
	del       otto.Value   // function (n) { return delete global[n]; }
	initial   []otto.Value // the values of Program.globals after init

	// The natives (see stashJS), whatever the scripts did to the globals.
	jsonStringify otto.Value
	json          otto.Value
	jsonParse     otto.Value
	objectCtor    otto.Value
	arrayCtor     otto.Value
	ottoStringify otto.Value // otto's own, for what the Go one leaves to it
	say           otto.Value // log, as after init
}

// entry is the middleware object a run calls ProcessRequest on.
type entry struct {
	this otto.Value
}

// helperJS gives Go the objects it needs to reset a VM, make arguments and
// read results. They are taken before any run could replace them.
const helperJS = `(function (g, b) {
	return [g, b[0].getOwnPropertyNames, function (n) { return delete g[n]; }, b[4], b[2], b[3], log, b[0], b[1], b[5]];
})(this, ` + builtinsJS + `)`

// hookJS makes Object.defineProperty and Object.defineProperties report
// their use (see vm.defined). It runs in the template before any script.
const hookJS = `(function (report) {
	var defineProperty = Object.defineProperty, defineProperties = Object.defineProperties;
	Object.defineProperty = function (o, p, d) { report(); return defineProperty(o, p, d); };
	Object.defineProperties = function (o, ps) { report(); return defineProperties(o, ps); };
})`

// hookDefine installs hookJS in the template.
func (p *Program) hookDefine(tmpl *otto.Otto) error {
	install, err := tmpl.Run(hookJS)
	if err != nil {
		return fmt.Errorf("hooking Object.defineProperty: %w", err)
	}
	report := func(call otto.FunctionCall) otto.Value {
		if v, ok := p.vms.Load(call.Otto); ok {
			v.(*vm).defined = true
		}
		return otto.UndefinedValue()
	}
	if _, err := install.Call(otto.UndefinedValue(), report); err != nil {
		return fmt.Errorf("hooking Object.defineProperty: %w", err)
	}
	return nil
}

// track makes js known to the Go side of the JS API and gives it an
// Interrupt channel. Both senders (the stop armed per run, and halt
// re-arming itself) send without blocking: a value already pending means
// the script is already being stopped.
func (p *Program) track(js *otto.Otto) *vm {
	js.Interrupt = make(chan func(), 1)
	v := &vm{js: js, api: p.spec.APIID}
	var halt func()
	halt = func() {
		// A script can catch the panic with try/catch; leave the request
		// pending so that the next statement stops it again.
		select {
		case js.Interrupt <- halt:
		default:
		}
		panic(errInterrupted)
	}
	v.interrupt = func() {
		select {
		case js.Interrupt <- halt:
		default:
		}
	}
	p.vms.Store(js, v)
	return v
}

// acquire returns an idle VM or a new copy of the template.
func (p *Program) acquire() *vm {
	if !p.fresh {
		select {
		case v := <-p.idle:
			return v
		default:
		}
	}
	p.created.Add(1)
	return p.track(p.template.Copy())
}

// release keeps v for reuse if there is room.
func (p *Program) release(v *vm) {
	select {
	case p.idle <- v:
	default:
		p.discard(v)
	}
}

// discard forgets v; a pending interrupt dies with it.
func (p *Program) discard(v *vm) {
	p.vms.Delete(v.js)
	p.discarded.Add(1)
}

// outcome is how a guarded call ended.
type outcome struct {
	// expired: the run's context ended (its timeout, or ctx) before f
	// returned; an error f returned is the consequence (a Go call cut off
	// by the deadline, say).
	expired bool
	// memory: the MemoryBudget stopped the run; heap is what it saw.
	memory bool
	heap   uint64
}

// interrupted reports that an interrupt may be pending in the VM, which
// must then not run again.
func (o outcome) interrupted() bool { return o.expired || o.memory }

// guarded runs f with v armed to stop when ctx ends, the timeout passes or
// the Program's MemoryBudget says so, whichever is first. The timer is the
// context's own (time.AfterFunc underneath) and context.AfterFunc starts a
// goroutine only when it fires; nothing is left running once guarded
// returns. A run the budget stopped must call p.mem.settle once v is
// dropped.
func (p *Program) guarded(ctx context.Context, v *vm, f func() error) (out outcome, err error) {
	runCtx, cancel := context.WithTimeout(ctx, p.timeout)
	v.ctx = runCtx
	stop := context.AfterFunc(runCtx, v.interrupt)
	if p.mem != nil {
		p.mem.enter(v, cancel)
	}
	err = protect(f)
	if p.mem != nil {
		out.memory, out.heap = p.mem.leave(v)
	}
	// The context is done before its AfterFunc is started, so check both.
	out.expired = !stop() || runCtx.Err() != nil
	cancel()
	v.ctx = nil
	return out, err
}

// protect turns a panic in f (the interrupt, or a bug in otto) into an
// error.
func protect(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if r == errInterrupted { //nolint:errorlint // the panic value itself
				err = errInterrupted
				return
			}
			err = fmt.Errorf("jsvm: panic: %v", r)
		}
	}()
	return f()
}

// setup prepares a fresh copy: it finds the middleware entry points and
// records the values every reset restores. It runs under the run's time
// limit because reading a global may call a getter a script defined.
func (p *Program) setup(v *vm) error {
	helpers, err := v.js.Run(helperJS)
	if err != nil {
		return fmt.Errorf("preparing a VM: %w", err)
	}
	h := helpers.Object()
	if v.global, err = h.Get("0"); err == nil && v.global.IsObject() {
		v.globalObj = v.global.Object()
		if v.names, err = h.Get("1"); err == nil {
			if v.del, err = h.Get("2"); err == nil {
				v.jsonStringify, err = h.Get("3")
			}
		}
		if err == nil {
			if v.json, err = h.Get("4"); err == nil {
				if v.jsonParse, err = h.Get("5"); err == nil {
					if v.say, err = h.Get("6"); err == nil {
						if v.objectCtor, err = h.Get("7"); err == nil {
							if v.arrayCtor, err = h.Get("8"); err == nil {
								v.ottoStringify, err = h.Get("9")
							}
						}
					}
				}
			}
		}
	}
	if err != nil {
		return fmt.Errorf("preparing a VM: %w", err)
	}
	if !p.fresh { // a fresh VM is never reset
		v.initial = make([]otto.Value, len(p.globals))
		for i, name := range p.globals {
			if v.initial[i], err = v.js.Get(name); err != nil {
				return fmt.Errorf("preparing a VM: %w", err)
			}
		}
	}
	entries := make(map[string]entry, len(p.files))
	for name := range p.files {
		e, err := middleware(v.js, name)
		if err != nil {
			return fmt.Errorf("preparing a VM: %w", err)
		}
		entries[name] = e
	}
	v.entries = entries
	return nil
}

// reset undoes what a run did to the global namespace: globals it created
// are deleted and top-level globals it reassigned or deleted get their
// initial value back. State inside objects that existed before the run
// (a property added to a middleware object, say) is not restored.
func (p *Program) reset(v *vm) error {
	if v.defined {
		if err := p.deleteAllNew(v); err != nil {
			return err
		}
		v.defined = false
	} else {
		// Assignments and declarations create enumerable globals, which
		// Keys lists without building a JS array.
		for _, name := range v.globalObj.Keys() {
			if err := p.deleteIfNew(v, name); err != nil {
				return err
			}
		}
	}
	for i, name := range p.globals {
		cur, err := v.js.Get(name)
		if err != nil {
			return fmt.Errorf("reading global %s: %w", name, err)
		}
		if same(cur, v.initial[i]) {
			continue
		}
		if err := v.js.Set(name, v.initial[i]); err != nil {
			return fmt.Errorf("restoring global %s: %w", name, err)
		}
		if cur, err = v.js.Get(name); err != nil || !same(cur, v.initial[i]) {
			return fmt.Errorf("global %s cannot be restored", name)
		}
	}
	return nil
}

// deleteAllNew deletes every own property of the global object, enumerable
// or not, that was not there after init.
func (p *Program) deleteAllNew(v *vm) error {
	list, err := v.names.Call(otto.UndefinedValue(), v.global)
	if err != nil {
		return fmt.Errorf("listing globals: %w", err)
	}
	names, err := stringArray(list)
	if err != nil {
		return fmt.Errorf("listing globals: %w", err)
	}
	for _, name := range names {
		if err := p.deleteIfNew(v, name); err != nil {
			return err
		}
	}
	return nil
}

func (p *Program) deleteIfNew(v *vm, name string) error {
	if _, ok := p.known[name]; ok {
		return nil
	}
	deleted, err := v.del.Call(otto.UndefinedValue(), name)
	if err != nil {
		return fmt.Errorf("deleting global %s: %w", name, err)
	}
	if ok, _ := deleted.ToBoolean(); !ok {
		return fmt.Errorf("global %s cannot be deleted", name)
	}
	return nil
}

// same reports whether a and b are the same JS value: the same object, or
// equal primitives.
func same(a, b otto.Value) bool {
	switch {
	case a.IsString() || b.IsString():
		// A string may be held as []uint16, which == cannot compare.
		return a.IsString() && b.IsString() && a.String() == b.String()
	case a.IsNumber() && b.IsNumber():
		// Numbers may be held as different Go types; NaN is itself.
		x, _ := a.ToFloat()
		y, _ := b.ToFloat()
		return x == y || (math.IsNaN(x) && math.IsNaN(y))
	default:
		return a == b
	}
}
