// Command soak sends a long stream of requests to tollgate while it samples
// goroutines, heap in use after GC and RSS, then says whether they grew with
// the requests: a soak test and leak hunter.
//
//	go run ./tools/soak                                   # the seed scenario in process, 1 minute
//	go run ./tools/soak -mix                              # with reloads, key churn, JS errors... mixed in (make soak)
//	go run ./tools/soak -duration 10m -mix -hostile       # and issue 15's hostile inputs (make soak-hostile)
//	go run ./tools/soak -requests 1000000 -duration 20m   # a million requests
//	go run ./tools/soak -conf my/tyk.conf -path /api/ -key-header x-key -key KEY
//	go run ./tools/soak -url http://127.0.0.1:8080 -path /security/users/7 \
//	    -key-header security -key KEY -H 'x-api-version: v1' \
//	    -debug-url http://127.0.0.1:6060 -pid 4242
//
// It prints a summary, writes soak.csv, soak.svg and summary.txt into -out
// (a new temporary folder by default) and exits 0 when nothing grew past
// the thresholds, 1 when something did (or requests failed), and 2 when it
// could not run (flags, setup, sampling).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tollgate/tollgate/gateway"
	"github.com/tollgate/tollgate/tools/soak/seed"
	"github.com/tollgate/tollgate/tools/soak/soak"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	status := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(status)
}

// Exit statuses.
const (
	exitPass   = 0
	exitFail   = 1 // a threshold was passed, or requests failed
	exitCannot = 2 // bad flags, setup or sampling failure
)

// options are the parsed flags.
type options struct {
	// The target: -url, -conf, or the seed scenario.
	url, conf, seedDir string
	keys               int
	cacheAllSafe, mix  bool
	hostile            bool
	// The request of -url and -conf.
	path, method, key, keyHeader string
	headers                      headerFlag
	expect                       int
	// How -url is sampled.
	debugURL, secret string
	pid              int
	// The load and its sampling.
	requests, warmup        int64
	duration, interval      time.Duration
	drain, timeout          time.Duration
	concurrency             int
	goroutineSlack          int64
	heapPer100k, heapGrowth float64
	rssPer100k              float64
	out, title              string
	verbose                 bool
	set                     map[string]bool // flags given on the command line
}

// thresholds are the -max-* flags.
func (o *options) thresholds() soak.Thresholds {
	return soak.Thresholds{GoroutineSlack: o.goroutineSlack, HeapMiBPer100k: o.heapPer100k, HeapGrowthMiB: o.heapGrowth, RSSMiBPer100k: o.rssPer100k}
}

// headerFlag collects -H "Name: value".
type headerFlag []string

