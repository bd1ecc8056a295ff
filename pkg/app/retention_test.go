package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/retention"
)

// TestRetentionCompaction runs the wired sred on both backends with
// retention.resolved_incidents: 24h and batches of 3, the compactor's
// actor on a manual clock. Seven incidents resolved, then the clock moved
// two days: the actor's next round deletes them with their alerts,
// timelines and links, in three batches; the open one stays; /metrics
// counts the rows left and deleted; a deleted incident's group opens a new
// incident when it fires again.
func TestRetentionCompaction(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			clk := clock.NewManual(time.Now())
			a, srv := runApp(t, backend, "retention:\n  resolved_incidents: 24h\n  batch_size: 3\n", func(a *App) {
				a.Compactor.SetClock(clk)
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
			// The actor's first round (at start) waits for its next one.
			waitWaiters(t, clk)
			require.Len(t, listIncidents(t, srv.URL), 8, "nothing expired yet")

			clk.Advance(48 * time.Hour)
			metric := func(name, table string) float64 {
				mfs, _ := scrape(t, srv.URL)
				v, ok := metricValue(mfs, name, map[string]string{"table": table})
				require.True(t, ok, "%s{table=%q}", name, table)
				return v
			}
			// The rows are counted once the round is done.
			require.Eventually(t, func() bool {
				return metric("sre_store_deleted_rows_total", "incidents") == 7 && metric("sre_store_rows", "incidents") == 1
			}, time.Minute, 20*time.Millisecond, "the actor's next round deletes the 7 resolved incidents, then counts the rows")
			for _, table := range []string{"incident_alerts", "incident_links", "alert_groups"} {
				require.Equal(t, 7.0, metric("sre_store_deleted_rows_total", table), table)
			}
			require.Positive(t, metric("sre_store_deleted_rows_total", "incident_timeline"))
			require.Equal(t, 1.0, metric("sre_store_rows", "incidents"))
			require.Equal(t, 1.0, metric("sre_store_rows", "incident_alerts"))
			incs := listIncidents(t, srv.URL)
			require.Len(t, incs, 1)
			require.True(t, incs[0].Status.Open())

			// Nothing left to delete; a deleted incident's group fires again.
			conf := retention.Default()
			conf.ResolvedIncidents = model.Duration(24 * time.Hour)
			out, err := a.Compactor.Compact(context.Background(), conf)
			require.NoError(t, err)
			require.Empty(t, out)
			g := groups[0]
			g.starts = time.Now()
			require.Len(t, deliver(t, srv.URL, g.payload("firing", time.Time{})).Created, 1)
		})
	}
}

// waitWaiters waits until a timer waits on clk.
func waitWaiters(t *testing.T, clk *clock.Manual) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := clk.WaitWaiters(ctx, 1); err != nil {
		t.Fatalf("nothing waits on the clock: %v", err)
	}
}

// TestRetentionConfig: the retention section as sred loads it; an unset
// notification_outbox follows notifications.retention, and the stream's
// replay ring takes its size and age from the same section.
func TestRetentionConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(src string) string {
		p := filepath.Join(dir, "sred.yml")
		require.NoError(t, os.WriteFile(p, []byte(src), 0o644))
		return p
	}
	cfg, err := LoadConfig(write("notifications:\n  retention: 3d\nretention:\n  stream_replay: 1h\n  stream_replay_events: 500\n"))
	require.NoError(t, err)
	require.Equal(t, 72*time.Hour, Retention.Of(cfg).Outbox())
	require.Equal(t, model.Duration(time.Hour), Stream.Of(cfg).StreamReplay)
	require.Equal(t, 500, Stream.Of(cfg).StreamReplayEvents)

	cfg, err = LoadConfig(write("notifications:\n  retention: 3d\nretention:\n  notification_outbox: 30d\n"))
	require.NoError(t, err)
	require.Equal(t, 30*24*time.Hour, Retention.Of(cfg).Outbox())

	_, err = LoadConfig(write("retention:\n  alert_payloads: 5m\n"))
	require.ErrorContains(t, err, "retention: alert_payloads must be 0 (keep) or at least 1h, got 5m")
}
