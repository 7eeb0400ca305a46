// Command summary reads `go test -bench` output with a req/s metric and
// prints, for each benchmark, the median req/s over its runs and its ratio
// to BenchmarkBaseline's median from the same output; a ...WithJS
// benchmark is also compared with its ...WithoutJS twin.
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
	// A benchmark named ...WithJS is also compared with its ...WithoutJS twin.
	for _, name := range order {
		if !strings.Contains(name, "WithJS") {
			continue
		}
		twin := strings.Replace(name, "WithJS", "WithoutJS", 1)
		if without := median(runs[twin]); without > 0 {
			fmt.Printf("\n%s / %s = %.2f\n", name, twin, median(runs[name])/without)
		}
	}
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
