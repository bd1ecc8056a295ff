package ui

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/auth"
)

// inlineStyle matches a style attribute or element: the pages'
// Content-Security-Policy (style-src 'self', web.PageCSP) makes the browser
// ignore them, so what they draw never shows.
var inlineStyle = regexp.MustCompile(`(?i)(\sstyle\s*=|<style[\s>])`)

// TestTemplatesHaveNoInlineStyle checks every template of the console for
// inline styles, and renders the SLO page's burn-rate bars: their lengths
// are SVG geometry, which the policy allows, not a style="width:..." the
// browser refused (the bars showed empty).
func TestTemplatesHaveNoInlineStyle(t *testing.T) {
	err := fs.WalkDir(templatesFS, "templates", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(templatesFS, path)
		require.NoError(t, err)
		require.NotRegexp(t, inlineStyle, string(b), path)
		return nil
	})
	require.NoError(t, err)

	u := New(Sources{}, Options{})
	long, short := 10.0, 30.0
	data := sloData{Service: "api", SLO: "availability", Tiers: []tierRow{{Name: "page_fast", Severity: "page", Long: "1h", Short: "5m",
		Threshold: 14.4, LongRate: &long, ShortRate: &short, LongBar: 34, ShortBar: 100}}}
	rec := httptest.NewRecorder()
	u.render(rec, httptest.NewRequest(http.MethodGet, "/slos/api/availability", nil), http.StatusOK, "slo.html", "api/availability", "", data)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Header().Get("Content-Security-Policy"), "style-src 'self';")
	body := rec.Body.String()
	require.NotRegexp(t, inlineStyle, body)
	require.Contains(t, body, `<rect width="34" height="10"/>`, "the long window's bar")
	require.Contains(t, body, `<rect width="100" height="10"/>`, "the short window's bar")
	require.Equal(t, 2, strings.Count(body, `<line x1="50" x2="50"`), "the threshold at the middle of each bar")
}

// In the no-auth mode the header says that authentication is off, next to
// the principal's name; an authenticated user sees only the name.
func TestHeaderSaysNoAuth(t *testing.T) {
	u := New(Sources{}, Options{})
	for _, tc := range []struct {
		p    auth.Principal
		want bool
	}{
		{auth.Anonymous, true},
		{auth.Principal{Name: "alice", Role: auth.RoleAdmin}, false},
	} {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r = r.WithContext(auth.NewContext(r.Context(), tc.p))
		u.render(rec, r, http.StatusOK, "error.html", "x", "", map[string]any{"Code": 404, "Status": "Not Found", "Error": "x"})
		body := rec.Body.String()
		require.Contains(t, body, `<span class="user">`+tc.p.Name, tc.p.Name)
		if tc.want {
			require.Contains(t, body, "(authentication off)", tc.p.Name)
		} else {
			require.NotContains(t, body, "authentication off", tc.p.Name)
		}
	}
}

// The labels of a chart's vertical axis fit left of the axis: a long one
// was cut at the chart's edge (-265757.11% of an exhausted budget read
// 757.11%).
func TestTickLabel(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0", 14.4: "14.4", 99.95: "99.95", -12.345: "-12.35", 287.86: "288", -999.4: "-999",
		2791.5: "2.8k", -9999: "-10k", -265757.11: "-266k", 1234567: "1.2M", -98765432: "-98.8M",
	} {
		got := tickLabel(v)
		if got != want {
			t.Errorf("tickLabel(%g) = %q, want %q", v, got, want)
		}
		if len(got)+1 > 7 {
			t.Errorf("tickLabel(%g) = %q: with the unit, longer than 7 characters", v, got)
		}
	}
	svg := string(chart{Unit: "%", Points: [][2]float64{{1, -2657.5711}, {2, -2632.8786}}}.SVG())
	require.Contains(t, svg, ">-266k%</text>")
}

// A chart of one point (the first hour of an SLO: the history has a point
// per hour) shows it: a polyline of one point draws nothing, so the chart
// read as empty, with the same time at both ends of its axis. The point is
// a dot in the middle, its time written once; two points are a line.
func TestChartOnePoint(t *testing.T) {
	at := float64(time.Date(2026, 12, 6, 4, 29, 0, 0, time.UTC).Unix())
	one := string(chart{Unit: "%", Points: [][2]float64{{at, 0.5}}, Lines: []hline{{Value: 0, Label: "exhausted"}}}.SVG())
	require.Contains(t, one, `<circle class="point" cx="342.0" cy=`)
	require.Equal(t, 1, strings.Count(one, ">12-06 04:29</text>"), one)
	two := string(chart{Points: [][2]float64{{at, 1}, {at + 3600, 2}}}.SVG())
	require.NotContains(t, two, "<circle")
	require.Contains(t, two, `<polyline class="series" points="48.0,`)
	require.Contains(t, two, ">12-06 04:29</text>")
	require.Contains(t, two, ">12-06 05:29</text>")
	empty := string(chart{}.SVG())
	require.Contains(t, empty, ">no data</text>")
}
