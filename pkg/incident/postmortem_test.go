package incident_test

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./pkg/incident -update")
	require.Equal(t, string(want), got)
}

// TestPostmortem walks an incident through its life and checks the drafted
// post-mortem (golden file), its durations and action items.
func TestPostmortem(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		started := epoch.Add(-4 * time.Minute)
		n := notification("g1", "checkout", "critical", started, "a", "b")
		n.Alerts[1].Labels["instance"] = "b|pipe"
		_, err := f.svc.Ingest(ctx, n)
		require.NoError(t, err)
		id := "INC-2026-0001"
		step := func(d time.Duration) { f.clock.Advance(d) }
		step(3 * time.Minute)
		_, err = f.svc.Acknowledge(ctx, id, "alice")
		require.NoError(t, err)
		step(2 * time.Minute)
		text, err := f.svc.PostStatusUpdate(ctx, id, incident.StatusUpdate{Actor: "alice", Impact: "15% of checkouts failing",
			Actions: "rolling back release 42", NextUpdate: f.clock.Now().Add(30 * time.Minute), StatusPage: "https://status.example.com"})
		require.NoError(t, err)
		require.Equal(t, "🚨 [CRITICAL] Incident: HighLatency on checkout\nID: INC-2026-0001\nStatus: acknowledged\n"+
			"Started: 09:26 UTC\nImpact: 15% of checkouts failing\nActions: rolling back release 42\n"+
			"Next Update: 10:05 UTC\nStatus Page: https://status.example.com\n", text)
		step(10 * time.Minute)
		resolved := n
		resolved.Status = "resolved"
		resolved.Alerts = nil
		for _, a := range n.Alerts {
			a.Status, a.EndsAt = "resolved", f.clock.Now().Add(-time.Minute)
			resolved.Alerts = append(resolved.Alerts, a)
		}
		_, err = f.svc.Ingest(ctx, resolved)
		require.NoError(t, err)
		_, err = f.svc.AddActionItem(ctx, id, "alice", incident.ActionItem{Title: "Alert on p99 latency | before errors", Owner: "bob"})
		require.NoError(t, err)
		item, err := f.svc.AddActionItem(ctx, id, "alice", incident.ActionItem{Title: "Canary releases"})
		require.NoError(t, err)
		done := incident.ActionDone
		owner := "carol"
		_, err = f.svc.UpdateActionItem(ctx, id, item.ID, "carol", incident.ActionItemUpdate{State: &done, Owner: &owner})
		require.NoError(t, err)
		_, err = f.svc.UpdateActionItem(ctx, id, 999, "carol", incident.ActionItemUpdate{State: &done})
		require.ErrorIs(t, err, incident.ErrActionItemNotFound)
		bad := incident.ActionItemState("later")
		_, err = f.svc.UpdateActionItem(ctx, id, item.ID, "carol", incident.ActionItemUpdate{State: &bad})
		require.EqualError(t, err, `unknown action item state "later" (want open, in_progress, done or wont_do)`)

		pm, err := f.svc.Postmortem(ctx, id)
		require.NoError(t, err)
		require.Equal(t, 4*time.Minute, pm.Durations.DetectionDelay)
		require.Equal(t, 3*time.Minute, *pm.Durations.TimeToAcknowledge)
		require.Equal(t, 18*time.Minute, *pm.Durations.TimeToRecover)
		require.Equal(t, 15*time.Minute, *pm.Durations.TimeToResolve)
		require.Len(t, pm.ActionItems, 2)
		golden(t, "postmortem.md", pm.Markdown)
		// On the wire, durations are seconds (float), and read back the same.
		b, err := json.Marshal(pm.Durations)
		require.NoError(t, err)
		require.JSONEq(t, `{"time_to_acknowledge":180,"time_to_recover":1080,"time_to_resolve":900,"detection_delay":240}`, string(b))
		var back incident.Durations
		require.NoError(t, json.Unmarshal(b, &back))
		require.Equal(t, pm.Durations, back)
		require.NoError(t, json.Unmarshal([]byte(`{"time_to_acknowledge":1.5,"detection_delay":0.25}`), &back))
		require.Equal(t, 1500*time.Millisecond, *back.TimeToAcknowledge)
		require.Nil(t, back.TimeToResolve)
		require.Equal(t, 250*time.Millisecond, back.DetectionDelay)

		_, err = f.svc.Postmortem(ctx, "INC-2026-0404")
		require.ErrorIs(t, err, incident.ErrNotFound)
	})
}

