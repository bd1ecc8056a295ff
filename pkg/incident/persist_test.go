package incident_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestDuplicateCheckNewGroup: on SQLite a delivery of a group the
// process has not seen skips the duplicate check (no read of the group's
// episodes) and is applied; the same delivery again is checked and
// answered as a duplicate. After a restart (another Service on the same
// store) the first repeat takes the write path and is still answered as a
// duplicate, changing nothing.
func TestDuplicateCheckNewGroup(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		n := notification("g-new", "checkout", "critical", epoch.Add(-time.Minute), "a", "b")
		reads := incident.EpisodeReads(f.svc)
		res, err := f.svc.Ingest(ctx, n)
		require.NoError(t, err)
		require.False(t, res.Duplicate)
		require.Len(t, res.Created, 1)
		require.Equal(t, 2, res.Alerts["new"])
		if db.Dialect == store.SQLite {
			require.Equal(t, reads, incident.EpisodeReads(f.svc), "a new group's episodes are not read")
		}

		res, err = f.svc.Ingest(ctx, n)
		require.NoError(t, err)
		require.True(t, res.Duplicate)
		require.Equal(t, 2, res.Alerts["unchanged"])
		require.Equal(t, []string{res.Incidents[0]}, res.Incidents)

		// A group whose stored episodes are not those delivered is no
		// duplicate either: the new episode is applied.
		res, err = f.svc.Ingest(ctx, notification("g-new", "checkout", "critical", epoch.Add(-time.Minute), "a", "b", "c"))
		require.NoError(t, err)
		require.False(t, res.Duplicate)
		require.Equal(t, 1, res.Alerts["new"])

		var timeline int
		require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM incident_timeline`).Scan(&timeline))
		restarted := newFixture(t, db)
		res, err = restarted.svc.Ingest(ctx, n)
		require.NoError(t, err)
		require.True(t, res.Duplicate)
		require.Equal(t, 2, res.Alerts["unchanged"])
		if db.Dialect == store.SQLite {
			require.Zero(t, incident.EpisodeReads(restarted.svc), "an unseen group takes the write path")
		}
		var after int
		require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM incident_timeline`).Scan(&after))
		require.Equal(t, timeline, after, "a duplicate writes no timeline entry")
	})
}

// TestAlertEpisodeNulls: an episode stored without an incident (a resolve
// that arrived with nowhere to go) and an episode still firing keep NULL
// incident_id and ends_at, and a resolved one its end.
func TestAlertEpisodeNulls(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		late := notification("g-late", "checkout", "critical", epoch.Add(-time.Hour), "l")
		late.Status, late.Alerts[0].Status, late.Alerts[0].EndsAt = "resolved", "resolved", epoch.Add(-time.Minute)
		res, err := f.svc.Ingest(ctx, late)
		require.NoError(t, err)
		require.Equal(t, 1, res.Alerts["late"])
		_, err = f.svc.Ingest(ctx, notification("g-fire", "checkout", "critical", epoch.Add(-time.Minute), "f"))
		require.NoError(t, err)

		rows, err := db.Query(`SELECT fingerprint, incident_id IS NULL, ends_at FROM incident_alerts ORDER BY fingerprint`)
		require.NoError(t, err)
		defer rows.Close()
		type row struct {
			fp     string
			noInc  bool
			endsAt *int64
		}
		var got []row
		for rows.Next() {
			var r row
			require.NoError(t, rows.Scan(&r.fp, &r.noInc, &r.endsAt))
			got = append(got, r)
		}
		require.NoError(t, rows.Err())
		end := epoch.Add(-time.Minute).UnixMilli()
		require.Equal(t, []row{{"f", false, nil}, {"l", true, &end}}, got)
	})
}

// TestLinksGroupIndexDropped: the migrations leave no index on
// incident_links (group_key) alone, which no query uses and every new
// group's link paid for.
func TestLinksGroupIndexDropped(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		q := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'incident_links_group'`
		if db.Dialect == store.Postgres {
			q = `SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'incident_links_group' AND schemaname = current_schema()`
		}
		var n int
		require.NoError(t, db.QueryRow(q).Scan(&n))
		require.Zero(t, n)
	})
}

// TestFirstSightPostgres (PostgreSQL): a replica that has not seen a group
// checks its deliveries for a duplicate inside the transaction, after an
// insert of the group's row that takes no lock on a stored one.
//   - A new group's delivery reads no stored episodes (no duplicate check:
//     the insert tells it is new).
//   - Another replica's duplicate of a stored group is answered as one
//     while a transaction holds the group's row lock: it waits for no lock,
//     as the check before the transaction did (it fails when the first
//     sight takes the locking upsert: the delivery then waits for the
//     lock, which pg_blocking_pids shows).
//   - A delivery of a stored group that is no duplicate is applied.
func TestFirstSightPostgres(t *testing.T) {
	ctx := context.Background()
	db := testutil.OpenPostgres(t, migrations...)
	a := newFixture(t, db)
	n := notification("g-ha", "checkout", "critical", epoch.Add(-time.Minute), "a", "b")
	res, err := a.svc.Ingest(ctx, n)
	require.NoError(t, err)
	require.Len(t, res.Created, 1)
	require.Zero(t, incident.EpisodeReads(a.svc), "a new group's episodes are not read")
	var groupAt int64
	require.NoError(t, db.QueryRow(`SELECT last_delivery_at FROM alert_groups WHERE group_key = 'g-ha'`).Scan(&groupAt))
	require.NotZero(t, groupAt, "the inserted group records its delivery")

	// Another replica, and a transaction holding the group's row lock.
	b := newFixture(t, db)
	lock, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer lock.Rollback() //nolint:errcheck
	var lockPID int
	require.NoError(t, lock.QueryRow(`SELECT pg_backend_pid()`).Scan(&lockPID))
	_, err = lock.Exec(`SELECT 1 FROM alert_groups WHERE group_key = 'g-ha' FOR UPDATE`)
	require.NoError(t, err)

	done := ingestAsync(ctx, b.svc, n)
	var got ingested
	for received := false; !received; {
		select {
		case got = <-done:
			received = true
		default:
			require.False(t, blockedBy(t, db, lockPID), "the duplicate waits for the group's row lock")
			runtime.Gosched()
		}
	}
	require.NoError(t, got.err)
	require.True(t, got.res.Duplicate)
	require.Equal(t, 2, got.res.Alerts["unchanged"])
	require.Equal(t, res.Created, got.res.Incidents)
	require.Equal(t, int64(1), incident.EpisodeReads(b.svc), "checked once, in the transaction")
	require.NoError(t, lock.Rollback())

	// A stored group's delivery that changes something is applied.
	c := newFixture(t, db)
	res, err = c.svc.Ingest(ctx, notification("g-ha", "checkout", "critical", epoch.Add(-time.Minute), "a", "b", "c"))
	require.NoError(t, err)
	require.False(t, res.Duplicate)
	require.Equal(t, 1, res.Alerts["new"])
	require.Equal(t, 2, res.Alerts["unchanged"])
	var alerts int
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM incident_alerts WHERE group_key = 'g-ha'`).Scan(&alerts))
	require.Equal(t, 3, alerts)
}
