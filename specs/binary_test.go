package specs_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"

	"github.com/tollgate/tollgate/specs"
)

// freePort finds a port nobody listens on now, for a tyk.conf listen_port.
//
// It is taken below Linux's ephemeral range (32768 and up): a port that
// the kernel handed out for 127.0.0.1:0 could be handed out again, to the
// binary's own embedded cluster, before the binary listens on it.
func freePort() int {
	GinkgoHelper()
	for range 100 {
		port := 20_000 + rand.IntN(10_000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			Expect(l.Close()).To(Succeed())
			return port
		}
	}
	Fail("no free port found in 20000-29999")
	return 0
}

// heldUpstream is an upstream whose answers wait until the spec releases
// them, so a request can be kept in flight on purpose.
type heldUpstream struct {
	URL      string
	arrived  chan struct{}
	release  chan struct{}
	released bool
}

func startHeldUpstream() *heldUpstream {
	GinkgoHelper()
	u := &heldUpstream{arrived: make(chan struct{}, 16), release: make(chan struct{})}
	srv := httpServe(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.arrived <- struct{}{}
		<-u.release
		_, _ = io.WriteString(w, "held answer")
	}))
	DeferCleanup(u.Release)
	u.URL = srv
	return u
}

func (u *heldUpstream) Release() {
	if !u.released {
		u.released = true
		close(u.release)
	}
}

func httpServe(h http.Handler) string {
	GinkgoHelper()
	return specs.Serve(h)
}

func command(name string, args ...string) *osexec.Cmd {
	return osexec.Command(name, args...)
}

// httpGet sends one GET on a connection that is closed afterwards, so no
// idle connection outlives the spec.
func httpGet(url string) (int, string) {
	GinkgoHelper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
	resp, err := client.Get(url)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, string(body)
}

var _ = Describe("The tollgate binary", Label("slow"), Ordered, func() {
	var binary string

	// Built once for the container: building is the slow part.
	BeforeAll(func(ctx SpecContext) {
		var err error
		binary, err = gexec.Build("github.com/tollgate/tollgate/gateway/cmd/tollgate")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(gexec.CleanupBuildArtifacts)
	}, NodeTimeout(5*time.Minute))

	When("started with --conf on a tyk.conf that names no Redis host", func() {
		var (
			session  *gexec.Session
			base     string
			upstream *heldUpstream
		)

		BeforeEach(func(ctx SpecContext) {
			upstream = startHeldUpstream()
			dir := GinkgoT().TempDir()
			Expect(os.Mkdir(filepath.Join(dir, "apps"), 0o700)).To(Succeed())
			Expect(os.WriteFile(filepath.Join(dir, "apps", "held.json"), []byte(fmt.Sprintf(`{
  "api_id": "held", "active": true, "use_keyless": true,
  "proxy": {"listen_path": "/held/", "target_url": %q}
}`, upstream.URL)), 0o600)).To(Succeed())
			port := freePort()
			Expect(os.WriteFile(filepath.Join(dir, "tyk.conf"), []byte(fmt.Sprintf(`{"listen_address": "127.0.0.1", "listen_port": %d, "app_path": "apps"}`, port)), 0o600)).To(Succeed())

			var err error
			session, err = gexec.Start(command(binary, "--conf", filepath.Join(dir, "tyk.conf")), GinkgoWriter, GinkgoWriter)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func() { session.Kill().Wait(10 * time.Second) })
			base = fmt.Sprintf("http://127.0.0.1:%d", port)
			Eventually(session.Err).WithContext(ctx).Should(gbytes.Say("tollgate is listening"))
		}, NodeTimeout(30*time.Second))

		It("serves /hello from its embedded cluster", func() {
			Expect(string(session.Err.Contents())).To(ContainSubstring("embedded simulated Redis Cluster"))
			status, _ := httpGet(base + "/hello")
			Expect(status).To(Equal(http.StatusOK))
		})

		It("on SIGTERM finishes the request in flight, then exits 0", func(ctx SpecContext) {
			result := make(chan string, 1)
			go func() {
				defer GinkgoRecover()
				_, body := httpGet(base + "/held/")
				result <- body
			}()
			Eventually(upstream.arrived).WithContext(ctx).Should(Receive())

			session.Signal(syscall.SIGTERM)
			Eventually(session.Err).WithContext(ctx).Should(gbytes.Say("shutting down"))
			upstream.Release()

			Eventually(result).WithContext(ctx).Should(Receive(Equal("held answer")))
			Eventually(session).WithContext(ctx).Should(gexec.Exit(0))
		}, SpecTimeout(30*time.Second))

		It("on SIGINT exits 0 as well", func(ctx SpecContext) {
			session.Interrupt()
			Eventually(session).WithContext(ctx).Should(gexec.Exit(0))
		}, SpecTimeout(30*time.Second))
	})

	When("its tyk.conf cannot be loaded", func() {
		It("exits 2 and says why, naming the file", func(ctx SpecContext) {
			session, err := gexec.Start(command(binary, "--conf", "../fixtures/seed/tyk.conf"), GinkgoWriter, GinkgoWriter)
			Expect(err).NotTo(HaveOccurred())
			Eventually(session).WithContext(ctx).Should(gexec.Exit(2))
			Expect(session.Err).To(gbytes.Say(`fixtures/seed/tyk.conf: storage.hosts`))
		}, SpecTimeout(30*time.Second))
	})
})
