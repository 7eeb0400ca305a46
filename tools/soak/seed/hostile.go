package seed

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/tools/soak/soak"
)

// The hostile mode (Options.Hostile): one request in hostileEvery is one
// of issue 15's hostile inputs, the kinds taking turns, each answered as
// the limits in the README's Limits table say.
const (
	hostileEvery = 500
	// hostileSlot is where in every hostileEvery requests the input comes:
	// a place no expired key, preflight or operation of the mix takes.
	hostileSlot = 257
	// HostileJSAPIID is the api_id of the API whose pre middleware is
	// the loop, served at /hostile-js/.
	HostileJSAPIID = "soak-hostile-js"
	// The APIs whose KeyExpired webhooks go to a target that hangs and to
	// one that answers, at /hostile-stuck/ and /hostile-fine/.
	HostileStuckAPIID = "soak-hostile-stuck"
	HostileFineAPIID  = "soak-hostile-fine"
	// Their expired keys, in the hostile-key header.
	hostileStuckKey = "soak-hostile-stuck-expired"
	hostileFineKey  = "soak-hostile-fine-expired"
	// The webhook targets' host names, which the scenario's dialer
	// connects to servers of its own on 127.0.0.1.
	hostileStuckHost = "stuck"
	hostileFineHost  = "fine"
)

// HostileJSMemoryLimit is jsvm_memory_limit, in MB, in hostile mode. The
// limit is compared with the whole process's heap, and the soak runs the
// gateway, a second one with -mix, the simulated cluster and the load's
// clients in one process: about 15 MiB after a collection (the soak's
// "heap in use" with -mix), so up to about twice that between collections
// with the default GOGC, and a control API body of 1 MiB at most per
// client. 128 leaves four times that for garbage, so no seed request's JS
// is stopped by the garbage of the others, and keeps the string-doubling
// run's peak (the limit plus its last doubling) at a few hundred MiB.
// With GOGC=off or a large -concurrency, raise it.
const HostileJSMemoryLimit = 128

// hostileJSTimeout is jsvm_timeout in hostile mode, with or without the
// mix (whose 1 s it replaces): long enough that the memory limit, not the
// timeout, stops the string-doubling run on a machine busy with other
// work (at a load of 16 on 2 cores, one run in three took past 1 s to
// reach the limit). A run stopped by the timeout leaves its garbage
// behind, and the seed's next JS runs find the heap past the limit.
const hostileJSTimeout = 5 * time.Second

// hostileReadTimeout is http_server_options.read_timeout in hostile mode;
// it bounds the slow body on the scenario's timed listener only.
const hostileReadTimeout = time.Second

// Bounds the hostile inputs' answers are checked against, with room for a
// machine busy with the load.
const (
	// slowBodyBytes is the slow body's Content-Length, sent a byte every
	// slowByteEvery: it would take 12.8 s, well past read_timeout.
	slowBodyBytes = 64
	slowByteEvery = 200 * time.Millisecond
	// slowSlack is how long past read_timeout the answer may come.
	slowSlack = 2 * time.Second
	// hostileReloadBound bounds a /tyk/reload with the hostile files in
	// app_path: a named pipe would hang it for ever, /dev/zero fill memory.
	hostileReloadBound = 3 * time.Second
	// fineDeliveryBound bounds the delivery of the answering target's
	// webhook while the other target hangs: without a lane per handler,
	// four hung deliveries held every worker for 10 s.
	fineDeliveryBound = 3 * time.Second
	// stuckHeldBound bounds the wait for the hanging target to hold a
	// delivery, before the other API's event is raised.
	stuckHeldBound = 2 * time.Second
	// hostileClientTimeout bounds each request the hostile inputs make
	// themselves.
	hostileClientTimeout = 10 * time.Second
)

// The kinds of hostile input, in the order they take turns.
const (
	hostileJSMemory   = iota // the string-doubling middleware: 500 js_memory_limit, sent alone
	hostileSlowBody          // a body a byte every 200 ms on a listener with read_timeout: cut, 400 body_unreadable
	hostileDeepBody          // a control API body nested 9,999 deep: 400 naming the limit
	hostileLargeBody         // a control API body over 1 MiB: 413 naming the limit
	hostileDotPath           // /security/../admin: 301 to /admin
	hostileEncodedDot        // /security/%2e%2e/admin: 301 to /admin
	hostileMethodCase        // get instead of GET: 400 method_case
	hostileStuckHook         // a webhook target that hangs, while another API's webhook is delivered
	hostileFiles             // a FIFO, a /dev/zero symlink and an oversized definition in app_path, then /tyk/reload
	hostileOps
)

