// Package cors is the chain's first step: it answers browsers' preflights
// and puts CORS headers on every response of its API, the gateway's own
// errors included, from the definition's "CORS" section through
// github.com/rs/cors, as Tyk does.
package cors

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/rs/cors"

	"github.com/tollgate/tollgate/gateway/apidef"
	"github.com/tollgate/tollgate/gateway/chain"
)

// validate rejects settings rs/cors would accept but quietly misread, and
// warns about those browsers will refuse.
func validate(cfg *apidef.CORSConfig) ([]string, error) {
	if cfg.MaxAge < 0 {
		return nil, fmt.Errorf("CORS.max_age: %d is negative; use 0 to send no Access-Control-Max-Age", cfg.MaxAge)
	}
	wildcard := false
	for i, o := range cfg.AllowedOrigins {
		switch {
		case o == "*":
			wildcard = true
		case strings.TrimSpace(o) == "":
			return nil, fmt.Errorf("CORS.allowed_origins[%d]: empty origin", i)
		case strings.Count(o, "*") > 1:
			return nil, fmt.Errorf("CORS.allowed_origins[%d]: %q has more than one \"*\"; only one wildcard per origin is supported", i, o)
		}
	}
	var warnings []string
	for i, m := range cfg.AllowedMethods {
		if !isToken(m) {
			return nil, fmt.Errorf("CORS.allowed_methods[%d]: %q is not an HTTP method", i, m)
		}
		if m != strings.ToUpper(m) {
			warnings = append(warnings, fmt.Sprintf("CORS.allowed_methods[%d]: %q is matched case-sensitively and will not match %q", i, m, strings.ToUpper(m)))
		}
	}
	for i, h := range cfg.AllowedHeaders {
		if h != "*" && !isToken(h) {
			return nil, fmt.Errorf("CORS.allowed_headers[%d]: %q is not a header name", i, h)
		}
	}
	for i, h := range cfg.ExposedHeaders {
		if !isToken(h) {
			return nil, fmt.Errorf("CORS.exposed_headers[%d]: %q is not a header name", i, h)
		}
	}
	if wildcard && cfg.AllowCredentials {
		// rs/cors answers Access-Control-Allow-Origin: * together with
		// Access-Control-Allow-Credentials: true, a pair the Fetch standard
		// forbids.
		warnings = append(warnings, `CORS: allowed_origins "*" with allow_credentials true sends Access-Control-Allow-Origin: * with Access-Control-Allow-Credentials: true; browsers refuse credentialed requests with a wildcard origin, so list the allowed origins instead`)
	}
	return warnings, nil
}

// isToken reports whether s is an RFC 9110 token, as method and header
// names must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// New builds the CORS step of an API from its CORS section; nil when the
// section is not enabled. log receives rs/cors' decisions with debug on.
func New(cfg *apidef.CORSConfig, log *slog.Logger) (chain.Step, []string, error) {
	if !cfg.Enable {
		return nil, nil, nil
	}
	warnings, err := validate(cfg)
	if err != nil {
		return nil, nil, err
	}
	opts := cors.Options{
		AllowedOrigins:     cfg.AllowedOrigins,
		AllowedMethods:     cfg.AllowedMethods,
		AllowedHeaders:     cfg.AllowedHeaders,
		ExposedHeaders:     cfg.ExposedHeaders,
		AllowCredentials:   cfg.AllowCredentials,
		MaxAge:             cfg.MaxAge,
		OptionsPassthrough: cfg.OptionsPassthrough,
	}
	if cfg.Debug {
		opts.Logger = corsLogger{log.With("middleware", "cors")}
	}
	return &step{cors: cors.New(opts)}, warnings, nil
}

// step answers preflights and puts CORS headers on every response of
// its API, the gateway's own errors included, which is why it runs before
// version check and auth.
type step struct {
	cors *cors.Cors
}

var _ chain.Step = (*step)(nil)

func (s *step) Serve(c *chain.Call) bool {
	passed := false
	// rs/cors writes its headers into c.w's header map; it calls next for
	// actual requests and passed-through preflights and answers the other
	// preflights itself (204).
	s.cors.ServeHTTP(c.W, c.R, func(http.ResponseWriter, *http.Request) { passed = true })
	if !passed {
		return false
	}
	// The gateway's Access-Control-* headers stay the only ones: two
	// Access-Control-Allow-Origin values are refused by browsers.
	c.W = chain.OwnedHeaders(c.W, isCORSHeader)
	return true
}

func isCORSHeader(name string) bool {
	return strings.HasPrefix(http.CanonicalHeaderKey(name), "Access-Control-")
}

// corsLogger sends rs/cors' debug output to the gateway's log.
type corsLogger struct {
	log *slog.Logger
}

func (l corsLogger) Printf(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...))
}
