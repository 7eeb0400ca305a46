package limit_test

import (
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/limit"
)

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
		done := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(done)
			for {
				Check(ctx, limits, "changed", r)
				served++
				select {
				case <-pause.Reached:
					return
				default:
				}
			}
		}()
		Eventually(pause.Reached).WithContext(ctx).Should(BeClosed())
		limits.Forget("changed") // the key-change notification, with a share in flight
		close(pause.Release)
		Eventually(done).WithContext(ctx).Should(BeClosed())
		Expect(limits.Close(ctx)).To(Succeed())
		Expect(env.Stored(limit.QuotaKey("changed"))).To(Equal(strconv.Itoa(served)))
	}, SpecTimeout(60*time.Second))

	It("gives back the share a key reset meanwhile was taking, to the new period it was counted in", func(ctx SpecContext) {
		limits := env.NewCreditLimits(env.Client, 1)
		r := limit.Rate{Rate: 100_000_000, Per: time.Second, QuotaMax: 1_000_000, QuotaRenewal: time.Hour}
		growShare(ctx, env, limits, "reset", r, 1000)
		pause := PauseOn(env.Client, "incrby")
		done := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(done)
			for {
				Check(ctx, limits, "reset", r)
				select {
				case <-pause.Reached:
					return
				default:
				}
			}
		}()
		Eventually(pause.Reached).WithContext(ctx).Should(BeClosed())
		// The control API's reset (Gateway.resetCounters): the share's
		// INCRBY starts the new period's counter.
		Expect(env.NewQuota().Reset(ctx, "reset")).To(Succeed())
		Expect(limits.Reset(ctx, "reset")).To(Succeed())
		close(pause.Release)
		Eventually(done).WithContext(ctx).Should(BeClosed())
		Expect(limits.Close(ctx)).To(Succeed())
		Expect(env.Stored(limit.QuotaKey("reset"))).To(Equal("1"), "the one request served since the reset")
	}, SpecTimeout(60*time.Second))
})
