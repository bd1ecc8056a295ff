package incident_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
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

// largeGroup is a notification of group g with n alerts, all firing or all
// resolved.
func largeGroup(g string, n int, status string, started time.Time) incident.Notification {
	out := incident.Notification{
		Receiver: "sred", Status: status, GroupKey: g,
		GroupLabels:  map[string]string{"alertname": "NodeDown"},
		CommonLabels: map[string]string{"alertname": "NodeDown", "service": "fleet", "severity": "critical"},
		Alerts:       make([]incident.NotifiedAlert, n),
	}
	for i := range n {
		a := incident.NotifiedAlert{
			Status:      status,
			Labels:      map[string]string{"alertname": "NodeDown", "service": "fleet", "severity": "critical", "instance": fmt.Sprintf("node-%05d:9100", i)},
			Annotations: map[string]string{"summary": "node down"},
			StartsAt:    started, Fingerprint: fmt.Sprintf("%016x", i),
		}
		if status == "resolved" {
			a.EndsAt = started.Add(10 * time.Minute)
		}
		out.Alerts[i] = a
	}
	return out
}

func largeService(t testing.TB, db *store.DB) *incident.Service {
	svc, err := incident.NewService(db, incident.DefaultOptions(), nil, events.NewBus(64, nil), nil, prometheus.NewRegistry())
	require.NoError(t, err)
	svc.Clock = clock.NewManual(epoch)
	t.Cleanup(func() { svc.Close() })
	return svc
}

