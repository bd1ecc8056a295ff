package runbook

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/store"
	sretest "github.com/rootuip/sre/pkg/testutil"
)

func TestAutomationCoverage(t *testing.T) {
	sretest.Backends(t, withIncidents(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Now()
		// id, mitigated_by, resolved, run (started, dry_run, verified)
		for _, in := range []struct {
			id, mitigated string
			resolved, run bool
			dry, verified bool
		}{
			{id: "INC-1", mitigated: "automation", resolved: true, run: true, verified: true},
			{id: "INC-2", resolved: true, run: true}, // ran, did not mitigate: resolved by hand
			{id: "INC-3", resolved: true},            // no runbook: resolved by hand
			{id: "INC-4", run: true, dry: true},      // dry-run only: not covered
			{id: "INC-5"},                            // open
		} {
			var resolvedAt any
			if in.resolved {
				resolvedAt = ms(now)
			}
			_, err := db.ExecContext(ctx, `INSERT INTO incidents (id, title, service, severity, status, labels, mitigated_by,
				detected_at, created_at, resolved_at, updated_at) VALUES ($1, 't', 'api', 'HIGH', 'triggered', '{}', $2, $3, $3, $4, $3)`,
				in.id, in.mitigated, ms(now), resolvedAt)
			require.NoError(t, err)
			if in.run {
				_, err = db.ExecContext(ctx, `INSERT INTO runbook_runs (incident_id, runbook, target, status, created_at, started_at, dry_run, verified)
					VALUES ($1, 'rb', 't', 'succeeded', $2, $2, $3, $4)`, in.id, ms(now), b2i(in.dry), b2i(in.verified))
				require.NoError(t, err)
			}
		}
		c, err := AutomationCoverage(ctx, db, now.Add(-time.Hour), now.Add(time.Hour))
		require.NoError(t, err)
		require.Equal(t, Coverage{Incidents: 5, WithRun: 2, Mitigated: 1, Resolved: 3, ResolvedByHand: 2}, c)
		require.InDelta(t, 0.4, c.RunRatio(), 1e-9)
		require.InDelta(t, 0.2, c.MitigatedRatio(), 1e-9)
		require.InDelta(t, 2.0/3, c.ToilRatio(), 1e-9)
		c, err = AutomationCoverage(ctx, db, now.Add(time.Hour), now.Add(2*time.Hour))
		require.NoError(t, err)
		require.Equal(t, Coverage{}, c)
		require.Equal(t, 0.0, c.ToilRatio())
	})
}
