package chain

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Trust decides whose word about the client's address is believed. The
// router asks it once per request; the answer is Call.ClientIP, which the
// response cache, analytics (and its ignored_ips) and events all use.
type Trust struct {
	proxies []netip.Prefix
}

// NewTrust believes X-Real-IP and X-Forwarded-For only from connections
// whose address is in proxies (tyk.conf trusted_proxies).
func NewTrust(proxies []netip.Prefix) *Trust { return &Trust{proxies: proxies} }

func (t *Trust) trusted(a netip.Addr) bool {
	for _, p := range t.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP returns the client's address. From a connection that is not a
// trusted proxy that is the connection's address, and the request's
// X-Real-IP and X-Forwarded-For are removed, so that no rule, middleware or
// upstream takes the client's word for who it is. From a trusted proxy it
// is X-Real-IP when that is an address, else the nearest X-Forwarded-For
// entry that is not itself a trusted proxy.
func (t *Trust) ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	remote, err := netip.ParseAddr(host)
	if err != nil || !t.trusted(remote.Unmap()) {
		r.Header.Del("X-Real-Ip")
		r.Header.Del("X-Forwarded-For")
		return host
	}
	if real, err := netip.ParseAddr(strings.TrimSpace(r.Header.Get("X-Real-Ip"))); err == nil {
		return real.Unmap().String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	client := remote.Unmap()
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // not an address: nothing further left is believable
		}
		client = hop.Unmap()
		if !t.trusted(client) {
			break
		}
	}
	return client.String()
}
