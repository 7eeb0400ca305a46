// Package upstream forwards a request that passed its API's chain: one
// shared transport, a reverse proxy per API version, and the mapping of
// upstream failures to 502 and 504.
//
//	t := upstream.NewTransport(30*time.Second, nil)
//	p := upstream.New(upstream.Settings{Target: target, ListenPath: "/api"}, "my-api", t, log)
//	p.ServeHTTP(w, r)
package upstream

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tollgate/tollgate/gateway/chain"
)

// NewTransport is the one upstream transport the gateway shares between its
// APIs: connections to an upstream are reused across requests and reloads.
// Waiting for an upstream's response headers (and for a connection) is
// bounded by timeout; past it the request gets 504.
func NewTransport(timeout time.Duration, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport {
	if dial == nil {
		dial = (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dial,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}
}

// copyBuffers are the buffers every proxy copies response bodies through.
// Without a pool, httputil.ReverseProxy allocates 32 KiB for every
// response: most of what a small proxied request allocates, and so most of
// the garbage collector's work under load.
var copyBuffers bufferPool

// bufferPool is an httputil.BufferPool of 32 KiB buffers.
type bufferPool struct{ pool sync.Pool }

const copyBufferSize = 32 << 10

func (p *bufferPool) Get() []byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, copyBufferSize)
}

func (p *bufferPool) Put(b []byte) {
	if cap(b) != copyBufferSize {
		return
	}
	b = b[:copyBufferSize]
	p.pool.Put(&b)
}

// Settings is what a proxy needs, computed once at load.
type Settings struct {
	Target     *url.URL
	ListenPath string // normalised
	Strip      bool   // strip_listen_path
	// DisableStripSlash is proxy.disable_strip_slash (see joinPath).
	DisableStripSlash bool
	PreserveHost      bool // preserve_host_header
	SetHeaders        map[string]string
	RemoveHeaders     []string
}

// proxy forwards one API version's requests to its upstream.
type proxy struct {
	rp *httputil.ReverseProxy
}

var _ http.Handler = (*proxy)(nil)

// New builds the reverse proxy of one API version. Header names are
// canonicalised here, once, so the request path does not.
func New(s Settings, apiID string, transport http.RoundTripper, log *slog.Logger) http.Handler {
	ps := s
	ps.SetHeaders = make(map[string]string, len(s.SetHeaders))
	for k, v := range s.SetHeaders {
		ps.SetHeaders[textproto.CanonicalMIMEHeaderKey(k)] = v
	}
	ps.RemoveHeaders = make([]string, len(s.RemoveHeaders))
	for i, k := range s.RemoveHeaders {
		ps.RemoveHeaders[i] = textproto.CanonicalMIMEHeaderKey(k)
	}
	apiLog := log.With("api_id", apiID)
	return &proxy{rp: &httputil.ReverseProxy{
		Transport:  transport,
		BufferPool: &copyBuffers,
		Rewrite: func(pr *httputil.ProxyRequest) {
			if ps.Strip {
				stripListenPath(pr.Out.URL, ps.ListenPath)
			}
			// SetURL joins paths as Go does ("/base/" + "/" is "/base/");
			// Tyk's singleJoiningSlash gives "/base".
			setTarget(pr, ps.Target, ps.DisableStripSlash)
			// The router removed the X-Forwarded-For of a client that is
			// not a trusted proxy; a trusted proxy's is kept and this hop
			// appended to it, as Tyk does ("client, proxy, gateway").
			if prior := pr.In.Header["X-Forwarded-For"]; len(prior) > 0 {
				pr.Out.Header["X-Forwarded-For"] = []string{strings.Join(prior, ", ")}
			}
			pr.SetXForwarded()
			if ps.PreserveHost {
				pr.Out.Host = pr.In.Host
			}
			for _, k := range ps.RemoveHeaders {
				pr.Out.Header.Del(k)
			}
			for k, v := range ps.SetHeaders {
				pr.Out.Header[k] = []string{v}
			}
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			upstreamError(w, r, err, apiLog)
		},
	}}
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.rp.ServeHTTP(w, r)
}

// stripListenPath removes the listen path from u, keeping a leading "/".
func stripListenPath(u *url.URL, listenPath string) {
	if listenPath == "/" {
		return
	}
	rest := strings.TrimPrefix(u.Path, listenPath)
	if !strings.HasPrefix(rest, "/") {
		rest = "/" + rest
	}
	if u.RawPath != "" {
		raw := strings.TrimPrefix(u.RawPath, listenPath)
		if !strings.HasPrefix(raw, "/") {
			raw = "/" + raw
		}
		u.RawPath = raw
	}
	u.Path = rest
}

// upstreamError answers for an upstream that could not be reached (502) or
// did not answer in time (504). A client that went away gets nothing.
func upstreamError(w http.ResponseWriter, r *http.Request, err error, log *slog.Logger) {
	switch {
	case r.Context().Err() != nil && errors.Is(err, context.Canceled):
		log.Debug("client went away before the upstream answered", "path", r.URL.Path)
	case isTimeout(err):
		log.Warn("upstream timed out", "path", r.URL.Path, "error", err)
		chain.WriteError(w, r, http.StatusGatewayTimeout, chain.CauseUpstreamTimeout, chain.MsgUpstreamTimeout)
	default:
		log.Warn("upstream unreachable", "path", r.URL.Path, "error", err)
		chain.WriteError(w, r, http.StatusBadGateway, chain.CauseUpstreamUnreachable, chain.MsgUpstreamUnreachable)
	}
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// setTarget routes the outbound request to target as Tyk does: scheme and
// host from target, the paths joined by joinPath, target's query first,
// and the Host header of the target.
func setTarget(pr *httputil.ProxyRequest, target *url.URL, disableStripSlash bool) {
	out := pr.Out.URL
	out.Scheme, out.Host = target.Scheme, target.Host
	out.Path = joinPath(target.Path, out.Path, disableStripSlash)
	out.RawPath = ""
	if target.RawQuery == "" || out.RawQuery == "" {
		out.RawQuery = target.RawQuery + out.RawQuery
	} else {
		out.RawQuery = target.RawQuery + "&" + out.RawQuery
	}
	pr.Out.Host = ""
}

// joinPath is Tyk's singleJoiningSlash: exactly one slash between the
// target's path and the request's, and no slash added for an empty
// request path. With disableStripSlash a request path of "" or "/" leaves
// the target's path as it is.
func joinPath(targetPath, subPath string, disableStripSlash bool) string {
	if disableStripSlash && (subPath == "" || subPath == "/") {
		return targetPath
	}
	targetPath = strings.TrimRight(targetPath, "/")
	subPath = strings.TrimLeft(subPath, "/")
	if subPath != "" {
		return targetPath + "/" + subPath
	}
	return targetPath
}
