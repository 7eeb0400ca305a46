// Package seed runs the reported production setup of fixtures/seed in
// this process, for soaking: the seed's API definition and
// refreshSecurity.js unchanged, on a simulated Redis Cluster, with the
// upstream host "java" and the webhook target "https://api" served by real
// servers on 127.0.0.1.
//
//	sc, err := seed.Start(seed.Options{Dir: "fixtures/seed"})
//	if err != nil { ... }
//	defer sc.Close(ctx)
//	rep, err := soak.Run(ctx, soak.Config{Target: sc.Target(), Sampler: sc.Sampler(), ...})
//
// The requests (Target().Mix) are those of the seed's users: most carry a
// valid key in the security header and x-api-version: v1, so they pass
// header auth and versioning, run the JS post middleware that refreshes
// the session's expiry with TykSetKeyData, go through the response cache
// step and reach the upstream; one in three sends an Origin header (CORS);
// one in 40 is a CORS preflight; one in 100 carries an expired key, which
// is refused and raises the KeyExpired webhook (sent to the HTTPS target,
// or deduplicated within the seed's event_timeout).
//
// With Options.Mix, one request in 500 is instead one of the operations a
// gateway lives through besides its users' requests, in turn: a group
// reload (which a second gateway on the same cluster receives as a
// notification), a key created, updated and deleted through the control
// API, a JS middleware that throws, one that runs past jsvm_timeout, a
// KeyExpired webhook to a target that refuses connections, and a call to
// the debug summary.
//
// With Options.Hostile, one request in 500 is instead one of the hostile
// inputs of issue 15, in turn, each checked against the answer the
// README's Limits table promises: a middleware doubling a string for ever
// (stopped at jsvm_memory_limit: 500 js_memory_limit), a body sent a byte
// at a time (cut at http_server_options.read_timeout, on a listener of the
// same gateway that applies it), control API bodies nested too deep or too
// large (400, 413), dot segments and a lower-case method (301, 400), a
// webhook target that hangs while another API's webhook is delivered, and
// a named pipe, a symlink to /dev/zero and an oversized definition in
// app_path around a /tyk/reload that must still answer quickly.
package seed

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/gateway"
	"github.com/tollgate/tollgate/gateway/session"
	"github.com/tollgate/tollgate/tools/echo"
	"github.com/tollgate/tollgate/tools/soak/soak"
)

// APIID is the seed API's api_id.
const APIID = "**************************000001"

// The seed's names: its auth header, its version header and its version.
const (
	KeyHeader     = "security"
	VersionHeader = "x-api-version"
	Version       = "v1"
)

// Origin is the Origin header of the CORS requests.
const Origin = "https://app.example"

// Options configure the scenario.
type Options struct {
	// Dir is the fixtures/seed folder. Required.
	Dir string
	// Keys is the number of valid keys the requests take turns with.
	// Default 16.
	Keys int
	// CacheAllSafeRequests turns on cache_options.cache_all_safe_requests
	// in a copy of the definition. The seed has it off and lists no
	// extended_paths.cache, so as posted its cache step stores nothing; on,
	// every GET is cached per key and path for the seed's 60 s.
	CacheAllSafeRequests bool
	// Mix mixes the other operations of a gateway's life into the seed's
	// requests (see the package documentation): reloads, key churn, JS
	// errors and timeouts, failing webhooks, notifications, debug calls.
	// It adds an API of its own ("/mix/") and a second gateway that only
	// receives notifications.
	Mix bool
	// Hostile mixes issue 15's hostile inputs into the requests (see the
	// package documentation). It adds APIs of its own (/hostile-js/,
	// /hostile-stuck/, /hostile-fine/), two webhook targets, a second
	// listener of the gateway with http_server_options applied, and sets
	// jsvm_memory_limit (HostileJSMemoryLimit).
	Hostile bool
	// Log receives the gateway's log. Default: discarded.
	Log *slog.Logger
}

// Scenario is the running seed setup. Close stops all of it.
type Scenario struct {
	gw       *gateway.Gateway
	other    *gateway.Gateway // receives notifications (Mix only)
	cluster  *cluster.Cluster
	upstream *httptest.Server
	sink     *httptest.Server
	tempDir  string // a copy of the definition, when changed
	keys     []string
	expired  []string
	cacheOn  bool
	mixOn    bool
	secret   string
	hostile  *hostile        // Hostile only
	timed    *gateway.Server // the gateway with http_server_options applied (Hostile only)

	webhooks       atomic.Int64 // received by the HTTPS target
	expiredSent    atomic.Int64 // requests made with an expired key, the mix's included
	upstreamServed atomic.Int64
	mixed          [mixOps]atomic.Int64 // operations of the mix sent, by kind
}

