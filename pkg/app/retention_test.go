package app

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/retention"
)

// TestRetentionCompaction runs the wired sred on both backends with
// retention.resolved_incidents: 24h and batches of 3. Seven incidents
// resolved two days ago (the compactor's clock moved) are deleted with
// their alerts, timelines and links, in three batches; the open one stays;
// /metrics counts the rows left and deleted; a deleted incident's group
// opens a new incident when it fires again.
func TestRetentionCompaction(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			clk := clock.NewManual(time.Now())
			a, srv := runApp(t, backend, "retention:\n  resolved_incidents: 24h\n  batch_size: 3\n", func(a *App) {
				a.Compactor.Now = clk.Now
			})
			start := time.Now().Add(-10 * time.Minute)
			var groups []amGroup
			for i := range 8 {
				g := amGroup{alertname: fmt.Sprintf("Alert%d", i), service: "api", starts: start}
				groups = append(groups, g)
				require.Len(t, deliver(t, srv.URL, g.payload("firing", time.Time{})).Created, 1)
				if i < 7 {
					deliver(t, srv.URL, g.payload("resolved", start.Add(time.Minute)))
				}
			}
			require.Len(t, listIncidents(t, srv.URL), 8)
			conf := retention.Config{ResolvedIncidents: 0}
			out, err := a.Compactor.Compact(context.Background(), conf)
			require.NoError(t, err)
			require.Empty(t, out, "retention off keeps everything")

			clk.Advance(48 * time.Hour)
			conf = retention.Config{ResolvedIncidents: 24 * 3600 * 1e9, BatchSize: 3, Interval: 600 * 1e9}
			out, err = a.Compactor.Compact(context.Background(), conf)
			require.NoError(t, err)
			require.Equal(t, int64(7), out["incidents"])
			require.Equal(t, int64(7), out["incident_alerts"])
			require.Equal(t, int64(7), out["incident_links"])
			require.Equal(t, int64(7), out["alert_groups"])
			require.Positive(t, out["incident_timeline"])
			incs := listIncidents(t, srv.URL)
			require.Len(t, incs, 1)
			require.True(t, incs[0].Status.Open())

			mfs, _ := scrape(t, srv.URL)
			v, ok := metricValue(mfs, "sre_store_deleted_rows_total", map[string]string{"table": "incidents"})
			require.True(t, ok)
			require.Equal(t, 7.0, v)
			v, ok = metricValue(mfs, "sre_store_rows", map[string]string{"table": "incidents"})
			require.True(t, ok)
			require.Equal(t, 1.0, v)
			v, ok = metricValue(mfs, "sre_store_rows", map[string]string{"table": "incident_alerts"})
			require.True(t, ok)
			require.Equal(t, 1.0, v)

			// Nothing left to delete; a deleted incident's group fires again.
			out, err = a.Compactor.Compact(context.Background(), conf)
			require.NoError(t, err)
			require.Empty(t, out)
			g := groups[0]
			g.starts = time.Now()
			require.Len(t, deliver(t, srv.URL, g.payload("firing", time.Time{})).Created, 1)
		})
	}
}
