package gateway

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"

	"github.com/tollgate/tollgate/gateway/event"
	"github.com/tollgate/tollgate/gateway/session"
)

// authToken reads the request's key, loads its session and refuses keys
// that are missing, unknown, inactive, expired or without access to this
// API version. Expired and inactive keys fire a KeyExpired event.
type authToken struct {
	gw         *Gateway
	headerName string
	paramName  string // "" when use_param is off
	cookieName string // "" when use_cookie is off
}

var _ step = (*authToken)(nil)

func newAuthToken(gw *Gateway, a AuthConfig) *authToken {
	t := &authToken{gw: gw, headerName: a.AuthHeaderName}
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
func (t *authToken) key(r *http.Request) string {
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

func (t *authToken) serve(c *call) bool {
	if c.ignored {
		return true
	}
	key := t.key(c.r)
	if key == "" {
		writeError(c.w, http.StatusUnauthorized, CauseKeyMissing, msgKeyMissing)
		return false
	}
	st, err := t.gw.loadSession(c.r, key)
	switch {
	case errors.Is(err, session.ErrNotFound):
		writeError(c.w, http.StatusForbidden, CauseKeyNotAuthorised, msgKeyNotAuthorised)
		return false
	case err != nil:
		t.gw.log.Warn("session not loaded", "api_id", c.api.def.APIID, "key_hash", session.Hash(key), "error", err)
		writeError(c.w, http.StatusServiceUnavailable, CauseStorageUnavailable, msgStorageUnavailable)
		return false
	}
	c.key, c.keyID, c.session = key, t.gw.sessions.ID(key), st
	if st.IsInactive {
		t.fireKeyExpired(c, "Attempted access from inactive key.")
		writeError(c.w, http.StatusForbidden, CauseKeyInactive, msgKeyInactive)
		return false
	}
	if st.Expired(c.now) {
		t.fireKeyExpired(c, "Attempted access from expired key.")
		writeError(c.w, http.StatusUnauthorized, CauseKeyExpired, msgKeyExpired)
		return false
	}
	if !t.gw.allows(st, c.api.def.APIID, c.version.name) {
		writeError(c.w, http.StatusForbidden, CauseKeyNotAuthorised, msgKeyNotAuthorised)
		return false
	}
	return true
}

// fireKeyExpired publishes a KeyExpired event; a full event queue drops it
// rather than hold the request.
func (t *authToken) fireKeyExpired(c *call, msg string) {
	dump, _ := httputil.DumpRequest(c.r, false)
	t.gw.events.Publish(event.Event{
		Type:      event.KeyExpired,
		APIID:     c.api.def.APIID,
		TimeStamp: c.now,
		Meta: event.KeyFailureMeta{
			Message:            msg,
			Path:               c.r.URL.Path,
			Origin:             clientIP(c.r),
			Key:                c.key,
			OriginatingRequest: base64.StdEncoding.EncodeToString(bytes.TrimSpace(dump)),
		},
	})
}

// clientIP is the caller's address: X-Real-IP, else the first
// X-Forwarded-For entry, else the connection's address.
func clientIP(r *http.Request) string {
	if ip := r.Header.Get("X-Real-Ip"); ip != "" {
		return ip
	}
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		first, _, _ := strings.Cut(xff, ",")
		return strings.TrimSpace(first)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// loadSession returns key's session from the local cache or Redis. The
// session returned is the caller's own copy.
func (g *Gateway) loadSession(r *http.Request, key string) (*session.State, error) {
	id := g.sessions.ID(key)
	if st, ok := g.cache.Get(id); ok {
		return st, nil
	}
	st, err := g.sessions.Load(r.Context(), id)
	if err != nil {
		return nil, err
	}
	g.cache.Put(id, st)
	return st, nil
}

// allows applies access_rights; a key without any may call every API only
// when allow_master_keys is on.
func (g *Gateway) allows(st *session.State, apiID, version string) bool {
	if len(st.AccessRights) == 0 {
		return g.cfg.AllowMasterKeys
	}
	return st.Allows(apiID, version)
}

// writeSession stores a session that JS middleware changed, once per
// request, with the session's own lifetime; a failure is logged, not
// answered: the request itself was valid.
func (g *Gateway) writeSession(c *call) {
	ctx := c.r.Context()
	if err := g.sessions.Save(ctx, c.keyID, c.session, time.Duration(c.session.SessionLifetime)*time.Second); err != nil {
		g.log.Warn("session changes not stored", "api_id", c.api.def.APIID, "key_hash", c.keyHash(), "error", err)
		g.cache.Forget(c.keyID)
		return
	}
	g.cache.Put(c.keyID, c.session)
}
