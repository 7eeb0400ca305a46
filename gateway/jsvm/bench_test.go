package jsvm_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"testing"

	"github.com/tollgate/tollgate/gateway/jsvm"
)

// benchSession is a session as the gateway stores it for the seed's keys.
const benchSession = `{"rate":1000,"per":1,"allowance":1000,"last_check":1700000000,"expires":1700003600,
"quota_max":-1,"quota_remaining":0,"quota_renews":1700000000,"quota_renewal_rate":3600,
"access_rights":{"seed-api":{"api_id":"seed-api","api_name":"Seed","versions":["v1"]}},
"org_id":"seed-org","meta_data":{"tier":"gold"},"tags":[],"alias":"client-1","is_inactive":false,
"apply_policies":[],"session_lifetime":0,"last_updated":"1700000000"}`

// discardHost accepts every call and stores nothing.
type discardHost struct{}

func (discardHost) GetKeyData(context.Context, string, string) (string, error) { return "{}", nil }
func (discardHost) SetKeyData(context.Context, string, string, bool) error     { return nil }
func (discardHost) BatchRequest(context.Context, string) (string, error)       { return "[]", nil }

func compileSeed(b *testing.B, fresh bool) *jsvm.Program {
	b.Helper()
	code, err := os.ReadFile(seedScript)
	if err != nil {
		b.Fatal(err)
	}
	prog, err := jsvm.Compile(jsvm.Spec{APIID: "seed-api", OrgID: "seed-org"},
		[]jsvm.Source{{Name: "refreshSecurity", File: seedScript, Code: code}},
		jsvm.Config{Host: discardHost{}, Log: slog.New(slog.DiscardHandler), FreshVM: fresh})
	if err != nil {
		b.Fatal(err)
	}
	return prog
}

func seedRequest(r *http.Request) jsvm.Request {
	return jsvm.Request{
		Headers: r.Header, URL: r.URL.String(), Params: r.URL.Query(),
		Method: r.Method, RequestURI: r.RequestURI, Scheme: "http",
	}
}

// BenchmarkRunSeedMiddleware measures one run of the seed's
// refreshSecurity.js on a reused, reset VM against a fresh copy of the
// compiled VM per run (what Tyk does).
func BenchmarkRunSeedMiddleware(b *testing.B) {
	r := httptest.NewRequest(http.MethodGet, "/v1/orders?page=2", nil)
	r.Header.Set("Security", "0123456789abcdef0123456789abcdef")
	r.Header.Set("User-Agent", "bench")
	req := seedRequest(r)
	session := []byte(benchSession)
	for _, mode := range []struct {
		name  string
		fresh bool
	}{{"reuse", false}, {"fresh-copy", true}} {
		b.Run(mode.name, func(b *testing.B) {
			prog := compileSeed(b, mode.fresh)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := prog.Run(b.Context(), "refreshSecurity", req, session); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(mode.name+"-parallel", func(b *testing.B) {
			prog := compileSeed(b, mode.fresh)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := prog.Run(context.Background(), "refreshSecurity", req, session); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkProxyWithSeedMiddleware estimates what the seed's middleware
// costs a proxied request: the same reverse proxy over loopback, without
// JS and with refreshSecurity.js run before each request is forwarded.
func BenchmarkProxyWithSeedMiddleware(b *testing.B) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	b.Cleanup(upstream.Close)
	target, err := url.Parse(upstream.URL)
	if err != nil {
		b.Fatal(err)
	}
	session := []byte(benchSession)
	for _, mode := range []struct {
		name string
		js   bool
	}{{"no-js", false}, {"seed-js", true}} {
		b.Run(mode.name, func(b *testing.B) {
			proxy := httputil.NewSingleHostReverseProxy(target)
			proxy.Transport = &http.Transport{MaxIdleConnsPerHost: 256}
			var handler http.Handler = proxy
			if mode.js {
				prog := compileSeed(b, false)
				handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if _, err := prog.Run(r.Context(), "refreshSecurity", seedRequest(r), session); err != nil {
						http.Error(w, err.Error(), http.StatusInternalServerError)
						return
					}
					proxy.ServeHTTP(w, r)
				})
			}
			front := httptest.NewServer(handler)
			b.Cleanup(front.Close)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodGet, front.URL+"/v1/orders?page=2", nil)
					req.Header.Set("Security", "0123456789abcdef0123456789abcdef")
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}
