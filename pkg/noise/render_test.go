package noise

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAckColumn: the mean time to acknowledge shows to the second, a mean
// under one second as "<1s" (it showed "0d").
func TestAckColumn(t *testing.T) {
	for _, tc := range []struct {
		acked   int
		seconds float64
		want    string
	}{
		{0, 0, "-"},
		{1, 0, "<1s"},
		{2, 0.4, "<1s"},
		{1, 0.99, "<1s"},
		{1, 1, "1s"},
		{3, 12.3, "12s"},
		{1, 59.6, "1m"},
		{1, 180, "3m"},
		{1, 200.4, "3m20s"},
		{1, 7200, "2h"},
		{1, 5400, "90m"},
		{1, 5401, "1h30m1s"},
		{1, 86400, "1d"},
	} {
		require.Equal(t, tc.want, ack(Row{Acked: tc.acked, MeanTimeToAckSeconds: tc.seconds}), "%d acked, mean %vs", tc.acked, tc.seconds)
	}
}

// TestRenderHostileLabels: alert names and services come from alert labels;
// one with a newline, a pipe, a tab, HTML, a link or a terminal escape
// keeps to its table cell (Markdown) or line (text) and injects nothing.
func TestRenderHostileLabels(t *testing.T) {
	name := "Bad|Alert\n# Injected\t<img src=x onerror=alert(1)> [click](http://evil.example) \x1b[2J_x_*y*"
	r := &Report{ShortAfter: "10m", Pages: 2, Rows: []Row{{Alertname: name, Service: "svc\r\nrow", SLO: "a|b\n\x1b[2J", Pages: 2, PagesPerWeek: 2,
		AutoResolvedShort: 2, Suggestions: []string{"raise `for:` of alert " + name + ": 2 of 2 pages resolved by themselves within 10m"}}}}

	var md strings.Builder
	require.NoError(t, Render(&md, r, "md"))
	lines := strings.Split(strings.TrimRight(md.String(), "\n"), "\n")
	row := lines[len(lines)-1]
	require.True(t, strings.HasPrefix(row, "| Bad"), "the row is the last line: %q", md.String())
	require.Len(t, lines, 7, "one line per row: %q", md.String())
	require.Equal(t, 12, strings.Count(strings.ReplaceAll(row, `\|`, ""), "|"), "11 cells: %q", row)
	for _, bad := range []string{"<img", "[click](", "\x1b", "\r", "\t"} {
		require.NotContains(t, md.String(), bad)
	}
	require.Contains(t, row, "raise `for:` of alert", "the suggestion keeps its code span")

	var text strings.Builder
	require.NoError(t, Render(&text, r, "text"))
	tl := strings.Split(strings.TrimRight(text.String(), "\n"), "\n")
	require.Len(t, tl, 7, "title, blank, header, one row, blank, Suggestions:, one suggestion: %q", text.String())
	require.NotContains(t, text.String(), "\x1b")
	require.NotContains(t, text.String(), "\r")
}

// TestRenderPageCount: the title counts pages in words that agree with
// the count ("1 page", not "1 pages").
func TestRenderPageCount(t *testing.T) {
	for _, tc := range []struct {
		pages    int
		text, md string
	}{
		{0, ": 0 pages\n", ": 0 pages.\n"},
		{1, ": 1 page\n", ": 1 page.\n"},
		{12, ": 12 pages\n", ": 12 pages.\n"},
	} {
		r := &Report{ShortAfter: "10m", Pages: tc.pages}
		var text, md strings.Builder
		require.NoError(t, Render(&text, r, "text"))
		require.NoError(t, Render(&md, r, "md"))
		require.Contains(t, text.String(), tc.text, "%d pages", tc.pages)
		require.Contains(t, md.String(), tc.md, "%d pages", tc.pages)
	}
}

// TestRenderSLO: the rows of the generated SLO alerts share their alert
// name and service; text and Markdown show each row's SLO (a column, and
// in the suggestions' names), "-" for an alert of no SLO.
func TestRenderSLO(t *testing.T) {
	r := &Report{ShortAfter: "10m", Pages: 5, Rows: []Row{
		{Alertname: "SLOBurnRatePage", Service: "checkout", SLO: "success-rate", Pages: 2, PagesPerWeek: 2, AckedWithoutAction: 2, Acked: 2,
			Suggestions: []string{"move it to the ticket tier: 2 of 2 pages were acknowledged and closed without any action"}},
		{Alertname: "HighLatency", Service: "checkout", Pages: 2, PagesPerWeek: 2, AckedWithoutAction: 2, Acked: 2,
			Suggestions: []string{"move it to the ticket tier: 2 of 2 pages were acknowledged and closed without any action"}},
		{Alertname: "SLOBurnRatePage", Service: "checkout", SLO: "availability", Pages: 1, PagesPerWeek: 1},
	}}
	var text strings.Builder
	require.NoError(t, Render(&text, r, "text"))
	lines := strings.Split(text.String(), "\n")
	require.Equal(t, []string{"ALERT", "SERVICE", "SLO", "PAGES"}, strings.Fields(lines[2])[:4], text.String())
	require.Equal(t, []string{"SLOBurnRatePage", "checkout", "success-rate", "2"}, strings.Fields(lines[3])[:4], text.String())
	require.Equal(t, []string{"HighLatency", "checkout", "-", "2"}, strings.Fields(lines[4])[:4], text.String())
	require.Equal(t, []string{"SLOBurnRatePage", "checkout", "availability", "1"}, strings.Fields(lines[5])[:4], text.String())
	require.Contains(t, text.String(), "\n  checkout/SLOBurnRatePage (SLO success-rate): move it to the ticket tier")
	require.Contains(t, text.String(), "\n  checkout/HighLatency: move it to the ticket tier")

	var md strings.Builder
	require.NoError(t, Render(&md, r, "md"))
	require.Contains(t, md.String(), "| alert | service | slo | pages |")
	require.Contains(t, md.String(), "\n| SLOBurnRatePage | checkout | success-rate | 2 |")
	require.Contains(t, md.String(), "\n| HighLatency | checkout | - | 2 |")
	require.Contains(t, md.String(), "\n| SLOBurnRatePage | checkout | availability | 1 |")
}