func (h *headerFlag) String() string { return strings.Join(*h, ", ") }
func (h *headerFlag) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("%q is not \"Name: value\"", v)
	}
	*h = append(*h, strings.TrimSpace(name)+": "+strings.TrimSpace(value))
	return nil
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{set: map[string]bool{}}
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: go run ./tools/soak [flags]\n\n"+
			"Without -url or -conf it soaks the seed scenario (fixtures/seed) in process.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.url, "url", "", "soak a running gateway at this base URL (loopback only), e.g. http://127.0.0.1:8080")
	fs.StringVar(&o.conf, "conf", "", "soak, in this process, a gateway on this tyk.conf (its storage, or the embedded simulated cluster)")
	fs.StringVar(&o.seedDir, "seed-dir", "fixtures/seed", "the seed scenario's folder (seed scenario only)")
	fs.IntVar(&o.keys, "keys", 16, "valid keys the seed scenario's requests take turns with, 1 to 10000 (seed scenario only)")
	fs.BoolVar(&o.cacheAllSafe, "cache-all-safe", false, "turn on cache_all_safe_requests in a copy of the seed definition, so the response cache stores and hits (seed scenario only)")
	fs.BoolVar(&o.mix, "mix", false, "mix into the seed's requests, one in 500, the rest of a gateway's life: group reloads received by a second gateway, keys created, updated and deleted, JS that throws or runs past jsvm_timeout, webhooks to a dead target, debug summaries (seed scenario only; make soak sets it)")
	fs.BoolVar(&o.hostile, "hostile", false, "mix into the seed's requests, one in 500, the hostile inputs of issue 15, each checked against its limit: JS doubling a string (jsvm_memory_limit), a body a byte at a time (read_timeout), control API bodies too deep or too large, dot segments and a lower-case method, a webhook target that hangs, a FIFO, a /dev/zero symlink and an oversized definition around a reload (seed scenario only; make soak-hostile sets it)")
	fs.StringVar(&o.path, "path", "/", "request path, with query (-url and -conf)")
	fs.StringVar(&o.method, "method", http.MethodGet, "request method (-url and -conf)")
	fs.StringVar(&o.key, "key", "", "API key sent in -key-header (-url and -conf)")
	fs.StringVar(&o.keyHeader, "key-header", "Authorization", "header that carries -key (-url and -conf)")
	fs.Var(&o.headers, "H", "extra request header \"Name: value\", repeatable (-url and -conf)")
	fs.IntVar(&o.expect, "expect", http.StatusOK, "status every request should get; 0 accepts any (-url and -conf)")
	fs.StringVar(&o.debugURL, "debug-url", "", "where the gateway serves GET /debug/summary?gc=1: its debug listener, or its own URL with -secret (-url only; default -url when -secret is set)")
	fs.StringVar(&o.secret, "secret", "", "sent as X-Tyk-Authorization to the debug summary (-url only)")
	fs.IntVar(&o.pid, "pid", 0, "process id of the gateway, for its RSS from /proc/<pid>/status (-url only)")
	fs.Int64Var(&o.requests, "requests", 1_000_000, fmt.Sprintf("stop after this many requests, warmup included, 1 to %d", soak.MaxRequests))
	fs.DurationVar(&o.duration, "duration", time.Minute, fmt.Sprintf("stop after this long, warmup included, 1s to %v (whichever of -requests and -duration comes first)", soak.MaxDuration))
	fs.IntVar(&o.concurrency, "concurrency", 8, fmt.Sprintf("clients sending requests in a loop, 1 to %d", soak.MaxConcurrency))
	fs.Int64Var(&o.warmup, "warmup", 2000, "requests sent before the baseline is read (at most a tenth of -requests and of -duration)")
	fs.DurationVar(&o.interval, "interval", time.Second, fmt.Sprintf("time between samples, %v to %v", soak.MinInterval, soak.MaxInterval))
	fs.DurationVar(&o.drain, "drain", 10*time.Second, fmt.Sprintf("after the load, wait up to this long for goroutines to return to the baseline, 100ms to %v", soak.MaxDrain))
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "timeout of each request, 100ms to 5m")
	def := soak.DefaultThresholds()
	fs.Int64Var(&o.goroutineSlack, "max-goroutine-growth", def.GoroutineSlack, "fail when goroutines after the drain exceed the baseline by more than this")
	fs.Float64Var(&o.heapPer100k, "max-heap-mib-per-100k", def.HeapMiBPer100k, "fail when the heap grows faster than this many MiB per 100k requests (least-squares); 0: not checked")
	fs.Float64Var(&o.heapGrowth, "max-heap-growth-mib", def.HeapGrowthMiB, "fail when the heap after the drain exceeds the baseline by more than this many MiB; 0: not checked")
	fs.Float64Var(&o.rssPer100k, "max-rss-mib-per-100k", def.RSSMiBPer100k, "fail when RSS grows faster than this many MiB per 100k requests (least-squares); 0: not checked")
	fs.StringVar(&o.out, "out", "", "folder for soak.csv, soak.svg and summary.txt (default: a new temporary folder)")
	fs.StringVar(&o.title, "title", "", "title of the chart (default: \"tollgate soak\" and the date)")
	fs.BoolVar(&o.verbose, "v", false, "show the in-process gateway's log from level info (default: errors only)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: every setting is a flag (see -h)", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	return o, o.validate()
}

