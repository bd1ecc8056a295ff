package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/noise"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestReportNoise records a week of pages on both backends and renders
// `srectl report noise --since 7d` in every format (golden files): a disk
// alert that resolves by itself at night, a latency alert acknowledged and
// closed with no action, an SLO alert responders work on, a flapping one.
func TestReportNoise(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		opts := incident.DefaultOptions()
		opts.FlapWindow = 30 * time.Minute
		svc, err := incident.NewService(db, opts, nil, events.NewBus(8, nil), nil, prometheus.NewRegistry())
		require.NoError(t, err)
		defer svc.Close()
		start := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
		end := start.Add(7 * 24 * time.Hour)
		clk := clock.NewManual(end)
		svc.Clock = clk
		day := func(d, h int) time.Time { return start.Add(time.Duration(d)*24*time.Hour + time.Duration(h)*time.Hour) }
		// page delivers a firing alert of group gk at at, and returns its
		// incident and a function resolving it after a while.
		page := func(gk, alertname, service string, labels map[string]string, at time.Time) (string, func(after time.Duration)) {
			clk.Set(at)
			l := map[string]string{"alertname": alertname, "service": service}
			for k, v := range labels {
				l[k] = v
			}
			note := func(status string) incident.Notification {
				a := incident.NotifiedAlert{Status: status, Fingerprint: "fp-" + gk, StartsAt: at, Labels: l}
				if status == "resolved" {
					a.EndsAt = clk.Now()
				}
				return incident.Notification{Receiver: "sred", Status: status, GroupKey: gk, CommonLabels: l, Alerts: []incident.NotifiedAlert{a}}
			}
			res, err := svc.Ingest(ctx, note("firing"))
			require.NoError(t, err)
			require.Len(t, res.Incidents, 1)
			return res.Incidents[0], func(after time.Duration) {
				clk.Set(at.Add(after))
				_, err := svc.Ingest(ctx, note("resolved"))
				require.NoError(t, err)
			}
		}
		// Four disk pages at 03:00 that resolve by themselves in 4 minutes.
		for d := range 4 {
			_, resolve := page(fmt.Sprintf("disk-%d", d), "DiskIOSaturated", "storage", nil, day(d, 3))
			resolve(4 * time.Minute)
		}
		// Three latency pages acknowledged after 5 minutes, closed by
		// Alertmanager after 40 minutes, nothing done.
		for d := range 3 {
			id, resolve := page(fmt.Sprintf("lat-%d", d), "HighLatency", "api", nil, day(d, 14))
			clk.Set(day(d, 14).Add(5 * time.Minute))
			_, err := svc.Acknowledge(ctx, id, "alice")
			require.NoError(t, err)
			resolve(40 * time.Minute)
		}
		// Three SLO pages responders work on (notes), resolved by hand.
		for d := range 3 {
			id, _ := page(fmt.Sprintf("slo-%d", d), "SLOBurnRateHigh", "checkout", map[string]string{"slo": "availability"}, day(d, 10))
			clk.Set(day(d, 10).Add(2 * time.Minute))
			_, err := svc.Acknowledge(ctx, id, "bob")
			require.NoError(t, err)
			_, err = svc.AddNote(ctx, id, "bob", "rolled back the release")
			require.NoError(t, err)
			clk.Set(day(d, 11))
			_, err = svc.Resolve(ctx, id, "bob", "rolled back")
			require.NoError(t, err)
		}
		// Two queue alerts that flap: each fires, resolves and fires again
		// within the flap window (one incident each, flagged flapping).
		for d := range 2 {
			gk := fmt.Sprintf("queue-%d", d)
			_, resolve := page(gk, "QueueBacklog", "billing", nil, day(d, 16))
			resolve(3 * time.Minute)
			_, resolve = page(gk, "QueueBacklog", "billing", nil, day(d, 16).Add(10*time.Minute))
			resolve(3 * time.Minute)
		}
		// Two pages acknowledged within a second and after 12.3 seconds:
		// their mean time to acknowledge shows as "<1s" and "12s" (the
		// first was "0d").
		for _, tc := range []struct {
			alertname string
			after     time.Duration
		}{{"PodCrashLooping", 400 * time.Millisecond}, {"CertExpiring", 12300 * time.Millisecond}} {
			id, _ := page("ack-"+tc.alertname, tc.alertname, "web", nil, day(5, 12))
			clk.Set(day(5, 12).Add(tc.after))
			_, err := svc.Acknowledge(ctx, id, "carol")
			require.NoError(t, err)
		}
		// One page before the period: not counted.
		page("old", "DiskIOSaturated", "storage", nil, start.Add(-24*time.Hour))

		mux := http.NewServeMux()
		(&noise.API{DB: db, Clock: clock.NewManual(end)}).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		for _, format := range noise.Formats {
			var stdout, stderr bytes.Buffer
			code := Main([]string{"report", "noise", "--sred.url=" + srv.URL, "--since=7d", "--format=" + format}, &stdout, &stderr)
			require.Equal(t, 0, code, stderr.String())
			golden := filepath.Join("testdata", "noise."+format)
			if *updateGolden {
				require.NoError(t, os.WriteFile(golden, stdout.Bytes(), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			require.Equal(t, string(want), stdout.String(), format)
		}
		var stdout, stderr bytes.Buffer
		code := Main([]string{"report", "noise", "--sred.url=" + srv.URL, "--since=yesterday"}, &stdout, &stderr)
		require.Equal(t, 4, code)
		require.Contains(t, stderr.String(), `since: want a duration (30d) or an RFC 3339 time, got "yesterday"`)
	})
}
