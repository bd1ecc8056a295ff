// Package store opens the database of sred and applies versioned schema
// migrations. Two backends share one *sql.DB interface: embedded SQLite
// (modernc.org/sqlite, pure Go, WAL) as the default, and PostgreSQL (pgx) for
// running several replicas against one database.
//
// SQL in this repository is written once for both backends: placeholders are
// $1, $2, ... (SQLite accepts them), upserts use ON CONFLICT, and RETURNING is
// available on both. Where the dialects differ, code branches on DB.Dialect.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver "pgx"
	"modernc.org/sqlite"             // SQLite driver
)

// Dialect names the SQL backend.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is an open database.
type DB struct {
	*sql.DB
	Dialect Dialect

	lock *os.File // the storage directory's lock (SQLite); see lockDir
	side *sql.DB  // see Side (PostgreSQL)
}

// Side is a small pool of its own (PostgreSQL; the main pool on SQLite)
// for a single statement that runs while its caller holds a transaction
// of the main pool and must not be part of it (the incident ID
// allocation, which commits on its own so that its row lock is held for
// one statement). Taken from the main pool, such a statement waits for a
// free connection, and when every connection is held by a transaction
// waiting for it or for a lock one of them holds, none is ever freed:
// with more concurrent deliveries than connections, ingestion stopped.
func (db *DB) Side() *sql.DB {
	if db.side != nil {
		return db.side
	}
	return db.DB
}

// Close closes the database and releases the storage directory's lock.
func (db *DB) Close() error {
	err := db.DB.Close()
	if db.side != nil {
		db.side.Close()
	}
	if db.lock != nil {
		db.lock.Close()
		db.lock = nil
	}
	return err
}

// OpenSQLite opens (creating if needed) the database file sred.db in dir.
// The database runs in WAL mode with synchronous=FULL, so a committed
// transaction survives a process kill and a power loss; write transactions
// start IMMEDIATE so concurrent writers queue on busy_timeout instead of
// failing with SQLITE_BUSY on lock upgrade; temporary storage (savepoint
// journals) is kept in memory.
func OpenSQLite(ctx context.Context, dir string) (*DB, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create storage directory: %w", err)
	}
	// A URI filename: '?' starts its parameters and '#' its fragment, so
	// the path is escaped (SQLite decodes %XX), or a directory named
	// "a#1" would open the database "a".
	return openSQLiteDSN(ctx, "file:"+(&url.URL{Path: filepath.Join(dir, "sred.db")}).EscapedPath())
}

// OpenSQLiteMemory opens a private in-memory database (tests only).
func OpenSQLiteMemory(ctx context.Context) (*DB, error) {
	return openSQLiteDSN(ctx, "file::memory:")
}

func openSQLiteDSN(ctx context.Context, base string) (*DB, error) {
	dsn := base + "?_txlock=immediate" +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(FULL)" +
		"&_pragma=busy_timeout(10000)" +
		"&_pragma=foreign_keys(ON)" +
		// Savepoint sub-journals and temporary indexes stay in memory
		// instead of temporary files (durability comes from the WAL).
		"&_pragma=temp_store(MEMORY)"
	conn, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	// Statements run as text are kept prepared per connection (stmtcache.go).
	db := sql.OpenDB(cachingConnector{conn})
	// SQLite has one writer at a time; a small pool avoids lock thrashing.
	// One connection is the incident service's writer's own (it keeps its
	// page cache warm), four are for everything else.
	db.SetMaxOpenConns(5)
	// Keep every connection open: closing an idle one throws away the
	// statements prepared on it, which are then parsed again.
	db.SetMaxIdleConns(5)
	if base == "file::memory:" {
		db.SetMaxOpenConns(1) // each connection would see its own memory database
	}
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	return &DB{DB: db, Dialect: SQLite}, nil
}

// DefaultPostgresMaxConns is the default size of a replica's main pool of
// PostgreSQL connections (PostgresOptions.MaxConns).
const DefaultPostgresMaxConns = 8

// PostgresOptions are the settings of OpenPostgres.
type PostgresOptions struct {
	// MaxConns bounds the main pool: the transactions a replica runs at
	// once (webhook deliveries, the workers' steps, API requests); more
	// wait for a free connection. 0 means DefaultPostgresMaxConns. It must
	// be at least 2: a sweep holds one connection for its advisory lock
	// while its work takes another. The ID allocation's side pool of 2
	// (see Side) comes on top.
	//
	// A backend per transaction in flight is not free: PostgreSQL's CPU
	// per delivery grows with the backends that run at once, and the
	// transactions beyond what its cores run together only queue inside
	// it, some holding row locks the others then wait for. Two replicas
	// sharing 2 cores with PostgreSQL, at 32 connections, with pools of
	// 12 or 20 each: 2.55–3.26 ms of PostgreSQL's CPU per delivery,
	// 424–508 deliveries/s and worst cases up to 2.3 s; with 4 to 8:
	// 1.69–2.29 ms, 541–638/s, at most 0.37 s (docs/benchmarks.md). The
	// wait for a connection is on /metrics
	// (go_sql_wait_duration_seconds_total{db_name="main"}).
	MaxConns int
}

// OpenPostgres connects to PostgreSQL at url (postgres://user@host:port/db).
func OpenPostgres(ctx context.Context, url string, o PostgresOptions) (*DB, error) {
	n := o.MaxConns
	if n == 0 {
		n = DefaultPostgresMaxConns
	}
	if n < 2 {
		return nil, fmt.Errorf("open postgres: a pool of %d connections: at least 2 are needed", n)
	}
	db, err := openPgx(url)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	side, err := openPgx(url)
	if err != nil {
		db.Close()
		return nil, err
	}
	side.SetMaxOpenConns(2)
	side.SetMaxIdleConns(2)
	side.SetConnMaxIdleTime(5 * time.Minute)
	return &DB{DB: db, Dialect: Postgres, side: side}, nil
}

