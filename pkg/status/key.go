package status

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/rootuip/sre/pkg/store"
)

// Migrations create the table of what the page keeps in the store: its
// key, and the time sred first started on the store.
var Migrations = []store.Migration{{
	ID: "status/0001_key",
	SQLite: `CREATE TABLE status_key (
		id INTEGER PRIMARY KEY CHECK (id = 1),
		key TEXT NOT NULL
	)`,
}, {
	// A store that had its key before first_start existed was first
	// started when its first migration ran.
	ID: "status/0002_first_start",
	SQLite: `ALTER TABLE status_key ADD COLUMN first_start TEXT;
UPDATE status_key SET first_start = (SELECT MIN(applied_at) FROM schema_migrations) WHERE first_start IS NULL;`,
}}

// Stored is what the page keeps in the store (table status_key).
type Stored struct {
	// Key is the secret of the incidents' public keys (Options.Key).
	Key []byte
	// FirstStart is when sred first started on the store (Options.FirstStart).
	FirstStart time.Time
}

// Load returns what the page keeps in the store, creating it at the first
// start: a random 32-byte key, so that an incident keeps its key across
// restarts and the replicas of one database give it the same one; and the
// time of that first start (now, or the store's first migration if that
// ran before: a store the page was added to later).
func Load(ctx context.Context, db *store.DB, now time.Time) (Stored, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return Stored{}, fmt.Errorf("status page key: %w", err)
	}
	first := now.UTC()
	var migrated sql.NullString
	if err := db.QueryRowContext(ctx, `SELECT MIN(applied_at) FROM schema_migrations`).Scan(&migrated); err != nil {
		return Stored{}, fmt.Errorf("status page first start: %w", err)
	}
	if t, err := time.Parse(time.RFC3339Nano, migrated.String); err == nil && t.Before(first) {
		first = t.UTC()
	}
	at := first.Format(time.RFC3339Nano)
	if _, err := db.ExecContext(ctx, `INSERT INTO status_key (id, key, first_start) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING`, hex.EncodeToString(k), at); err != nil {
		return Stored{}, fmt.Errorf("status page key: %w", err)
	}
	if _, err := db.ExecContext(ctx, `UPDATE status_key SET first_start = $1 WHERE id = 1 AND first_start IS NULL`, at); err != nil {
		return Stored{}, fmt.Errorf("status page first start: %w", err)
	}
	var ks, fs string
	if err := db.QueryRowContext(ctx, `SELECT key, first_start FROM status_key WHERE id = 1`).Scan(&ks, &fs); err != nil {
		return Stored{}, fmt.Errorf("status page key: %w", err)
	}
	k, err := hex.DecodeString(ks)
	if err != nil || len(k) < 16 {
		return Stored{}, fmt.Errorf("status page key: the stored key is not 16 or more hex-encoded bytes")
	}
	t, err := time.Parse(time.RFC3339Nano, fs)
	if err != nil {
		return Stored{}, fmt.Errorf("status page first start: the stored time %q is not RFC 3339", fs)
	}
	return Stored{Key: k, FirstStart: t.UTC()}, nil
}

// publicID is the public key of an incident: an HMAC of its ID under the
// page's secret, so that it cannot be matched to the ID (the IDs are few
// and guessable: INC-2026-0001, ...).
func publicID(key []byte, id string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// feedID is a stable key for a public name (the page's title, a
// maintenance window's) in the Atom feed's IDs.
func feedID(name string) string {
	h := sha256.Sum256([]byte("sred-status\x00" + name))
	return hex.EncodeToString(h[:8])
}
