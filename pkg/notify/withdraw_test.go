package notify

import (
	"context"
	"database/sql"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	commoncfg "github.com/prometheus/common/config"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// A page withdrawn while it is claimed (the incident acknowledged or
// resolved as the sender works through its claim) is checked before it is
// sent and not sent; the resolve notice behind it still goes out. The page
// already on the wire when the incident is resolved is left to finish: it
// is not counted withdrawn, and reads as delivered once it was.
func TestWithdrawnPageNotSentOnceClaimed(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{jobs.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewManual(time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC))
		recv := newOrderReceiver(t)
		cfg := &Config{Webhook: &WebhookConfig{URL: recv.URL, Secret: commoncfg.Secret("k")}}
		require.NoError(t, cfg.Validate())
		s := NewSender(db, cfg, clk, nil, nil, prometheus.NewRegistry())
		for _, key := range []string{"level0", "level1", "resolve"} {
			event := EventTrigger
			if key == "resolve" {
				event = EventResolve
			}
			_, err := Enqueue(ctx, db, clk.Now(), "INC-1/webhook/"+key, &Message{IncidentID: "INC-1", Channel: ChannelWebhook,
				Event: event, Subject: key, Body: key, Severity: "CRITICAL", Time: clk.Now()})
			require.NoError(t, err)
		}
		release := recv.holdNext(t, "INC-1/trigger")
		done := make(chan int, 1)
		go func() {
			n, err := s.DeliverDue(ctx)
			if err != nil {
				t.Error(err)
			}
			done <- n
		}()
		require.Equal(t, "INC-1/trigger", <-recv.arrived, "the first page is being sent")
		// The incident is resolved meanwhile: the second page, claimed
		// with the first, is withdrawn.
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		n, sending, unknown, err := Withdraw(ctx, tx, clk.Now(), "INC-1", true)
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
		require.Equal(t, int64(1), n, "the second page, claimed, not being sent yet")
		require.Equal(t, int64(1), sending, "the first page, on the wire")
		require.Zero(t, unknown, "its sender's lease lasts")
		release()
		require.Equal(t, 2, <-done, "the first page and the resolve were sent")
		require.Equal(t, []string{"arrive trigger", "answer trigger", "arrive resolve", "answer resolve"}, recv.incident("INC-1"))
		recs, err := List(ctx, db, "INC-1")
		require.NoError(t, err)
		states := map[string]string{}
		for _, r := range recs {
			states[r.Key] = r.State
		}
		require.Equal(t, StateDelivered, states["INC-1/webhook/level0"], "it was delivered")
		require.Equal(t, StateCancelled, states["INC-1/webhook/level1"])
		require.Equal(t, StateDelivered, states["INC-1/webhook/resolve"])
	})
}

// A page whose send had begun when it was withdrawn, and whose send then
// fails, is not retried: it stays cancelled, and nothing of it goes out
// again; the resolve notice behind it still goes out.
func TestWithdrawnPageFailingMidSendNotRetried(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{jobs.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewManual(time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC))
		recv := newOrderReceiver(t)
		cfg := &Config{Webhook: &WebhookConfig{URL: recv.URL, Secret: commoncfg.Secret("k")}}
		require.NoError(t, cfg.Validate())
		s := NewSender(db, cfg, clk, nil, nil, prometheus.NewRegistry())
		for _, key := range []string{"level0", "resolve"} {
			event := EventTrigger
			if key == "resolve" {
				event = EventResolve
			}
			_, err := Enqueue(ctx, db, clk.Now(), "INC-1/webhook/"+key, &Message{IncidentID: "INC-1", Channel: ChannelWebhook,
				Event: event, Subject: key, Body: key, Severity: "CRITICAL", Time: clk.Now()})
			require.NoError(t, err)
		}
		recv.mu.Lock()
		recv.codes["INC-1/trigger"] = http.StatusServiceUnavailable
		recv.mu.Unlock()
		release := recv.holdNext(t, "INC-1/trigger")
		done := make(chan struct{})
		go func() {
			defer close(done)
			if _, err := s.DeliverDue(ctx); err != nil {
				t.Error(err)
			}
		}()
		require.Equal(t, "INC-1/trigger", <-recv.arrived, "the page is being sent")
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		n, sending, unknown, err := Withdraw(ctx, tx, clk.Now(), "INC-1", true)
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
		require.Equal(t, [3]int64{0, 1, 0}, [3]int64{n, sending, unknown})
		release()
		<-done
		for range 3 {
			clk.Advance(time.Hour)
			_, err := s.DeliverDue(ctx)
			require.NoError(t, err)
		}
		require.Equal(t, []string{"arrive trigger", "answer trigger", "arrive resolve", "answer resolve"}, recv.incident("INC-1"))
		recs, err := List(ctx, db, "INC-1")
		require.NoError(t, err)
		states := map[string]string{}
		for _, r := range recs {
			states[r.Key] = r.State
		}
		require.Equal(t, map[string]string{"INC-1/webhook/level0": StateCancelled, "INC-1/webhook/resolve": StateDelivered}, states)
	})
}

