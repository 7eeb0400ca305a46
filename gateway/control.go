package gateway

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/gateway/apidef"
	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/gateway/limit"
	"github.com/tollgate/tollgate/gateway/notify"
	"github.com/tollgate/tollgate/gateway/session"
	"github.com/tollgate/tollgate/gateway/step/cache"
)

// controlPrefix is where the control API lives.
const controlPrefix = "/tyk/"

// controlAuthHeader carries tyk.conf's secret.
const controlAuthHeader = "X-Tyk-Authorization"

// maxControlBody bounds a control API request body.
const maxControlBody = 1 << 20

// The control API: every endpoint under /tyk/ is here.

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
			chain.WriteControlError(w, http.StatusMethodNotAllowed, chain.CauseControlMethod, "Method not supported: use POST")
			return
		}
		g.controlSaveKey(w, r, "", true)
	case path == "keys":
		g.controlListKeys(w, r)
	case strings.HasPrefix(path, "keys/") && !strings.Contains(path[len("keys/"):], "/"):
		g.controlKey(w, r, path[len("keys/"):])
	case strings.HasPrefix(path, "cache/"):
		g.controlPurgeCache(w, r, strings.TrimPrefix(path, "cache/"))
	default:
		chain.WriteControlError(w, http.StatusNotFound, chain.CauseControlNotFound, chain.MsgControlNotFound)
	}
}

func (g *Gateway) controlReload(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		chain.WriteControlError(w, http.StatusMethodNotAllowed, chain.CauseControlMethod, "Method not supported: use GET")
		return
	}
	err := g.Reload()
	switch outcomeOf(err) {
	case reloadedAll:
		chain.WriteJSON(w, http.StatusOK, chain.ControlReply{Status: "ok"})
	case reloadedPartly:
		chain.WriteJSON(w, http.StatusOK, chain.ControlReply{Status: "ok", Message: err.Error()})
	case reloadFailed:
		chain.WriteControlError(w, http.StatusInternalServerError, chain.CauseControlBadRequest, "Reload failed, the APIs being served stay: "+err.Error())
	}
}

// controlGroupReload serves GET /tyk/reload/group: this gateway reloads,
// then tells every other one to.
func (g *Gateway) controlGroupReload(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		chain.WriteControlError(w, http.StatusMethodNotAllowed, chain.CauseControlMethod, "Method not supported: use GET")
		return
	}
	if err := g.Reload(); outcomeOf(err) == reloadFailed {
		chain.WriteControlError(w, http.StatusInternalServerError, chain.CauseControlBadRequest, "Reload failed, the APIs being served stay: "+err.Error())
		return
	}
	if err := g.notify.Publish(r.Context(), notify.GroupReload, ""); err != nil {
		chain.WriteControlError(w, http.StatusServiceUnavailable, chain.CauseStorageUnavailable, "Reloaded this gateway, but the others could not be told: "+err.Error())
		return
	}
	chain.WriteJSON(w, http.StatusOK, chain.ControlReply{Status: "ok"})
}

// controlAPIs serves /tyk/apis and /tyk/apis/{id}: GET lists or shows
// the definitions being served; POST, PUT and DELETE manage the files of
// app_path as Tyk OSS does, and take effect at the next reload.
func (g *Gateway) controlAPIs(w http.ResponseWriter, r *http.Request, apiID string) {
	switch {
	case r.Method == http.MethodPost && apiID == "":
		g.controlWriteAPI(w, r, "")
		return
	case r.Method == http.MethodPut && apiID != "":
		g.controlWriteAPI(w, r, apiID)
		return
	case r.Method == http.MethodDelete && apiID != "":
		g.controlDeleteAPI(w, r, apiID)
		return
	case r.Method == http.MethodPut:
		chain.WriteControlError(w, http.StatusBadRequest, chain.CauseControlBadRequest, "Must specify an apiID to update")
		return
	case r.Method == http.MethodDelete:
		chain.WriteControlError(w, http.StatusBadRequest, chain.CauseControlBadRequest, "Must specify an apiID to delete")
		return
	case r.Method != http.MethodGet:
		chain.WriteControlError(w, http.StatusMethodNotAllowed, chain.CauseControlMethod, "Method not supported: use GET, POST, PUT or DELETE")
		return
	}
	var list []json.RawMessage
	for _, def := range g.APIs() {
		if apiID != "" && def.APIID != apiID {
			continue
		}
		raw := def.RawJSON()
		if raw == nil {
			raw, _ = json.Marshal(def)
		}
		list = append(list, raw)
	}
	if apiID != "" {
		if len(list) == 0 {
			chain.WriteControlError(w, http.StatusNotFound, chain.CauseControlNotFound, "API not found")
			return
		}
		chain.WriteJSON(w, http.StatusOK, list[0])
		return
	}
	if list == nil {
		list = []json.RawMessage{}
	}
	chain.WriteJSON(w, http.StatusOK, list)
}

