// Package testutil gives tests the real tools and services they run against:
// the pinned promtool, prometheus and alertmanager binaries built into ./bin
// by the Makefile, and an isolated PostgreSQL schema per test.
//
// A missing tool or database fails the test; it is never skipped.
package testutil

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rootuip/sre/pkg/store"
)

// RepoRoot returns the repository root (the directory holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate repository root")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Tool returns the path of a pinned tool ("promtool", "prometheus",
// "alertmanager"). The environment variable SRE_<NAME> overrides the default
// <repo>/bin/<name>. The test fails when the tool is missing: run `make tools`.
func Tool(t testing.TB, name string) string {
	t.Helper()
	env := "SRE_" + upper(name)
	p := os.Getenv(env)
	if p == "" {
		p = filepath.Join(RepoRoot(t), "bin", name)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s not found at %s (%v): run `make tools` or set %s", name, p, err, env)
	}
	if _, err := exec.LookPath(p); err != nil {
		t.Fatalf("%s at %s is not executable: %v", name, p, err)
	}
	return p
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

// PostgresURL is the base URL of the test database.
func PostgresURL() string {
	if u := os.Getenv("SRE_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// PostgresSchemaURL creates a fresh schema for this test and returns a URL
// whose connections use it (search_path), so tests and packages running in
// parallel do not see each other's tables. The schema is dropped at cleanup.
// The test fails if PostgreSQL is unreachable.
func PostgresSchemaURL(t testing.TB) string {
	t.Helper()
	base := PostgresURL()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open postgres %s: %v", base, err)
	}
	defer admin.Close()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	schema := "t_" + hex.EncodeToString(rnd[:])
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("postgres at %s is required (set SRE_TEST_POSTGRES_URL): create schema: %v", base, err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer a.Close()
		_, _ = a.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", base, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Backends opens one database per backend (SQLite in a temp dir, PostgreSQL in
// a fresh schema), applies the migrations and runs fn for each as a subtest.
func Backends(t *testing.T, migrations [][]store.Migration, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		db, err := store.OpenSQLite(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.Migrate(context.Background(), migrations...); err != nil {
			t.Fatal(err)
		}
		fn(t, db)
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, OpenPostgres(t, migrations...))
	})
}

// OpenPostgres opens a fresh PostgreSQL schema (PostgresSchemaURL) with the
// default pool, applies the migrations, and closes it at the end of the
// test.
func OpenPostgres(t testing.TB, migrations ...[]store.Migration) *store.DB {
	t.Helper()
	return openPostgres(t, PostgresSchemaURL(t), migrations)
}

// OpenPostgresThroughProxy is OpenPostgres with its connections through a
// RoundTripProxy, which counts their round trips.
func OpenPostgresThroughProxy(t testing.TB, migrations ...[]store.Migration) (*store.DB, *RoundTripProxy) {
	t.Helper()
	u, p := PostgresURLThroughProxy(t)
	return openPostgres(t, u, migrations), p
}

// PostgresReplicas opens two pools on one fresh schema (PostgresSchemaURL),
// as two sred replicas sharing one database, applies the migrations
// through each, and closes them at the end of the test. The connections
// of each pool carry its name as application_name, so pg_stat_activity
// tells the replicas apart: prefix-a-N and prefix-b-N, N unique in the
// cluster (application names are cluster-wide).
func PostgresReplicas(t testing.TB, prefix string, migrations ...[]store.Migration) (a, b *store.DB, nameA, nameB string) {
	t.Helper()
	base, err := url.Parse(PostgresSchemaURL(t))
	if err != nil {
		t.Fatal(err)
	}
	suffix := strconv.FormatInt(time.Now().UnixNano(), 10)
	open := func(name string) *store.DB {
		u := *base
		q := u.Query()
		q.Set("application_name", name)
		u.RawQuery = q.Encode()
		return openPostgres(t, u.String(), migrations)
	}
	nameA, nameB = prefix+"-a-"+suffix, prefix+"-b-"+suffix
	return open(nameA), open(nameB), nameA, nameB
}

func openPostgres(t testing.TB, url string, migrations [][]store.Migration) *store.DB {
	t.Helper()
	db, err := store.OpenPostgres(context.Background(), url, store.PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background(), migrations...); err != nil {
		t.Fatal(err)
	}
	return db
}

// QueryPlan returns SQLite's EXPLAIN QUERY PLAN of query with args, one
// line per step, for tests that require a statement to use an index.
func QueryPlan(t testing.TB, db *store.DB, query string, args ...any) string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `EXPLAIN QUERY PLAN `+query, args...)
	if err != nil {
		t.Fatalf("explain %s: %v", query, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatalf("explain %s: %v", query, err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("explain %s: %v", query, err)
	}
	return strings.Join(plan, "\n")
}