// interleavedTx is a transaction that runs between before its second
// statement: a sender's write that commits between Withdraw's list of the
// messages and its cancellation of them.
type interleavedTx struct {
	Tx
	between func(ex jobs.Execer)
	n       int
}

func (x *interleavedTx) next() {
	if x.n++; x.n == 2 {
		x.between(x.Tx)
	}
}

func (x *interleavedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	x.next()
	return x.Tx.QueryContext(ctx, query, args...)
}

func (x *interleavedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	x.next()
	return x.Tx.ExecContext(ctx, query, args...)
}

// Withdraw counts what its cancellation found, not what it listed before:
// a page whose sender died during the send (its lease ended, the outcome
// unknown) is recorded delivered by that sender, stalled rather than
// dead, between the list and the cancellation. It is not withdrawn, and
// counted nowhere; the pending page behind it is withdrawn and counted
// withdrawn (it used to be counted unknown in the dead send's place, and
// withdrawn none). On PostgreSQL the sender writes on its own connection
// and commits; on SQLite, one writer at a time, through the transaction.
func TestWithdrawCountsWhatItCancels(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{jobs.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewManual(time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC))
		enqueue := func(key string) {
			t.Helper()
			_, err := Enqueue(ctx, db, clk.Now(), "INC-1/webhook/"+key, &Message{IncidentID: "INC-1", Channel: ChannelWebhook,
				Event: EventTrigger, Subject: key, Body: key, Severity: "CRITICAL", Time: clk.Now()})
			require.NoError(t, err)
		}
		enqueue("level0")
		js, err := jobs.Claim(ctx, db, jobs.ClaimOptions{Queue: Queue, Owner: "sender", Now: clk.Now(), Lease: time.Minute, Limit: 1})
		require.NoError(t, err)
		require.Len(t, js, 1)
		ok, err := jobs.Start(ctx, db, js[0].ID, "sender", clk.Now())
		require.NoError(t, err)
		require.True(t, ok)
		enqueue("level1")
		clk.Advance(2 * time.Minute) // the sender's lease ended during the send

		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		defer tx.Rollback() //nolint:errcheck // committed below
		x := &interleavedTx{Tx: tx, between: func(ex jobs.Execer) {
			if db.Dialect != store.SQLite {
				ex = db
			}
			_, err := jobs.CompleteAttempt(ctx, ex, js[0].ID, "sender", clk.Now())
			require.NoError(t, err)
		}}
		withdrawn, sending, unknown, err := Withdraw(ctx, x, clk.Now(), "INC-1", false)
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
		require.Equal(t, [3]int64{1, 0, 0}, [3]int64{withdrawn, sending, unknown}, "level1 withdrawn; level0 delivered meanwhile")
		require.Equal(t, 2, x.n, "the list and the cancellation")
		recs, err := List(ctx, db, "INC-1")
		require.NoError(t, err)
		states := map[string]string{}
		for _, r := range recs {
			states[r.Key] = r.State
		}
		require.Equal(t, map[string]string{"INC-1/webhook/level0": StateDelivered, "INC-1/webhook/level1": StateCancelled}, states)
	})
}

// refuseStart makes the store refuse every write of a send-begun mark
// (jobs.Start), and returns what lets it write them again.
func refuseStart(t *testing.T, db *store.DB) func() {
	t.Helper()
	ctx := context.Background()
	if db.Dialect == store.SQLite {
		_, err := db.ExecContext(ctx, `CREATE TRIGGER refuse_start BEFORE UPDATE OF started_at ON jobs
			WHEN NEW.started_at <> 0 BEGIN SELECT RAISE(ABORT, 'start refused'); END`)
		require.NoError(t, err)
		return func() {
			_, err := db.ExecContext(ctx, `DROP TRIGGER refuse_start`)
			require.NoError(t, err)
		}
	}
	_, err := db.ExecContext(ctx, `CREATE FUNCTION refuse_start() RETURNS trigger AS $$
		BEGIN RAISE EXCEPTION 'start refused'; END $$ LANGUAGE plpgsql`)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `CREATE TRIGGER refuse_start BEFORE UPDATE OF started_at ON jobs
		FOR EACH ROW WHEN (NEW.started_at <> 0) EXECUTE FUNCTION refuse_start()`)
	require.NoError(t, err)
	return func() {
		_, err := db.ExecContext(ctx, `DROP TRIGGER refuse_start ON jobs`)
		require.NoError(t, err)
	}
}

