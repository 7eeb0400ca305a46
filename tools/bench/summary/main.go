// Command summary reads `go test -bench` output with a req/s metric and
// prints, for each benchmark, the median req/s over its runs and its ratio
// to BenchmarkBaseline's median from the same output; ...WithJS is also
// compared with ...WithoutJS, and ...CacheHit with ...CacheProxied.
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

func main() {
	runs := map[string][]float64{}
	var order []string
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		line := sc.Text()
		fmt.Println(line)
		fields := strings.Fields(line)
		if len(fields) < 2 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		for i := 1; i+1 < len(fields); i++ {
			if fields[i+1] != "req/s" {
				continue
			}
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			name := fields[0]
			if _, seen := runs[name]; !seen {
				order = append(order, name)
			}
			runs[name] = append(runs[name], v)
		}
	}
	var base float64
	for _, name := range order {
		if strings.HasPrefix(name, "BenchmarkBaseline") {
			base = median(runs[name])
		}
	}
	fmt.Printf("\n%-40s %12s %8s %6s\n", "benchmark", "median req/s", "ratio", "runs")
	for _, name := range order {
		m := median(runs[name])
		ratio := "-"
		if base > 0 {
			ratio = fmt.Sprintf("%.2f", m/base)
		}
		fmt.Printf("%-40s %12.0f %8s %6d\n", name, m, ratio, len(runs[name]))
	}
	// Some benchmarks are also compared with a twin that lacks one thing.
	fmt.Println()
	for _, name := range order {
		for _, pair := range twins {
			if !strings.Contains(name, pair[0]) {
				continue
			}
			twin := strings.Replace(name, pair[0], pair[1], 1)
			if other := median(runs[twin]); other > 0 {
				fmt.Printf("%s / %s = %.2f\n", name, twin, median(runs[name])/other)
			}
		}
	}
}

// twins pairs a benchmark's name part with its twin's: the JS path with
// the same API without JS, a cache hit with the proxied request.
var twins = [][2]string{{"WithJS", "WithoutJS"}, {"CacheHit", "CacheProxied"}}

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
