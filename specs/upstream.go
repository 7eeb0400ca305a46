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

	mu       sync.Mutex
	requests []echo.Request
}

// StartRecordingUpstream starts a recording upstream, stopped by the spec's
// cleanup.
func StartRecordingUpstream() *RecordingUpstream {
	GinkgoHelper()
	u := &RecordingUpstream{}
	srv := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := echo.Read(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		u.mu.Lock()
		u.requests = append(u.requests, req)
		u.mu.Unlock()
		echo.Write(w, req)
	}))
	u.URL = srv.URL()
	return u
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

// StartSlowUpstream starts an upstream that never answers: each request
// waits until the gateway gives up on it (its context ends) or the spec
// ends. It stands in for an upstream slower than proxy_default_timeout.
func StartSlowUpstream() string {
	GinkgoHelper()
	stop := make(chan struct{})
	srv := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	// Registered after serve's own cleanup, so it runs first and frees any
	// handler still waiting before the server waits for them.
	DeferCleanup(func() { close(stop) })
	return srv.URL()
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
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := echo.Read(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		u.mu.Lock()
		u.requests = append(u.requests, req)
		u.mu.Unlock()
		echo.Write(w, req)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}}
	srv.StartTLS()
	DeferCleanup(srv.Close)
	u.URL = srv.URL
	return u, roots
}
