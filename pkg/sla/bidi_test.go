package sla_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/sla"
)

// TestRenderBidiControlsShown: a report whose customer, service and SLO
// names hold bidirectional control characters (a right-to-left override
// that makes a name read as another, an isolate, a mark) renders to HTML
// with each character visible, <U+202E> in a span naming it, and as the
// text <U+202E> in the page's title; the page holds no raw character and
// styles the spans. The JSON rendering keeps the names as they are.
func TestRenderBidiControlsShown(t *testing.T) {
	ach := 0.9995
	r := &sla.Report{
		Customer: "GLOBEX", Name: "Globex \u202eetaroproc\u202c", Period: "2026-10",
		Start: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		Services: map[string]sla.ServiceReport{
			"\u2067api\u2069": {Availability: &sla.Objective{Target: "99.9%", Achieved: "99.95%", Status: sla.StatusMet, SLO: "avail\u200fability\u061c", Scope: "customer", TargetRatio: 0.999, AchievedRatio: &ach}},
		},
	}
	var b strings.Builder
	require.NoError(t, sla.Render(&b, r, "html"))
	page := b.String()
	const rlo = `<span class="bidi" title="U+202E RIGHT-TO-LEFT OVERRIDE: a bidirectional control character in the text, shown instead of applied">&lt;U+202E&gt;</span>`
	require.Contains(t, page, "<title>SLA report: Globex &lt;U+202E&gt;etaroproc&lt;U+202C&gt;</title>", "no markup in the title")
	require.Contains(t, page, "<h1>SLA report: Globex "+rlo+`etaroproc<span class="bidi" title="U+202C POP DIRECTIONAL FORMATTING: `)
	require.Contains(t, page, `<td><span class="bidi" title="U+2067 RIGHT-TO-LEFT ISOLATE: `)
	require.Contains(t, page, `avail<span class="bidi" title="U+200F RIGHT-TO-LEFT MARK: `)
	require.Contains(t, page, `<span class="bidi" title="U+061C ARABIC LETTER MARK: `)
	require.Contains(t, page, ".bidi{", "the report styles the characters it shows")
	for _, c := range "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c" {
		require.NotContains(t, page, string(c))
	}

	b.Reset()
	require.NoError(t, sla.Render(&b, r, "json"))
	require.Contains(t, b.String(), "\"name\": \"Globex \u202eetaroproc\u202c\"", "JSON is unchanged")
}
