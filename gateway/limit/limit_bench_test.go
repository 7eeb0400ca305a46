package limit_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/gateway/limit"
)

// benchIDs spreads the load over many ids, and so over the three nodes, as
// a gateway's traffic is; each id's window then stays small.
var benchIDs = func() []string {
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = "bench-" + strconv.Itoa(i)
	}
	return ids
}()

// benchCluster starts a three-node cluster on the wall clock and a
// ClusterClient with go-redis's default options.
func benchCluster(b *testing.B) *redis.ClusterClient {
	b.Helper()
	c, err := cluster.Start(3)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	b.Cleanup(func() { _ = client.Close() })
	return client
}

func BenchmarkWindowAllow(b *testing.B) {
	for _, mode := range []struct {
		name string
		opts limit.WindowOptions
	}{
		{"transactional", limit.WindowOptions{Transactional: true}},
		{"pipeline", limit.WindowOptions{}},
		{"sentinel", limit.WindowOptions{Transactional: true, Sentinel: true}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			window := limit.NewWindow(benchCluster(b), mode.opts)
			ctx := b.Context()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := window.Allow(ctx, benchIDs[i%len(benchIDs)], 1000, time.Second); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func BenchmarkQuotaConsume(b *testing.B) {
	quota := limit.NewQuota(benchCluster(b), nil)
	ctx := b.Context()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := quota.Consume(ctx, benchIDs[i%len(benchIDs)], 1<<40, time.Hour); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
