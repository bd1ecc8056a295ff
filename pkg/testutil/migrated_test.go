package testutil

import (
	"context"
	"testing"

	"github.com/rootuip/sre/pkg/store"
)

var testMigrations = []store.Migration{
	{ID: "0001", SQLite: `CREATE TABLE parents (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL)`,
		Postgres: `CREATE TABLE parents (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL)`},
	{ID: "0002", SQLite: `CREATE TABLE children (parent_id INTEGER NOT NULL REFERENCES parents (id), v TEXT)`,
		Postgres: `CREATE TABLE children (parent_id BIGINT NOT NULL REFERENCES parents (id), v TEXT)`},
	{ID: "0003", SQLite: `INSERT INTO parents (name) VALUES ('seeded')`},
}

func rowsOf(t *testing.T, db *store.DB) (parents, children int, schema string) {
	t.Helper()
	ctx := context.Background()
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM parents`).Scan(&parents); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM children`).Scan(&children); err != nil {
		t.Fatal(err)
	}
	if db.Dialect == store.Postgres {
		if err := db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			t.Fatal(err)
		}
	}
	return parents, children, schema
}

// TestMigratedStoresStartAsMigrated: each test gets a store as its
// migrations left it (the seeded row, the next ID after it), whatever the
// tests before it wrote; a PostgreSQL schema is reused, unless a test
// changed its definition, when the next test gets another one.
func TestMigratedStoresStartAsMigrated(t *testing.T) {
	defer DropMigrated()
	ctx := context.Background()
	var schemas []string
	for i, alter := range []bool{false, false, true, false} {
		MigratedBackends(t, [][]store.Migration{testMigrations}, func(t *testing.T, db *store.DB) {
			p, c, schema := rowsOf(t, db)
			if p != 1 || c != 0 {
				t.Fatalf("run %d: %d parents and %d children, want the seeded parent only", i, p, c)
			}
			var id int64
			if err := db.QueryRowContext(ctx, `INSERT INTO parents (name) VALUES ('x') RETURNING id`).Scan(&id); err != nil {
				t.Fatal(err)
			}
			if id != 2 {
				t.Fatalf("run %d: new parent got ID %d, want 2 (after the seeded one)", i, id)
			}
			if _, err := db.ExecContext(ctx, `INSERT INTO children (parent_id, v) VALUES ($1, 'a'), ($1, 'b')`, id); err != nil {
				t.Fatal(err)
			}
			if alter {
				if _, err := db.ExecContext(ctx, `ALTER TABLE children ADD COLUMN extra TEXT`); err != nil {
					t.Fatal(err)
				}
			} else {
				var n int
				err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM children WHERE extra IS NULL`).Scan(&n)
				if err == nil {
					t.Fatalf("run %d: column added by an earlier test is still there", i)
				}
			}
			if db.Dialect == store.Postgres {
				schemas = append(schemas, schema)
			}
		})
	}
	if len(schemas) != 4 || schemas[1] != schemas[0] || schemas[2] != schemas[0] || schemas[3] == schemas[2] {
		t.Fatalf("schemas %v: want the first reused twice, then another one after the definition changed", schemas)
	}
}
