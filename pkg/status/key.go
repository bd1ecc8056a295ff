package status

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/rootuip/sre/pkg/store"
)

// Migrations create the table of the page's key.
var Migrations = []store.Migration{{
	ID: "status/0001_key",
	SQLite: `CREATE TABLE status_key (
		id INTEGER PRIMARY KEY CHECK (id = 1),
		key TEXT NOT NULL
	)`,
}}

// LoadKey returns the secret the page's incident keys are made with
// (Options.Key), creating it at the first start: a random 32 bytes kept in
// the store, so that an incident keeps its key across restarts, and the
// replicas of one database give it the same one.
func LoadKey(ctx context.Context, db *store.DB) ([]byte, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("status page key: %w", err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO status_key (id, key) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`, hex.EncodeToString(k)); err != nil {
		return nil, fmt.Errorf("status page key: %w", err)
	}
	var s string
	if err := db.QueryRowContext(ctx, `SELECT key FROM status_key WHERE id = 1`).Scan(&s); err != nil {
		return nil, fmt.Errorf("status page key: %w", err)
	}
	k, err := hex.DecodeString(s)
	if err != nil || len(k) < 16 {
		return nil, fmt.Errorf("status page key: the stored key is not 16 or more hex-encoded bytes")
	}
	return k, nil
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
