package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Server serves a handler on a listener it owns. Shutdown stops it and
// waits for its goroutine, so nothing is left running.
type Server struct {
	srv  *http.Server
	addr string
	done chan struct{}
	err  error // set before done closes
}

// ServerOption changes how Listen serves.
type ServerOption func(*http.Server)

// WithTimeouts applies tyk.conf's http_server_options to the server: a
// request must be read whole within read_timeout (a body sent a byte at a
// time is cut there) and its response written within write_timeout, 120
// seconds each by default, as in Tyk; headers within read_timeout too, or
// 60 seconds if that is longer.
func WithTimeouts(cfg *Config) ServerOption {
	read, write := cfg.HTTPServerOptions.Timeouts()
	return func(s *http.Server) {
		s.ReadTimeout, s.WriteTimeout = read, write
		s.ReadHeaderTimeout = min(s.ReadHeaderTimeout, read)
	}
}

// Listen starts serving h on addr ("127.0.0.1:0" picks a free port).
// Without options, a request has 60 seconds to send its headers and the
// rest is not bounded in time (upstreams of specs and tools use that).
func Listen(addr string, h http.Handler, log *slog.Logger, opts ...ServerOption) (*Server, error) {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	for _, o := range opts {
		o(hs)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{
		srv:  hs,
		addr: l.Addr().String(),
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
	}()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.addr }

// URL is the server's base URL.
func (s *Server) URL() string { return "http://" + s.addr }

// Done is closed when the server has stopped serving.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err is why the server stopped on its own, once Done is closed.
func (s *Server) Err() error {
	<-s.done
	return s.err
}

// Shutdown stops accepting connections and lets requests in flight finish
// until ctx ends; then it closes what is left. It returns when the serving
// goroutine has exited.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	<-s.done
	return err
}
