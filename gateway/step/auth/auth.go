// Package auth is the chain's auth-token step: it reads the request's key
// (header, query parameter or cookie, as the definition's auth section
// says), loads its session and refuses keys that are missing, unknown,
// inactive, expired or without access to this API version. Expired and
// inactive keys fire a KeyExpired event.
package auth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/tollgate/tollgate/gateway/apidef"
	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/gateway/event"
	"github.com/tollgate/tollgate/gateway/session"
)

// Sessions finds a key's session. Lookup returns, for a key presented to
// an API of orgID, the id its session is stored under and the caller's own
// copy of the session; session.ErrNotFound for an unknown key, any other
// error when the store cannot answer.
type Sessions interface {
	Lookup(ctx context.Context, orgID, key string) (id string, st *session.State, err error)
}

// Options is what the step needs besides the definition.
type Options struct {
	Sessions Sessions
	Events   chain.Publisher
	// AllowMasterKeys lets a key without access_rights call every API.
	AllowMasterKeys bool
	Log             *slog.Logger
}

// step is the auth-token step of one API.
type step struct {
	Options
	headerName string
	paramName  string // "" when use_param is off
	cookieName string // "" when use_cookie is off
}

var _ chain.Step = (*step)(nil)

// New builds the auth-token step from the definition's auth section.
func New(a apidef.AuthConfig, o Options) chain.Step {
	t := &step{Options: o, headerName: a.AuthHeaderName}
	if t.headerName == "" {
		t.headerName = "Authorization"
	}
	if a.UseParam {
		t.paramName = a.ParamName
		if t.paramName == "" {
			t.paramName = t.headerName
		}
	}
	if a.UseCookie {
		t.cookieName = a.CookieName
		if t.cookieName == "" {
			t.cookieName = t.headerName
		}
	}
	return t
}

// key finds the key: the header, overridden by the query parameter, then
// by the cookie, when those are on and present (Tyk's precedence).
func (t *step) key(r *http.Request) string {
	key := stripBearer(r.Header.Get(t.headerName))
	if t.paramName != "" {
		if v := r.URL.Query().Get(t.paramName); v != "" {
			key = v
		}
	}
	if t.cookieName != "" {
		if c, err := r.Cookie(t.cookieName); err == nil && c.Value != "" {
			key = c.Value
		}
	}
	return key
}

func stripBearer(v string) string {
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return strings.TrimSpace(v)
}

func (t *step) Serve(c *chain.Call) bool {
	key := t.key(c.R)
	if key == "" {
		chain.WriteError(c.W, c.R, http.StatusUnauthorized, chain.CauseKeyMissing, chain.MsgKeyMissing)
		return false
	}
	ctx, cancel := c.StoreContext()
	id, st, err := t.Sessions.Lookup(ctx, c.API.OrgID, key)
	cancel()
	switch {
	case errors.Is(err, session.ErrNotFound):
		chain.WriteError(c.W, c.R, http.StatusForbidden, chain.CauseKeyNotAuthorised, chain.MsgKeyNotAuthorised)
		return false
	case err != nil:
		t.Log.Warn("session not loaded", "api_id", c.API.APIID, "key_hash", session.Hash(key), "error", err)
		chain.WriteError(c.W, c.R, http.StatusServiceUnavailable, chain.CauseStorageUnavailable, chain.MsgStorageUnavailable)
		return false
	}
	c.Key, c.KeyID, c.Session = key, id, st
	return Admit(c, t.Events, t.AllowMasterKeys)
}

// Admit applies the checks every session passes, whoever found it (this
// step, or a custom auth_check that returned it), to c.Session: inactive
// keys are refused with 403 and expired ones with 401, both firing
// KeyExpired; then the session must grant the API version (see allows).
// A session without any access rights may call the API only with
// allowAll. On a refusal Admit answers the request and returns false.
func Admit(c *chain.Call, events chain.Publisher, allowAll bool) bool {
	st := c.Session
	if st.IsInactive {
		events.Publish(chain.KeyEvent(c, event.KeyExpired, "Attempted access from inactive key."))
		chain.WriteError(c.W, c.R, http.StatusForbidden, chain.CauseKeyInactive, chain.MsgKeyInactive)
		return false
	}
	if st.Expired(c.Now) {
		events.Publish(chain.KeyEvent(c, event.KeyExpired, "Attempted access from expired key."))
		chain.WriteError(c.W, c.R, http.StatusUnauthorized, chain.CauseKeyExpired, chain.MsgKeyExpired)
		return false
	}
	if !allows(st, c.API, c.Version, allowAll) {
		chain.WriteError(c.W, c.R, http.StatusForbidden, chain.CauseKeyNotAuthorised, chain.MsgKeyNotAuthorised)
		return false
	}
	return true
}

// allows applies access_rights as Tyk's AccessRightsCheck does: the API
// must be listed; on a versioned API the version too, so an entry with no
// versions grants none of them. A key without any access rights may call
// every API only with allowAll: allow_master_keys for stored keys (Tyk lets
// it through whenever it exists, though its control API creates none
// without that setting).
func allows(st *session.State, api *apidef.APIDefinition, version string, allowAll bool) bool {
	if len(st.AccessRights) == 0 {
		return allowAll
	}
	ad, ok := st.AccessRights[api.APIID]
	if !ok {
		return false
	}
	if api.VersionData.NotVersioned || len(api.VersionData.Versions) == 0 {
		return true
	}
	return slices.Contains(ad.Versions, version)
}