// controlKey serves /tyk/keys/{key}. A custom key is stored as Tyk stores
// it, as the token of its org and name (see controlSaveKey), and is named
// in the path either by that token or by its bare name (see locateKey).
// With ?hashed=true (any value, as in Tyk) the path names the key's stored
// id instead: its hash with hash_keys, as returned in key_hash.
func (g *Gateway) controlKey(w http.ResponseWriter, r *http.Request, key string) {
	if key == "" {
		chain.WriteControlError(w, http.StatusNotFound, chain.CauseControlNotFound, "Key not found")
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
		chain.WriteControlError(w, http.StatusMethodNotAllowed, chain.CauseControlMethod, "Method not supported: use GET, POST, PUT or DELETE")
	}
}

// locateKey finds the key a control API path names, as Tyk's
// SessionDetail does for the org orgID: with ?hashed the path is the id
// the session is stored under (the key's hash with hash_keys, the key
// itself without); otherwise it is the key, or the bare name of a custom
// key of orgID, which is stored as its token (see session.Store.Locate).
// found.Key is the key Tyk answers: the token, or the id given by hash.
func (g *Gateway) locateKey(ctx context.Context, r *http.Request, key, orgID string) (*session.State, session.Found, error) {
	if r.URL.Query().Get("hashed") != "" {
		st, err := g.sessions.store.Load(ctx, key)
		return st, session.Found{Key: key, ID: key}, err
	}
	return g.sessions.store.Locate(ctx, orgID, key)
}

// controlGetKey answers GET /tyk/keys/{key}. A custom key named by its bare
// name is found for the org of the API ?api_id names, else for ?org_id, as
// in Tyk; with neither, only by its token (or when it has no org).
func (g *Gateway) controlGetKey(w http.ResponseWriter, r *http.Request, key string) {
	q := r.URL.Query()
	if q.Get("hashed") != "" && !g.cfg.HashKeys {
		chain.WriteControlError(w, http.StatusBadRequest, chain.CauseControlBadRequest, "Key requested by hash but key hashing is not enabled")
		return
	}
	orgID := q.Get("org_id")
	if def := g.servedAPI(q.Get("api_id")); def != nil {
		orgID = def.OrgID
	}
	st, found, err := g.locateKey(r.Context(), r, key, orgID)
	if !g.keyStoreOK(w, err, "Key not found") {
		return
	}
	if st.QuotaMax > 0 {
		if q, err := g.quota.Peek(r.Context(), found.ID, st.QuotaMax); err == nil {
			st.QuotaRemaining = q.Remaining
			if !q.Renews.IsZero() {
				st.QuotaRenews = q.Renews.Unix()
			}
		}
	}
	chain.WriteJSON(w, http.StatusOK, st)
}

// keyStoreOK answers the error of a session read, if any: 404 with
// notFound (Tyk's message differs by verb) or 503.
func (g *Gateway) keyStoreOK(w http.ResponseWriter, err error, notFound string) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, session.ErrNotFound):
		chain.WriteControlError(w, http.StatusNotFound, chain.CauseControlNotFound, notFound)
	default:
		g.log.Warn("control API: key store unavailable", "error", err)
		chain.WriteControlError(w, http.StatusServiceUnavailable, chain.CauseStorageUnavailable, chain.MsgStorageUnavailable)
	}
	return false
}

