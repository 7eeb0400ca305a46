package lograte_test

import (
	"bytes"
	"log/slog"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/lograte"
)

// fakeClock is a clock the spec moves.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time          { return c.now }
func (c *fakeClock) Advance(d time.Duration) { c.now = c.now.Add(d) }

var _ = Describe("The rate-limited log", func() {
	var (
		out   *bytes.Buffer
		clock *fakeClock
		log   *slog.Logger
	)

	// lines returns the lines written so far.
	lines := func() []string {
		return strings.Split(strings.TrimSpace(out.String()), "\n")
	}

	BeforeEach(func() {
		out = &bytes.Buffer{}
		clock = &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
		log = slog.New(lograte.NewHandler(slog.NewTextHandler(out, nil), lograte.Options{Now: clock.Now, MaxCauses: 4}))
	})

	When("one warning repeats for many keys and paths within the interval", func() {
		BeforeEach(func() {
			for i := range 100 {
				log.Warn("quota not applied: store unavailable", "api_id", "orders", "key_hash", i, "path", i)
			}
		})

		It("writes it once", func() {
			Expect(lines()).To(HaveLen(1))
		})

		It("writes it again once the interval has passed, with the count left out", func() {
			clock.Advance(lograte.DefaultInterval)
			log.Warn("quota not applied: store unavailable", "api_id", "orders")
			Expect(lines()).To(HaveLen(2))
			Expect(lines()[1]).To(ContainSubstring("suppressed=99"))
		})
	})

	When("the same warning comes from two APIs", func() {
		It("writes it once for each", func() {
			for range 10 {
				log.Warn("rate limit not applied: store unavailable", "api_id", "orders")
				log.With("api_id", "users").Warn("rate limit not applied: store unavailable")
			}
			Expect(lines()).To(HaveLen(2))
		})
	})

	When("records are below warning level", func() {
		It("writes every one", func() {
			for range 3 {
				log.Info("serving API", "api_id", "orders")
			}
			Expect(lines()).To(HaveLen(3))
		})
	})

	When("more causes arrive than it remembers", func() {
		It("limits the newcomers together, so its memory stays bounded", func() {
			for round := range 3 {
				for i := range 10 {
					log.Warn("upstream unreachable", "api_id", string(rune('a'+i)), "round", round)
				}
			}
			// 4 causes remembered, one line each; the 6 others share one.
			Expect(lines()).To(HaveLen(5))
		})
	})
})
