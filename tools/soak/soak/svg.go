package soak

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Chart geometry, in SVG user units (pixels).
const (
	chartWidth   = 1000
	plotLeft     = 90
	plotRight    = chartWidth - 40
	panelHeight  = 170 // the plot area of one panel
	panelGap     = 62  // title above, tick labels below
	summaryLine  = 15
	headerTop    = 34
	chartPadding = 30
)

// Colours: one for the samples, one for the fit, and the verdict's.
const (
	colourLine     = "#1f5fa8"
	colourFit      = "#e07b00"
	colourBaseline = "#666666"
	colourWarmup   = "#eeeeee"
	colourDrain    = "#e3eefa"
	colourPass     = "#1b7f3b"
	colourFail     = "#c62828"
	colourGrid     = "#dddddd"
)

// panel describes one of the chart's three panels.
type panel struct {
	metric Metric
	title  string
	scale  float64 // divides raw values: 1 for goroutines, MiB for bytes
	unit   string  // after per-100k figures
}

var panels = []panel{
	{Goroutines, "goroutines", 1, ""},
	{Heap, "heap in use after GC (MiB)", mib, " MiB"},
	{RSS, "RSS (MiB)", mib, " MiB"},
}

// WriteSVG draws the run: a header with the title, the summary and the
// verdict, then three stacked panels over elapsed time (goroutines, heap
// in use after GC, RSS), each with its samples, the baseline, the
// least-squares fit over the load, and the warmup and drain shaded.
func (r *Report) WriteSVG(w io.Writer, title string) error {
	bw := bufio.NewWriter(w)
	c := &canvas{w: bw}
	var lines []string
	for _, l := range r.SummaryLines() {
		lines = append(lines, wrap(l, summaryWidth)...)
	}
	panelsTop := headerTop + 28 + summaryLine*len(lines) + 34
	height := panelsTop + len(panels)*(panelHeight+panelGap) + 20 + chartPadding
	c.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`+"\n", chartWidth, height, chartWidth, height)
	c.printf(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")

	// Header: title, verdict badge, summary.
	c.text(plotLeft-60, headerTop, 20, "bold", "start", "#000", title)
	verdictColour := colourPass
	if r.Failed() {
		verdictColour = colourFail
	}
	c.printf(`<rect x="%d" y="%d" width="90" height="30" rx="4" fill="%s"/>`+"\n", plotRight-90, headerTop-22, verdictColour)
	c.text(plotRight-45, headerTop-1, 18, "bold", "middle", "white", r.Verdict())
	c.text(plotLeft-60, headerTop+20, 12, "normal", "start", "#444",
		fmt.Sprintf("started %s; %d requests, %.0f req/s", r.Started.Format("2006-01-02 15:04:05"), r.Requests, r.ReqPerSec()))
	for i, l := range lines {
		colour := "#222"
		if strings.HasPrefix(l, "verdict") || (r.Failed() && strings.HasPrefix(l, "             ")) {
			colour = verdictColour
		}
		c.printf(`<text x="%d" y="%d" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="11" fill="%s" xml:space="preserve">%s</text>`+"\n",
			plotLeft-60, headerTop+42+i*summaryLine, colour, esc(l))
	}

	xMax, unit := r.timeAxis()
	for i, p := range panels {
		top := panelsTop + i*(panelHeight+panelGap)
		r.drawPanel(c, p, top, xMax, unit, i == len(panels)-1)
	}
	c.printf("</svg>\n")
	if c.err != nil {
		return c.err
	}
	return bw.Flush()
}

// timeAxis is the right end of the time axis in seconds and the unit the
// axis is labelled in.
func (r *Report) timeAxis() (float64, string) {
	end := 1.0
	if n := len(r.Samples); n > 0 {
		end = max(end, r.Samples[n-1].Elapsed.Seconds())
	}
	if end > 600 {
		return end, "min"
	}
	return end, "s"
}

// drawPanel draws one metric's panel with its plot area starting at top.
func (r *Report) drawPanel(c *canvas, p panel, top int, xMax float64, unit string, last bool) {
	bottom := top + panelHeight
	g := r.Of(p.metric)
	breach, breached := r.Breach(p.metric)
	titleColour := "#000"
	if breached {
		titleColour = colourFail
	}
	c.text(plotLeft, top-10, 14, "bold", "start", titleColour, p.title)

	xOf := func(sec float64) float64 { return plotLeft + sec/xMax*float64(plotRight-plotLeft) }

	// Values to plot.
	type point struct{ x, y float64 }
	var pts []point
	for _, s := range r.Samples {
		if v, ok := s.Value(p.metric); ok {
			pts = append(pts, point{s.Elapsed.Seconds(), float64(v) / p.scale})
		}
	}
	if len(pts) == 0 {
		c.printf(`<rect x="%d" y="%d" width="%d" height="%d" fill="#fafafa" stroke="%s"/>`+"\n", plotLeft, top, plotRight-plotLeft, panelHeight, colourGrid)
		c.text((plotLeft+plotRight)/2, top+panelHeight/2, 13, "normal", "middle", "#777",
			"not measured by this sampler (the debug summary, -debug-url, reports goroutines and heap)")
		return
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, pt := range pts {
		lo, hi = math.Min(lo, pt.y), math.Max(hi, pt.y)
	}
	if g.Measured {
		b := float64(g.Baseline) / p.scale
		lo, hi = math.Min(lo, b), math.Max(hi, b)
	}
	ticks, step := niceTicks(lo, hi, 5)
	yLo, yHi := ticks[0], ticks[len(ticks)-1]
	yOf := func(v float64) float64 {
		return float64(bottom) - (v-yLo)/(yHi-yLo)*float64(panelHeight)
	}

	// Phases: warmup before the baseline, drain after the load.
	var baseT, loadEndT float64 = -1, -1
	for _, s := range r.Samples {
		switch s.Phase {
		case PhaseBaseline:
			baseT = s.Elapsed.Seconds()
		case PhaseLoad:
			loadEndT = s.Elapsed.Seconds()
		}
	}
	if baseT > 0 {
		c.printf(`<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", plotLeft, top, xOf(baseT)-plotLeft, panelHeight, colourWarmup)
		c.text(plotLeft+4, top+13, 10, "normal", "start", "#777", "warmup")
	}
	if loadEndT >= 0 && loadEndT < xMax {
		c.printf(`<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", xOf(loadEndT), top, plotRight-xOf(loadEndT), panelHeight, colourDrain)
		c.text(plotRight-4, top+13, 10, "normal", "end", "#557", "drain")
	}

	// Grid, y ticks and labels.
	for _, t := range ticks {
		y := yOf(t)
		c.printf(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" stroke-width="1"/>`+"\n", plotLeft, y, plotRight, y, colourGrid)
		c.text(plotLeft-8, int(y)+4, 11, "normal", "end", "#333", formatTick(t, step))
	}
	// x ticks.
	scale := 1.0
	if unit == "min" {
		scale = 60
	}
	xt, xstep := niceTicks(0, xMax/scale, 8)
	for _, t := range xt {
		if t*scale > xMax*1.0001 {
			continue
		}
		x := xOf(t * scale)
		c.printf(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#333" stroke-width="1"/>`+"\n", x, bottom, x, bottom+4)
		c.text(int(x), bottom+16, 11, "normal", "middle", "#333", formatTick(t, xstep))
	}
	if last {
		// Under the time axis, the requests answered by then, so growth
		// can be read against requests too.
		c.text(plotLeft-8, bottom+32, 11, "normal", "end", "#777", "requests")
		for _, t := range xt {
			if t*scale > xMax*1.0001 {
				continue
			}
			c.text(int(xOf(t*scale)), bottom+32, 11, "normal", "middle", "#777", shortCount(r.requestsAt(t*scale)))
		}
		c.text((plotLeft+plotRight)/2, bottom+52, 12, "normal", "middle", "#000", "elapsed time ("+unit+")")
	}
	c.printf(`<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333" stroke-width="1"/>`+"\n", plotLeft, top, plotRight-plotLeft, panelHeight)

	// Baseline.
	if g.Measured {
		y := yOf(float64(g.Baseline) / p.scale)
		c.printf(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" stroke-width="1" stroke-dasharray="2,3"/>`+"\n", plotLeft, y, plotRight, y, colourBaseline)
	}

	// Samples.
	var sb strings.Builder
	for _, pt := range pts {
		fmt.Fprintf(&sb, "%.1f,%.1f ", xOf(pt.x), yOf(pt.y))
	}
	c.printf(`<polyline fill="none" stroke="%s" stroke-width="1.6" stroke-linejoin="round" points="%s"/>`+"\n", colourLine, strings.TrimSpace(sb.String()))
	if len(pts) <= 80 {
		for _, pt := range pts {
			c.printf(`<circle cx="%.1f" cy="%.1f" r="2" fill="%s"/>`+"\n", xOf(pt.x), yOf(pt.y), colourLine)
		}
	}

	// Least-squares fit over the load, drawn between the first and the
	// last sample it used.
	if fit := r.FitSamples(); g.Measured && !math.IsNaN(g.Slope) && len(fit) >= 2 {
		fitFrom, fitTo := fit[0], fit[len(fit)-1]
		y1 := (g.Intercept + g.Slope*float64(fitFrom.Requests)) / p.scale
		y2 := (g.Intercept + g.Slope*float64(fitTo.Requests)) / p.scale
		c.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2" stroke-dasharray="7,4"/>`+"\n",
			xOf(fitFrom.Elapsed.Seconds()), clamp(yOf(y1), top, bottom), xOf(fitTo.Elapsed.Seconds()), clamp(yOf(y2), top, bottom), colourFit)
	}

	// Legend on the title line, right-aligned.
	var legend string
	switch {
	case !g.Measured:
		legend = "no baseline"
	case p.metric == Goroutines:
		legend = fmt.Sprintf("baseline %d → after drain %d (%+d)   fit %s per 100k requests",
			g.Baseline, g.AfterDrain, g.Delta(), signed(g.Per100k(), 1))
	default:
		legend = fmt.Sprintf("baseline %.1f → after drain %.1f (%+.1f)   fit %s MiB per 100k requests",
			float64(g.Baseline)/p.scale, float64(g.AfterDrain)/p.scale, float64(g.Delta())/p.scale, signed(g.Per100k()/p.scale, 2))
	}
	legendColour := "#333"
	if breached {
		legend += "   over the limit of " + strconv.FormatFloat(breach.Limit, 'g', -1, 64)
		legendColour = colourFail
	}
	c.text(plotRight, top-10, 12, "normal", "end", legendColour, legend)
	// Key for the line styles, once, in the header.
	if p.metric == panels[0].metric {
		keyY := headerTop + 20
		x := plotRight - 345
		c.printf(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`+"\n", x, keyY-4, x+22, keyY-4, colourLine)
		c.text(x+27, keyY, 11, "normal", "start", "#333", "samples")
		x += 90
		c.printf(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2" stroke-dasharray="7,4"/>`+"\n", x, keyY-4, x+22, keyY-4, colourFit)
		c.text(x+27, keyY, 11, "normal", "start", "#333", "least-squares fit")
		x += 130
		c.printf(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="1" stroke-dasharray="2,3"/>`+"\n", x, keyY-4, x+22, keyY-4, colourBaseline)
		c.text(x+27, keyY, 11, "normal", "start", "#333", "baseline")
		x += 80
		c.printf(`<rect x="%d" y="%d" width="18" height="10" fill="%s" stroke="#bbb"/>`+"\n", x, keyY-10, colourDrain)
		c.text(x+23, keyY, 11, "normal", "start", "#333", "drain")
	}
}

func clamp(v float64, lo, hi int) float64 {
	return math.Max(float64(lo), math.Min(float64(hi), v))
}

// summaryWidth is how many characters of the summary fit on a line of
// the chart.
const summaryWidth = 140

// wrap breaks a summary line longer than width at spaces; the pieces after
// the first are indented under the value column.
func wrap(line string, width int) []string {
	const indent = "             "
	var out []string
	for len(line) > width {
		cut := strings.LastIndexByte(line[:width], ' ')
		if cut <= len(indent) {
			cut = width
		}
		out = append(out, line[:cut])
		line = indent + strings.TrimLeft(line[cut:], " ")
	}
	return append(out, line)
}

// requestsAt is the number of requests answered at sec seconds into the
// run, interpolated between samples.
func (r *Report) requestsAt(sec float64) int64 {
	prevT, prevN := 0.0, int64(0)
	for _, s := range r.Samples {
		t := s.Elapsed.Seconds()
		if t >= sec {
			if t == prevT {
				return s.Requests
			}
			return prevN + int64(float64(s.Requests-prevN)*(sec-prevT)/(t-prevT))
		}
		prevT, prevN = t, s.Requests
	}
	return prevN
}

// shortCount writes 1234567 as 1.23M and 45600 as 45.6k.
func shortCount(n int64) string {
	switch {
	case n >= 1_000_000:
		return strconv.FormatFloat(float64(n)/1e6, 'f', 2, 64) + "M"
	case n >= 10_000:
		return strconv.FormatFloat(float64(n)/1e3, 'f', 0, 64) + "k"
	case n >= 1000:
		return strconv.FormatFloat(float64(n)/1e3, 'f', 1, 64) + "k"
	}
	return strconv.FormatInt(n, 10)
}

// niceTicks returns about n evenly spaced round values (steps of 1, 2 or 5
// times a power of ten) covering lo..hi, and the step.
func niceTicks(lo, hi float64, n int) ([]float64, float64) {
	if hi-lo < 1e-9 {
		pad := math.Max(math.Abs(hi)*0.05, 1)
		lo, hi = lo-pad, hi+pad
	}
	raw := (hi - lo) / float64(n)
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	step := pow * 10
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*pow {
			step = m * pow
			break
		}
	}
	start := math.Floor(lo/step) * step
	end := math.Ceil(hi/step) * step
	var out []float64
	for v := start; v <= end+step/2; v += step {
		out = append(out, math.Round(v/step)*step)
	}
	return out, step
}

// formatTick prints a tick value with as many decimals as its step needs.
func formatTick(v, step float64) string {
	decimals := 0
	if step < 1 {
		decimals = int(math.Ceil(-math.Log10(step)))
	}
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

// canvas writes SVG elements and keeps the first write error.
type canvas struct {
	w   io.Writer
	err error
}

func (c *canvas) printf(format string, a ...any) {
	if c.err == nil {
		_, c.err = fmt.Fprintf(c.w, format, a...)
	}
}

func (c *canvas) text(x, y, size int, weight, anchor, colour, s string) {
	c.printf(`<text x="%d" y="%d" font-size="%d" font-weight="%s" text-anchor="%s" fill="%s">%s</text>`+"\n", x, y, size, weight, anchor, colour, esc(s))
}

// esc escapes text for XML.
func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
