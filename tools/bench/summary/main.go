// Command summary reads `go test -bench` output of tools/bench (metrics
// req/s, p50-µs and p99-µs) and prints, for each benchmark, the median of
// each metric over its runs and the ratio of its median req/s to
// BenchmarkBaseline's from the same output. ...WithJS is also compared with
// ...WithoutJS, and ...CacheHit with ...CacheProxied. Then comes one line
// per store (simulated, redis, cluster: the gateway benchmarks'
// sub-benchmarks) and last the performance targets and whether the figures
// meet them.
//
//	go test -run '^$' -bench . -count 5 ./tools/bench | go run ./tools/bench/summary
package main

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// The metrics the benchmarks report.
const (
	reqPerSec = "req/s"
	p50       = "p50-µs"
	p99       = "p99-µs"
)

// runs holds one value per run for each metric of a benchmark.
type runs map[string][]float64

func main() {
	results := map[string]runs{}
	var order []string
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		line := sc.Text()
		fmt.Println(line)
		fields := strings.Fields(line)
		if len(fields) < 2 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		name := fields[0]
		for i := 1; i+1 < len(fields); i++ {
			unit := fields[i+1]
			if unit != reqPerSec && unit != p50 && unit != p99 {
				continue
			}
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			if _, seen := results[name]; !seen {
				results[name] = runs{}
				order = append(order, name)
			}
			results[name][unit] = append(results[name][unit], v)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "summary: reading the benchmark output:", err)
		os.Exit(1)
	}

	// byBase finds a benchmark by its name without the -GOMAXPROCS suffix.
	byBase := map[string]runs{}
	for _, name := range order {
		byBase[baseName(name)] = results[name]
	}
	base := median(byBase["BenchmarkBaseline"][reqPerSec])

	fmt.Printf("\n%-32s %12s %7s %9s %9s %5s\n", "benchmark", "median req/s", "ratio", "p50 µs", "p99 µs", "runs")
	for _, name := range order {
		r := results[name]
		m := median(r[reqPerSec])
		ratio := "-"
		if base > 0 {
			ratio = fmt.Sprintf("%.2f", m/base)
		}
		fmt.Printf("%-32s %12.0f %7s %9.0f %9.0f %5d\n", name, m, ratio, median(r[p50]), median(r[p99]), len(r[reqPerSec]))
	}

	// Some benchmarks are also compared with a twin that lacks one thing.
	fmt.Println()
	for _, name := range order {
		for _, pair := range twins {
			if !strings.Contains(name, pair[0]) {
				continue
			}
			twin := strings.Replace(name, pair[0], pair[1], 1)
			if other := median(results[twin][reqPerSec]); other > 0 {
				fmt.Printf("%s / %s = %.2f\n", name, twin, median(results[name][reqPerSec])/other)
			}
		}
	}

	printStores(byBase)

	fmt.Println("\ntargets (ratios of medians, each against the same run's bare proxy):")
	for _, t := range targets {
		num, den := median(byBase[t.name][t.metric]), median(byBase[t.of][t.metric])
		if num == 0 || den == 0 {
			fmt.Printf("  %-58s not measured\n", t.what)
			continue
		}
		ratio := num / den
		verdict := "met"
		if (t.atMost && ratio > t.bound) || (!t.atMost && ratio < t.bound) {
			verdict = "NOT met"
		}
		fmt.Printf("  %-58s %.2f  %s\n", t.what, ratio, verdict)
	}
}

// stores are the sub-benchmark names of the stores the gateway benchmarks
// run on, and cases the benchmarks of the per-store table.
var (
	stores = []string{"simulated", "redis", "cluster"}
	cases  = []struct{ title, name string }{
		{"keyless", "BenchmarkKeyless"},
		{"auth+rate limit+quota", "BenchmarkAuthRateLimitQuota"},
		{"auth+seed JS", "BenchmarkSeedWithJS"},
	}
)

