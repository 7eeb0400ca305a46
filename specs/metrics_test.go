package specs_test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/gateway/session"
	"github.com/tollgate/tollgate/specs"
)

// metricFamilies is one scrape of /metrics, parsed.
type metricFamilies map[string]*dto.MetricFamily

// parseMetrics parses a /metrics answer with Prometheus's own text parser.
func parseMetrics(resp specs.Response) metricFamilies {
	GinkgoHelper()
	Expect(resp.StatusCode).To(Equal(http.StatusOK), resp.Body)
	Expect(resp.Header.Get("Content-Type")).To(HavePrefix("text/plain"))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(resp.Body))
	Expect(err).NotTo(HaveOccurred())
	return families
}

// scrape reads inst's metrics on its own port, with the secret.
func scrape(env *specs.Env, inst *specs.Instance) metricFamilies {
	GinkgoHelper()
	return parseMetrics(inst.Get("/metrics", "X-Tyk-Authorization", env.Secret))
}

// value adds up the series of the family name whose labels include every
// name=value pair of labels: a counter's or gauge's value, a histogram's
// count of observations. 0 when there is none.
func (f metricFamilies) value(name string, labels ...string) float64 {
	GinkgoHelper()
	family, ok := f[name]
	if !ok {
		return 0
	}
	sum := 0.0
	for _, m := range family.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			sum += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			sum += m.GetGauge().GetValue()
		case m.GetHistogram() != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	have := map[string]string{}
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		if have[pairs[i]] != pairs[i+1] {
			return false
		}
	}
	return true
}

// labelValues lists every label value of every series.
func (f metricFamilies) labelValues() []string {
	var out []string
	for _, family := range f {
		for _, m := range family.GetMetric() {
			for _, l := range m.GetLabel() {
				out = append(out, l.GetValue())
			}
		}
	}
	return out
}

// uniqueWord is a word no spec has sent before.
func uniqueWord() string { return "u" + strings.ToLower(rand.Text()) }

// profiled is tyk.conf with the debug endpoints (and so /metrics) on the
// gateway's port, plus extra members.
func profiled(extra string) string {
	if extra == "" {
		return profilerConf
	}
	return `{"secret": "spec-secret", "enable_http_profiler": true, ` + extra + `}`
}

