package specs

import (
	"log/slog"

	. "github.com/onsi/ginkgo/v2"
	"go.uber.org/goleak"

	"github.com/tollgate/tollgate/gateway/storage"
)

// ginkgoInternals are the goroutines Ginkgo itself may start while a spec
// runs (node runners, interrupt and progress-signal handlers, the output
// interceptor used by `ginkgo -p`). They are listed here, and only here, so
// that every suite's leak guard ignores exactly the same set. The names were
// checked against Ginkgo v2.34 and Gomega's gleak standard filters.
var ginkgoInternals = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/onsi/ginkgo/v2/internal.(*Suite).runNode"),
	goleak.IgnoreAnyFunction("github.com/onsi/ginkgo/v2/internal/interrupt_handler.(*InterruptHandler).registerForInterrupts"),
	goleak.IgnoreAnyFunction("github.com/onsi/ginkgo/v2/internal.RegisterForProgressSignal"),
	// `ginkgo -p` starts the output interceptor's copier asynchronously at
	// the start of each spec, so it may appear after the guard's snapshot.
	// goleak matches exact frame names, hence the closures by name.
	goleak.IgnoreAnyFunction("github.com/onsi/ginkgo/v2/internal.(*genericOutputInterceptor).ResumeIntercepting"),
	goleak.IgnoreAnyFunction("github.com/onsi/ginkgo/v2/internal.(*genericOutputInterceptor).ResumeIntercepting.func1"),
	goleak.IgnoreAnyFunction("github.com/onsi/ginkgo/v2/internal.(*genericOutputInterceptor).ResumeIntercepting.func1.1"),
}

// LeakGuard remembers the goroutines that were running when it was made;
// Verify reports any goroutine started since then that is still running.
type LeakGuard struct {
	opts []goleak.Option
}

// NewLeakGuard snapshots the goroutines running now.
func NewLeakGuard() *LeakGuard {
	opts := append([]goleak.Option{goleak.IgnoreCurrent()}, ginkgoInternals...)
	return &LeakGuard{opts: opts}
}

// Verify fails t for every goroutine started after the snapshot that has not
// ended. goleak retries for about a second first, so goroutines that are
// already on their way out are not reported.
func (g *LeakGuard) Verify(t goleak.TestingT) {
	goleak.VerifyNone(t, g.opts...)
}

// GuardAgainstLeaks is the body of the first top-level BeforeEach of every
// suite:
//
//	var _ = BeforeEach(specs.GuardAgainstLeaks)
//
// Its DeferCleanup is registered before any other cleanup of the spec, so it
// runs after all of them: a spec passes only if everything it started has
// been stopped by the time its own cleanups are done.
func GuardAgainstLeaks() {
	guard := NewLeakGuard()
	DeferCleanup(func() { guard.Verify(GinkgoT()) })
}

// SendRedisLogsToGinkgo routes go-redis's own log (the failed dials that
// node-failure specs cause on purpose) to the spec's output. go-redis has
// one logger per process, so suites call it from a BeforeSuite:
//
//	var _ = BeforeSuite(specs.SendRedisLogsToGinkgo)
func SendRedisLogsToGinkgo() {
	storage.LogTo(slog.New(slog.NewTextHandler(GinkgoWriter, nil)))
}
