package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/secretfile"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/web"
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

// TestQueuedPageShownAtReadTime: the sms provider refuses connections, so
// the first page fails and pauses the channel. A new incident's page,
// written during the pause, is not tried and nothing is written for it:
// no attempt, no stored timeline entry. Read, its incident's timeline
// (GET /api/v1/incidents/{id}/timeline) ends with an entry saying the
// page is queued behind the pause, since when, until the next probe and
// the last error in fixed words, and its outbox record (as the escalation
// status shows it) carries the pause; the failed page, due again only
// when the pause ends, is not said to be queued. Once the provider
// accepts, the pause's end sends the page and the entry is gone.
func TestQueuedPageShownAtReadTime(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations, jobs.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)
		// A port where nothing listens, for now (reserved by FreePort: no
		// listener on port 0 is given it before the test binds it below).
		addr := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))

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

		r := startPauseRig(t, ctx, db, svc, t0, "http://"+addr+"/Messages.json")
		svc.SetLiveTimeline(r.s.QueuedTimeline)
		mux := http.NewServeMux()
		(&web.IncidentsAPI{Service: svc}).Register(mux)
		api := httptest.NewServer(mux)
		defer api.Close()
		timeline := func(incID string) []incident.TimelineEntry {
			t.Helper()
			resp, err := http.Get(api.URL + "/api/v1/incidents/" + incID + "/timeline")
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			var env struct {
				Data []incident.TimelineEntry `json:"data"`
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
			return env.Data
		}
		stored := func(incID string) []string {
			var out []string
			for _, e := range notificationEntries(t, svc, incID) {
				out = append(out, e.Message)
			}
			return out
		}

		// The first page fails: the channel pauses for min_backoff (10s).
		r.page("inc1/sms/alice", inc1, "alice", "+15550000001")
		r.settled(func() bool { rec := r.record(inc1, ""); return rec.Attempts == 1 && rec.State == StatePending })
		require.Contains(t, r.record(inc1, "").LastError, "connection refused")

		// A new incident's page during the pause: not tried, nothing
		// stored for it.
		r.clk.Advance(2 * time.Second)
		r.page("inc2/sms/bob", inc2, "bob", "+15550000002")
		r.settled(func() bool { return true })
		rec := r.record(inc2, "")
		require.Equal(t, StatePending, rec.State)
		require.Zero(t, rec.Attempts)
		require.Equal(t, t0.Add(2*time.Second), rec.NextAttempt, "due since it was written, not put back")
		require.Empty(t, stored(inc2))
		var lease string
		require.NoError(t, db.QueryRowContext(ctx, `SELECT lease_owner FROM jobs WHERE id = $1`, rec.ID).Scan(&lease))
		require.Empty(t, lease, "never claimed")

		// Read: the timeline ends with the page queued behind the pause.
		r.clk.Advance(3 * time.Second)
		tl := timeline(inc2)
		require.NotEmpty(t, tl)
		last := tl[len(tl)-1]
		require.Equal(t, "Notification (trigger) by sms to bob queued, not sent yet: the sms channel is paused since 2026-03-01 14:30:00 UTC "+
			"after 1 failure (last error: connection refused); next probe at 2026-03-01 14:30:10 UTC", last.Message)
		require.Zero(t, last.ID, "not stored")
		require.Equal(t, "notification", last.Kind)
		require.Equal(t, t0.Add(5*time.Second), last.Time, "as of the read")
		require.Equal(t, map[string]any{"channel": "sms", "event": "trigger", "user": "bob", "queued": true,
			"notification_id": float64(rec.ID), "due_at": "2026-03-01T14:30:02Z", "paused_since": "2026-03-01T14:30:00Z",
			"next_probe_at": "2026-03-01T14:30:10Z", "channel_failures": float64(1), "last_error": "connection refused"}, last.Data)
		for _, e := range tl[:len(tl)-1] {
			require.NotZero(t, e.ID)
		}
		require.Empty(t, stored(inc2), "the read wrote nothing")
		// The failed page is not due before the pause's end: its
		// timeline has its failure, not a queued entry.
		for _, e := range timeline(inc1) {
			require.NotEqual(t, true, e.Data["queued"], e.Message)
		}

		// The records, as the escalation status shows them.
		recs, err := List(ctx, db, inc2)
		require.NoError(t, err)
		r.s.Annotate(recs)
		require.Len(t, recs, 1)
		require.Equal(t, &Pause{Channel: ChannelSMS, PausedSince: t0, NextProbe: t0.Add(10 * time.Second), Failures: 1,
			LastError: "connection refused"}, recs[0].Queued)
		recs, err = List(ctx, db, inc1)
		require.NoError(t, err)
		r.s.Annotate(recs)
		require.Nil(t, recs[0].Queued)
		b, err := json.Marshal(recs[0])
		require.NoError(t, err)
		require.NotContains(t, string(b), `"queued"`)

		// The provider is back: the pause's end sends the queued page
		// (due first) as its probe, then the other; nothing is queued.
		l, err := net.Listen("tcp", addr)
		require.NoError(t, err)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })}
		go func() { _ = srv.Serve(l) }()
		defer srv.Close()
		r.clk.Advance(5 * time.Second)
		r.settled(func() bool {
			return r.record(inc1, "").State == StateDelivered && r.record(inc2, "").State == StateDelivered
		})
		require.Equal(t, []string{"Notification (trigger) sent by sms to bob"}, stored(inc2))
		tl = timeline(inc2)
		require.Equal(t, "Notification (trigger) sent by sms to bob", tl[len(tl)-1].Message)
		require.NotZero(t, tl[len(tl)-1].ID)
	})
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

