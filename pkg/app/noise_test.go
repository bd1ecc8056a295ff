package app

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/noise"
)

// TestNoiseReportAndMetrics runs the wired sred on both backends: two
// pages of one alert that resolve by themselves within minutes show in
// GET /api/v1/reports/noise, with the suggestion to raise `for:`, and as
// sre_noise_* on /metrics.
func TestNoiseReportAndMetrics(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			_, srv := runApp(t, backend, "incidents:\n  flap_window: 0s\n", nil)
			for i := range 2 {
				g := amGroup{alertname: "DiskIOSaturated", service: "storage", starts: time.Now().Add(-time.Duration(10-i) * time.Minute)}
				require.Len(t, deliver(t, srv.URL, g.payload("firing", time.Time{})).Created, 1)
				deliver(t, srv.URL, g.payload("resolved", g.starts.Add(2*time.Minute)))
			}
			var rep noise.Report
			code, env := getJSON(t, srv.URL+"/api/v1/reports/noise?since=1d", nil, &rep)
			require.Equal(t, http.StatusOK, code, env.Error)
			require.Len(t, rep.Rows, 1)
			require.Equal(t, 2, rep.Rows[0].Pages)
			require.Equal(t, 2, rep.Rows[0].AutoResolvedShort)
			require.Equal(t, []string{"raise `for:` of alert DiskIOSaturated: 2 of 2 pages resolved by themselves within 10m"}, rep.Rows[0].Suggestions)
			// The console's noise page shows the same report.
			code, page := getPage(t, srv.URL+"/noise?since=7d")
			require.Equal(t, http.StatusOK, code, page)
			require.Contains(t, page, "<strong>storage/DiskIOSaturated</strong>: raise `for:` of alert DiskIOSaturated: 2 of 2 pages resolved by themselves within 10m")
			code, env = getJSON(t, srv.URL+"/api/v1/reports/noise?short=soon", nil, nil)
			require.Equal(t, http.StatusBadRequest, code)
			require.Contains(t, env.Error, `short: want a positive duration (10m), got "soon"`)

			mfs, _ := scrape(t, srv.URL)
			lbl := map[string]string{"alertname": "DiskIOSaturated", "service": "storage", "slo": ""}
			v, ok := metricValue(mfs, "sre_noise_pages", lbl)
			require.True(t, ok)
			require.Equal(t, 2.0, v)
			v, ok = metricValue(mfs, "sre_noise_self_resolved_pages", lbl)
			require.True(t, ok)
			require.Equal(t, 2.0, v)
		})
	}
}

// getPage returns the status and body of a console page.
func getPage(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}
