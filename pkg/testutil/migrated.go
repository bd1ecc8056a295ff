package testutil

// Migrated stores: migrating a fresh PostgreSQL schema is DDL for every
// table, index and trigger (1-2 s of a loaded 2-core machine for the
// escalation package's 28 migrations), and a fresh SQLite file one
// fsync'd transaction per migration. Tests that each need a freshly
// migrated store get one here instead:
//
//   - SQLite: a copy of a database file migrated once per test binary and
//     set of migrations;
//   - PostgreSQL: a schema migrated once and then reused from a pool:
//     when a test is done with it, its tables are emptied, the rows the
//     migrations wrote and the sequences put back as they were after
//     migrating. A schema whose definition the test changed (a table,
//     column, index, constraint, trigger, function, type or sequence
//     added, dropped or altered) is dropped instead of reused, and so is
//     one that cannot be put back.
//
// Either way the test starts on a store equal to a freshly migrated one,
// and Migrate is still run on it (finding every migration applied).
// Call DropMigrated from TestMain after m.Run to drop the pooled schemas
// and template files.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rootuip/sre/pkg/store"
)

// migrationsKey names a set of migrations by their content.
func migrationsKey(sets [][]store.Migration) string {
	h := sha256.New()
	for _, set := range sets {
		for _, m := range set {
			fmt.Fprintf(h, "%q %q %q\n", m.ID, m.SQLite, m.Postgres)
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

var migrated struct {
	mu      sync.Mutex
	dir     string                 // SQLite templates, under os.TempDir
	sqlite  map[string]string      // key → template file
	pools   map[string][]*pgSchema // key → free schemas
	schemas map[*pgSchema]bool     // every pooled schema, to drop at exit
	admin   *sql.DB
}

// MigratedBackends is Backends with migrated stores from this file's
// templates (MigratedSQLite, MigratedPostgres).
func MigratedBackends(t *testing.T, migrations [][]store.Migration, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		fn(t, MigratedSQLite(t, migrations...))
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, MigratedPostgres(t, migrations...))
	})
}

// MigratedSQLite opens a SQLite store in a temporary directory holding a
// copy of a database migrated once per test binary with these migrations,
// runs Migrate on it, and closes it at the end of the test.
func MigratedSQLite(t testing.TB, migrations ...[]store.Migration) *store.DB {
	t.Helper()
	ctx := context.Background()
	tmpl, err := sqliteTemplate(ctx, migrations)
	if err != nil {
		t.Fatalf("migrate a SQLite template: %v", err)
	}
	dir := t.TempDir()
	if err := copyFile(tmpl, filepath.Join(dir, "sred.db")); err != nil {
		t.Fatalf("copy SQLite template: %v", err)
	}
	db, err := store.OpenSQLite(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx, migrations...); err != nil {
		t.Fatal(err)
	}
	return db
}

func sqliteTemplate(ctx context.Context, migrations [][]store.Migration) (string, error) {
	migrated.mu.Lock()
	defer migrated.mu.Unlock()
	key := migrationsKey(migrations)
	if p, ok := migrated.sqlite[key]; ok {
		return p, nil
	}
	if migrated.dir == "" {
		d, err := os.MkdirTemp("", "sre-migrated-")
		if err != nil {
			return "", err
		}
		migrated.dir = d
	}
	dir := filepath.Join(migrated.dir, key)
	db, err := store.OpenSQLite(ctx, dir)
	if err != nil {
		return "", err
	}
	if err := db.Migrate(ctx, migrations...); err != nil {
		db.Close()
		return "", err
	}
	// Everything into the main file, so that file alone is the database.
	if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		db.Close()
		return "", err
	}
	if err := db.Close(); err != nil {
		return "", err
	}
	if fi, err := os.Stat(filepath.Join(dir, "sred.db-wal")); err == nil && fi.Size() > 0 {
		return "", fmt.Errorf("%s: the write-ahead log was not checkpointed", dir)
	}
	if migrated.sqlite == nil {
		migrated.sqlite = map[string]string{}
	}
	p := filepath.Join(dir, "sred.db")
	migrated.sqlite[key] = p
	return p, nil
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// pgSchema is a migrated schema of the pool with what its migrations left
// in it, to put back after each test.
type pgSchema struct {
	name        string
	fingerprint string   // its definition, as migrated
	tables      []string // every table, quoted and qualified
	reset       string   // SQL putting its rows and sequences back as migrated
}

// MigratedPostgres opens a PostgreSQL schema from the pool of this set of
// migrations (migrating a new one when none is free) with the default pool
// of connections, runs Migrate on it, and closes it at the end of the
// test, when the schema goes back to the pool as it was after migrating
// (see the top of this file).
func MigratedPostgres(t testing.TB, migrations ...[]store.Migration) *store.DB {
	t.Helper()
	ctx := context.Background()
	key := migrationsKey(migrations)
	s, err := takeSchema(ctx, key, migrations)
	if err != nil {
		t.Fatalf("postgres at %s is required (set SRE_TEST_POSTGRES_URL): %v", PostgresURL(), err)
	}
	// Registered first, so it runs after the store is closed.
	t.Cleanup(func() { giveBackSchema(key, s) })
	return openPostgres(t, schemaURL(t, s.name), migrations)
}

