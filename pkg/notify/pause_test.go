package notify

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestPageQueuedBehindPausedChannel: the sms provider refuses connections
// (a closed port), so the first page fails and pauses the channel. A new
// incident's page, written during the pause, is not tried, and its
// incident's timeline says at once that it is queued, until when, after
// how many failures and with the channel's last error: once, however many
// ticks and pauses go by. Its outbox row is due when the pause ends. The
// pause's end probes with one message; once the provider accepts, the
// page goes out and the timeline says so.
func TestPageQueuedBehindPausedChannel(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations, jobs.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		t0 := time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)
		// A port where nothing listens, for now.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close())

		svc, inc1 := openIncident(t, db, t0)
		defer svc.Close()
		res, err := svc.Ingest(ctx, incident.Notification{
			Receiver: "sred", Status: "firing", GroupKey: `{}:{alertname="DBDown"}`,
			GroupLabels:  map[string]string{"alertname": "DBDown"},
			CommonLabels: map[string]string{"alertname": "DBDown", "service": "db", "severity": "critical"},
			Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "f2", StartsAt: t0,
				Labels: map[string]string{"alertname": "DBDown", "service": "db", "severity": "critical"}}},
		})
		require.NoError(t, err)
		require.Len(t, res.Created, 1)
		inc2 := res.Created[0]

		cfg := &Config{SMS: &ProviderConfig{URL: "http://" + addr + "/Messages.json", From: "+15550000000"}}
		require.NoError(t, cfg.Validate())
		clk := clock.NewManual(t0)
		s := NewSender(db, cfg, clk, svc, nil, prometheus.NewRegistry())
		s.Tick = 10 * time.Millisecond
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		defer func() { cancel(); require.NoError(t, <-done) }()

		page := func(key, incID, user string) {
			_, err := Enqueue(ctx, db, clk.Now(), key, &Message{IncidentID: incID, Channel: ChannelSMS, Event: EventTrigger,
				User: user, To: "+15550000001", Subject: "page"})
			require.NoError(t, err)
			s.Poke()
		}
		record := func(incID string) Record {
			recs, err := List(ctx, db, incID)
			require.NoError(t, err)
			require.Len(t, recs, 1)
			return recs[0]
		}
		entries := func(incID string) []string {
			var out []string
			for _, e := range notificationEntries(t, svc, incID) {
				out = append(out, e.Message)
			}
			return out
		}
		settled := func(cond func() bool) {
			t.Helper()
			require.Eventually(t, cond, 30*time.Second, 5*time.Millisecond)
			from := s.rounds.Load()
			require.Eventually(t, func() bool { return s.rounds.Load() >= from+5 }, 30*time.Second, 5*time.Millisecond)
		}

		// The first page fails: the channel pauses for min_backoff (10s).
		page("inc1/sms/alice", inc1, "alice")
		settled(func() bool { r := record(inc1); return r.Attempts == 1 && r.State == StatePending })
		lastErr := record(inc1).LastError
		require.Contains(t, lastErr, "connection refused")

		// A new incident's page during the pause: not tried, and said to
		// be queued at once, with the pause's end and the last error.
		clk.Advance(2 * time.Second)
		page("inc2/sms/bob", inc2, "bob")
		queued := "Notification (trigger) by sms to bob queued, not sent yet: the sms channel is paused after 1 failure(s) until 14:30:10 UTC; last error: " + lastErr
		settled(func() bool { return len(entries(inc2)) > 0 })
		require.Equal(t, []string{queued}, entries(inc2))
		r := record(inc2)
		require.Equal(t, StatePending, r.State)
		require.Zero(t, r.Attempts)
		require.Equal(t, t0.Add(10*time.Second), r.NextAttempt, "due when the pause ends")
		tl := notificationEntries(t, svc, inc2)
		require.Equal(t, true, tl[0].Data["queued"])
		require.Equal(t, "bob", tl[0].Data["user"])
		require.Equal(t, "2026-03-01T14:30:10Z", tl[0].Data["paused_until"])
		require.Equal(t, lastErr, tl[0].Data["error"])

		// More ticks within the pause: no attempt, no second entry.
		clk.Advance(5 * time.Second)
		settled(func() bool { return true })
		require.Equal(t, []string{queued}, entries(inc2))
		require.Zero(t, record(inc2).Attempts)

		// The pause ends: one message probes the channel (either page:
		// both are due then, and which of two due in the same
		// millisecond is claimed first is left to the index), fails, and
		// the pause doubles; the queued page waits for the new end
		// without a second queued entry.
		clk.Advance(3 * time.Second)
		settled(func() bool { return record(inc1).Attempts+record(inc2).Attempts == 2 })
		probedInc2 := record(inc2).Attempts == 1
		want2 := []string{queued}
		if probedInc2 {
			want2 = append(want2, "Notification (trigger) by sms to bob failed (attempt 1), retrying in 20s: "+lastErr)
		} else {
			require.Equal(t, 2, record(inc1).Attempts)
		}
		require.Equal(t, want2, entries(inc2))
		r = record(inc2)
		require.Equal(t, StatePending, r.State)
		require.Equal(t, t0.Add(30*time.Second), r.NextAttempt)
		require.Equal(t, t0.Add(30*time.Second), record(inc1).NextAttempt)
		clk.Advance(10 * time.Second)
		settled(func() bool { return true })
		require.Equal(t, want2, entries(inc2))
		require.Equal(t, 2, record(inc1).Attempts+record(inc2).Attempts, "no attempt during the second pause")

		// The provider is back: both pages go out when the pause ends.
		l, err = net.Listen("tcp", addr)
		require.NoError(t, err)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })}
		go func() { _ = srv.Serve(l) }()
		defer srv.Close()
		clk.Advance(10 * time.Second)
		settled(func() bool { return record(inc1).State == StateDelivered && record(inc2).State == StateDelivered })
		sent2, attempts1 := "Notification (trigger) sent by sms to bob", 3
		if probedInc2 {
			sent2, attempts1 = sent2+" after 2 attempts", 2
		}
		require.Equal(t, append(want2, sent2), entries(inc2))
		got := entries(inc1)
		require.Len(t, got, 2)
		require.Equal(t, "Notification (trigger) by sms to alice failed (attempt 1), retrying in 10s: "+lastErr, got[0])
		require.Equal(t, fmt.Sprintf("Notification (trigger) sent by sms to alice after %d attempts", attempts1), got[1])
	})
}