// printStores prints, per store, each case's median req/s as a ratio to
// the bare proxy's, and its median p50 and p99 in µs.
func printStores(byBase map[string]runs) {
	bare := byBase["BenchmarkBaseline"]
	base := median(bare[reqPerSec])
	if base == 0 {
		return
	}
	fmt.Printf("\nper store: median req/s as a ratio to bare · p50/p99 µs (bare proxy: %.0f/%.0f µs)\n", median(bare[p50]), median(bare[p99]))
	fmt.Printf("%-10s", "store")
	for _, c := range cases {
		fmt.Printf(" | %-24s", c.title)
	}
	fmt.Println()
	for _, st := range stores {
		fmt.Printf("%-10s", st)
		for _, c := range cases {
			r := byBase[c.name+"/"+st]
			m := median(r[reqPerSec])
			if m == 0 {
				fmt.Printf(" | %-24s", "not measured")
				continue
			}
			fmt.Printf(" | %-24s", fmt.Sprintf("%.2f× · %.0f/%.0f", m/base, median(r[p50]), median(r[p99])))
		}
		fmt.Println()
	}
}

// twins pairs a benchmark's name part with its twin's: the JS path with
// the same API without JS, a cache hit with the proxied request.
var twins = [][2]string{{"WithJS", "WithoutJS"}, {"CacheHit", "CacheProxied"}}

// targets are what tollgate aims for: name's median metric at least (or,
// with atMost, at most) bound times of's.
var targets = []struct {
	what     string
	name, of string
	metric   string
	bound    float64
	atMost   bool
}{
	{"keyless ≥ 0.85× bare (simulated)", "BenchmarkKeyless/simulated", "BenchmarkBaseline", reqPerSec, 0.85, false},
	{"seed JS path ≥ 0.50× the same API without JS (simulated)", "BenchmarkSeedWithJS/simulated", "BenchmarkSeedWithoutJS/simulated", reqPerSec, 0.50, false},
	{"auth+rate limit+quota ≥ 0.60× bare (simulated)", "BenchmarkAuthRateLimitQuota/simulated", "BenchmarkBaseline", reqPerSec, 0.60, false},
	{"auth+rate limit+quota ≥ 0.80× bare (redis)", "BenchmarkAuthRateLimitQuota/redis", "BenchmarkBaseline", reqPerSec, 0.80, false},
	{"auth+rate limit+quota ≥ 0.80× bare (cluster)", "BenchmarkAuthRateLimitQuota/cluster", "BenchmarkBaseline", reqPerSec, 0.80, false},
	{"seed JS path ≥ 0.35× bare (redis)", "BenchmarkSeedWithJS/redis", "BenchmarkBaseline", reqPerSec, 0.35, false},
	{"keyless p99 ≤ 1.25× bare p99 (simulated)", "BenchmarkKeyless/simulated", "BenchmarkBaseline", p99, 1.25, true},
	{"keyless p99 ≤ 1.25× bare p99 (redis)", "BenchmarkKeyless/redis", "BenchmarkBaseline", p99, 1.25, true},
	{"keyless p99 ≤ 1.25× bare p99 (cluster)", "BenchmarkKeyless/cluster", "BenchmarkBaseline", p99, 1.25, true},
	{"auth+rate limit+quota p99 ≤ 2× bare p99 (simulated)", "BenchmarkAuthRateLimitQuota/simulated", "BenchmarkBaseline", p99, 2, true},
	{"auth+rate limit+quota p99 ≤ 2× bare p99 (redis)", "BenchmarkAuthRateLimitQuota/redis", "BenchmarkBaseline", p99, 2, true},
	{"auth+rate limit+quota p99 ≤ 2× bare p99 (cluster)", "BenchmarkAuthRateLimitQuota/cluster", "BenchmarkBaseline", p99, 2, true},
}

// baseName drops the -GOMAXPROCS suffix go test adds to a benchmark's name.
func baseName(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return name
	}
	if _, err := strconv.Atoi(name[i+1:]); err != nil {
		return name
	}
	return name[:i]
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
