// Command tollgate runs the gateway on a tyk.conf.
//
//	tollgate --conf /etc/tollgate/tyk.conf
//
// SIGINT or SIGTERM stops it gracefully: it stops accepting connections,
// lets requests in flight finish (up to --grace), then closes Redis.
package main

import (
	"context"
	"errors"
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
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run is main without the exit, returning the exit status: 0 after a clean
// shutdown, 1 when serving failed, 2 for bad flags or configuration.
func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("tollgate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	conf := fs.String("conf", "tyk.conf", "path to tyk.conf")
	grace := fs.Duration("grace", 30*time.Second, "how long requests in flight may take to finish on shutdown")
	debug := fs.Bool("debug", false, "log at debug level")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	storage.LogTo(log)

	cfg, warnings, err := gateway.LoadConfig(*conf)
	if err != nil {
		fmt.Fprintf(stderr, "tollgate: %v\n", err)
		return 2
	}
	for _, w := range warnings {
		log.Warn(w)
	}
	gw, err := gateway.New(cfg, gateway.WithLogger(log), gateway.WithRawLog(stderr))
	if err != nil {
		fmt.Fprintf(stderr, "tollgate: %v\n", err)
		return 2
	}
	srv, err := gateway.Listen(cfg.ListenAddr(), gw, log, gateway.WithTimeouts(cfg))
	if err != nil {
		_ = gw.Shutdown(context.Background())
		fmt.Fprintf(stderr, "tollgate: listening: %v\n", err)
		return 1
	}
	log.Info("tollgate is listening", "addr", srv.Addr(), "apis", len(gw.APIs()))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	status := 0
	select {
	case <-ctx.Done():
		log.Info("shutting down: finishing requests in flight", "grace", *grace)
	case <-srv.Done():
		log.Error("server stopped", "error", srv.Err())
		status = 1
	}
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := srv.Shutdown(sctx); errors.Is(err, context.DeadlineExceeded) {
		log.Warn("requests still in flight after the grace period were cut off", "grace", *grace)
	} else if err != nil {
		log.Error("shutting down the server", "error", err)
		status = 1
	}
	if err := gw.Shutdown(sctx); err != nil {
		log.Error("closing storage", "error", err)
		status = 1
	}
	log.Info("tollgate stopped")
	return status
}
