package limit_test

import (
	"context"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/gateway/limit"
)

// LoseReply, once armed, lets the next script call the store answers
// reach it and run, then loses the answer, as a connection that breaks or
// times out after the store did the work: the caller sees an error.
type LoseReply struct {
	Armed atomic.Bool
	Lost  chan struct{}
}

// LoseReplyOn installs a LoseReply on client, not armed.
func LoseReplyOn(client redis.UniversalClient) *LoseReply {
	l := &LoseReply{Lost: make(chan struct{})}
	client.AddHook(l)
	return l
}

func (l *LoseReply) DialHook(next redis.DialHook) redis.DialHook { return next }
func (l *LoseReply) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err == nil && (cmd.Name() == "evalsha" || cmd.Name() == "eval") && l.Armed.CompareAndSwap(true, false) {
			err = &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
			cmd.SetErr(err)
			close(l.Lost)
		}
		return err
	}
}
func (l *LoseReply) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

var _ = Describe("Credit racing its own bookkeeping", Label("limits", "quota"), func() {
	var env *Env

	BeforeEach(func() {
		env = NewEnv()
	})

	It("gives back the share a key changed elsewhere was taking, not leaving it counted for good", func(ctx SpecContext) {
		limits := env.NewCreditLimits(env.Client, 1)
		r := limit.Rate{Rate: 100_000_000, Per: time.Second, QuotaMax: 1_000_000, QuotaRenewal: time.Hour}
		served := int(growShare(ctx, env, limits, "changed", r, 1000))
		pause := PauseOn(env.Client, "incrby")
		done := CheckUntilPaused(ctx, limits, "changed", r, pause)
		limits.Forget("changed") // the key-change notification, with a share in flight
		close(pause.Release)
		var held Paused
		Eventually(done).WithContext(ctx).Should(Receive(&held))
		Expect(limits.Close(ctx)).To(Succeed())
		Expect(env.Stored(limit.QuotaKey("changed"))).To(Equal(strconv.Itoa(served + held.Sent)))
	}, SpecTimeout(60*time.Second))

	It("gives back the share a key reset meanwhile was taking, to the new period it was counted in", func(ctx SpecContext) {
		limits := env.NewCreditLimits(env.Client, 1)
		r := limit.Rate{Rate: 100_000_000, Per: time.Second, QuotaMax: 1_000_000, QuotaRenewal: time.Hour}
		growShare(ctx, env, limits, "reset", r, 1000)
		pause := PauseOn(env.Client, "incrby")
		done := CheckUntilPaused(ctx, limits, "reset", r, pause)
		// The control API's reset (Gateway.resetCounters): the share's
		// INCRBY starts the new period's counter.
		Expect(env.NewQuota().Reset(ctx, "reset")).To(Succeed())
		Expect(limits.Reset(ctx, "reset")).To(Succeed())
		close(pause.Release)
		Eventually(done).WithContext(ctx).Should(Receive())
		Expect(limits.Close(ctx)).To(Succeed())
		Expect(env.Stored(limit.QuotaKey("reset"))).To(Equal("1"), "the one request served since the reset")
	}, SpecTimeout(60*time.Second))

	It("gives back once what it held for a key no request came for, though the store's answer was lost", func(ctx SpecContext) {
		limits := env.NewCreditLimits(env.Client, 1)
		r := limit.Rate{Rate: 1_000_000, Per: time.Second, QuotaMax: 1000, QuotaRenewal: time.Hour}
		Check(ctx, limits, "lost", r) // takes 1
		Check(ctx, limits, "lost", r) // used it up at once: takes 2
		Expect(env.Stored(limit.QuotaKey("lost"))).To(Equal("3"), "one of them held")
		lose := LoseReplyOn(env.Client)
		lose.Armed.Store(true) // no request comes: the next script call is the give-back
		env.PassTime(2 * time.Second)
		Eventually(lose.Lost).WithContext(ctx).WithTimeout(5 * time.Second).Should(BeClosed())
		Expect(env.Stored(limit.QuotaKey("lost"))).To(Equal("2"), "the store took it back")
		Consistently(func() string { return env.Stored(limit.QuotaKey("lost")) }).WithContext(ctx).
			WithTimeout(3*time.Second).Should(Equal("2"), "two requests served: given back twice, the client gets one more than its quota")
		Expect(limits.Close(ctx)).To(Succeed())
		Expect(env.Stored(limit.QuotaKey("lost"))).To(Equal("2"))
	}, SpecTimeout(30*time.Second))
})
