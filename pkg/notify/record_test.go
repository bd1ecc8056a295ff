package notify

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	commoncfg "github.com/prometheus/common/config"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/store"
	sretestutil "github.com/rootuip/sre/pkg/testutil"
)

// countingWriter is the incident service with its writes counted: the
// sender's timeline writer and Writer.
type countingWriter struct {
	*incident.Service
	writes atomic.Int64
}

func (c *countingWriter) Write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	c.writes.Add(1)
	return c.Service.Write(ctx, fn)
}

// recordSetup is an incident and a sender whose writes are counted and
// whose timeline events are collected, with n webhook messages claimed.
func recordSetup(t *testing.T, db *store.DB, n int) (*Sender, *countingWriter, []claimed, func() []events.Event) {
	t.Helper()
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)
	bus := events.NewBus(64, nil)
	var (
		mu  sync.Mutex
		evs []events.Event
	)
	t.Cleanup(bus.Attach(func(ev events.Event) {
		if ev.Type == "incident.timeline" {
			mu.Lock()
			evs = append(evs, ev)
			mu.Unlock()
		}
	}))
	svc, incID := openIncidentOn(t, db, t0, bus)
	t.Cleanup(func() { svc.Close() })
	cfg := &Config{MaxAttempts: 3, MinBackoff: 1, MaxBackoff: 1,
		Webhook: &WebhookConfig{URL: "http://127.0.0.1:9/", Secret: commoncfg.Secret("k")}}
	require.NoError(t, cfg.Validate())
	for i := range n {
		_, err := Enqueue(ctx, db, t0, fmt.Sprintf("%s/webhook/%d", incID, i),
			&Message{IncidentID: incID, Channel: ChannelWebhook, Event: EventTrigger, Subject: "x"})
		require.NoError(t, err)
	}
	cw := &countingWriter{Service: svc}
	s := NewSender(db, cfg, clock.NewManual(t0), cw, nil, prometheus.NewRegistry())
	batch, err := s.claim(ctx, t0, jobs.ClaimOptions{})
	require.NoError(t, err)
	require.Len(t, batch, n)
	cw.writes.Store(0)
	return s, cw, batch, func() []events.Event {
		mu.Lock()
		defer mu.Unlock()
		return append([]events.Event(nil), evs...)
	}
}

func notificationEntries(t *testing.T, svc *incident.Service, incID string) []incident.TimelineEntry {
	t.Helper()
	tl, err := svc.Timeline(context.Background(), incID)
	require.NoError(t, err)
	var out []incident.TimelineEntry
	for _, e := range tl {
		if e.Kind == "notification" {
			out = append(out, e)
		}
	}
	return out
}

// The outcomes of messages delivered at the same time are recorded in one
// write: every job's state and its timeline entry together, each entry
// announced on the live stream after the commit. One whose lease another
// sender took meanwhile is left to that sender without holding back the
// others. (Each outcome used to be two writes, the job's and the entry's.)
func TestOutcomesRecordedInOneWrite(t *testing.T) {
	sretestutil.Backends(t, [][]store.Migration{incident.Migrations, jobs.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, cw, batch, published := recordSetup(t, db, 5)
		incID := batch[0].msg.IncidentID
		// Another sender's lease on the third message (ours expired).
		_, err := db.ExecContext(ctx, `UPDATE jobs SET lease_owner = 'other' WHERE id = $1`, batch[2].id)
		require.NoError(t, err)

		outs := make([]outcome, len(batch))
		for i := range batch {
			outs[i] = outcome{c: &batch[i]}
		}
		outs[4].derr = &DeliveryError{Retryable: true, Err: fmt.Errorf("503 Service Unavailable")}
		s.record(ctx, s.config(), outs)

		require.EqualValues(t, 1, cw.writes.Load(), "writes to record 5 outcomes")
		states := map[int64]string{}
		for _, c := range batch {
			var st, owner string
			require.NoError(t, db.QueryRowContext(ctx, `SELECT state, lease_owner FROM jobs WHERE id = $1`, c.id).Scan(&st, &owner))
			states[c.id] = st + "/" + owner
		}
		require.Equal(t, map[int64]string{
			batch[0].id: "done/", batch[1].id: "done/", batch[2].id: "running/other",
			batch[3].id: "done/", batch[4].id: "pending/",
		}, states)
		entries := notificationEntries(t, cw.Service, incID)
		require.Len(t, entries, 4, "the message another sender owns has none")
		require.Len(t, published(), 4)
		require.Equal(t, entries[0].Message, published()[0].Data["message"])
		require.InDelta(t, 3, testutil.ToFloat64(s.sent.WithLabelValues(ChannelWebhook, "delivered")), 0)
		require.InDelta(t, 1, testutil.ToFloat64(s.sent.WithLabelValues(ChannelWebhook, "retry")), 0)
	})
}

