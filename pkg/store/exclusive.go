package store

import (
	"context"
	"fmt"
	"os"
)

// OpenSQLiteExclusive is OpenSQLite holding an exclusive lock on
// dir/sred.lock until Close, as sred opens its database: a second process
// opening the same directory this way fails with ErrLocked instead of
// working the same outbox, timers and runbook runs. The lock goes with the
// process, also when it crashes. (OpenSQLite alone takes no lock: tests
// use it to open one database from two handles.)
func OpenSQLiteExclusive(ctx context.Context, dir string) (*DB, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create storage directory: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	db, err := OpenSQLite(ctx, dir)
	if err != nil {
		if lock != nil {
			lock.Close()
		}
		return nil, err
	}
	db.lock = lock
	return db, nil
}