func schemaURL(t testing.TB, schema string) string {
	u, err := url.Parse(PostgresURL())
	if err != nil {
		t.Fatalf("parse %s: %v", PostgresURL(), err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func adminDB() (*sql.DB, error) {
	if migrated.admin == nil {
		db, err := sql.Open("pgx", PostgresURL())
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(2)
		migrated.admin = db
	}
	return migrated.admin, nil
}

func takeSchema(ctx context.Context, key string, migrations [][]store.Migration) (*pgSchema, error) {
	migrated.mu.Lock()
	defer migrated.mu.Unlock()
	if free := migrated.pools[key]; len(free) > 0 {
		s := free[len(free)-1]
		migrated.pools[key] = free[:len(free)-1]
		return s, nil
	}
	admin, err := adminDB()
	if err != nil {
		return nil, err
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	s := &pgSchema{name: "m_" + hex.EncodeToString(rnd[:])}
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+s.name); err != nil {
		return nil, fmt.Errorf("create schema: %w", err)
	}
	if migrated.schemas == nil {
		migrated.schemas = map[*pgSchema]bool{}
		migrated.pools = map[string][]*pgSchema{}
	}
	migrated.schemas[s] = true
	u, err := url.Parse(PostgresURL())
	if err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("search_path", s.name)
	u.RawQuery = q.Encode()
	db, err := store.OpenPostgres(ctx, u.String(), store.PostgresOptions{})
	if err != nil {
		return nil, err
	}
	err = db.Migrate(ctx, migrations...)
	db.Close()
	if err != nil {
		return nil, err
	}
	if s.fingerprint, err = schemaFingerprint(ctx, admin, s.name); err != nil {
		return nil, err
	}
	rows, err := admin.QueryContext(ctx, `SELECT format('%I.%I', n.nspname, c.relname), c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'S') ORDER BY 1`, s.name)
	if err != nil {
		return nil, err
	}
	var seqs []string
	for rows.Next() {
		var name, kind string
		if err := rows.Scan(&name, &kind); err != nil {
			rows.Close()
			return nil, err
		}
		if kind == "S" {
			seqs = append(seqs, name)
		} else {
			s.tables = append(s.tables, name)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := referencedLast(ctx, admin, s.name, s.tables); err != nil {
		return nil, err
	}
	// The reset, one statement list (one round trip, one transaction):
	// DELETE (not TRUNCATE, whose new files per table and index cost more
	// than the few rows a test leaves), the migrations' rows written
	// back, the sequences set back.
	// A transaction a test left open (and its row locks) fails the reset
	// instead of holding it forever; the schema is then dropped.
	reset := []string{`SET LOCAL lock_timeout = '1min'`}
	for _, tb := range s.tables {
		reset = append(reset, `DELETE FROM `+tb)
	}
	for _, tb := range s.tables {
		var js sql.NullString
		if err := admin.QueryRowContext(ctx, `SELECT json_agg(t) FROM `+tb+` t`).Scan(&js); err != nil {
			return nil, err
		}
		if js.Valid {
			reset = append(reset, `INSERT INTO `+tb+` SELECT * FROM json_populate_recordset(NULL::`+tb+`, `+quoteLiteral(js.String)+`)`)
		}
	}
	for _, sq := range seqs {
		var last int64
		var called bool
		if err := admin.QueryRowContext(ctx, `SELECT last_value, is_called FROM `+sq).Scan(&last, &called); err != nil {
			return nil, err
		}
		reset = append(reset, fmt.Sprintf(`SELECT setval(%s, %d, %t)`, quoteLiteral(sq), last, called))
	}
	s.reset = strings.Join(reset, ";\n")
	return s, nil
}

// schemaFingerprint digests the definition of everything in a schema.
func schemaFingerprint(ctx context.Context, admin *sql.DB, schema string) (string, error) {
	var fp string
	err := admin.QueryRowContext(ctx, `WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = $1)
SELECT md5(coalesce(string_agg(x, E'\n' ORDER BY x), '')) FROM (
  SELECT 'rel ' || c.relname || ' ' || c.relkind::text || ' ' || coalesce((SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
      || ' ' || a.attnotnull || ' ' || a.attgenerated::text || ' ' || a.attidentity::text || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), ''), ', ' ORDER BY a.attnum)
    FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '') AS x
  FROM pg_class c WHERE c.relnamespace = (SELECT oid FROM ns)
  UNION ALL SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = (SELECT oid FROM ns)
  UNION ALL SELECT 'constraint ' || conname || ' ' || conrelid::regclass::text || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = (SELECT oid FROM ns)
  UNION ALL SELECT 'trigger ' || t.tgname || ' ' || t.tgenabled::text || ' ' || pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
    WHERE c.relnamespace = (SELECT oid FROM ns) AND NOT t.tgisinternal
  UNION ALL SELECT 'function ' || p.oid::regprocedure::text || ' ' || md5(coalesce(p.prosrc, '')) FROM pg_proc p WHERE p.pronamespace = (SELECT oid FROM ns)
  UNION ALL SELECT 'type ' || t.typname || ' ' || t.typtype::text FROM pg_type t WHERE t.typnamespace = (SELECT oid FROM ns)
  UNION ALL SELECT 'sequence ' || s.seqrelid::regclass::text || ' ' || s.seqstart || ' ' || s.seqincrement || ' ' || s.seqmin || ' ' || s.seqmax || ' ' || s.seqcycle
    FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid WHERE c.relnamespace = (SELECT oid FROM ns)
  UNION ALL SELECT 'policy ' || polname || ' ' || polrelid::regclass::text FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE c.relnamespace = (SELECT oid FROM ns)
  UNION ALL SELECT 'rule ' || r.rulename || ' ' || r.ev_class::regclass::text FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
    WHERE c.relnamespace = (SELECT oid FROM ns) AND r.rulename <> '_RETURN'
) defs`, schema).Scan(&fp)
	return fp, err
}

// giveBackSchema puts s back as migrated and into the pool, or drops it
// when its definition changed or it cannot be put back.
func giveBackSchema(key string, s *pgSchema) {
	migrated.mu.Lock()
	defer migrated.mu.Unlock()
	ctx := context.Background()
	admin, err := adminDB()
	if err == nil {
		err = resetSchema(ctx, admin, s)
	}
	if err != nil {
		delete(migrated.schemas, s)
		if admin != nil {
			_, _ = admin.ExecContext(ctx, `SET lock_timeout = '1min'; DROP SCHEMA IF EXISTS `+s.name+` CASCADE`)
		}
		return
	}
	migrated.pools[key] = append(migrated.pools[key], s)
}

func resetSchema(ctx context.Context, admin *sql.DB, s *pgSchema) error {
	fp, err := schemaFingerprint(ctx, admin, s.name)
	if err != nil {
		return err
	}
	if fp != s.fingerprint {
		return fmt.Errorf("schema %s: its definition changed", s.name)
	}
	_, err = admin.ExecContext(ctx, s.reset)
	return err
}

func quoteLiteral(v string) string {
	return "'" + strings.ReplaceAll(v, "'", "''") + "'"
}

// referencedLast orders tables (quoted, qualified) so that a table comes
// before the tables its foreign keys reference: deleting in this order
// never leaves a reference to a deleted row.
func referencedLast(ctx context.Context, admin *sql.DB, schema string, tables []string) error {
	rows, err := admin.QueryContext(ctx, `SELECT format('%I.%I', n.nspname, c.relname), format('%I.%I', fn.nspname, f.relname)
		FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_class f ON f.oid = k.confrelid JOIN pg_namespace fn ON fn.oid = f.relnamespace
		WHERE k.contype = 'f' AND n.nspname = $1 AND k.conrelid <> k.confrelid`, schema)
	if err != nil {
		return err
	}
	refs := map[string][]string{} // table → tables referencing it
	for rows.Next() {
		var from, to string
		if err := rows.Scan(&from, &to); err != nil {
			rows.Close()
			return err
		}
		refs[to] = append(refs[to], from)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(tb string) error
	visit = func(tb string) error {
		switch state[tb] {
		case 1:
			return fmt.Errorf("foreign keys in a cycle through %s", tb)
		case 2:
			return nil
		}
		state[tb] = 1
		for _, r := range refs[tb] {
			if err := visit(r); err != nil {
				return err
			}
		}
		state[tb] = 2
		order = append(order, tb)
		return nil
	}
	for _, tb := range tables {
		if err := visit(tb); err != nil {
			return err
		}
	}
	copy(tables, order)
	return nil
}

// DropMigrated drops the pooled PostgreSQL schemas and removes the SQLite
// templates of MigratedSQLite, MigratedPostgres and MigratedBackends.
// Call it from TestMain after m.Run.
func DropMigrated() {
	migrated.mu.Lock()
	defer migrated.mu.Unlock()
	if migrated.admin != nil {
		for s := range migrated.schemas {
			_, _ = migrated.admin.Exec(`DROP SCHEMA IF EXISTS ` + s.name + ` CASCADE`)
		}
		migrated.admin.Close()
		migrated.admin = nil
	}
	migrated.schemas, migrated.pools, migrated.sqlite = nil, nil, nil
	if migrated.dir != "" {
		os.RemoveAll(migrated.dir)
		migrated.dir = ""
	}
}