// validate checks every flag's bounds and combination; the error names the
// flag.
func (o *options) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if o.requests < 1 || o.requests > soak.MaxRequests {
		bad("-requests %d: must be between 1 and %d", o.requests, soak.MaxRequests)
	}
	if o.duration < time.Second || o.duration > soak.MaxDuration {
		bad("-duration %v: must be between 1s and %v", o.duration, soak.MaxDuration)
	}
	if o.concurrency < 1 || o.concurrency > soak.MaxConcurrency {
		bad("-concurrency %d: must be between 1 and %d", o.concurrency, soak.MaxConcurrency)
	}
	if o.warmup < 0 || o.warmup > soak.MaxRequests {
		bad("-warmup %d: must be between 0 and %d", o.warmup, soak.MaxRequests)
	}
	if o.interval < soak.MinInterval || o.interval > soak.MaxInterval {
		bad("-interval %v: must be between %v and %v", o.interval, soak.MinInterval, soak.MaxInterval)
	} else if n := o.duration / o.interval; n > soak.MaxSamples {
		bad("-interval %v: with -duration %v it would take %d samples, more than %d; sample less often", o.interval, o.duration, n, soak.MaxSamples)
	}
	if o.drain < 100*time.Millisecond || o.drain > soak.MaxDrain {
		bad("-drain %v: must be between 100ms and %v", o.drain, soak.MaxDrain)
	}
	if o.timeout < 100*time.Millisecond || o.timeout > 5*time.Minute {
		bad("-timeout %v: must be between 100ms and 5m", o.timeout)
	}
	if o.goroutineSlack < 0 {
		bad("-max-goroutine-growth %d: must not be negative", o.goroutineSlack)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"max-heap-mib-per-100k", o.heapPer100k}, {"max-heap-growth-mib", o.heapGrowth}, {"max-rss-mib-per-100k", o.rssPer100k}} {
		if f.v < 0 || math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			bad("-%s %v: must be a number, 0 or more", f.name, f.v)
		}
	}
	if o.url != "" && o.conf != "" {
		bad("-url and -conf: choose one target")
	}
	only := func(names []string, where string) {
		for _, n := range names {
			if o.set[n] {
				bad("-%s applies %s", n, where)
			}
		}
	}
	seedFlags := []string{"seed-dir", "keys", "cache-all-safe", "mix", "hostile"}
	requestFlags := []string{"path", "method", "key", "key-header", "H", "expect"}
	remoteFlags := []string{"debug-url", "secret", "pid"}
	switch {
	case o.url != "":
		only(seedFlags, "to the seed scenario only, not with -url")
		if err := checkLoopback("-url", o.url); err != nil {
			errs = append(errs, err)
		}
		if o.debugURL == "" && o.secret != "" {
			o.debugURL = o.url
		}
		if o.debugURL != "" {
			if err := checkLoopback("-debug-url", o.debugURL); err != nil {
				errs = append(errs, err)
			}
		}
		if o.debugURL == "" && o.pid == 0 {
			bad("-url: give -debug-url (goroutines, heap and RSS from the gateway's debug summary) and/or -pid (its RSS), or nothing can be measured")
		}
		if o.pid < 0 || (o.set["pid"] && o.pid == 0) {
			bad("-pid %d: not a process id", o.pid)
		}
	case o.conf != "":
		only(seedFlags, "to the seed scenario only, not with -conf")
		only(remoteFlags, "to -url only; with -conf the gateway runs in this process and is sampled directly")
	default:
		only(requestFlags, "to -url and -conf only; the seed scenario makes its own requests")
		only(remoteFlags, "to -url only; the seed scenario runs in this process and is sampled directly")
		if o.keys < 1 || o.keys > 10_000 {
			bad("-keys %d: must be between 1 and 10000", o.keys)
		}
	}
	if o.url != "" || o.conf != "" {
		if !strings.HasPrefix(o.path, "/") {
			bad("-path %q: must start with /", o.path)
		}
		if o.method == "" || strings.ContainsAny(o.method, " \t\r\n") {
			bad("-method %q: not an HTTP method", o.method)
		}
		if o.expect != 0 && (o.expect < 100 || o.expect > 599) {
			bad("-expect %d: not an HTTP status (0 accepts any)", o.expect)
		}
		if o.key != "" && strings.TrimSpace(o.keyHeader) == "" {
			bad("-key-header: empty, but -key is set")
		}
	}
	return errors.Join(errs...)
}

