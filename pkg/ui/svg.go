package ui

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"
)

// chart is a time series drawn as an inline SVG on the server.
type chart struct {
	Title  string
	Unit   string // "%" plots ratios as percent
	Points [][2]float64
	Lines  []hline
}

// hline is a horizontal threshold line.
type hline struct {
	Value float64
	Label string
}

const (
	chartW, chartH = 640.0, 180.0
	padL, padB     = 48.0, 20.0
)

// SVG renders the chart. Values come from Prometheus, labels from the
// configuration: both are escaped.
func (c chart) SVG() template.HTML {
	var b strings.Builder
	scale := 1.0
	if c.Unit == "%" {
		scale = 100
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range c.Points {
		lo, hi = math.Min(lo, p[1]*scale), math.Max(hi, p[1]*scale)
	}
	for _, l := range c.Lines {
		lo, hi = math.Min(lo, l.Value*scale), math.Max(hi, l.Value*scale)
	}
	if math.IsInf(lo, 0) {
		lo, hi = 0, 1
	}
	if lo > 0 {
		lo = 0
	}
	if hi <= lo {
		hi = lo + 1
	}
	hi += (hi - lo) * 0.05
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %g %g" role="img" aria-label="%s">`, chartW, chartH, template.HTMLEscapeString(c.Title))
	plotW, plotH := chartW-padL-4, chartH-padB-4
	y := func(v float64) float64 { return 4 + plotH - (v-lo)/(hi-lo)*plotH }
	fmt.Fprintf(&b, `<line class="axis" x1="%g" y1="4" x2="%g" y2="%g"/><line class="axis" x1="%g" y1="%g" x2="%g" y2="%g"/>`,
		padL, padL, 4+plotH, padL, 4+plotH, chartW-4, 4+plotH)
	for _, v := range []float64{lo, (lo + hi) / 2, hi} {
		fmt.Fprintf(&b, `<text class="tick" x="%g" y="%.1f" text-anchor="end">%s%s</text>`, padL-4, y(v)+4, tickLabel(v), template.HTMLEscapeString(c.Unit))
	}
	if n := len(c.Points); n > 0 {
		t0, t1 := c.Points[0][0], c.Points[n-1][0]
		ticks := []float64{t0, t1}
		x := func(t float64) float64 { return padL + (t-t0)/(t1-t0)*plotW }
		if t1 <= t0 {
			// One point (an SLO younger than the history step, as in its
			// first hour): a polyline of one point draws nothing, so the
			// point is a dot in the middle, with its time once.
			ticks = ticks[:1]
			x = func(float64) float64 { return padL + plotW/2 }
			fmt.Fprintf(&b, `<circle class="point" cx="%.1f" cy="%.1f" r="3"/>`, x(t0), y(c.Points[0][1]*scale))
		}
		b.WriteString(`<polyline class="series" points="`)
		for _, p := range c.Points {
			fmt.Fprintf(&b, "%.1f,%.1f ", x(p[0]), y(p[1]*scale))
		}
		b.WriteString(`"/>`)
		for _, t := range ticks {
			fmt.Fprintf(&b, `<text class="tick" x="%.1f" y="%g" text-anchor="middle">%s</text>`,
				math.Min(math.Max(x(t), padL+40), chartW-50), chartH-4, time.Unix(int64(t), 0).UTC().Format("01-02 15:04"))
		}
	} else {
		fmt.Fprintf(&b, `<text class="tick" x="%g" y="%g" text-anchor="middle">no data</text>`, chartW/2, chartH/2)
	}
	for _, l := range c.Lines {
		fmt.Fprintf(&b, `<line class="threshold" x1="%g" y1="%.1f" x2="%g" y2="%.1f"/><text class="tick" x="%g" y="%.1f" text-anchor="end">%s</text>`,
			padL, y(l.Value*scale), chartW-4, y(l.Value*scale), chartW-6, y(l.Value*scale)-3, template.HTMLEscapeString(l.Label))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// tickLabel is the text of a value on the vertical axis, short enough for
// the padL left of the axis it is right-aligned to (about 7 characters of
// the ticks' font with the unit): a longer one was cut at the chart's left
// edge, so that -265757.11% read 757.11%.
func tickLabel(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return trimFloat(v/1e6, 1) + "M"
	case a >= 1e4:
		return trimFloat(v/1e3, 0) + "k"
	case a >= 1e3:
		return trimFloat(v/1e3, 1) + "k"
	case a >= 100:
		return trimFloat(v, 0)
	}
	return trimFloat(v, 2)
}
