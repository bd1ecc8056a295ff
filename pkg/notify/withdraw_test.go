package notify

import (
	"context"
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
// sent and not sent; the resolve notice behind it still goes out.
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
		n, err := Withdraw(ctx, tx, clk.Now(), "INC-1", true)
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
		require.Equal(t, int64(2), n, "both pages not delivered yet")
		release()
		require.Equal(t, 2, <-done, "the first page and the resolve were sent")
		require.Equal(t, []string{"arrive trigger", "answer trigger", "arrive resolve", "answer resolve"}, recv.incident("INC-1"))
		recs, err := List(ctx, db, "INC-1")
		require.NoError(t, err)
		states := map[string]string{}
		for _, r := range recs {
			states[r.Key] = r.State
		}
		require.Equal(t, StateCancelled, states["INC-1/webhook/level1"])
		require.Equal(t, StateDelivered, states["INC-1/webhook/resolve"])
	})
}
