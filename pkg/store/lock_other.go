//go:build !unix

package store

import (
	"errors"
	"os"
)

// LockFileName is the lock file OpenSQLiteExclusive holds in the storage directory.
const LockFileName = "sred.lock"

// ErrLocked is returned by OpenSQLiteExclusive when another process holds the
// storage directory.
var ErrLocked = errors.New("storage directory is in use by another process")

// lockDir does not lock on systems without flock.
func lockDir(string) (*os.File, error) { return nil, nil }
