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
	CauseVersionMissing      Cause = "version_missing"
	CauseVersionUnknown      Cause = "version_unknown"
	CauseVersionExpired      Cause = "version_expired"
	CauseEndpointForbidden   Cause = "endpoint_forbidden"
	CauseKeyMissing          Cause = "key_missing"
	CauseKeyNotAuthorised    Cause = "key_not_authorised"
	CauseKeyInactive         Cause = "key_inactive"
	CauseKeyExpired          Cause = "key_expired"
	CauseRateLimited         Cause = "rate_limited"
	CauseQuotaExceeded       Cause = "quota_exceeded"
)

// Messages the gateway answers with. Where Tyk has a message for the case,
// it is Tyk's, so clients written against Tyk keep working.
const (
	msgUnknownPath         = "No API is served at this path"
	msgUpstreamUnreachable = "There was a problem proxying the request"
	msgUpstreamTimeout     = "Upstream service reached hard timeout."
	msgStorageUnavailable  = "The key store is unavailable, please retry"
	msgVersionMissing      = "Version information not found"
	msgVersionUnknown      = "This API version does not seem to exist"
	msgVersionExpired      = "Api Version has expired, please check documentation or contact administrator"
	msgEndpointForbidden   = "Requested endpoint is forbidden"
	msgKeyMissing          = "Authorization field missing"
	msgKeyNotAuthorised    = "Access to this API has been disallowed"
	msgKeyInactive         = "Key is inactive, please renew"
	msgKeyExpired          = "Key has expired, please renew"
	msgRateLimited         = "Rate Limit Exceeded"
	msgQuotaExceeded       = "Quota exceeded"
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