// controlSaveKey creates (POST) or updates (PUT) a key. Without
// ?suppress_reset=1 the key's quota and rate-limit counters start afresh
// and last_updated is set; with it the session is stored as given.
//
// A key is created as Tyk's generateToken makes it of the session's org_id
// and the name in the path (a random one for /tyk/keys/create): with
// hash_key_function, the token {"org","id","h"}; without, org_id + name,
// which is the bare name for a session of no org. The reply's key is that
// token, the key clients present. An update finds the key for the
// session's org_id (see locateKey) and rewrites it where it is stored.
func (g *Gateway) controlSaveKey(w http.ResponseWriter, r *http.Request, key string, create bool) {
	body, ok := readControlBody(w, r)
	if !ok {
		return
	}
	var st session.State
	if _, err := apidef.DecodeStrict(body, &st); err != nil {
		chain.WriteControlError(w, http.StatusBadRequest, chain.CauseControlBadRequest, "Request malformed: "+err.Error())
		return
	}
	if err := st.Validate(); err != nil {
		chain.WriteControlError(w, http.StatusBadRequest, chain.CauseControlBadRequest, "Request malformed: "+err.Error())
		return
	}
	if create && key != "" {
		if min := session.MinTokenLength(g.cfg.MinTokenLength); len(key) < min {
			chain.WriteControlError(w, http.StatusBadRequest, chain.CauseControlBadRequest, fmt.Sprintf(
				"custom key ID length %d is less than min_token_length (%d); the key would be unreachable at auth time. Use an ID of at least min_token_length characters, or lower min_token_length in the gateway configuration.",
				len(key), min))
			return
		}
		if reason := limit.CollidingID(key); reason != "" {
			chain.WriteControlError(w, http.StatusBadRequest, chain.CauseControlBadRequest, fmt.Sprintf(
				"custom key ID %q %s: the Redis keys of its rate limit would be another key's (Tyk's names for them do not tell the two apart). Choose an ID without it.", key, reason))
			return
		}
	}
	if create && key == "" && len(st.AccessRights) == 0 && !g.cfg.AllowMasterKeys {
		chain.WriteControlError(w, http.StatusBadRequest, chain.CauseControlBadRequest, "Failed to create key, keys must have at least one Access Rights record set.")
		return
	}
	var (
		found session.Found
		old   *session.State
	)
	if create {
		token, err := g.sessions.store.GenerateKey(st.OrgID, key)
		if err != nil {
			chain.WriteControlError(w, http.StatusInternalServerError, chain.CauseStorageUnavailable, "generating a key: "+err.Error())
			return
		}
		found = session.Found{Key: token, ID: g.sessions.store.ID(token)}
	} else {
		var err error
		if old, found, err = g.locateKey(r.Context(), r, key, st.OrgID); !g.keyStoreOK(w, err, "Key is not found") {
			return
		}
	}
	// An expiry already past is dropped, as Tyk drops it: a new key gets
	// none, an updated one keeps the expiry it had.
	if st.Expires > 1 && g.now().After(time.Unix(st.Expires, 0)) {
		st.Expires = 0
		if old != nil {
			st.Expires = old.Expires
		}
	}
	reset := r.URL.Query().Get("suppress_reset") != "1"
	if err := g.saveKey(r.Context(), found.ID, &st, reset, create); err != nil {
		g.keyStoreOK(w, err, "Key is not found")
		return
	}
	action := "modified"
	if create {
		action = "added"
	}
	reply := chain.ControlReply{Key: found.Key, Status: "ok", Action: action}
	if g.cfg.HashKeys && create {
		reply.KeyHash = found.ID
	}
	chain.WriteJSON(w, http.StatusOK, reply)
}

// controlDeleteKey answers DELETE /tyk/keys/{key}: a custom key named by
// its bare name is found for ?org_id (not ?api_id's org, as in Tyk).
// ?hashed needs no hash_keys here, as in Tyk: without it the stored id is
// the key itself.
func (g *Gateway) controlDeleteKey(w http.ResponseWriter, r *http.Request, key string) {
	_, found, err := g.locateKey(r.Context(), r, key, r.URL.Query().Get("org_id"))
	if !g.keyStoreOK(w, err, "There is no such key found") {
		return
	}
	deleted, err := g.sessions.store.Delete(r.Context(), found.ID)
	if !g.keyStoreOK(w, err, "There is no such key found") {
		return
	}
	// The key's quota and rate-limit state go with it, as Tyk resets the
	// quota on DELETE, so a key created again under the same name starts
	// afresh.
	if err := g.resetCounters(r.Context(), found.ID); err != nil {
		g.log.Warn("control API: a deleted key's quota and rate-limit state not reset", "error", err)
	}
	g.sessions.cache.Forget(found.ID)
	g.keyChanged(r.Context(), found.ID)
	if !deleted {
		chain.WriteControlError(w, http.StatusNotFound, chain.CauseControlNotFound, "There is no such key found")
		return
	}
	chain.WriteJSON(w, http.StatusOK, chain.ControlReply{Key: found.Key, Status: "ok", Action: "deleted"})
}

