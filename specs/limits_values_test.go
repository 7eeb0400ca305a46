package specs_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/specs"
)

var _ = Describe("Numbers and bodies the control API refuses", Label("limits-hostile", "control"), func() {
	var env *specs.Env

	BeforeEach(func() {
		env = specs.NewEnv(specs.WithAPI(keyedAPI("orders", "/orders/")))
	})

	DescribeTable("a key whose numbers cannot mean a limit is refused with 400 naming the field, not made unlimited",
		func(fields, field string) {
			resp := env.Control(env.Instance, http.MethodPost, "/tyk/keys/create", grantTo("orders", fields))
			Expect(resp.StatusCode).To(Equal(http.StatusBadRequest))
			Expect(resp.JSON()["message"]).To(ContainSubstring(field))
		},
		Entry("rate -5", `"rate": -5, "per": 1`, "rate:"),
		Entry("per -1", `"rate": 5, "per": -1`, "per:"),
		Entry("per 0 with a rate", `"rate": 5, "per": 0`, "per:"),
		Entry("per 1e300, which overflows a duration", `"rate": 5, "per": 1e300`, "per:"),
		Entry("quota_max -10", `"quota_max": -10, "quota_renewal_rate": 60`, "quota_max:"),
		Entry("quota_renewal_rate -10", `"quota_max": 10, "quota_renewal_rate": -10`, "quota_renewal_rate:"),
		Entry("session_lifetime -5", `"session_lifetime": -5`, "session_lifetime:"),
	)

	It("keeps Tyk's -1 for no quota", func() {
		Expect(env.Control(env.Instance, http.MethodPost, "/tyk/keys/create", grantTo("orders", `"quota_max": -1`)).StatusCode).To(Equal(http.StatusOK))
	})

	It("refuses a body nested thousands deep with 400 naming the limit, before decoding it", func() {
		deep := strings.Repeat(`{"a":`, 9999) + "1" + strings.Repeat("}", 9999)
		resp := env.Control(env.Instance, http.MethodPost, "/tyk/keys/create", deep)
		Expect(resp.StatusCode).To(Equal(http.StatusBadRequest))
		Expect(resp.JSON()["message"]).To(ContainSubstring("more than 64"))
	})

	It("refuses a body over 1 MiB with 413 naming the limit", func() {
		big := `{"org_id": "` + strings.Repeat("x", 2<<20) + `"}`
		resp := env.Control(env.Instance, http.MethodPost, "/tyk/keys/create", big)
		Expect(resp.StatusCode).To(Equal(http.StatusRequestEntityTooLarge))
		Expect(resp.JSON()["message"]).To(ContainSubstring("1048576 bytes"))
	})
})

var _ = Describe("Durations in tyk.conf", Label("limits-hostile", "config"), func() {
	DescribeTable("out of range are refused at load, naming the setting",
		func(conf, field string) {
			_, _, err := gatewayParseConfig(conf)
			Expect(err).To(MatchError(ContainSubstring(field)))
		},
		Entry("proxy_default_timeout 1e300, which would overflow", `{"proxy_default_timeout": 1e300}`, "proxy_default_timeout"),
		Entry("proxy_default_timeout 1e-10, which would mean no timeout", `{"proxy_default_timeout": 1e-10}`, "proxy_default_timeout"),
		Entry("proxy_default_timeout -1", `{"proxy_default_timeout": -1}`, "proxy_default_timeout"),
		Entry("jsvm_timeout 1e300", `{"jsvm_timeout": 1e300}`, "jsvm_timeout"),
		Entry("analytics flush_interval -1", `{"analytics_config": {"flush_interval": -1}}`, "flush_interval"),
		Entry("records_buffer_size -1", `{"analytics_config": {"records_buffer_size": -1}}`, "records_buffer_size"),
		Entry("cached_session_timeout -1", `{"local_session_cache": {"cached_session_timeout": -1}}`, "cached_session_timeout"),
	)
})

var _ = Describe("A request body sent a byte at a time", Label("limits-hostile", "proxy"), func() {
	It("is cut at http_server_options.read_timeout: the connection is closed, not held", func(ctx SpecContext) {
		env := specs.NewEnv(
			specs.WithConfig(`{"secret": "spec-secret", "http_server_options": {"read_timeout": 1}}`),
			specs.WithAPI(keylessAPI("slow", "/slow/")),
		)
		conn, err := net.Dial("tcp", strings.TrimPrefix(env.URL, "http://"))
		Expect(err).NotTo(HaveOccurred())
		defer conn.Close()
		_, err = io.WriteString(conn, "POST /slow/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nx")
		Expect(err).NotTo(HaveOccurred())
		// The client sends nothing more; a gateway without a read timeout
		// would wait for the other 999 bytes for ever.
		Expect(conn.SetReadDeadline(time.Now().Add(8 * time.Second))).To(Succeed())
		_, err = io.Copy(io.Discard, conn)
		Expect(err).NotTo(HaveOccurred(), "the gateway still held the connection after 8 s")
	}, SpecTimeout(15*time.Second))
})

var _ = Describe("A Redis node that stops answering (SIGSTOP)", Label("limits-hostile", "auth"), specs.SimulatedOnly("hangs a simulated node; a real one would need SIGSTOP"), func() {
	It("costs a request for a key on it a 503 within storage.request_timeout, not the store's read timeout", func(ctx SpecContext) {
		env := specs.NewEnv(
			specs.WithConfig(`{"secret": "spec-secret", "storage": {"request_timeout": 0.5}, "local_session_cache": {"disable_cached_session_state": true}}`),
			specs.WithAPI(keyedAPI("orders", "/orders/")),
		)
		key := env.IssueKey(grantTo("orders"))
		owner := env.OwnerOf(ctx, "apikey-"+key)
		for _, n := range env.Cluster.Nodes() {
			if n.Addr() == owner {
				n.Hang()
				DeferCleanup(n.Resume)
			}
		}
		// The client gives up after 3 s; storage.timeout (5 s) would
		// outlast it, the request budget does not.
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, env.URL+"/orders/", nil)
		Expect(err).NotTo(HaveOccurred())
		req.Header.Set("Authorization", key)
		client := &http.Client{Timeout: 3 * time.Second}
		resp, err := client.Do(req)
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusServiceUnavailable))
	}, SpecTimeout(20*time.Second))
})