// Start starts the simulated cluster, the upstream, the webhook target and
// the gateway, and stores the keys. On error, whatever was started is
// stopped.
func Start(o Options) (sc *Scenario, err error) {
	if o.Dir == "" {
		return nil, errors.New("seed: Options.Dir (the fixtures/seed folder) is not set")
	}
	if o.Keys == 0 {
		o.Keys = 16
	}
	if o.Keys < 1 || o.Keys > 10_000 {
		return nil, fmt.Errorf("seed: Options.Keys %d: must be between 1 and 10000", o.Keys)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	defPath := filepath.Join(dir, "apps", "security.json")
	def, err := os.ReadFile(defPath)
	if err != nil {
		return nil, fmt.Errorf("seed: reading the seed API definition: %w", err)
	}

	sc = &Scenario{cacheOn: o.CacheAllSafeRequests, mixOn: o.Mix}
	defer func() {
		if err != nil {
			_ = sc.Close(context.Background())
			sc = nil
		}
	}()
	appDir := filepath.Join(dir, "apps")
	if o.CacheAllSafeRequests || o.Mix || o.Hostile {
		// A copy of the definition, changed or not, next to what the mix
		// adds.
		if sc.tempDir, err = os.MkdirTemp("", "tollgate-soak-seed-"); err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
		appDir = sc.tempDir
	}
	if o.CacheAllSafeRequests {
		const off = `"cache_all_safe_requests": false`
		if strings.Count(string(def), off) != 1 {
			return nil, fmt.Errorf("seed: %s: expected %s once, to turn the cache on", defPath, off)
		}
		def = []byte(strings.Replace(string(def), off, `"cache_all_safe_requests": true`, 1))
	}
	if sc.tempDir != "" {
		if err = os.WriteFile(filepath.Join(sc.tempDir, "security.json"), def, 0o600); err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
	}
	if o.Mix {
		if err = writeMixAPI(sc.tempDir); err != nil {
			return nil, err
		}
	}
	if o.Hostile {
		if err = sc.startHostile(sc.tempDir); err != nil {
			return nil, err
		}
	}

	if sc.cluster, err = cluster.Start(cluster.DefaultNodes); err != nil {
		return nil, fmt.Errorf("seed: starting the simulated cluster: %w", err)
	}
	upstream := echo.Handler()
	sc.upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc.upstreamServed.Add(1)
		upstream.ServeHTTP(w, r)
	}))
	roots, err := sc.startWebhookTarget()
	if err != nil {
		return nil, err
	}

	if sc.secret, err = randomHex(16); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	// tyk.conf reduced to what the scenario needs, as the specs do: the
	// seed's storage.hosts cannot load, and its enable_analytics would fill
	// a Redis list no pump empties. enable_jsvm is the seed's value. The
	// mix adds the debug endpoints and a JS timeout short enough for runs
	// that spin to end within a second.
	// The hostile mode adds jsvm_memory_limit and read_timeout, and
	// sets jsvm_timeout back to 5 s.
	conf := map[string]any{"secret": sc.secret, "enable_jsvm": true, "template_path": "templates"}
	if o.Mix {
		conf["enable_http_profiler"] = true
		conf["jsvm_timeout"] = mixJSTimeout.Seconds()
	}
	if o.Hostile {
		hostileConf(conf)
	}
	confJSON, err := json.Marshal(conf)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	cfg, _, err := gateway.ParseConfig(confJSON)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	cfg.SetBaseDir(dir)
	cfg.AppPath = appDir
	cfg.Storage.EnableCluster = true
	cfg.Storage.Addrs = sc.cluster.Addrs()
	start := func() (*gateway.Gateway, error) {
		return gateway.New(cfg,
			gateway.WithLogger(o.Log),
			gateway.WithDialer(sc.dialer()),
			gateway.WithTLSConfig(&tls.Config{RootCAs: roots}),
		)
	}
	if sc.gw, err = start(); err != nil {
		return nil, fmt.Errorf("seed: starting the gateway: %w", err)
	}
	if !sc.serves(APIID) {
		return nil, fmt.Errorf("seed: the gateway does not serve %s (api_id %s); its log says why", defPath, APIID)
	}
	if o.Hostile {
		for _, id := range []string{HostileJSAPIID, HostileStuckAPIID, HostileFineAPIID} {
			if !sc.serves(id) {
				return nil, fmt.Errorf("seed: the gateway does not serve the hostile mode's API %s; its log says why", id)
			}
		}
		// Run's listener applies no http_server_options; this one, on
		// the same gateway, does, as the tollgate binary's.
		if sc.timed, err = gateway.Listen("127.0.0.1:0", sc.gw, o.Log, gateway.WithTimeouts(cfg)); err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
	}
	if o.Mix {
		if !sc.serves(MixAPIID) {
			return nil, fmt.Errorf("seed: the gateway does not serve the mix's API (api_id %s); its log says why", MixAPIID)
		}
		if sc.other, err = start(); err != nil {
			return nil, fmt.Errorf("seed: starting the second gateway: %w", err)
		}
	}

	// The control API drops an expiry already past, as Tyk does, so each
	// expired key gets one two seconds ahead (which a slow machine's
	// setKey does not reach) and Start waits the last of them out.
	var lastExpiry int64
	expireSoon := func(key, apiID, name string, versions []string) error {
		lastExpiry = time.Now().Unix() + 2
		return sc.setKey(key, sessionFor(apiID, name, versions, lastExpiry))
	}
	expires := time.Now().Add(30 * time.Minute).Unix()
	for i := range o.Keys {
		key := fmt.Sprintf("soak-%04d", i)
		session := sessionFor(APIID, "Security", []string{Version}, expires)
		if o.Mix {
			session = withBusyLimits(session)
		}
		if err = sc.setKey(key, session); err != nil {
			return nil, err
		}
		sc.keys = append(sc.keys, key)
	}
	for i := range 4 {
		key := fmt.Sprintf("soak-expired-%d", i)
		if err = sc.storeExpiredKey(key); err != nil {
			return nil, err
		}
		sc.expired = append(sc.expired, key)
	}
	if o.Mix {
		if err = expireSoon(mixExpiredKey, MixAPIID, "soak mix", nil); err != nil {
			return nil, err
		}
	}
	if o.Hostile {
		if err = expireSoon(hostileStuckKey, HostileStuckAPIID, "soak hostile stuck", nil); err != nil {
			return nil, err
		}
		if err = expireSoon(hostileFineKey, HostileFineAPIID, "soak hostile fine", nil); err != nil {
			return nil, err
		}
	}
	time.Sleep(time.Until(time.Unix(lastExpiry+1, 0)))
	return sc, nil
}

