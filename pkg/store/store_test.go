package store_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

var set = []store.Migration{
	{ID: "t/0002_more", SQLite: `ALTER TABLE things ADD COLUMN size INTEGER NOT NULL DEFAULT 0`},
	{ID: "t/0001_init", SQLite: `CREATE TABLE things (id TEXT PRIMARY KEY, at BIGINT NOT NULL)`,
		Postgres: `CREATE TABLE things (id TEXT PRIMARY KEY, at BIGINT NOT NULL)`},
}

// TestMigrateConcurrently opens one database twice (two processes) and
// migrates from both at once: each migration applies exactly once.
func TestMigrateConcurrently(t *testing.T) {
	ctx := context.Background()
	open := map[string]func(t *testing.T) (*store.DB, *store.DB){
		"sqlite": func(t *testing.T) (*store.DB, *store.DB) {
			dir := t.TempDir()
			a, err := store.OpenSQLite(ctx, dir)
			require.NoError(t, err)
			b, err := store.OpenSQLite(ctx, dir)
			require.NoError(t, err)
			return a, b
		},
		"postgres": func(t *testing.T) (*store.DB, *store.DB) {
			url := testutil.PostgresSchemaURL(t)
			a, err := store.OpenPostgres(ctx, url, store.PostgresOptions{})
			require.NoError(t, err)
			b, err := store.OpenPostgres(ctx, url, store.PostgresOptions{})
			require.NoError(t, err)
			return a, b
		},
	}
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			a, b := open[name](t)
			defer a.Close()
			defer b.Close()
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i, db := range []*store.DB{a, b, a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = db.Migrate(ctx, set)
				}()
			}
			wg.Wait()
			for _, err := range errs {
				require.NoError(t, err)
			}
			var n int
			require.NoError(t, a.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n))
			require.Equal(t, 2, n)
			_, err := b.Exec(`INSERT INTO things (id, at, size) VALUES ($1, $2, $3)`, "x", 1, 2)
			require.NoError(t, err)
			require.NoError(t, a.Migrate(ctx, set), "migrating again is a no-op")
		})
	}
}

func TestMigrateRejectsDuplicateIDs(t *testing.T) {
	testutil.Backends(t, nil, func(t *testing.T, db *store.DB) {
		err := db.Migrate(context.Background(), set, []store.Migration{{ID: "t/0001_init", SQLite: "SELECT 1"}})
		require.EqualError(t, err, `migrate: duplicate migration ID "t/0001_init"`)
	})
}

// TestOpenSQLitePathCharacters opens stores in directories whose names hold
// the characters a SQLite URI filename gives a meaning to: each is its own
// database, at the path given.
func TestOpenSQLitePathCharacters(t *testing.T) {
	root := t.TempDir()
	for i, name := range []string{"a#1", "a?mode=memory", "a%20b", "a b", "a"} {
		dir := filepath.Join(root, name)
		db, err := store.OpenSQLite(context.Background(), dir)
		require.NoError(t, err, name)
		_, err = db.Exec(`CREATE TABLE marker (n INTEGER)`)
		require.NoError(t, err, name)
		_, err = db.Exec(`INSERT INTO marker (n) VALUES ($1)`, i)
		require.NoError(t, err, name)
		require.NoError(t, db.Close())
		require.FileExists(t, filepath.Join(dir, "sred.db"), name)
	}
	for i, name := range []string{"a#1", "a?mode=memory", "a%20b", "a b", "a"} {
		db, err := store.OpenSQLite(context.Background(), filepath.Join(root, name))
		require.NoError(t, err, name)
		var n int
		require.NoError(t, db.QueryRow(`SELECT n FROM marker`).Scan(&n), name)
		require.Equal(t, i, n, name)
		require.NoError(t, db.Close())
	}
}

// TestOpenPostgresPoolSize opens PostgreSQL with the default pool, a pool
// set by PostgresOptions, and one too small to work: a sweep holds one
// connection for its advisory lock while its work takes another, so a
// pool of 1 would wait for itself.
func TestOpenPostgresPoolSize(t *testing.T) {
	ctx := context.Background()
	url := testutil.PostgresSchemaURL(t)
	for _, tc := range []struct {
		name    string
		set     int
		want    int
		wantErr string
	}{
		{name: "default", set: 0, want: store.DefaultPostgresMaxConns},
		{name: "set", set: 3, want: 3},
		{name: "one", set: 1, wantErr: "a pool of 1 connections: at least 2 are needed"},
		{name: "negative", set: -4, wantErr: "a pool of -4 connections: at least 2 are needed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := store.OpenPostgres(ctx, url, store.PostgresOptions{MaxConns: tc.set})
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			defer db.Close()
			require.Equal(t, tc.want, db.Stats().MaxOpenConnections)
			require.Equal(t, 2, db.Side().Stats().MaxOpenConnections)
		})
	}
}
