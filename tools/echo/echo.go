// Package echo is an upstream that answers every request with the request
// it received, as JSON. `make run` puts it behind the demo APIs, and the
// specs use it to see exactly what the gateway forwarded.
//
//	srv := httptest.NewServer(echo.Handler())
//	// GET /x?y=1 → {"method":"GET","path":"/x","query":"y=1","headers":{...},"body":""}
package echo

import (
	"encoding/json"
	"io"
	"net/http"
)

// Request is what the echo upstream saw and sends back.
type Request struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	// URI is the request target as it came on the wire.
	URI     string      `json:"uri"`
	Query   string      `json:"query"`
	Host    string      `json:"host"`
	Headers http.Header `json:"headers"`
	Body    string      `json:"body"`
}

// maxBody bounds what the echo reads of a request body.
const maxBody = 1 << 20

// Read captures r as a Request, reading at most 1 MiB of its body.
func Read(r *http.Request) (Request, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	return Request{
		Method:  r.Method,
		Path:    r.URL.Path,
		URI:     r.RequestURI,
		Query:   r.URL.RawQuery,
		Host:    r.Host,
		Headers: r.Header.Clone(),
		Body:    string(body),
	}, err
}

// Write answers 200 with req as JSON.
func Write(w http.ResponseWriter, req Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Echo", "1")
	_ = json.NewEncoder(w).Encode(req)
}

// Handler echoes every request.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := Read(r)
		if err != nil {
			http.Error(w, "reading the request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		Write(w, req)
	})
}
