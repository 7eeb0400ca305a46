package limit_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/gateway/limit"

	"github.com/tollgate/tollgate/specs"
)

// t0 is where every spec pins the clock. Its Unix nanoseconds, and those of
// t0 plus whole seconds, are exact in a float64, the type of sorted-set
// scores; Reset is still compared within a microsecond, since in general a
// score is exact only to about 256ns.
var t0 = time.Unix(1_900_000_000, 0)

// Env is one spec's world: a three-node cluster whose clock is pinned, a
// ClusterClient on it that records the commands it sends, and the clock the
// limiters read, which moves together with the cluster's.
type Env struct {
	Cluster  *cluster.Cluster
	Client   *redis.ClusterClient
	Commands *CommandLog

	mu  sync.Mutex
	now time.Time
}

// NewEnv starts the cluster and the client, both stopped when the spec ends.
func NewEnv() *Env {
	GinkgoHelper()
	c, err := cluster.Start(3)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(c.Close)
	c.SetTime(t0)
	env := &Env{Cluster: c, now: t0}
	env.Client = env.Connect()
	env.Commands = RecordCommands(env.Client)
	return env
}

// Connect returns another ClusterClient on the cluster, as a second gateway
// would have, with the harness's fast-failing options.
func (e *Env) Connect() *redis.ClusterClient {
	GinkgoHelper()
	return specs.ConnectCluster(e.Cluster.Addrs()...)
}

// ConnectToOwner returns a plain single-node client on the node that owns
// key, the way a gateway configured with one Redis host talks to it.
func (e *Env) ConnectToOwner(key string) *redis.Client {
	GinkgoHelper()
	client := redis.NewClient(&redis.Options{
		Addr:            e.Cluster.NodeForKey(key).Addr(),
		MaxRetries:      1,
		DialTimeout:     time.Second,
		ReadTimeout:     time.Second,
		DisableIdentity: true,
	})
	DeferCleanup(client.Close)
	return client
}

// Now is the limiters' clock.
func (e *Env) Now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

// PassTime moves the limiters' clock and the cluster's together, so that
// sorted-set scores and key TTLs agree.
func (e *Env) PassTime(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
	e.Cluster.FastForward(d)
}

// NewWindow returns a Window on the spec's client and clock.
func (e *Env) NewWindow(o limit.WindowOptions) *limit.Window {
	o.Now = e.Now
	return limit.NewWindow(e.Client, o)
}

// NewQuota returns a Quota on the spec's client and clock.
func (e *Env) NewQuota() *limit.Quota {
	return limit.NewQuota(e.Client, e.Now)
}

// Owner is the miniredis behind the node that stores key.
func (e *Env) Owner(key string) *miniredis.Miniredis {
	return e.Cluster.NodeForKey(key).Miniredis()
}

// WindowEntries lists the requests counted in id's window, read straight
// from the node that owns it.
func (e *Env) WindowEntries(id string) []string {
	GinkgoHelper()
	members, err := e.Owner(limit.WindowKey(id)).ZMembers(limit.WindowKey(id))
	if errors.Is(err, miniredis.ErrKeyNotFound) {
		return nil
	}
	Expect(err).NotTo(HaveOccurred())
	return members
}

// StoredKeys lists every key on every node.
func (e *Env) StoredKeys() []string {
	var keys []string
	for _, node := range e.Cluster.Nodes() {
		keys = append(keys, node.Miniredis().Keys()...)
	}
	return keys
}

// KillOwner kills the node that stores key and restarts it when the spec
// ends.
func (e *Env) KillOwner(key string) *cluster.Node {
	GinkgoHelper()
	node := e.Cluster.NodeForKey(key)
	node.Kill()
	DeferCleanup(node.Restart)
	return node
}

// Hammer sends n requests for id at the current time and returns how many
// were allowed.
func Hammer(ctx context.Context, w *limit.Window, id string, n int, rate float64, per time.Duration) int {
	GinkgoHelper()
	allowed := 0
	for range n {
		d, err := w.Allow(ctx, id, rate, per)
		Expect(err).NotTo(HaveOccurred())
		if d.Allowed {
			allowed++
		}
	}
	return allowed
}

// Allow makes one request that must not fail.
func Allow(ctx context.Context, w *limit.Window, id string, rate float64, per time.Duration) limit.Decision {
	GinkgoHelper()
	d, err := w.Allow(ctx, id, rate, per)
	Expect(err).NotTo(HaveOccurred())
	return d
}

// Consume makes one quota request that must not fail.
func Consume(ctx context.Context, q *limit.Quota, id string, quotaMax int64, renewal time.Duration) limit.QuotaDecision {
	GinkgoHelper()
	d, err := q.Consume(ctx, id, quotaMax, renewal)
	Expect(err).NotTo(HaveOccurred())
	return d
}

// shortly bounds a call that must fail fast rather than hang.
func shortly(ctx context.Context) context.Context {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	DeferCleanup(cancel)
	return ctx
}

// CommandLog is a go-redis hook that records the name of every command a
// client sends, pipelined or not (MULTI and EXEC included).
type CommandLog struct {
	mu    sync.Mutex
	names []string
}

// RecordCommands installs a CommandLog on client.
func RecordCommands(client redis.UniversalClient) *CommandLog {
	log := &CommandLog{}
	client.AddHook(log)
	return log
}

// Names returns the commands sent since the last Forget.
func (l *CommandLog) Names() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.names)
}

// Forget empties the log.
func (l *CommandLog) Forget() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.names = nil
}

func (l *CommandLog) record(cmds ...redis.Cmder) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, cmd := range cmds {
		l.names = append(l.names, cmd.Name())
	}
}

// DialHook implements redis.Hook.
func (l *CommandLog) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (l *CommandLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		l.record(cmd)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (l *CommandLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		l.record(cmds...)
		return next(ctx, cmds)
	}
}

var _ redis.Hook = (*CommandLog)(nil)
