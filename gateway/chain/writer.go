package chain

import (
	"net/http"
	"strconv"
)

// Writer is the base of every response-writer wrapper of the chain: embed
// it and override WriteHeader and Write. It passes flushes through, so
// streamed responses are not held, and lets http.ResponseController reach
// the connection.
type Writer struct {
	http.ResponseWriter
}

// Unwrap is for http.ResponseController.
func (w Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush lets streamed responses through as they come.
func (w Writer) Flush() {
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// StatusWriter remembers the status a handler answered with.
type StatusWriter struct {
	Writer
	Status int
}

// NewStatusWriter wraps w.
func NewStatusWriter(w http.ResponseWriter) *StatusWriter {
	return &StatusWriter{Writer: Writer{w}}
}

func (s *StatusWriter) WriteHeader(code int) {
	if s.Status == 0 {
		s.Status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *StatusWriter) Write(b []byte) (int, error) {
	if s.Status == 0 {
		s.Status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// OwnedHeaders keeps the headers a step set the only ones of their kind in
// the response: the proxy adds the upstream's headers to the gateway's
// (and a cached response is replayed on top of them), so an upstream that
// sets its own Access-Control-Allow-Origin or X-RateLimit-Remaining would
// otherwise give clients two of each. owns tells which header names (in
// canonical form) are the step's; their values are taken from w now.
func OwnedHeaders(w http.ResponseWriter, owns func(name string) bool) http.ResponseWriter {
	own := http.Header{}
	for k, v := range w.Header() {
		if owns(k) {
			own[k] = append([]string(nil), v...)
		}
	}
	return &ownedHeaders{Writer: Writer{w}, owns: owns, own: own}
}

type ownedHeaders struct {
	Writer
	owns  func(string) bool
	own   http.Header
	wrote bool
}

func (w *ownedHeaders) WriteHeader(code int) {
	if !w.wrote {
		// Also restores them after a 1xx response, which clears the map.
		h := w.Header()
		for k := range h {
			if w.owns(k) {
				delete(h, k)
			}
		}
		for k, v := range w.own {
			h[k] = v
		}
		w.wrote = code >= http.StatusOK || code == http.StatusSwitchingProtocols
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *ownedHeaders) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Flush passes streaming flushes through, headers first.
func (w *ownedHeaders) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	w.Writer.Flush()
}

// SetLimitHeaders sets X-RateLimit-Limit, -Remaining and -Reset (a unix
// time) in h: the rate limit's or, with rate_limit_response_headers
// "quotas", the quota's. They are set by their canonical names:
// Header.Set would canonicalise "X-RateLimit-…" into a new string on
// every request.
func SetLimitHeaders(h http.Header, limit int, remaining, reset int64) {
	h[limitHeaders[0]] = []string{strconv.Itoa(limit)}
	h[limitHeaders[1]] = []string{strconv.FormatInt(remaining, 10)}
	h[limitHeaders[2]] = []string{strconv.FormatInt(reset, 10)}
}

// limitHeaders are the headers SetLimitHeaders sets, canonical.
var limitHeaders = [...]string{"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset"}

// IsLimitHeader tells the headers SetLimitHeaders sets, by canonical name.
func IsLimitHeader(name string) bool {
	for _, h := range limitHeaders {
		if name == h {
			return true
		}
	}
	return false
}
