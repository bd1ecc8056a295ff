package notify

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
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

func TestTimeoutShorterThanLease(t *testing.T) {
	c := &Config{Timeout: DefaultTimeout * 6}
	require.EqualError(t, c.Validate(), "timeout 1m must be positive and shorter than 1m (half the outbox lease of 2m, so that a slow delivery is never sent twice)")
	c = &Config{Timeout: DefaultTimeout * 5}
	require.NoError(t, c.Validate())
}

// TestHangingChannelDoesNotHoldOthers: a webhook endpoint that hangs until
// the delivery timeout keeps its lane busy, while Slack messages enqueued
// later are still delivered on the next ticks.
func TestHangingChannelDoesNotHoldOthers(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{jobs.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		release := make(chan struct{})
		hung := make(chan struct{}, 1)
		hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hung <- struct{}{}
			select {
			case <-release:
				w.WriteHeader(http.StatusOK)
			case <-r.Context().Done():
			}
		}))
		defer hanging.Close()
		var releaseOnce sync.Once
		defer releaseOnce.Do(func() { close(release) })
		slack := newEndpoint(t)
		cfg := &Config{
			Timeout: DefaultTimeout * 3, // 30s: far longer than this test waits for Slack
			Webhook: &WebhookConfig{URL: hanging.URL, Secret: commoncfg.Secret("k")},
			Slack:   &SlackConfig{WebhookURL: commoncfg.Secret(slack.URL + "/hook")},
		}
		require.NoError(t, cfg.Validate())
		t0 := time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)
		clock := clock.NewManual(t0)
		enqueue := func(key, ch string) {
			_, err := Enqueue(ctx, db, t0, key, &Message{IncidentID: "INC-1", Channel: ch, Event: EventTrigger, Subject: key, Body: key})
			require.NoError(t, err)
		}
		state := func(key string) string {
			recs, err := List(ctx, db, "INC-1")
			require.NoError(t, err)
			for _, r := range recs {
				if r.Key == key {
					return r.State
				}
			}
			return ""
		}
		enqueue("hook-1", ChannelWebhook)
		enqueue("slack-1", ChannelSlack)
		s := NewSender(db, cfg, clock, nil, nil, prometheus.NewRegistry())
		s.Tick = 20 * time.Millisecond
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()

		<-hung
		require.Eventually(t, func() bool { return state("slack-1") == StateDelivered }, 30*time.Second, 10*time.Millisecond)
		// A message enqueued while the webhook hangs goes out on a later tick.
		enqueue("slack-2", ChannelSlack)
		require.Eventually(t, func() bool { return state("slack-2") == StateDelivered }, 30*time.Second, 10*time.Millisecond)
		require.Equal(t, StateSending, state("hook-1"), "the webhook is still being sent")
		// Another webhook message waits for its lane: no second request,
		// however many claim rounds run meanwhile.
		enqueue("hook-2", ChannelWebhook)
		from := s.rounds.Load()
		require.Eventually(t, func() bool { return s.rounds.Load() >= from+3 }, 30*time.Second, 5*time.Millisecond)
		require.Equal(t, StatePending, state("hook-2"))

		releaseOnce.Do(func() { close(release) })
		<-hung // hook-2, once hook-1's lane is free
		require.Eventually(t, func() bool { return state("hook-1") == StateDelivered && state("hook-2") == StateDelivered }, 30*time.Second, 10*time.Millisecond)
		slack.mu.Lock()
		require.Len(t, slack.reqs, 2)
		slack.mu.Unlock()
		cancel()
		require.NoError(t, <-done)
	})
}