// checkLoopback refuses URLs that are not http(s) on a loopback address:
// the soak sends load to this machine only.
func checkLoopback(flagName, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s %q: %w", flagName, raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%s %q: not an http:// or https:// URL", flagName, raw)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%s %q: the soak sends load to loopback addresses only (127.0.0.1, ::1, localhost)", flagName, raw)
	}
	if u.Path != "" && u.Path != "/" {
		return fmt.Errorf("%s %q: give the base URL only, without a path (the path goes in -path)", flagName, raw)
	}
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitPass
	}
	if err != nil {
		fmt.Fprintf(stderr, "soak: %v\n", err)
		return exitCannot
	}
	level := slog.LevelError
	if o.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	target, sampler, closeTarget, err := o.setUp(ctx, log)
	if err != nil {
		fmt.Fprintf(stderr, "soak: %v\n", err)
		return exitCannot
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := closeTarget(cctx); err != nil {
			fmt.Fprintf(stderr, "soak: stopping the target: %v\n", err)
		}
	}()

	outDir := o.out
	if outDir == "" {
		outDir, err = os.MkdirTemp("", "tollgate-soak-")
	} else {
		err = os.MkdirAll(outDir, 0o755)
	}
	if err != nil {
		fmt.Fprintf(stderr, "soak: -out %s: %v\n", o.out, err)
		return exitCannot
	}

	fmt.Fprintf(stderr, "soak: %s\nsoak: up to %d requests or %v, %d clients, a sample every %v; Ctrl-C stops the load early\n",
		target.Name, o.requests, o.duration, o.concurrency, o.interval)
	rep, runErr := soak.Run(ctx, soak.Config{
		Target:      target,
		Sampler:     sampler,
		Requests:    o.requests,
		Duration:    o.duration,
		Concurrency: o.concurrency,
		Interval:    o.interval,
		Warmup:      o.warmup,
		Drain:       o.drain,
		Poll:        poll(o),
		Timeout:     o.timeout,
		Thresholds:  o.thresholds(),
		OnSample:    progress(stderr),
		Log:         log,
	})
	if rep == nil {
		fmt.Fprintf(stderr, "soak: %v\n", runErr)
		return exitCannot
	}
	title := o.title
	if title == "" {
		title = "tollgate soak, " + rep.Started.Format("2006-01-02 15:04")
	}
	if err := writeOutputs(outDir, rep, title); err != nil {
		fmt.Fprintf(stderr, "soak: -out %s: %v\n", outDir, err)
		return exitCannot
	}
	fmt.Fprintln(stdout)
	_ = rep.WriteSummary(stdout)
	fmt.Fprintf(stdout, "%-12s %s\n%-12s %s\n%-12s %s\n", "chart", filepath.Join(outDir, "soak.svg"),
		"samples", filepath.Join(outDir, "soak.csv"), "summary", filepath.Join(outDir, "summary.txt"))
	if runErr != nil {
		fmt.Fprintf(stderr, "soak: %v\n", runErr)
		return exitCannot
	}
	if rep.Failed() {
		return exitFail
	}
	return exitPass
}

// poll is the time between readings while settling and draining: short in
// process, gentler on a remote gateway (each reading runs a GC there).
func poll(o *options) time.Duration {
	if o.url != "" {
		return min(250*time.Millisecond, o.interval)
	}
	return min(50*time.Millisecond, o.interval)
}

