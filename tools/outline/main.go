// Command outline prints the spec tree as a Markdown document: each
// Describe a heading, each When a sub-heading, each It a bullet. The
// top-level containers of the specs suite follow readingOrder; everything
// else is in source order. Each node shows the labels it declares; one
// that cannot run on a real Redis Cluster says why (specs.SimulatedOnly). It
// reads the JSON report of a dry run:
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
	"slices"
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
		rank := func(types.SpecReport) int { return 0 }
		if filepath.Base(r.SuitePath) == orderedSuite {
			rank = readingRank
		}
		sort.SliceStable(specs, func(i, j int) bool {
			if ri, rj := rank(specs[i]), rank(specs[j]); ri != rj {
				return ri < rj
			}
			return less(specs[i], specs[j])
		})
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
		mirrored(out, specs)
	}
	return out.err
}

// mirrored ends a suite with the index of the specs that mirror a test of
// Tyk's own suite (the tyk-mirror label), by the feature they belong to
// (their top-level container): what tollgate mirrors, and, in the specs
// that say "where Tyk" or "Tyk answers", where it departs.
func mirrored(out *lineWriter, specs []types.SpecReport) {
	var features []string
	byFeature := map[string][]string{}
	for _, s := range specs {
		if !slices.Contains(s.Labels(), "tyk-mirror") || len(s.ContainerHierarchyTexts) == 0 {
			continue
		}
		f := s.ContainerHierarchyTexts[0]
		if _, ok := byFeature[f]; !ok {
			features = append(features, f)
		}
		byFeature[f] = append(byFeature[f], s.LeafNodeText)
	}
	if len(features) == 0 {
		return
	}
	out.heading(2, "Tyk's own tests, mirrored")
	for _, f := range features {
		out.heading(3, f)
		for _, text := range byFeature[f] {
			out.line("- " + text)
		}
	}
}

// orderedSuite is the folder of the suite whose top-level containers
// follow readingOrder: the gateway's behaviour, read as a document.
const orderedSuite = "specs"

// readingOrder is the order of the specs suite's top-level containers, by
// label: how the gateway is configured and where it keeps its state, how it
// proxies, then the request chain step by step, then what works around the
// chain. A container is placed by the first of its own labels this list
// names (Label("seed", "webhook") goes with seed); containers with none of
// them come after, by file name and line as elsewhere. Within a container
// the specs keep their source order.
//
// The chain's order itself is fixed in gateway/order.go and in the README's
// "Request path" list; the chain steps below follow it and change with it.
var readingOrder = []string{
	"config",  // tyk.conf
	"apidef",  // API definitions from app_path
	"storage", // where sessions, counters and cache entries live
	"proxy",   // an API with no steps in the way
	// the request chain, in its order
	"cors",
	"version", // versions and extended paths
	"jsvm",    // JS middleware: pre first, then post_key_auth and post
	"auth",
	"ratelimit",
	"quota",
	"cache",
	// around the chain
	"events",
	"webhook",
	"control",
	"health",
	"analytics",
	"cluster",
	"debug",
	"shutdown", // what stopping keeps and what it cuts
	"leak",
	"seed",
}

// readingRank is the place of a spec's top-level container in
// readingOrder, or len(readingOrder) when it carries none of its labels.
func readingRank(s types.SpecReport) int {
	labels := s.LeafNodeLabels // a top-level It is its own container
	if len(s.ContainerHierarchyLabels) > 0 {
		labels = s.ContainerHierarchyLabels[0]
	}
	for _, l := range labels {
		if i := slices.Index(readingOrder, l); i >= 0 {
			return i
		}
	}
	return len(readingOrder)
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
