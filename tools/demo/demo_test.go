package main

import (
	"context"
	"net/http"
	"regexp"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
)

// get sends one GET on a connection closed afterwards; headers come as
// name, value pairs.
func get(ctx context.Context, url string, headers ...string) *http.Response {
	GinkgoHelper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	Expect(err).NotTo(HaveOccurred())
	for i := 0; i < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	Expect(err).NotTo(HaveOccurred())
	Expect(resp.Body.Close()).To(Succeed())
	return resp
}

var _ = Describe("The demo (make run)", func() {
	When("it is serving fixtures/demo", func() {
		var (
			stdout *gbytes.Buffer
			stop   context.CancelFunc
			exited chan struct{} // closed once run has returned status
			status int
		)

		BeforeEach(func(ctx SpecContext) {
			stdout = gbytes.NewBuffer()
			var demoCtx context.Context
			demoCtx, stop = context.WithCancel(context.Background())
			exited = make(chan struct{})
			go func() {
				defer GinkgoRecover()
				defer close(exited)
				status = run(demoCtx, []string{"-conf", "../../fixtures/demo/tyk.conf", "-port", "0", "-upstream", "127.0.0.1:0"}, stdout, GinkgoWriter)
			}()
			DeferCleanup(func(ctx SpecContext) {
				stop()
				Eventually(exited).WithContext(ctx).Should(BeClosed())
			}, NodeTimeout(20*time.Second))
			Eventually(stdout).WithContext(ctx).Should(gbytes.Say("Ctrl-C stops it"))
		}, NodeTimeout(30*time.Second))

		// curlWithKey is the printed line that sends the demo's key.
		curlWithKey := regexp.MustCompile(`curl -i -H 'Authorization: ([^']+)' (http://[^ ]+)/orders/`)

		It("prints a curl line with a key it created, which the keyed API accepts", func(ctx SpecContext) {
			m := curlWithKey.FindStringSubmatch(string(stdout.Contents()))
			Expect(m).NotTo(BeNil(), "no curl line with a key in:\n%s", stdout.Contents())
			key, base := m[1], m[2]
			Expect(get(ctx, base+"/orders/").StatusCode).To(Equal(http.StatusUnauthorized))
			// The demo APIs' upstream is fixed at 127.0.0.1:8090, not the
			// spec's: what matters is that auth let the key through.
			Expect(get(ctx, base+"/orders/", "Authorization", key).StatusCode).NotTo(BeElementOf(http.StatusUnauthorized, http.StatusForbidden))
		}, SpecTimeout(20*time.Second))

		It("says it is stopping, then that it stopped, and exits 0 when interrupted", func(ctx SpecContext) {
			stop()
			Eventually(exited).WithContext(ctx).Should(BeClosed())
			Expect(status).To(Equal(0))
			Expect(stdout).To(gbytes.Say("stopping: finishing requests in flight"))
			Expect(stdout).To(gbytes.Say("stopped"))
		}, SpecTimeout(20*time.Second))
	})

	It("refuses a -port that is not a TCP port with status 2, naming -port", func() {
		stderr := gbytes.NewBuffer()
		Expect(run(context.Background(), []string{"-port", "70000"}, gbytes.NewBuffer(), stderr)).To(Equal(2))
		Expect(stderr).To(gbytes.Say("-port: 70000"))
	})
})
