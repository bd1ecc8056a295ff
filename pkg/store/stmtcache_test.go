package store

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// cacheOf returns the statement cache of conn's driver connection.
func cacheOf(t *testing.T, conn *sql.Conn) *cachingConn {
	t.Helper()
	var c *cachingConn
	require.NoError(t, conn.Raw(func(dc any) error {
		c = dc.(*cachingConn)
		return nil
	}))
	return c
}

func openCached(t *testing.T) (*DB, *sql.Conn) {
	t.Helper()
	ctx := context.Background()
	db, err := OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	_, err = conn.ExecContext(ctx, `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)`)
	require.NoError(t, err)
	return db, conn
}

// TestStmtCacheReusesStatements runs statements given as text many times:
// each text is prepared once per connection, and the results are those of
// the text.
func TestStmtCacheReusesStatements(t *testing.T) {
	ctx := context.Background()
	_, conn := openCached(t)
	c := cacheOf(t, conn)
	before := c.prepared
	for i := range 50 {
		res, err := conn.ExecContext(ctx, `INSERT INTO t (id, v) VALUES ($1, $2)`, i, fmt.Sprint("v", i))
		require.NoError(t, err)
		n, err := res.RowsAffected()
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		id, err := res.LastInsertId()
		require.NoError(t, err)
		require.EqualValues(t, i, id)
		var v string
		require.NoError(t, conn.QueryRowContext(ctx, `SELECT v FROM t WHERE id = $1`, i).Scan(&v))
		require.Equal(t, fmt.Sprint("v", i), v)
	}
	require.EqualValues(t, 2, c.prepared-before, "two texts, each prepared once")
	// A failing run leaves the statement usable.
	_, err := conn.ExecContext(ctx, `INSERT INTO t (id, v) VALUES ($1, $2)`, 1, "dup")
	require.ErrorContains(t, err, "UNIQUE")
	_, err = conn.ExecContext(ctx, `INSERT INTO t (id, v) VALUES ($1, $2)`, 100, "v100")
	require.NoError(t, err)
	require.EqualValues(t, 2, c.prepared-before)
}

// TestStmtCacheOpenRows runs a query again while its first rows are still
// open, and a statement evicted while its rows are open: each reads what
// it should, and the evicted one is closed only after its rows.
func TestStmtCacheOpenRows(t *testing.T) {
	ctx := context.Background()
	_, conn := openCached(t)
	for i := range 5 {
		_, err := conn.ExecContext(ctx, `INSERT INTO t (id, v) VALUES ($1, $2)`, i, fmt.Sprint("v", i))
		require.NoError(t, err)
	}
	const q = `SELECT id FROM t WHERE id >= $1 ORDER BY id`
	outer, err := conn.QueryContext(ctx, q, 0)
	require.NoError(t, err)
	var seen []int
	for outer.Next() {
		var id int
		require.NoError(t, outer.Scan(&id))
		seen = append(seen, id)
		// The same text while outer is open runs as text.
		var inner []int
		rows, err := conn.QueryContext(ctx, q, id)
		require.NoError(t, err)
		for rows.Next() {
			var j int
			require.NoError(t, rows.Scan(&j))
			inner = append(inner, j)
		}
		require.NoError(t, rows.Err())
		require.NoError(t, rows.Close())
		require.Len(t, inner, 5-id)
		if id == 2 {
			// Evict outer's statement: more distinct texts than the cache holds.
			for k := range stmtCacheSize + 10 {
				var n int
				require.NoError(t, conn.QueryRowContext(ctx, fmt.Sprintf(`SELECT COUNT(*) + %d FROM t`, k)).Scan(&n))
				require.Equal(t, 5+k, n)
			}
			c := cacheOf(t, conn)
			c.mu.Lock()
			require.Equal(t, stmtCacheSize, c.lru.Len())
			_, cached := c.byText[q]
			c.mu.Unlock()
			require.False(t, cached)
		}
	}
	require.NoError(t, outer.Err())
	require.NoError(t, outer.Close())
	require.Equal(t, []int{0, 1, 2, 3, 4}, seen)
	// The evicted text is prepared again.
	var n int
	require.NoError(t, conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM t WHERE id >= $1`, 3).Scan(&n))
	require.Equal(t, 2, n)
}

// TestStmtCacheTexts: scripts run every statement (they are not kept), a
// schema change is seen by a kept statement, and a text that does not parse
// fails as it would unprepared.
func TestStmtCacheTexts(t *testing.T) {
	ctx := context.Background()
	_, conn := openCached(t)
	c := cacheOf(t, conn)
	before := c.prepared
	_, err := conn.ExecContext(ctx, `INSERT INTO t (id, v) VALUES (1, 'a'); INSERT INTO t (id, v) VALUES (2, 'b');`)
	require.NoError(t, err)
	require.Equal(t, before, c.prepared, "a script is not kept")
	var n int
	require.NoError(t, conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM t;`).Scan(&n))
	require.Equal(t, 2, n)

	cols := func() []string {
		rows, err := conn.QueryContext(ctx, `SELECT * FROM t`)
		require.NoError(t, err)
		defer rows.Close()
		names, err := rows.Columns()
		require.NoError(t, err)
		return names
	}
	require.Equal(t, []string{"id", "v"}, cols())
	_, err = conn.ExecContext(ctx, `ALTER TABLE t ADD COLUMN w INTEGER NOT NULL DEFAULT 7`)
	require.NoError(t, err)
	require.Equal(t, []string{"id", "v", "w"}, cols())

	_, err = conn.ExecContext(ctx, `INSERT INTO nowhere VALUES (1)`)
	require.ErrorContains(t, err, "no such table")
	_, err = conn.QueryContext(ctx, `SELEC 1`)
	require.ErrorContains(t, err, "syntax error")
}