// TestPostmortemPeakSeverity: the severity follows the alerts still firing,
// so an outage whose critical alert resolves before its warning one ends
// MEDIUM; the post-mortem says it was CRITICAL at its highest.
func TestPostmortemPeakSeverity(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		id, n := f.criticalResolvedFirst(t)
		inc, err := f.svc.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, incident.SeverityMedium, inc.Severity)
		require.Equal(t, incident.SeverityCritical, inc.PeakSeverity)
		f.clock.Advance(time.Minute)
		n.Alerts[1].Status, n.Alerts[1].EndsAt = "resolved", f.clock.Now()
		_, err = f.svc.Ingest(ctx, n)
		require.NoError(t, err)
		inc, err = f.svc.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, incident.StatusResolved, inc.Status)
		require.Equal(t, incident.SeverityMedium, inc.Severity, "the severity followed the warning alert")

		pm, err := f.svc.Postmortem(ctx, id)
		require.NoError(t, err)
		require.Contains(t, pm.Markdown, "| Severity | MEDIUM (CRITICAL at its highest) |\n")
	})
}

// TestPostmortemStoredPeak: on both backends, the post-mortem draft shows
// the peak stored with the incident (what the console, srectl, the
// metrics and the peak_severity filter read), not one worked out again
// from the timeline: where the two differ (the timeline says CRITICAL,
// the stored peak HIGH), it says HIGH, as the console does.
func TestPostmortemStoredPeak(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		id, _ := f.criticalResolvedFirst(t)
		tl, err := f.svc.Timeline(ctx, id)
		require.NoError(t, err)
		require.True(t, slices.ContainsFunc(tl, func(e incident.TimelineEntry) bool {
			return e.Kind == "severity" && e.Data["from"] == "CRITICAL" && e.Data["to"] == "MEDIUM"
		}), "the timeline says it was CRITICAL")

		_, err = db.ExecContext(ctx, `UPDATE incidents SET peak_severity = 'HIGH' WHERE id = $1`, id)
		require.NoError(t, err)
		inc, err := f.svc.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, incident.SeverityHigh, inc.PeakSeverity)
		require.Equal(t, "MEDIUM (HIGH at its highest)", inc.SeverityText())
		pm, err := f.svc.Postmortem(ctx, id)
		require.NoError(t, err)
		require.Contains(t, pm.Markdown, "| Severity | MEDIUM (HIGH at its highest) |\n")
	})
}

// criticalResolvedFirst opens an incident of a critical and a warning
// alert (severity CRITICAL) and resolves the critical one a minute later,
// the warning firing still: the incident falls to MEDIUM. It returns the
// incident and the notification, its status "resolved".
func (f *fixture) criticalResolvedFirst(t *testing.T) (string, incident.Notification) {
	t.Helper()
	ctx := context.Background()
	n := notification("g1", "checkout", "critical", epoch.Add(-4*time.Minute), "page", "ticket")
	delete(n.CommonLabels, "severity")
	n.Alerts[1].Labels["severity"] = "warning"
	res, err := f.svc.Ingest(ctx, n)
	require.NoError(t, err)
	id := res.Created[0]
	inc, err := f.svc.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, incident.SeverityCritical, inc.Severity)
	f.clock.Advance(time.Minute)
	n.Status = "resolved"
	n.Alerts[0].Status, n.Alerts[0].EndsAt = "resolved", f.clock.Now()
	_, err = f.svc.Ingest(ctx, n)
	require.NoError(t, err)
	return id, n
}
