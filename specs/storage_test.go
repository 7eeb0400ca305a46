package specs_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/gateway"
	"github.com/tollgate/tollgate/gateway/storage"
)

var _ = Describe("Storage", Label("storage"), func() {
	When("tyk.conf names no Redis host", func() {
		var (
			gw   *gateway.Gateway
			logs *bytes.Buffer
		)
		BeforeEach(func() {
			appDir := GinkgoT().TempDir()
			cfg, _, err := gateway.ParseConfig([]byte(`{"app_path": "` + appDir + `"}`))
			Expect(err).NotTo(HaveOccurred())
			logs = &bytes.Buffer{}
			gw, err = gateway.New(cfg, gateway.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func(ctx SpecContext) error { return gw.Shutdown(ctx) }, NodeTimeout(10*time.Second))
		})

		It("starts an embedded simulated cluster of three nodes", func() {
			Expect(gw.Store().Embedded()).NotTo(BeNil())
			Expect(gw.Store().Embedded().Nodes()).To(HaveLen(cluster.DefaultNodes))
		})

		It("says so in its log", func() {
			Expect(logs.String()).To(ContainSubstring("embedded simulated Redis Cluster"))
		})

		It("stores through a cluster client that reaches every node", func(ctx SpecContext) {
			Expect(gw.Store().Client).To(BeAssignableToTypeOf(&redis.ClusterClient{}))
			Expect(gw.Store().Ping(ctx)).To(Succeed())
		}, SpecTimeout(10*time.Second))
	})

	When("enable_cluster is true", func() {
		var (
			c     *cluster.Cluster
			store *storage.Store
		)
		BeforeEach(func() {
			var err error
			c, err = cluster.Start(3)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(c.Close)
			store, err = storage.Open(storage.Config{EnableCluster: true, Addrs: c.Addrs()[:1]}, slog.New(slog.DiscardHandler))
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(store.Close)
		})

		It("discovers every node from a single seed address", func(ctx SpecContext) {
			cc := store.Client.(*redis.ClusterClient)
			var (
				mu      sync.Mutex // ForEachMaster calls back concurrently
				masters []string
			)
			Expect(cc.ForEachMaster(ctx, func(_ context.Context, m *redis.Client) error {
				mu.Lock()
				defer mu.Unlock()
				masters = append(masters, m.Options().Addr)
				return nil
			})).To(Succeed())
			Expect(masters).To(ConsistOf(c.Addrs()))
		}, SpecTimeout(10*time.Second))

		It("stores each key on the node that owns its slot", func(ctx SpecContext) {
			Expect(store.Client.Set(ctx, "apikey-abc", "v", 0).Err()).To(Succeed())
			Expect(c.NodeForKey("apikey-abc").Miniredis().Get("apikey-abc")).To(Equal("v"))
		}, SpecTimeout(10*time.Second))
	})

	When("one node is configured without enable_cluster", func() {
		It("talks to that node alone, in the configured database", func(ctx SpecContext) {
			c, err := cluster.Start(1)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(c.Close)
			host, port := splitAddr(c.Addrs()[0])
			store, err := storage.Open(storage.Config{Host: host, Port: port}, slog.New(slog.DiscardHandler))
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(store.Close)
			Expect(store.Client).To(BeAssignableToTypeOf(&redis.Client{}))
			Expect(store.Client.Set(ctx, "k", "v", 0).Err()).To(Succeed())
			Expect(c.Node(0).Miniredis().Get("k")).To(Equal("v"))
		}, SpecTimeout(10*time.Second))
	})

	When("the gateway's store is down at start", func() {
		It("still starts, and /hello reports the failure", func() {
			cfg, _, err := gateway.ParseConfig([]byte(`{"storage": {"host": "127.0.0.1", "port": 1, "timeout": 1}}`))
			Expect(err).NotTo(HaveOccurred())
			cfg.AppPath = GinkgoT().TempDir()
			gw, err := gateway.New(cfg)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func(ctx SpecContext) error { return gw.Shutdown(ctx) }, NodeTimeout(10*time.Second))
			rec := newRecorder()
			gw.ServeHTTP(rec, mustRequest(http.MethodGet, "/hello"))
			Expect(rec.Code).To(Equal(http.StatusServiceUnavailable))
		})
	})
})
