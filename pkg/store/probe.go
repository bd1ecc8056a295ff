package store

import (
	"context"
	"fmt"
	"time"
)

// ProbeMigrations create the one-row table that ProbeWrite writes.
var ProbeMigrations = []Migration{{
	ID:     "store/0001_write_probe",
	SQLite: `CREATE TABLE store_write_probe (id INTEGER PRIMARY KEY, at BIGINT NOT NULL)`,
}}

// ProbeWriteSQL is the statement of ProbeWrite, with the time ($1, Unix
// milliseconds) as its only parameter: an upsert of one row, so that it
// writes (and commits) without growing the table.
const ProbeWriteSQL = `INSERT INTO store_write_probe (id, at) VALUES (1, $1)
	ON CONFLICT (id) DO UPDATE SET at = excluded.at`

// ProbeWrite writes and commits one row, to tell whether the store can
// write (a full disk, a read-only or failed-over database fail it where a
// ping does not).
func (db *DB) ProbeWrite(ctx context.Context, now time.Time) error {
	if _, err := db.ExecContext(ctx, ProbeWriteSQL, now.UnixMilli()); err != nil {
		return fmt.Errorf("write probe: %w", err)
	}
	return nil
}