var _ = Describe("Prometheus metrics (/metrics)", Label("metrics"), func() {
	var env *specs.Env

	When("enable_http_profiler is on", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithConfig(profilerConf), specs.WithAPI(keylessAPI("open", "/open/")))
		})

		When("X-Tyk-Authorization is missing", func() {
			It("answers 403 with the control API's message and no metrics", func() {
				resp := env.Get("/metrics")
				Expect(resp.StatusCode).To(Equal(http.StatusForbidden))
				Expect(resp.Header.Get(chain.CauseHeader)).To(Equal(string(chain.CauseControlUnauthorised)))
				Expect(resp.Body).NotTo(ContainSubstring("tollgate_"))
			})
		})

		When("X-Tyk-Authorization is wrong", func() {
			It("answers 403 and no metrics", func() {
				resp := env.Get("/metrics", "X-Tyk-Authorization", "guess")
				Expect(resp.StatusCode).To(Equal(http.StatusForbidden))
				Expect(resp.Body).NotTo(ContainSubstring("tollgate_"))
			})

			It("counts the refusal as a control_api_unauthorised error", func() {
				env.Get("/metrics", "X-Tyk-Authorization", "guess")
				Expect(scrape(env, env.Instance).value("tollgate_errors_total", "cause", "control_api_unauthorised")).To(Equal(1.0))
			})
		})

		When("X-Tyk-Authorization carries the secret", func() {
			It("serves goroutines and heap from the Go collector and resident memory from the process collector", func() {
				m := scrape(env, env.Instance)
				Expect(m.value("go_goroutines")).To(BeNumerically(">", 0))
				Expect(m.value("go_memstats_heap_inuse_bytes")).To(BeNumerically(">", 0))
				Expect(m.value("process_resident_memory_bytes")).To(BeNumerically(">", 0))
			})

			It("counts a 200 under its API, version, method and status class, and times it", func() {
				Expect(env.Get("/open/items").StatusCode).To(Equal(http.StatusOK))
				m := scrape(env, env.Instance)
				Expect(m.value("tollgate_requests_total", "api_id", "open", "version", "Default", "method", "GET", "status_class", "2xx")).To(Equal(1.0))
				Expect(m.value("tollgate_request_duration_seconds", "api_id", "open")).To(Equal(1.0))
			})

			It("counts a method outside the fixed set as other", func() {
				env.Do("PROPFIND", "/open/items", "")
				Expect(scrape(env, env.Instance).value("tollgate_requests_total", "api_id", "open", "method", "other")).To(Equal(1.0))
			})

			It("counts a path no API serves as a 4xx of no API, with the cause unknown_path", func() {
				Expect(env.Get("/nowhere").StatusCode).To(Equal(http.StatusNotFound))
				m := scrape(env, env.Instance)
				Expect(m.value("tollgate_requests_total", "api_id", "", "status_class", "4xx")).To(Equal(1.0))
				Expect(m.value("tollgate_errors_total", "api_id", "", "cause", "unknown_path")).To(Equal(1.0))
			})

			It("does not count its own scrapes, the control API or the health endpoint as requests", func() {
				scrape(env, env.Instance)
				env.Get("/hello")
				env.Control(env.Instance, http.MethodGet, "/tyk/apis", "")
				Expect(scrape(env, env.Instance).value("tollgate_requests_total")).To(BeZero())
			})

			It("counts the initial load of the API definitions as a reload that went ok", func() {
				m := scrape(env, env.Instance)
				Expect(m.value("tollgate_reloads_total", "outcome", "ok")).To(Equal(1.0))
				Expect(m.value("tollgate_apis_served")).To(Equal(1.0))
			})
		})
	})

	When("an upstream is down", func() {
		It("counts the 502 under the cause upstream_unreachable", func() {
			env = specs.NewEnv(specs.WithConfig(profilerConf))
			env.RegisterAPI(strings.Replace(keylessAPI("down", "/down/"), "{{upstream}}", specs.DeadUpstreamURL(), 1))
			Expect(env.Get("/down/").StatusCode).To(Equal(http.StatusBadGateway))
			m := scrape(env, env.Instance)
			Expect(m.value("tollgate_errors_total", "api_id", "down", "cause", "upstream_unreachable")).To(Equal(1.0))
			Expect(m.value("tollgate_requests_total", "api_id", "down", "status_class", "5xx")).To(Equal(1.0))
		})
	})

	When("an upstream sends an X-Tollgate-Error header of its own", func() {
		It("does not count the upstream's answer as a gateway error", func() {
			env = specs.NewEnv(specs.WithConfig(profilerConf))
			spoofing := specs.Serve(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set(chain.CauseHeader, "rate_limited")
				w.WriteHeader(http.StatusTooManyRequests)
			}))
			env.RegisterAPI(strings.Replace(keylessAPI("spoof", "/spoof/"), "{{upstream}}", spoofing, 1))
			Expect(env.Get("/spoof/").StatusCode).To(Equal(http.StatusTooManyRequests))
			Expect(scrape(env, env.Instance).value("tollgate_errors_total")).To(BeZero())
		})
	})

	When("a key goes over its rate limit and its quota", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithConfig(profilerConf), specs.WithAPI(keyedAPI("orders", "/orders/")))
		})

		It("counts the 429 under the cause rate_limited and the event it publishes", func(ctx SpecContext) {
			key := env.IssueKey(grantTo("orders", `"rate": 1, "per": 60`))
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusTooManyRequests))
			m := scrape(env, env.Instance)
			Expect(m.value("tollgate_errors_total", "api_id", "orders", "cause", "rate_limited")).To(Equal(1.0))
			Expect(m.value("tollgate_requests_total", "api_id", "orders", "status_class", "4xx")).To(Equal(1.0))
			Expect(m.value("tollgate_requests_total", "api_id", "orders", "status_class", "2xx")).To(Equal(1.0))
			Expect(m.value("tollgate_events_published_total", "event", "RateLimitExceeded")).To(Equal(1.0))
			Eventually(func() float64 {
				return scrape(env, env.Instance).value("tollgate_events_delivered_total")
			}).WithContext(ctx).Should(Equal(1.0))
		}, SpecTimeout(10*time.Second))

		It("counts the 403 under the cause quota_exceeded", func() {
			key := env.IssueKey(grantTo("orders", `"quota_max": 1, "quota_remaining": 1, "quota_renewal_rate": 3600`))
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusForbidden))
			Expect(scrape(env, env.Instance).value("tollgate_errors_total", "api_id", "orders", "cause", "quota_exceeded")).To(Equal(1.0))
		})

		It("counts the Redis commands the keyed requests sent, none failed", func() {
			key := env.IssueKey(grantTo("orders"))
			env.Get("/orders/", "Authorization", key)
			m := scrape(env, env.Instance)
			Expect(m.value("tollgate_redis_commands_total", "result", "ok")).To(BeNumerically(">", 0))
			Expect(m.value("tollgate_redis_commands_total", "result", "error")).To(BeZero())
			Expect(m.value("tollgate_redis_command_duration_seconds")).To(BeNumerically(">", 0))
		})
	})

	When("the Redis node holding a key's session is down", specs.SimulatedOnly("kills a simulated node"), func() {
		It("counts the 503 under storage_unavailable and the failed Redis command", func(ctx SpecContext) {
			env = specs.NewEnv(specs.WithConfig(profiled(`"local_session_cache": {"disable_cached_session_state": true}`)),
				specs.WithAPI(keyedAPI("orders", "/orders/")))
			dead := env.Cluster.Node(0)
			key := env.IssueKey(grantTo("orders"))
			for env.Cluster.NodeForKey(session.RedisKey(key)) != dead {
				key = env.IssueKey(grantTo("orders"))
			}
			dead.Kill()
			DeferCleanup(dead.Restart)
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusServiceUnavailable))
			m := scrape(env, env.Instance)
			Expect(m.value("tollgate_errors_total", "api_id", "orders", "cause", "storage_unavailable")).To(Equal(1.0))
			Expect(m.value("tollgate_redis_commands_total", "result", "error")).To(BeNumerically(">=", 1))
		}, SpecTimeout(10*time.Second))
	})

	When("an API caches responses", func() {
		It("counts a miss and a store, then a hit", func() {
			upstream := startScriptedUpstream()
			env = specs.NewEnv(specs.WithConfig(profilerConf), specs.WithAPI(cachedAPI("cached", "/cached/", upstream.URL, false, `{"enable_cache": true, "cache_timeout": 60, "cache_all_safe_requests": true}`)))
			Expect(isCached(env.Get("/cached/a"))).To(BeFalse())
			Expect(isCached(env.Get("/cached/a"))).To(BeTrue())
			m := scrape(env, env.Instance)
			Expect(m.value("tollgate_cache_lookups_total", "api_id", "cached", "result", "miss")).To(Equal(1.0))
			Expect(m.value("tollgate_cache_stores_total", "api_id", "cached")).To(Equal(1.0))
			Expect(m.value("tollgate_cache_lookups_total", "api_id", "cached", "result", "hit")).To(Equal(1.0))
		})
	})

	When("an API runs JS middleware", func() {
		jsOpenAPI := func(mw string) string {
			return fmt.Sprintf(`{"api_id": "js", "org_id": "org1", "active": true, "use_keyless": true,
  "proxy": {"listen_path": "/js/", "target_url": "{{upstream}}", "strip_listen_path": true},
  "custom_middleware": {"pre": [{"name": "counted", "path": %q}]}}`, mw)
		}

		It("counts its runs and the VMs it keeps, per API", func() {
			mw := middleware("counted", `return counted.ReturnData(request, {});`)
			env = specs.NewEnv(specs.WithConfig(`{"secret": "spec-secret", "enable_http_profiler": true, "enable_jsvm": true, "jsvm_timeout": 1}`), specs.WithAPI(jsOpenAPI(mw)))
			for range 3 {
				Expect(env.Get("/js/").StatusCode).To(Equal(http.StatusOK))
			}
			m := scrape(env, env.Instance)
			Expect(m.value("tollgate_js_runs_total", "api_id", "js")).To(Equal(3.0))
			Expect(m.value("tollgate_js_vms_alive", "api_id", "js")).To(Equal(1.0))
			Expect(m.value("tollgate_js_vms_idle", "api_id", "js")).To(Equal(1.0))
		})

		// An api_id served once must not keep its series for ever: a
		// deployment that creates and removes APIs would grow its registry
		// and its scrapes with every one.
		It("drops the series of an API a reload no longer serves, and keeps the others'", func() {
			env = specs.NewEnv(specs.WithConfig(profiled("")), specs.WithAPI(keylessAPI("gone", "/gone/")), specs.WithAPI(keylessAPI("kept", "/kept/")))
			Expect(env.Get("/gone/").StatusCode).To(Equal(http.StatusOK))
			Expect(env.Get("/kept/").StatusCode).To(Equal(http.StatusOK))
			Expect(scrape(env, env.Instance).value("tollgate_requests_total", "api_id", "gone")).To(Equal(1.0))
			Expect(os.Remove(filepath.Join(env.AppDir, "gone.json"))).To(Succeed())
			Expect(env.Gateway.Reload()).To(Succeed())
			m := scrape(env, env.Instance)
			Expect(m.labelValues()).NotTo(ContainElement("gone"))
			Expect(m.value("tollgate_requests_total", "api_id", "kept")).To(Equal(1.0))
			Expect(m.value("tollgate_request_duration_seconds", "api_id", "kept")).To(Equal(1.0))
		})

		It("keeps counting across a reload instead of starting again", func() {
			mw := middleware("counted", `return counted.ReturnData(request, {});`)
			env = specs.NewEnv(specs.WithConfig(`{"secret": "spec-secret", "enable_http_profiler": true, "enable_jsvm": true, "jsvm_timeout": 1}`), specs.WithAPI(jsOpenAPI(mw)))
			env.Get("/js/")
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/reload", "").StatusCode).To(Equal(http.StatusOK))
			env.Get("/js/")
			m := scrape(env, env.Instance)
			Expect(m.value("tollgate_js_runs_total", "api_id", "js")).To(Equal(2.0))
			Expect(m.value("tollgate_reloads_total", "outcome", "ok")).To(Equal(2.0))
		})

		It("counts a run past js_timeout as a timeout and its VM as discarded", func(ctx SpecContext) {
			mw := middleware("counted", `if (request.Headers["X-Hang"]) { while (true) {} }
return counted.ReturnData(request, {});`)
			env = specs.NewEnv(specs.WithConfig(`{"secret": "spec-secret", "enable_http_profiler": true, "enable_jsvm": true, "jsvm_timeout": 1}`), specs.WithAPI(jsOpenAPI(mw)))
			Expect(env.Get("/js/").StatusCode).To(Equal(http.StatusOK))
			env.Get("/js/", "X-Hang", "1")
			m := scrape(env, env.Instance)
			Expect(m.value("tollgate_js_runs_total", "api_id", "js")).To(Equal(2.0))
			Expect(m.value("tollgate_js_timeouts_total", "api_id", "js")).To(Equal(1.0))
			Expect(m.value("tollgate_js_vms_discarded_total", "api_id", "js")).To(Equal(1.0))
			Expect(m.value("tollgate_js_vms_alive", "api_id", "js")).To(BeZero())
			Expect(m.value("tollgate_errors_total", "api_id", "js", "cause", "js_timeout")).To(Equal(1.0))
		}, SpecTimeout(10*time.Second))
	})

	When("a definition in app_path is broken", func() {
		It("counts the reload as partial", func() {
			env = specs.NewEnv(specs.WithConfig(profilerConf), specs.WithAPI(keylessAPI("open", "/open/")))
			env.WriteAPIFile("broken.json", `{"api_id": `)
			env.Control(env.Instance, http.MethodGet, "/tyk/reload", "")
			Expect(scrape(env, env.Instance).value("tollgate_reloads_total", "outcome", "partial")).To(Equal(1.0))
		})
	})

	When("an expired key fires a KeyExpired webhook", func() {
		It("counts the event published and delivered and the webhook sent", func(ctx SpecContext) {
			sink := specs.StartRecordingUpstream()
			env = specs.NewEnv(specs.WithConfig(profiled(`"template_path": "templates"`)), specs.WithBaseDir(seedPath()),
				specs.WithAPI(webhookAPI(sink.URL, 10)))
			expired := issueExpiredKey(env, func(expires string) string { return grantTo("hooked", expires) })
			env.Get("/hooked/", "x-key", expired)
			Eventually(func() float64 {
				return scrape(env, env.Instance).value("tollgate_webhooks_total", "outcome", "sent")
			}).WithContext(ctx).Should(Equal(1.0))
			m := scrape(env, env.Instance)
			Expect(m.value("tollgate_events_published_total", "event", "KeyExpired")).To(Equal(1.0))
			Expect(m.value("tollgate_events_delivered_total")).To(Equal(1.0))
			Expect(m.value("tollgate_events_dropped_total")).To(BeZero())
			Expect(m.value("tollgate_webhooks_total", "outcome", "failed")).To(BeZero())
		}, SpecTimeout(10*time.Second))
	})

	When("enable_analytics is on", func() {
		It("counts the records written to Redis", func(ctx SpecContext) {
			env = specs.NewEnv(specs.WithConfig(profiled(`"enable_analytics": true, "analytics_config": {"flush_interval": 0.05}`)),
				specs.WithAPI(keylessAPI("open", "/open/")))
			env.Get("/open/")
			Eventually(func() float64 {
				return scrape(env, env.Instance).value("tollgate_analytics_records_total", "outcome", "written")
			}).WithContext(ctx).Should(Equal(1.0))
			Expect(scrape(env, env.Instance).value("tollgate_analytics_records_total", "outcome", "dropped")).To(BeZero())
		}, SpecTimeout(10*time.Second))
	})

	Describe("labels", func() {
		It("never carry a key or a request path, whatever the client sends", func() {
			env = specs.NewEnv(specs.WithConfig(profilerConf), specs.WithAPI(keyedAPI("orders", "/orders/")))
			key := env.IssueKey(grantTo("orders", `"rate": 1, "per": 60`))
			word := uniqueWord()
			env.Get("/orders/"+word, "Authorization", key)
			env.Get("/orders/"+word, "Authorization", key) // 429
			env.Get("/orders/"+word, "Authorization", "not-a-key-"+word)
			env.Get("/" + word + "/x")
			env.Do(strings.ToUpper(word), "/orders/"+word, "", "Authorization", key)
			env.Get("/orders/"+word, "x-api-version", word, "Authorization", key)
			values := scrape(env, env.Instance).labelValues()
			Expect(values).NotTo(BeEmpty())
			for _, v := range values {
				Expect(strings.ToLower(v)).NotTo(ContainSubstring(word))
				Expect(v).NotTo(ContainSubstring(key))
				Expect(v).NotTo(HavePrefix("/"))
			}
		})
	})

	When("two gateways run in one process", func() {
		It("keeps each gateway's figures in its own registry", func() {
			env = specs.NewEnv(specs.WithConfig(profilerConf), specs.WithAPI(keylessAPI("open", "/open/")))
			other := env.StartGateway()
			env.Get("/open/")
			env.Get("/open/")
			other.Get("/open/")
			Expect(scrape(env, env.Instance).value("tollgate_requests_total", "api_id", "open")).To(Equal(2.0))
			Expect(scrape(env, other).value("tollgate_requests_total", "api_id", "open")).To(Equal(1.0))
		})
	})

	When("enable_http_profiler is off", func() {
		It("answers /metrics with 404, as any path no API serves", func() {
			env = specs.NewEnv()
			expectGatewayError(env.Get("/metrics", "X-Tyk-Authorization", env.Secret), http.StatusNotFound, chain.CauseUnknownPath, "No API is served at this path")
		})

		It("leaves /metrics to an API listening on /", func() {
			env = specs.NewEnv(specs.WithAPI(keylessAPI("root", "/")))
			Expect(env.Get("/metrics").StatusCode).To(Equal(http.StatusOK))
			Expect(env.Upstream.LastRequest().Path).To(Equal("/metrics"))
		})
	})

	When("debug_listen is set", func() {
		It("serves /metrics there without the secret, with the gateway's figures", func() {
			env = specs.NewEnv(specs.WithConfig(`{"secret": "spec-secret", "debug_listen": "127.0.0.1:0"}`), specs.WithAPI(keylessAPI("open", "/open/")))
			env.Get("/open/")
			m := parseMetrics(debugGet("http://" + env.Gateway.DebugAddr() + "/metrics"))
			Expect(m.value("tollgate_requests_total", "api_id", "open", "status_class", "2xx")).To(Equal(1.0))
		})

		It("leaves /metrics closed on the gateway's port", func() {
			env = specs.NewEnv(specs.WithConfig(`{"secret": "spec-secret", "debug_listen": "127.0.0.1:0"}`))
			Expect(env.Get("/metrics", "X-Tyk-Authorization", env.Secret).StatusCode).To(Equal(http.StatusNotFound))
		})
	})
})

