package specs_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"

	"github.com/tollgate/tollgate/gateway"
	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/specs"
)

// hostileConf runs JS with a small jsvm_memory_limit (64 MB), so the specs
// stay light on a CI machine, and a jsvm_timeout (10 s) long enough that
// the memory limit, not the timeout, is what stops the loop even
// under the race detector, where otto is several times slower. The
// profiler's /debug/summary reports the heap.
const hostileConf = `{"secret": "s", "enable_jsvm": true, "jsvm_timeout": 10, "jsvm_memory_limit": 64, "enable_http_profiler": true}`

// hostileTimeout is hostileConf's jsvm_timeout.
const hostileTimeout = 10 * time.Second

// hostileLimit is hostileConf's jsvm_memory_limit in bytes.
const hostileLimit = 64 << 20

// doublingBody is the hostile loop: it doubles a string and keeps
// every copy, so the heap doubles with it, and never returns.
const doublingBody = `var s = "x"; var a = []; while (true) { s = s + s; a.push(s); }`

// hoardingBody is the loop as the middleware hog's callback, which
// also hangs the copies on the middleware object: a VM that was reused
// rather than discarded would keep them.
const hoardingBody = `var s = "x"; var a = []; hog.hoard = a; while (true) { s = s + s; a.push(s); }`

// preJSAPI is a keyless API whose pre hook runs the middleware name, read
// from path.
func preJSAPI(apiID, listenPath, name, path string) string {
	return fmt.Sprintf(`{"api_id": %q, "active": true, "use_keyless": true,
  "proxy": {"listen_path": %q, "target_url": "{{upstream}}", "strip_listen_path": true},
  "custom_middleware": {"pre": [{"name": %q, "path": %q}]}}`, apiID, listenPath, name, path)
}

// calmAPI is a keyless API at /calm/ whose well-behaved middleware sets
// X-Calm on the forwarded request.
func calmAPI() string {
	return preJSAPI("calm", "/calm/", "calm", middleware("calm", `request.SetHeaders["X-Calm"] = "yes";
return calm.ReturnData(request);`))
}

// hostileProcess is a tollgate binary started on hostileConf (plus
// listen_port and app_path) with the given API definitions, each
// "{{upstream}}" replaced by upstream. It runs in a process of its own, so
// the heap /debug/summary reports, and jsvm_memory_limit compares with, is
// the gateway's alone: the spec process also holds every other spec's
// gateways and simulated clusters, well past 64 MB.
type hostileProcess struct {
	session *gexec.Session
	base    string
	started time.Time // when the process was started
	ready   time.Time // when it said it was listening
}

func startHostileProcess(ctx SpecContext, binary, upstream string, apps map[string]string) *hostileProcess {
	GinkgoHelper()
	dir := GinkgoT().TempDir()
	Expect(os.Mkdir(filepath.Join(dir, "apps"), 0o700)).To(Succeed())
	for name, def := range apps {
		def = strings.ReplaceAll(def, "{{upstream}}", upstream)
		Expect(os.WriteFile(filepath.Join(dir, "apps", name), []byte(def), 0o600)).To(Succeed())
	}
	port := freePort()
	conf := strings.Replace(hostileConf, "{", fmt.Sprintf(`{"listen_address": "127.0.0.1", "listen_port": %d, "app_path": "apps", `, port), 1)
	Expect(os.WriteFile(filepath.Join(dir, "tyk.conf"), []byte(conf), 0o600)).To(Succeed())
	p := &hostileProcess{base: fmt.Sprintf("http://127.0.0.1:%d", port), started: time.Now()}
	var err error
	p.session, err = gexec.Start(command(binary, "--conf", filepath.Join(dir, "tyk.conf")), GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { p.session.Kill().Wait(10 * time.Second) })
	Eventually(p.session.Err).WithContext(ctx).Should(gbytes.Say("tollgate is listening"))
	p.ready = time.Now()
	return p
}

// get sends GET path to the process.
func (p *hostileProcess) get(path string) specs.Response {
	GinkgoHelper()
	return debugGet(p.base + path)
}

// summary reads the process's /debug/summary; with collect, after a
// garbage collection (?gc=1).
func (p *hostileProcess) summary(collect bool) gateway.DebugSummary {
	GinkgoHelper()
	path := "/debug/summary"
	if collect {
		path += "?gc=1"
	}
	return readSummary(debugGet(p.base+path, "X-Tyk-Authorization", "s"))
}

