package specs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway"
	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/specs"
)

// debugGet sends GET url on a connection of its own, closed afterwards, and
// reads the whole response. The debug listener is not an Instance, and a
// profile may run for a while, so the timeout is longer than a profile's
// longest.
func debugGet(url string, headers ...string) specs.Response {
	GinkgoHelper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 45 * time.Second}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	Expect(err).NotTo(HaveOccurred())
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return specs.Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: string(body)}
}

// fetchInBackground sends debugGet from another goroutine: for profiles,
// which answer only when they end.
func fetchInBackground(url string, headers ...string) <-chan specs.Response {
	out := make(chan specs.Response, 1)
	go func() {
		defer GinkgoRecover()
		out <- debugGet(url, headers...)
	}()
	return out
}

// readSummary decodes a /debug/summary response.
func readSummary(resp specs.Response) gateway.DebugSummary {
	GinkgoHelper()
	Expect(resp.StatusCode).To(Equal(http.StatusOK), resp.Body)
	var s gateway.DebugSummary
	Expect(json.Unmarshal([]byte(resp.Body), &s)).To(Succeed(), resp.Body)
	return s
}

// parkGoroutines starts n goroutines that wait until the spec ends; the
// cleanup releases them and waits until they have returned.
func parkGoroutines(n int) {
	GinkgoHelper()
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { <-release })
	}
	DeferCleanup(func() {
		close(release)
		wg.Wait()
	})
}

// waitUntilProfiling waits until a goroutine of net/http/pprof is waiting
// out a profile's duration, as /debug/summary at summaryURL shows.
func waitUntilProfiling(ctx context.Context, summaryURL string, headers ...string) {
	GinkgoHelper()
	Eventually(func() []gateway.GoroutineGroup {
		return readSummary(debugGet(summaryURL, headers...)).GoroutinesByFunction
	}).WithContext(ctx).Should(ContainElement(HaveField("Function", HavePrefix("net/http/pprof."))))
}

const profilerConf = `{"secret": "spec-secret", "enable_http_profiler": true}`