// dashboardPath is the Grafana dashboard the README points operators to.
var dashboardPath = filepath.Join("..", "docs", "grafana-dashboard.json")

// dashboard is the part of a Grafana dashboard the specs read.
type dashboard struct {
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func readDashboard() dashboard {
	GinkgoHelper()
	data, err := os.ReadFile(dashboardPath)
	Expect(err).NotTo(HaveOccurred())
	var d dashboard
	Expect(json.Unmarshal(data, &d)).To(Succeed())
	return d
}

// metricName matches the metric names a PromQL expression of the
// dashboard uses.
var metricName = regexp.MustCompile(`\b(?:tollgate|go|process)_[a-z_]+\b`)

var _ = Describe("The Grafana dashboard (docs/grafana-dashboard.json)", Label("metrics"), func() {
	It("asks for its Prometheus data source in a variable, which every panel uses", func() {
		d := readDashboard()
		Expect(d.Templating.List).To(ContainElement(And(HaveField("Name", "datasource"), HaveField("Type", "datasource"), HaveField("Query", "prometheus"))))
		for _, p := range d.Panels {
			if p.Type != "row" {
				Expect(p.Datasource.UID).To(Equal("${datasource}"), p.Title)
			}
		}
	})

	It("queries only metrics a gateway serves", func() {
		mw := middleware("counted", `return counted.ReturnData(request, {});`)
		env := specs.NewEnv(
			specs.WithConfig(profiled(`"enable_jsvm": true, "enable_analytics": true`)),
			specs.WithAPI(keyedAPI("orders", "/orders/")),
			specs.WithAPI(cachedAPI("cached", "/cached/", "{{upstream}}", false, `{"enable_cache": true, "cache_all_safe_requests": true}`)),
			specs.WithAPI(fmt.Sprintf(`{"api_id": "js", "org_id": "org1", "active": true, "use_keyless": true,
  "proxy": {"listen_path": "/js/", "target_url": "{{upstream}}", "strip_listen_path": true},
  "custom_middleware": {"pre": [{"name": "counted", "path": %q}]}}`, mw)))
		key := env.IssueKey(grantTo("orders", `"rate": 1, "per": 60`))
		env.Get("/orders/", "Authorization", key)
		env.Get("/orders/", "Authorization", key) // 429: an error and an event
		served := scrape(env, env.Instance)
		histogram := regexp.MustCompile(`_(bucket|count|sum)$`)
		var used []string
		for _, p := range readDashboard().Panels {
			for _, t := range p.Targets {
				used = append(used, metricName.FindAllString(t.Expr, -1)...)
			}
		}
		Expect(used).NotTo(BeEmpty())
		for _, name := range used {
			if _, ok := served[name]; !ok {
				name = histogram.ReplaceAllString(name, "")
			}
			Expect(served).To(HaveKey(name))
		}
	})
})