// serves reports whether the gateway loaded the API apiID.
func (sc *Scenario) serves(apiID string) bool {
	for _, d := range sc.gw.APIs() {
		if d.APIID == apiID {
			return true
		}
	}
	return false
}

// startWebhookTarget serves the seed's webhook target, https://api/..., on
// 127.0.0.1 with a certificate for "api" signed by a root of its own, which
// it returns for the gateway to trust.
func (sc *Scenario) startWebhookTarget() (*x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("seed: webhook target key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "api"},
		DNSNames:              []string{"api"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(48 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("seed: webhook target certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("seed: webhook target certificate: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	sc.sink = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		sc.webhooks.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	sc.sink.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}}
	sc.sink.StartTLS()
	return roots, nil
}

// dialer connects the seed's host names to the scenario's servers: "java"
// (the v1 override_target) to the upstream, "api" (the webhook target) to
// the HTTPS target. Nothing else is reachable.
func (sc *Scenario) dialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	hosts := map[string]string{
		"java": sc.upstream.Listener.Addr().String(),
		"api":  sc.sink.Listener.Addr().String(),
		// The mix's webhook target (mixDeadTarget) has no server: every
		// delivery to it fails.
	}
	if sc.hostile != nil {
		hosts[hostileStuckHost] = sc.hostile.stuck.Listener.Addr().String()
		hosts[hostileFineHost] = sc.hostile.fine.Listener.Addr().String()
	}
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		to, ok := hosts[host]
		if !ok {
			return nil, fmt.Errorf("seed scenario: no server for host %q", host)
		}
		return d.DialContext(ctx, network, to)
	}
}

// seedOrgID is the org_id of the seed's API and of the keys it issues.
const seedOrgID = "******************000001"

