package incident

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/store"
	sretest "github.com/rootuip/sre/pkg/testutil"
)

// TestInsertText: the text of a multi-row INSERT is the head and a
// parameter list per row, numbered on from row to row on PostgreSQL, and
// is built once per number of rows.
func TestInsertText(t *testing.T) {
	for _, tc := range []struct {
		dialect store.Dialect
		want    string
	}{
		{store.SQLite, `INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?)`},
		{store.Postgres, `INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4), ($5, $6)`},
	} {
		s := &Service{db: &store.DB{Dialect: tc.dialect}}
		require.Equal(t, tc.want, s.insertText(`INSERT INTO t (a, b) VALUES `, 3, 2))
		allocs := testing.AllocsPerRun(100, func() { s.insertText(`INSERT INTO t (a, b) VALUES `, 3, 2) })
		require.Zero(t, allocs, "built once, then reused")
	}
	s := &Service{db: &store.DB{Dialect: store.SQLite}}
	long := s.insertText(`INSERT INTO t (a) VALUES `, maxInsertTextRows+1, 1)
	require.Equal(t, maxInsertTextRows+1, strings.Count(long, "?"))
}

// TestRelatedLinksInQueryPlan: on SQLite the one statement reading the
// related services' incidents probes the (service, last_at) index, as the
// statement per service did, rather than scanning incident_link_services;
// the incidents with a group still firing come from the index of firing
// links one incident at a time; each incident is read by its key, not by
// scanning the open ones.
func TestRelatedLinksInQueryPlan(t *testing.T) {
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.Migrate(ctx, Migrations))
	all := sretest.QueryPlan(t, db, relatedLinksInQuery(3), int64(0), "a", "b", "c")
	require.Contains(t, all, "incident_link_services_service (service=? AND last_at>?)", all)
	require.Contains(t, all, "incident_links_firing (service=? AND incident_id>?)", all)
	require.Contains(t, all, "SEARCH i USING INDEX sqlite_autoindex_incidents_1 (id=?)", all)
	require.NotContains(t, all, "incidents_status", all)
}

// TestAlertRowsShareValues: the rows of a delivery's alerts carry every
// column as before, and the values they share (the group, the time, the
// incident, the status, the start, the source) are converted once for all
// rows, not once a row: a 10-alert delivery's rows cost its alerts' own
// fingerprints and texts and a few conversions, not 8 allocations a row.
func TestAlertRowsShareValues(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_123)
	starts := time.UnixMilli(1_700_000_000_000)
	var as []newAlert
	for i := range 10 {
		a := NotifiedAlert{Status: "firing", StartsAt: starts, GeneratorURL: "http://prometheus:9090/graph",
			Fingerprint: fmt.Sprintf("fp%04d", 1000+i)}
		a.labelsText, a.annotationsText = fmt.Sprintf(`{"instance":"%d"}`, i), `{"summary":"x"}`
		as = append(as, newAlert{"INC-1", a})
	}
	resolved := NotifiedAlert{Status: "resolved", StartsAt: starts.Add(time.Second), Fingerprint: "fp-r"}
	resolved.labelsText, resolved.annotationsText = `{}`, `{}`
	rows := appendAlertRows(nil, "g", append(as[:2:2], newAlert{"", resolved}), now)
	require.Equal(t, []any{
		"g", "fp1000", starts.UnixMilli(), "INC-1", "firing", nil, `{"instance":"0"}`, `{"summary":"x"}`, "http://prometheus:9090/graph", now.UnixMilli(), now.UnixMilli(),
		"g", "fp1001", starts.UnixMilli(), "INC-1", "firing", nil, `{"instance":"1"}`, `{"summary":"x"}`, "http://prometheus:9090/graph", now.UnixMilli(), now.UnixMilli(),
		"g", "fp-r", starts.UnixMilli() + 1000, nil, "resolved", now.UnixMilli(), `{}`, `{}`, "", now.UnixMilli(), now.UnixMilli(),
	}, rows)

	buf := make([]any, 0, len(as)*alertCols)
	allocs := testing.AllocsPerRun(100, func() { buf = appendAlertRows(buf[:0], "g", as, now) })
	// Per alert: its fingerprint, labels and annotations; once: the group,
	// the time, the incident, the start and the source.
	require.LessOrEqual(t, allocs, float64(3*len(as)+5))
}

// TestPlaceholdersNoAllocation: numbering a row's parameters past $99
// writes the numbers into the statement without allocating them.
func TestPlaceholdersNoAllocation(t *testing.T) {
	s := &Service{db: &store.DB{Dialect: store.Postgres}}
	var sb strings.Builder
	s.placeholders(&sb, 120, 3)
	require.Equal(t, "($121, $122, $123)", sb.String())
	sb.Grow(64)
	allocs := testing.AllocsPerRun(100, func() {
		sb.Reset()
		sb.Grow(80)
		s.placeholders(&sb, 120, alertCols)
	})
	require.LessOrEqual(t, allocs, 1.0, "the builder's one buffer")
}

// TestFastestBurnWithoutRate: alerts without a burn_rate_threshold
// annotation (most) are passed over without a failed parse.
func TestFastestBurnWithoutRate(t *testing.T) {
	as := []NotifiedAlert{{Status: "firing", Annotations: map[string]string{"summary": "x"}}, {Status: "firing"}}
	rate, tier := fastestBurn(as)
	require.Empty(t, rate)
	require.Empty(t, tier)
	require.Zero(t, testing.AllocsPerRun(100, func() { fastestBurn(as) }))
	as = append(as, NotifiedAlert{Status: "firing", Annotations: map[string]string{AnnotationBurnRate: "14.4"}, Labels: map[string]string{"burn_tier": "page"}})
	rate, tier = fastestBurn(as)
	require.Equal(t, "14.4", rate)
	require.Equal(t, "page", tier)
}