// administrator checks that r carries tyk.conf's secret in
// X-Tyk-Authorization (compared in constant time), and answers 403 when it
// does not or when no secret is set (then with disabled, which names what
// is refused).
func (g *Gateway) administrator(w http.ResponseWriter, r *http.Request, disabled string) bool {
	if g.cfg.Secret == "" {
		chain.WriteControlError(w, http.StatusForbidden, chain.CauseControlDisabled, disabled+": tyk.conf has no secret")
		return false
	}
	if !g.hasSecret(r) {
		chain.WriteControlError(w, http.StatusForbidden, chain.CauseControlUnauthorised, chain.MsgControlForbidden)
		return false
	}
	return true
}

// hasSecret tells whether r carries tyk.conf's secret in
// X-Tyk-Authorization, compared in constant time; never with no secret set.
func (g *Gateway) hasSecret(r *http.Request) bool {
	return g.cfg.Secret != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get(controlAuthHeader)), []byte(g.cfg.Secret)) == 1
}

// controlPurgeCache answers DELETE /tyk/cache/{api_id}: every cached
// response of the API is deleted, on every node.
func (g *Gateway) controlPurgeCache(w http.ResponseWriter, r *http.Request, apiID string) {
	if r.Method != http.MethodDelete {
		chain.WriteControlError(w, http.StatusMethodNotAllowed, chain.CauseControlMethod, "Method not supported: use DELETE")
		return
	}
	if apiID == "" || strings.Contains(apiID, "/") {
		chain.WriteControlError(w, http.StatusNotFound, chain.CauseControlNotFound, chain.MsgControlNotFound)
		return
	}
	n, err := cache.Purge(r.Context(), g.store.Client, apiID)
	if err != nil {
		g.log.Warn("control API: cache not purged, store unavailable", "api_id", apiID, "deleted", n, "error", err)
		chain.WriteControlError(w, http.StatusServiceUnavailable, chain.CauseStorageUnavailable, chain.MsgStorageUnavailable)
		return
	}
	g.log.Info("cache purged", "api_id", apiID, "deleted", n)
	chain.WriteJSON(w, http.StatusOK, chain.ControlReply{Status: "ok", Action: "deleted"})
}

// servedAPI is the definition of apiID being served, or nil.
func (g *Gateway) servedAPI(apiID string) *apidef.APIDefinition {
	for _, def := range g.APIs() {
		if def.APIID == apiID {
			return def
		}
	}
	return nil
}

// validAPIID tells whether an api_id can name a file in app_path: no path
// separators, no dot names, no NUL, at most 200 bytes.
func validAPIID(id string) bool {
	return id != "" && id != "." && id != ".." && len(id) <= 200 &&
		!strings.ContainsAny(id, "/\\\x00")
}

// controlWriteAPI serves POST /tyk/apis (a new definition; a missing
// api_id is generated) and PUT /tyk/apis/{id} (a definition being served,
// whose body must carry the same api_id). The definition is checked as a
// file of app_path would be, then written: a new one to <api_id>.json, an
// updated one over the file it was loaded from (Tyk writes <api_id>.json,
// which leaves two files with one api_id when it came from another). It
// is served from the next reload (/tyk/reload), as in Tyk.
func (g *Gateway) controlWriteAPI(w http.ResponseWriter, r *http.Request, pathID string) {
	body, ok := readControlBody(w, r)
	if !ok {
		return
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		chain.WriteControlError(w, http.StatusBadRequest, chain.CauseControlBadRequest, "Request malformed: "+err.Error())
		return
	}
	var idInBody string
	if raw, ok := fields["api_id"]; ok {
		_ = json.Unmarshal(raw, &idInBody)
	}
	file := ""
	if pathID != "" {
		current := g.servedAPI(pathID)
		if current == nil {
			chain.WriteControlError(w, http.StatusNotFound, chain.CauseControlNotFound, "API not found")
			return
		}
		if idInBody != pathID {
			chain.WriteControlError(w, http.StatusBadRequest, chain.CauseControlBadRequest, "Request APIID does not match that in Definition! For Update operations these must match.")
			return
		}
		file = current.File()
	} else if idInBody == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		idInBody = hex.EncodeToString(b[:])
		fields["api_id"], _ = json.Marshal(idInBody)
		body, _ = json.MarshalIndent(fields, "", "  ")
	}
	if !validAPIID(idInBody) {
		chain.WriteControlError(w, http.StatusBadRequest, chain.CauseControlBadRequest, "Invalid API ID")
		return
	}
	if _, _, err := apidef.ParseAPIDefinition(body); err != nil {
		chain.WriteControlError(w, http.StatusBadRequest, chain.CauseControlBadRequest, "Request malformed: "+err.Error())
		return
	}
	if file == "" {
		file = filepath.Join(g.cfg.AppDir(), idInBody+".json")
	}
	if err := writeFileAtomic(file, body); err != nil {
		g.log.Error("control API: API definition not written", "file", file, "error", err)
		chain.WriteControlError(w, http.StatusInternalServerError, chain.CauseControlBadRequest, "file object creation failed, write error")
		return
	}
	action := "added"
	if pathID != "" {
		action = "modified"
	}
	g.log.Info("control API: API definition written; served from the next reload", "api_id", idInBody, "file", file, "action", action)
	chain.WriteJSON(w, http.StatusOK, chain.ControlReply{Key: idInBody, Status: "ok", Action: action})
}

