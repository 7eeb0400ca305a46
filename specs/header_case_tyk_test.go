package specs_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/specs"
)

// rawHeaderUpstream answers every request with an empty 200 and closes the
// connection, recording the request's header lines as they came on the
// wire: Go's own server would canonicalise the names before a spec saw
// them.
type rawHeaderUpstream struct {
	URL string

	mu       sync.Mutex
	requests [][]string
}

// startRawHeaderUpstream starts one, stopped (and waited for) when the spec
// ends.
func startRawHeaderUpstream() *rawHeaderUpstream {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	u := &rawHeaderUpstream{URL: "http://" + l.Addr().String()}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				u.serveOne(conn)
			}()
		}
	}()
	DeferCleanup(func() {
		_ = l.Close()
		wg.Wait()
	})
	return u
}

func (u *rawHeaderUpstream) serveOne(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	tp := textproto.NewReader(br)
	if _, err := tp.ReadLine(); err != nil { // the request line
		return
	}
	var lines []string
	length := 0
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		if line == "" {
			break
		}
		lines = append(lines, line)
		if name, value, ok := strings.Cut(line, ":"); ok && strings.EqualFold(name, "Content-Length") {
			length, _ = strconv.Atoi(strings.TrimSpace(value))
		}
	}
	_, _ = io.CopyN(io.Discard, br, int64(length))
	u.mu.Lock()
	u.requests = append(u.requests, lines)
	u.mu.Unlock()
	_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

// HeaderNames are the header names of every request received, as sent.
func (u *rawHeaderUpstream) HeaderNames() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var names []string
	for _, lines := range u.requests {
		for _, line := range lines {
			name, _, _ := strings.Cut(line, ":")
			names = append(names, name)
		}
	}
	return names
}

// Tyk 5.14 canonicalises the names of the headers it sets
// ("X-CertificateOuid" becomes "X-Certificateouid") unless tyk.conf's
// ignore_canonical_mime_header_key is on; then JS middleware's SetHeaders
// and a webhook's header_map go out as written (setCustomHeader,
// gateway/reverse_proxy.go), for upstreams that compare names
// case-sensitively.
var _ = Describe("Header name case, as Tyk's tests describe it", Label("jsvm", "webhook", "tyk-mirror"), func() {
	const name = "X-CertificateOuid" // Tyk's NonCanonicalHeaderKey

	When("JS middleware sets a header whose name is not canonical", func() {
		var upstream *rawHeaderUpstream
		api := func() string {
			mw := middleware("testJSVMData", `request.SetHeaders["X-CertificateOuid"] = "X-CertificateOuid";
return testJSVMData.ReturnData(request, {});`)
			return fmt.Sprintf(`{"api_id": "js", "active": true, "use_keyless": true,
  "proxy": {"listen_path": "/js/", "target_url": %q, "strip_listen_path": true},
  "custom_middleware": {"pre": [{"name": "testJSVMData", "path": %q}]}}`, upstream.URL, mw)
		}
		BeforeEach(func() { upstream = startRawHeaderUpstream() })

		It("sends it to the upstream canonicalised by default (mirrors Tyk TestJSVM_IgnoreCanonicalHeader, before the setting)", func() {
			env := specs.NewEnv(specs.WithConfig(jsvmOn), specs.WithAPI(api()))
			Expect(env.Get("/js/test-data").StatusCode).To(Equal(http.StatusOK))
			Expect(upstream.HeaderNames()).To(And(ContainElement("X-Certificateouid"), Not(ContainElement(name))))
		})

		It("sends it as written with ignore_canonical_mime_header_key (mirrors Tyk TestJSVM_IgnoreCanonicalHeader)", func() {
			env := specs.NewEnv(specs.WithConfig(`{"secret": "s", "enable_jsvm": true, "jsvm_timeout": 1, "ignore_canonical_mime_header_key": true}`), specs.WithAPI(api()))
			Expect(env.Get("/js/test-data").StatusCode).To(Equal(http.StatusOK))
			Expect(upstream.HeaderNames()).To(And(ContainElement(name), Not(ContainElement("X-Certificateouid"))))
		})
	})

	When("a webhook's header_map names a header that is not canonical", func() {
		var target *rawHeaderUpstream
		hookedEnv := func(tykConf string) *specs.Env {
			GinkgoHelper()
			return specs.NewEnv(specs.WithConfig(tykConf), specs.WithAPI(fmt.Sprintf(`{"api_id": "hooked", "active": true,
  "auth": {"auth_header_name": "x-key"},
  "proxy": {"listen_path": "/hooked/", "target_url": "{{upstream}}"},
  "event_handlers": {"events": {"KeyExpired": [{"handler_name": "eh_web_hook_handler", "handler_meta": {
    "method": "GET", "target_path": %q, "event_timeout": 10, "header_map": {%q: %q}}}]}}}`, target.URL, name, name)))
		}
		// expire sends a request with an expired key and waits for the
		// webhook it fires to be delivered.
		expire := func(ctx SpecContext, env *specs.Env) {
			GinkgoHelper()
			expired := issueExpiredKey(env, func(expires string) string { return grantTo("hooked", expires) })
			Expect(env.Get("/hooked/", "x-key", expired).StatusCode).To(Equal(http.StatusUnauthorized))
			eventsHandled(ctx, env.Instance, 1)
		}
		BeforeEach(func() { target = startRawHeaderUpstream() })

		It("sends it canonicalised by default", func(ctx SpecContext) {
			expire(ctx, hookedEnv(`{"secret": "s"}`))
			Expect(target.HeaderNames()).To(And(ContainElement("X-Certificateouid"), Not(ContainElement(name))))
		}, SpecTimeout(10*time.Second))

		It("sends it as written with ignore_canonical_mime_header_key (mirrors Tyk TestBuildRequestIngoreCanonicalHeaderKey)", func(ctx SpecContext) {
			expire(ctx, hookedEnv(`{"secret": "s", "ignore_canonical_mime_header_key": true}`))
			Expect(target.HeaderNames()).To(And(ContainElement(name), Not(ContainElement("X-Certificateouid"))))
		}, SpecTimeout(10*time.Second))
	})
})
