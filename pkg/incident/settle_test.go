package incident_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestSettleKeepsAggregates: a delivery that stores a firing alert on an
// existing incident settles it without aggregating all its alerts (the
// storm fast path); the incident's detection time, recovery time and status
// stay what the aggregate over its stored alerts gives, through an earlier
// alert joining, resolves beside a new firing alert, and the last resolve.
func TestSettleKeepsAggregates(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		id := f.open(t, "g1", "checkout", "critical") // g1-a, started epoch-5m
		check := func(step string) *incident.Incident {
			t.Helper()
			inc, err := f.svc.Get(ctx, id)
			require.NoError(t, err)
			var total, firing int
			var minStart, maxEnd int64
			require.NoError(t, db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN status = 'firing' THEN 1 ELSE 0 END), 0),
				COALESCE(MIN(starts_at), 0), COALESCE(MAX(ends_at), 0) FROM incident_alerts WHERE incident_id = $1`, id).
				Scan(&total, &firing, &minStart, &maxEnd))
			require.Positive(t, total, step)
			require.Equal(t, time.UnixMilli(minStart).UTC(), inc.DetectedAt.UTC(), step)
			if firing > 0 {
				require.Nil(t, inc.RecoveredAt, step)
				require.True(t, inc.Status.Open(), step)
			} else {
				require.NotNil(t, inc.RecoveredAt, step)
				require.Equal(t, time.UnixMilli(maxEnd).UTC(), inc.RecoveredAt.UTC(), step)
			}
			return inc
		}
		check("opened")

		// An alert that started earlier joins: detection moves back.
		f.clock.Set(epoch.Add(time.Minute))
		n := notification("g1", "checkout", "critical", epoch.Add(-5*time.Minute), "g1-a")
		n.Alerts = append(n.Alerts, notification("g1", "checkout", "critical", epoch.Add(-10*time.Minute).Add(123*time.Microsecond), "g1-b").Alerts...)
		res, err := f.svc.Ingest(ctx, n)
		require.NoError(t, err)
		require.Equal(t, []string{id}, res.Incidents)
		require.Equal(t, epoch.Add(-10*time.Minute), check("earlier alert").DetectedAt.UTC())

		// Both resolve while a third fires: still open, not recovered.
		f.clock.Set(epoch.Add(2 * time.Minute))
		n = notification("g1", "checkout", "critical", epoch.Add(-5*time.Minute), "g1-a")
		b := notification("g1", "checkout", "critical", epoch.Add(-10*time.Minute).Add(123*time.Microsecond), "g1-b").Alerts
		c := notification("g1", "checkout", "critical", epoch.Add(time.Minute), "g1-c").Alerts
		n.Alerts = append(n.Alerts, b...)
		n.Alerts[0].Status, n.Alerts[0].EndsAt = "resolved", epoch.Add(90*time.Second)
		n.Alerts[1].Status, n.Alerts[1].EndsAt = "resolved", epoch.Add(100*time.Second)
		n.Alerts = append(n.Alerts, c...)
		_, err = f.svc.Ingest(ctx, n)
		require.NoError(t, err)
		check("resolves beside a new firing alert")

		// The last one resolves: recovered at the latest end.
		f.clock.Set(epoch.Add(3 * time.Minute))
		c[0].Status, c[0].EndsAt = "resolved", epoch.Add(150*time.Second)
		_, err = f.svc.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "resolved", GroupKey: "g1",
			GroupLabels: n.GroupLabels, CommonLabels: n.CommonLabels, Alerts: c})
		require.NoError(t, err)
		require.Equal(t, epoch.Add(150*time.Second), check("all resolved").RecoveredAt.UTC())
	})
}
