package event_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/gateway/event"
	"github.com/tollgate/tollgate/specs"
)

var _ = Describe("The webhook handler", func() {
	var (
		sink *webhookSink
		conf event.WebhookConfig
		opts event.WebhookOptions
	)

	BeforeEach(func() {
		sink = StartWebhookSink()
		conf = event.WebhookConfig{
			Name:         "ExpireKey",
			Method:       "POST",
			TargetPath:   sink.URL,
			TemplatePath: "default_webhook.json",
		}
		opts = event.WebhookOptions{
			TemplateDir: SeedTemplateDir(),
			Client:      NewHTTPClient(5 * time.Second),
			Log:         SpecLog(),
		}
	})

	// HandleOnce builds the webhook from conf and opts and handles e.
	HandleOnce := func(ctx context.Context, e event.Event) error {
		GinkgoHelper()
		return BuildWebhook(conf, opts).Handle(ctx, e)
	}

	// ReceivedJSON decodes the body of the latest request.
	ReceivedJSON := func() map[string]any {
		GinkgoHelper()
		var fields map[string]any
		Expect(json.Unmarshal(sink.Last().Body, &fields)).To(Succeed())
		return fields
	}

	When("the seed's template renders a KeyExpired event", func() {
		It("sends valid JSON", func(ctx SpecContext) {
			Expect(HandleOnce(ctx, KeyExpiredEvent("k-123"))).To(Succeed())
			Expect(json.Valid(sink.Last().Body)).To(BeTrue(), "body: %s", sink.Last().Body)
		}, SpecTimeout(5*time.Second))

		It("carries the event, message, path, origin and key", func(ctx SpecContext) {
			Expect(HandleOnce(ctx, KeyExpiredEvent("k-123"))).To(Succeed())
			Expect(ReceivedJSON()).To(Equal(map[string]any{
				"event":   "KeyExpired",
				"message": "Attempted access from expired key.",
				"path":    "/security/refresh",
				"origin":  "10.0.0.7",
				"key":     "k-123",
			}))
		}, SpecTimeout(5*time.Second))

		It("inserts values without HTML escaping", func(ctx SpecContext) {
			e := KeyExpiredEvent("k-123")
			meta := e.Meta.(event.KeyFailureMeta)
			meta.Path = "/search?a=1&b=<2>"
			e.Meta = meta
			Expect(HandleOnce(ctx, e)).To(Succeed())
			Expect(ReceivedJSON()).To(HaveKeyWithValue("path", "/search?a=1&b=<2>"))
		}, SpecTimeout(5*time.Second))

		It("renders the body byte for byte as before for ordinary values", func(ctx SpecContext) {
			Expect(HandleOnce(ctx, KeyExpiredEvent("k-123"))).To(Succeed())
			Expect(string(sink.Last().Body)).To(Equal(`{
  "event": "KeyExpired",
  "message": "Attempted access from expired key.",
  "path": "/security/refresh",
  "origin": "10.0.0.7",
  "key": "k-123"
}
`))
		}, SpecTimeout(5*time.Second))

		// Before, values went in raw: this path added an "event" field
		// after the real one, and a decoder keeping the last won.
		It("escapes a path that tries to add fields, so the target decodes it as the path", Label("limits-hostile"), func(ctx SpecContext) {
			e := KeyExpiredEvent("k-123")
			meta := e.Meta.(event.KeyFailureMeta)
			meta.Path = `/x","event":"KeyCreated","admin":"true`
			e.Meta = meta
			Expect(HandleOnce(ctx, e)).To(Succeed())
			// The path arrives whole, as one string: no field was added.
			Expect(ReceivedJSON()).To(Equal(BodyOf(e)))
			Expect(ReceivedJSON()).To(HaveKeyWithValue("path", `/x","event":"KeyCreated","admin":"true`))
		}, SpecTimeout(5*time.Second))

		It("keeps the JSON valid for a key with a quote, a backslash and a newline", func(ctx SpecContext) {
			Expect(HandleOnce(ctx, KeyExpiredEvent("k\"1\\\n"))).To(Succeed())
			Expect(ReceivedJSON()).To(HaveKeyWithValue("key", "k\"1\\\n"))
		}, SpecTimeout(5*time.Second))
	})

	When("a template writes a value with raw", func() {
		BeforeEach(func() {
			conf.TemplatePath = WriteTemplate(`{"path": "{{raw .Meta.Path}}", "key": "{{.Meta.Key | raw}}", "origin": "{{.Meta.Origin}}"}`)
		})

		It("inserts that value as it is, and escapes the others", func(ctx SpecContext) {
			e := KeyExpiredEvent(`k"1`)
			meta := e.Meta.(event.KeyFailureMeta)
			meta.Path = `/a", "extra": "b`
			meta.Origin = `o"1`
			e.Meta = meta
			Expect(HandleOnce(ctx, e)).To(Succeed())
			Expect(string(sink.Last().Body)).To(Equal(`{"path": "/a", "extra": "b", "key": "k"1", "origin": "o\"1"}`))
		}, SpecTimeout(5*time.Second))
	})

	When("header_map sets a Content-Type that is not JSON", func() {
		BeforeEach(func() {
			conf.HeaderMap = map[string]string{"Content-Type": "text/plain"}
			conf.TemplatePath = WriteTemplate(`path={{.Meta.Path}}`)
		})

		It("inserts values as they are", func(ctx SpecContext) {
			e := KeyExpiredEvent("k-123")
			meta := e.Meta.(event.KeyFailureMeta)
			meta.Path = `/a"b`
			e.Meta = meta
			Expect(HandleOnce(ctx, e)).To(Succeed())
			Expect(string(sink.Last().Body)).To(Equal(`path=/a"b`))
		}, SpecTimeout(5*time.Second))
	})

	When("a template encodes values with the json function", func() {
		BeforeEach(func() {
			conf.TemplatePath = WriteTemplate(`{"event": {{json .Type}}, "key": {{json .Meta.Key}}, "path": {{json .Meta.Path}}}`)
		})

		It("stays valid JSON for a key and a path containing double quotes", func(ctx SpecContext) {
			e := KeyExpiredEvent(`k"1\`)
			meta := e.Meta.(event.KeyFailureMeta)
			meta.Path = `/a"b`
			e.Meta = meta
			Expect(HandleOnce(ctx, e)).To(Succeed())
			Expect(ReceivedJSON()).To(Equal(map[string]any{"event": "KeyExpired", "key": `k"1\`, "path": `/a"b`}))
		}, SpecTimeout(5*time.Second))
	})

	When("a template formats the event's time with as_rfc3339", func() {
		BeforeEach(func() {
			conf.TemplatePath = WriteTemplate(`{"at": "{{as_rfc3339 .TimeStamp}}"}`)
		})

		It("renders the time the event happened", func(ctx SpecContext) {
			e := KeyExpiredEvent("k-123")
			Expect(HandleOnce(ctx, e)).To(Succeed())
			at, err := time.Parse(time.RFC3339, ReceivedJSON()["at"].(string))
			Expect(err).NotTo(HaveOccurred())
			Expect(at).To(BeTemporally("==", e.TimeStamp))
		}, SpecTimeout(5*time.Second))
	})

	When("an event carries no time", func() {
		BeforeEach(func() {
			conf.TemplatePath = WriteTemplate(`{"at": "{{as_rfc3339 .TimeStamp}}"}`)
		})

		It("stamps it with the handler's clock", func(ctx SpecContext) {
			now := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
			opts.Now = func() time.Time { return now }
			e := KeyExpiredEvent("k-123")
			e.TimeStamp = time.Time{}
			Expect(HandleOnce(ctx, e)).To(Succeed())
			at, err := time.Parse(time.RFC3339, ReceivedJSON()["at"].(string))
			Expect(err).NotTo(HaveOccurred())
			Expect(at).To(BeTemporally("==", now))
		}, SpecTimeout(5*time.Second))
	})

	When("header_map is set", func() {
		BeforeEach(func() {
			conf.HeaderMap = map[string]string{"x-env": "prod", "x-api-version": "v1"}
		})

		It("sends its headers", func(ctx SpecContext) {
			Expect(HandleOnce(ctx, KeyExpiredEvent("k-123"))).To(Succeed())
			Expect(sink.Last().Header).To(And(
				HaveKeyWithValue("X-Env", []string{"prod"}),
				HaveKeyWithValue("X-Api-Version", []string{"v1"}),
			))
		}, SpecTimeout(5*time.Second))

		It("keeps the JSON Content-Type", func(ctx SpecContext) {
			Expect(HandleOnce(ctx, KeyExpiredEvent("k-123"))).To(Succeed())
			Expect(sink.Last().Header.Get("Content-Type")).To(Equal("application/json"))
		}, SpecTimeout(5*time.Second))
	})

	When("header_map sets the Content-Type", func() {
		BeforeEach(func() {
			conf.HeaderMap = map[string]string{"content-type": "text/plain"}
		})

		It("sends that Content-Type instead", func(ctx SpecContext) {
			Expect(HandleOnce(ctx, KeyExpiredEvent("k-123"))).To(Succeed())
			Expect(sink.Last().Header.Values("Content-Type")).To(Equal([]string{"text/plain"}))
		}, SpecTimeout(5*time.Second))
	})

	When("header_map sets the User-Agent", func() {
		BeforeEach(func() {
			conf.HeaderMap = map[string]string{"User-Agent": "Tyk-Hookshot"}
		})

		It("still sends tollgate's User-Agent", func(ctx SpecContext) {
			Expect(HandleOnce(ctx, KeyExpiredEvent("k-123"))).To(Succeed())
			Expect(sink.Last().Header.Get("User-Agent")).To(Equal(event.UserAgent))
		}, SpecTimeout(5*time.Second))

		It("warns that the header is ignored", func() {
			_, warnings, err := event.NewWebhook(conf, opts)
			Expect(err).NotTo(HaveOccurred())
			Expect(warnings).To(ConsistOf(ContainSubstring("User-Agent")))
		})
	})

	When("any webhook is sent", func() {
		It("names tollgate in the User-Agent", func(ctx SpecContext) {
			Expect(HandleOnce(ctx, KeyExpiredEvent("k-123"))).To(Succeed())
			Expect(sink.Last().Header.Get("User-Agent")).To(Equal("tollgate-webhook"))
		}, SpecTimeout(5*time.Second))

		It("goes to target_path", func(ctx SpecContext) {
			Expect(HandleOnce(ctx, KeyExpiredEvent("k-123"))).To(Succeed())
			Expect(sink.Last().Path).To(Equal("/hook"))
		}, SpecTimeout(5*time.Second))

		It("counts it as sent", func(ctx SpecContext) {
			w := BuildWebhook(conf, opts)
			Expect(w.Handle(ctx, KeyExpiredEvent("k-123"))).To(Succeed())
			Expect(w.Stats()).To(Equal(event.WebhookStats{Sent: 1}))
		}, SpecTimeout(5*time.Second))
	})

	Describe("method", func() {
		When("it is PUT", func() {
			BeforeEach(func() { conf.Method = "PUT" })

			It("sends a PUT", func(ctx SpecContext) {
				Expect(HandleOnce(ctx, KeyExpiredEvent("k-123"))).To(Succeed())
				Expect(sink.Last().Method).To(Equal(http.MethodPut))
			}, SpecTimeout(5*time.Second))
		})

		When("it is written in lower case", func() {
			BeforeEach(func() { conf.Method = "patch" })

			It("sends that method", func(ctx SpecContext) {
				Expect(HandleOnce(ctx, KeyExpiredEvent("k-123"))).To(Succeed())
				Expect(sink.Last().Method).To(Equal(http.MethodPatch))
			}, SpecTimeout(5*time.Second))
		})

		When("it is not one Tyk accepts, like FETCH", func() {
			BeforeEach(func() { conf.Method = "FETCH" })

			It("sends a GET", func(ctx SpecContext) {
				Expect(HandleOnce(ctx, KeyExpiredEvent("k-123"))).To(Succeed())
				Expect(sink.Last().Method).To(Equal(http.MethodGet))
			}, SpecTimeout(5*time.Second))

			It("warns that it fell back to GET", func() {
				_, warnings, err := event.NewWebhook(conf, opts)
				Expect(err).NotTo(HaveOccurred())
				Expect(warnings).To(ConsistOf(And(ContainSubstring(`"FETCH"`), ContainSubstring("using GET"))))
			})
		})
	})

	Describe("the template it renders, picked as Tyk's WebHookHandler.Init picks it", func() {
		// BuildWarned builds the webhook and returns its warnings.
		BuildWarned := func() (*event.Webhook, []string) {
			GinkgoHelper()
			w, warnings, err := event.NewWebhook(conf, opts)
			Expect(err).NotTo(HaveOccurred())
			return w, warnings
		}

		When("template_path names a file that does not exist", func() {
			BeforeEach(func() { conf.TemplatePath = "missing_webhook.json" })

			It("renders default_webhook.json of the template folder instead", func(ctx SpecContext) {
				w, _ := BuildWarned()
				Expect(w.Handle(ctx, KeyExpiredEvent("k-123"))).To(Succeed())
				Expect(ReceivedJSON()).To(HaveKeyWithValue("key", "k-123"))
			}, SpecTimeout(5*time.Second))

			It("warns, naming template_path and the file", func() {
				_, warnings := BuildWarned()
				Expect(warnings).To(ConsistOf(And(ContainSubstring(`template_path "missing_webhook.json"`),
					ContainSubstring(filepath.Join(SeedTemplateDir(), "missing_webhook.json")), ContainSubstring("using the default template"))))
			})
		})

		When("the template cannot be parsed", func() {
			BeforeEach(func() { conf.TemplatePath = WriteTemplate(`{"event": "{{.Type"}`) })

			It("renders the default template instead, warning with the file's name", func(ctx SpecContext) {
				w, warnings := BuildWarned()
				Expect(warnings).To(ConsistOf(ContainSubstring(conf.TemplatePath)))
				Expect(w.Handle(ctx, KeyExpiredEvent("k-123"))).To(Succeed())
				Expect(ReceivedJSON()).To(HaveKeyWithValue("event", "KeyExpired"))
			}, SpecTimeout(5*time.Second))
		})

		When("template_path is empty and the template folder has no default_webhook.json", func() {
			BeforeEach(func() {
				conf.TemplatePath = ""
				opts.TemplateDir = GinkgoT().TempDir()
			})

			It("renders Tyk's default template, built in, without a warning", func(ctx SpecContext) {
				w, warnings := BuildWarned()
				Expect(warnings).To(BeEmpty())
				e := KeyExpiredEvent("k-123")
				Expect(w.Handle(ctx, e)).To(Succeed())
				Expect(ReceivedJSON()).To(Equal(BodyOf(e)))
			}, SpecTimeout(5*time.Second))

			It("JSON-escapes the values it inserts", func(ctx SpecContext) {
				e := KeyExpiredEvent(`k"1\`)
				w, _ := BuildWarned()
				Expect(w.Handle(ctx, e)).To(Succeed())
				Expect(ReceivedJSON()).To(HaveKeyWithValue("key", `k"1\`))
			}, SpecTimeout(5*time.Second))
		})

		When("the template folder's default_webhook.json cannot be parsed", func() {
			It("is an error naming the default template, as in Tyk", func() {
				conf.TemplatePath = ""
				opts.TemplateDir = filepath.Dir(WriteTemplate(""))
				Expect(os.WriteFile(filepath.Join(opts.TemplateDir, "default_webhook.json"), []byte(`{{.Type`), 0o600)).To(Succeed())
				_, _, err := event.NewWebhook(conf, opts)
				Expect(err).To(MatchError(And(ContainSubstring("default template"), ContainSubstring("default_webhook.json"))))
			})
		})
	})

	Describe("configuration errors", func() {
		When("target_path is not an absolute URL", func() {
			BeforeEach(func() { conf.TargetPath = "api/security/timeout" })

			It("is an error naming target_path", func() {
				_, _, err := event.NewWebhook(conf, opts)
				Expect(err).To(MatchError(ContainSubstring("target_path")))
			})
		})

		When("target_path is not http or https", func() {
			BeforeEach(func() { conf.TargetPath = "ftp://hook/timeout" })

			It("is an error naming target_path", func() {
				_, _, err := event.NewWebhook(conf, opts)
				Expect(err).To(MatchError(ContainSubstring("target_path")))
			})
		})

		When("the HTTP client has no timeout", func() {
			BeforeEach(func() { opts.Client = &http.Client{} })

			It("is an error, since a hung target would hold an event worker", func() {
				_, _, err := event.NewWebhook(conf, opts)
				Expect(err).To(MatchError(ContainSubstring("Timeout")))
			})
		})
	})

	When("the webhook is disabled", func() {
		BeforeEach(func() { conf.Disabled = true })

		It("sends nothing", func(ctx SpecContext) {
			Expect(HandleOnce(ctx, KeyExpiredEvent("k-123"))).To(Succeed())
			Expect(sink.Received()).To(BeEmpty())
		}, SpecTimeout(5*time.Second))
	})

	When("the target answers with an error status", func() {
		BeforeEach(func() { sink.AnswerWith(http.StatusBadGateway) })

		It("returns an error carrying the status", func(ctx SpecContext) {
			err := HandleOnce(ctx, KeyExpiredEvent("k-123"))
			Expect(errors.Is(err, event.ErrWebhookStatus)).To(BeTrue(), "error: %v", err)
			Expect(err).To(MatchError(ContainSubstring("502")))
		}, SpecTimeout(5*time.Second))

		It("counts it as failed", func(ctx SpecContext) {
			w := BuildWebhook(conf, opts)
			Expect(w.Handle(ctx, KeyExpiredEvent("k-123"))).NotTo(Succeed())
			Expect(w.Stats()).To(Equal(event.WebhookStats{Failed: 1}))
		}, SpecTimeout(5*time.Second))
	})

	When("the target answers with a redirect to another server", Label("limits-hostile"), func() {
		var elsewhere *webhookSink
		BeforeEach(func() {
			elsewhere = StartWebhookSink()
			sink.RedirectTo(http.StatusFound, elsewhere.URL+"?token=t1")
		})

		// Before, the client followed it: the POST arrived at the other
		// server as a GET and was counted as sent.
		It("does not follow it: the redirect's target receives nothing", func(ctx SpecContext) {
			_ = HandleOnce(ctx, KeyExpiredEvent("k-123"))
			Expect(sink.Received()).To(HaveLen(1))
			Expect(elsewhere.Received()).To(BeEmpty())
		}, SpecTimeout(5*time.Second))

		It("returns an error naming the status and where it pointed", func(ctx SpecContext) {
			err := HandleOnce(ctx, KeyExpiredEvent("k-123"))
			Expect(errors.Is(err, event.ErrWebhookRedirect)).To(BeTrue(), "error: %v", err)
			Expect(err).To(MatchError(And(ContainSubstring("302"), ContainSubstring(elsewhere.URL))))
		}, SpecTimeout(5*time.Second))

		It("counts it as failed", func(ctx SpecContext) {
			w := BuildWebhook(conf, opts)
			Expect(w.Handle(ctx, KeyExpiredEvent("k-123"))).NotTo(Succeed())
			Expect(w.Stats()).To(Equal(event.WebhookStats{Failed: 1}))
		}, SpecTimeout(5*time.Second))

		It("logs the status and the Location, without its query", func(ctx SpecContext) {
			var logged bytes.Buffer
			opts.Log = slog.New(slog.NewTextHandler(&logged, nil))
			Expect(HandleOnce(ctx, KeyExpiredEvent("k-123"))).NotTo(Succeed())
			Expect(logged.String()).To(And(
				ContainSubstring("redirects are not followed"),
				ContainSubstring("status=302"),
				ContainSubstring("location="+elsewhere.URL),
				Not(ContainSubstring("t1")),
			))
		}, SpecTimeout(5*time.Second))
	})

	When("the target is dead", func() {
		BeforeEach(func() { conf.TargetPath = DeadWebhookTarget() })

		It("returns an error at once, well within the client timeout", func(ctx SpecContext) {
			start := time.Now()
			Expect(HandleOnce(ctx, KeyExpiredEvent("k-123"))).To(MatchError(ContainSubstring("refused")))
			Expect(time.Since(start)).To(BeNumerically("<", time.Second))
		}, SpecTimeout(5*time.Second))

		It("counts it as failed", func(ctx SpecContext) {
			w := BuildWebhook(conf, opts)
			Expect(w.Handle(ctx, KeyExpiredEvent("k-123"))).NotTo(Succeed())
			Expect(w.Stats()).To(Equal(event.WebhookStats{Failed: 1}))
		}, SpecTimeout(5*time.Second))

		It("does not log the key", func(ctx SpecContext) {
			var logged bytes.Buffer
			opts.Log = slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
			Expect(HandleOnce(ctx, KeyExpiredEvent("secret-key-4711"))).NotTo(Succeed())
			Expect(logged.String()).To(And(ContainSubstring("KeyExpired"), Not(ContainSubstring("secret-key-4711"))))
		}, SpecTimeout(5*time.Second))
	})

	When("the target never answers", func() {
		BeforeEach(func() {
			conf.TargetPath = StartSlowWebhookTarget()
			opts.Client = NewHTTPClient(100 * time.Millisecond)
		})

		It("returns an error once the client timeout has passed", func(ctx SpecContext) {
			start := time.Now()
			Expect(HandleOnce(ctx, KeyExpiredEvent("k-123"))).NotTo(Succeed())
			Expect(time.Since(start)).To(BeNumerically("<", time.Second))
		}, SpecTimeout(5*time.Second))

		It("gives up when the caller's context ends first", func(ctx SpecContext) {
			opts.Client = NewHTTPClient(time.Minute)
			short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			Expect(HandleOnce(short, KeyExpiredEvent("k-123"))).To(MatchError(context.DeadlineExceeded))
		}, SpecTimeout(5*time.Second))
	})

	Describe("deduplication", Label("cluster"), func() {
		var (
			addrs []string
			sim   *cluster.Cluster // nil on the real tier
		)

		BeforeEach(func() {
			addrs, sim = StartCluster()
			opts.Store = ConnectGateway(addrs)
			conf.EventTimeout = 10
		})

		When("an identical webhook follows within event_timeout", func() {
			It("sends it once", func(ctx SpecContext) {
				w := BuildWebhook(conf, opts)
				Expect(w.Handle(ctx, KeyExpiredEvent("k-123"))).To(Succeed())
				Expect(w.Handle(ctx, KeyExpiredEvent("k-123"))).To(Succeed())
				Expect(sink.Received()).To(HaveLen(1))
			}, SpecTimeout(5*time.Second))

			It("counts the second as a duplicate, not as a failure", func(ctx SpecContext) {
				w := BuildWebhook(conf, opts)
				Expect(w.Handle(ctx, KeyExpiredEvent("k-123"))).To(Succeed())
				Expect(w.Handle(ctx, KeyExpiredEvent("k-123"))).To(Succeed())
				Expect(w.Stats()).To(Equal(event.WebhookStats{Sent: 1, Duplicates: 1}))
			}, SpecTimeout(5*time.Second))

			It("marks it in Redis under webhook.cache. for event_timeout", func(ctx SpecContext) {
				Expect(HandleOnce(ctx, KeyExpiredEvent("k-123"))).To(Succeed())
				markers := WebhookMarkers(ctx, ConnectGateway(addrs))
				Expect(markers).To(HaveLen(1))
				for key, ttl := range markers {
					Expect(key).To(MatchRegexp(`^webhook\.cache\.[0-9a-f]{64}$`))
					Expect(ttl).To(BeNumerically("~", 10*time.Second, time.Second))
				}
			}, SpecTimeout(5*time.Second))
		})

		When("an identical webhook follows after event_timeout has passed", func() {
			It("sends it again", specs.SimulatedOnly("moves the cluster's clock past event_timeout"), func(ctx SpecContext) {
				w := BuildWebhook(conf, opts)
				Expect(w.Handle(ctx, KeyExpiredEvent("k-123"))).To(Succeed())
				sim.FastForward(11 * time.Second)
				Expect(w.Handle(ctx, KeyExpiredEvent("k-123"))).To(Succeed())
				Expect(sink.Received()).To(HaveLen(2))
			}, SpecTimeout(5*time.Second))
		})

		When("a webhook with a different body follows", func() {
			It("sends both", func(ctx SpecContext) {
				w := BuildWebhook(conf, opts)
				Expect(w.Handle(ctx, KeyExpiredEvent("k-123"))).To(Succeed())
				Expect(w.Handle(ctx, KeyExpiredEvent("k-456"))).To(Succeed())
				Expect(sink.Received()).To(HaveLen(2))
			}, SpecTimeout(5*time.Second))
		})

		When("two gateways handle the same event while the first is still sending", func() {
			It("sends it once", func(ctx SpecContext) {
				arrived, hold := make(chan struct{}, 2), make(chan struct{})
				sink.HoldRequests(arrived, hold)
				DeferCleanup(func() {
					select {
					case <-hold:
					default:
						close(hold)
					}
				})
				first := BuildWebhook(conf, opts)
				second := BuildWebhook(conf, event.WebhookOptions{
					TemplateDir: opts.TemplateDir,
					Client:      opts.Client,
					Store:       ConnectGateway(addrs),
					Log:         opts.Log,
				})

				firstDone := make(chan error, 1)
				go func() { firstDone <- first.Handle(ctx, KeyExpiredEvent("k-123")) }()
				Eventually(arrived).WithContext(ctx).Should(Receive())
				Expect(second.Handle(ctx, KeyExpiredEvent("k-123"))).To(Succeed())
				close(hold)
				Eventually(firstDone).WithContext(ctx).Should(Receive(BeNil()))

				Expect(sink.Received()).To(HaveLen(1))
			}, SpecTimeout(5*time.Second))
		})

		When("event_timeout is 0", func() {
			BeforeEach(func() { conf.EventTimeout = 0 })

			It("sends every identical webhook", func(ctx SpecContext) {
				w := BuildWebhook(conf, opts)
				for range 3 {
					Expect(w.Handle(ctx, KeyExpiredEvent("k-123"))).To(Succeed())
				}
				Expect(sink.Received()).To(HaveLen(3))
			}, SpecTimeout(5*time.Second))
		})

		When("Redis cannot be reached", func() {
			BeforeEach(func() { opts.Store = ConnectUnreachableStore() })

			It("sends the webhook anyway", func(ctx SpecContext) {
				Expect(HandleOnce(ctx, KeyExpiredEvent("k-123"))).To(Succeed())
				Expect(sink.Received()).To(HaveLen(1))
			}, SpecTimeout(5*time.Second))
		})
	})

	When("it is subscribed to the event bus", func() {
		It("sends the webhook for a published KeyExpired event", func(ctx SpecContext) {
			w := BuildWebhook(conf, opts)
			bus := event.NewBus(event.Options{Workers: 1})
			DeferCleanup(bus.Close)
			failures := make(chan error, 1)
			DeferCleanup(bus.Subscribe(func(e event.Event) {
				hctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				if err := w.Handle(hctx, e); err != nil {
					select {
					case failures <- err:
					default:
					}
				}
			}))

			Expect(bus.Publish(KeyExpiredEvent("k-123"))).To(BeTrue())

			Eventually(sink.Received).WithContext(ctx).Should(HaveLen(1))
			Expect(failures).NotTo(Receive())
		}, SpecTimeout(5*time.Second))

		It("lets the bus close once the webhook is sent", func(ctx SpecContext) {
			w := BuildWebhook(conf, opts)
			bus := event.NewBus(event.Options{Workers: 1})
			DeferCleanup(bus.Close)
			bus.Subscribe(func(e event.Event) {
				hctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				_ = w.Handle(hctx, e)
			})
			Expect(bus.Publish(KeyExpiredEvent("k-123"))).To(BeTrue())

			Expect(bus.Close(ctx)).To(Succeed())
			Expect(sink.Received()).To(HaveLen(1))
		}, SpecTimeout(5*time.Second))
	})
})
