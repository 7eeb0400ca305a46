package chain

import "net/http"

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
