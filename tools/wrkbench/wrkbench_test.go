package main

import (
	"bytes"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// What wrk 4.1 prints with --latency, trimmed.
const wrkOutput = `Running 10s test @ http://127.0.0.1:40001/k/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.21ms    2.10ms  41.33ms   88.12%
    Req/Sec     5.01k   412.33     5.90k    71.00%
  Latency Distribution
     50%    2.61ms
     75%    3.80ms
     90%    5.12ms
     99%   10.28ms
  99713 requests in 10.00s, 12.36MB read
  Non-2xx or 3xx responses: 7
Requests/sec:   9970.81
Transfer/sec:      1.24MB
`

var _ = Describe("Reading wrk's report", Label("bench"), func() {
	It("takes req/s, the p50 and p99 latencies in µs, and the non-2xx count", func() {
		r, err := parseWrk(wrkOutput)
		Expect(err).NotTo(HaveOccurred())
		Expect(r).To(Equal(wrkResult{rps: 9970.81, p50: 2610, p99: 10280, non2xx: 7}))
	})

	It("reads latencies given in µs and in seconds", func() {
		r, err := parseWrk("     50%  812.00us\n     99%    1.20s\nRequests/sec: 1.5\n")
		Expect(err).NotTo(HaveOccurred())
		Expect(r.p50).To(BeNumerically("~", 812, 0.001))
		Expect(r.p99).To(BeNumerically("~", 1.2e6, 0.001))
	})

	It("fails, quoting wrk, when wrk printed no rate", func() {
		_, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n")
		Expect(err).To(MatchError(ContainSubstring("Connection refused")))
	})

	It("refuses flags out of range before starting anything, naming the flag", func(ctx SpecContext) {
		for _, args := range [][]string{{"-rounds", "0"}, {"-duration", "2m"}, {"-connections", "0"}, {"-threads", "40"}} {
			var stderr bytes.Buffer
			Expect(run(ctx, args, &bytes.Buffer{}, &stderr)).To(Equal(2))
			Expect(stderr.String()).To(ContainSubstring(args[0] + ":"))
		}
	})

	It("reports each store's keyless and keyed cases as ratios of medians to the bare proxy's", func() {
		var out bytes.Buffer
		report(&out, &bench{threads: 2, connections: 32, stores: []string{"redis"}}, map[string][]wrkResult{
			"bare":          {{rps: 1000, p50: 100, p99: 1000}, {rps: 3000, p50: 300, p99: 3000}, {rps: 2000, p50: 200, p99: 2000}},
			"keyless/redis": {{rps: 2000, p50: 100, p99: 2000}, {rps: 2000, p50: 100, p99: 2000}, {rps: 2000, p50: 100, p99: 2000}},
			"auth/redis":    {{rps: 1000, p50: 400, p99: 4000, non2xx: 3}, {rps: 1000, p50: 400, p99: 4000}, {rps: 1000, p50: 400, p99: 4000}},
		}, 3)
		Expect(out.String()).To(ContainSubstring("bare proxy 2000 req/s, p50 200 µs, p99 2000 µs"))
		Expect(out.String()).To(MatchRegexp(`redis +\| 1\.00× · 100/2000 \(1\.00×\) +\| 0\.50× · 400/4000 \(2\.00×\) 3 non-2xx!`))
	})
})
