package seed

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/tollgate/tollgate/tools/soak/soak"
)

// The mix (Options.Mix): one request in mixEvery is an operation of the
// gateway's life other than a user's request, the kinds taking turns.
const (
	mixEvery = 500
	// mixSlot is where in every mixEvery requests the operation comes: a
	// place no expired key or preflight takes, so the seed's own requests
	// keep their numbers.
	mixSlot = 7
	// churnKeys bounds the names of the keys the mix creates and deletes:
	// the simulated cluster keeps a small record of every key name it has
	// ever seen, which a real Redis does not.
	churnKeys = 64
	// MixAPIID is the api_id of the mix's API, served at /mix/.
	MixAPIID = "soak-mix"
	// mixExpiredKey is a key of the mix's API that has expired.
	mixExpiredKey = "soak-mix-expired"
	// mixDeadTarget is where the mix's API sends its KeyExpired webhooks:
	// a host the scenario's dialer refuses, so every delivery fails.
	mixDeadTarget = "https://dead/expired"
)

// mixJSTimeout is jsvm_timeout with the mix on: a run that spins holds a
// client this long. A reload compiles every API's JS within it too, on a
// machine busy with the load, so it is not much shorter.
const mixJSTimeout = time.Second

// The kinds of operation, in the order they take turns.
const (
	mixGroupReload  = iota // GET /tyk/reload/group: reload, and tell the other gateway
	mixKeyCreate           // POST /tyk/keys/{name}
	mixJSThrow             // JS pre middleware throws: 500
	mixKeyUpdate           // PUT /tyk/keys/{name}
	mixJSSpin              // JS pre middleware spins past jsvm_timeout: 500
	mixWebhookFails        // an expired key: 401, and a webhook to a dead target
	mixKeyDelete           // DELETE /tyk/keys/{name}
	mixDebug               // GET /debug/summary
	mixOps
)

var mixNames = [mixOps]string{"group reloads", "keys created", "JS runs that threw", "keys updated",
	"JS runs past jsvm_timeout", "KeyExpired webhooks to a dead target", "keys deleted", "debug summaries"}

// mixJS is the mix's pre middleware: it throws or spins when asked to.
const mixJS = `var soakMix = new TykJS.TykMiddleware.NewMiddleware({});
soakMix.NewProcessRequest(function(request, session) {
  if (request.Headers["X-Throw"]) { throw new Error("thrown by the soak mix"); }
  if (request.Headers["X-Spin"]) { while (true) {} }
  return soakMix.ReturnData(request, {});
});
`

// mixAPI is the mix's API definition; %s is the path of mixJS.
const mixAPI = `{"api_id": "` + MixAPIID + `", "name": "soak mix", "org_id": "` + seedOrgID + `", "active": true,
  "auth": {"auth_header_name": "mix-key"},
  "proxy": {"listen_path": "/mix/", "target_url": "http://java/mix", "strip_listen_path": true},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default"}}},
  "custom_middleware": {"pre": [{"name": "soakMix", "path": %q}]},
  "event_handlers": {"events": {"KeyExpired": [{"handler_name": "eh_web_hook_handler", "handler_meta": {
    "method": "POST", "target_path": "` + mixDeadTarget + `", "template_path": "default_webhook.json", "event_timeout": 0}}]}}}
`

// writeMixAPI writes the mix's API definition and its JS into dir, the
// gateway's app_path.
func writeMixAPI(dir string) error {
	js := filepath.Join(dir, "soak_mix.js")
	if err := os.WriteFile(js, []byte(mixJS), 0o600); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "soak_mix.json"), fmt.Appendf(nil, mixAPI, js), 0o600); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	return nil
}

// mixRequest is the n-th operation of the mix.
func (sc *Scenario) mixRequest(n int64) soak.Request {
	kind := n % mixOps
	sc.mixed[kind].Add(1)
	admin := http.Header{"X-Tyk-Authorization": {sc.secret}}
	// One key name per turn of every kind, so the turn creates, updates
	// and deletes the same key. Clients run concurrently, so an update or
	// delete may come first: any status is accepted for them.
	churned := fmt.Sprintf("/tyk/keys/soak-churn-%02d", (n/mixOps)%churnKeys)
	session := sessionFor(APIID, "Security", []string{Version}, 0)
	switch kind {
	case mixGroupReload:
		return soak.Request{Method: http.MethodGet, Path: "/tyk/reload/group", Header: admin, Want: http.StatusOK}
	case mixKeyCreate:
		return soak.Request{Method: http.MethodPost, Path: churned, Header: admin, Body: session, Want: http.StatusOK}
	case mixJSThrow:
		return soak.Request{Method: http.MethodGet, Path: "/mix/throw", Header: http.Header{"X-Throw": {"1"}}, Want: http.StatusInternalServerError}
	case mixKeyUpdate:
		return soak.Request{Method: http.MethodPut, Path: churned, Header: admin, Body: session}
	case mixJSSpin:
		return soak.Request{Method: http.MethodGet, Path: "/mix/spin", Header: http.Header{"X-Spin": {"1"}}, Want: http.StatusInternalServerError}
	case mixWebhookFails:
		sc.expiredSent.Add(1)
		return soak.Request{Method: http.MethodGet, Path: "/mix/expired", Header: http.Header{"Mix-Key": {mixExpiredKey}}, Want: http.StatusUnauthorized}
	case mixKeyDelete:
		// The key is stored as its org's token, as Tyk stores a custom key;
		// DELETE finds it from the bare name for the org ?org_id names.
		return soak.Request{Method: http.MethodDelete, Path: churned + "?org_id=" + url.QueryEscape(seedOrgID), Header: admin}
	default:
		return soak.Request{Method: http.MethodGet, Path: "/debug/summary", Header: admin, Want: http.StatusOK}
	}
}

// mixNotes are the mix's figures for the summary.
func (sc *Scenario) mixNotes() []string {
	var sent string
	for kind := range mixOps {
		if kind > 0 {
			sent += ", "
		}
		sent += fmt.Sprintf("%d %s", sc.mixed[kind].Load(), mixNames[kind])
	}
	js := sc.gw.JSStats(MixAPIID)
	other := sc.other.Stats()
	return []string{
		fmt.Sprintf("mix: one request in %d was another operation: ", mixEvery) + sent,
		fmt.Sprintf("mix: since the last reload the mix's JS ran %d times on %d VMs (%d discarded, %d timeouts); the second gateway handled %d notifications and refused %d",
			js.Runs, js.VMsCreated, js.VMsDiscarded, js.Timeouts, other.NotificationsHandled, other.NotificationsRefused),
	}
}
