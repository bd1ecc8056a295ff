package incident_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestJoinersShareIncidentRow (PostgreSQL): groups joining the open
// incident of their service hold its row together. While another
// transaction holds the row FOR KEY SHARE, as a concurrent joining
// delivery does, a group whose alerts change nothing of the incident joins
// without waiting for it, writes nothing to the incident's row
// (updated_at stays) and leaves the incident's per-service summary alone
// within a minute of its last move; a group raising the severity does not
// wait for it either (FOR NO KEY UPDATE) and raises it. A transaction
// holding the row FOR UPDATE, as a status change does, makes a joining
// group wait, which then joins once it ends. A minute later a join moves
// the summary forward again.
func TestJoinersShareIncidentRow(t *testing.T) {
	ctx := context.Background()
	db, f, id := openAPIIncidentOnPostgres(t)
	created := epoch
	lastAt := func() int64 {
		var v int64
		require.NoError(t, db.QueryRow(`SELECT last_at FROM incident_link_services WHERE incident_id = $1 AND service = 'api'`, id).Scan(&v))
		return v
	}
	require.Equal(t, created.UnixMilli(), lastAt())

	// hold takes the incident's row (lock: FOR KEY SHARE or FOR UPDATE)
	// in a transaction of its own and returns it with its backend's PID.
	hold := func(lock string) (*sql.Tx, int) {
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		var pid int
		require.NoError(t, tx.QueryRow(`SELECT pg_backend_pid() FROM incidents WHERE id = $1 FOR `+lock, id).Scan(&pid))
		return tx, pid
	}
	// ingest delivers n while pid holds its lock and reports whether the
	// delivery had to wait for pid (then pid's transaction is ended, and
	// the delivery finishes).
	ingest := func(n incident.Notification, holder *sql.Tx, pid int) (*incident.IngestResult, bool) {
		type result struct {
			res *incident.IngestResult
			err error
		}
		done := make(chan result, 1)
		go func() {
			res, err := f.svc.Ingest(ctx, n)
			done <- result{res, err}
		}()
		waited := false
		for {
			select {
			case r := <-done:
				require.NoError(t, r.err)
				require.NoError(t, holder.Rollback())
				return r.res, waited
			default:
			}
			if waited {
				continue
			}
			var blocked int
			require.NoError(t, db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, pid).Scan(&blocked))
			if blocked > 0 {
				waited = true
				require.NoError(t, holder.Rollback())
				holder, _ = db.BeginTx(ctx, nil) // rolled back on return
			}
		}
	}
	readUpdated := func() (int64, string) {
		var at int64
		var sev string
		require.NoError(t, db.QueryRow(`SELECT updated_at, severity FROM incidents WHERE id = $1`, id).Scan(&at, &sev))
		return at, sev
	}

	f.clock.Advance(10 * time.Second)
	holder, pid := hold("KEY SHARE")
	res, waited := ingest(notification("g1", "api", "high", epoch.Add(-4*time.Minute), "g1-a", "g1-b"), holder, pid)
	require.False(t, waited, "a join changing nothing of the incident waited for another joiner's share lock")
	require.Equal(t, []string{id}, res.Incidents)
	require.Empty(t, res.Created)
	at, sev := readUpdated()
	require.Equal(t, created.UnixMilli(), at, "updated_at of an incident whose row the join left as it was")
	require.Equal(t, "HIGH", sev)
	require.Equal(t, created.UnixMilli(), lastAt(), "the per-service summary moved within a minute of its last move")
	got, err := f.svc.Get(ctx, id)
	require.NoError(t, err)
	require.Len(t, got.Alerts, 3)

	f.clock.Advance(10 * time.Second)
	holder, pid = hold("KEY SHARE")
	res, waited = ingest(notification("g2", "api", "critical", epoch.Add(-4*time.Minute), "g2-a"), holder, pid)
	require.False(t, waited, "a join raising the severity waited for another joiner")
	require.Equal(t, []string{id}, res.Incidents)
	at, sev = readUpdated()
	require.Equal(t, epoch.Add(20*time.Second).UnixMilli(), at)
	require.Equal(t, "CRITICAL", sev)

	holder, pid = hold("UPDATE")
	res, waited = ingest(notification("g2b", "api", "critical", epoch.Add(-4*time.Minute), "g2b-a"), holder, pid)
	require.True(t, waited, "a join did not wait for a status change holding the incident's row")
	require.Equal(t, []string{id}, res.Incidents)

	f.clock.Advance(time.Minute)
	_, err = f.svc.Ingest(ctx, notification("g3", "api", "critical", epoch.Add(-4*time.Minute), "g3-a"))
	require.NoError(t, err)
	require.Equal(t, epoch.Add(80*time.Second).UnixMilli(), lastAt(), "a minute on, a join moves the summary forward")
}

