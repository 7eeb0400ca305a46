package specs_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway"
	"github.com/tollgate/tollgate/gateway/analytics"
	"github.com/tollgate/tollgate/specs"
)

// hangingServer is an HTTP server on 127.0.0.1 that answers nothing: each
// request waits until its client gives up on it or the spec releases the
// server. It stands in for an upstream slower than the grace, or a webhook
// target that hangs.
type hangingServer struct {
	URL string
	// arrived receives once per request as it arrives.
	arrived  chan struct{}
	release  chan struct{}
	released bool
}

func startHangingServer() *hangingServer {
	GinkgoHelper()
	s := &hangingServer{arrived: make(chan struct{}, 64), release: make(chan struct{})}
	s.URL = specs.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-s.release:
		}
	}))
	// Registered after Serve's cleanup, so it runs first and frees the
	// handlers before the server waits for them.
	DeferCleanup(s.Release)
	return s
}

// Release answers the requests waiting and every later one at once.
func (s *hangingServer) Release() {
	if !s.released {
		s.released = true
		close(s.release)
	}
}

// waitForArrivals waits until n requests have reached the server.
func (s *hangingServer) waitForArrivals(ctx SpecContext, n int) {
	GinkgoHelper()
	for range n {
		Eventually(s.arrived).WithContext(ctx).Should(Receive())
	}
}

// requestInBackground sends GET url on a connection of its own; the
// channel receives nil for any answer, or the error that ended it (the
// connection cut off). Receive from it before the spec ends.
func requestInBackground(url string) <-chan error {
	done := make(chan error, 1)
	go func() {
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
		done <- err
	}()
	return done
}

// keylessAPITo is keylessAPI forwarding to target instead of the
// recording upstream.
func keylessAPITo(apiID, listenPath, target string) string {
	return fmt.Sprintf(`{"api_id": %q, "name": %q, "active": true, "use_keyless": true,
  "proxy": {"listen_path": %q, "target_url": %q, "strip_listen_path": true},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default"}}}}`, apiID, apiID, listenPath, target)
}

