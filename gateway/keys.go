package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/gateway/apidef"
	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/gateway/jsvm"
	"github.com/tollgate/tollgate/gateway/session"
	"github.com/tollgate/tollgate/gateway/step/auth"
)

// sessions are the keys' sessions: Redis behind a local cache.
type sessions struct {
	store *session.Store
	cache *session.Cache
}

var _ auth.Sessions = (*sessions)(nil)

// Lookup returns the id and session of key, presented to an API of orgID,
// from the local cache or Redis, looking under every id Tyk would (see
// session.Store.Candidates). The session returned is the caller's own copy.
func (s *sessions) Lookup(ctx context.Context, orgID, key string) (string, *session.State, error) {
	for _, id := range s.store.Candidates(orgID, key) {
		if st, ok := s.cache.Get(id); ok {
			return id, st, nil
		}
	}
	st, id, err := s.store.Find(ctx, orgID, key)
	if err != nil {
		return "", nil, err
	}
	s.cache.Put(id, st)
	return id, st, nil
}

// writeSession stores what JS middleware changed in a session's
// meta_data, once per request, after the chain. Only the members the chain
// added, changed or removed are written, onto the session as it is stored
// now (see session.Store.Update): a TykSetKeyData of the same request, the
// control API or another gateway's request may have changed it since it
// was read, and those changes stay. A key deleted meanwhile stays deleted.
// A failure is logged, not answered: the request itself was valid.
func (g *Gateway) writeSession(c *chain.Call) {
	set, removed := metaChanges(c.MetaBefore, c.Session.MetaData)
	ctx, cancel := c.StoreContext()
	defer cancel()
	st, err := g.sessions.store.Update(ctx, c.KeyID, func(st *session.State) bool {
		changed := false
		for k, v := range set {
			if old, ok := st.MetaData[k]; !ok || !reflect.DeepEqual(old, v) {
				if st.MetaData == nil {
					st.MetaData = map[string]any{}
				}
				st.MetaData[k] = v
				changed = true
			}
		}
		for _, k := range removed {
			if _, ok := st.MetaData[k]; ok {
				delete(st.MetaData, k)
				changed = true
			}
		}
		return changed
	})
	if err != nil {
		g.reqLog.Warn("session changes not stored", "api_id", c.API.APIID, "key_hash", c.KeyHash(), "error", err)
		g.sessions.cache.Forget(c.KeyID)
		return
	}
	g.sessions.cache.Put(c.KeyID, st)
	g.keyChanged(c.R.Context(), c.KeyID)
}

// metaChanges lists what differs from before in after: members to set and
// members removed.
func metaChanges(before, after map[string]any) (set map[string]any, removed []string) {
	set = map[string]any{}
	for k, v := range after {
		if old, ok := before[k]; !ok || !reflect.DeepEqual(old, v) {
			set[k] = v
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			removed = append(removed, k)
		}
	}
	return set, removed
}

