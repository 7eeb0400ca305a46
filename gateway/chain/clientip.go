package chain

import (
	"net"
	"net/http"
	"strings"
)

// ClientIP is the caller's address: X-Real-IP, else the first
// X-Forwarded-For entry, else the connection's address. Analytics, the
// response cache and events all take it from here.
func ClientIP(r *http.Request) string {
	if ip := r.Header.Get("X-Real-Ip"); ip != "" {
		return ip
	}
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		first, _, _ := strings.Cut(xff, ",")
		return strings.TrimSpace(first)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