// sessionFor is a session granting apiID (the versions listed), expiring
// at expires.
func sessionFor(apiID, name string, versions []string, expires int64) string {
	if versions == nil {
		versions = []string{}
	}
	session, _ := json.Marshal(map[string]any{
		"access_rights": map[string]any{apiID: map[string]any{"api_id": apiID, "api_name": name, "versions": versions}},
		"org_id":        seedOrgID,
		"expires":       expires,
	})
	return string(session)
}

// withBusyLimits gives session a rate limit and a quota no soak reaches
// (100,000 requests a second, 1,000,000,000 an hour), so that every request
// of the mix passes both and the gateway takes the keys' shares (README,
// "A busy key's share"): the steady state then covers them too.
func withBusyLimits(session string) string {
	var m map[string]any
	_ = json.Unmarshal([]byte(session), &m)
	m["rate"], m["per"] = 100_000, 1
	m["quota_max"], m["quota_renewal_rate"] = 1_000_000_000, 3600
	out, _ := json.Marshal(m)
	return string(out)
}

// setKey stores a session for key through the control API.
func (sc *Scenario) setKey(key, session string) error {
	req := httptest.NewRequest(http.MethodPost, "/tyk/keys/"+key, strings.NewReader(session))
	req.Header.Set("X-Tyk-Authorization", sc.secret)
	rec := httptest.NewRecorder()
	sc.gw.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return fmt.Errorf("seed: storing key %s: control API answered %d: %s", key, rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	return nil
}

// storeExpiredKey writes the session of a key that expired an hour ago
// straight into Redis, as a key that has lived its life looks: the control
// API, like Tyk's, drops an expires already past.
func (sc *Scenario) storeExpiredKey(key string) error {
	state, _ := json.Marshal(map[string]any{
		"access_rights": map[string]any{APIID: map[string]any{"api_id": APIID, "api_name": "Security", "versions": []string{Version}}},
		"org_id":        seedOrgID,
		"expires":       time.Now().Add(-time.Hour).Unix(),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sc.gw.Store().Client.Set(ctx, session.RedisKey(key), state, 0).Err(); err != nil {
		return fmt.Errorf("seed: storing expired key %s: %w", key, err)
	}
	return nil
}

// Gateway is the gateway under test.
func (sc *Scenario) Gateway() *gateway.Gateway { return sc.gw }

// Keys are the valid keys.
func (sc *Scenario) Keys() []string { return sc.keys }

// UpstreamRequests is how many requests reached the upstream.
func (sc *Scenario) UpstreamRequests() int64 { return sc.upstreamServed.Load() }

// Webhooks is how many webhooks the HTTPS target received.
func (sc *Scenario) Webhooks() int64 { return sc.webhooks.Load() }

// SimulatedRedis prefixes the functions of the simulated Redis Cluster's
// goroutines (miniredis serves each client connection on one).
const SimulatedRedis = "github.com/alicebob/miniredis/"

// Sampler samples this process, leaving the simulated Redis Cluster's
// goroutines out of the count: in production Redis is another process,
// and the gateway's connection pool opens connections as concurrency
// requires.
func (sc *Scenario) Sampler() soak.Sampler { return soak.SelfExcept(SimulatedRedis) }

// Target is the gateway as a soak target: its handler, the seed's request
// mix, its quiescing and its notes.
func (sc *Scenario) Target() soak.Target {
	name := "fixtures/seed in process (security.json and refreshSecurity.js as posted), simulated Redis Cluster"
	if sc.cacheOn {
		name = "fixtures/seed in process, cache_all_safe_requests on, simulated Redis Cluster"
	}
	return soak.Target{Name: name, Handler: sc.gw, Mix: sc.Request, Quiesce: sc.Quiesce, Notes: sc.Notes}
}

// The request mix: of every 100 requests, the one at 50 has an expired
// key, those at 39 and 79 (one in 40) are preflights, and every third
// other request sends an Origin.
const (
	expiredEvery   = 100
	preflightEvery = 40
	originEvery    = 3
	paths          = 64 // distinct users the valid requests ask for
)

// Request is the i-th request of the seed's users, or, with Mix, one of
// the mix's operations.
func (sc *Scenario) Request(i int64) soak.Request {
	if sc.hostile != nil && i%hostileEvery == hostileSlot {
		return sc.hostileRequest(i / hostileEvery)
	}
	if sc.mixOn && i%mixEvery == mixSlot {
		return sc.mixRequest(i / mixEvery)
	}
	switch {
	case i%expiredEvery == expiredEvery/2:
		sc.expiredSent.Add(1)
		// The webhook body names the key and the path: 64 different
		// bodies, each sent once per the seed's event_timeout (10 s) and
		// counted as a duplicate otherwise. A bounded set of bodies also
		// bounds the dedupe keys written to Redis: the simulated cluster
		// keeps a small record of every key name it has ever seen.
		n := i / expiredEvery
		return soak.Request{Method: http.MethodGet, Path: "/security/users/" + strconv.FormatInt(n%paths, 10),
			Header: http.Header{"Security": {sc.expired[n%int64(len(sc.expired))]}, "X-Api-Version": {Version}},
			Want:   http.StatusUnauthorized}
	case i%preflightEvery == preflightEvery-1:
		return soak.Request{Method: http.MethodOptions, Path: "/security/users/" + strconv.FormatInt(i%paths, 10),
			Header: http.Header{"Origin": {Origin}, "Access-Control-Request-Method": {http.MethodGet}},
			Want:   http.StatusNoContent}
	}
	h := http.Header{"Security": {sc.keys[i%int64(len(sc.keys))]}, "X-Api-Version": {Version}}
	if i%originEvery == 0 {
		h.Set("Origin", Origin)
	}
	return soak.Request{Method: http.MethodGet, Path: "/security/users/" + strconv.FormatInt(i%paths, 10), Header: h, Want: http.StatusOK}
}

// Quiesce waits until every KeyExpired event raised so far has been
// handled (at most 5 s: a request given up by the load raised none), then
// closes the upstream's and the webhook target's connections, so that the
// gateway's pooled idle connections (and their goroutines) are not counted
// as growth.
func (sc *Scenario) Quiesce(ctx context.Context) error {
	if sc.hostile != nil {
		defer sc.quiesceHostile()()
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	bus := sc.gw.Events()
	for (int64(bus.Delivered()+bus.Dropped()) < sc.expiredSent.Load() || sc.gw.WebhookDeliveries().Pending > 0) && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	sc.upstream.CloseClientConnections()
	sc.sink.CloseClientConnections()
	return nil
}

// Notes are the scenario's own figures for the summary.
func (sc *Scenario) Notes() []string {
	bus := sc.gw.Events()
	hooks := sc.gw.WebhookDeliveries()
	js := sc.gw.JSStats(APIID)
	cache := "the seed's cache_options store nothing (cache_all_safe_requests false, no extended_paths.cache)"
	if sc.cacheOn {
		cache = fmt.Sprintf("cache_all_safe_requests on: the upstream answered %d requests", sc.upstreamServed.Load())
	}
	notes := []string{
		"goroutines of the simulated Redis Cluster (one per connection) are not counted: in production Redis is another process",
		fmt.Sprintf("KeyExpired: %d requests with an expired key, %d events handled, %d dropped; %d webhooks handled, %d dropped; %d received over HTTPS (identical ones: once per 10 s)",
			sc.expiredSent.Load(), bus.Delivered(), bus.Dropped(), hooks.Handled, hooks.Dropped, sc.webhooks.Load()),
		fmt.Sprintf("JS post middleware: %d runs on %d VMs (%d discarded, %d timeouts)", js.Runs, js.VMsCreated, js.VMsDiscarded, js.Timeouts),
		cache,
	}
	if sc.mixOn {
		notes = append(notes, sc.mixNotes()...)
	}
	if sc.hostile != nil {
		notes = append(notes, sc.hostileNotes()...)
	}
	return notes
}

// Close stops the gateway, the servers and the cluster, and waits for
// them. Requests should have stopped.
func (sc *Scenario) Close(ctx context.Context) error {
	var errs []error
	if sc.timed != nil {
		errs = append(errs, sc.timed.Shutdown(ctx))
	}
	if sc.hostile != nil && sc.hostile.stuck != nil {
		// What the hanging target holds would hold Shutdown's webhooks.
		sc.hostile.stuck.setReleased(true)
	}
	if sc.gw != nil {
		errs = append(errs, sc.gw.Shutdown(ctx))
	}
	if sc.other != nil {
		errs = append(errs, sc.other.Shutdown(ctx))
	}
	if sc.sink != nil {
		sc.sink.Close()
	}
	if sc.upstream != nil {
		sc.upstream.Close()
	}
	if sc.hostile != nil {
		errs = append(errs, sc.hostile.close())
	}
	if sc.cluster != nil {
		sc.cluster.Close()
	}
	if sc.tempDir != "" {
		errs = append(errs, os.RemoveAll(sc.tempDir))
	}
	return errors.Join(errs...)
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