// recordsFor keeps the records of one path.
func recordsFor(records []analytics.Record, path string) []analytics.Record {
	var out []analytics.Record
	for _, r := range records {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// analyticsUntilShutdown turns analytics on with a flush interval longer
// than any spec, so every record is still buffered when Shutdown starts.
const analyticsUntilShutdown = `"enable_analytics": true, "analytics_config": {"flush_interval": 3600}`

var _ = Describe("Shutdown", Label("shutdown"), func() {
	var (
		env         *specs.Env
		shutdownErr error
	)

	When("a request outlives the server's grace", func() {
		// Before the fix, the gateway's Shutdown got the grace's context,
		// already expired, and wrote none of the buffered records.
		const served = 20
		var cut <-chan error

		BeforeEach(func(ctx SpecContext) {
			slow := startHangingServer()
			env = specs.NewEnv(specs.WithConfig(`{"secret": "s", `+analyticsUntilShutdown+`}`),
				specs.WithAPI(keylessAPI("open", "/open/")),
				specs.WithAPI(keylessAPITo("slow", "/slow/", slow.URL)))
			for range served {
				Expect(env.Get("/open/").StatusCode).To(Equal(http.StatusOK))
			}
			cut = requestInBackground(env.URL + "/slow/")
			slow.waitForArrivals(ctx, 1)

			grace, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			Expect(env.Server.Shutdown(grace)).To(MatchError(context.DeadlineExceeded))
			// The grace's context, expired, as cmd/tollgate used to pass it.
			shutdownErr = env.Gateway.Shutdown(grace)
			Eventually(cut).WithContext(ctx).Should(Receive(HaveOccurred()), "the slow request was not cut off")
		}, NodeTimeout(30*time.Second))

		It("still writes every buffered analytics record to Redis", func(ctx SpecContext) {
			Expect(recordsFor(storedRecords(ctx, env), "/open/")).To(HaveLen(served))
		}, NodeTimeout(10*time.Second))

		It("writes the cut request's record too", func(ctx SpecContext) {
			Expect(recordsFor(storedRecords(ctx, env), "/slow/")).To(HaveLen(1))
		}, NodeTimeout(10*time.Second))

		It("reports nothing lost", func() {
			Expect(shutdownErr).NotTo(HaveOccurred())
		})
	})

	When("a webhook target hangs with events queued", func() {
		// Before the fix, the webhooks held Shutdown for its whole context,
		// and the analytics records, flushed after them with that context
		// expired, were lost.
		const (
			expiredRequests = 6 // 4 webhooks on the bus's 4 workers, 2 queued
			webhookLimit    = 300 * time.Millisecond
			// bound is how long Shutdown may take here: the webhook limit,
			// plus a second for the flush and closing Redis.
			bound = webhookLimit + time.Second
		)
		var took time.Duration

		BeforeEach(func(ctx SpecContext) {
			target := startHangingServer()
			env = specs.NewEnv(
				specs.WithConfig(`{"secret": "s", "template_path": "templates", `+analyticsUntilShutdown+`}`),
				specs.WithBaseDir(seedPath()),
				specs.WithAPI(webhookAPI(target.URL, 0)),
				specs.WithGatewayOptions(gateway.WithShutdownLimits(gateway.ShutdownLimits{Webhooks: webhookLimit})))
			expired := issueExpiredKey(env, func(expires string) string { return grantTo("hooked", expires) })
			for range expiredRequests {
				Expect(env.Get("/hooked/", "x-key", expired).StatusCode).To(Equal(http.StatusUnauthorized))
			}
			target.waitForArrivals(ctx, 4)
			Expect(env.Server.Shutdown(ctx)).To(Succeed())

			// Longer than the webhook limit, shorter than a webhook's own
			// 10 s timeout: the context, had it bounded the webhooks, would
			// have run out with them still hanging, as the grace did in the
			// report.
			grace, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			start := time.Now()
			shutdownErr = env.Gateway.Shutdown(grace)
			took = time.Since(start)
		}, NodeTimeout(40*time.Second))

		It("still writes every buffered analytics record to Redis", func(ctx SpecContext) {
			Expect(recordsFor(storedRecords(ctx, env), "/hooked/")).To(HaveLen(expiredRequests))
		}, NodeTimeout(10*time.Second))

		It("returns within the webhook limit plus a second", func() {
			Expect(took).To(BeNumerically("<", bound))
		})

		It("reports the webhooks it cut off", func() {
			Expect(shutdownErr).To(MatchError(gateway.ErrEventsCut))
		})

		It("does not report the analytics records as lost", func() {
			Expect(errors.Is(shutdownErr, gateway.ErrBufferedLost)).To(BeFalse(), "Shutdown reported: %v", shutdownErr)
		})
	})

	When("a webhook target hangs and the webhook limit is longer than the spec", func() {
		It("writes the analytics records before it waits for the webhooks", func(ctx SpecContext) {
			target := startHangingServer()
			env = specs.NewEnv(
				specs.WithConfig(`{"secret": "s", "template_path": "templates", `+analyticsUntilShutdown+`}`),
				specs.WithBaseDir(seedPath()),
				specs.WithAPI(webhookAPI(target.URL, 0)),
				specs.WithGatewayOptions(gateway.WithShutdownLimits(gateway.ShutdownLimits{Webhooks: time.Hour})))
			expired := issueExpiredKey(env, func(expires string) string { return grantTo("hooked", expires) })
			Expect(env.Get("/hooked/", "x-key", expired).StatusCode).To(Equal(http.StatusUnauthorized))
			target.waitForArrivals(ctx, 1)
			Expect(env.Server.Shutdown(ctx)).To(Succeed())

			shut := make(chan error, 1)
			go func() { shut <- env.Gateway.Shutdown(ctx) }()
			Eventually(func() []analytics.Record { return storedRecords(ctx, env) }).WithContext(ctx).Should(HaveLen(1))
			Expect(shut).NotTo(Receive(), "Shutdown returned before the webhook was answered")
			target.Release()
			Eventually(shut).WithContext(ctx).Should(Receive(Not(HaveOccurred())))
		}, SpecTimeout(20*time.Second))
	})

	When("Redis refuses the buffered records", func() {
		const served = 5

		BeforeEach(func(ctx SpecContext) {
			env = specs.NewEnv(specs.WithConfig(`{"secret": "s", `+analyticsUntilShutdown+`}`),
				specs.WithAPI(keylessAPI("open", "/open/")))
			// A string where the list should be: RPUSH answers WRONGTYPE.
			Expect(env.Redis.Set(ctx, analytics.Key, "not a list", 0).Err()).To(Succeed())
			for range served {
				Expect(env.Get("/open/").StatusCode).To(Equal(http.StatusOK))
			}
			Expect(env.Server.Shutdown(ctx)).To(Succeed())
			shutdownErr = env.Gateway.Shutdown(ctx)
		}, NodeTimeout(20*time.Second))

		It("reports them as lost", func() {
			Expect(shutdownErr).To(MatchError(gateway.ErrBufferedLost))
		})

		It("logs how many", func() {
			Expect(env.Logs()).To(ContainSubstring(fmt.Sprintf("not_written=%d", served)))
		})
	})

	When("the node holding the analytics list is down as the flush starts", func() {
		It("writes every buffered record once the node is back, within the flush limit", specs.SimulatedOnly("it kills and restarts a simulated node"), func(ctx SpecContext) {
			const served = 5
			env = specs.NewEnv(specs.WithConfig(`{"secret": "s", `+analyticsUntilShutdown+`}`),
				specs.WithAPI(keylessAPI("open", "/open/")),
				specs.WithGatewayOptions(gateway.WithShutdownLimits(gateway.ShutdownLimits{Flush: time.Minute})))
			for range served {
				Expect(env.Get("/open/").StatusCode).To(Equal(http.StatusOK))
			}
			Expect(env.Server.Shutdown(ctx)).To(Succeed())
			node := env.Cluster.NodeForKey(analytics.Key)
			node.Kill()
			DeferCleanup(node.Restart)

			shut := make(chan error, 1)
			go func() { shut <- env.Gateway.Shutdown(ctx) }()
			Eventually(env.Logs).WithContext(ctx).WithTimeout(5*time.Second).Should(ContainSubstring("analytics: write got no answer"),
				"the flush did not retry the write that got no answer")
			Expect(node.Restart()).To(Succeed())
			Eventually(shut).WithContext(ctx).Should(Receive(Not(HaveOccurred())))
			Expect(storedRecords(ctx, env)).To(HaveLen(served))
		}, SpecTimeout(30*time.Second))
	})
})
