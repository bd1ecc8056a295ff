package jobs

import (
	"context"
	"encoding/json"
	"slices"
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
	db := openBacklogPostgres(t,
		`INSERT INTO jobs (queue, kind, dedup_key, run_at, created_at)
			SELECT 'notify', 'email', 'e' || g, 1000 + g, 1000 FROM generate_series(1, 2000) g`,
		`INSERT INTO jobs (queue, kind, dedup_key, run_at, created_at) VALUES ('notify', 'slack', 's1', 5000, 1000)`)
	o := ClaimOptions{Queue: "notify", Now: time.UnixMilli(4000), Kinds: []Kind{"slack", "webhook"}}
	q, args := dueQuery(o, store.Postgres)
	var raw string
	require.NoError(t, db.QueryRowContext(ctx, `EXPLAIN (FORMAT JSON) `+q, args...).Scan(&raw))
	var pending []duePlanNode
	for _, n := range planScans(t, raw) {
		if strings.Contains(n.IndexCond, "'pending'") {
			pending = append(pending, n)
		}
	}
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

// openBacklogPostgres opens a migrated PostgreSQL store of jobs whose
// planner statistics are those of an empty queue (autovacuum off for the
// table), as in a benchmark's storm, then runs backlog, the statements that
// fill it.
func openBacklogPostgres(t *testing.T, backlog ...string) *store.DB {
	t.Helper()
	ctx := context.Background()
	db := sretest.OpenPostgres(t, Migrations)
	for _, q := range append([]string{`ALTER TABLE jobs SET (autovacuum_enabled = false)`, `ANALYZE jobs`}, backlog...) {
		_, err := db.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	return db
}

// planScans lists the nodes of the plan raw (EXPLAIN (FORMAT JSON)) that
// read the table jobs: its scans, not the UPDATE writing it.
func planScans(t *testing.T, raw string) []duePlanNode {
	t.Helper()
	var plan []struct{ Plan duePlanNode }
	require.NoError(t, json.Unmarshal([]byte(raw), &plan))
	var out []duePlanNode
	var walk func(n duePlanNode)
	walk = func(n duePlanNode) {
		if n.Relation == "jobs" && n.Type != "ModifyTable" {
			out = append(out, n)
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(plan[0].Plan)
	return out
}

// duePlanNode is a node of PostgreSQL's EXPLAIN (FORMAT JSON).
type duePlanNode struct {
	Type       string        `json:"Node Type"`
	Relation   string        `json:"Relation Name"`
	Index      string        `json:"Index Name"`
	IndexCond  string        `json:"Index Cond"`
	ActualRows float64       `json:"Actual Rows"`
	Plans      []duePlanNode `json:"Plans"`
}

// TestClaimQueryPlanPostgres (PostgreSQL): a claim of 8 jobs from a queue
// with 2,000 due pending jobs (a storm's first pages fallen behind) reads 8
// of them from jobs_due, in run_at order, whatever the statistics say:
// with an OR of the pending and the expired jobs, PostgreSQL read every due
// job of the queue with a bitmap scan and sorted them, at every claim. The
// claim still takes the oldest first, the expired leases among them, and a
// claim beside it in another transaction takes the next ones.
func TestClaimQueryPlanPostgres(t *testing.T) {
	ctx := context.Background()
	db := openBacklogPostgres(t,
		// Due at 1001..3000 ms, in the reverse order of their ids.
		`INSERT INTO jobs (queue, kind, dedup_key, run_at, created_at)
			SELECT 'escalation', 'step', 's' || g, 3001 - g, 1000 FROM generate_series(1, 2000) g`,
		// An expired lease, due at 1500: among the first 8 by run_at.
		`INSERT INTO jobs (queue, kind, dedup_key, run_at, created_at, state, lease_owner, lease_until)
			VALUES ('escalation', 'step', 'expired', 1500, 1000, 'running', 'gone', 2000)`,
		// A live lease and a job of another queue, not claimed.
		`INSERT INTO jobs (queue, kind, dedup_key, run_at, created_at, state, lease_owner, lease_until)
			VALUES ('escalation', 'step', 'live', 1, 1000, 'running', 'other', 99999)`,
		`INSERT INTO jobs (queue, kind, dedup_key, run_at, created_at) VALUES ('notify', 'email', 'n', 1, 1000)`)
	o := ClaimOptions{Queue: "escalation", Owner: "w1", Now: time.UnixMilli(4000), Limit: 8}
	q, args := claimQuery(o, store.Postgres, time.Minute)

	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	var raw string
	require.NoError(t, tx.QueryRowContext(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) `+q, args...).Scan(&raw))
	require.NoError(t, tx.Rollback())
	var pending []duePlanNode
	for _, n := range planScans(t, raw) {
		require.LessOrEqual(t, n.ActualRows, float64(8), "a scan of jobs reads at most the 8 jobs claimed, of 2,000 due:\n%s", raw)
		if strings.Contains(n.IndexCond, "'pending'") {
			pending = append(pending, n)
		}
	}
	require.Len(t, pending, 1, raw)
	require.Equal(t, "Index Scan", pending[0].Type, raw)
	require.Equal(t, "jobs_due", pending[0].Index, raw)

	// The oldest first: due at 1001..1007 and the expired lease at 1500.
	keys := func(js []Job) []string {
		var out []string
		for _, j := range js {
			out = append(out, j.Key)
		}
		return out
	}
	// Two claims in transactions open side by side: the second skips the
	// jobs the first locked and takes the next ones.
	tx1, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer tx1.Rollback() //nolint:errcheck
	first, err := ClaimIn(ctx, tx1, store.Postgres, o)
	require.NoError(t, err)
	require.Equal(t, []string{"s2000", "s1999", "s1998", "s1997", "s1996", "s1995", "s1994", "s1993"}, keys(first))
	tx2, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer tx2.Rollback() //nolint:errcheck
	o.Owner = "w2"
	second, err := ClaimIn(ctx, tx2, store.Postgres, o)
	require.NoError(t, err)
	require.Equal(t, []string{"s1992", "s1991", "s1990", "s1989", "s1988", "s1987", "s1986", "s1985"}, keys(second))
	require.NoError(t, tx1.Rollback())
	require.NoError(t, tx2.Rollback())

	// The expired lease, due at 1500, in its place among the 600 oldest
	// (after s1501, due in the same millisecond with a smaller id).
	o.Limit = 600
	all, err := Claim(ctx, db, o)
	require.NoError(t, err)
	require.Len(t, all, 600)
	at := slices.Index(keys(all), "expired")
	require.Equal(t, 500, at, "%v", keys(all))
	require.Equal(t, "s1501", all[at-1].Key)
	require.Equal(t, "s1500", all[at+1].Key)
	require.NotContains(t, keys(all), "live")
}

// TestPartialIndexes: a job is in the due indexes while it is pending or
// running and in jobs_finished once finished, and nowhere else (counted in
// SQLite's B-trees); and the queries that look for jobs by these indexes
// name states that imply their predicates, so that both backends can use
// them.
func TestPartialIndexes(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1e9, 0)
	t.Run("sqlite", func(t *testing.T) {
		db := openPlanDB(t)
		// entries are the cells of jobs_due, jobs_kind_due and jobs_finished.
		entries := func() [3]int {
			t.Helper()
			var out [3]int
			for i, index := range []string{"jobs_due", "jobs_kind_due", "jobs_finished"} {
				require.NoError(t, db.QueryRowContext(ctx, `SELECT COALESCE(SUM(ncell), 0) FROM dbstat WHERE name = $1 AND pagetype = 'leaf'`, index).Scan(&out[i]))
			}
			return out
		}
		for _, key := range []string{"a", "b"} {
			_, err := Enqueue(ctx, db, now, New{Queue: "q", Kind: "k", Key: key, RunAt: now})
			require.NoError(t, err)
		}
		require.Equal(t, [3]int{2, 2, 0}, entries(), "pending")
		js, err := Claim(ctx, db, ClaimOptions{Queue: "q", Owner: "w", Now: now, Limit: 1})
		require.NoError(t, err)
		require.Len(t, js, 1)
		require.Equal(t, [3]int{2, 2, 0}, entries(), "one running, one pending")
		require.NoError(t, Complete(ctx, db, js[0].ID, "w", now))
		require.Equal(t, [3]int{1, 1, 1}, entries(), "one done, one pending")
		n, err := Prune(ctx, db, "q", now.Add(time.Second))
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
		require.Equal(t, [3]int{1, 1, 0}, entries(), "the done one pruned")

		pending := sretest.QueryPlan(t, db, pendingQuery, "q", Millis(now))
		require.Regexp(t, `INDEX jobs_(kind_)?due \(queue=\?`, pending, "the metrics' count of live jobs")
		// The outbox's pending gauge counts with a Filter of the live
		// states.
		where, args, err := Filter{Queue: "notify", AllGroups: true, States: []string{StatePending, StateRunning}}.where()
		require.NoError(t, err)
		require.Regexp(t, `INDEX jobs_(kind_)?due \(queue=\?`, sretest.QueryPlan(t, db, `SELECT COUNT(*) FROM jobs WHERE `+where, args...), "Count of the live jobs")
		for _, tt := range []struct {
			states []string
			want   int
		}{
			{[]string{StatePending, StateRunning}, 1},
			{[]string{StateRunning, StatePending}, 1},
			{[]string{StatePending}, 1},
			{[]string{StateDone}, 0},
			{[]string{StateDone, StateCancelled, StateFailed}, 0},
			{[]string{"pending' OR '1'='1"}, 0},
		} {
			n, err := Count(ctx, db, Filter{Queue: "q", AllGroups: true, States: tt.states})
			require.NoError(t, err)
			require.Equal(t, tt.want, n, "%v", tt.states)
		}
		// Retention reads the finished jobs INDEXED BY jobs_finished, which
		// SQLite refuses to plan if the query does not imply the index's
		// predicate.
		finished := sretest.QueryPlan(t, db, `SELECT id FROM jobs INDEXED BY jobs_finished WHERE `+finishedStates+` AND finished_at < $1 AND queue = $2`, Millis(now), "q")
		require.Contains(t, finished, "INDEX jobs_finished (state=? AND finished_at<?)", "retention")
	})
	t.Run("postgres", func(t *testing.T) {
		db := sretest.OpenPostgres(t, Migrations)
		// A small table is read whole unless scans are ruled out: what is
		// asked here is whether the indexes can serve each query at all.
		conn, err := db.Conn(ctx)
		require.NoError(t, err)
		defer conn.Close()
		_, err = conn.ExecContext(ctx, `SET enable_seqscan = off`)
		require.NoError(t, err)
		plan := func(q string, args ...any) string {
			t.Helper()
			rows, err := conn.QueryContext(ctx, `EXPLAIN `+q, args...)
			require.NoError(t, err)
			defer rows.Close()
			var b strings.Builder
			for rows.Next() {
				var l string
				require.NoError(t, rows.Scan(&l))
				b.WriteString(l + "\n")
			}
			require.NoError(t, rows.Err())
			return b.String()
		}
		claim, args := claimQuery(ClaimOptions{Queue: "escalation", Owner: "w", Now: now, Limit: 8}, store.Postgres, time.Minute)
		require.Regexp(t, `jobs_(kind_)?due`, plan(claim, args...), "the claim")
		due, args := dueQuery(ClaimOptions{Queue: "escalation", Now: now}, store.Postgres)
		require.Regexp(t, `jobs_(kind_)?due`, plan(due, args...), "Due")
		require.Regexp(t, `jobs_(kind_)?due`, plan(pendingQuery, "escalation", Millis(now)), "the metrics' count of live jobs")
		where, args, err := Filter{Queue: "notify", AllGroups: true, States: []string{StatePending, StateRunning}}.where()
		require.NoError(t, err)
		require.Regexp(t, `jobs_(kind_)?due`, plan(`SELECT COUNT(*) FROM jobs WHERE `+where, args...), "Count of the live jobs")
		require.Contains(t, plan(`SELECT id FROM jobs WHERE `+finishedStates+` AND finished_at < $1`, Millis(now)), "jobs_finished", "retention")
	})
}

// TestClaimFirstPostgres (PostgreSQL): of two jobs due in the same
// millisecond, a claim with First takes the one with the smaller id even
// where the index holds the other first (the first one's row was updated
// after the second was written, so its index entry comes after); a claim
// without First takes the index's first. Among a backlog of 2,000 due
// jobs of the kind, First still takes the oldest, reading a few dozen of
// them from jobs_kind_due (a notification channel's probe, once a pause).
func TestClaimFirstPostgres(t *testing.T) {
	ctx := context.Background()
	db := openBacklogPostgres(t,
		// A backlog due at 1001..3000 ms, in the reverse order of ids.
		`INSERT INTO jobs (queue, kind, dedup_key, run_at, created_at)
			SELECT 'notify', 'sms', 's' || g, 3001 - g, 1000 FROM generate_series(1, 2000) g`,
		`INSERT INTO jobs (queue, kind, dedup_key, run_at, created_at) VALUES ('notify', 'sms', 'first', 500, 400)`,
		`INSERT INTO jobs (queue, kind, dedup_key, run_at, created_at) VALUES ('notify', 'sms', 'second', 500, 400)`,
		// The first one's row moves after the second's (as a claim and
		// a retry move it), still due at 500.
		`UPDATE jobs SET state = 'running' WHERE dedup_key = 'first'`,
		`UPDATE jobs SET state = 'pending' WHERE dedup_key = 'first'`,
		`ANALYZE jobs`)
	o := ClaimOptions{Queue: "notify", Owner: "w1", Now: time.UnixMilli(4000), Limit: 1, Kinds: []Kind{"sms"}}
	claim := func(o ClaimOptions) string {
		t.Helper()
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		defer tx.Rollback() //nolint:errcheck
		js, err := ClaimIn(ctx, tx, store.Postgres, o)
		require.NoError(t, err)
		require.Len(t, js, 1)
		return js[0].Key
	}
	require.Equal(t, "second", claim(o), "the index's first, without First")
	o.First = true
	require.Equal(t, "first", claim(o))

	// Both claimed: the oldest of the backlog is next.
	_, err := db.ExecContext(ctx, `UPDATE jobs SET state = 'done' WHERE dedup_key IN ('first', 'second')`)
	require.NoError(t, err)
	require.Equal(t, "s2000", claim(o))
	q, args := claimQuery(o, store.Postgres, time.Minute)
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	var raw string
	require.NoError(t, tx.QueryRowContext(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) `+q, args...).Scan(&raw))
	require.NoError(t, tx.Rollback())
	var pending []duePlanNode
	for _, n := range planScans(t, raw) {
		if strings.Contains(n.IndexCond, "'pending'") {
			pending = append(pending, n)
		}
	}
	require.Len(t, pending, 1, raw)
	require.Equal(t, "jobs_kind_due", pending[0].Index, raw)
	// An incremental sort of the index's run_at order: a few dozen rows
	// (33 on PostgreSQL 15), not the backlog.
	require.LessOrEqual(t, pending[0].ActualRows, float64(64), raw)
}
