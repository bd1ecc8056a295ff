package notify

import (
	"context"
	"net/http"
	"net/http/httptest"
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

// pauseRig is a sender running against db with its sms channel pointed at
// url, on a manual clock.
type pauseRig struct {
	t   *testing.T
	db  *store.DB
	clk *clock.Manual
	s   *Sender
}

func startPauseRig(t *testing.T, ctx context.Context, db *store.DB, svc *incident.Service, t0 time.Time, url string) *pauseRig {
	t.Helper()
	cfg := &Config{SMS: &ProviderConfig{URL: url, From: "+15550000000"}}
	require.NoError(t, cfg.Validate())
	clk := clock.NewManual(t0)
	s := NewSender(db, cfg, clk, svc, nil, prometheus.NewRegistry())
	s.Tick = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return &pauseRig{t: t, db: db, clk: clk, s: s}
}

// page writes an sms page of incID to user, due now.
func (r *pauseRig) page(key, incID, user, to string) {
	_, err := Enqueue(context.Background(), r.db, r.clk.Now(), key, &Message{IncidentID: incID, Channel: ChannelSMS,
		Event: EventTrigger, User: user, To: to, Subject: "page"})
	require.NoError(r.t, err)
	r.s.Poke()
}

// record is the one message of incID, or the one to user.
func (r *pauseRig) record(incID, user string) Record {
	r.t.Helper()
	recs, err := List(context.Background(), r.db, incID)
	require.NoError(r.t, err)
	for _, rec := range recs {
		if user == "" || rec.User == user {
			return rec
		}
	}
	r.t.Fatalf("no message of %s to %q", incID, user)
	return Record{}
}

// settled waits for cond, then for five more rounds of the sender, so
// that what it would do next has been done.
func (r *pauseRig) settled(cond func() bool) {
	r.t.Helper()
	require.Eventually(r.t, cond, 30*time.Second, 5*time.Millisecond)
	from := r.s.rounds.Load()
	require.Eventually(r.t, func() bool { return r.s.rounds.Load() >= from+5 }, 30*time.Second, 5*time.Millisecond)
}

// TestProbeIsMessageDueFirst: two pages fail together (the provider
// answers 503) and are both due again when the channel's pause ends, in
// the same millisecond; the first written (alice's) is recorded last, so
// that PostgreSQL's index holds the other first. The pause's end sends
// alice's page as the probe, on both backends: the message due first, by
// due time and then id. Its failure pauses the channel again, and the
// next probe is bob's, due before alice's retry.
func TestProbeIsMessageDueFirst(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations, jobs.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)
		svc, incID := openIncident(t, db, t0)
		defer svc.Close()

		// The provider refuses every message (503), alice's only once
		// bob's failure is recorded.
		release := make(chan struct{})
		provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.FormValue("To") == "+15550000001" {
				select {
				case <-release:
				case <-req.Context().Done():
				}
			}
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		}))
		defer provider.Close()
		defer func() {
			select {
			case <-release:
			default:
				close(release)
			}
		}()

		// Both written before the sender starts: claimed together.
		clk0 := clock.NewManual(t0)
		for _, u := range []struct{ user, to string }{{"alice", "+15550000001"}, {"bob", "+15550000002"}} {
			_, err := Enqueue(ctx, db, clk0.Now(), "inc/sms/"+u.user, &Message{IncidentID: incID, Channel: ChannelSMS,
				Event: EventTrigger, User: u.user, To: u.to, Subject: "page"})
			require.NoError(t, err)
		}
		r := startPauseRig(t, ctx, db, svc, t0, provider.URL+"/Messages.json")
		alice, bob := func() Record { return r.record(incID, "alice") }, func() Record { return r.record(incID, "bob") }
		require.Less(t, alice().ID, bob().ID)

		// Bob's failure is recorded first, then alice's.
		require.Eventually(t, func() bool { b := bob(); return b.Attempts == 1 && b.LastError != "" }, 30*time.Second, 5*time.Millisecond)
		require.Zero(t, alice().LastError)
		close(release)
		r.settled(func() bool { a := alice(); return a.Attempts == 1 && a.LastError != "" })
		require.Equal(t, t0.Add(10*time.Second), alice().NextAttempt)
		require.Equal(t, t0.Add(10*time.Second), bob().NextAttempt)

		// The pause ends: one probe, alice's (same due time, smaller id).
		r.clk.Advance(10 * time.Second)
		r.settled(func() bool { return alice().Attempts+bob().Attempts == 3 })
		require.Equal(t, 2, alice().Attempts, "the probe is the message due first")
		require.Equal(t, 1, bob().Attempts)
		require.Equal(t, t0.Add(30*time.Second), alice().NextAttempt, "after the doubled pause")

		// The next pause's end: bob's page, due since the first pause's end.
		r.clk.Advance(20 * time.Second)
		r.settled(func() bool { return alice().Attempts+bob().Attempts == 4 })
		require.Equal(t, 2, bob().Attempts)
		require.Equal(t, 2, alice().Attempts)
	})
}
