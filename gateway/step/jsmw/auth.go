package jsmw

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/tollgate/tollgate/gateway/apidef"
	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/gateway/session"
	"github.com/tollgate/tollgate/gateway/step/auth"
)

// authCheck is custom authentication: the API's auth_check middleware
// runs in place of the auth token and either refuses the request (a
// ReturnOverrides code, answered as any middleware's) or returns the
// session the request goes on with:
//
//	return mw.ReturnAuthData(request, {"rate": 100, "per": 1, "quota_max": -1, "access_rights": {}});
//	return {Request: request, Session: session, AuthValue: userID};
//
// That session then passes what a stored key's does (inactive, expired,
// access rights, then granular access, rate limit and quota), but it is
// never stored: it lives for the request only (Call.SessionTransient), so
// a script's session never becomes a key that opens other APIs.
type authCheck struct {
	*middleware
	events chain.Publisher
}

var _ chain.Step = (*authCheck)(nil)

// AuthStep is the API's custom authentication (see authCheck), or nil when
// the API authenticates with the auth token: it has no enabled
// custom_middleware.auth_check, or neither custom_plugin_auth_enabled nor
// enable_coprocess_auth.
func (s *Set) AuthStep(events chain.Publisher) chain.Step {
	if s == nil || s.authCheck == nil {
		return nil
	}
	return &authCheck{middleware: s.authCheck, events: events}
}

// errorLog is the log of a refused request, built only on that path.
func (a *authCheck) errorLog() *slog.Logger {
	return a.log.With("middleware", a.name, "hook", a.hook)
}

func (a *authCheck) Serve(c *chain.Call) bool {
	body, res, ok := a.run(c)
	if !ok {
		return false
	}
	if !apply(c, body, res.Request, a.keepHeaderCase) {
		return false
	}
	if res.Session == nil {
		// Tyk lets such a request through with an empty session, no
		// limits applied; a script that neither refuses nor returns a
		// session is a mistake, and failing closed is the safe reading.
		a.errorLog().Error("custom authentication returned neither a refusal nor a session; refusing the request")
		chain.WriteError(c.W, c.R, http.StatusInternalServerError, chain.CauseJSAuthNoSession, chain.MsgJSAuthNoSession)
		return false
	}
	st := new(session.State)
	err := json.Unmarshal(res.Session, st)
	if err == nil {
		err = st.Validate()
	}
	if err != nil {
		a.errorLog().Error("custom authentication returned a session that cannot be used", "error", err)
		chain.WriteError(c.W, c.R, http.StatusInternalServerError, chain.CauseJSAuthBadSession, chain.MsgJSAuthBadSession)
		return false
	}
	c.Key, c.KeyID, c.Session, c.SessionTransient = res.AuthValue, scriptKeyID(c.API, res.AuthValue), st, true
	// A session without access rights is the script's word for this API,
	// as in Tyk; it is never stored, so it opens nothing else.
	return auth.Admit(c, a.events, true)
}

// scriptKeyID is the id the rate limit and quota count a script's session
// under. Tyk keys such a session by its AuthValue, in the same namespace
// as stored keys, and by the empty key when the script names none, so
// every caller of every such API shares one counter, and a script's
// AuthValue that equals a stored key shares that key's counters. Here the
// AuthValue's callers share counters across the organisation's APIs (as a
// key's are), apart from stored keys; without an AuthValue the API's
// callers share one counter, as in Tyk, but no other API's.
func scriptKeyID(api *apidef.APIDefinition, authValue string) string {
	if authValue == "" {
		return "custom-auth-api-" + api.APIID
	}
	sum := sha256.Sum256([]byte(api.OrgID + "\x00" + authValue))
	return "custom-auth-" + hex.EncodeToString(sum[:16])
}
