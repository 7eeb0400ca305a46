package specs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/gateway/analytics"
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

// httpDo sends one request on a connection that is closed afterwards;
// headers come as name, value pairs.
func httpDo(method, url, body string, headers ...string) (int, string) {
	GinkgoHelper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	for i := 0; i < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
	resp, err := client.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, string(data)
}

// Ordered only to build the binary once; each spec starts its own process,
// so one failing does not stop the others.
var _ = Describe("The tollgate binary", Label("slow"), Ordered, ContinueOnFailure, func() {
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

		It("says at start what it serves: the listen address, the store and each API's listen path", func() {
			Expect(string(session.Err.Contents())).To(MatchRegexp(`tollgate is listening" addr=127\.0\.0\.1:\d+ store="embedded simulated Redis Cluster [^"]+" apis="held /held/"`))
		})

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

	// startOnCluster runs the binary with flags on a tyk.conf whose storage
	// is the spec's Redis Cluster at addrs and whose analytics records stay
	// buffered until shutdown; apps are API definitions by file name, and
	// extra adds members to tyk.conf. It returns the gateway's base URL.
	startOnCluster := func(ctx SpecContext, addrs []string, apps map[string]string, extra string, flags ...string) (*gexec.Session, string) {
		GinkgoHelper()
		dir := GinkgoT().TempDir()
		Expect(os.Mkdir(filepath.Join(dir, "apps"), 0o700)).To(Succeed())
		for name, def := range apps {
			Expect(os.WriteFile(filepath.Join(dir, "apps", name), []byte(def), 0o600)).To(Succeed())
		}
		storage, err := json.Marshal(map[string]any{"enable_cluster": true, "addrs": addrs})
		Expect(err).NotTo(HaveOccurred())
		port := freePort()
		conf := fmt.Sprintf(`{"listen_address": "127.0.0.1", "listen_port": %d, "app_path": "apps", "secret": "s",
  "storage": %s, %s%s}`, port, storage, analyticsUntilShutdown, extra)
		Expect(os.WriteFile(filepath.Join(dir, "tyk.conf"), []byte(conf), 0o600)).To(Succeed())

		session, err := gexec.Start(command(binary, append([]string{"--conf", filepath.Join(dir, "tyk.conf")}, flags...)...), GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { session.Kill().Wait(10 * time.Second) })
		Eventually(session.Err).WithContext(ctx).Should(gbytes.Say("tollgate is listening"))
		return session, fmt.Sprintf("http://127.0.0.1:%d", port)
	}

	// storedRecordCount is the length of the analytics list.
	storedRecordCount := func(ctx SpecContext, rdb *redis.ClusterClient) int64 {
		GinkgoHelper()
		n, err := rdb.LLen(ctx, analytics.Key).Result()
		Expect(err).NotTo(HaveOccurred())
		return n
	}

	When("SIGTERM comes while a request outlives --grace", Label("shutdown"), func() {
		// Before the fix, it flushed analytics with the grace's expired
		// context: none of the buffered records were written.
		const served = 5
		var (
			session *gexec.Session
			rdb     *redis.ClusterClient
		)

		BeforeEach(func(ctx SpecContext) {
			addrs, _ := specs.StartCluster(cluster.DefaultNodes)
			rdb = specs.ConnectCluster(addrs...)
			slow := startHangingServer()
			upstream := specs.StartRecordingUpstream()
			var base string
			session, base = startOnCluster(ctx, addrs, map[string]string{
				"open.json": keylessAPITo("open", "/open/", upstream.URL),
				"slow.json": keylessAPITo("slow", "/slow/", slow.URL),
			}, "", "--grace", "200ms")
			for range served {
				status, _ := httpGet(base + "/open/")
				Expect(status).To(Equal(http.StatusOK))
			}
			cut := requestInBackground(base + "/slow/")
			slow.waitForArrivals(ctx, 1)
			session.Signal(syscall.SIGTERM)
			Eventually(session).WithContext(ctx).Should(gexec.Exit())
			Eventually(cut).WithContext(ctx).Should(Receive(HaveOccurred()), "the slow request was not cut off")
		}, NodeTimeout(60*time.Second))

		It("exits 4: requests were cut, everything buffered was written", func() {
			Expect(session.ExitCode()).To(Equal(4))
		})

		It("has written every analytics record to Redis, the cut request's included", func(ctx SpecContext) {
			Expect(storedRecordCount(ctx, rdb)).To(Equal(int64(served + 1)))
		}, NodeTimeout(10*time.Second))
	})

	When("SIGTERM comes while Redis refuses the buffered records", Label("shutdown"), func() {
		const served = 3
		var session *gexec.Session

		BeforeEach(func(ctx SpecContext) {
			addrs, _ := specs.StartCluster(cluster.DefaultNodes)
			rdb := specs.ConnectCluster(addrs...)
			// A string where the list should be: RPUSH answers WRONGTYPE.
			Expect(rdb.Set(ctx, analytics.Key, "not a list", 0).Err()).To(Succeed())
			upstream := specs.StartRecordingUpstream()
			var base string
			session, base = startOnCluster(ctx, addrs, map[string]string{"open.json": keylessAPITo("open", "/open/", upstream.URL)}, "")
			for range served {
				status, _ := httpGet(base + "/open/")
				Expect(status).To(Equal(http.StatusOK))
			}
			session.Signal(syscall.SIGTERM)
			Eventually(session).WithContext(ctx).Should(gexec.Exit())
		}, NodeTimeout(60*time.Second))

		It("exits 5: buffered data could not be written", func() {
			Expect(session.ExitCode()).To(Equal(5))
		})

		It("logs how many records were not written", func() {
			Expect(string(session.Err.Contents())).To(ContainSubstring(fmt.Sprintf("not_written=%d", served)))
		})
	})

	When("SIGTERM comes while a webhook target hangs", Label("shutdown"), func() {
		// Before the fix, it waited the whole grace for the webhook (here
		// 2 s, less than a webhook's own 10 s timeout), then lost the
		// analytics records and exited 1.
		var (
			session  *gexec.Session
			rdb      *redis.ClusterClient
			requests int64 // sent to the API, so recorded
		)

		BeforeEach(func(ctx SpecContext) {
			requests = 0
			addrs, _ := specs.StartCluster(cluster.DefaultNodes)
			rdb = specs.ConnectCluster(addrs...)
			target := startHangingServer()
			upstream := specs.StartRecordingUpstream()
			templates, err := filepath.Abs(seedPath("templates"))
			Expect(err).NotTo(HaveOccurred())
			hooked := strings.ReplaceAll(webhookAPI(target.URL, 0), "{{upstream}}", upstream.URL)
			var base string
			session, base = startOnCluster(ctx, addrs, map[string]string{"hooked.json": hooked},
				fmt.Sprintf(`, "template_path": %q`, templates), "--grace", "2s", "--webhook-grace", "200ms")
			// The control API drops an expires already past, as Tyk does:
			// the key expires a second after it is made.
			status, body := httpDo(http.MethodPost, base+"/tyk/keys/create",
				grantTo("hooked", fmt.Sprintf(`"expires": %d`, time.Now().Add(time.Second).Unix())), "X-Tyk-Authorization", "s")
			Expect(status).To(Equal(http.StatusOK), body)
			var created struct{ Key string }
			Expect(json.Unmarshal([]byte(body), &created)).To(Succeed())
			Eventually(func() int {
				requests++
				status, _ := httpDo(http.MethodGet, base+"/hooked/", "", "x-key", created.Key)
				return status
			}).WithContext(ctx).WithPolling(100 * time.Millisecond).Should(Equal(http.StatusUnauthorized))
			target.waitForArrivals(ctx, 1)
			session.Signal(syscall.SIGTERM)
			Eventually(session).WithContext(ctx).Should(gexec.Exit())
		}, NodeTimeout(60*time.Second))

		It("exits 3: webhooks were cut, everything buffered was written", func() {
			Expect(session.ExitCode()).To(Equal(3))
		})

		It("has written every request's analytics record to Redis", func(ctx SpecContext) {
			Expect(storedRecordCount(ctx, rdb)).To(Equal(requests))
		}, NodeTimeout(10*time.Second))
	})

	When("its listen_port is taken by another process", func() {
		It("exits 2, naming listen_port and the address", func(ctx SpecContext) {
			taken, err := net.Listen("tcp", "127.0.0.1:0")
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(taken.Close)
			port := taken.Addr().(*net.TCPAddr).Port
			dir := GinkgoT().TempDir()
			Expect(os.Mkdir(filepath.Join(dir, "apps"), 0o700)).To(Succeed())
			Expect(os.WriteFile(filepath.Join(dir, "tyk.conf"), []byte(fmt.Sprintf(`{"listen_address": "127.0.0.1", "listen_port": %d, "app_path": "apps"}`, port)), 0o600)).To(Succeed())

			session, err := gexec.Start(command(binary, "--conf", filepath.Join(dir, "tyk.conf")), GinkgoWriter, GinkgoWriter)
			Expect(err).NotTo(HaveOccurred())
			Eventually(session).WithContext(ctx).Should(gexec.Exit(2))
			Expect(session.Err).To(gbytes.Say(fmt.Sprintf(`listen_port: cannot listen on 127\.0\.0\.1:%d`, port)))
		}, SpecTimeout(30*time.Second))
	})

	When("its tyk.conf names a storage port that is not a TCP port", func() {
		It("exits 2, naming storage.port", func(ctx SpecContext) {
			dir := GinkgoT().TempDir()
			Expect(os.WriteFile(filepath.Join(dir, "tyk.conf"), []byte(`{"storage": {"host": "127.0.0.1", "port": 70000}}`), 0o600)).To(Succeed())

			session, err := gexec.Start(command(binary, "--conf", filepath.Join(dir, "tyk.conf")), GinkgoWriter, GinkgoWriter)
			Expect(err).NotTo(HaveOccurred())
			Eventually(session).WithContext(ctx).Should(gexec.Exit(2))
			Expect(session.Err).To(gbytes.Say(`storage\.port: 70000`))
		}, SpecTimeout(30*time.Second))
	})

	When("it is given an argument that is not a flag", func() {
		It("exits 2 and says the configuration is given with --conf", func(ctx SpecContext) {
			session, err := gexec.Start(command(binary, "tyk.conf"), GinkgoWriter, GinkgoWriter)
			Expect(err).NotTo(HaveOccurred())
			Eventually(session).WithContext(ctx).Should(gexec.Exit(2))
			Expect(session.Err).To(gbytes.Say(`unexpected argument "tyk.conf".*--conf`))
		}, SpecTimeout(30*time.Second))
	})

	When("its tyk.conf cannot be loaded", func() {
		It("exits 2 and says why, naming the file", func(ctx SpecContext) {
			session, err := gexec.Start(command(binary, "--conf", "../fixtures/seed/tyk.conf"), GinkgoWriter, GinkgoWriter)
			Expect(err).NotTo(HaveOccurred())
			Eventually(session).WithContext(ctx).Should(gexec.Exit(2))
			Expect(session.Err).To(gbytes.Say(`fixtures/seed/tyk.conf: storage.hosts`))
		}, SpecTimeout(30*time.Second))

		It("exits 2 naming --conf when the file does not exist", func(ctx SpecContext) {
			session, err := gexec.Start(command(binary, "--conf", filepath.Join(GinkgoT().TempDir(), "tyk.conf")), GinkgoWriter, GinkgoWriter)
			Expect(err).NotTo(HaveOccurred())
			Eventually(session).WithContext(ctx).Should(gexec.Exit(2))
			Expect(session.Err).To(gbytes.Say(`--conf: .*tyk\.conf: no such file`))
		}, SpecTimeout(30*time.Second))
	})
})
