package incident

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// TestGroupAlertsGatedSkipsUnknownGroup (PostgreSQL): the duplicate check
// of a group the process has not seen reads the group's alerts only when
// the group is stored: for a new group, one probe of alert_groups and no
// scan of incident_alerts (which PostgreSQL descends once per fingerprint
// of the array: in bench-http postgres-2, a new group per delivery, 17-28
// buffers per check); for a stored one, the same rows as the ungated read.
func TestGroupAlertsGatedSkipsUnknownGroup(t *testing.T) {
	ctx := context.Background()
	db := openMigratedPostgres(t)
	for _, q := range []string{
		`INSERT INTO alert_groups (group_key) VALUES ('g-old')`,
		`INSERT INTO incident_alerts (group_key, fingerprint, starts_at, status, labels, annotations, first_seen_at, updated_at)
			SELECT 'g-old', 'fp' || g, 1000, 'firing', '{}', '{}', 1000, 1000 FROM generate_series(1, 10) g`,
	} {
		_, err := db.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	fps := []string{"fp1", "fp2", "fp3", "fp4", "fp5", "fp6", "fp7", "fp8", "fp9", "fp10"}

	// alertScans returns the loops of the scans of incident_alerts in the
	// executed plan of q for group.
	alertScans := func(q, group string) []int {
		nodes, _ := explainScans(t, db, `EXPLAIN (ANALYZE, FORMAT JSON) `+q, "incident_alerts", group, fps)
		var loops []int
		for _, n := range nodes {
			loops = append(loops, n.Loops)
		}
		return loops
	}
	require.Equal(t, []int{1}, alertScans(groupAlertsQuery, "g-new"), "ungated: the new group's alerts are looked for")
	require.Equal(t, []int{0}, alertScans(groupAlertsGatedQuery, "g-new"), "gated: not for a group that is not stored")
	require.Equal(t, []int{1}, alertScans(groupAlertsGatedQuery, "g-old"))

	s, err := NewService(db, DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	keys := map[alertKey]*incoming{}
	for _, fp := range fps {
		keys[alertKey{fp: fp, starts: 1000}] = nil
	}
	for _, first := range []bool{false, true} {
		got, err := s.loadGroupAlerts(ctx, nil, "g-old", keys, first)
		require.NoError(t, err)
		require.Len(t, got, 10, "first sight %v", first)
		got, err = s.loadGroupAlerts(ctx, nil, "g-new", keys, first)
		require.NoError(t, err)
		require.Empty(t, got, "first sight %v", first)
	}
}
