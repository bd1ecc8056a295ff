package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/receiver"
)

// TestImportedIncidentsInMetrics runs sred on both backends, opens an
// incident through the webhook and scrapes /metrics (the rollup's watermark
// moves to now), then imports through the API an export of an incident
// updated 30 days ago: the store statistics count it, once, also after
// further scrapes and an import of the same export again.
func TestImportedIncidentsInMetrics(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			base := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Second)
			clk := clock.NewManual(base)
			o := appOptions(t, backend, "")
			o.Clock = clk
			_, srv := runAppOptions(t, o, func(a *App) { a.Incidents.Clock = clk })
			post := func(path string, body []byte) string {
				t.Helper()
				resp, err := http.Post(srv.URL+path, "application/json", bytes.NewReader(body))
				require.NoError(t, err)
				out, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.Equal(t, http.StatusOK, resp.StatusCode, "POST %s: %s", path, out)
				return string(out)
			}
			lbl := map[string]string{"alertname": "Down", "service": "api", "severity": "high"}
			delivery, err := json.Marshal(map[string]any{
				"version": "4", "groupKey": `{}:{alertname="Down"}`, "status": "firing", "receiver": "sred",
				"groupLabels": map[string]string{"alertname": "Down"}, "commonLabels": lbl,
				"alerts": []map[string]any{{
					"status": "firing", "labels": lbl, "startsAt": base.Add(-time.Minute).Format(time.RFC3339Nano),
					"endsAt": "0001-01-01T00:00:00Z", "fingerprint": "0000000000000001",
				}},
			})
			require.NoError(t, err)
			post(receiver.Path, delivery)

			sel := map[string]string{"service": "api", "severity": "HIGH"}
			counts := func(when string, stored, resolved uint64) {
				t.Helper()
				mfs, _ := scrape(t, srv.URL)
				checkCollectorParts(t, mfs)
				n, ok := metricValue(mfs, "sre_incidents_stored_total", sel)
				require.True(t, ok, "%s: no sre_incidents_stored_total%v", when, sel)
				require.Equal(t, float64(stored), n, "%s: sre_incidents_stored_total%v", when, sel)
				h := series(t, mfs, "sre_incident_detection_seconds", sel).GetHistogram()
				require.Equal(t, stored, h.GetSampleCount(), "%s: sre_incident_detection_seconds%v count", when, sel)
				if resolved == 0 {
					return // the series appears with the first resolution
				}
				h = series(t, mfs, "sre_incident_time_to_resolve_seconds", sel).GetHistogram()
				require.Equal(t, resolved, h.GetSampleCount(), "%s: sre_incident_time_to_resolve_seconds%v count", when, sel)
				require.Equal(t, 600.0, h.GetSampleSum(), "%s: sre_incident_time_to_resolve_seconds%v sum", when, sel)
			}
			counts("before the import", 1, 0)

			old := base.Add(-30 * 24 * time.Hour)
			resolved := old.Add(10 * time.Minute)
			line, err := json.Marshal(incident.ExportRecord{Incident: incident.Incident{
				ID: "OLD-2020-0001", Title: "last month", Service: "api", Severity: incident.SeverityHigh,
				Status: incident.StatusResolved, DetectedAt: old.Add(-time.Minute), CreatedAt: old, ResolvedAt: &resolved,
				UpdatedAt: resolved,
			}})
			require.NoError(t, err)
			out := post("/api/v1/incidents/import", append(line, '\n'))
			require.Contains(t, out, `"imported":1`)
			counts("after the import", 2, 1)
			counts("after another scrape", 2, 1)

			out = post("/api/v1/incidents/import", append(line, '\n'))
			require.Contains(t, out, `"skipped":1`, fmt.Sprintf("second import: %s", out))
			counts("after importing again", 2, 1)
		})
	}
}
