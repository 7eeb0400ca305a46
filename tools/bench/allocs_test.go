package bench

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
)

// The Allocs benchmarks serve requests in process, without the client's
// and server's HTTP connections, to count what a proxy allocates per
// request ("B/op", "allocs/op"): garbage that sets the collector's pace
// and, with it, the tail latency. The upstream is still a real one over
// loopback.

// BenchmarkAllocsBaseline is the bare httputil.ReverseProxy.
func BenchmarkAllocsBaseline(b *testing.B) {
	target, _ := url.Parse(upstream(b))
	transport := &http.Transport{MaxIdleConnsPerHost: 256}
	b.Cleanup(transport.CloseIdleConnections)
	rp := &httputil.ReverseProxy{Transport: transport, Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}
	serveInProcess(b, rp, "/", nil)
}

// BenchmarkAllocsKeyless is the keyless gateway.
func BenchmarkAllocsKeyless(b *testing.B) {
	gw, _ := startGateway(b, `{"api_id": "k", "active": true, "use_keyless": true,
	  "proxy": {"listen_path": "/k/", "target_url": "{{upstream}}", "strip_listen_path": true}}`, `{}`)
	serveInProcess(b, gw, "/k/", nil)
}

// BenchmarkAllocsAuthRateLimitQuota is the keyed API of
// BenchmarkAuthRateLimitQuota, one key, on each store. On the simulated
// cluster the count includes the cluster's own work, in the same process.
func BenchmarkAllocsAuthRateLimitQuota(b *testing.B) {
	eachStore(b, func(b *testing.B, st store) {
		gw, url := startGatewayOn(b, st, `{"api_id": "a", "active": true,
		  "auth": {"auth_header_name": "x-key"},
		  "proxy": {"listen_path": "/a/", "target_url": "{{upstream}}", "strip_listen_path": true}}`, `{"secret": "bench"}`)
		keys := createKeys(b, url, 1, `{"access_rights": {"a": {"api_id": "a"}}, "rate": 100000000, "per": 1, "quota_max": 1000000000, "quota_renewal_rate": 3600}`)
		serveInProcess(b, gw, "/a/", http.Header{"X-Key": {keys[0]}})
	})
}

// serveInProcess sends b.N GET path requests straight to h, one at a
// time, and reports allocations.
func serveInProcess(b *testing.B, h http.Handler, path string, header http.Header) {
	b.Helper()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.RemoteAddr = "127.0.0.1:1234"
		for k, v := range header {
			req.Header[k] = v
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
