package specs_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/robertkrimen/otto"

	"github.com/tollgate/tollgate/gateway/jsvm"
	"github.com/tollgate/tollgate/specs"
)

// leakyRunner runs JS the way Tyk 2.3.5 to 2.3.8 did (Tyk #804): a
// goroutine per run sends the result on an unbuffered channel and, from a
// deferred recover, sends a second value that nobody receives. Every run
// leaves that goroutine (and its VM) blocked for ever.
type leakyRunner struct {
	vm *otto.Otto
	// stuck collects the channels the leaked goroutines block on, so the
	// spec can release them once the guard has seen them.
	stuck []chan otto.Value
}

func (l *leakyRunner) run(expr string, timeout time.Duration) otto.Value {
	vm := l.vm.Copy()
	vm.Interrupt = make(chan func(), 1)
	ret := make(chan otto.Value) // unbuffered: the bug
	l.stuck = append(l.stuck, ret)
	go func() {
		defer func() {
			_ = recover()
			ret <- otto.Value{} // the second send nobody receives
		}()
		v, _ := vm.Run(expr)
		ret <- v
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case v := <-ret:
		return v
	case <-t.C:
		vm.Interrupt <- func() { panic("stop") }
		return <-ret
	}
}

// release unblocks the leaked goroutines by receiving their second value.
func (l *leakyRunner) release() {
	for _, ch := range l.stuck {
		<-ch
	}
}

// nopHost serves the JS API calls the spec's script does not make.
type nopHost struct{}

func (nopHost) GetKeyData(context.Context, string, string) (string, error) { return "{}", nil }
func (nopHost) SetKeyData(context.Context, string, string, bool) error     { return nil }
func (nopHost) BatchRequest(context.Context, string) (string, error)       { return "[]", nil }

const passThrough = `var pass = new TykJS.TykMiddleware.NewMiddleware({});
pass.NewProcessRequest(function(request, session) { return pass.ReturnData(request); });`

var _ = Describe("JS runner regression: Tyk #804", Label("jsvm", "leak"), func() {
	When("JS runs on a runner shaped like Tyk 2.3.5's", func() {
		It("leaves one goroutine per run, which the leak guard reports", func() {
			guard := specs.NewLeakGuard()
			runner := &leakyRunner{vm: otto.New()}
			for range 10 {
				Expect(runner.run(`1 + 1`, time.Second).Export()).To(BeEquivalentTo(2))
			}
			recorder := &errorRecorder{}
			guard.Verify(recorder)
			runner.release()
			Expect(recorder.Errors()).To(ContainElement(ContainSubstring("leakyRunner).run.func1")))
		})
	})

	When("JS runs on tollgate's runner", func() {
		It("leaves no goroutine after many runs, including runs that time out", func(ctx SpecContext) {
			guard := specs.NewLeakGuard()
			// A timeout of 200 ms: long enough for a pass-through run (a new
			// VM's first run included) under the race detector on a busy
			// machine, short enough that the five runs that spin take a second.
			prog, err := jsvm.Compile(jsvm.Spec{APIID: "a"}, []jsvm.Source{
				{Name: "pass", File: "pass.js", Code: []byte(passThrough)},
				{Name: "spin", File: "spin.js", Code: []byte(`var spin = new TykJS.TykMiddleware.NewMiddleware({});
spin.NewProcessRequest(function(request, session) { while (true) {} });`)},
			}, jsvm.Config{Timeout: 200 * time.Millisecond, Host: nopHost{}})
			Expect(err).NotTo(HaveOccurred())
			for range 200 {
				_, err := prog.Run(ctx, "pass", jsvm.Request{Method: "GET", URL: "/"}, []byte("{}"))
				Expect(err).NotTo(HaveOccurred())
			}
			for range 5 {
				_, err := prog.Run(ctx, "spin", jsvm.Request{Method: "GET", URL: "/"}, []byte("{}"))
				Expect(err).To(MatchError(jsvm.ErrTimeout))
			}
			recorder := &errorRecorder{}
			guard.Verify(recorder)
			Expect(recorder.Errors()).To(BeEmpty())
		}, SpecTimeout(30*time.Second))
	})
})
