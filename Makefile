# tollgate: `make help` lists the targets.

GINKGO := go tool ginkgo
SPEC_FLAGS := -r -p --randomize-all --fail-on-pending --fail-on-empty --race --trace --timeout=12m

.PHONY: help run test test-real cluster-up cluster-down outline lint build bench bench-wrk soak soak-hostile

help: ### list the targets
	@grep -E '^[a-z-]+:.*###' $(MAKEFILE_LIST) | sed -E 's/:.*### /\t/' | expand -t 14

# make run ARGS='-port 9090' passes flags to the demo: -port (8080; 0 for any
# free port), -upstream (the echo upstream, 127.0.0.1:8090), -conf
# (fixtures/demo/tyk.conf).
ARGS ?=

run: ### build the demo into bin/demo and run it on fixtures/demo: embedded simulated Redis Cluster, echo upstream, 127.0.0.1:8080 (ARGS='-port 9090')
	@echo "run: building tollgate's demo into bin/demo (seconds with a warm build cache; minutes with a cold one, 12 measured on a busy 2-core machine)..."
	@go build -o bin/demo ./tools/demo
	@echo "run: bin/demo $(ARGS)"
	@exec bin/demo $(ARGS)

# Ginkgo's colours only on a terminal: a log written to a file or read by CI
# stays plain text.
COLOR = $$([ -t 1 ] || echo --no-color)

test: lint ### run every spec with the race detector and the leak guard, on simulated Redis Clusters
	@echo "test: building every suite with the race detector (minutes with a cold build cache, 16 measured on a busy 2-core machine; about a minute when warm), then running them in parallel, suite by suite..."; \
	dir=$$(mktemp -d); \
	$(GINKGO) $(SPEC_FLAGS) $(COLOR) --label-filter='!real-only' --skip-package=tools/bench --output-dir=$$dir --json-report=specs.json ./...; status=$$?; \
	go run ./tools/outline -counts $$dir/specs.json; exit $$status

# The real tier shares one cluster, emptied before each spec, so its specs
# run one at a time.
REAL_PACKAGES := ./specs ./cluster ./gateway/event ./gateway/limit

test-real: ### run the specs on the real Redis Cluster of `make cluster-up` (simulated-only specs left out)
	@addrs=$$(tools/redis-cluster/cluster.sh addrs); \
	redis-cli -p 7000 cluster info 2>/dev/null | grep -q cluster_state:ok || { echo "no Redis Cluster on $$addrs: run make cluster-up first"; exit 1; }; \
	echo "test-real: building the suites with the race detector (minutes on a cold build cache), then running them one spec at a time on $$addrs..."; \
	dir=$$(mktemp -d); \
	TOLLGATE_REDIS_CLUSTER=$$addrs $(GINKGO) $(subst -p ,,$(SPEC_FLAGS)) $(COLOR) --label-filter='!simulated-only' --output-dir=$$dir --json-report=specs.json $(REAL_PACKAGES); status=$$?; \
	go run ./tools/outline -counts $$dir/specs.json; exit $$status

cluster-up: ### start a real Redis Cluster (redis-server: 3 masters, 3 replicas) on 127.0.0.1:7000-7005
	@tools/redis-cluster/cluster.sh up

cluster-down: ### stop the real Redis Cluster and remove its data
	@tools/redis-cluster/cluster.sh down

outline: ### write the spec tree as a Markdown document, docs/behaviour.md: a description of the gateway's behaviour
	@echo "outline: compiling the suites for a dry run (about 2 min on a cold build cache, a minute when warm)..."; \
	dir=$$(mktemp -d); \
	{ $(GINKGO) --dry-run --succinct --no-color --output-dir=$$dir --json-report=report.json --silence-skips ./specs ./cluster ./gateway/... 2>&1; echo $$? > $$dir/status; } \
		| tee $$dir/dry-run.log | sed -nE 's/^\[[0-9]+\] (.*) - ([0-9]+)\/[0-9]+ specs.*/outline: read \1: \2 specs/p'; \
	[ "$$(cat $$dir/status)" = 0 ] || { cat $$dir/dry-run.log; exit 1; }; \
	{ echo '<!-- Written by `make outline` from the specs: change the specs, then run it again. -->'; echo; \
	  go run ./tools/outline $$dir/report.json; } > $$dir/behaviour.md && mv $$dir/behaviour.md docs/behaviour.md && \
	echo "outline: wrote docs/behaviour.md ($$(wc -l < docs/behaviour.md) lines)"

lint: ### check formatting (gofmt) and vet the code (go vet)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@echo "lint: go vet ./... (it compiles every package first: minutes with a cold build cache)"
	@go vet ./...

bench: ### benchmarks over loopback HTTP on each store (simulated cluster, a redis-server it starts, the real cluster if up), as median req/s, ratio to a bare httputil.ReverseProxy, p50 and p99
	@# Five rounds of every benchmark in turn, so a slow moment of the
	@# machine hits all of them alike instead of one benchmark's runs. The
	@# real cluster is measured when make cluster-up's answers.
	@bin=$$(mktemp -d)/bench.test; go test -c -o $$bin ./tools/bench && \
	if redis-cli -p 7000 cluster info 2>/dev/null | grep -q cluster_state:ok; then export TOLLGATE_REDIS_CLUSTER=$$(tools/redis-cluster/cluster.sh addrs); fi; \
	cd tools/bench && for round in 1 2 3 4 5; do $$bin -test.run '^$$' -test.bench '^Benchmark(Baseline|Keyless|AuthRateLimitQuota|Seed|Cache)' -test.benchtime 3000x -test.timeout 10m; done | go run ./summary

bench-wrk: ### the tollgate binary and a bare httputil.ReverseProxy, each in its own process, under wrk -t2 -c32 from another (apt-get install wrk): 3 rounds of 10 s per case and store, medians of req/s, p50 and p99
	go run ./tools/wrkbench

soak: ### soak the seed scenario, with reloads, key churn, JS errors, failing webhooks... mixed in, in process for a minute: summary, CSV and SVG chart in a new temporary folder (printed)
	go run ./tools/soak -duration 1m -mix

soak-hostile: ### soak as make soak does for ten minutes, with hostile inputs mixed in too, each checked against its limit (README, Limits)
	go run ./tools/soak -duration 10m -mix -hostile

build: ### build the tollgate binary into bin/
	go build -o bin/tollgate ./gateway/cmd/tollgate
