// Command tollgate runs the gateway on a tyk.conf.
//
//	tollgate --conf /etc/tollgate/tyk.conf [--grace 30s] [--flush 10s] [--webhook-grace 5s]
//
// SIGINT or SIGTERM stops it in phases, each with its own deadline, so a
// phase that runs out of time never takes the next one's:
//
//  1. stop accepting connections and let requests in flight finish for up
//     to --grace; those still running then are cut off;
//  2. whatever happened to the requests, write everything buffered for
//     Redis (analytics records) within --flush, counted from then;
//  3. deliver the events still queued (webhooks) for up to
//     --webhook-grace, then cut them off;
//  4. close Redis.
//
// The exit status says what was cut; when several apply, the highest:
//
//	0  clean: every request finished, everything buffered is in Redis, every queued webhook was delivered
//	1  serving failed (the listener stopped on its own), or closing failed otherwise
//	2  bad flags or configuration, or the listen address could not be had
//	   (another process holds the port, or the address is not this
//	   machine's); nothing was served. The message names the flag or the
//	   tyk.conf field.
//	3  webhooks still queued or in flight at --webhook-grace were cut off (everything buffered is in Redis)
//	4  requests still in flight at --grace were cut off (everything buffered is in Redis)
//	5  buffered data could not be written to Redis (Redis refused it, or --flush passed); the log says how many records
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tollgate/tollgate/gateway"
	"github.com/tollgate/tollgate/gateway/apidef"
	"github.com/tollgate/tollgate/gateway/storage"
)

// Exit statuses; see the package doc.
const (
	exitClean       = 0
	exitFailed      = 1
	exitUsage       = 2
	exitWebhooksCut = 3
	exitRequestsCut = 4
	exitUnwritten   = 5
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run is main without the exit, returning the exit status.
func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("tollgate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	conf := fs.String("conf", "tyk.conf", "path to tyk.conf")
	grace := fs.Duration("grace", 30*time.Second, "on shutdown, how long requests in flight may take to finish before they are cut off")
	flush := fs.Duration("flush", gateway.DefaultFlushLimit, "on shutdown, after --grace however it ended, how long writing buffered analytics records to Redis may take")
	webhookGrace := fs.Duration("webhook-grace", gateway.DefaultWebhookLimit, "on shutdown, after the flush, how long queued webhooks may still be delivered before they are cut off")
	debug := fs.Bool("debug", false, "log at debug level")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitClean
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tollgate: unexpected argument %q: the configuration is given with --conf FILE\n", fs.Arg(0))
		return exitUsage
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	storage.LogTo(log)

	cfg, warnings, err := gateway.LoadConfig(*conf)
	if errors.Is(err, iofs.ErrNotExist) {
		fmt.Fprintf(stderr, "tollgate: --conf: %v (give the path of tyk.conf with --conf FILE)\n", err)
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(stderr, "tollgate: %v\n", err)
		return exitUsage
	}
	for _, w := range warnings {
		log.Warn(w)
	}
	gw, err := gateway.New(cfg, gateway.WithLogger(log), gateway.WithRawLog(stderr),
		gateway.WithShutdownLimits(gateway.ShutdownLimits{Flush: *flush, Webhooks: *webhookGrace}))
	if err != nil {
		fmt.Fprintf(stderr, "tollgate: %v\n", err)
		return exitUsage
	}
	srv, err := gateway.Listen(cfg.ListenAddr(), gw, log, gateway.WithTimeouts(cfg))
	if err != nil {
		_ = gw.Shutdown(context.Background())
		fmt.Fprintf(stderr, "tollgate: %s: cannot listen on %s: %v\n", listenField(err), cfg.ListenAddr(), err)
		return exitUsage
	}
	log.Info("tollgate is listening", "addr", srv.Addr(), "store", gw.Store().String(), "apis", served(gw.APIs()))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	status := exitClean
	select {
	case <-ctx.Done():
		log.Info("shutting down: finishing requests in flight", "grace", *grace)
	case <-srv.Done():
		log.Error("server stopped", "error", srv.Err())
		status = exitFailed
	}
	graceCtx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := srv.Shutdown(graceCtx); errors.Is(err, context.DeadlineExceeded) {
		log.Warn("requests still in flight after the grace period were cut off", "grace", *grace)
		status = max(status, exitRequestsCut)
	} else if err != nil {
		log.Error("shutting down the server", "error", err)
		status = max(status, exitFailed)
	}
	// Not graceCtx: it may have run out, and the gateway's phases have
	// deadlines of their own (--flush, --webhook-grace).
	if err := gw.Shutdown(context.Background()); err != nil {
		status = max(status, shutdownStatus(err))
		log.Error("shutting down the gateway", "error", err)
	}
	log.Info("tollgate stopped", "status", status)
	return status
}

// listenField names the tyk.conf field to change when the gateway cannot
// listen: the port when it is taken or privileged, else the address (not
// this machine's, or a name that does not resolve).
func listenField(err error) string {
	if errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EACCES) {
		return "listen_port"
	}
	return "listen_address"
}

// served lists the APIs for the startup message: "orders /orders/, echo
// /echo/", or says that none is.
func served(apis []*apidef.APIDefinition) string {
	if len(apis) == 0 {
		return "none (app_path has no active API definition that loads)"
	}
	list := make([]string, len(apis))
	for i, a := range apis {
		list[i] = a.APIID + " " + a.Proxy.ListenPath
	}
	return strings.Join(list, ", ")
}

// shutdownStatus is the exit status for what Gateway.Shutdown reported:
// the highest that applies, as errors joined there may say several things.
func shutdownStatus(err error) int {
	switch {
	case errors.Is(err, gateway.ErrBufferedLost):
		return exitUnwritten
	case errors.Is(err, gateway.ErrEventsCut):
		return exitWebhooksCut
	default:
		return exitFailed
	}
}