// hostileKinds name the kinds in the report (soak.Request.Kind), numbered
// so the summary lists them in turn.
var hostileKinds = [hostileOps]string{
	"hostile 1, JS doubling a string (500 js_memory_limit)",
	"hostile 2, body a byte every 200ms (cut at read_timeout, 400 body_unreadable)",
	"hostile 3, control API body nested 9999 deep (400)",
	"hostile 4, control API body over 1 MiB (413)",
	"hostile 5, /security/../admin (301 to /admin)",
	"hostile 6, /security/%2e%2e/admin (301 to /admin)",
	"hostile 7, method get (400 method_case)",
	"hostile 8, webhook target hangs, another API's delivered (401s, delivered within 3s)",
	"hostile 9, FIFO, /dev/zero symlink, oversized definition, /tyk/reload (200 within 3s naming each)",
}

// HostileKinds are the Kind of each hostile input, in turn.
func HostileKinds() []string { return hostileKinds[:] }

// hostileJS is the loop, as a pre middleware: every request to
// /hostile-js/ runs it until the JS memory limit stops it.
const hostileJS = `var soakHog = new TykJS.TykMiddleware.NewMiddleware({});
soakHog.NewProcessRequest(function(request, session) {
  var s="x"; var a=[]; while(true){s=s+s; a.push(s);}
  return soakHog.ReturnData(request, {});
});
`

// hostileJSAPI is the keyless API running hostileJS; %s is its path.
const hostileJSAPI = `{"api_id": "` + HostileJSAPIID + `", "name": "soak hostile JS", "org_id": "******************000001", "active": true,
  "use_keyless": true,
  "proxy": {"listen_path": "/hostile-js/", "target_url": "http://java/hostile-js", "strip_listen_path": true},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default"}}},
  "custom_middleware": {"pre": [{"name": "soakHog", "path": %q}]}}
`

// hostileHookAPI is a keyed API whose KeyExpired webhooks go to a target:
// api_id, name, listen path, target.
const hostileHookAPI = `{"api_id": %q, "name": %q, "org_id": "******************000001", "active": true,
  "auth": {"auth_header_name": "hostile-key"},
  "proxy": {"listen_path": %q, "target_url": "http://java/hostile", "strip_listen_path": true},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default"}}},
  "event_handlers": {"events": {"KeyExpired": [{"handler_name": "eh_web_hook_handler", "handler_meta": {
    "method": "POST", "target_path": %q, "template_path": "default_webhook.json", "event_timeout": 0}}]}}}
`

// hostile is the hostile mode's part of the scenario.
type hostile struct {
	appDir   string // the gateway's app_path, where the hostile files appear
	stageDir string // the oversized definition, linked into appDir in turn
	big      string // its path
	deep     string // a control API body nested 9,999 deep
	large    string // a control API body over 1 MiB
	client   *http.Client
	stuck    *hangingTarget
	fine     *httptest.Server
	// fineSeen holds the paths of the webhooks the answering target
	// received, until the input that raised each takes it out.
	fineSeen sync.Map

	sent [hostileOps]atomic.Int64
	// Extremes of what was measured, in nanoseconds, for the notes.
	slowCutMin, slowCutMax atomic.Int64
	reloadMax, deliveryMax atomic.Int64
}

