package gateway

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
	"time"
)

// newTransport is the one upstream transport the gateway shares between its
// APIs: connections to an upstream are reused across requests and reloads.
// Waiting for an upstream's response headers (and for a connection) is
// bounded by timeout; past it the request gets 504.
func newTransport(timeout time.Duration) *http.Transport {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}
}

// proxy forwards an API's requests to its upstream.
type proxy struct {
	target     *url.URL
	listenPath string // normalised: no trailing slash, except "/"
	rp         *httputil.ReverseProxy
}

var _ http.Handler = (*proxy)(nil)

// newProxy builds the reverse proxy of one API. Everything that can be
// computed once (target URL, canonical header names) is computed here, not
// per request.
func newProxy(def *APIDefinition, transport http.RoundTripper, log *slog.Logger) (*proxy, error) {
	target, err := parseTarget(def.Proxy.TargetURL)
	if err != nil {
		return nil, err
	}
	version, err := def.servedVersion()
	if err != nil {
		return nil, err
	}
	set := make(map[string]string, len(version.GlobalHeaders))
	for k, v := range version.GlobalHeaders {
		set[textproto.CanonicalMIMEHeaderKey(k)] = v
	}
	remove := make([]string, len(version.GlobalHeadersRemove))
	for i, k := range version.GlobalHeadersRemove {
		remove[i] = textproto.CanonicalMIMEHeaderKey(k)
	}
	p := &proxy{target: target, listenPath: normalizeListenPath(def.Proxy.ListenPath)}
	strip, preserveHost := def.Proxy.StripListenPath, def.Proxy.PreserveHostHeader
	apiLog := log.With("api_id", def.APIID)
	p.rp = &httputil.ReverseProxy{
		Transport: transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			if strip {
				stripListenPath(pr.Out.URL, p.listenPath)
			}
			pr.SetURL(target)
			pr.SetXForwarded()
			if preserveHost {
				pr.Out.Host = pr.In.Host
			}
			for _, k := range remove {
				pr.Out.Header.Del(k)
			}
			for k, v := range set {
				pr.Out.Header[k] = []string{v}
			}
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			upstreamError(w, r, err, apiLog)
		},
	}
	return p, nil
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
		writeError(w, http.StatusGatewayTimeout, CauseUpstreamTimeout, msgUpstreamTimeout)
	default:
		log.Warn("upstream unreachable", "path", r.URL.Path, "error", err)
		writeError(w, http.StatusBadGateway, CauseUpstreamUnreachable, msgUpstreamUnreachable)
	}
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
