package notify

import (
	"context"
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
		n, sending, err := Withdraw(ctx, tx, clk.Now(), "INC-1", true)
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
		require.Equal(t, int64(1), n, "the second page, claimed, not being sent yet")
		require.Equal(t, int64(1), sending, "the first page, on the wire")
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
		n, sending, err := Withdraw(ctx, tx, clk.Now(), "INC-1", true)
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
		require.Equal(t, [2]int64{0, 1}, [2]int64{n, sending})
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
