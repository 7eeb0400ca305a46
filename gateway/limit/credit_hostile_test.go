package limit_test

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/gateway/limit"
)

// Pause holds the next pipeline that carries a command named name, once
// armed: Reached closes as it is held, and it goes on when Release closes.
type Pause struct {
	name    string
	armed   atomic.Bool
	Reached chan struct{}
	Release chan struct{}
}

// PauseOn installs a Pause on client, armed.
func PauseOn(client redis.UniversalClient, name string) *Pause {
	p := &Pause{name: name, Reached: make(chan struct{}), Release: make(chan struct{})}
	p.armed.Store(true)
	client.AddHook(p)
	DeferCleanup(func() {
		select {
		case <-p.Release:
		default:
			close(p.Release)
		}
	})
	return p
}

// Paused is the request CheckUntilPaused held at the store: its outcome,
// and how many requests were sent, it included.
type Paused struct {
	Outcome limit.Outcome
	Sent    int
}

// CheckUntilPaused sends requests for id, from a goroutine of its own, until
// one of them reaches pause's command, the share it takes held at the
// store; it returns once one has. The channel yields that request once
// pause is released.
func CheckUntilPaused(ctx context.Context, limits *limit.Limits, id string, r limit.Rate, pause *Pause) <-chan Paused {
	GinkgoHelper()
	out := make(chan Paused, 1)
	go func() {
		defer GinkgoRecover()
		for sent := 1; ; sent++ {
			o := Check(ctx, limits, id, r)
			select {
			case <-pause.Reached:
				out <- Paused{Outcome: o, Sent: sent}
				return
			default:
			}
		}
	}()
	Eventually(pause.Reached).WithContext(ctx).Should(BeClosed())
	return out
}

func (p *Pause) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (p *Pause) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (p *Pause) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			if cmd.Name() == p.name && p.armed.CompareAndSwap(true, false) {
				close(p.Reached)
				<-p.Release
				break
			}
		}
		return next(ctx, cmds)
	}
}

// growShare sends requests for id through limits until its share of the
// quota is at least n (the store's counter then runs ahead of the requests
// served by what the book holds); it returns how many it sent.
func growShare(ctx context.Context, env *Env, limits *limit.Limits, id string, r limit.Rate, n int64) int64 {
	GinkgoHelper()
	var sent int64
	for sent < 4*n {
		Expect(Check(ctx, limits, id, r).Quota.Allowed).To(BeTrue())
		sent++
		stored, err := strconv.ParseInt(env.Stored(limit.QuotaKey(id)), 10, 64)
		Expect(err).NotTo(HaveOccurred())
		if stored-sent >= n-1 {
			return sent
		}
	}
	Fail("the share did not grow")
	return 0
}