// A write that fails stores none of its outcomes: no message is marked
// delivered without its timeline entry, and the messages stay leased to be
// sent again when the lease ends (at least once).
func TestOutcomesWriteFailsTogether(t *testing.T) {
	sretestutil.Backends(t, [][]store.Migration{incident.Migrations, jobs.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, cw, batch, published := recordSetup(t, db, 3)
		incID := batch[0].msg.IncidentID
		outs := make([]outcome, len(batch))
		for i := range batch {
			outs[i] = outcome{c: &batch[i]}
		}
		// The timeline cannot be written: the write fails at the first entry.
		_, err := db.ExecContext(ctx, `ALTER TABLE incident_timeline RENAME TO incident_timeline_gone`)
		require.NoError(t, err)
		s.record(ctx, s.config(), outs)
		_, err = db.ExecContext(ctx, `ALTER TABLE incident_timeline_gone RENAME TO incident_timeline`)
		require.NoError(t, err)

		require.EqualValues(t, 1, cw.writes.Load())
		for _, c := range batch {
			var st string
			require.NoError(t, db.QueryRowContext(ctx, `SELECT state FROM jobs WHERE id = $1`, c.id).Scan(&st))
			require.Equal(t, jobs.StateRunning, st)
		}
		require.Empty(t, notificationEntries(t, cw.Service, incID))
		require.Empty(t, published())
		require.InDelta(t, 0, testutil.ToFloat64(s.sent.WithLabelValues(ChannelWebhook, "delivered")), 0)
	})
}

// Messages sent together by deliverAll are recorded in at most one write
// each (fewer when their outcomes come in together), not two.
func TestDeliverAllRecordsInFewWrites(t *testing.T) {
	sretestutil.Backends(t, [][]store.Migration{incident.Migrations, jobs.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, cw, batch, published := recordSetup(t, db, 6)
		ep := newEndpoint(t)
		cfg := *s.config()
		wh := *cfg.Webhook
		wh.URL = ep.URL
		cfg.Webhook = &wh
		s.deliverAll(ctx, &cfg, batch)
		require.Len(t, ep.Requests(), 6)
		require.LessOrEqual(t, cw.writes.Load(), int64(6))
		require.Len(t, notificationEntries(t, cw.Service, batch[0].msg.IncidentID), 6)
		require.Len(t, published(), 6)
		var done int
		require.NoError(t, db.QueryRowContext(ctx, `SELECT COUNT(*) FROM jobs WHERE state = $1`, jobs.StateDone).Scan(&done))
		require.Equal(t, 6, done)
	})
}

// An outcome whose incident is gone (deleted by retention, say) is still
// recorded: the message is done, without a timeline entry, and the other
// outcomes of the write are not held back.
func TestOutcomeOfAGoneIncident(t *testing.T) {
	sretestutil.Backends(t, [][]store.Migration{incident.Migrations, jobs.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, cw, batch, published := recordSetup(t, db, 2)
		incID := batch[0].msg.IncidentID
		batch[1].msg.IncidentID = "INC-2026-9999"
		s.record(ctx, s.config(), []outcome{{c: &batch[0]}, {c: &batch[1]}})

		require.EqualValues(t, 1, cw.writes.Load())
		var done int
		require.NoError(t, db.QueryRowContext(ctx, `SELECT COUNT(*) FROM jobs WHERE state = $1`, jobs.StateDone).Scan(&done))
		require.Equal(t, 2, done)
		require.Len(t, notificationEntries(t, cw.Service, incID), 1)
		require.Len(t, published(), 1)
		require.Equal(t, incID, published()[0].IncidentID)
		require.InDelta(t, 2, testutil.ToFloat64(s.sent.WithLabelValues(ChannelWebhook, "delivered")), 0)
	})
}