// startHostile writes the hostile APIs into appDir and starts the webhook
// targets; Scenario.Close stops them.
func (sc *Scenario) startHostile(appDir string) error {
	h := &hostile{appDir: appDir}
	sc.hostile = h
	js := filepath.Join(appDir, "soak_hostile.js")
	files := map[string]string{
		"soak_hostile.js":         hostileJS,
		"soak_hostile_js.json":    fmt.Sprintf(hostileJSAPI, js),
		"soak_hostile_stuck.json": fmt.Sprintf(hostileHookAPI, HostileStuckAPIID, "soak hostile stuck", "/hostile-stuck/", "http://"+hostileStuckHost+"/hook"),
		"soak_hostile_fine.json":  fmt.Sprintf(hostileHookAPI, HostileFineAPIID, "soak hostile fine", "/hostile-fine/", "http://"+hostileFineHost+"/hook"),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(appDir, name), []byte(content), 0o600); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	var err error
	if h.stageDir, err = os.MkdirTemp("", "tollgate-soak-hostile-"); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	// Valid but for its size: 5 MiB, past max_api_definition_size's 4 MiB.
	h.big = filepath.Join(h.stageDir, "big.json")
	pad := `{"api_id": "soak-hostile-big", "active": true, "config_data": {"pad": "` + strings.Repeat("x", 5<<20) + `"}}`
	if err := os.WriteFile(h.big, []byte(pad), 0o600); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	h.deep = strings.Repeat(`{"a":`, 9999) + "1" + strings.Repeat("}", 9999)
	h.large = `{"org_id": "` + strings.Repeat("x", 1<<20+64<<10) + `"}`
	// A connection per request: nothing pooled is left between samples.
	h.client = &http.Client{
		Transport:     &http.Transport{DisableKeepAlives: true},
		Timeout:       hostileClientTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	h.stuck = startHangingTarget()
	h.fine = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Path string `json:"path"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&body); err == nil {
			h.fineSeen.Store(body.Path, time.Now())
		}
		w.WriteHeader(http.StatusOK)
	}))
	h.slowCutMin.Store(int64(time.Hour))
	return nil
}

// hostileConf adds the hostile mode's settings to tyk.conf.
func hostileConf(conf map[string]any) {
	conf["jsvm_memory_limit"] = HostileJSMemoryLimit
	conf["jsvm_timeout"] = hostileJSTimeout.Seconds()
	conf["http_server_options"] = map[string]any{"read_timeout": hostileReadTimeout.Seconds()}
}

// hostileRequest is the n-th hostile input.
func (sc *Scenario) hostileRequest(n int64) soak.Request {
	h := sc.hostile
	kind := n % hostileOps
	h.sent[kind].Add(1)
	// The paths and file names it makes up repeat after churnKeys turns
	// of every kind, so a long run does not mint names without end; an
	// input of the same kind with the same name is minutes away.
	turn := (n / hostileOps) % churnKeys
	admin := http.Header{"X-Tyk-Authorization": {sc.secret}}
	req := soak.Request{Kind: hostileKinds[kind]}
	switch kind {
	case hostileJSMemory:
		// Every JS run in flight when the heap passes the limit is stopped,
		// the seed's own included: this one runs alone.
		req.Method, req.Path, req.Want, req.Alone = http.MethodGet, "/hostile-js/", http.StatusInternalServerError, true
		req.Check = causeIs(chain.CauseJSMemory)
	case hostileSlowBody:
		req.Method, req.Path, req.Want = http.MethodPost, "/security/users/1 (a byte every 200ms, on the listener with read_timeout)", http.StatusBadRequest
		var got slowBodyResult
		req.Send = func(ctx context.Context, _ string) (soak.Answer, error) {
			var err error
			got, err = sc.sendSlowBody(ctx, sc.keys[turn%int64(len(sc.keys))])
			return got.answer, err
		}
		req.Check = func(a soak.Answer) error {
			if err := causeIs(chain.CauseBodyUnreadable)(a); err != nil {
				return err
			}
			return got.check()
		}
	case hostileDeepBody:
		req.Method, req.Path, req.Header, req.Body, req.Want = http.MethodPost, "/tyk/keys/create", admin, h.deep, http.StatusBadRequest
		req.Check = bodyHas("more than 64")
	case hostileLargeBody:
		req.Method, req.Path, req.Header, req.Body, req.Want = http.MethodPost, "/tyk/keys/create", admin, h.large, http.StatusRequestEntityTooLarge
		req.Check = bodyHas("1048576 bytes")
	case hostileDotPath, hostileEncodedDot:
		req.Method, req.Path, req.Want = http.MethodGet, "/security/../admin", http.StatusMovedPermanently
		if kind == hostileEncodedDot {
			req.Path = "/security/%2e%2e/admin"
		}
		req.Check = func(a soak.Answer) error {
			if loc := a.Header.Get("Location"); loc != "/admin" {
				return fmt.Errorf("Location %q, want /admin", loc)
			}
			return nil
		}
	case hostileMethodCase:
		req.Method, req.Path, req.Want = "get", "/security/users/1", http.StatusBadRequest
		req.Check = causeIs(chain.CauseMethodCase)
	case hostileStuckHook:
		req.Method, req.Path, req.Want = http.MethodGet, "/hostile-stuck/ then /hostile-fine/", http.StatusUnauthorized
		var why error
		req.Send = func(ctx context.Context, base string) (soak.Answer, error) {
			var (
				a   soak.Answer
				err error
			)
			a, why, err = sc.sendStuckWebhook(ctx, base, turn)
			return a, err
		}
		req.Check = func(soak.Answer) error { return why }
	default:
		req.Method, req.Path, req.Want = http.MethodGet, "/tyk/reload (hostile files in app_path)", http.StatusOK
		var (
			took  time.Duration
			files []string
		)
		req.Send = func(ctx context.Context, base string) (soak.Answer, error) {
			var (
				a   soak.Answer
				err error
			)
			a, took, files, err = sc.reloadAmongHostileFiles(ctx, base, turn)
			return a, err
		}
		req.Check = func(a soak.Answer) error {
			if took > hostileReloadBound {
				return fmt.Errorf("the reload took %v, more than %v", took.Round(time.Millisecond), hostileReloadBound)
			}
			for _, f := range files {
				if !strings.Contains(string(a.Body), f) {
					return fmt.Errorf("the reload's message does not name %s: %s", f, a.Body)
				}
			}
			return nil
		}
	}
	return req
}

// causeIs checks the answer's X-Tollgate-Error.
func causeIs(cause chain.Cause) func(soak.Answer) error {
	return func(a soak.Answer) error {
		if got := a.Header.Get(chain.CauseHeader); got != string(cause) {
			return fmt.Errorf("%s %q, want %q", chain.CauseHeader, got, cause)
		}
		return nil
	}
}

// bodyHas checks that the answer's body contains text.
func bodyHas(text string) func(soak.Answer) error {
	return func(a soak.Answer) error {
		if !strings.Contains(string(a.Body), text) {
			return fmt.Errorf("the body does not say %q: %.200s", text, a.Body)
		}
		return nil
	}
}

// slowBodyResult is what sending a slow body found.
type slowBodyResult struct {
	answer   soak.Answer
	answered time.Duration // from the dial to the answer
	sent     int           // bytes of the body sent
	closed   bool          // the gateway closed the connection after answering
}

// check holds the slow body to read_timeout: answered at it, not before
// (another cause) nor long after, the body unfinished, the connection
// closed.
func (r slowBodyResult) check() error {
	switch {
	case r.answered < hostileReadTimeout*9/10:
		return fmt.Errorf("answered after %v, before read_timeout (%v)", r.answered.Round(time.Millisecond), hostileReadTimeout)
	case r.answered > hostileReadTimeout+slowSlack:
		return fmt.Errorf("answered after %v, more than read_timeout (%v) and %v", r.answered.Round(time.Millisecond), hostileReadTimeout, slowSlack)
	case r.sent >= slowBodyBytes:
		return fmt.Errorf("the whole body (%d bytes) was taken", r.sent)
	case !r.closed:
		return errors.New("the connection was held open after the answer")
	}
	return nil
}

// sendSlowBody posts to the seed API, with a valid key, a body whose 64
// bytes come one every slowByteEvery, on the listener that applies
// http_server_options (Run's own listener has no read timeout). The seed's
// JS post middleware reads the body, so the cut surfaces as its 400.
func (sc *Scenario) sendSlowBody(ctx context.Context, key string) (slowBodyResult, error) {
	var res slowBodyResult
	// Timed from before the dial: the gateway starts its read_timeout when
	// it accepts the connection, which on a busy machine may be well before
	// this goroutine sees the dial return (882 ms answers were measured
	// from after it).
	start := time.Now()
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", sc.timed.Addr())
	if err != nil {
		return res, fmt.Errorf("slow body: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	limit := start.Add(hostileReadTimeout + slowSlack)
	_ = conn.SetWriteDeadline(limit)
	head := fmt.Sprintf("POST /security/users/1 HTTP/1.1\r\nHost: soak\r\n%s: %s\r\n%s: %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n",
		KeyHeader, key, VersionHeader, Version, slowBodyBytes)
	if _, err := io.WriteString(conn, head); err != nil {
		return res, fmt.Errorf("slow body: %w", err)
	}
	br := bufio.NewReader(conn)
	for res.sent < slowBodyBytes && time.Now().Before(limit) {
		if _, err := conn.Write([]byte{'x'}); err != nil {
			break // closed by the gateway
		}
		res.sent++
		_ = conn.SetReadDeadline(time.Now().Add(slowByteEvery))
		var ne net.Error
		if _, err := br.Peek(1); !errors.As(err, &ne) || !ne.Timeout() {
			break // an answer, or the connection closed
		}
	}
	_ = conn.SetReadDeadline(limit)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return res, fmt.Errorf("slow body: no answer %v after the request began: %w", time.Since(start).Round(time.Millisecond), err)
	}
	res.answered = time.Since(start)
	res.answer = soak.Answer{Status: resp.StatusCode, Header: resp.Header}
	res.answer.Body, err = io.ReadAll(io.LimitReader(resp.Body, soak.MaxCheckedBody))
	resp.Body.Close()
	if err != nil {
		return res, fmt.Errorf("slow body: reading the answer: %w", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(slowSlack))
	_, err = io.Copy(io.Discard, br)
	// The gateway's end (EOF, or a reset if a byte of ours crossed its
	// close), not this deadline.
	var ne net.Error
	res.closed = !errors.As(err, &ne) || !ne.Timeout()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	sc.hostile.slowCutMin.Store(min(sc.hostile.slowCutMin.Load(), int64(res.answered)))
	storeMax(&sc.hostile.slowCutMax, res.answered)
	return res, nil
}

// sendStuckWebhook raises a KeyExpired event for the API whose webhook
// target hangs, waits for the target to hold a delivery, then raises one
// for the API whose target answers and waits for that webhook. The answer
// is the second API's; why says what went wrong with the deliveries.
func (sc *Scenario) sendStuckWebhook(ctx context.Context, base string, n int64) (a soak.Answer, why, err error) {
	h := sc.hostile
	sc.expiredSent.Add(2)
	if a, err = h.get(ctx, base+"/hostile-stuck/"+strconv.FormatInt(n, 10), "Hostile-Key", hostileStuckKey); err != nil || a.Status != http.StatusUnauthorized {
		return a, nil, err
	}
	if !waitFor(ctx, stuckHeldBound, func() bool { return h.stuck.held.Load() > 0 }) {
		return a, fmt.Errorf("the hanging target held no delivery within %v", stuckHeldBound), ctx.Err()
	}
	path := "/hostile-fine/" + strconv.FormatInt(n, 10)
	raised := time.Now()
	if a, err = h.get(ctx, base+path, "Hostile-Key", hostileFineKey); err != nil || a.Status != http.StatusUnauthorized {
		return a, nil, err
	}
	var at any
	if !waitFor(ctx, fineDeliveryBound, func() bool { at, _ = h.fineSeen.LoadAndDelete(path); return at != nil }) {
		return a, fmt.Errorf("the other API's webhook was not delivered within %v while the target hung (%d held)", fineDeliveryBound, h.stuck.held.Load()), ctx.Err()
	}
	storeMax(&h.deliveryMax, at.(time.Time).Sub(raised))
	return a, nil, nil
}

// reloadAmongHostileFiles puts a named pipe, a symlink to /dev/zero and an
// oversized definition into app_path, reloads through the control API and
// takes them out again. It returns the reload's answer, how long it took
// and the files it put there.
func (sc *Scenario) reloadAmongHostileFiles(ctx context.Context, base string, n int64) (soak.Answer, time.Duration, []string, error) {
	h := sc.hostile
	name := func(what string) string { return filepath.Join(h.appDir, fmt.Sprintf("hostile-%d-%s.json", n, what)) }
	fifo, zero, big := name("fifo"), name("zero"), name("big")
	files := []string{fifo, zero, big}
	defer func() {
		for _, f := range files {
			_ = os.Remove(f)
		}
	}()
	if err := errors.Join(syscall.Mkfifo(fifo, 0o600), os.Symlink("/dev/zero", zero), os.Link(h.big, big)); err != nil {
		return soak.Answer{}, 0, files, fmt.Errorf("hostile files: %w", err)
	}
	start := time.Now()
	a, err := h.get(ctx, base+"/tyk/reload", "X-Tyk-Authorization", sc.secret)
	took := time.Since(start)
	if err == nil {
		storeMax(&h.reloadMax, took)
	}
	return a, took, files, err
}

// get sends GET url with one header and reads the answer.
func (h *hostile) get(ctx context.Context, url, name, value string) (soak.Answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return soak.Answer{}, err
	}
	req.Header.Set(name, value)
	resp, err := h.client.Do(req)
	if err != nil {
		return soak.Answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, soak.MaxCheckedBody))
	return soak.Answer{Status: resp.StatusCode, Header: resp.Header, Body: body}, err
}

// waitFor polls cond every 5 ms until it holds (true), bound passes or ctx
// ends (false).
func waitFor(ctx context.Context, bound time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return cond()
		case <-tick.C:
		}
	}
	return true
}

// storeMax keeps the longer of d and what v holds.
func storeMax(v *atomic.Int64, d time.Duration) { storeMaxInt(v, int64(d)) }

func storeMaxInt(v *atomic.Int64, n int64) {
	for {
		old := v.Load()
		if n <= old || v.CompareAndSwap(old, n) {
			return
		}
	}
}

// hangingTarget is a webhook target that never answers: each request
// waits until the gateway gives up on it (webhookTimeout), or until the
// target is released (while the soak quiesces, and at the end).
type hangingTarget struct {
	*httptest.Server
	arrived, held atomic.Int64
	heldMax       atomic.Int64 // the most it held at once
	mu            sync.Mutex
	release       chan struct{} // closed: answer at once
}

func startHangingTarget() *hangingTarget {
	t := &hangingTarget{release: make(chan struct{})}
	t.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<10))
		t.arrived.Add(1)
		t.mu.Lock()
		release := t.release
		t.mu.Unlock()
		storeMaxInt(&t.heldMax, t.held.Add(1))
		defer t.held.Add(-1)
		select {
		case <-r.Context().Done():
		case <-release:
			w.WriteHeader(http.StatusOK)
		}
	}))
	return t
}

// setReleased makes the target answer at once (true), releasing what it
// holds, or hang again (false).
func (t *hangingTarget) setReleased(released bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-t.release:
		if !released {
			t.release = make(chan struct{})
		}
	default:
		if released {
			close(t.release)
		}
	}
}

// close releases what the target holds and stops it.
func (t *hangingTarget) close() {
	t.setReleased(true)
	t.Close()
}

// hostileNotes are the hostile mode's figures for the summary.
func (sc *Scenario) hostileNotes() []string {
	h := sc.hostile
	var sent []string
	for kind := range hostileOps {
		sent = append(sent, fmt.Sprintf("%d of kind %d", h.sent[kind].Load(), kind+1))
	}
	ms := func(v *atomic.Int64) string { return time.Duration(v.Load()).Round(time.Millisecond).String() }
	slowMin := ms(&h.slowCutMin)
	if h.sent[hostileSlowBody].Load() == 0 || h.slowCutMax.Load() == 0 {
		slowMin = "-"
	}
	hooks := sc.gw.WebhookDeliveries()
	js := sc.gw.JSStats(HostileJSAPIID)
	return []string{
		fmt.Sprintf("hostile: one request in %d was a hostile input (jsvm_memory_limit %d MB, jsvm_timeout %v, read_timeout %v): %s",
			hostileEvery, HostileJSMemoryLimit, hostileJSTimeout, hostileReadTimeout, strings.Join(sent, ", ")),
		fmt.Sprintf("hostile: slow bodies answered after %s to %s; reloads among hostile files took at most %s; the answering target got its webhook at most %s after the event, while the hanging one held up to %d at once (%d arrived there); webhooks dropped in all: %d",
			slowMin, ms(&h.slowCutMax), ms(&h.reloadMax), ms(&h.deliveryMax), h.stuck.heldMax.Load(), h.stuck.arrived.Load(), hooks.Dropped),
		fmt.Sprintf("hostile: since the last reload the doubling middleware ran %d times on %d VMs: %d stopped at the memory limit, %d timed out, %d VMs discarded, %d kept",
			js.Runs, js.VMsCreated, js.MemoryStops, js.Timeouts, js.VMsDiscarded, js.Idle),
	}
}

// quiesceHostile lets the hanging target answer while the soak quiesces,
// so the deliveries it held and those queued behind them end, as they
// would at the target's own timeout; resume makes it hang again.
func (sc *Scenario) quiesceHostile() (resume func()) {
	sc.hostile.stuck.setReleased(true)
	return func() {
		sc.hostile.stuck.CloseClientConnections()
		sc.hostile.fine.CloseClientConnections()
		sc.hostile.stuck.setReleased(false)
	}
}

// closeHostile stops the targets and removes the staged file.
func (h *hostile) close() error {
	if h.stuck != nil {
		h.stuck.close()
	}
	if h.fine != nil {
		h.fine.Close()
	}
	if h.client != nil {
		h.client.CloseIdleConnections()
	}
	if h.stageDir != "" {
		return os.RemoveAll(h.stageDir)
	}
	return nil
}