// TestLargeGroupResolve fires a 20,000-alert group and resolves it whole,
// on both backends: every alert is stored resolved and the incident
// resolves; while the large resolve runs, a one-alert delivery of another
// group completes too (it is not refused nor lost behind it).
func TestLargeGroupResolve(t *testing.T) {
	const n = 20000
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc := largeService(t, db)
		started := epoch.Add(-time.Hour)
		res, err := svc.Ingest(ctx, largeGroup("big", n, "firing", started))
		require.NoError(t, err)
		require.Len(t, res.Created, 1)
		id := res.Created[0]

		var wg sync.WaitGroup
		var small *incident.IngestResult
		var smallErr error
		wg.Go(func() {
			small, smallErr = svc.Ingest(ctx, largeGroup("small", 1, "firing", started))
		})
		res, err = svc.Ingest(ctx, largeGroup("big", n, "resolved", started))
		wg.Wait()
		require.NoError(t, err)
		require.Equal(t, n, res.Alerts["resolved"])
		require.NoError(t, smallErr)
		require.Len(t, small.Created, 1)

		var resolved int
		require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM incident_alerts WHERE group_key = 'big' AND status = 'resolved' AND ends_at = $1`,
			started.Add(10*time.Minute).UnixMilli()).Scan(&resolved))
		require.Equal(t, n, resolved)
		inc, err := svc.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, incident.StatusResolved, inc.Status)

		// The same resolve again is a duplicate and changes nothing.
		res, err = svc.Ingest(ctx, largeGroup("big", n, "resolved", started))
		require.NoError(t, err)
		require.True(t, res.Duplicate)
	})
}

// deliveryKey marks the context of a test's delivery with its name.
type deliveryKey struct{}

func named(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, deliveryKey{}, name)
}

func nameOf(ctx context.Context) string { s, _ := ctx.Value(deliveryKey{}).(string); return s }

// TestSmallDeliveryDuringLargeGroup shows, without timing anything, what a
// one-alert delivery waits for while a large group resolves (the
// time itself is BenchmarkResolveLargeGroup's small-behind-large-s):
//
//   - PostgreSQL: nothing. The one-alert delivery is sent from inside the
//     large group's transaction, once it has resolved every alert and the
//     incident (its row locks held), and commits while that transaction is
//     still open: had it waited for it, the test would never end.
//   - SQLite (one writer): one part of the large group, and only it. A
//     group of more than maxAlertsPerWrite episodes is applied in parts,
//     each a write of its own; the one-alert delivery, sent as the first
//     part begins, is queued while the writer applies it and is applied
//     before the large group's last part (in the transaction right after
//     the first part's, or in the next part's), not after the whole group.
func TestSmallDeliveryDuringLargeGroup(t *testing.T) {
	const n = 2000 // what is shown does not depend on the size; the benchmark resolves 20,000
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		started := epoch.Add(-time.Hour)
		var (
			svc      *incident.Service
			mu       sync.Mutex
			batches  = map[string][]int64{} // delivery -> the writer transactions that applied it (SQLite)
			small    = make(chan error, 1)
			smallRes *incident.IngestResult
			sent     sync.Once
		)
		sendSmall := func() {
			go func() {
				res, err := svc.Ingest(named(ctx, "small"), largeGroup("small", 1, "firing", started))
				smallRes = res
				small <- err
			}()
		}
		// Runs inside the large group's transaction once it resolved the
		// incident (every alert resolved before it).
		hook := incident.HookFunc(func(ctx context.Context, tx *sql.Tx, ch incident.Change) error {
			if nameOf(ctx) != "big-resolve" || ch.Kind != incident.ChangeResolved || db.Dialect != store.Postgres {
				return nil
			}
			var err error
			// PostgreSQL (SQLite: sent at the first part's write, see the write hook).
			sent.Do(func() {
				sendSmall()
				// It commits while this transaction is open.
				select {
				case err = <-small:
					if err == nil {
						var open int
						err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM incidents WHERE group_key = 'small'`).Scan(&open)
						if err == nil && open != 1 {
							err = fmt.Errorf("the one-alert delivery's incident is not visible outside its transaction (%d)", open)
						}
					}
					small <- err
				case <-time.After(5 * time.Minute):
					err = errors.New("the one-alert delivery waited for the large group's transaction")
				}
			})
			return err
		})
		var err error
		svc, err = incident.NewService(db, incident.DefaultOptions(), func() []incident.Hook { return []incident.Hook{hook} },
			events.NewBus(64, nil), nil, prometheus.NewRegistry())
		require.NoError(t, err)
		svc.Clock = clock.NewManual(epoch)
		t.Cleanup(func() { svc.Close() })
		incident.SetWriteHook(svc, func(ctx context.Context, batch int64) {
			name := nameOf(ctx)
			if name == "" {
				return
			}
			mu.Lock()
			batches[name] = append(batches[name], batch)
			mu.Unlock()
			if name != "big-resolve" || db.Dialect != store.SQLite {
				return
			}
			sent.Do(func() {
				sendSmall()
				// Wait until it is queued behind this part.
				for give := time.Now().Add(5 * time.Minute); incident.QueuedWrites(svc) == 0; runtime.Gosched() {
					if time.Now().After(give) {
						t.Error("the one-alert delivery never reached the writer while the large group was applied")
						return
					}
				}
			})
		})

		_, err = svc.Ingest(named(ctx, "big-fire"), largeGroup("big", n, "firing", started))
		require.NoError(t, err)
		res, err := svc.Ingest(named(ctx, "big-resolve"), largeGroup("big", n, "resolved", started))
		require.NoError(t, err)
		require.Equal(t, n, res.Alerts["resolved"])
		require.NoError(t, <-small)
		require.Len(t, smallRes.Created, 1)

		if db.Dialect == store.SQLite {
			mu.Lock()
			defer mu.Unlock()
			big := batches["big-resolve"]
			require.Len(t, big, (n+incident.MaxAlertsPerWrite()-1)/incident.MaxAlertsPerWrite(), "the large group is applied in parts")
			require.Greater(t, len(big), 1)
			require.Len(t, batches["small"], 1)
			require.Greater(t, batches["small"][0], big[0], "the one-alert delivery is applied after the part it was queued behind")
			require.LessOrEqual(t, batches["small"][0], big[len(big)-1],
				"the one-alert delivery is applied before the large group's last part, not behind the whole group")
		}
	})
}