// controlDeleteAPI serves DELETE /tyk/apis/{id}: the file the API was
// loaded from is removed; the API is served until the next reload.
func (g *Gateway) controlDeleteAPI(w http.ResponseWriter, r *http.Request, apiID string) {
	def := g.servedAPI(apiID)
	if def == nil || def.File() == "" {
		chain.WriteControlError(w, http.StatusNotFound, chain.CauseControlNotFound, "API not found")
		return
	}
	if err := os.Remove(def.File()); err != nil {
		g.log.Error("control API: API definition not deleted", "file", def.File(), "error", err)
		chain.WriteControlError(w, http.StatusInternalServerError, chain.CauseControlBadRequest, "Delete failed")
		return
	}
	g.log.Info("control API: API definition deleted; served until the next reload", "api_id", apiID, "file", def.File())
	chain.WriteJSON(w, http.StatusOK, chain.ControlReply{Key: apiID, Status: "ok", Action: "deleted"})
}

// writeFileAtomic writes data to path through a temporary file in the
// same folder, so a reload never reads half a definition.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tollgate-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// controlListKeys serves GET /tyk/keys: the ids of the stored sessions,
// as Tyk lists them ({"keys": [...]}): the keys themselves (a custom key
// as its token), their hashes with hash_keys, which lists only when
// enable_hashed_keys_listing is on. As in Tyk, ?filter=<org id> keeps the
// keys of that org, legacy (org id + key id) and tokens, and ?api_id=
// keeps the keys granting that API (or every API, as a key with no access
// rights does under allow_master_keys); without hash_keys ?api_id needs
// ?filter, and with hash_keys ?filter is ignored.
func (g *Gateway) controlListKeys(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		chain.WriteControlError(w, http.StatusMethodNotAllowed, chain.CauseControlMethod, "Method not supported: use GET")
		return
	}
	q := r.URL.Query()
	apiID := q.Get("api_id")
	var prefixes []string
	if g.cfg.HashKeys {
		if !g.cfg.EnableHashedKeysListing {
			chain.WriteControlError(w, http.StatusNotFound, chain.CauseControlNotFound, "Hashed key listing is disabled in config (enable_hashed_keys_listing)")
			return
		}
	} else if filter := q.Get("filter"); filter != "" {
		prefixes = []string{filter, session.OrgTokenPrefix(filter)}
	} else if apiID != "" {
		chain.WriteControlError(w, http.StatusBadRequest, chain.CauseControlBadRequest, "The 'filter' parameter (Org ID) is required when filtering by 'api_id' in legacy mode")
		return
	}
	ids, err := g.sessions.store.List(r.Context(), maxListedKeys, prefixes...)
	if err != nil {
		g.keyStoreOK(w, err, "")
		return
	}
	if apiID != "" {
		sessions, err := g.sessions.store.LoadEach(r.Context(), ids)
		if err != nil {
			g.keyStoreOK(w, err, "")
			return
		}
		ids = slices.DeleteFunc(ids, func(id string) bool {
			st, ok := sessions[id]
			if !ok {
				return true
			}
			_, granted := st.AccessRights[apiID]
			return !granted && !(len(st.AccessRights) == 0 && g.cfg.AllowMasterKeys)
		})
	}
	chain.WriteJSON(w, http.StatusOK, struct {
		Keys []string `json:"keys"`
	}{ids})
}

// maxListedKeys bounds GET /tyk/keys.
const maxListedKeys = 100_000

// readControlBody reads a control API request body of at most
// maxControlBody bytes; a larger one is answered 413 naming the limit.
func readControlBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxControlBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		chain.WriteControlError(w, http.StatusRequestEntityTooLarge, chain.CauseControlBadRequest, fmt.Sprintf("Request body too large: the control API takes at most %d bytes", maxControlBody))
		return nil, false
	case err != nil:
		chain.WriteControlError(w, http.StatusBadRequest, chain.CauseControlBadRequest, "Request malformed: "+err.Error())
		return nil, false
	}
	return body, true
}
