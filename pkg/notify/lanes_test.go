package notify

import (
	"context"
	"fmt"
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

// TestFailingChannelPauses: a channel whose endpoint fails is paused for the
// retry backoff; its queued messages wait without attempts while the other
// channels deliver; when the pause ends one message probes the endpoint
// (a failure doubles the pause), and once a probe is delivered the rest go.
// The queued messages are of different incidents, so that they are sent
// concurrently (one incident's webhook messages go one after another:
// TestWebhookMessagesOfAnIncidentInOrder).
func TestFailingChannelPauses(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{jobs.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var (
			mu       sync.Mutex
			down     = true
			requests int
		)
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			requests++
			if down {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusOK)
		}))
		defer hook.Close()
		hookRequests := func() int { mu.Lock(); defer mu.Unlock(); return requests }
		slack := newEndpoint(t)
		cfg := &Config{
			Webhook: &WebhookConfig{URL: hook.URL, Secret: commoncfg.Secret("k")},
			Slack:   &SlackConfig{WebhookURL: commoncfg.Secret(slack.URL + "/hook")},
		}
		require.NoError(t, cfg.Validate())
		t0 := time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)
		clk := clock.NewManual(t0)
		const queued = 10
		for i := range queued {
			_, err := Enqueue(ctx, db, t0, fmt.Sprintf("hook-%d", i), &Message{IncidentID: fmt.Sprintf("INC-%d", i), Channel: ChannelWebhook, Event: EventTrigger, Subject: "x"})
			require.NoError(t, err)
		}
		attempts := func() (total int, states map[string]int) {
			states = map[string]int{}
			for i := range queued {
				recs, err := List(ctx, db, fmt.Sprintf("INC-%d", i))
				require.NoError(t, err)
				for _, r := range recs {
					if r.Channel == ChannelWebhook {
						total += r.Attempts
						states[r.State]++
					}
				}
			}
			return total, states
		}
		s := NewSender(db, cfg, clk, nil, nil, prometheus.NewRegistry())
		s.Tick = 10 * time.Millisecond
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		// settled waits until several claim rounds ran after cond held.
		settled := func(cond func() bool) {
			t.Helper()
			require.Eventually(t, cond, 30*time.Second, 5*time.Millisecond)
			from := s.rounds.Load()
			require.Eventually(t, func() bool { return s.rounds.Load() >= from+5 }, 30*time.Second, 5*time.Millisecond)
		}

		// The first batch fails together: one failure of the channel.
		settled(func() bool { total, st := attempts(); return total == queued && st[StatePending] == queued })
		total, _ := attempts()
		require.Equal(t, queued, total)
		require.Equal(t, queued, hookRequests())
		// Paused: messages enqueued meanwhile wait, other channels deliver.
		_, err := Enqueue(ctx, db, t0, "slack-1", &Message{IncidentID: "INC-1", Channel: ChannelSlack, Event: EventTrigger, Subject: "x"})
		require.NoError(t, err)
		s.Poke()
		settled(func() bool { return len(slack.Requests()) == 1 })
		require.Equal(t, queued, hookRequests(), "no attempt while the channel is paused")

		// The pause (min_backoff) ends: one probe, which fails and doubles it.
		clk.Advance(time.Duration(DefaultMinBackoff))
		// (and its outcome is recorded before the clock moves on)
		settled(func() bool { _, st := attempts(); return hookRequests() == queued+1 && st[StatePending] == queued })
		total, _ = attempts()
		require.Equal(t, queued+1, total, "one message probes the channel")
		clk.Advance(time.Duration(DefaultMinBackoff))
		settled(func() bool { return true })
		require.Equal(t, queued+1, hookRequests(), "the second pause is twice as long")

		// The endpoint is back: the next probe is delivered, then the rest.
		mu.Lock()
		down = false
		mu.Unlock()
		clk.Advance(time.Duration(DefaultMinBackoff) * 3)
		settled(func() bool { _, st := attempts(); return st[StateDelivered] == queued })
		require.Equal(t, queued+1+queued, hookRequests())
		cancel()
		require.NoError(t, <-done)
	})
}