// metrics scrapes the process's /metrics.
func (p *hostileProcess) metrics() metricFamilies {
	GinkgoHelper()
	return parseMetrics(debugGet(p.base+"/metrics", "X-Tyk-Authorization", "s"))
}

// log is what the process has logged so far.
func (p *hostileProcess) log() string { return string(p.session.Err.Contents()) }

// getAtOnce sends n GET path requests to the process at the same time and
// returns the responses once all have come back.
func (p *hostileProcess) getAtOnce(n int, path string) []specs.Response {
	GinkgoHelper()
	out := make([]specs.Response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			defer GinkgoRecover()
			out[i] = p.get(path)
		})
	}
	wg.Wait()
	return out
}

// watchHeap reads the process's /debug/summary every 10 ms until the
// returned function is called, which returns the largest heap_alloc_bytes
// seen. The reader stops when the container ends in any case.
func (p *hostileProcess) watchHeap() (stop func() uint64) {
	GinkgoHelper()
	done := make(chan struct{})
	var (
		wg   sync.WaitGroup
		once sync.Once
		peak uint64
	)
	wg.Go(func() {
		defer GinkgoRecover()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, p.summary(false).HeapAllocBytes)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	stop = func() uint64 {
		once.Do(func() { close(done) })
		wg.Wait()
		return peak
	}
	DeferCleanup(func() { stop() })
	return stop
}

// appFile is a path in env's app_path.
func appFile(env *specs.Env, name string) string { return filepath.Join(env.AppDir, name) }

// timedReload reloads env's gateway and says how long it took.
func timedReload(env *specs.Env) (time.Duration, error) {
	start := time.Now()
	err := env.Gateway.Reload()
	return time.Since(start), err
}

var _ = Describe("Limits under hostile input", Label("limits-hostile"), func() {
	var env *specs.Env

	Describe("files in app_path", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(keylessAPI("good", "/good/")))
		})

		// Each entry makes a hostile file in app_path and says what the
		// error should say about it.
		hostile := []struct {
			what string
			make func(path string)
			says string
		}{{
			what: "a symlink to /dev/zero",
			make: func(path string) { Expect(os.Symlink("/dev/zero", path)).To(Succeed()) },
			says: "not a regular file (a character device)",
		}, {
			what: "a named pipe no one writes to",
			make: func(path string) { Expect(syscall.Mkfifo(path, 0o600)).To(Succeed()) },
			says: "not a regular file (a named pipe)",
		}, {
			what: "larger than max_api_definition_size (4 MiB by default)",
			make: func(path string) {
				// Valid but for its size: padded to 5 MiB in config_data.
				def := strings.Replace(keylessAPI("big", "/big/"), `"active"`, `"config_data": {"pad": "`+strings.Repeat("x", 5<<20)+`"}, "active"`, 1)
				def = strings.ReplaceAll(def, "{{upstream}}", "http://127.0.0.1:1")
				Expect(os.WriteFile(path, []byte(def), 0o600)).To(Succeed())
			},
			says: "file too large",
		}}
		for _, h := range hostile {
			When("one file is "+h.what, func() {
				var (
					path string
					err  error
					took time.Duration
				)

				BeforeEach(func(ctx SpecContext) {
					path = appFile(env, "hostile.json")
					h.make(path)
					took, err = timedReload(env)
				}, NodeTimeout(10*time.Second))

				It("reports the file in under a second", func() {
					Expect(err).To(MatchError(And(ContainSubstring(path), ContainSubstring(h.says))))
					Expect(took).To(BeNumerically("<", time.Second))
				})

				It("serves the other APIs", func() {
					Expect(env.Get("/good/").StatusCode).To(Equal(http.StatusOK))
				})

				It("lets another gateway start with it there, serving the other APIs", func(ctx SpecContext) {
					Expect(env.StartGateway().Get("/good/").StatusCode).To(Equal(http.StatusOK))
				}, SpecTimeout(10*time.Second))

				It("leaves it out of /tyk/apis, which stays as small as the files it lists", func() {
					resp := env.Control(env.Instance, http.MethodGet, "/tyk/apis", "")
					Expect(resp.StatusCode).To(Equal(http.StatusOK))
					Expect(len(resp.Body)).To(BeNumerically("<", 4096))
				})
			})
		}
	})

	Describe("files an API definition points to", func() {
		var (
			err  error
			took time.Duration
		)

		// fifo makes a named pipe no one writes to, outside app_path.
		fifo := func(name string) string {
			GinkgoHelper()
			path := filepath.Join(GinkgoT().TempDir(), name)
			Expect(syscall.Mkfifo(path, 0o600)).To(Succeed())
			return path
		}

		When("a JS middleware file is a named pipe", Label("jsvm"), func() {
			var pipe string
			BeforeEach(func(ctx SpecContext) {
				env = specs.NewEnv(specs.WithConfig(`{"secret": "s", "enable_jsvm": true}`), specs.WithAPI(calmAPI()))
				pipe = fifo("pipe.js")
				env.WriteAPIFile("piped.json", preJSAPI("piped", "/piped/", "piped", pipe))
				took, err = timedReload(env)
			}, NodeTimeout(10*time.Second))

			It("fails that API's load in under a second, naming the file", func() {
				Expect(err).To(MatchError(And(ContainSubstring("piped.json"), ContainSubstring(pipe), ContainSubstring("not a regular file (a named pipe)"))))
				Expect(took).To(BeNumerically("<", time.Second))
			})

			It("loads the other APIs", func() {
				Expect(env.Get("/calm/").StatusCode).To(Equal(http.StatusOK))
			})
		})

		When("a JS middleware file is larger than max_script_size", Label("jsvm"), func() {
			It("fails that API's load, naming the file and the setting", func() {
				env = specs.NewEnv(specs.WithConfig(`{"secret": "s", "enable_jsvm": true, "max_script_size": 1024}`))
				big := middleware("big", "// "+strings.Repeat("x", 2048)+"\nreturn big.ReturnData(request);")
				env.WriteAPIFile("big.json", preJSAPI("big", "/big/", "big", big))
				Expect(env.Gateway.Reload()).To(MatchError(And(ContainSubstring(big), ContainSubstring("file too large"), ContainSubstring("max_script_size"))))
			})
		})

		When("a webhook template is a named pipe", Label("webhook"), func() {
			var pipe string
			BeforeEach(func(ctx SpecContext) {
				env = specs.NewEnv(specs.WithAPI(keylessAPI("good", "/good/")))
				pipe = fifo("pipe.json")
				env.WriteAPIFile("hooked.json", fmt.Sprintf(`{"api_id": "hooked", "active": true, "use_keyless": true,
  "proxy": {"listen_path": "/hooked/", "target_url": "{{upstream}}"},
  "event_handlers": {"events": {"KeyExpired": [{"handler_name": "eh_web_hook_handler", "handler_meta": {
    "method": "POST", "target_path": "http://127.0.0.1:1/hook", "template_path": %q}}]}}}`, pipe))
				took, err = timedReload(env)
			}, NodeTimeout(10*time.Second))

			It("fails that API's load in under a second, naming the file", func() {
				Expect(err).To(MatchError(And(ContainSubstring("hooked.json"), ContainSubstring(pipe), ContainSubstring("not a regular file (a named pipe)"))))
				Expect(took).To(BeNumerically("<", time.Second))
			})

			It("loads the other APIs", func() {
				Expect(env.Get("/good/").StatusCode).To(Equal(http.StatusOK))
			})
		})
	})
})

