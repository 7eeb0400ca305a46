package limit_test

import (
	"context"
	"slices"
	"sync"
	"time"

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
	// Cluster is the simulated cluster; nil on the real tier, where the
	// cluster's own clock cannot be moved (PassTime moves the limiters'
	// only) and specs labelled simulated-only do not run.
	Cluster  *cluster.Cluster
	Client   *redis.ClusterClient
	Commands *CommandLog

	addrs []string

	mu  sync.Mutex
	now time.Time
}

// NewEnv starts the cluster and the client, both stopped when the spec
// ends; on the real tier it empties the real cluster instead.
func NewEnv() *Env {
	GinkgoHelper()
	env := &Env{now: t0}
	env.addrs, env.Cluster = specs.StartCluster(3)
	if env.Cluster != nil {
		env.Cluster.SetTime(t0)
	}
	env.Client = env.Connect()
	env.Commands = RecordCommands(env.Client)
	return env
}

// Connect returns another ClusterClient on the cluster, as a second gateway
// would have, with the harness's fast-failing options.
func (e *Env) Connect() *redis.ClusterClient {
	GinkgoHelper()
	return specs.ConnectCluster(e.addrs...)
}

// ConnectToOwner returns a plain single-node client on the node that owns
// key, the way a gateway configured with one Redis host talks to it.
func (e *Env) ConnectToOwner(key string) *redis.Client {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	owner, err := e.Client.MasterForKey(ctx, key)
	Expect(err).NotTo(HaveOccurred())
	client := redis.NewClient(&redis.Options{
		Addr:            owner.Options().Addr,
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

// PassTime moves the limiters' clock and the simulated cluster's
// together, so that sorted-set scores and key TTLs agree. A real Redis
// keeps its own time.
func (e *Env) PassTime(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
	if e.Cluster != nil {
		e.Cluster.FastForward(d)
	}
}

// NewWindow returns a Window on the spec's client and clock.
func (e *Env) NewWindow(o limit.WindowOptions) *limit.Window {
	o.Now = e.Now
	return limit.NewWindow(e.Client, o)
}

// NewLimits returns Limits with the given algorithm on the spec's client
// and clock.
func (e *Env) NewLimits(a limit.Algorithm) *limit.Limits {
	return limit.NewLimits(e.Client, e.NewQuota(), limit.LimitsOptions{Algorithm: a, Window: limit.WindowOptions{Transactional: true}, Now: e.Now})
}

// NewCreditLimits returns the default limits (the GCRA) taking percent of a
// busy key's limits at once (limits_credit_percent), on client, a gateway's
// own connection to the spec's cluster, and the spec's clock.
// Close (the gateway's Shutdown) ends with the spec, if the spec has not
// called it.
func (e *Env) NewCreditLimits(client redis.UniversalClient, percent float64) *limit.Limits {
	l := limit.NewLimits(client, limit.NewQuota(client, e.Now), limit.LimitsOptions{Credit: percent, Now: e.Now})
	DeferCleanup(func(ctx SpecContext) error { return l.Close(ctx) }, NodeTimeout(10*time.Second))
	return l
}

// Check asks limits about one request that must not fail.
func Check(ctx context.Context, l *limit.Limits, id string, r limit.Rate) limit.Outcome {
	GinkgoHelper()
	o := l.Check(ctx, id, r)
	Expect(o.RateErr).NotTo(HaveOccurred())
	Expect(o.QuotaErr).NotTo(HaveOccurred())
	return o
}

// HammerLimits sends n requests for id at the current time and returns how
// many the rate limit allowed.
func HammerLimits(ctx context.Context, l *limit.Limits, id string, n int, r limit.Rate) int {
	GinkgoHelper()
	allowed := 0
	for range n {
		if Check(ctx, l, id, r).Rate.Allowed {
			allowed++
		}
	}
	return allowed
}

// NewQuota returns a Quota on the spec's client and clock.
func (e *Env) NewQuota() *limit.Quota {
	return limit.NewQuota(e.Client, e.Now)
}

// inspect bounds a spec's own look at what is stored.
func inspect() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	DeferCleanup(cancel)
	return ctx
}

// Stored is the string stored at key.
func (e *Env) Stored(key string) string {
	GinkgoHelper()
	v, err := e.Client.Get(inspect(), key).Result()
	Expect(err).NotTo(HaveOccurred())
	return v
}

// StoredTTL is key's time to live, in whole seconds as Redis's TTL
// answers.
func (e *Env) StoredTTL(key string) time.Duration {
	GinkgoHelper()
	ttl, err := e.Client.TTL(inspect(), key).Result()
	Expect(err).NotTo(HaveOccurred())
	return ttl
}

// WindowEntries lists the requests counted in id's window.
func (e *Env) WindowEntries(id string) []string {
	GinkgoHelper()
	members, err := e.Client.ZRange(inspect(), limit.WindowKey(id), 0, -1).Result()
	Expect(err).NotTo(HaveOccurred())
	if len(members) == 0 {
		return nil
	}
	return members
}

// StoredKeys lists every key on every master.
func (e *Env) StoredKeys() []string {
	GinkgoHelper()
	var (
		mu   sync.Mutex
		keys []string
	)
	Expect(e.Client.ForEachMaster(inspect(), func(ctx context.Context, m *redis.Client) error {
		found, err := m.Keys(ctx, "*").Result()
		mu.Lock()
		keys = append(keys, found...)
		mu.Unlock()
		return err
	})).To(Succeed())
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
	trips int
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

// RoundTrips counts the commands and pipelines sent since the last
// Forget: what a single Redis node answers in that many round trips (a
// cluster sends a pipeline's commands for several nodes concurrently).
func (l *CommandLog) RoundTrips() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.trips
}

// Forget empties the log.
func (l *CommandLog) Forget() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.names = nil
	l.trips = 0
}

func (l *CommandLog) record(cmds ...redis.Cmder) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.trips++
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