// saveKey stores a key's session as the control API and TykSetKeyData do.
// An update (create false) needs the key to exist. With reset, the key's
// quota and rate-limit counters start afresh and last_updated is set. The
// gateway's cached copy is replaced, and the other gateways are told to
// drop theirs.
func (g *Gateway) saveKey(ctx context.Context, id string, st *session.State, reset, create bool) error {
	if !create {
		if _, err := g.sessions.store.Load(ctx, id); err != nil {
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
	lifetime := g.lifetime(st)
	// A session without a lifetime that is exactly what this gateway last
	// stored needs no write: JS that refreshes a session on every request
	// (the seed's refreshSecurity.js) changes it once a second, not once a
	// request. A lifetime is a TTL the write would renew, so it always
	// writes.
	if !reset && lifetime == 0 {
		if last, ok := g.sessions.cache.Stored(id); ok && bytes.Equal(last, data) {
			return nil
		}
	}
	if err := g.sessions.store.SaveJSON(ctx, id, data, lifetime); err != nil {
		g.sessions.cache.Forget(id)
		return err
	}
	g.sessions.cache.PutStored(id, st, data)
	g.keyChanged(ctx, id)
	return nil
}

// lifetime is how long Redis keeps a session, as Tyk's ApplyLifetime
// decides it: the session's own session_lifetime, else the
// session_lifetime of the APIs it grants (the longest), each kept until
// the key expires when the API says session_lifetime_respects_key_expiration.
// 0 keeps it until deleted.
func (g *Gateway) lifetime(st *session.State) time.Duration {
	var longest int64
	matched := false
	apis := g.routes.Load()
	for apiID := range st.AccessRights {
		for _, a := range apis.apis {
			if a.def.APIID != apiID {
				continue
			}
			matched = true
			l := st.SessionLifetime
			if l <= 0 {
				l = a.def.SessionLifetime
			}
			if l > 0 && a.def.SessionLifetimeRespectsKeyExpiration && st.Expires > 0 {
				if untilExpiry := st.Expires - g.now().Unix(); untilExpiry > l {
					l = untilExpiry
				}
			}
			longest = max(longest, l)
		}
	}
	if !matched {
		longest = st.SessionLifetime
	}
	return time.Duration(max(longest, 0)) * time.Second
}

// resetCounters starts a key's quota and rate-limit state afresh.
func (g *Gateway) resetCounters(ctx context.Context, id string) error {
	if err := g.quota.Reset(ctx, id); err != nil {
		return fmt.Errorf("%w: %w", session.ErrUnavailable, err)
	}
	if err := g.limiters.chosen.Reset(ctx, id); err != nil {
		return fmt.Errorf("%w: %w", session.ErrUnavailable, err)
	}
	return nil
}

// jsHost gives JS middleware the gateway's keys and routing.
type jsHost struct {
	g   *Gateway
	def *apidef.APIDefinition
}

var _ jsvm.Host = (*jsHost)(nil)

// GetKeyData answers TykGetKeyData: the key's session as JSON.
func (h *jsHost) GetKeyData(ctx context.Context, key, apiID string) (string, error) {
	st, err := h.g.sessions.store.Load(ctx, h.g.sessions.store.ID(key))
	if err != nil {
		return "", err
	}
	data, err := json.Marshal(st)
	return string(data), err
}

// SetKeyData answers TykSetKeyData: it stores the session as the control
// API's POST would (creating the key if needed, as Tyk does); with
// suppressReset the quota and rate-limit state stay.
//
// The same JSON as last time for a key whose session has no lifetime is
// stored already, as saveKey would find after decoding it: the seed's
// refresh hands over the same session many times a second.
func (h *jsHost) SetKeyData(ctx context.Context, key, sessionJSON string, suppressReset bool) error {
	id := h.g.sessions.store.ID(key)
	if suppressReset {
		if last, ok := h.g.sessions.cache.Received(id); ok && last == sessionJSON {
			return nil
		}
	}
	var st session.State
	if err := json.Unmarshal([]byte(sessionJSON), &st); err != nil {
		return fmt.Errorf("TykSetKeyData: session is not valid JSON: %w", err)
	}
	if err := st.Validate(); err != nil {
		return fmt.Errorf("TykSetKeyData: %w", err)
	}
	if err := h.g.saveKey(ctx, id, &st, !suppressReset, true); err != nil {
		return err
	}
	if suppressReset && h.g.lifetime(&st) == 0 {
		h.g.sessions.cache.NoteReceived(id, sessionJSON)
	}
	return nil
}

// batchRequest is TykBatchRequest's input, as Tyk's /tyk/batch takes it.
type batchRequest struct {
	Requests []struct {
		Method      string            `json:"method"`
		Headers     map[string]string `json:"headers"`
		Body        string            `json:"body"`
		RelativeURL string            `json:"relative_url"`
	} `json:"requests"`
	SuppressParallelExecution bool `json:"suppress_parallel_execution"`
}

type batchReply struct {
	RelativeURL string      `json:"relative_url"`
	Code        int         `json:"code"`
	Headers     http.Header `json:"headers"`
	Body        string      `json:"body"`
}

// maxBatch bounds the requests of one TykBatchRequest.
const maxBatch = 100

// BatchRequest answers TykBatchRequest: each request goes through this
// gateway to this API (relative_url is below its listen path), one after
// the other on the calling goroutine.
func (h *jsHost) BatchRequest(ctx context.Context, requestJSON string) (string, error) {
	var in batchRequest
	if err := json.Unmarshal([]byte(requestJSON), &in); err != nil {
		return "", fmt.Errorf("TykBatchRequest: %w", err)
	}
	if len(in.Requests) > maxBatch {
		return "", fmt.Errorf("TykBatchRequest: %d requests, at most %d", len(in.Requests), maxBatch)
	}
	base := strings.TrimSuffix(h.def.ListenPath(), "/")
	out := make([]batchReply, 0, len(in.Requests))
	for _, br := range in.Requests {
		method := br.Method
		if method == "" {
			method = http.MethodGet
		}
		req, err := http.NewRequestWithContext(ctx, method, base+"/"+strings.TrimPrefix(br.RelativeURL, "/"), strings.NewReader(br.Body))
		if err != nil {
			return "", fmt.Errorf("TykBatchRequest: %w", err)
		}
		for k, v := range br.Headers {
			req.Header.Set(k, v)
		}
		req.RemoteAddr = "127.0.0.1:0"
		rec := newReplyBuffer()
		h.g.ServeHTTP(rec, req)
		out = append(out, batchReply{RelativeURL: br.RelativeURL, Code: rec.status(), Headers: rec.header, Body: rec.body.String()})
	}
	data, err := json.Marshal(out)
	return string(data), err
}

// replyBuffer is a ResponseWriter that keeps a whole response in memory,
// for TykBatchRequest's replies.
type replyBuffer struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func newReplyBuffer() *replyBuffer { return &replyBuffer{header: http.Header{}} }

func (b *replyBuffer) Header() http.Header { return b.header }

func (b *replyBuffer) WriteHeader(code int) {
	if b.code == 0 {
		b.code = code
	}
}

// status is the status written; 200 when the handler wrote none.
func (b *replyBuffer) status() int {
	if b.code == 0 {
		return http.StatusOK
	}
	return b.code
}

func (b *replyBuffer) Write(p []byte) (int, error) {
	if b.code == 0 {
		b.code = http.StatusOK
	}
	return b.body.Write(p)
}
