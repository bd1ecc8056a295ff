package incident

import (
	"context"
	"strings"
	"testing"

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