// A page whose send-begun mark (jobs.Start) cannot be written, the store
// failing, is not sent in that claim: sent unmarked, an acknowledgement
// during the send would count it withdrawn and its delivery would be
// lost. It stays claimed (logged at Warn with the error); the webhook
// message of its incident written after it is put back behind it, due
// when its lease ends, and the other incidents' messages go out. Once
// the lease has ended it is claimed again and sent, once, before that
// message, after one attempt (the claim that did not send it counts
// none); or, withdrawn meanwhile (counted withdrawn, not as being sent),
// never.
func TestPageNotSentWithoutSendBegunMark(t *testing.T) {
	for _, tc := range []struct {
		name     string
		withdraw bool
		want     []string // what INC-1's receiver gets
		states   map[string]string
	}{
		{name: "claimed again", want: []string{"arrive trigger", "answer trigger", "arrive acknowledge", "answer acknowledge"},
			states: map[string]string{"INC-1/webhook/level0": StateDelivered, "INC-1/webhook/ack": StateDelivered}},
		{name: "withdrawn meanwhile", withdraw: true, want: []string{"arrive acknowledge", "answer acknowledge"},
			states: map[string]string{"INC-1/webhook/level0": StateCancelled, "INC-1/webhook/ack": StateDelivered}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testutil.Backends(t, [][]store.Migration{jobs.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
				ctx := context.Background()
				clk := clock.NewManual(time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC))
				recv := newOrderReceiver(t)
				cfg := &Config{Webhook: &WebhookConfig{URL: recv.URL, Secret: commoncfg.Secret("k")}}
				require.NoError(t, cfg.Validate())
				logs := &testutil.SyncBuffer{}
				s := NewSender(db, cfg, clk, nil, slog.New(slog.NewTextHandler(logs, nil)), prometheus.NewRegistry())
				for _, m := range []struct{ key, incident, event string }{
					{"INC-1/webhook/level0", "INC-1", EventTrigger},
					{"INC-1/webhook/ack", "INC-1", EventAcknowledge},
					{"INC-2/webhook/resolve", "INC-2", EventResolve},
				} {
					_, err := Enqueue(ctx, db, clk.Now(), m.key, &Message{IncidentID: m.incident, Channel: ChannelWebhook,
						Event: m.event, Subject: m.key, Body: m.key, Severity: "CRITICAL", Time: clk.Now()})
					require.NoError(t, err)
				}
				leaseEnd := clk.Now().Add(time.Duration(cfg.Lease))
				allowStart := refuseStart(t, db)
				n, err := s.DeliverDue(ctx)
				require.NoError(t, err)
				require.Equal(t, 1, n, "INC-2's resolve alone")
				require.Empty(t, recv.incident("INC-1"), "the page whose send could not be marked is not sent")
				require.Equal(t, []string{"arrive resolve", "answer resolve"}, recv.incident("INC-2"))
				require.Contains(t, logs.String(), "level=WARN msg=\"notification not sent: its send could not be marked as begun")
				require.Contains(t, logs.String(), "start refused")
				recs, err := List(ctx, db, "INC-1")
				require.NoError(t, err)
				require.Len(t, recs, 2)
				require.Equal(t, StateSending, recs[0].State, "the page stays claimed")
				require.Equal(t, StatePending, recs[1].State)
				require.Equal(t, leaseEnd, recs[1].NextAttempt, "the acknowledge waits behind the page")
				require.Zero(t, recs[1].Attempts, "put back without an attempt")

				if tc.withdraw {
					tx, err := db.BeginTx(ctx, nil)
					require.NoError(t, err)
					withdrawn, sending, unknown, err := Withdraw(ctx, tx, clk.Now(), "INC-1", false)
					require.NoError(t, err)
					require.NoError(t, tx.Commit())
					require.Equal(t, [3]int64{1, 0, 0}, [3]int64{withdrawn, sending, unknown}, "its send had not begun")
				}
				allowStart()
				n, err = s.DeliverDue(ctx)
				require.NoError(t, err)
				require.Zero(t, n, "the page is claimed until its lease ends")
				clk.Set(leaseEnd)
				for range 3 {
					_, err = s.DeliverDue(ctx)
					require.NoError(t, err)
					clk.Advance(time.Minute)
				}
				require.Equal(t, tc.want, recv.incident("INC-1"))
				require.Equal(t, []string{"arrive resolve", "answer resolve"}, recv.incident("INC-2"))
				recs, err = List(ctx, db, "INC-1")
				require.NoError(t, err)
				states := map[string]string{}
				for _, r := range recs {
					states[r.Key] = r.State
					if r.Key == "INC-1/webhook/level0" {
						require.Equal(t, !tc.withdraw, r.Reaches(clk.Now()))
						if !tc.withdraw {
							require.Equal(t, 1, r.Attempts, "the claim that did not send it counts no attempt")
						}
					}
				}
				require.Equal(t, tc.states, states)
			})
		})
	}
}
