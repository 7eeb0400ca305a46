// Command demo runs tollgate the way `make run` shows it: the gateway on
// fixtures/demo with its embedded simulated Redis Cluster, and an echo
// upstream that answers with the request it received.
//
//	go run ./tools/demo                      # gateway on 127.0.0.1:8080
//	go run ./tools/demo --conf other/tyk.conf --upstream 127.0.0.1:9000
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tollgate/tollgate/gateway"
	"github.com/tollgate/tollgate/gateway/storage"
	"github.com/tollgate/tollgate/tools/echo"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	conf := fs.String("conf", "fixtures/demo/tyk.conf", "tyk.conf to serve")
	upstreamAddr := fs.String("upstream", "127.0.0.1:8090", "where the echo upstream listens (the demo APIs' target_url)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	storage.LogTo(log)

	upstream, err := gateway.Listen(*upstreamAddr, echo.Handler(), log)
	if err != nil {
		fmt.Fprintf(stderr, "demo: starting the echo upstream on %s: %v\n", *upstreamAddr, err)
		return 1
	}
	defer shutdown(upstream.Shutdown)

	cfg, warnings, err := gateway.LoadConfig(*conf)
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 2
	}
	for _, w := range warnings {
		log.Warn(w)
	}
	gw, err := gateway.New(cfg, gateway.WithLogger(log))
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 2
	}
	defer shutdown(gw.Shutdown)
	srv, err := gateway.Listen(cfg.ListenAddr(), gw, log, gateway.WithTimeouts(cfg))
	if err != nil {
		fmt.Fprintf(stderr, "demo: listening on %s: %v\n", cfg.ListenAddr(), err)
		return 1
	}
	defer shutdown(srv.Shutdown)

	base := srv.URL()
	fmt.Fprintf(stdout, `
tollgate is serving %s on %s (echo upstream on %s). Try:

  curl -i %s/hello                  # health, including the Redis Cluster
  curl -i '%s/echo/anything?x=1'    # proxied: the echo shows what the upstream received
  curl -i %s/down/                  # upstream unreachable: 502 with X-Tollgate-Error
  curl -i %s/nowhere                # no API here: 404

  curl -i %s/orders/                # keyed API without a key: 401
  curl -s -H 'X-Tyk-Authorization: demo-secret' -d '{"access_rights": {"orders": {"api_id": "orders"}}, "rate": 3, "per": 10}' \
       %s/tyk/keys/create          # a key allowed 3 requests per 10 s
  curl -i -H 'Authorization: KEY' %s/orders/   # with that key: 200, then 429 after 3

Ctrl-C stops it.
`, *conf, base, upstream.URL(), base, base, base, base, base, base, base)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
	case <-srv.Done():
		log.Error("gateway stopped", "error", srv.Err())
		return 1
	}
	return 0
}

// shutdown runs a Shutdown with a bounded grace period.
func shutdown(f func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = f(ctx)
}
