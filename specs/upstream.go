package specs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway"
	"github.com/tollgate/tollgate/tools/echo"
)

// RecordingUpstream is a real HTTP server on 127.0.0.1 that answers every
// request with the request it received (as the echo upstream does) and
// remembers it, so a spec can see exactly what the gateway forwarded.
type RecordingUpstream struct {
	URL string
	connCounter

	mu       sync.Mutex
	requests []echo.Request
	keep     int // how many requests are kept; 0 means all
}

// StartRecordingUpstream starts a recording upstream, stopped by the spec's
// cleanup.
func StartRecordingUpstream() *RecordingUpstream {
	GinkgoHelper()
	u := &RecordingUpstream{}
	u.URL = serveCounted(http.HandlerFunc(u.record), &u.connCounter)
	return u
}

// record answers r with what it received, and remembers it.
func (u *RecordingUpstream) record(w http.ResponseWriter, r *http.Request) {
	req, err := echo.Read(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	u.mu.Lock()
	u.requests = append(u.requests, req)
	if u.keep > 0 && len(u.requests) > 2*u.keep {
		u.requests = append(u.requests[:0], u.requests[len(u.requests)-u.keep:]...)
	}
	u.mu.Unlock()
	echo.Write(w, req)
}

// KeepOnly makes the upstream remember only about the last n requests (at
// least n, at most 2n), so that a steady-state spec sending thousands
// does not see the upstream's own memory grow.
func (u *RecordingUpstream) KeepOnly(n int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.keep = max(n, 1)
}

// Requests returns every request received so far, oldest first.
func (u *RecordingUpstream) Requests() []echo.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]echo.Request(nil), u.requests...)
}

// LastRequest is the most recent request; the spec fails if there is none.
func (u *RecordingUpstream) LastRequest() echo.Request {
	GinkgoHelper()
	reqs := u.Requests()
	Expect(reqs).NotTo(BeEmpty(), "the upstream received no request")
	return reqs[len(reqs)-1]
}

// SlowUpstream never answers: each request waits until the gateway gives
// up on it (its context ends) or the spec ends. It stands in for an
// upstream slower than proxy_default_timeout, or one a client stops
// waiting for.
type SlowUpstream struct {
	URL string
	connCounter
	waiting, arrived atomic.Int64
}

// StartSlowUpstream starts a slow upstream, stopped by the spec's cleanup.
func StartSlowUpstream() *SlowUpstream {
	GinkgoHelper()
	u := &SlowUpstream{}
	stop := make(chan struct{})
	u.URL = serveCounted(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.waiting.Add(1)
		u.arrived.Add(1)
		defer u.waiting.Add(-1)
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}), &u.connCounter)
	// Registered after serveCounted's own cleanup, so it runs first and
	// frees any handler still waiting before the server waits for them.
	DeferCleanup(func() { close(stop) })
	return u
}

// Waiting counts the requests the upstream holds now: sent by the gateway
// and not yet given up on.
func (u *SlowUpstream) Waiting() int { return int(u.waiting.Load()) }

// Arrived counts the requests the upstream has received so far.
func (u *SlowUpstream) Arrived() int { return int(u.arrived.Load()) }

// connCounter counts a server's open connections as its http.Server sees
// them (ConnState), so a spec can see the connections the gateway keeps to
// it: idle ones included, which the gateway's own side would hide.
type connCounter struct {
	open atomic.Int64
}

// OpenConns counts the connections open now.
func (c *connCounter) OpenConns() int { return int(c.open.Load()) }

func (c *connCounter) track(_ net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		c.open.Add(1)
	case http.StateHijacked, http.StateClosed:
		c.open.Add(-1)
	}
}

// serveCounted runs h on 127.0.0.1:0, counting its connections in c, until
// the spec's cleanup shuts it down, and returns its base URL.
func serveCounted(h http.Handler, c *connCounter) string {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ConnState:         c.track,
		ErrorLog:          slog.NewLogLogger(slog.NewTextHandler(GinkgoWriter, nil), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	DeferCleanup(func(ctx context.Context) {
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
		<-done
	}, NodeTimeout(10*time.Second))
	return "http://" + l.Addr().String()
}

// DeadUpstreamURL is the URL of a port that was just listening and now
// refuses connections: an upstream that is down.
func DeadUpstreamURL() string {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	addr := l.Addr().String()
	Expect(l.Close()).To(Succeed())
	return "http://" + addr
}

// Serve runs h on 127.0.0.1:0 until the spec's cleanup shuts it down, and
// returns its base URL.
func Serve(h http.Handler) string {
	GinkgoHelper()
	return serve(h).URL()
}

// serve runs h on 127.0.0.1:0 until the spec's cleanup shuts it down.
func serve(h http.Handler, opts ...gateway.ServerOption) *gateway.Server {
	GinkgoHelper()
	srv, err := gateway.Listen("127.0.0.1:0", h, slog.New(slog.NewTextHandler(GinkgoWriter, nil)), opts...)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx context.Context) error { return srv.Shutdown(ctx) }, NodeTimeout(10*time.Second))
	return srv
}

// StartTLSRecordingUpstream is a recording upstream behind HTTPS whose
// certificate names host, signed by its own root, which it returns for
// the gateway to trust. It stands in for a webhook target such as the
// seed's https://api/... .
func StartTLSRecordingUpstream(host string) (*RecordingUpstream, *x509.CertPool) {
	GinkgoHelper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: host},
		DNSNames:              []string{host},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	Expect(err).NotTo(HaveOccurred())
	cert, err := x509.ParseCertificate(der)
	Expect(err).NotTo(HaveOccurred())
	roots := x509.NewCertPool()
	roots.AddCert(cert)

	u := &RecordingUpstream{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(u.record))
	srv.Config.ConnState = u.track
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}}
	srv.StartTLS()
	DeferCleanup(srv.Close)
	u.URL = srv.URL
	return u, roots
}
