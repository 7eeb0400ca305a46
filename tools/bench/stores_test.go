package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/gateway"
)

// runID tells this run's keys from other runs' on a shared store.
var runID = strconv.FormatInt(time.Now().UnixNano()%1_000_000_007, 36)

// store is where a benchmark's gateway keeps its state.
type store struct {
	name string
	// addrs are the store's nodes; none for the simulated cluster, which
	// each benchmark starts for itself.
	addrs   []string
	cluster bool
	// skip says why the store is not measured; empty when it is.
	skip string
}

var simulated = store{name: "simulated", cluster: true}

// stores are the stores each gateway benchmark runs on, set by TestMain.
var stores = []store{simulated}

// configure points cfg at the store, starting a simulated cluster that the
// benchmark's end stops.
func (st store) configure(b *testing.B, cfg *gateway.Config) {
	b.Helper()
	addrs := st.addrs
	if st.name == simulated.name {
		c, err := cluster.Start(cluster.DefaultNodes)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.Close)
		addrs = c.Addrs()
	}
	cfg.Storage.EnableCluster = st.cluster
	if st.cluster {
		cfg.Storage.Addrs = addrs
		return
	}
	host, port, _ := net.SplitHostPort(addrs[0])
	cfg.Storage.Host = host
	cfg.Storage.Port, _ = strconv.Atoi(port)
}

// eachStore runs bench once per store, as a sub-benchmark named after it.
func eachStore(b *testing.B, bench func(b *testing.B, st store)) {
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			if st.skip != "" {
				b.Skip(st.skip)
			}
			bench(b, st)
		})
	}
}

// TestMain starts the one redis-server the "redis" store benchmarks share
// and stops it when they are done, and adds the real cluster named by
// TOLLGATE_REDIS_CLUSTER.
func TestMain(m *testing.M) {
	redisStore, stop := startRedisServer()
	stores = append(stores, redisStore)
	stores = append(stores, realCluster())
	code := m.Run()
	stop()
	os.Exit(code)
}

// startRedisServer starts redis-server on a free 127.0.0.1 port, without
// persistence, in a temporary folder; stop kills it and waits.
func startRedisServer() (store, func()) {
	st := store{name: "redis"}
	path, err := exec.LookPath("redis-server")
	if err != nil {
		st.skip = "redis-server is not installed"
		return st, func() {}
	}
	port, err := freePort()
	if err != nil {
		st.skip = "no free port: " + err.Error()
		return st, func() {}
	}
	dir, err := os.MkdirTemp("", "tollgate-bench-redis")
	if err != nil {
		st.skip = err.Error()
		return st, func() {}
	}
	cmd := exec.Command(path, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		st.skip = "starting redis-server: " + err.Error()
		return st, func() {}
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		os.RemoveAll(dir)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := waitForRedis(redis.NewClient(&redis.Options{Addr: addr})); err != nil {
		stop()
		st.skip = "redis-server did not answer: " + err.Error()
		return st, func() {}
	}
	st.addrs = []string{addr}
	return st, stop
}

// realCluster is the Redis Cluster TOLLGATE_REDIS_CLUSTER names, if it
// answers; only 127.0.0.1 addresses are used.
func realCluster() store {
	st := store{name: "cluster", cluster: true}
	env := os.Getenv("TOLLGATE_REDIS_CLUSTER")
	if env == "" {
		st.skip = "no real cluster: TOLLGATE_REDIS_CLUSTER is empty (make cluster-up, then make bench)"
		return st
	}
	for _, a := range strings.Split(env, ",") {
		if host, _, err := net.SplitHostPort(a); err != nil || host != "127.0.0.1" {
			st.skip = fmt.Sprintf("TOLLGATE_REDIS_CLUSTER names %q, not 127.0.0.1", a)
			return st
		}
	}
	st.addrs = strings.Split(env, ",")
	if err := waitForRedis(redis.NewClusterClient(&redis.ClusterOptions{Addrs: st.addrs})); err != nil {
		st.skip = "the real cluster does not answer: " + err.Error()
	}
	return st
}

// waitForRedis pings client for at most 5 s, then closes it.
func waitForRedis(client redis.UniversalClient) error {
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		err := client.Ping(ctx).Err()
		if err == nil || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