// openPgx opens a pool of connections to url whose sessions plan every
// prepared statement once, with PostgreSQL's generic plan
// (plan_cache_mode=force_generic_plan), unless url sets plan_cache_mode
// itself (as a parameter or in options). pgx prepares each statement sred
// runs once per connection; in the default mode (auto) PostgreSQL plans
// the first five executions with their values, then plans again at every
// execution whose generic plan's estimate looks dearer than the custom
// plans' average: planning was 8% of PostgreSQL's CPU per webhook
// delivery. sred's statements look rows up by key or walk an index in
// order (a group's alerts, an incident's rows, a channel's due jobs), for
// which the values do not change the plan; the queries whose generic plan
// was wrong are written for it (their plan tests run on these sessions).
// Alternated at 32 connections on two replicas (docs/benchmarks.md),
// generic plans were ahead in 4 of 4 pairs, 747 deliveries/s on average
// against 663. The connections send a transaction's BEGIN with its first
// statement, and writes marked AtCommit with its next statement or COMMIT
// (pgConnector).
func openPgx(url string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if _, ok := cfg.RuntimeParams["plan_cache_mode"]; !ok && !strings.Contains(cfg.RuntimeParams["options"], "plan_cache_mode") {
		cfg.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	}
	return sql.OpenDB(pgConnector{stdlib.GetConnector(*cfg)}), nil
}

// Migration is one versioned schema change. ID must be unique and stable
// forever, e.g. "incident/0001_init"; migrations run in ID order within the
// set they were registered with and each runs at most once.
type Migration struct {
	ID string
	// SQLite and Postgres hold the statements for each backend. If Postgres is
	// empty, the SQLite text is used for both.
	SQLite   string
	Postgres string
}

// Migrate applies every migration not yet applied, each in its own transaction.
// On PostgreSQL an advisory lock serialises replicas that start together.
func (db *DB) Migrate(ctx context.Context, sets ...[]Migration) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if db.Dialect == Postgres {
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(LockMigrate)); err != nil {
			return fmt.Errorf("migrate: take lock: %w", err)
		}
		defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(LockMigrate)) //nolint:errcheck
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		id TEXT PRIMARY KEY,
		applied_at TEXT NOT NULL
	)`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	applied := map[string]bool{}
	rows, err := conn.QueryContext(ctx, `SELECT id FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("migrate: %w", err)
		}
		applied[id] = true
	}
	rows.Close()
	seen := map[string]bool{}
	for _, set := range sets {
		set = append([]Migration(nil), set...)
		sort.SliceStable(set, func(i, j int) bool { return set[i].ID < set[j].ID })
		for _, m := range set {
			if m.ID == "" {
				return errors.New("migrate: migration without ID")
			}
			if seen[m.ID] {
				return fmt.Errorf("migrate: duplicate migration ID %q", m.ID)
			}
			seen[m.ID] = true
			if applied[m.ID] {
				continue
			}
			stmt := m.SQLite
			if db.Dialect == Postgres && m.Postgres != "" {
				stmt = m.Postgres
			}
			tx, err := conn.BeginTx(ctx, nil)
			if err != nil {
				return fmt.Errorf("migrate %s: %w", m.ID, err)
			}
			// Another process may have applied it since the list was read
			// (SQLite has no advisory lock; its write transactions are
			// serialised, so checking inside one is enough).
			var done int
			err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE id = $1`, m.ID).Scan(&done)
			if err != nil {
				tx.Rollback() //nolint:errcheck
				return fmt.Errorf("migrate %s: %w", m.ID, err)
			}
			if done > 0 {
				tx.Rollback() //nolint:errcheck
				continue
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				tx.Rollback() //nolint:errcheck
				return fmt.Errorf("migrate %s: %w", m.ID, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (id, applied_at) VALUES ($1, $2)`,
				m.ID, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
				tx.Rollback() //nolint:errcheck
				return fmt.Errorf("migrate %s: record: %w", m.ID, err)
			}
			if err := tx.Commit(); err != nil {
				return fmt.Errorf("migrate %s: commit: %w", m.ID, err)
			}
		}
	}
	return nil
}

// InTx runs fn in a transaction, committing if fn returns nil.
func (db *DB) InTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback() //nolint:errcheck
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// RetryableRuns is how many times RunAgain runs a transaction in all.
const RetryableRuns = 3

// RunAgain runs fn, and runs it again from the start while it fails with a
// Retryable error, RetryableRuns times in all or until ctx ends: for an
// action asked from outside a transaction (an acknowledgement, a manual
// escalation), which PostgreSQL may roll back to break a deadlock with a
// delivery or a step. A second run can meet the transaction it deadlocked
// with still holding its locks, so it may need a third. fn must start over
// on each run (what it keeps outside its transaction, it resets).
func RunAgain(ctx context.Context, fn func() error) error {
	for run := 1; ; run++ {
		err := fn()
		if run == RetryableRuns || !Retryable(err) || ctx.Err() != nil {
			return err
		}
	}
}

// Retryable reports whether err is PostgreSQL breaking a deadlock
// (SQLSTATE 40P01) or failing a serialization (40001): the transaction was
// rolled back and running it again from the start can succeed.
func Retryable(err error) bool {
	var st interface{ SQLState() string }
	if !errors.As(err, &st) {
		return false
	}
	switch st.SQLState() {
	case "40P01", "40001":
		return true
	}
	return false
}
