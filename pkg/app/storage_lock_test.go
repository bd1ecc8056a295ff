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

// A notification secret file that does not exist fails the load, as sred
// and `srectl check config` load the configuration, naming the field.
func TestLoadConfigMissingSecretFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sred.yml")
	if err := os.WriteFile(cfg, []byte("notifications:\n  ack_secret_file: secrets/ack\n  webhook:\n    url: http://127.0.0.1:9/hook\n    secret_file: secrets/hook\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "secrets"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secrets", "hook"), []byte("k3y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfig(cfg)
	want := "load config " + cfg + `:2:20: notifications.ack_secret_file: file "secrets/ack" does not exist`
	if err == nil || err.Error() != want {
		t.Fatalf("LoadConfig: %v, want %s", err, want)
	}
	if err := os.WriteFile(filepath.Join(dir, "secrets", "ack"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(cfg); err != nil {
		t.Fatalf("with the file: %v", err)
	}
}