// setUp starts or reaches the target and picks its sampler; closeTarget
// stops whatever setUp started.
func (o *options) setUp(ctx context.Context, log *slog.Logger) (soak.Target, soak.Sampler, func(context.Context) error, error) {
	nothing := func(context.Context) error { return nil }
	switch {
	case o.url != "":
		var samplers []soak.Sampler
		if o.debugURL != "" {
			s := soak.Debug(o.debugURL, o.secret, nil)
			if _, err := s.Read(ctx); err != nil {
				return soak.Target{}, nil, nil, fmt.Errorf("-debug-url %s: %w", o.debugURL, err)
			}
			samplers = append(samplers, s)
		}
		if o.pid != 0 {
			s := soak.Process(o.pid)
			if _, err := s.Read(ctx); err != nil {
				return soak.Target{}, nil, nil, fmt.Errorf("-pid %d: %w", o.pid, err)
			}
			samplers = append(samplers, s)
		}
		name := fmt.Sprintf("%s %s%s", o.method, strings.TrimSuffix(o.url, "/"), o.path)
		return soak.Target{Name: name, URL: o.url, Mix: soak.Repeat(o.request())}, soak.Combine(samplers...), nothing, nil
	case o.conf != "":
		cfg, warnings, err := gateway.LoadConfig(o.conf)
		if err != nil {
			return soak.Target{}, nil, nil, fmt.Errorf("-conf: %w", err)
		}
		for _, w := range warnings {
			log.Warn(w)
		}
		gw, err := gateway.New(cfg, gateway.WithLogger(log))
		if err != nil {
			return soak.Target{}, nil, nil, fmt.Errorf("-conf %s: %w", o.conf, err)
		}
		name := fmt.Sprintf("%s in process, %s %s", o.conf, o.method, o.path)
		// With no Redis in tyk.conf the gateway embeds the simulated
		// cluster; its goroutines are Redis's, not the gateway's.
		return soak.Target{Name: name, Handler: gw, Mix: soak.Repeat(o.request())}, soak.SelfExcept(seed.SimulatedRedis), gw.Shutdown, nil
	default:
		sc, err := seed.Start(seed.Options{Dir: o.seedDir, Keys: o.keys, CacheAllSafeRequests: o.cacheAllSafe, Mix: o.mix, Hostile: o.hostile, Log: log})
		if err != nil {
			if !o.set["seed-dir"] {
				err = fmt.Errorf("%w (run from the repository root, or give -seed-dir)", err)
			}
			return soak.Target{}, nil, nil, fmt.Errorf("-seed-dir %s: %w", o.seedDir, err)
		}
		return sc.Target(), sc.Sampler(), sc.Close, nil
	}
}

// request is the one request of -url and -conf.
func (o *options) request() soak.Request {
	h := http.Header{}
	for _, kv := range o.headers {
		name, value, _ := strings.Cut(kv, ": ")
		h.Add(name, value)
	}
	if o.key != "" {
		h.Set(o.keyHeader, o.key)
	}
	return soak.Request{Method: o.method, Path: o.path, Header: h, Want: o.expect}
}

// progress prints a line every 10 s of the run.
func progress(w io.Writer) func(soak.Sample) {
	next := 10 * time.Second
	return func(s soak.Sample) {
		if s.Elapsed < next || s.Phase == soak.PhaseDrain {
			return
		}
		next = s.Elapsed.Truncate(10*time.Second) + 10*time.Second
		line := fmt.Sprintf("soak: %6s  %-8s requests %d", s.Elapsed.Truncate(time.Second), s.Phase, s.Requests)
		if v, ok := s.Value(soak.Goroutines); ok {
			line += fmt.Sprintf("  goroutines %d", v)
		}
		if v, ok := s.Value(soak.Heap); ok {
			line += fmt.Sprintf("  heap %.1f MiB", float64(v)/(1<<20))
		}
		if v, ok := s.Value(soak.RSS); ok {
			line += fmt.Sprintf("  rss %.1f MiB", float64(v)/(1<<20))
		}
		fmt.Fprintln(w, line)
	}
}

// writeOutputs writes soak.csv, soak.svg and summary.txt into dir.
func writeOutputs(dir string, rep *soak.Report, title string) error {
	write := func(name string, fill func(io.Writer) error) error {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if err := fill(f); err != nil {
			f.Close()
			return fmt.Errorf("writing %s: %w", f.Name(), err)
		}
		return f.Close()
	}
	return errors.Join(
		write("soak.csv", rep.WriteCSV),
		write("soak.svg", func(w io.Writer) error { return rep.WriteSVG(w, title) }),
		write("summary.txt", rep.WriteSummary),
	)
}
