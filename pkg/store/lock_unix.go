//go:build unix

package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFileName is the lock file OpenSQLiteExclusive holds in the storage directory.
const LockFileName = "sred.lock"

// ErrLocked is returned by OpenSQLiteExclusive when another process holds the
// storage directory.
var ErrLocked = errors.New("storage directory is in use by another process")

// lockedHint says what to do about a locked storage directory, to a sred
// started directly and to one started by `make run` (Makefile: SRED_DATA
// is its --storage.path).
const lockedHint = "another sred or `make run`? stop it, or give this one another storage directory with --storage.path " +
	"(make run SRED_DATA=data2); one sred runs per SQLite database, several share one on PostgreSQL (--storage.postgres-url)"

// lockDir takes an exclusive, non-blocking flock on dir/sred.lock and
// writes the process ID into it. The lock is released when the returned
// file is closed or the process exits (also on a crash): a second sred on
// the same SQLite database would work the same outbox and timers.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		holder := ""
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
			holder = fmt.Sprintf(" (process %d)", pid)
		}
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is locked%s; %s", ErrLocked, path, holder, lockedHint)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