var _ = Describe("Credit under attack", Label("limits", "quota"), func() {
	var env *Env

	BeforeEach(func() {
		env = NewEnv()
	})

	It("does not let a key whose quota was lowered use the share it was taking of the old quota", func(ctx SpecContext) {
		limits := env.NewCreditLimits(env.Client, 1)
		old := limit.Rate{Rate: 100_000_000, Per: time.Second, QuotaMax: 1_000_000, QuotaRenewal: time.Hour}
		growShare(ctx, env, limits, "lowered", old, 1000)
		pause := PauseOn(env.Client, "incrby")
		inFlight := CheckUntilPaused(ctx, limits, "lowered", old, pause)
		// The operator lowers the key's quota to 200 an hour (PUT
		// /tyk/keys/<key>?suppress_reset=1): the counter is far past it.
		lowered := limit.Rate{Rate: 100_000_000, Per: time.Second, QuotaMax: 200, QuotaRenewal: time.Hour}
		Expect(limits.Check(ctx, "lowered", lowered).Quota.Allowed).To(BeFalse())
		close(pause.Release)
		Eventually(inFlight).WithContext(ctx).Should(Receive())
		allowed := 0
		for range 100 {
			if limits.Check(ctx, "lowered", lowered).Quota.Allowed {
				allowed++
			}
		}
		Expect(allowed).To(BeZero(), "the key is far past its new quota")
	}, SpecTimeout(60*time.Second))

	It("does not let a key whose rate was lowered use the share it was taking of the old rate", func(ctx SpecContext) {
		limits := env.NewCreditLimits(env.Client, 1)
		old := limit.Rate{Rate: 1_000_000, Per: time.Second}
		Expect(HammerLimits(ctx, limits, "slowed", 4000, old)).To(Equal(4000)) // shares up to 2048
		pause := PauseOn(env.Client, "evalsha")
		done := CheckUntilPaused(ctx, limits, "slowed", old, pause)
		// The operator slows the key down to 1,000 a second.
		slowed := limit.Rate{Rate: 1000, Per: time.Second}
		first := HammerLimits(ctx, limits, "slowed", 1, slowed)
		close(pause.Release)
		Eventually(done).WithContext(ctx).Should(Receive())
		Expect(first+HammerLimits(ctx, limits, "slowed", 3000, slowed)).To(BeNumerically("<=", 1000+10),
			"at one instant, the new rate and at most its share")
	}, SpecTimeout(60*time.Second))

	It("keeps a request's quota given back while the key takes its next share", func(ctx SpecContext) {
		limits := env.NewCreditLimits(env.Client, 1)
		busy := limit.Rate{Rate: 100_000_000, Per: time.Second, QuotaMax: 1_000_000, QuotaRenewal: time.Hour}
		served := int64(0)
		for {
			Check(ctx, limits, "refunded", busy)
			served++
			stored, err := strconv.ParseInt(env.Stored(limit.QuotaKey("refunded")), 10, 64)
			Expect(err).NotTo(HaveOccurred())
			if stored-served == 1 && served > 100 {
				break // the book holds one
			}
			Expect(served).To(BeNumerically("<", 2000))
		}
		// The key is at its rate limit, 150 an hour (on the store: another
		// gateway used it up).
		atLimit := limit.Rate{Rate: 150, Per: time.Hour, QuotaMax: busy.QuotaMax, QuotaRenewal: busy.QuotaRenewal}
		gcra := limit.NewGCRA(env.Connect(), env.Now)
		for range 149 { // the busy requests took a little of the 150
			d, err := gcra.Allow(ctx, "refunded", atLimit.Rate, atLimit.Per)
			Expect(err).NotTo(HaveOccurred())
			Expect(d.Allowed).To(BeTrue())
		}
		x := Check(ctx, limits, "refunded", atLimit) // the book's last one
		Expect(x.Rate.Allowed).To(BeFalse())
		pause := PauseOn(env.Client, "incrby")
		yDone := make(chan limit.Outcome, 1)
		go func() {
			defer GinkgoRecover()
			yDone <- Check(ctx, limits, "refunded", atLimit) // takes the next share
		}()
		Eventually(pause.Reached).WithContext(ctx).Should(BeClosed())
		Expect(limits.RefundQuota(ctx, "refunded", x.Quota)).To(Succeed()) // what the rate-limit step does
		close(pause.Release)
		var y limit.Outcome
		Eventually(yDone).WithContext(ctx).Should(Receive(&y))
		Expect(y.Rate.Allowed).To(BeFalse())
		Expect(limits.RefundQuota(ctx, "refunded", y.Quota)).To(Succeed())
		Expect(limits.Close(ctx)).To(Succeed())
		Expect(env.Stored(limit.QuotaKey("refunded"))).To(Equal(strconv.FormatInt(served, 10)),
			"the refused requests cost nothing")
	}, SpecTimeout(60*time.Second))

	It("gives back at Close what a share taken meanwhile holds", func(ctx SpecContext) {
		limits := env.NewCreditLimits(env.Client, 1)
		r := limit.Rate{Rate: 100_000_000, Per: time.Second, QuotaMax: 1_000_000, QuotaRenewal: time.Hour}
		served := HammerLimits(ctx, limits, "closing", 1000, r)
		pause := PauseOn(env.Client, "incrby")
		done := CheckUntilPaused(ctx, limits, "closing", r, pause)
		Expect(limits.Close(ctx)).To(Succeed()) // Shutdown with a request in flight
		close(pause.Release)
		var held Paused
		Eventually(done).WithContext(ctx).Should(Receive(&held))
		Expect(env.Stored(limit.QuotaKey("closing"))).To(Equal(strconv.Itoa(served + held.Sent)))
	}, SpecTimeout(60*time.Second))

	It("leaves to another gateway the quota one gave back, though the first took a share past the quota's end", func(ctx SpecContext) {
		a := env.NewCreditLimits(env.Client, 1)
		b := env.NewCreditLimits(env.Connect(), 1)
		r := limit.Rate{Rate: 100_000_000, Per: time.Second, QuotaMax: 1000, QuotaRenewal: time.Hour}
		servedB := 0
		for {
			Expect(Check(ctx, b, "moved", r).Quota.Allowed).To(BeTrue())
			servedB++
			if env.Stored(limit.QuotaKey("moved")) == strconv.Itoa(servedB+9) {
				break // B holds 9
			}
			Expect(servedB).To(BeNumerically("<", 200))
		}
		// The client moves to A, until A refuses it.
		servedA := 0
		for Check(ctx, a, "moved", r).Quota.Allowed {
			servedA++
			Expect(servedA).To(BeNumerically("<=", 1000))
		}
		Expect(servedA + servedB).To(Equal(1000 - 9))
		Expect(b.Close(ctx)).To(Succeed()) // B gives back its 9
		for Check(ctx, a, "moved", r).Quota.Allowed {
			servedA++
			Expect(servedA).To(BeNumerically("<=", 1000))
		}
		// The one refused request counts, as without credit.
		Expect(servedA + servedB).To(Equal(1000 - 1))
	}, SpecTimeout(60*time.Second))

	It("gives back what it held of a key changed elsewhere, to the same period only", func(ctx SpecContext) {
		r := limit.Rate{Rate: 100_000_000, Per: time.Second, QuotaMax: 1_000_000, QuotaRenewal: time.Hour}
		By("a change without a reset: back to the store")
		kept := env.NewCreditLimits(env.Client, 1)
		Expect(HammerLimits(ctx, kept, "kept", 64, r)).To(Equal(64))
		Expect(env.Stored(limit.QuotaKey("kept"))).To(Equal("127"))
		kept.Forget("kept") // the key-change notification
		Check(ctx, kept, "kept", r)
		Expect(kept.Close(ctx)).To(Succeed())
		Expect(env.Stored(limit.QuotaKey("kept"))).To(Equal("65"))

		By("a reset, the counter started afresh meanwhile by another gateway: not into the new period")
		one := env.NewCreditLimits(env.Client, 1)
		two := env.NewCreditLimits(env.Connect(), 1)
		Expect(HammerLimits(ctx, one, "reset", 64, r)).To(Equal(64))
		env.PassTime(10 * time.Second)
		Expect(env.NewQuota().Reset(ctx, "reset")).To(Succeed()) // the control API, elsewhere
		Expect(two.Reset(ctx, "reset")).To(Succeed())
		Check(ctx, two, "reset", r)
		one.Forget("reset") // the key-change notification
		Check(ctx, one, "reset", r)
		Expect(one.Close(ctx)).To(Succeed())
		Expect(two.Close(ctx)).To(Succeed())
		Expect(env.Stored(limit.QuotaKey("reset"))).To(Equal("2"))
	}, SpecTimeout(60*time.Second))

	It("counts in the store exactly the requests let through, under many requests at once, refusals and key changes", func(ctx SpecContext) {
		limits := env.NewCreditLimits(env.Client, 1)
		r := limit.Rate{Rate: 2000, Per: time.Second, QuotaMax: 1_000_000, QuotaRenewal: time.Hour}
		var served atomic.Int64
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				defer GinkgoRecover()
				for range 400 {
					o := Check(ctx, limits, "mixed", r)
					if !o.Rate.Allowed {
						Expect(limits.RefundQuota(ctx, "mixed", o.Quota)).To(Succeed())
						continue
					}
					Expect(o.Quota.Allowed).To(BeTrue())
					served.Add(1)
				}
			})
		}
		wg.Go(func() {
			for range 50 {
				limits.Forget("mixed") // key changes elsewhere, without a reset
				runtime.Gosched()
			}
		})
		wg.Wait()
		Expect(served.Load()).To(BeNumerically(">=", 2000))
		Expect(limits.Close(ctx)).To(Succeed())
		Expect(env.Stored(limit.QuotaKey("mixed"))).To(Equal(strconv.FormatInt(served.Load(), 10)))
	}, SpecTimeout(120*time.Second))
})