var _ = Describe("The debug endpoints (profiler and summary)", Label("debug"), func() {
	var env *specs.Env

	When("enable_http_profiler is off", func() {
		BeforeEach(func() {
			env = specs.NewEnv()
		})

		It("answers /debug/pprof/ with 404, as any path no API serves", func() {
			expectGatewayError(env.Get("/debug/pprof/", "X-Tyk-Authorization", env.Secret), http.StatusNotFound, chain.CauseUnknownPath, "No API is served at this path")
		})

		It("answers /debug/summary with 404, as any path no API serves", func() {
			expectGatewayError(env.Get("/debug/summary", "X-Tyk-Authorization", env.Secret), http.StatusNotFound, chain.CauseUnknownPath, "No API is served at this path")
		})
	})

	When("enable_http_profiler is on", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithConfig(profilerConf))
		})

		When("X-Tyk-Authorization is missing", func() {
			It("answers 403 with the control API's message", func() {
				resp := env.Get("/debug/summary")
				Expect(resp.StatusCode).To(Equal(http.StatusForbidden))
				Expect(resp.Header.Get(chain.CauseHeader)).To(Equal(string(chain.CauseControlUnauthorised)))
				Expect(resp.JSON()).To(Equal(map[string]any{"status": "error", "message": "Attempted administrative access with invalid or missing key!"}))
			})
		})

		When("X-Tyk-Authorization is wrong", func() {
			It("answers 403 and no profile", func() {
				resp := env.Get("/debug/pprof/goroutine?debug=1", "X-Tyk-Authorization", "guess")
				Expect(resp.StatusCode).To(Equal(http.StatusForbidden))
				Expect(resp.Body).NotTo(ContainSubstring("goroutine profile"))
			})
		})

		When("X-Tyk-Authorization carries the secret", func() {
			var secret []string
			BeforeEach(func() { secret = []string{"X-Tyk-Authorization", env.Secret} })

			It("serves the profiler's index, listing the named profiles", func() {
				resp := env.Get("/debug/pprof/", secret...)
				Expect(resp.StatusCode).To(Equal(http.StatusOK))
				for _, name := range []string{"allocs", "block", "goroutine", "heap", "mutex", "threadcreate", "profile", "trace"} {
					Expect(resp.Body).To(ContainSubstring("href='" + name))
				}
			})

			It("serves the goroutine profile as text with ?debug=1", func() {
				resp := env.Get("/debug/pprof/goroutine?debug=1", secret...)
				Expect(resp.StatusCode).To(Equal(http.StatusOK))
				Expect(resp.Body).To(HavePrefix("goroutine profile: total"))
			})

			It("serves the heap profile in pprof's gzipped format", func() {
				resp := env.Get("/debug/pprof/heap", secret...)
				Expect(resp.StatusCode).To(Equal(http.StatusOK))
				Expect(resp.Body).To(HavePrefix("\x1f\x8b"))
			})

			It("serves the command line the gateway runs with", func() {
				resp := env.Get("/debug/pprof/cmdline", secret...)
				Expect(resp.StatusCode).To(Equal(http.StatusOK))
				Expect(resp.Body).To(HavePrefix(os.Args[0]))
			})

			It("answers 405 to a POST, which could carry seconds past the bound in its body", func() {
				resp := env.Do(http.MethodPost, "/debug/pprof/profile", "seconds=3600", append(secret, "Content-Type", "application/x-www-form-urlencoded")...)
				Expect(resp.StatusCode).To(Equal(http.StatusMethodNotAllowed))
			})

			It("serves /debug/summary with the goroutine and memory figures soak tools read", func() {
				resp := env.Get("/debug/summary", secret...)
				Expect(resp.StatusCode).To(Equal(http.StatusOK))
				Expect(resp.Header.Get("Content-Type")).To(Equal("application/json"))
				Expect(resp.JSON()).To(And(
					HaveKeyWithValue("goroutines", BeNumerically(">", 0)),
					HaveKeyWithValue("heap_inuse_bytes", BeNumerically(">", 0)),
					HaveKeyWithValue("heap_alloc_bytes", BeNumerically(">", 0)),
					HaveKey("rss_bytes"),
					HaveKey("num_gc"),
				))
			})

			It("reports the resident set size from /proc/self/status", func() {
				if _, err := os.Stat("/proc/self/status"); err != nil {
					Skip("this system has no /proc/self/status")
				}
				Expect(readSummary(env.Get("/debug/summary", secret...)).RSSBytes).To(BeNumerically(">", 1<<20))
			})

			It("runs a garbage collection first with ?gc=1", func() {
				before := readSummary(env.Get("/debug/summary", secret...)).NumGC
				Expect(readSummary(env.Get("/debug/summary?gc=1", secret...)).NumGC).To(BeNumerically(">", before))
			})

			It("counts goroutines that a program starts", func() {
				before := readSummary(env.Get("/debug/summary", secret...)).Goroutines
				parkGoroutines(200)
				// A few goroutines of the spec's world may end meanwhile.
				Expect(readSummary(env.Get("/debug/summary", secret...)).Goroutines).To(BeNumerically(">=", before+190))
			})

			It("groups the goroutines by the function they wait in", func() {
				parkGoroutines(37)
				Expect(readSummary(env.Get("/debug/summary", secret...)).GoroutinesByFunction).To(ContainElement(And(
					HaveField("Function", ContainSubstring("parkGoroutines")),
					HaveField("Count", 37),
				)))
			})
		})

		When("an API listens on /", func() {
			It("answers the debug endpoints itself", func() {
				env.RegisterAPI(keylessAPI("root", "/"))
				Expect(env.Get("/debug/summary", "X-Tyk-Authorization", env.Secret).StatusCode).To(Equal(http.StatusOK))
				Expect(env.Upstream.Requests()).To(BeEmpty())
			})
		})

		When("a CPU profile is running", func() {
			var profile <-chan specs.Response
			BeforeEach(func(ctx SpecContext) {
				profile = fetchInBackground(env.URL+"/debug/pprof/profile?seconds=3600", "X-Tyk-Authorization", env.Secret)
				waitUntilProfiling(ctx, env.URL+"/debug/summary", "X-Tyk-Authorization", env.Secret)
			}, NodeTimeout(15*time.Second))

			It("ends it when the gateway shuts down, so Shutdown does not wait for it", func(ctx SpecContext) {
				shutdownCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				start := time.Now()
				Expect(env.Gateway.Shutdown(shutdownCtx)).To(Succeed())
				Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
				Eventually(profile).WithContext(ctx).Should(Receive(HaveField("StatusCode", http.StatusOK)))
			}, SpecTimeout(20*time.Second))

			It("lowers the 3600 seconds asked to 30, and says so in X-Tollgate-Profile-Seconds", func(ctx SpecContext) {
				Expect(env.Gateway.Shutdown(ctx)).To(Succeed())
				var resp specs.Response
				Eventually(profile).WithContext(ctx).Should(Receive(&resp))
				Expect(resp.Header.Get("X-Tollgate-Profile-Seconds")).To(Equal("30"))
			}, SpecTimeout(20*time.Second))
		})

		When("the server in front of the gateway shuts down while a trace runs", func() {
			It("ends the trace, so the server's Shutdown does not wait for it", func(ctx SpecContext) {
				srv, err := gateway.Listen("127.0.0.1:0", env.Gateway, slog.New(slog.DiscardHandler))
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(func(ctx SpecContext) { _ = srv.Shutdown(ctx) })
				trace := fetchInBackground(srv.URL()+"/debug/pprof/trace?seconds=30", "X-Tyk-Authorization", env.Secret)
				waitUntilProfiling(ctx, env.URL+"/debug/summary", "X-Tyk-Authorization", env.Secret)

				shutdownCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				start := time.Now()
				Expect(srv.Shutdown(shutdownCtx)).To(Succeed())
				Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
				Eventually(trace).WithContext(ctx).Should(Receive(HaveField("StatusCode", http.StatusOK)))
			}, SpecTimeout(30*time.Second))
		})
	})

	When("enable_http_profiler is on and tyk.conf has no secret", func() {
		It("refuses every call, saying the debug endpoints are disabled", func() {
			env = specs.NewEnv(specs.WithConfig(`{"enable_http_profiler": true}`))
			resp := env.Get("/debug/summary", "X-Tyk-Authorization", "")
			Expect(resp.StatusCode).To(Equal(http.StatusForbidden))
			Expect(resp.Header.Get(chain.CauseHeader)).To(Equal(string(chain.CauseControlDisabled)))
			Expect(resp.JSON()["message"]).To(ContainSubstring("no secret"))
		})
	})

	Describe("debug_listen", func() {
		When("it is a loopback address", func() {
			var debugURL string
			BeforeEach(func() {
				env = specs.NewEnv(specs.WithConfig(`{"secret": "spec-secret", "debug_listen": "127.0.0.1:0"}`))
				debugURL = "http://" + env.Gateway.DebugAddr()
			})

			It("listens on that address, on the port picked for port 0", func() {
				host, port := splitAddr(env.Gateway.DebugAddr())
				Expect(host).To(Equal("127.0.0.1"))
				Expect(port).NotTo(BeZero())
			})

			It("serves /debug/summary without the secret", func() {
				Expect(readSummary(debugGet(debugURL + "/debug/summary")).Goroutines).To(BeNumerically(">", 0))
			})

			It("serves the goroutine profile without the secret", func() {
				resp := debugGet(debugURL + "/debug/pprof/goroutine?debug=1")
				Expect(resp.StatusCode).To(Equal(http.StatusOK))
				Expect(resp.Body).To(ContainSubstring("goroutine"))
			})

			It("answers 404 for paths other than the debug endpoints", func() {
				Expect(debugGet(debugURL + "/hello").StatusCode).To(Equal(http.StatusNotFound))
			})

			It("leaves the debug endpoints closed on the gateway's port", func() {
				Expect(env.Get("/debug/summary", "X-Tyk-Authorization", env.Secret).StatusCode).To(Equal(http.StatusNotFound))
			})

			It("is closed once the gateway has shut down", func(ctx SpecContext) {
				Expect(env.Gateway.Shutdown(ctx)).To(Succeed())
				conn, err := net.Dial("tcp", env.Gateway.DebugAddr())
				if err == nil {
					conn.Close()
				}
				Expect(err).To(MatchError(syscall.ECONNREFUSED))
			}, SpecTimeout(10*time.Second))

			It("ends a running CPU profile when the gateway shuts down, so Shutdown does not wait for it", func(ctx SpecContext) {
				profile := fetchInBackground(debugURL + "/debug/pprof/profile?seconds=30")
				waitUntilProfiling(ctx, debugURL+"/debug/summary")
				shutdownCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				start := time.Now()
				Expect(env.Gateway.Shutdown(shutdownCtx)).To(Succeed())
				Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
				Eventually(profile).WithContext(ctx).Should(Receive(HaveField("StatusCode", http.StatusOK)))
			}, SpecTimeout(20*time.Second))
		})

		DescribeTable("is accepted on a loopback address",
			func(addr string) {
				_, _, err := gateway.ParseConfig(fmt.Appendf(nil, `{"debug_listen": %q}`, addr))
				Expect(err).NotTo(HaveOccurred())
			},
			Entry("127.0.0.1", "127.0.0.1:6060"),
			Entry("anywhere in 127.0.0.0/8", "127.9.9.9:6060"),
			Entry("::1", "[::1]:6060"),
			Entry("localhost", "localhost:6060"),
		)

		DescribeTable("is refused at load, naming debug_listen, on any other address",
			func(addr string) {
				_, _, err := gateway.ParseConfig(fmt.Appendf(nil, `{"debug_listen": %q}`, addr))
				Expect(err).To(MatchError(And(ContainSubstring("debug_listen"), ContainSubstring(addr))))
			},
			Entry("every IPv4 interface", "0.0.0.0:6060"),
			Entry("every interface, no host", ":6060"),
			Entry("every IPv6 interface", "[::]:6060"),
			Entry("a private address", "10.1.2.3:6060"),
			Entry("a host name other than localhost", "debug.example.com:6060"),
			Entry("an address without a port", "127.0.0.1"),
		)

		When("a Config built in code names a non-loopback address", func() {
			It("is refused by gateway.New before anything starts, naming debug_listen", func() {
				gw, err := gateway.New(&gateway.Config{DebugListen: "0.0.0.0:0"})
				Expect(err).To(MatchError(ContainSubstring("debug_listen")))
				Expect(gw).To(BeNil())
			})
		})

		When("its port is taken", func() {
			It("makes gateway.New fail naming debug_listen, leaving nothing running", func() {
				taken, err := net.Listen("tcp", "127.0.0.1:0")
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(taken.Close)
				cfg, _, err := gateway.ParseConfig(fmt.Appendf(nil, `{"debug_listen": %q}`, taken.Addr().String()))
				Expect(err).NotTo(HaveOccurred())
				cfg.AppPath = GinkgoT().TempDir() // no storage: the embedded cluster, stopped again on failure
				gw, err := gateway.New(cfg)
				Expect(err).To(MatchError(And(ContainSubstring("debug_listen"), ContainSubstring(taken.Addr().String()))))
				Expect(gw).To(BeNil())
			})
		})
	})
})