// BenchmarkResolveLargeGroup resolves a 20,000-alert group in one delivery
// (the group is fired again, untimed, before each resolve). A one-alert
// delivery of another group is sent at the moment the large group's write
// transaction begins (the write hook): its latency, from that moment to
// its answer, is how long a delivery waits behind the large group
// (small-behind-large-s, the worst of the runs); large-write-s is the
// large group's write transaction (from its start to the large delivery's
// answer).
func BenchmarkResolveLargeGroup(b *testing.B) {
	const n = 20000
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			var db *store.DB
			var err error
			if backend == "sqlite" {
				db, err = store.OpenSQLite(context.Background(), b.TempDir())
			} else {
				db, err = store.OpenPostgres(context.Background(), testutil.PostgresSchemaURL(b), store.PostgresOptions{})
			}
			require.NoError(b, err)
			b.Cleanup(func() { db.Close() })
			require.NoError(b, db.Migrate(context.Background(), incident.Migrations))
			svc := largeService(b, db)
			ctx := context.Background()
			var (
				worst, write time.Duration
				wg           sync.WaitGroup
				writeStart   time.Time
				round        int
			)
			incident.SetWriteHook(svc, func(wctx context.Context, _ int64) {
				if nameOf(wctx) != "big-resolve" || !writeStart.IsZero() {
					return
				}
				// A one-alert delivery of another group, sent as the large
				// group's write transaction begins.
				writeStart = time.Now()
				i := round
				wg.Go(func() {
					_, err := svc.Ingest(context.Background(), largeGroup(fmt.Sprintf("small-%d", i), 1, "firing", epoch))
					worst = max(worst, time.Since(writeStart))
					if err != nil {
						b.Error(err)
					}
				})
			})
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				started := epoch.Add(-time.Duration(b.N-i) * time.Hour)
				_, err := svc.Ingest(ctx, largeGroup("big", n, "firing", started))
				require.NoError(b, err)
				round, writeStart = i, time.Time{}
				b.StartTimer()
				res, err := svc.Ingest(named(ctx, "big-resolve"), largeGroup("big", n, "resolved", started))
				write = max(write, time.Since(writeStart))
				wg.Wait()
				require.NoError(b, err)
				require.Equal(b, n, res.Alerts["resolved"])
				require.False(b, writeStart.IsZero(), "the write hook ran")
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "alerts/s")
			b.ReportMetric(worst.Seconds(), "small-behind-large-s")
			b.ReportMetric(write.Seconds(), "large-write-s")
		})
	}
}

// TestLargeGroupInParts applies a notification of more episodes than one
// write takes (firing and resolved ones mixed, one episode listed twice)
// and checks that the parts leave what the whole notification in one write
// leaves: the same incident, alerts, counts and status, on both backends.
func TestLargeGroupInParts(t *testing.T) {
	notification := func(status string) incident.Notification {
		n := largeGroup("mixed", 25, status, epoch.Add(-time.Hour))
		if status == "resolved" {
			for i := range n.Alerts {
				if i%3 == 0 { // these stay firing
					n.Alerts[i].Status, n.Alerts[i].EndsAt = "firing", time.Time{}
				}
			}
		}
		n.Alerts[3].Labels["severity"] = "warning"
		n.Alerts = append(n.Alerts, n.Alerts[7]) // listed twice
		return n
	}
	type outcome struct {
		res    []any
		status incident.Status
		sev    incident.Severity
		title  string
		alerts map[string]int
	}
	run := func(t *testing.T, db *store.DB, max int) outcome {
		if max > 0 {
			incident.SetMaxAlertsPerWrite(t, max)
		}
		svc := largeService(t, db)
		ctx := context.Background()
		fired, err := svc.Ingest(ctx, notification("firing"))
		require.NoError(t, err)
		require.Len(t, fired.Created, 1, "%+v", fired)
		part, err := svc.Ingest(ctx, notification("resolved"))
		require.NoError(t, err)
		inc, err := svc.Get(ctx, fired.Created[0])
		require.NoError(t, err)
		counts := map[string]int{}
		rows, err := db.Query(`SELECT status, COUNT(*) FROM incident_alerts WHERE group_key = 'mixed' GROUP BY status`)
		require.NoError(t, err)
		defer rows.Close()
		for rows.Next() {
			var st string
			var c int
			require.NoError(t, rows.Scan(&st, &c))
			counts[st] = c
		}
		require.NoError(t, rows.Err())
		return outcome{
			res:    []any{len(fired.Created), fired.Alerts, part.Alerts, part.Duplicate, len(part.Incidents)},
			status: inc.Status, sev: inc.Severity, title: inc.Title, alerts: counts,
		}
	}
	got := map[string][2]outcome{} // dialect -> in parts, whole
	for i, max := range []int{10, 0} {
		testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
			o := got[string(db.Dialect)]
			o[i] = run(t, db, max)
			got[string(db.Dialect)] = o
		})
	}
	require.NotEmpty(t, got)
	for dialect, o := range got {
		parts, whole := o[0], o[1]
		require.Equal(t, map[string]int{"firing": 9, "resolved": 16}, parts.alerts, dialect)
		require.Equal(t, incident.StatusTriggered, parts.status, dialect)
		require.Equal(t, whole, parts, dialect)
	}
}
