package jobs

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/store"
	sretest "github.com/rootuip/sre/pkg/testutil"
)

// TestDueQueryPlan: on SQLite, looking for due pending jobs with kinds left
// out (a notification sender with paused channels) reads the index
// jobs_due alone, so that a paused channel's backlog of due messages is
// rejected by kind in the index rather than by a read of each row; the
// expired leases are looked for among the running jobs only.
func TestDueQueryPlan(t *testing.T) {
	db := openPlanDB(t)
	q, args := dueQuery(ClaimOptions{Queue: "notify", Now: time.Unix(1e9, 0), ExcludeKinds: []Kind{"slack", "email"}}, store.SQLite)
	all := sretest.QueryPlan(t, db, q, args...)
	require.Contains(t, all, "USING COVERING INDEX jobs_due (queue=? AND state=? AND run_at<?)", all)
	require.Regexp(t, `USING INDEX jobs_(kind_)?due \(queue=\? AND state=\?\)`, all, "the expired leases among the running jobs")
}

// TestClaimQueryPlan: on SQLite a claim reads the due pending jobs from
// the index jobs_due and the expired leases from the running jobs only,
// not every job of the queue (asked with an OR, SQLite read all of them
// through the primary key's index on queue and sorted them at every claim,
// so that a queue of steps pending in the future made each claim dearer),
// with and without kinds.
func TestClaimQueryPlan(t *testing.T) {
	db := openPlanDB(t)
	for _, o := range []ClaimOptions{
		{Queue: "escalation", Owner: "w", Now: time.Unix(1e9, 0), Limit: 16},
		{Queue: "notify", Owner: "w", Now: time.Unix(1e9, 0), ExcludeKinds: []Kind{"slack", "email"}},
		{Queue: "notify", Owner: "w", Now: time.Unix(1e9, 0), Kinds: []Kind{"slack"}, Limit: 1},
	} {
		q, args := claimQuery(o, store.SQLite, time.Minute)
		all := sretest.QueryPlan(t, db, q, args...)
		// By run_at in jobs_due, or kind by kind in jobs_kind_due when
		// the kinds are named.
		require.Regexp(t, `INDEX jobs_(due \(queue=\? AND state=\? AND run_at<\?\)|kind_due \(queue=\? AND state=\? AND kind=\? AND run_at<\?\))`, all, "the due pending jobs by their index")
		require.Regexp(t, `INDEX jobs_(kind_)?due \(queue=\? AND state=\?( AND kind=\?)?\)`, all, "the expired leases among the running jobs")
		require.NotContains(t, all, "sqlite_autoindex_jobs_1 (queue=?)", all)
	}
}

// openPlanDB opens a migrated SQLite store of jobs for the query-plan tests.
func openPlanDB(t *testing.T) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.Migrate(ctx, Migrations))
	return db
}

// TestDueKindsQueryPlan: looking for due jobs of some kinds (a
// notification sender naming its free channels) seeks each kind in the
// index jobs_kind_due, so that the due jobs of the other kinds (a paused
// channel's backlog) are not walked.
func TestDueKindsQueryPlan(t *testing.T) {
	db := openPlanDB(t)
	q, args := dueQuery(ClaimOptions{Queue: "notify", Now: time.Unix(1e9, 0), Kinds: []Kind{"slack", "email", ""}}, store.SQLite)
	all := sretest.QueryPlan(t, db, q, args...)
	require.Contains(t, all, "USING COVERING INDEX jobs_kind_due (queue=? AND state=? AND kind=? AND run_at<?)", all)
	q, args = claimQuery(ClaimOptions{Queue: "notify", Owner: "w", Now: time.Unix(1e9, 0), Kinds: []Kind{"slack", "email"}, Limit: 32}, store.SQLite, time.Minute)
	all = sretest.QueryPlan(t, db, q, args...)
	require.Contains(t, all, "INDEX jobs_kind_due (queue=? AND state=? AND kind=? AND run_at<?)", all)
}

// TestDueKindsQueryPlanPostgres (PostgreSQL): looking for due jobs of some
// kinds seeks each kind in jobs_kind_due (kind in the index condition of
// the pending jobs' scan), whatever the statistics say: with the
// statistics of an empty queue and a paused channel's backlog of due
// messages, kind IN (...) had the planner walk every due message by
// run_at and reject the backlog by kind, row by row, on every look.
func TestDueKindsQueryPlanPostgres(t *testing.T) {
	ctx := context.Background()
	db, err := store.OpenPostgres(ctx, sretest.PostgresSchemaURL(t))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.Migrate(ctx, Migrations))
	for _, q := range []string{
		// Statistics from before the backlog, as in a benchmark's storm.
		`ALTER TABLE jobs SET (autovacuum_enabled = false)`,
		`ANALYZE jobs`,
		`INSERT INTO jobs (queue, kind, dedup_key, run_at, created_at)
			SELECT 'notify', 'email', 'e' || g, 1000 + g, 1000 FROM generate_series(1, 2000) g`,
		`INSERT INTO jobs (queue, kind, dedup_key, run_at, created_at) VALUES ('notify', 'slack', 's1', 5000, 1000)`,
	} {
		_, err := db.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	o := ClaimOptions{Queue: "notify", Now: time.UnixMilli(4000), Kinds: []Kind{"slack", "webhook"}}
	q, args := dueQuery(o, store.Postgres)
	var raw string
	require.NoError(t, db.QueryRowContext(ctx, `EXPLAIN (FORMAT JSON) `+q, args...).Scan(&raw))
	var plan []struct{ Plan duePlanNode }
	require.NoError(t, json.Unmarshal([]byte(raw), &plan))
	var pending []duePlanNode
	var walk func(n duePlanNode)
	walk = func(n duePlanNode) {
		if n.Relation == "jobs" && strings.Contains(n.IndexCond, "'pending'") {
			pending = append(pending, n)
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(plan[0].Plan)
	require.Len(t, pending, 1, raw)
	require.Equal(t, "jobs_kind_due", pending[0].Index, raw)
	require.Contains(t, pending[0].IndexCond, "kind =", raw)
	require.Contains(t, pending[0].IndexCond, "run_at <=", raw)

	// And Due answers as before: nothing of the free kinds due yet (the
	// backlog is email's), then slack's message.
	ok, err := Due(ctx, db, o)
	require.NoError(t, err)
	require.False(t, ok)
	o.Now = time.UnixMilli(5000)
	ok, err = Due(ctx, db, o)
	require.NoError(t, err)
	require.True(t, ok)
	o.Kinds = []Kind{"email"}
	o.ExcludeKinds = []Kind{"email"}
	ok, err = Due(ctx, db, o)
	require.NoError(t, err)
	require.False(t, ok, "a kind both asked for and left out")
}

// duePlanNode is a node of PostgreSQL's EXPLAIN (FORMAT JSON).
type duePlanNode struct {
	Relation  string        `json:"Relation Name"`
	Index     string        `json:"Index Name"`
	IndexCond string        `json:"Index Cond"`
	Plans     []duePlanNode `json:"Plans"`
}
