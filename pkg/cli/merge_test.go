package cli

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestIncidentsSplitMerge: `srectl incidents split` moves an attached
// alert group out, `srectl incidents merge` merges it back; asking twice
// says nothing changed.
func TestIncidentsSplitMerge(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
		svc := newIncidentService(t, db, now)
		svc.SetCorrelation(&incident.Correlation{Window: time.Hour,
			DependsOn: map[string]map[string][]string{"db": {}, "api": {"db": {"api", "db"}}}})
		for _, service := range []string{"db", "api"} {
			_, err := svc.Ingest(context.Background(), incident.Notification{
				Receiver: "sred", Status: "firing", GroupKey: "g-" + service,
				CommonLabels: map[string]string{"alertname": "Down", "service": service},
				Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: service, StartsAt: now.Add(-time.Minute),
					Labels: map[string]string{"alertname": "Down", "service": service}}},
			})
			require.NoError(t, err)
		}
		run := incidentsCommand(t, svc, "--actor=alice")
		code, out, errOut := run("show", "INC-2026-0001")
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "Affected:  api, db (likely root: db)\n")
		require.Contains(t, out, "  api        dependency         g-api\n")

		code, out, errOut = run("split", "INC-2026-0001", "--group-key", "g-api")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, "alert group split out of INC-2026-0001 into INC-2026-0002: [MEDIUM] Down on api (triggered)\n", out)
		code, out, errOut = run("split", "INC-2026-0001", "--group-key", "g-api")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, "alert group already split out of INC-2026-0001 into INC-2026-0002 (nothing changed)\n", out)
		code, _, errOut = run("split", "INC-2026-0001", "--group-key", "g-db")
		require.Equal(t, 4, code)
		require.Equal(t, "srectl: sred answered 409: cannot split g-db out of incident INC-2026-0001: it is the incident's only alert group\n", errOut)

		code, out, errOut = run("merge", "INC-2026-0001", "INC-2026-0002")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, "INC-2026-0002 merged into INC-2026-0001 (services: api, db; likely root: db)\n", out)
		code, out, errOut = run("merge", "INC-2026-0001", "INC-2026-0002")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, "INC-2026-0002 was already merged into INC-2026-0001 (nothing changed)\n", out)
		code, out, errOut = run("show", "INC-2026-0002")
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "Status:    resolved\n")
		require.Contains(t, out, "Merged:    into INC-2026-0001\n")
	})
}

// TestIncidentsSplitManualLink: `srectl incidents split` of the link of an
// incident opened by hand says it is no alert group, not "not found".
func TestIncidentsSplitManualLink(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc := newIncidentService(t, db, time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC))
		manual, err := svc.Create(context.Background(), incident.ManualIncident{Title: "Checkout slow", Service: "checkout",
			Severity: incident.SeverityHigh, Actor: "alice"})
		require.NoError(t, err)
		run := incidentsCommand(t, svc, "--actor=alice")
		code, out, errOut := run("split", manual.ID, "--group-key", "manual:"+manual.ID)
		require.Equal(t, 4, code, out)
		require.Equal(t, "srectl: sred answered 409: cannot split manual:"+manual.ID+" out of incident "+manual.ID+
			": it is the incident's own link (it was opened by hand), not an alert group; only an alert group can be split off\n", errOut)
	})
}
