// Command outline prints the spec tree as a Markdown document: each
// Describe a heading, each When a sub-heading, each It a bullet, in source
// order. Each node shows the labels it declares; one that cannot run on a
// real Redis Cluster says why (specs.SimulatedOnly). It reads the JSON
// report of a dry run:
//
//	go tool ginkgo --dry-run --json-report=report.json ./specs ./cluster
//	go run ./tools/outline report.json
//
// With -counts it prints a run's totals instead, as one line.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/onsi/ginkgo/v2/types"
)

func main() {
	args := os.Args[1:]
	counts := len(args) == 2 && args[0] == "-counts"
	if counts {
		args = args[1:]
	}
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: outline [-counts] REPORT.json")
		os.Exit(2)
	}
	run := run
	if counts {
		run = printCounts
	}
	if err := run(args[0], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "outline:", err)
		os.Exit(1)
	}
}

func readReports(path string) ([]types.Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var reports []types.Report
	if err := json.Unmarshal(data, &reports); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return reports, nil
}

// printCounts prints one line, "N passed, N failed, N skipped", over every
// suite of a run's report: the closing line CI reads.
func printCounts(path string, w io.Writer) error {
	reports, err := readReports(path)
	if err != nil {
		return err
	}
	var passed, failed, skipped int
	for _, r := range reports {
		for _, s := range r.SpecReports.WithLeafNodeType(types.NodeTypeIt) {
			switch {
			case s.State.Is(types.SpecStatePassed):
				passed++
			case s.State.Is(types.SpecStateSkipped | types.SpecStatePending):
				skipped++
			default:
				failed++
			}
		}
	}
	_, err = fmt.Fprintf(w, "specs: %d passed, %d failed, %d skipped\n", passed, failed, skipped)
	return err
}

func run(path string, w io.Writer) error {
	reports, err := readReports(path)
	if err != nil {
		return err
	}
	out := &lineWriter{w: w}
	for _, r := range reports {
		specs := r.SpecReports.WithLeafNodeType(types.NodeTypeIt)
		sort.SliceStable(specs, func(i, j int) bool { return less(specs[i], specs[j]) })
		out.heading(1, r.SuiteDescription)
		var prev []string
		for _, s := range specs {
			texts := s.ContainerHierarchyTexts
			common := 0
			for common < len(prev) && common < len(texts) && prev[common] == texts[common] {
				common++
			}
			for depth := common; depth < len(texts); depth++ {
				labels, reason := decorations(s.ContainerHierarchyLabels[depth])
				out.heading(depth+2, texts[depth]+labels)
				if reason != "" {
					out.line(reason)
					out.line("")
				}
			}
			labels, reason := decorations(s.LeafNodeLabels)
			if reason != "" {
				reason = " " + reason
			}
			out.line("- " + s.LeafNodeText + labels + reason)
			prev = texts
		}
	}
	return out.err
}

// simulatedOnly is the label of specs.SimulatedOnly; its reason comes in a
// second label, "simulated-only: <reason>".
const simulatedOnly = "simulated-only"

// decorations renders one node's own labels: each as `label` after the
// node's text, and a simulated-only reason as "(simulated only: <reason>)"
// in place of the simulated-only labels. Labels are shown on the node that
// declared them, so a container's are not repeated on each of its specs.
func decorations(labels []string) (shown, reason string) {
	for _, l := range labels {
		if key, r, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(key) == simulatedOnly {
			reason = "(simulated only: " + strings.TrimSpace(r) + ")"
		}
	}
	for _, l := range labels {
		if reason != "" && (l == simulatedOnly || strings.HasPrefix(l, simulatedOnly+":")) {
			continue
		}
		shown += " `" + l + "`"
	}
	return shown, reason
}

// lineWriter writes Markdown with exactly one blank line around headings.
type lineWriter struct {
	w       io.Writer
	started bool
	blank   bool // the last line written was blank
	err     error
}

func (l *lineWriter) heading(level int, text string) {
	if l.started && !l.blank {
		l.line("")
	}
	l.line(strings.Repeat("#", level) + " " + text)
	l.line("")
}

func (l *lineWriter) line(s string) {
	if l.err != nil {
		return
	}
	_, l.err = fmt.Fprintln(l.w, s)
	l.started, l.blank = true, s == ""
}

// less orders specs as they appear in the source: by the location of each
// enclosing container, then of the It.
func less(a, b types.SpecReport) bool {
	la := append(append([]types.CodeLocation{}, a.ContainerHierarchyLocations...), a.LeafNodeLocation)
	lb := append(append([]types.CodeLocation{}, b.ContainerHierarchyLocations...), b.LeafNodeLocation)
	for i := 0; i < len(la) && i < len(lb); i++ {
		if la[i] == lb[i] {
			continue
		}
		if fa, fb := filepath.Base(la[i].FileName), filepath.Base(lb[i].FileName); fa != fb {
			return fa < fb
		}
		return la[i].LineNumber < lb[i].LineNumber
	}
	return len(la) < len(lb)
}
