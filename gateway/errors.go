package gateway

import (
	"encoding/json"
	"net/http"
)

// CauseHeader carries a machine-readable reason on every response the
// gateway itself produces as an error, so clients, logs and specs can tell
// a gateway 502 from an upstream's 502.
const CauseHeader = "X-Tollgate-Error"

// Cause is the value of CauseHeader.
type Cause string

// The causes the gateway reports.
const (
	CauseUnknownPath         Cause = "unknown_path"
	CauseUpstreamUnreachable Cause = "upstream_unreachable"
	CauseUpstreamTimeout     Cause = "upstream_timeout"
	CauseStorageUnavailable  Cause = "storage_unavailable"
)

// Messages the gateway answers with. Where Tyk has a message for the case,
// it is Tyk's, so clients written against Tyk keep working.
const (
	msgUnknownPath         = "No API is served at this path"
	msgUpstreamUnreachable = "There was a problem proxying the request"
	msgUpstreamTimeout     = "Upstream service reached hard timeout."
)

// errorBody is Tyk's error shape: {"error": "<message>"}.
type errorBody struct {
	Error string `json:"error"`
}

// writeError writes a Tyk-shaped JSON error with its cause header. It is the
// only place gateway errors are written.
func writeError(w http.ResponseWriter, status int, cause Cause, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set(CauseHeader, string(cause))
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{Error: msg})
}
