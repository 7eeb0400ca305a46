# tollgate: `make help` lists the targets.

GINKGO := go tool ginkgo
SPEC_FLAGS := -r -p --randomize-all --fail-on-pending --fail-on-empty --race --trace --timeout=12m

.PHONY: help run test outline lint build bench

help: ### list the targets
	@grep -E '^[a-z-]+:.*###' $(MAKEFILE_LIST) | sed -E 's/:.*### /\t/' | expand -t 14

run: ### run the gateway on fixtures/demo: embedded simulated Redis Cluster, echo upstream, 127.0.0.1:8080
	go run ./tools/demo

test: lint ### run every spec with the race detector and the leak guard
	@dir=$$(mktemp -d); \
	$(GINKGO) $(SPEC_FLAGS) --skip-package=tools/bench --output-dir=$$dir --json-report=specs.json ./...; status=$$?; \
	go run ./tools/outline -counts $$dir/specs.json; exit $$status

outline: ### print the spec tree as a Markdown document: a description of the gateway's behaviour
	@dir=$$(mktemp -d); \
	$(GINKGO) --dry-run --output-dir=$$dir --json-report=report.json --silence-skips ./specs ./cluster ./gateway/... >/dev/null && go run ./tools/outline $$dir/report.json

lint: ### check formatting (gofmt) and vet the code (go vet)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	go vet ./...

bench: ### benchmarks over loopback HTTP, each as median req/s and ratio to a bare httputil.ReverseProxy
	@# Five rounds of every benchmark in turn, so a slow moment of the
	@# machine hits all of them alike instead of one benchmark's runs.
	@bin=$$(mktemp -d)/bench.test; go test -c -o $$bin ./tools/bench && \
	cd tools/bench && for round in 1 2 3 4 5; do $$bin -test.run '^$$' -test.bench . -test.benchtime 3000x; done | go run ./summary

build: ### build the tollgate binary into bin/
	go build -o bin/tollgate ./gateway/cmd/tollgate
