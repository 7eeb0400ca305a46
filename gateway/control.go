package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/gateway/session"
)

// controlPrefix is where the control API lives.
const controlPrefix = "/tyk/"

// controlAuthHeader carries tyk.conf's secret.
const controlAuthHeader = "X-Tyk-Authorization"

// maxControlBody bounds a control API request body.
const maxControlBody = 1 << 20

// Causes of control API errors.
const (
	CauseControlDisabled     Cause = "control_api_disabled"
	CauseControlUnauthorised Cause = "control_api_unauthorised"
	CauseControlBadRequest   Cause = "control_api_bad_request"
	CauseControlNotFound     Cause = "control_api_not_found"
	CauseControlMethod       Cause = "control_api_method_not_allowed"
)

// controlReply is Tyk's control API reply shape.
type controlReply struct {
	Key     string `json:"key,omitempty"`
	KeyHash string `json:"key_hash,omitempty"`
	Status  string `json:"status"`
	Action  string `json:"action,omitempty"`
	Message string `json:"message,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func controlError(w http.ResponseWriter, status int, cause Cause, msg string) {
	w.Header().Set(CauseHeader, string(cause))
	writeJSON(w, status, controlReply{Status: "error", Message: msg})
}

// serveControl answers the control API under /tyk/. Every call needs
// X-Tyk-Authorization equal to tyk.conf's secret; with no secret set the
// control API is off.
func (g *Gateway) serveControl(w http.ResponseWriter, r *http.Request) {
	if !g.administrator(w, r, "The control API is disabled") {
		return
	}
	path := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, controlPrefix), "/")
	switch {
	case path == "reload":
		g.controlReload(w, r)
	case path == "reload/group":
		g.controlGroupReload(w, r)
	case path == "apis":
		g.controlAPIs(w, r, "")
	case strings.HasPrefix(path, "apis/"):
		g.controlAPIs(w, r, strings.TrimPrefix(path, "apis/"))
	case path == "keys/create":
		if r.Method != http.MethodPost {
			controlError(w, http.StatusMethodNotAllowed, CauseControlMethod, "Method not supported: use POST")
			return
		}
		g.controlSaveKey(w, r, "", true)
	case strings.HasPrefix(path, "keys/") && !strings.Contains(path[len("keys/"):], "/"):
		g.controlKey(w, r, path[len("keys/"):])
	case strings.HasPrefix(path, "cache/"):
		g.controlPurgeCache(w, r, strings.TrimPrefix(path, "cache/"))
	default:
		controlError(w, http.StatusNotFound, CauseControlNotFound, "No control API endpoint at this path")
	}
}

func (g *Gateway) controlReload(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		controlError(w, http.StatusMethodNotAllowed, CauseControlMethod, "Method not supported: use GET")
		return
	}
	err := g.Reload()
	var fileErrs *DefinitionErrors
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, controlReply{Status: "ok"})
	case errors.As(err, &fileErrs):
		// Reloaded; some files were left out.
		writeJSON(w, http.StatusOK, controlReply{Status: "ok", Message: err.Error()})
	default:
		controlError(w, http.StatusInternalServerError, CauseControlBadRequest, "Reload failed, the APIs being served stay: "+err.Error())
	}
}

func (g *Gateway) controlAPIs(w http.ResponseWriter, r *http.Request, apiID string) {
	if r.Method != http.MethodGet {
		controlError(w, http.StatusMethodNotAllowed, CauseControlMethod, "Method not supported: use GET")
		return
	}
	var list []json.RawMessage
	for _, def := range g.APIs() {
		if apiID != "" && def.APIID != apiID {
			continue
		}
		raw := def.raw
		if raw == nil {
			raw, _ = json.Marshal(def)
		}
		list = append(list, raw)
	}
	if apiID != "" {
		if len(list) == 0 {
			controlError(w, http.StatusNotFound, CauseControlNotFound, "API not found")
			return
		}
		writeJSON(w, http.StatusOK, list[0])
		return
	}
	if list == nil {
		list = []json.RawMessage{}
	}
	writeJSON(w, http.StatusOK, list)
}

// controlKey serves /tyk/keys/{key}. With ?hashed=true the path names the
// key's hash (as logged and stored with hash_keys) instead of the key.
func (g *Gateway) controlKey(w http.ResponseWriter, r *http.Request, key string) {
	if key == "" {
		controlError(w, http.StatusNotFound, CauseControlNotFound, "Key not found")
		return
	}
	switch r.Method {
	case http.MethodGet:
		g.controlGetKey(w, r, key)
	case http.MethodPost, http.MethodPut:
		g.controlSaveKey(w, r, key, r.Method == http.MethodPost)
	case http.MethodDelete:
		g.controlDeleteKey(w, r, key)
	default:
		controlError(w, http.StatusMethodNotAllowed, CauseControlMethod, "Method not supported: use GET, POST, PUT or DELETE")
	}
}

// keyID is the stored name of the key in a control API path.
func (g *Gateway) keyID(r *http.Request, key string) string {
	if r.URL.Query().Get("hashed") == "true" {
		return key
	}
	return g.sessions.ID(key)
}

func (g *Gateway) controlGetKey(w http.ResponseWriter, r *http.Request, key string) {
	id := g.keyID(r, key)
	st, err := g.sessions.Load(r.Context(), id)
	if !g.keyStoreOK(w, err) {
		return
	}
	if st.QuotaMax > 0 {
		if q, err := g.quota.Peek(r.Context(), id, st.QuotaMax); err == nil {
			st.QuotaRemaining = q.Remaining
			if !q.Renews.IsZero() {
				st.QuotaRenews = q.Renews.Unix()
			}
		}
	}
	writeJSON(w, http.StatusOK, st)
}

// keyStoreOK answers the error of a session read, if any.
func (g *Gateway) keyStoreOK(w http.ResponseWriter, err error) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, session.ErrNotFound):
		controlError(w, http.StatusNotFound, CauseControlNotFound, "Key not found")
	default:
		g.log.Warn("control API: key store unavailable", "error", err)
		controlError(w, http.StatusServiceUnavailable, CauseStorageUnavailable, msgStorageUnavailable)
	}
	return false
}

// controlSaveKey creates (POST) or updates (PUT) a key. Without
// ?suppress_reset=1 the key's quota and rate-limit counters start afresh
// and last_updated is set; with it the session is stored as given.
func (g *Gateway) controlSaveKey(w http.ResponseWriter, r *http.Request, key string, create bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxControlBody))
	if err != nil {
		controlError(w, http.StatusBadRequest, CauseControlBadRequest, "Request malformed: "+err.Error())
		return
	}
	var st session.State
	if _, err := decodeStrict(body, &st); err != nil {
		controlError(w, http.StatusBadRequest, CauseControlBadRequest, "Request malformed: "+err.Error())
		return
	}
	if key == "" {
		key, err = newKey(st.OrgID)
		if err != nil {
			controlError(w, http.StatusInternalServerError, CauseStorageUnavailable, "generating a key: "+err.Error())
			return
		}
	}
	id := g.sessions.ID(key)
	reset := r.URL.Query().Get("suppress_reset") != "1"
	if err := g.saveKey(r.Context(), id, &st, reset, create); err != nil {
		g.keyStoreOK(w, err)
		return
	}
	action := "modified"
	if create {
		action = "added"
	}
	if !create {
		g.keyChanged(r.Context(), id)
	}
	reply := controlReply{Key: key, Status: "ok", Action: action}
	if g.cfg.HashKeys {
		reply.KeyHash = id
	}
	writeJSON(w, http.StatusOK, reply)
}

// saveKey stores a key's session as the control API and TykSetKeyData do.
// An update (create false) needs the key to exist. With reset, the key's
// quota and rate-limit counters start afresh and last_updated is set. The
// gateway's cached copy is replaced.
func (g *Gateway) saveKey(ctx context.Context, id string, st *session.State, reset, create bool) error {
	if !create {
		if _, err := g.sessions.Load(ctx, id); err != nil {
			return err
		}
	}
	now := g.now()
	if reset {
		st.LastUpdated = strconv.FormatInt(now.Unix(), 10)
		st.QuotaRemaining = st.QuotaMax
		if st.QuotaRenewalRate > 0 {
			st.QuotaRenews = now.Add(time.Duration(st.QuotaRenewalRate) * time.Second).Unix()
		}
		if err := g.resetCounters(ctx, id); err != nil {
			return err
		}
	}
	if st.DateCreated == "" && create {
		st.DateCreated = now.UTC().Format(time.RFC3339)
	}
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encoding session: %w", err)
	}
	lifetime := time.Duration(st.SessionLifetime) * time.Second
	// A session without a lifetime that is exactly what this gateway last
	// stored needs no write: JS that refreshes a session on every request
	// (the seed's refreshSecurity.js) changes it once a second, not once a
	// request. A lifetime is a TTL the write would renew, so it always
	// writes.
	if !reset && lifetime == 0 {
		if last, ok := g.cache.Stored(id); ok && bytes.Equal(last, data) {
			return nil
		}
	}
	if err := g.sessions.SaveJSON(ctx, id, data, lifetime); err != nil {
		g.cache.Forget(id)
		return err
	}
	g.cache.PutStored(id, st, data)
	return nil
}

// resetCounters starts a key's quota and rate-limit state afresh.
func (g *Gateway) resetCounters(ctx context.Context, id string) error {
	if err := g.quota.Reset(ctx, id); err != nil {
		return fmt.Errorf("%w: %w", session.ErrUnavailable, err)
	}
	if err := g.windows[0].Reset(ctx, id); err != nil {
		return fmt.Errorf("%w: %w", session.ErrUnavailable, err)
	}
	return nil
}

func (g *Gateway) controlDeleteKey(w http.ResponseWriter, r *http.Request, key string) {
	id := g.keyID(r, key)
	found, err := g.sessions.Delete(r.Context(), id)
	if !g.keyStoreOK(w, err) {
		return
	}
	g.cache.Forget(id)
	g.keyChanged(r.Context(), id)
	if !found {
		controlError(w, http.StatusNotFound, CauseControlNotFound, "Key not found")
		return
	}
	writeJSON(w, http.StatusOK, controlReply{Key: key, Status: "ok", Action: "deleted"})
}

// administrator checks that r carries tyk.conf's secret in
// X-Tyk-Authorization (compared in constant time), and answers 403 when it
// does not or when no secret is set (then with disabled, which names what
// is refused).
func (g *Gateway) administrator(w http.ResponseWriter, r *http.Request, disabled string) bool {
	if g.cfg.Secret == "" {
		controlError(w, http.StatusForbidden, CauseControlDisabled, disabled+": tyk.conf has no secret")
		return false
	}
	given := r.Header.Get(controlAuthHeader)
	if subtle.ConstantTimeCompare([]byte(given), []byte(g.cfg.Secret)) != 1 {
		controlError(w, http.StatusForbidden, CauseControlUnauthorised, "Attempted administrative access with invalid or missing key!")
		return false
	}
	return true
}

// newKey makes a key as Tyk does: the org id followed by 32 random hex
// characters.
func newKey(orgID string) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return orgID + hex.EncodeToString(b[:]), nil
}