// TestJoinOfIncidentResolvedMeanwhile (PostgreSQL): a group about to join
// its service's open incident while a status change holds the incident's
// row (FOR UPDATE) and resolves it: once that commits, the delivery finds
// the incident resolved where correlation had read it open, runs again,
// and opens an incident of its own; the resolved incident gets none of
// its alerts.
func TestJoinOfIncidentResolvedMeanwhile(t *testing.T) {
	ctx := context.Background()
	db, f, id := openAPIIncidentOnPostgres(t)
	f.clock.Advance(10 * time.Second)

	holder, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	var pid int
	require.NoError(t, holder.QueryRow(`SELECT pg_backend_pid() FROM incidents WHERE id = $1 FOR UPDATE`, id).Scan(&pid))
	_, err = holder.Exec(`UPDATE incidents SET status = 'resolved', resolved_at = $2 WHERE id = $1`, id, epoch.UnixMilli())
	require.NoError(t, err)

	done := ingestAsync(ctx, f.svc, notification("g1", "api", "high", epoch.Add(-4*time.Minute), "g1-a"))
	for !blockedBy(t, db, pid) {
		select {
		case r := <-done:
			holder.Rollback() //nolint:errcheck
			t.Fatalf("the delivery did not wait for the status change: %+v, %v", r.res, r.err)
		default:
		}
	}
	require.NoError(t, holder.Commit())
	r := <-done
	require.NoError(t, r.err)
	require.Len(t, r.res.Created, 1)
	require.NotEqual(t, id, r.res.Created[0])
	require.Equal(t, r.res.Created, r.res.Incidents)
	got, err := f.svc.Get(ctx, id)
	require.NoError(t, err)
	require.Len(t, got.Alerts, 1, "the resolved incident keeps only its own alert")
}

// ingested is what an Ingest run by ingestAsync returned.
type ingested struct {
	res *incident.IngestResult
	err error
}

// ingestAsync applies n on a goroutine of its own and sends what Ingest
// returned on the channel.
func ingestAsync(ctx context.Context, svc *incident.Service, n incident.Notification) <-chan ingested {
	done := make(chan ingested, 1)
	go func() {
		res, err := svc.Ingest(ctx, n)
		done <- ingested{res, err}
	}()
	return done
}

// blockedBy reports whether a PostgreSQL backend waits for a lock held by
// the backend pid.
func blockedBy(t *testing.T, db *store.DB, pid int) bool {
	t.Helper()
	var blocked bool
	require.NoError(t, db.QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)))`, pid).Scan(&blocked))
	return blocked
}

// openAPIIncidentOnPostgres opens a store on a PostgreSQL schema of its
// own, a fixture whose correlation groups the api service's alerts, and
// an incident of group g0 of api.
func openAPIIncidentOnPostgres(t *testing.T) (*store.DB, *fixture, string) {
	t.Helper()
	ctx := context.Background()
	db, err := store.OpenPostgres(ctx, testutil.PostgresSchemaURL(t), store.PostgresOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.Migrate(ctx, migrations...))
	f := newFixture(t, db)
	f.svc.SetCorrelation(&incident.Correlation{Window: time.Hour, DependsOn: map[string]map[string][]string{"api": {}}})
	return db, f, f.open(t, "g0", "api", "high")
}
