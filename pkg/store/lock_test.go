//go:build unix

package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A second open of the same SQLite directory is refused while the first is
// open, with a message naming the lock file and the holder; after Close the
// directory opens again.
func TestOpenSQLiteExclusiveLocksDirectory(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	first, err := OpenSQLiteExclusive(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenSQLiteExclusive(ctx, dir)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second OpenSQLite: err = %v, want ErrLocked", err)
	}
	// What to do: stop the other sred, or move this one (sred's flag,
	// and the Makefile's variable for a second `make run`).
	for _, want := range []string{filepath.Join(dir, LockFileName), "process " + strconv.Itoa(os.Getpid()),
		"another sred or `make run`? stop it", "another storage directory with --storage.path", "make run SRED_DATA=data2", "PostgreSQL (--storage.postgres-url)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// The first database still works.
	if _, err := first.ExecContext(ctx, "CREATE TABLE t (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := OpenSQLiteExclusive(ctx, dir)
	if err != nil {
		t.Fatalf("open after Close: %v", err)
	}
	defer again.Close()
	var n int
	if err := again.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil {
		t.Fatalf("table written by the first open: %v", err)
	}
}
