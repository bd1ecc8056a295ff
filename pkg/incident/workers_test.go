package incident_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// serviceGoroutines returns the stacks of the goroutines running code of
// the incident package (its writer and statement preparer).
func serviceGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "sre/pkg/incident.(*Service)") && !strings.Contains(g, "incident_test.") {
			out = append(out, g)
		}
	}
	return out
}

// waitNoServiceGoroutines waits until no goroutine runs the incident
// package's code (a goroutine that has returned from its function may still
// be listed for an instant); the 60 s deadline is only a safety net.
func waitNoServiceGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		gs := serviceGoroutines()
		if len(gs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutine(s) of the incident service still running after Close:\n%s", len(gs), strings.Join(gs, "\n\n"))
		}
		runtime.Gosched()
	}
}

// TestCloseStopsWorkers: the writer (SQLite group commit) and the statement
// preparer run from NewService to Close, and none is left after Close,
// although both had work (deliveries, timeline entries, statements first
// run inside a transaction). Writes after Close fail with ErrClosed.
func TestCloseStopsWorkers(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		waitNoServiceGoroutines(t)
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, events.NewBus(64, nil), nil, prometheus.NewRegistry())
		require.NoError(t, err)
		svc.Clock = clock.NewManual(epoch)
		require.NotEmpty(t, serviceGoroutines(), "the workers start with the service")
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				g := fmt.Sprintf("g%d", i)
				res, err := svc.Ingest(ctx, notification(g, "checkout", "critical", epoch.Add(-time.Minute), g+"-a", g+"-b"))
				if err == nil && len(res.Created) == 1 {
					err = svc.AddTimeline(ctx, nil, incident.TimelineEntry{IncidentID: res.Created[0], Kind: "note", Actor: "alice", Message: "looking"})
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.NoError(t, svc.Close())
		waitNoServiceGoroutines(t)

		_, err = svc.Ingest(ctx, notification("late", "checkout", "critical", epoch, "late-a"))
		require.ErrorIs(t, err, incident.ErrClosed)
		err = svc.Write(ctx, func(context.Context, *sql.Tx) error { return nil })
		require.ErrorIs(t, err, incident.ErrClosed)
		require.NoError(t, svc.Close(), "Close twice")

		// What was answered is stored.
		var n int
		require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM incident_timeline WHERE kind = 'note'`).Scan(&n))
		require.Equal(t, 20, n)
	})
}

// TestCloseWhileWriting: writes racing with Close are either answered after
// their commit (and stored) or refused with ErrClosed; none is answered and
// lost, and Close returns.
func TestCloseWhileWriting(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, events.NewBus(64, nil), nil, prometheus.NewRegistry())
		require.NoError(t, err)
		svc.Clock = clock.NewManual(epoch)
		ctx := context.Background()
		const n = 40
		stored := make(chan string, n)
		var wg sync.WaitGroup
		started := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i == n/2 {
					close(started)
				}
				g := fmt.Sprintf("race-%d", i)
				_, err := svc.Ingest(ctx, notification(g, "api", "high", epoch.Add(-time.Minute), g+"-a"))
				switch {
				case err == nil:
					stored <- g
				case !errors.Is(err, incident.ErrClosed):
					t.Errorf("delivery %s: %v", g, err)
				}
			}()
		}
		<-started
		require.NoError(t, svc.Close())
		wg.Wait()
		close(stored)
		waitNoServiceGoroutines(t)
		for g := range stored {
			var id sql.NullString
			require.NoError(t, db.QueryRow(`SELECT incident_id FROM alert_groups WHERE group_key = $1`, g).Scan(&id), g)
			require.True(t, id.Valid, g)
		}
	})
}

// TestWriteInsideWrite: on SQLite a Write asked from inside a Write would
// wait for the writer running it; it fails at once instead.
func TestWriteInsideWrite(t *testing.T) {
	db, err := store.OpenSQLite(context.Background(), t.TempDir())
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Migrate(context.Background(), migrations...))
	svc, err := incident.NewService(db, incident.DefaultOptions(), nil, events.NewBus(8, nil), nil, prometheus.NewRegistry())
	require.NoError(t, err)
	defer svc.Close()
	err = svc.Write(context.Background(), func(ctx context.Context, _ *sql.Tx) error {
		return svc.Write(ctx, func(context.Context, *sql.Tx) error { return nil })
	})
	require.ErrorContains(t, err, "inside a Write")
}
