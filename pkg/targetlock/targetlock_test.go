package targetlock

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

func TestLocks(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := New(db)
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		if err := l.Acquire(ctx, "staging/checkout", "chaos", "exp-1", t0, time.Minute); err != nil {
			t.Fatal(err)
		}
		err := l.Acquire(ctx, "staging/checkout", "rollout", "r-9", t0.Add(30*time.Second), time.Minute)
		var held *HeldError
		if !errors.As(err, &held) || held.Lock.Holder != "exp-1" || held.Lock.Kind != "chaos" {
			t.Fatalf("second holder: got %v, want HeldError by chaos exp-1", err)
		}
		// Other targets are independent.
		if err := l.Acquire(ctx, "staging/api", "rollout", "r-9", t0, time.Minute); err != nil {
			t.Fatal(err)
		}
		// Renewal keeps it past the first expiry.
		if err := l.Renew(ctx, "staging/checkout", "exp-1", t0.Add(50*time.Second), time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := l.Acquire(ctx, "staging/checkout", "rollout", "r-9", t0.Add(90*time.Second), time.Minute); !errors.As(err, &held) {
			t.Fatalf("after renewal: got %v, want HeldError", err)
		}
		// Expired: another holder takes it, the first loses it.
		if err := l.Acquire(ctx, "staging/checkout", "scaling", "s-1", t0.Add(200*time.Second), time.Minute); err != nil {
			t.Fatalf("expired lock not taken over: %v", err)
		}
		if err := l.Renew(ctx, "staging/checkout", "exp-1", t0.Add(201*time.Second), time.Minute); !errors.Is(err, ErrNotHeld) {
			t.Fatalf("renew by lost holder: got %v, want ErrNotHeld", err)
		}
		// Release by a non-holder does nothing; by the holder frees it.
		if err := l.Release(ctx, "staging/checkout", "exp-1"); err != nil {
			t.Fatal(err)
		}
		if k, _ := l.Get(ctx, "staging/checkout"); k == nil || k.Holder != "s-1" {
			t.Fatalf("lock after foreign release: %+v", k)
		}
		if err := l.Release(ctx, "staging/checkout", "s-1"); err != nil {
			t.Fatal(err)
		}
		if k, _ := l.Get(ctx, "staging/checkout"); k != nil {
			t.Fatalf("lock after release: %+v", k)
		}
	})
}

// TestServiceKeyWithoutCase: a service's target differing only in case is
// the same lock (the safety checks compare service and environment names
// that way); other targets (a PID file's path) stay as written.
func TestServiceKeyWithoutCase(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := New(db)
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		if err := l.Acquire(ctx, ServiceKey("staging", "checkout"), "rollout", "r-1", t0, time.Minute); err != nil {
			t.Fatal(err)
		}
		var held *HeldError
		if err := l.Acquire(ctx, ServiceKey("Staging", "CHECKOUT"), "chaos", "exp-1", t0, time.Minute); !errors.As(err, &held) || held.Lock.Holder != "r-1" || held.Lock.Target != "staging/checkout" {
			t.Fatalf("got %v, want HeldError by rollout r-1 on staging/checkout", err)
		}
		if err := l.Acquire(ctx, "pidfile:/run/App.pid", "chaos", "exp-1", t0, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := l.Acquire(ctx, "pidfile:/run/app.pid", "chaos", "exp-2", t0, time.Minute); err != nil {
			t.Fatalf("another path: %v", err)
		}
	})
}