// TestShortReason: a channel's last failure is shown in a few fixed words,
// never the error's text (a receiver's answer, an endpoint's address).
func TestShortReason(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&DeliveryError{Err: errors.New("unexpected status 503 Service Unavailable: token=abc"), Retryable: true, Status: 503}, "HTTP 503"},
		{&DeliveryError{Err: errors.New("unexpected status 429"), Retryable: true, RetryAfter: time.Minute, Status: 429}, "HTTP 429"},
		{retryable(fmt.Errorf("email: RCPT: %w", &textproto.Error{Code: 451, Msg: "try later"})), "SMTP 451"},
		{retryable(fmt.Errorf(`Post "https://hooks.example.com/T0/B0/secret": %w`, refused)), "connection refused"},
		{retryable(&net.OpError{Op: "read", Net: "tcp", Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}), "connection reset"},
		{retryable(fmt.Errorf("post: %w", context.DeadlineExceeded)), "timeout"},
		{retryable(&net.DNSError{Err: "no such host", Name: "hooks.example.com", IsNotFound: true}), "DNS lookup failed"},
		{retryable(fmt.Errorf("%w: /run/secrets/hook", secretfile.ErrEmpty)), "secret file empty"},
		{retryable(fmt.Errorf("read /run/secrets/hook: %w", os.ErrNotExist)), "secret file unreadable"},
		{retryable(errors.New("something else: with details")), "delivery error"},
	} {
		require.Equal(t, tc.want, shortReason(tc.err), "%v", tc.err)
	}
}

// TestQueuedEntryTimesHaveDates: the queued entry's message gives the
// pause's start and next probe with their date, so a pause that began
// the day before reads unambiguously.
func TestQueuedEntryTimesHaveDates(t *testing.T) {
	now := time.Date(2026, 3, 2, 0, 0, 5, 0, time.UTC)
	for _, tc := range []struct {
		name          string
		since, probe  time.Time
		wantSince     string
		wantNextProbe string
	}{
		{"pause began the day before", time.Date(2026, 3, 1, 23, 59, 50, 0, time.UTC), time.Date(2026, 3, 2, 0, 0, 10, 0, time.UTC),
			"2026-03-01 23:59:50 UTC", "2026-03-02 00:00:10 UTC"},
		{"same day, given in UTC", time.Date(2026, 3, 2, 1, 0, 0, 0, time.FixedZone("CET", 3600)), time.Date(2026, 3, 2, 0, 5, 0, 0, time.UTC),
			"2026-03-02 00:00:00 UTC", "2026-03-02 00:05:00 UTC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Record{ID: 7, IncidentID: "INC-2026-0001", Channel: ChannelSMS, User: "bob", Event: "trigger", State: StatePending,
				NextAttempt: tc.since, Queued: &Pause{Channel: ChannelSMS, PausedSince: tc.since, NextProbe: tc.probe, Failures: 3, LastError: "HTTP 503"}}
			e := queuedEntry(r, now)
			require.Equal(t, "Notification (trigger) by sms to bob queued, not sent yet: the sms channel is paused since "+tc.wantSince+
				" after 3 failures (last error: HTTP 503); next probe at "+tc.wantNextProbe, e.Message)
			require.Equal(t, now, e.Time)
		})
	}
}

// steppingClock is a clock that moves a second forward each time it is
// read: code that reads it twice sees two instants.
type steppingClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *steppingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.now
	c.now = c.now.Add(time.Second)
	return t
}

// TestQueuedTimelineOfOneInstant: the queued entries of an incident's
// timeline and the walk of its messages against the channels' pauses are
// of one instant, the one the pauses are read at: a pause that ends the
// next moment still gives its entry, dated before its next probe, and the
// escalation status's walk (Annotate) marks the record the same way.
func TestQueuedTimelineOfOneInstant(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{jobs.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)
		_, err := Enqueue(ctx, db, t0, "INC-1/sms/bob", &Message{IncidentID: "INC-1", Channel: ChannelSMS, Event: EventTrigger,
			User: "bob", To: "+15550000002", Subject: "page"})
		require.NoError(t, err)
		cfg := &Config{SMS: &ProviderConfig{URL: "http://127.0.0.1:9/Messages.json", From: "+15550000000"}}
		require.NoError(t, cfg.Validate())
		clk := &steppingClock{now: t0.Add(time.Minute)}
		s := NewSender(db, cfg, clk, nil, nil, prometheus.NewRegistry())
		// The pause ends half a second after the next read of the clock.
		probe := t0.Add(time.Minute + 500*time.Millisecond)
		s.channels[ChannelSMS] = &channelHealth{failures: 2, since: t0, until: probe, reason: "HTTP 503"}

		entries, err := s.QueuedTimeline(ctx, "INC-1")
		require.NoError(t, err)
		require.Len(t, entries, 1, "the page was queued at the instant the pauses were read")
		require.Equal(t, t0.Add(time.Minute), entries[0].Time)
		require.True(t, entries[0].Time.Before(probe), "dated before the next probe it announces")

		clk.now = t0.Add(time.Minute)
		recs, err := List(ctx, db, "INC-1")
		require.NoError(t, err)
		s.Annotate(recs)
		require.NotNil(t, recs[0].Queued)
		require.Equal(t, probe, recs[0].Queued.NextProbe)
	})
}
