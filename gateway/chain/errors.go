package chain

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"strings"
)

// This file is the one place where the gateway's own errors are written:
// every cause, every message, and the two shapes a client sees.

// CauseHeader carries a machine-readable reason on every response the
// gateway itself produces as an error, so clients, logs and specs can tell
// a gateway 502 from an upstream's 502.
const CauseHeader = "X-Tollgate-Error"

// Cause is the value of CauseHeader.
type Cause string

// The causes of the request chain and the router.
const (
	CauseUnknownPath         Cause = "unknown_path"
	CauseMethodCase          Cause = "method_case"
	CauseBadPath             Cause = "bad_path"
	CauseUpstreamUnreachable Cause = "upstream_unreachable"
	CauseUpstreamTimeout     Cause = "upstream_timeout"
	CauseStorageUnavailable  Cause = "storage_unavailable"
	CauseVersionMissing      Cause = "version_missing"
	CauseVersionUnknown      Cause = "version_unknown"
	CauseVersionRepeated     Cause = "version_repeated"
	CauseVersionExpired      Cause = "version_expired"
	CauseEndpointForbidden   Cause = "endpoint_forbidden"
	CauseKeyMissing          Cause = "key_missing"
	CauseKeyNotAuthorised    Cause = "key_not_authorised"
	CauseKeyInactive         Cause = "key_inactive"
	CauseKeyExpired          Cause = "key_expired"
	CauseURLNotAllowed       Cause = "url_not_allowed"
	CauseRateLimited         Cause = "rate_limited"
	CauseQuotaExceeded       Cause = "quota_exceeded"
	CauseJSTimeout           Cause = "js_timeout"
	CauseJSMemory            Cause = "js_memory_limit"
	CauseJSError             Cause = "js_error"
	CauseJSOverride          Cause = "js_override"
	CauseJSAuthNoSession     Cause = "js_auth_no_session"
	CauseJSAuthBadSession    Cause = "js_auth_bad_session"
	CauseBodyTooBig          Cause = "body_too_large"
	CauseBodyUnreadable      Cause = "body_unreadable"
)

// The causes of the control API (/tyk/) and the debug endpoints.
const (
	CauseControlDisabled     Cause = "control_api_disabled"
	CauseControlUnauthorised Cause = "control_api_unauthorised"
	CauseControlBadRequest   Cause = "control_api_bad_request"
	CauseControlNotFound     Cause = "control_api_not_found"
	CauseControlMethod       Cause = "control_api_method_not_allowed"
)

// Messages the gateway answers with. Where Tyk has a message for the case,
// it is Tyk's, so clients written against Tyk keep working.
const (
	MsgUnknownPath         = "No API is served at this path"
	MsgUpstreamUnreachable = "There was a problem proxying the request"
	MsgUpstreamTimeout     = "Upstream service reached hard timeout."
	MsgStorageUnavailable  = "The key store is unavailable, please retry"
	MsgVersionMissing      = "Version information not found"
	MsgVersionUnknown      = "This API version does not seem to exist"
	// MsgVersionRepeated is tollgate's own, followed by the parameter or
	// header: Tyk takes the first value, while an upstream may take the
	// last and serve a version whose rules never ran.
	MsgVersionRepeated   = "The API version is given more than once in "
	MsgVersionExpired    = "Api Version has expired, please check documentation or contact administrator"
	MsgEndpointForbidden = "Requested endpoint is forbidden"
	MsgKeyMissing        = "Authorization field missing"
	MsgKeyNotAuthorised  = "Access to this API has been disallowed"
	MsgKeyInactive       = "Key is inactive, please renew"
	MsgKeyExpired        = "Key has expired, please renew"
	MsgURLNotAllowed     = "Access to this resource has been disallowed"
	MsgRateLimited       = "Rate Limit Exceeded"
	MsgQuotaExceeded     = "Quota exceeded"
	MsgJSTimeout         = "JS middleware timed out"
	MsgJSMemory          = "JS middleware stopped: the gateway's memory limit for JS was reached"
	MsgJSError           = "There was a problem running the JS middleware"
	MsgJSAuthNoSession   = "The authentication middleware returned no session"
	MsgJSAuthBadSession  = "The authentication middleware returned an invalid session"
	MsgBodyTooBig        = "Request body too large for JS middleware"
	MsgBodyUnreadable    = "Reading the request body failed"
	MsgControlForbidden  = "Attempted administrative access with invalid or missing key!"
	MsgControlNotFound   = "No control API endpoint at this path"
)

// errorBody is Tyk's error shape: {"error": "<message>"}.
type errorBody struct {
	Error string `json:"error"`
}

// WriteError writes a Tyk-shaped error of the request chain with its
// cause header: JSON ({"error": "..."}), or, to a client whose request is
// XML (Content-Type text/xml, application/xml or application/soap+xml),
// Tyk's XML error document, as Tyk's default error templates answer.
func WriteError(w http.ResponseWriter, r *http.Request, status int, cause Cause, msg string) {
	w.Header().Set(CauseHeader, string(cause))
	recordCause(w, cause)
	if ct := xmlContentType(r); ct != "" {
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		var b strings.Builder
		b.WriteString("<?xml version = \"1.0\" encoding = \"UTF-8\"?>\n<error>")
		_ = xml.EscapeText(&b, []byte(msg))
		b.WriteString("</error>\n")
		_, _ = io.WriteString(w, b.String())
		return
	}
	WriteJSON(w, status, errorBody{Error: msg})
}

// xmlContentType is the request's XML media type, or "".
func xmlContentType(r *http.Request) string {
	if r == nil {
		return ""
	}
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	switch ct = strings.ToLower(strings.TrimSpace(ct)); ct {
	case "text/xml", "application/xml", "application/soap+xml":
		return ct
	}
	return ""
}

// ControlReply is the control API's reply shape, Tyk's.
type ControlReply struct {
	Key     string `json:"key,omitempty"`
	KeyHash string `json:"key_hash,omitempty"`
	Status  string `json:"status"`
	Action  string `json:"action,omitempty"`
	Message string `json:"message,omitempty"`
}

// WriteControlError writes a control API error: Tyk's
// {"status": "error", "message": "..."} with the cause header.
func WriteControlError(w http.ResponseWriter, status int, cause Cause, msg string) {
	w.Header().Set(CauseHeader, string(cause))
	recordCause(w, cause)
	WriteJSON(w, status, ControlReply{Status: "error", Message: msg})
}

// CauseRecorder is told the cause of every error WriteError or
// WriteControlError writes through it, or through a writer wrapping it
// (see Writer.Unwrap). The router wraps each response in one to count the
// gateway's errors by cause, per gateway: a cause header that an upstream
// sets on its own response is never counted, since only these two
// functions tell it.
type CauseRecorder interface {
	RecordCause(Cause)
}

// recordCause tells the first CauseRecorder among w and the writers it
// wraps.
func recordCause(w http.ResponseWriter, cause Cause) {
	for w != nil {
		if rec, ok := w.(CauseRecorder); ok {
			rec.RecordCause(cause)
			return
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = u.Unwrap()
	}
}

// IsGatewayError tells whether a response carries a cause, that is whether
// the gateway wrote it rather than the upstream.
func IsGatewayError(h http.Header) bool { return h.Get(CauseHeader) != "" }

// WriteJSON writes v as a JSON response.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
