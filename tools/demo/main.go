// Command demo runs tollgate the way `make run` shows it: the gateway on
// fixtures/demo with its embedded simulated Redis Cluster, and an echo
// upstream that answers with the request it received. Once it serves, it
// creates a key through its own control API and prints curl lines that use
// it, ready to paste. Ctrl-C stops it.
//
//	go run ./tools/demo                      # gateway on 127.0.0.1:8080
//	go run ./tools/demo -port 9000           # on another port (0: any free one)
//	go run ./tools/demo -conf other/tyk.conf -upstream 127.0.0.1:9001
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tollgate/tollgate/gateway"
	"github.com/tollgate/tollgate/gateway/storage"
	"github.com/tollgate/tollgate/tools/echo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// The key the demo creates: the orders API, 3 requests per 10 s, so a
// fourth request within 10 s shows the rate limit.
const demoKeyRequest = `{"access_rights": {"orders": {"api_id": "orders"}}, "rate": 3, "per": 10}`

// run is main without the signals and the exit: it serves until ctx ends
// and returns the exit status (0 stopped on request, 1 failed while
// serving, 2 bad flags or configuration).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	conf := fs.String("conf", "fixtures/demo/tyk.conf", "tyk.conf to serve")
	port := fs.Int("port", 8080, "port the gateway listens on, in place of the tyk.conf's listen_port (0: any free port)")
	upstreamAddr := fs.String("upstream", "127.0.0.1:8090", "where the echo upstream listens: fixtures/demo's APIs send to 127.0.0.1:8090, so move it only with a -conf whose APIs follow")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if *port < 0 || *port > 65535 {
		fmt.Fprintf(stderr, "demo: -port: %d is not a TCP port (0 to 65535)\n", *port)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	storage.LogTo(log)

	cfg, warnings, err := gateway.LoadConfig(*conf)
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 2
	}
	for _, w := range warnings {
		log.Warn(w)
	}
	upstream, err := gateway.Listen(*upstreamAddr, echo.Handler(), log)
	if err != nil {
		fmt.Fprintf(stderr, "demo: -upstream: starting the echo upstream on %s: %v\n", *upstreamAddr, err)
		return 1
	}
	gw, err := gateway.New(cfg, gateway.WithLogger(log))
	if err != nil {
		shutdown(upstream.Shutdown)
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 2
	}
	addr := net.JoinHostPort(cfg.ListenAddress, strconv.Itoa(*port))
	srv, err := gateway.Listen(addr, gw, log, gateway.WithTimeouts(cfg))
	if err != nil {
		shutdown(gw.Shutdown)
		shutdown(upstream.Shutdown)
		fmt.Fprintf(stderr, "demo: -port: listening on %s: %v (another process may have it: try -port 0)\n", addr, err)
		return 1
	}

	status := serve(ctx, stdout, stderr, log, srv, *conf, cfg.Secret, upstream.URL(), gw.Store().String())
	fmt.Fprintln(stdout, "\nstopping: finishing requests in flight, then closing the gateway, its Redis store and the echo upstream...")
	shutdown(srv.Shutdown)
	shutdown(gw.Shutdown)
	shutdown(upstream.Shutdown)
	fmt.Fprintln(stdout, "stopped.")
	return status
}

// serve creates the demo key, prints what to try and waits for ctx or for
// the server to fail.
func serve(ctx context.Context, stdout, stderr io.Writer, log *slog.Logger, srv *gateway.Server, conf, secret, upstream, store string) int {
	base := srv.URL()
	key, err := createKey(ctx, base, secret)
	if err != nil && ctx.Err() != nil {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "demo: creating a key through the control API: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, `
tollgate is serving %s on %s (echo upstream on %s),
with its keys in the %s. Try:

  curl -i %s/hello                  # health: pass or fail (details with the control API secret)
  curl -i '%s/echo/anything?x=1'    # proxied: the echo shows what the upstream received
  curl -i %s/down/                  # upstream unreachable: 502 with X-Tollgate-Error
  curl -i %s/nowhere                # no API here: 404

  curl -i %s/orders/                # keyed API without a key: 401
  curl -i -H 'Authorization: %s' %s/orders/
                                    # with the key the demo just created: 200, then 429 after 3 in 10 s

  curl -s -H 'X-Tyk-Authorization: %s' -d '%s' %s/tyk/keys/create
                                    # another key, through the control API

Ctrl-C stops it.
`, conf, base, upstream, store, base, base, base, base, base, key, base, secret, demoKeyRequest, base)

	select {
	case <-ctx.Done():
		return 0
	case <-srv.Done():
		log.Error("gateway stopped", "error", srv.Err())
		return 1
	}
}

// createKey asks the gateway's own control API for the demo key, as the
// curl line it prints would.
func createKey(ctx context.Context, base, secret string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/tyk/keys/create", strings.NewReader(demoKeyRequest))
	if err != nil {
		return "", err
	}
	req.Header.Set("X-Tyk-Authorization", secret)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	var created struct {
		Key string `json:"key"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &created) != nil || created.Key == "" {
		return "", fmt.Errorf("%s: %s", resp.Status, body)
	}
	return created.Key, nil
}

// shutdown runs a Shutdown with a bounded grace period.
func shutdown(f func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = f(ctx)
}
