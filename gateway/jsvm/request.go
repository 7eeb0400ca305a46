package jsvm

import "encoding/json"

// Request is what a middleware sees of the HTTP request, as Tyk's
// MiniRequestObject. The object a script gets also has the fields it fills in
// (SetHeaders, DeleteHeaders, AddParams, ExtendedParams, DeleteParams,
// ReturnOverrides, IgnoreBody) with empty defaults.
type Request struct {
	// Headers are the request's headers, Host included.
	Headers map[string][]string `json:"Headers"`
	// Body is the request body as text.
	Body string `json:"Body"`
	// URL is the request URL as the gateway received it (r.URL.String()).
	URL string `json:"URL"`
	// Params is the query string.
	Params map[string][]string `json:"Params"`
	// Method is the HTTP method.
	Method string `json:"Method"`
	// RequestURI is the unmodified request target.
	RequestURI string `json:"RequestURI"`
	// Scheme is "http" or "https".
	Scheme string `json:"Scheme"`
}

// Result is what a middleware returned.
type Result struct {
	// Request holds the changes to apply to the HTTP request.
	Request ResultRequest `json:"Request"`
	// SessionMeta is the second argument of ReturnData; nil when the
	// script passed none.
	SessionMeta map[string]any `json:"SessionMeta"`
	// Session is the session a script returned with ReturnAuthData, as
	// JSON; nil otherwise.
	Session json.RawMessage `json:"Session"`
	// AuthValue is the key a custom auth_check names its session by
	// (return {Request: request, Session: session, AuthValue: "..."});
	// "" when the script named none, as with ReturnAuthData.
	AuthValue string `json:"AuthValue"`
}

// ResultRequest is the request object a middleware returned. Changes to
// Headers are not returned: scripts change headers through SetHeaders and
// DeleteHeaders, as in Tyk. Empty maps and lists are nil.
type ResultRequest struct {
	// SetHeaders are headers to set, replacing any value.
	SetHeaders map[string]string `json:"SetHeaders"`
	// DeleteHeaders are headers to remove (applied before SetHeaders).
	DeleteHeaders []string `json:"DeleteHeaders"`
	// Body is the new request body, unless IgnoreBody is set.
	Body string `json:"Body"`
	// URL is the new request URL.
	URL string `json:"URL"`
	// AddParams are query parameters to set.
	AddParams map[string]string `json:"AddParams"`
	// ExtendedParams are query parameters to add to any existing values.
	ExtendedParams map[string][]string `json:"ExtendedParams"`
	// DeleteParams are query parameters to remove.
	DeleteParams []string `json:"DeleteParams"`
	// ReturnOverrides lets a script answer the request itself.
	ReturnOverrides ReturnOverrides `json:"ReturnOverrides"`
	// IgnoreBody keeps the original body whatever Body says.
	IgnoreBody bool `json:"IgnoreBody"`
}

// ReturnOverrides is how a script answers a request instead of the
// upstream. ResponseCode 0 means no override.
type ReturnOverrides struct {
	// ResponseCode is the status to answer with; 0 leaves the request alone.
	ResponseCode int `json:"ResponseCode"`
	// ResponseError is an error message; when set it becomes the body.
	ResponseError string `json:"ResponseError"`
	// ResponseBody is the body to answer with.
	ResponseBody string `json:"ResponseBody"`
	// ResponseHeaders are headers to answer with.
	ResponseHeaders map[string]string `json:"ResponseHeaders"`
	// OverrideError answers a code >= 400 verbatim instead of as a
	// Tyk-shaped error.
	OverrideError bool `json:"OverrideError"`
}
