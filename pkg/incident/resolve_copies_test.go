package incident_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
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

// deadlockCounter is a log handler counting the deliveries PostgreSQL
// rolled back to break a deadlock (SQLSTATE 40P01), which the Service logs
// before it applies them again.
type deadlockCounter struct{ n atomic.Int64 }

func (c *deadlockCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *deadlockCounter) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *deadlockCounter) WithGroup(string) slog.Handler            { return c }

func (c *deadlockCounter) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		err, ok := a.Value.Any().(error)
		var st interface{ SQLState() string }
		if ok && errors.As(err, &st) && st.SQLState() == "40P01" {
			c.n.Add(1)
		}
		return true
	})
	return nil
}

// copiesFixture is a PostgreSQL store with two replicas on it, one for the
// group an alert fired in before Alertmanager's group_by changed (old),
// one for the group it fires in since (new).
type copiesFixture struct {
	db        *store.DB
	clk       *clock.Manual
	old, new  *incident.Service
	deadlocks *deadlockCounter
}

func newCopiesFixture(t *testing.T) *copiesFixture {
	t.Helper()
	f := &copiesFixture{db: testutil.OpenPostgres(t, migrations...), clk: clock.NewManual(epoch), deadlocks: &deadlockCounter{}}
	replica := func() *incident.Service {
		hook := incident.HookFunc(func(ctx context.Context, tx *sql.Tx, ch incident.Change) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO hook_log VALUES ($1, $2, $3)`, ch.Incident.ID, string(ch.Kind), string(ch.Prev))
			return err
		})
		svc, err := incident.NewService(f.db, incident.DefaultOptions(), func() []incident.Hook { return []incident.Hook{hook} },
			events.NewBus(64, nil), slog.New(f.deadlocks), prometheus.NewRegistry())
		require.NoError(t, err)
		svc.Clock = f.clk
		t.Cleanup(func() { svc.Close() })
		// A new group joins the open incident of its service.
		svc.SetCorrelation(&incident.Correlation{Window: 24 * time.Hour,
			LabelRules: []incident.LabelRule{{Name: "service", Labels: []string{"service"}}}})
		return svc
	}
	f.old, f.new = replica(), replica()
	return f
}

// episode is one alert episode with a copy in two groups on one incident.
type episode struct {
	fp       string
	incident string
	// newer is the incident the old group moved on to ("" if none).
	newer string
	// The resolves of the episode each group delivers.
	oldResolve, newResolve incident.Notification
}

// copies makes the episode fp of service svc fire in the old group, then
// in the new group, which joins the old group's incident with a copy of
// it. With movedOn, the incident is then resolved by hand while the
// episode fires, and the old group opens a newer incident with another
// alert.
func (f *copiesFixture) copies(t *testing.T, svc, fp string, movedOn bool) episode {
	t.Helper()
	ctx := context.Background()
	started := f.clk.Now().Add(-time.Minute)
	oldGroup := notification("old-"+svc, svc, "high", started, fp)
	newGroup := notification("new-"+svc, svc, "high", started, fp)
	res, err := f.old.Ingest(ctx, oldGroup)
	require.NoError(t, err)
	require.Len(t, res.Created, 1)
	e := episode{fp: fp, incident: res.Created[0]}
	f.clk.Advance(time.Second)
	res, err = f.new.Ingest(ctx, newGroup)
	require.NoError(t, err)
	require.Empty(t, res.Created)
	require.Equal(t, []string{e.incident}, res.Incidents, "the new group's copy joins the incident")
	if movedOn {
		_, err := f.old.Resolve(ctx, e.incident, "alice", "")
		require.NoError(t, err)
		f.clk.Advance(2 * time.Hour) // past the flap window
		oldGroup.Alerts = append(oldGroup.Alerts, notification("old-"+svc, svc, "high", f.clk.Now(), "f-"+fp).Alerts...)
		res, err = f.old.Ingest(ctx, oldGroup)
		require.NoError(t, err)
		require.Len(t, res.Created, 1)
		require.NotEqual(t, e.incident, res.Created[0])
		e.newer = res.Created[0]
	}
	f.clk.Advance(time.Second)
	resolved := func(n incident.Notification) incident.Notification {
		n.Alerts = append([]incident.NotifiedAlert(nil), n.Alerts...)
		for i := range n.Alerts {
			if n.Alerts[i].Fingerprint == fp {
				n.Alerts[i].Status, n.Alerts[i].EndsAt = "resolved", f.clk.Now()
			}
		}
		return n
	}
	e.oldResolve, e.newResolve = resolved(oldGroup), resolved(newGroup)
	return e
}

// check requires both copies of e resolved, its incident resolved once,
// and the old group's newer incident, if any, open.
func (f *copiesFixture) check(t *testing.T, e episode) {
	t.Helper()
	var firing, copies int
	require.NoError(t, f.db.QueryRow(`SELECT count(*) FILTER (WHERE status <> 'resolved'), count(*)
		FROM incident_alerts WHERE incident_id = $1 AND fingerprint = $2`, e.incident, e.fp).Scan(&firing, &copies))
	require.Equal(t, 2, copies)
	require.Zero(t, firing, "a copy of the episode still fires")
	var resolves int
	require.NoError(t, f.db.QueryRow(`SELECT count(*) FROM hook_log WHERE incident_id = $1 AND kind = $2`,
		e.incident, string(incident.ChangeResolved)).Scan(&resolves))
	require.Equal(t, 1, resolves, "the incident resolved once")
	var told int
	require.NoError(t, f.db.QueryRow(`SELECT count(*) FROM incident_timeline WHERE incident_id = $1 AND kind = 'alert_resolved'`,
		e.incident).Scan(&told))
	require.Equal(t, 1, told, "the episode's resolve is in the timeline once")
	got, err := f.old.Get(context.Background(), e.incident)
	require.NoError(t, err)
	require.Equal(t, incident.StatusResolved, got.Status)
	if e.newer != "" {
		got, err := f.old.Get(context.Background(), e.newer)
		require.NoError(t, err)
		require.True(t, got.Status.Open(), "the newer incident still has a firing alert")
	}
}

// TestConcurrentResolvesOfOneEpisode (PostgreSQL): Alertmanager's group_by
// changed while an alert fired, so two groups hold a copy of its episode
// on one incident, each delivered to a replica of its own. Both groups
// deliver the resolve at the same instant, round after round: no delivery
// fails or is rolled back to break a deadlock, both copies end resolved,
// and the incident resolves once. The same holds when the old group moved
// on to a newer incident (the first one was resolved by hand while the
// episode still fired), so that the two deliveries lock different
// incidents first.
func TestConcurrentResolvesOfOneEpisode(t *testing.T) {
	const rounds = 30
	for _, tc := range []struct {
		name    string
		movedOn bool
	}{
		{"both groups on the incident", false},
		{"old group moved on to a newer incident", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newCopiesFixture(t)
			for round := range rounds {
				e := f.copies(t, fmt.Sprintf("svc-%d", round), fmt.Sprintf("e-%d", round), tc.movedOn)
				start := make(chan struct{})
				errs := make([]error, 2)
				var wg sync.WaitGroup
				for i, d := range []struct {
					svc *incident.Service
					n   incident.Notification
				}{{f.old, e.oldResolve}, {f.new, e.newResolve}} {
					wg.Go(func() {
						<-start
						_, errs[i] = d.svc.Ingest(ctx, d.n)
					})
				}
				close(start)
				wg.Wait()
				require.NoError(t, errs[0], "round %d: the old group's resolve", round)
				require.NoError(t, errs[1], "round %d: the new group's resolve", round)
				f.check(t, e)
				f.clk.Advance(time.Minute)
			}
			require.Zero(t, f.deadlocks.n.Load(), "deliveries rolled back to break a deadlock")
		})
	}
}

// TestResolveOfCopiesLocksIncidentFirst (PostgreSQL): the interleaving
// that deadlocked, forced. The old group moved on to a newer incident;
// the new group's resolve holds the episode's incident (its group's
// current one) and waits for its own copy, which another transaction
// holds. The old group's resolve then starts; it must wait for the
// episode's incident before it touches either copy: had it resolved its
// own copy first, the new group's resolve would wait for it while it
// waits for the new group's copy, and PostgreSQL would break the cycle by
// rolling one back.
func TestResolveOfCopiesLocksIncidentFirst(t *testing.T) {
	ctx := context.Background()
	f := newCopiesFixture(t)
	e := f.copies(t, "api", "e", true)

	holder, err := f.db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer holder.Rollback() //nolint:errcheck
	var pid int
	require.NoError(t, holder.QueryRow(`SELECT pg_backend_pid() FROM incident_alerts
		WHERE group_key = 'new-api' AND fingerprint = 'e' FOR UPDATE`).Scan(&pid))
	newDone := ingestAsync(ctx, f.new, e.newResolve)
	awaitWaiters(t, f.db, pid, 1, newDone)
	oldDone := ingestAsync(ctx, f.old, e.oldResolve)
	awaitWaiters(t, f.db, pid, 2, newDone, oldDone)
	require.NoError(t, holder.Rollback())
	for _, done := range []<-chan ingested{newDone, oldDone} {
		r := <-done
		require.NoError(t, r.err)
	}
	f.check(t, e)
	require.Zero(t, f.deadlocks.n.Load(), "deliveries rolled back to break a deadlock")
}

// TestResolveOfCopyResolvedMeanwhile (PostgreSQL): both groups' resolves
// of an episode wait for its incident, which another transaction holds,
// having read their copies firing. The first to get it resolves both
// copies; the second finds its copy resolved and answers as a redelivery
// would, had it come after the first: a duplicate, the episode unchanged,
// not resolved twice nor told twice in the timeline.
func TestResolveOfCopyResolvedMeanwhile(t *testing.T) {
	ctx := context.Background()
	f := newCopiesFixture(t)
	e := f.copies(t, "api", "e", false)

	holder, err := f.db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer holder.Rollback() //nolint:errcheck
	var pid int
	require.NoError(t, holder.QueryRow(`SELECT pg_backend_pid() FROM incidents WHERE id = $1 FOR UPDATE`, e.incident).Scan(&pid))
	newDone := ingestAsync(ctx, f.new, e.newResolve)
	awaitWaiters(t, f.db, pid, 1, newDone)
	oldDone := ingestAsync(ctx, f.old, e.oldResolve)
	awaitWaiters(t, f.db, pid, 2, newDone, oldDone)
	require.NoError(t, holder.Rollback())
	first, second := <-newDone, <-oldDone
	require.NoError(t, first.err)
	require.NoError(t, second.err)
	require.False(t, first.res.Duplicate)
	require.Equal(t, 1, first.res.Alerts["resolved"])
	require.True(t, second.res.Duplicate, "the copy resolved meanwhile: %+v", second.res)
	require.Equal(t, map[string]int{"unchanged": 1}, second.res.Alerts)
	f.check(t, e)
}

// awaitWaiters waits until n backends wait for the PostgreSQL backend pid,
// or for a backend that waits for it; it fails if a delivery of running
// ends first.
func awaitWaiters(t *testing.T, db *store.DB, pid, n int, running ...<-chan ingested) {
	t.Helper()
	for {
		var waiting int
		require.NoError(t, db.QueryRow(`WITH direct AS (SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)))
			SELECT (SELECT count(*) FROM direct) + (SELECT count(*) FROM pg_stat_activity
				WHERE pg_blocking_pids(pid) && ARRAY(SELECT pid FROM direct) AND NOT $1 = ANY(pg_blocking_pids(pid)))`, pid).Scan(&waiting))
		if waiting >= n {
			return
		}
		for _, done := range running {
			select {
			case r := <-done:
				t.Fatalf("a delivery ended before the holder did: %+v, %v", r.res, r.err)
			default:
			}
		}
	}
}