// A connection to PostgreSQL lost under the write of the outcomes (a
// server restart, pg_terminate_backend) does not leave the messages, which
// were sent, to be sent again once their lease ends: the outcomes are
// written again on another connection (one page, not two, 2 minutes apart).
func TestOutcomesWrittenAgainAfterLostConnection(t *testing.T) {
	url := sretestutil.PostgresSchemaURL(t)
	ctx := context.Background()
	db, err := store.OpenPostgres(ctx, url, store.PostgresOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.Migrate(ctx, incident.Migrations, jobs.Migrations, Migrations))
	s, cw, batch, _ := recordSetup(t, db, 2)
	incID := batch[0].msg.IncidentID
	write, killed := s.write, false
	s.write = func(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
		return write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			if !killed {
				killed = true
				// The server ends this session under the transaction.
				_, err := tx.ExecContext(ctx, `SELECT pg_terminate_backend(pg_backend_pid())`)
				require.Error(t, err)
				return err
			}
			return fn(ctx, tx)
		})
	}
	outs := make([]outcome, len(batch))
	for i := range batch {
		outs[i] = outcome{c: &batch[i]}
	}
	s.record(ctx, s.config(), outs)

	require.True(t, killed)
	require.EqualValues(t, 2, cw.writes.Load(), "the write lost with its connection, then the write again")
	for _, c := range batch {
		var st string
		require.NoError(t, db.QueryRowContext(ctx, `SELECT state FROM jobs WHERE id = $1`, c.id).Scan(&st))
		require.Equal(t, jobs.StateDone, st)
	}
	require.Len(t, notificationEntries(t, cw.Service, incID), 2)
	require.InDelta(t, 2, testutil.ToFloat64(s.sent.WithLabelValues(ChannelWebhook, "delivered")), 0)
}

// connectError is what a write gets while PostgreSQL restarts: no
// connection can be made (here: to a port where nothing listens).
func connectError(t *testing.T) error {
	t.Helper()
	_, err := pgconn.Connect(context.Background(), "postgres://postgres@127.0.0.1:22999/x?connect_timeout=5")
	var ce *pgconn.ConnectError
	require.ErrorAs(t, err, &ce)
	return fmt.Errorf("begin transaction: %w", err)
}

// A PostgreSQL restart takes seconds: the write of the outcomes, and the
// one at once after it, find the server shutting down or not yet up. The
// outcomes are written again after growing waits until the server is
// back, so the messages, sent already, are not sent again when their lease
// ends; and not after the lease's end, when another sender may own them.
func TestOutcomesWrittenWhileServerRestarts(t *testing.T) {
	ctx := context.Background()
	down := connectError(t)
	for _, tc := range []struct {
		name     string
		failures int64  // writes refused before the server is back
		want     string // the rows' state after record
	}{
		{"back after five tries", 5, jobs.StateDone},
		{"down past the lease", 1 << 30, jobs.StateRunning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sretestutil.Backends(t, [][]store.Migration{incident.Migrations, jobs.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
				s, cw, batch, _ := recordSetup(t, db, 2)
				clk := s.clock.(*clock.Manual)
				write := s.write
				var tries atomic.Int64
				s.write = func(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
					if tries.Add(1) <= tc.failures {
						return down
					}
					return write(ctx, fn)
				}
				outs := make([]outcome, len(batch))
				for i := range batch {
					outs[i] = outcome{c: &batch[i]}
				}
				done := make(chan struct{})
				go func() {
					defer close(done)
					s.record(ctx, s.config(), outs)
				}()
				for running := true; running; {
					wctx, cancel := context.WithCancel(ctx)
					go func() {
						select {
						case <-done:
							cancel()
						case <-wctx.Done():
						}
					}()
					if clk.WaitWaiters(wctx, 1) == nil {
						// The waits are multiples of this step.
						clk.Advance(outcomeRetryMin)
					}
					cancel()
					select {
					case <-done:
						running = false
					default:
					}
				}
				for _, c := range batch {
					var st string
					require.NoError(t, db.QueryRowContext(ctx, `SELECT state FROM jobs WHERE id = $1`, c.id).Scan(&st))
					require.Equal(t, tc.want, st)
				}
				if tc.want == jobs.StateDone {
					require.EqualValues(t, tc.failures+1, tries.Load())
					require.EqualValues(t, 1, cw.writes.Load(), "one write reached the store")
					require.InDelta(t, 2, testutil.ToFloat64(s.sent.WithLabelValues(ChannelWebhook, "delivered")), 0)
				} else {
					require.False(t, clk.Now().After(batch[0].leaseUntil), "no write after the lease's end")
					require.Greater(t, tries.Load(), int64(5))
					require.EqualValues(t, 0, cw.writes.Load())
				}
			})
		})
	}
}
