package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

var beginSet = []store.Migration{{ID: "test/0001",
	SQLite:   `CREATE TABLE things (id TEXT PRIMARY KEY, at BIGINT NOT NULL)`,
	Postgres: `CREATE TABLE things (id TEXT PRIMARY KEY, at BIGINT NOT NULL)`}}

// TestPostgresBeginWithFirstStatement: a transaction's BEGIN goes with its
// first statement, one round trip for both, and that statement runs inside
// the transaction whichever way it is sent (Exec, Query, a statement
// prepared beforehand): another connection does not see its write before
// COMMIT, ROLLBACK undoes it.
func TestPostgresBeginWithFirstStatement(t *testing.T) {
	ctx := context.Background()
	db, proxy := testutil.OpenPostgresThroughProxy(t, beginSet)
	db.SetMaxOpenConns(2) // the transaction's connection and the reader's

	insert := `INSERT INTO things (id, at) VALUES ($1, $2)`
	prepared, err := db.PrepareContext(ctx, insert+` RETURNING at`)
	require.NoError(t, err)
	defer prepared.Close()
	firsts := map[string]func(tx *sql.Tx, id string) error{
		"exec": func(tx *sql.Tx, id string) error {
			_, err := tx.ExecContext(ctx, insert, id, 1)
			return err
		},
		"query": func(tx *sql.Tx, id string) error {
			var at int64
			return tx.QueryRowContext(ctx, insert+` RETURNING at`, id, 1).Scan(&at)
		},
		"prepared": func(tx *sql.Tx, id string) error {
			var at int64
			return tx.StmtContext(ctx, prepared).QueryRowContext(ctx, id, 1).Scan(&at)
		},
	}
	stored := func(id string) bool {
		var n int
		require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM things WHERE id = $1`, id).Scan(&n))
		return n == 1
	}
	for name, first := range firsts {
		t.Run(name, func(t *testing.T) {
			for _, end := range []string{"commit", "rollback"} {
				// Twice: a statement's first run prepares it in a round
				// trip of its own.
				var trips []int64
				for i := range 2 {
					id := name + "-" + end + "-" + string(rune('a'+i))
					before := proxy.Count()
					tx, err := db.BeginTx(ctx, nil)
					require.NoError(t, err)
					defer tx.Rollback() //nolint:errcheck
					require.NoError(t, first(tx, id))
					trips = append(trips, proxy.Count()-before)
					require.False(t, stored(id), "the first statement's write is seen outside its transaction")
					var at int64
					require.NoError(t, tx.QueryRowContext(ctx, `SELECT at FROM things WHERE id = $1`, id).Scan(&at),
						"the transaction sees its first statement's write")
					if end == "commit" {
						require.NoError(t, tx.Commit())
					} else {
						require.NoError(t, tx.Rollback())
					}
					require.Equal(t, end == "commit", stored(id))
				}
				require.Equal(t, int64(1), trips[1], "round trips of BEGIN and the first statement: %v", trips)
			}
		})
	}

	t.Run("several statements without arguments", func(t *testing.T) {
		// pgx runs them as one simple query; the first of a transaction,
		// and one after a write waiting for it (AtCommit), still run
		// inside the transaction.
		for _, waiting := range []bool{false, true} {
			for _, end := range []string{"commit", "rollback"} {
				prefix := fmt.Sprintf("multi-%v-%s", waiting, end)
				tx, err := db.BeginTx(ctx, nil)
				require.NoError(t, err)
				defer tx.Rollback() //nolint:errcheck
				if waiting {
					_, err = tx.ExecContext(store.AtCommit(ctx), insert, prefix+"-w", 1)
					require.NoError(t, err)
				}
				_, err = tx.ExecContext(ctx, fmt.Sprintf(`INSERT INTO things (id, at) VALUES ('%[1]s-a', 1); INSERT INTO things (id, at) VALUES ('%[1]s-b', 2)`, prefix))
				require.NoError(t, err)
				require.False(t, stored(prefix+"-a"), "seen outside its transaction")
				if end == "commit" {
					require.NoError(t, tx.Commit())
				} else {
					require.NoError(t, tx.Rollback())
				}
				for _, id := range []string{"-a", "-b"} {
					require.Equal(t, end == "commit", stored(prefix+id), id)
				}
				if waiting {
					require.Equal(t, end == "commit", stored(prefix+"-w"))
				}
			}
		}
	})

	t.Run("nothing run", func(t *testing.T) {
		before := proxy.Count()
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
		tx, err = db.BeginTx(ctx, nil)
		require.NoError(t, err)
		require.NoError(t, tx.Rollback())
		require.Equal(t, int64(0), proxy.Count()-before, "a transaction that runs nothing sends nothing")
	})

	t.Run("first statement fails", func(t *testing.T) {
		_, err := db.ExecContext(ctx, insert, "taken", 1)
		require.NoError(t, err)
		for name, first := range firsts {
			tx, err := db.BeginTx(ctx, nil)
			require.NoError(t, err)
			err = first(tx, "taken")
			require.ErrorContains(t, err, "duplicate key", name)
			require.NoError(t, tx.Rollback(), name)
		}
		// A first statement that cannot be prepared: its error names it,
		// not BEGIN, whose answer carries it.
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		_, err = tx.ExecContext(ctx, `INSERT INTO no_such_table (id) VALUES ($1)`, 1)
		require.ErrorContains(t, err, `relation "no_such_table" does not exist`)
		require.NotContains(t, err.Error(), "begin:")
		require.NoError(t, tx.Rollback())
		// The connections are usable again, and outside a transaction.
		for range 3 {
			_, err := db.ExecContext(ctx, insert, "after-"+time.Now().Format(time.RFC3339Nano), 2)
			require.NoError(t, err)
		}
	})

	t.Run("commit after a failed statement", func(t *testing.T) {
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		_, err = tx.ExecContext(ctx, insert, "lost", 1)
		require.NoError(t, err)
		_, err = tx.ExecContext(ctx, insert, "lost", 1)
		require.ErrorContains(t, err, "duplicate key")
		require.Error(t, tx.Commit(), "PostgreSQL rolled the failed transaction back")
		require.False(t, stored("lost"))
	})

	t.Run("options begin as before", func(t *testing.T) {
		tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		require.NoError(t, err)
		_, err = tx.ExecContext(ctx, insert, "read-only", 1)
		require.ErrorContains(t, err, "read-only transaction")
		require.NoError(t, tx.Rollback())
		tx, err = db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead})
		require.NoError(t, err)
		var level string
		require.NoError(t, tx.QueryRowContext(ctx, `SHOW transaction_isolation`).Scan(&level))
		require.Equal(t, "repeatable read", level)
		require.NoError(t, tx.Commit())
	})
}

// TestPostgresBeginRowsValues: the rows of a query sent with BEGIN give
// database/sql the values pgx's own rows give it, type for type.
func TestPostgresBeginRowsValues(t *testing.T) {
	ctx := context.Background()
	db := testutil.OpenPostgres(t, beginSet)
	q := `SELECT $1::bigint, 7::int, 3::smallint, 'text'::text, true, '\x0102'::bytea,
		'{"a": [1, 2]}'::json, '{"b": null}'::jsonb, 1.5::float8, 2.5::real, NULL::text,
		'2026-12-05 10:00:00.123+00'::timestamptz, 12.30::numeric
		FROM generate_series(1, 3)`
	read := func(rows *sql.Rows) [][]any {
		t.Helper()
		defer rows.Close()
		cols, err := rows.Columns()
		require.NoError(t, err)
		var all [][]any
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(t, rows.Scan(ptrs...))
			all = append(all, vals)
		}
		require.NoError(t, rows.Err())
		return all
	}
	rows, err := db.QueryContext(ctx, q, int64(42))
	require.NoError(t, err)
	want := read(rows)
	require.Len(t, want, 3)

	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer tx.Rollback() //nolint:errcheck
	rows, err = tx.QueryContext(ctx, q, int64(42))
	require.NoError(t, err)
	require.Equal(t, want, read(rows))
	// The transaction goes on after its first query's rows.
	var n int
	require.NoError(t, tx.QueryRowContext(ctx, `SELECT count(*) FROM things`).Scan(&n))

	// No rows, and an error after the first row.
	tx2, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	rows, err = tx2.QueryContext(ctx, `SELECT id FROM things WHERE false`)
	require.NoError(t, err)
	require.Empty(t, read(rows))
	require.NoError(t, tx2.Rollback())
	tx3, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	rows, err = tx3.QueryContext(ctx, `SELECT 1 / (2 - g) FROM generate_series(1, 3) g`)
	if err == nil {
		for rows.Next() {
		}
		err = rows.Err()
		rows.Close()
	}
	require.ErrorContains(t, err, "division by zero")
	require.NoError(t, tx3.Rollback())
}

// TestPostgresAtCommit: a write marked AtCommit goes with the
// transaction's next statement or its COMMIT, in its round trip, and its
// error is theirs.
func TestPostgresAtCommit(t *testing.T) {
	ctx := context.Background()
	db, proxy := testutil.OpenPostgresThroughProxy(t, beginSet)
	db.SetMaxOpenConns(2) // the transaction's connection and the reader's
	insert := `INSERT INTO things (id, at) VALUES ($1, $2)`
	stored := func(id string) bool {
		var n int
		require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM things WHERE id = $1`, id).Scan(&n))
		return n == 1
	}
	// The statements' first runs prepare them.
	_, err := db.ExecContext(ctx, insert, "warm", 0)
	require.NoError(t, err)
	require.True(t, stored("warm"))

	t.Run("with COMMIT", func(t *testing.T) {
		// Twice: COMMIT's first run in a batch prepares it.
		var trips []int64
		for _, id := range []string{"c1", "c2"} {
			before := proxy.Count()
			tx, err := db.BeginTx(ctx, nil)
			require.NoError(t, err)
			defer tx.Rollback() //nolint:errcheck
			res, err := tx.ExecContext(store.AtCommit(ctx), insert, id, 1)
			require.NoError(t, err)
			_, err = res.RowsAffected()
			require.ErrorContains(t, err, "store.AtCommit", "the rows affected are not known before the write is sent")
			require.Equal(t, int64(0), proxy.Count()-before, "nothing sent before commit")
			require.NoError(t, tx.Commit())
			trips = append(trips, proxy.Count()-before)
			require.True(t, stored(id))
		}
		require.Equal(t, int64(1), trips[1], "BEGIN, the write and COMMIT in one round trip: %v", trips)
	})

	t.Run("with the next statement", func(t *testing.T) {
		var trips []int64
		for _, id := range []string{"n1", "n2"} {
			tx, err := db.BeginTx(ctx, nil)
			require.NoError(t, err)
			defer tx.Rollback() //nolint:errcheck
			_, err = tx.ExecContext(ctx, insert, id+"-first", 1)
			require.NoError(t, err)
			_, err = tx.ExecContext(store.AtCommit(ctx), insert, id, 2)
			require.NoError(t, err)
			before := proxy.Count()
			var at int64
			require.NoError(t, tx.QueryRowContext(ctx, `SELECT at FROM things WHERE id = $1`, id).Scan(&at))
			require.Equal(t, int64(2), at, "the next statement sees the write")
			trips = append(trips, proxy.Count()-before)
			require.False(t, stored(id), "still inside the transaction")
			require.NoError(t, tx.Commit())
			require.True(t, stored(id+"-first"))
			require.True(t, stored(id))
		}
		require.Equal(t, int64(1), trips[1], "the write and the query in one round trip: %v", trips)
	})

	t.Run("failing write fails COMMIT", func(t *testing.T) {
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		defer tx.Rollback() //nolint:errcheck
		_, err = tx.ExecContext(ctx, insert, "f1", 1)
		require.NoError(t, err)
		_, err = tx.ExecContext(store.AtCommit(ctx), insert, "warm", 2) // a duplicate key
		require.NoError(t, err)
		require.ErrorContains(t, tx.Commit(), "duplicate key")
		require.False(t, stored("f1"), "the transaction is rolled back")
		// Its connection is reusable and out of the transaction.
		for i := range 4 {
			_, err := db.ExecContext(ctx, insert, "f-after-"+string(rune('a'+i)), 3)
			require.NoError(t, err)
		}
	})

	t.Run("failing write fails the next statement", func(t *testing.T) {
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		defer tx.Rollback() //nolint:errcheck
		_, err = tx.ExecContext(store.AtCommit(ctx), insert, "warm", 2)
		require.NoError(t, err)
		_, err = tx.ExecContext(ctx, insert, "g1", 1)
		require.ErrorContains(t, err, "duplicate key")
		require.NoError(t, tx.Rollback())
		require.False(t, stored("g1"))
	})

	t.Run("rollback drops it", func(t *testing.T) {
		before := proxy.Count()
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		_, err = tx.ExecContext(store.AtCommit(ctx), insert, "r1", 1)
		require.NoError(t, err)
		require.NoError(t, tx.Rollback())
		require.Equal(t, int64(0), proxy.Count()-before)
		require.False(t, stored("r1"))
	})

	t.Run("outside a transaction it runs at once", func(t *testing.T) {
		res, err := db.ExecContext(store.AtCommit(ctx), insert, "o1", 1)
		require.NoError(t, err)
		n, err := res.RowsAffected()
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
		require.True(t, stored("o1"))
	})
}

// TestAtCommitBackends: on both backends a write marked AtCommit is seen
// by the transaction's next statement and stored by its commit; on SQLite
// it runs at once (its rows affected are known).
func TestAtCommitBackends(t *testing.T) {
	ctx := context.Background()
	testutil.Backends(t, [][]store.Migration{beginSet}, func(t *testing.T, db *store.DB) {
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		defer tx.Rollback() //nolint:errcheck
		res, err := tx.ExecContext(store.AtCommit(ctx), `INSERT INTO things (id, at) VALUES ($1, $2)`, "s1", 7)
		require.NoError(t, err)
		n, err := res.RowsAffected()
		if db.Dialect == store.SQLite {
			require.NoError(t, err)
			require.Equal(t, int64(1), n)
		} else {
			require.Error(t, err)
		}
		var at int64
		require.NoError(t, tx.QueryRowContext(ctx, `SELECT at FROM things WHERE id = $1`, "s1").Scan(&at))
		require.Equal(t, int64(7), at)
		require.NoError(t, tx.Commit())
		require.NoError(t, db.QueryRowContext(ctx, `SELECT at FROM things WHERE id = $1`, "s1").Scan(&at))
		require.Equal(t, int64(7), at)
	})
}
