package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

func TestBatchStatement(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes [][]any // query, then its arguments
		want   string
	}{
		{"one write is the statement", [][]any{{`INSERT INTO a VALUES ($1, $2)`, 1, 2}},
			`INSERT INTO a VALUES ($1, $2)`},
		{"placeholders numbered after the writes before", [][]any{
			{`INSERT INTO a VALUES ($1, $2)`, 1, 2},
			{`UPDATE b SET x = $2 WHERE id = $1 AND y = $1`, 3, 4},
			{`INSERT INTO c VALUES ($1, 'a$b', $10)`, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
		}, `WITH w0 AS (INSERT INTO a VALUES ($1, $2)), w1 AS (UPDATE b SET x = $4 WHERE id = $3 AND y = $3) INSERT INTO c VALUES ($5, 'a$b', $14)`},
		{"a write without arguments", [][]any{
			{`DELETE FROM a`},
			{`INSERT INTO a VALUES ($1)`, 1},
		}, `WITH w0 AS (DELETE FROM a) INSERT INTO a VALUES ($1)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b store.Batch
			var all []any
			for _, w := range tc.writes {
				b.Add(w[0].(string), w[1:]...)
				all = append(all, w[1:]...)
			}
			require.Equal(t, len(tc.writes), b.Len())
			q, args := b.Statement()
			require.Equal(t, tc.want, q)
			require.Equal(t, all, args)
		})
	}
}

func TestBatchAppendTo(t *testing.T) {
	var b store.Batch
	b.Add(`INSERT INTO a VALUES ($1)`, "x")
	b.Add(`UPDATE b SET v = $2 WHERE id = $1`, "y", 7)
	writes, args := b.AppendTo([]string{`INSERT INTO z VALUES ($1, $2)`}, []any{1, 2})
	require.Equal(t, []string{`INSERT INTO z VALUES ($1, $2)`, `INSERT INTO a VALUES ($3)`, `UPDATE b SET v = $5 WHERE id = $4`}, writes)
	require.Equal(t, []any{1, 2, "x", "y", 7}, args)
}

// TestBatchExec: on both backends the writes are made, each with its own
// arguments; a write that fails rolls back with the transaction, and the
// batch is empty after Exec either way.
func TestBatchExec(t *testing.T) {
	mig := []store.Migration{{ID: "t/0001_batch",
		SQLite:   `CREATE TABLE things (id TEXT PRIMARY KEY, at BIGINT NOT NULL); CREATE TABLE notes (id TEXT NOT NULL, note TEXT NOT NULL)`,
		Postgres: `CREATE TABLE things (id TEXT PRIMARY KEY, at BIGINT NOT NULL); CREATE TABLE notes (id TEXT NOT NULL, note TEXT NOT NULL)`}}
	testutil.Backends(t, [][]store.Migration{mig}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		_, err := db.ExecContext(ctx, `INSERT INTO things VALUES ('old', 1)`)
		require.NoError(t, err)
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		var b store.Batch
		b.Add(`INSERT INTO things (id, at) VALUES ($1, $2), ($3, $4)`, "a", 10, "b", 20)
		b.Add(`UPDATE things SET at = $1 WHERE id = $2`, 5, "old")
		b.Add(`INSERT INTO notes VALUES ($1, $2)`, "a", "first")
		require.NoError(t, b.Exec(ctx, db.Dialect, tx))
		require.Zero(t, b.Len())
		require.NoError(t, tx.Commit())
		got := map[string]int64{}
		rows, err := db.QueryContext(ctx, `SELECT id, at FROM things`)
		require.NoError(t, err)
		for rows.Next() {
			var id string
			var at int64
			require.NoError(t, rows.Scan(&id, &at))
			got[id] = at
		}
		require.NoError(t, rows.Err())
		rows.Close()
		require.Equal(t, map[string]int64{"old": 5, "a": 10, "b": 20}, got)
		var note string
		require.NoError(t, db.QueryRowContext(ctx, `SELECT note FROM notes WHERE id = 'a'`).Scan(&note))
		require.Equal(t, "first", note)

		tx, err = db.BeginTx(ctx, nil)
		require.NoError(t, err)
		b.Add(`INSERT INTO notes VALUES ($1, $2)`, "c", "lost")
		b.Add(`INSERT INTO things (id, at) VALUES ($1, $2)`, "a", 1) // a duplicate key
		require.Error(t, b.Exec(ctx, db.Dialect, tx))
		require.Zero(t, b.Len())
		require.NoError(t, tx.Rollback())
		var n int
		require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM notes`).Scan(&n))
		require.Equal(t, 1, n)
	})
}

// TestBatchOneRoundTrip (PostgreSQL): a batch of three writes is one round
// trip.
func TestBatchOneRoundTrip(t *testing.T) {
	ctx := context.Background()
	db, proxy := testutil.OpenPostgresThroughProxy(t, set)
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer tx.Rollback() //nolint:errcheck
	var b store.Batch
	b.Add(`INSERT INTO things (id, at) VALUES ($1, $2)`, "a", 1)
	b.Add(`INSERT INTO things (id, at) VALUES ($1, $2)`, "b", 2)
	b.Add(`INSERT INTO things (id, at) VALUES ($1, $2)`, "c", 3)
	// Twice: the first run of a statement may prepare it in a round trip
	// of its own.
	before := proxy.Count()
	require.NoError(t, b.Exec(ctx, db.Dialect, tx))
	first := proxy.Count() - before
	b.Add(`INSERT INTO things (id, at) VALUES ($1, $2)`, "d", 1)
	b.Add(`INSERT INTO things (id, at) VALUES ($1, $2)`, "e", 2)
	b.Add(`INSERT INTO things (id, at) VALUES ($1, $2)`, "f", 3)
	before = proxy.Count()
	require.NoError(t, b.Exec(ctx, db.Dialect, tx))
	require.Equal(t, int64(1), proxy.Count()-before, "round trips of a batch of three writes (the first run: %d)", first)
	var n int
	require.NoError(t, tx.QueryRowContext(ctx, `SELECT count(*) FROM things`).Scan(&n))
	require.Equal(t, 6, n)
}