// The JS memory limit compares the whole process's heap with
// jsvm_memory_limit, so these specs run the gateway in a process of its
// own (see hostileProcess). Ordered only to build the binary once.
var _ = Describe("The JS memory limit, in a gateway process of its own", Label("limits-hostile", "jsvm", "slow"), Ordered, ContinueOnFailure, func() {
	var (
		binary   string
		upstream *specs.RecordingUpstream
	)

	BeforeAll(func(ctx SpecContext) {
		var err error
		binary, err = gexec.Build("github.com/tollgate/tollgate/gateway/cmd/tollgate")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(gexec.CleanupBuildArtifacts)
	}, NodeTimeout(5*time.Minute))

	// Each spec starts its own process and upstream: the leak guard checks
	// every spec for what it left running.
	BeforeEach(func() { upstream = specs.StartRecordingUpstream() })

	When("24 requests at once run a middleware that doubles a string for ever, keeping every copy (jsvm_timeout 10, jsvm_memory_limit 64)", func() {
		var (
			gw        *hostileProcess
			responses []specs.Response
			peak      uint64
			before    gateway.DebugSummary // collected, before the requests
		)

		BeforeEach(func(ctx SpecContext) {
			gw = startHostileProcess(ctx, binary, upstream.URL, map[string]string{
				"hog.json":  preJSAPI("hog", "/hog/", "hog", middleware("hog", hoardingBody)),
				"calm.json": calmAPI(),
			})
			before = gw.summary(true)
			stop := gw.watchHeap()
			responses = gw.getAtOnce(24, "/hog/")
			peak = stop()
			GinkgoWriter.Printf("heap_alloc_bytes at most %d MiB during the requests\n", peak>>20)
		}, NodeTimeout(60*time.Second))

		It("answers each of them 500 with the cause js_memory_limit", func() {
			for _, resp := range responses {
				expectGatewayError(resp, http.StatusInternalServerError, chain.CauseJSMemory, chain.MsgJSMemory)
			}
		})

		It("keeps the heap under 192 MiB (three times the limit) meanwhile", func() {
			// Before the limit, the runs went on until the timeout: 24 of
			// them passed 4 GB in 1.5 s (jsvm_timeout 2).
			Expect(peak).To(BeNumerically("<", 3*hostileLimit))
		})

		It("leaves the heap, once collected, within 16 MiB (a quarter of the limit) of what it was before", func() {
			after := gw.summary(true)
			GinkgoWriter.Printf("heap_inuse_bytes after ?gc=1: %d MiB before, %d MiB after; rss_bytes %d MiB before, %d MiB after\n",
				before.HeapInuseBytes>>20, after.HeapInuseBytes>>20, before.RSSBytes>>20, after.RSSBytes>>20)
			Expect(after.HeapInuseBytes).To(BeNumerically("<", before.HeapInuseBytes+hostileLimit/4))
		})

		It("answers the next request to a well-behaved middleware 200", func() {
			Expect(gw.get("/calm/").StatusCode).To(Equal(http.StatusOK))
			Expect(upstream.LastRequest().Headers.Get("X-Calm")).To(Equal("yes"))
		})

		It("counts every stopped run in tollgate_js_memory_stops_total, and discards its VM", func() {
			m := gw.metrics()
			Expect(m.value("tollgate_js_memory_stops_total", "api_id", "hog")).To(Equal(24.0))
			Expect(m.value("tollgate_js_vms_discarded_total", "api_id", "hog")).To(Equal(24.0))
			Expect(m.value("tollgate_js_vms_idle", "api_id", "hog")).To(BeZero())
		})

		It("logs the API whose script was stopped", func() {
			Expect(gw.log()).To(MatchRegexp(`JS middleware stopped at the memory limit.*api_id=hog`))
		})

		It("reports no JS VM of the API alive, the stopped runs' goroutines among them", func() {
			m := gw.metrics()
			// The series is there (a missing one would read 0 too), and
			// says no VM is running or kept.
			Expect(m).To(HaveKey("tollgate_js_vms_alive"))
			Expect(m.labelValues()).To(ContainElement("hog"))
			Expect(m.value("tollgate_js_vms_alive", "api_id", "hog")).To(BeZero())
		})
	})

	When("a middleware file doubles a string at its top level", func() {
		var (
			gw  *hostileProcess
			hog string
		)

		BeforeEach(func(ctx SpecContext) {
			hog = jsFile("hogload", doublingBody)
			gw = startHostileProcess(ctx, binary, upstream.URL, map[string]string{
				"hogload.json": preJSAPI("hogload", "/hogload/", "hogload", hog),
				"calm.json":    calmAPI(),
			})
		}, NodeTimeout(30*time.Second))

		It("fails that API's load at the memory limit, naming the file", func() {
			Expect(gw.log()).To(And(ContainSubstring("hogload.json"), ContainSubstring(hog+": JS middleware stopped: the heap passed the JS memory limit")))
			Expect(gw.get("/hogload/").StatusCode).To(Equal(http.StatusNotFound))
		})

		It("fails it before jsvm_timeout: the gateway was listening sooner", func() {
			Expect(gw.ready.Sub(gw.started)).To(BeNumerically("<", hostileTimeout))
		})

		It("loads the other APIs of the same load", func() {
			Expect(gw.get("/calm/").StatusCode).To(Equal(http.StatusOK))
		})
	})
})
