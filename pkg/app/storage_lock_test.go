package app

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rootuip/sre/pkg/store"
)

// A second sred on the same SQLite directory refuses to start, naming the
// lock; once the first has stopped, the directory opens again.
func TestSecondAppOnSameSQLiteRefuses(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sred.yml")
	if err := os.WriteFile(cfg, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	opts := Options{ConfigFile: cfg, StoragePath: filepath.Join(dir, "data")}
	ctx := context.Background()
	first, err := New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	second, err := New(ctx, opts)
	if err == nil {
		second.Close()
		first.Close()
		t.Fatal("a second app on the same SQLite directory started")
	}
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second app: err = %v, want store.ErrLocked", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := New(ctx, opts)
	if err != nil {
		t.Fatalf("after the first app closed: %v", err)
	}
	again.Close()
}
