package escalation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// flakySink is an HTTP provider that answers 503 while down, and counts
// the requests it accepted.
type flakySink struct {
	*httptest.Server
	mu       sync.Mutex
	down     bool
	accepted int
}

func newFlakySink(t *testing.T) *flakySink {
	s := &flakySink{down: true}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		s.accepted++
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *flakySink) recover() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = false
}

func (s *flakySink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// pageSetup is how newPageRig sets up bob's pages.
type pageSetup struct {
	// policy is the escalation policies' YAML.
	policy string
	// severity is the severity of the incident opened.
	severity string
	// sms is the SMS and phone provider and push the push provider; nil,
	// a sink that accepts every request.
	sms, push *sink
	// pagerDuty, when not empty, is the URL of PagerDuty's Events API.
	pagerDuty string
	// webhook, when not empty, is the URL of the webhook channel.
	webhook string
	// maxAttempts, when not zero, is how many times a page is tried.
	maxAttempts int
	// logs, when not nil, keeps the sender's log.
	logs *logSink
	// held leaves the pages undelivered once the escalation's first steps
	// ran: a provider holds the first on the wire (ackWhileSent).
	held bool
}

// newPageRig sets up a rig on db at t0 (bob on call) as s says, with
// sinks for the other providers, opens an incident of s.severity and runs
// the escalation's due steps and, unless s.held, delivers their pages. It
// returns the rig, its notification config and the incident.
func newPageRig(t *testing.T, db *store.DB, s pageSetup) (*rig, *notify.Config, string) {
	t.Helper()
	sms, push, email, slack := s.sms, s.push, newSink(t), newSink(t)
	if sms == nil {
		sms = newSink(t)
	}
	if push == nil {
		push = newSink(t)
	}
	ncfg := notifyConfig(t, sms, push, email, slack)
	// notifyConfig validated the config; it is validated again once changed.
	if s.pagerDuty != "" || s.webhook != "" || s.maxAttempts != 0 {
		if s.pagerDuty != "" {
			ncfg.PagerDuty = &notify.PagerDutyConfig{URL: s.pagerDuty, RoutingKey: "routing-key"}
		}
		if s.webhook != "" {
			ncfg.Webhook = &notify.WebhookConfig{URL: s.webhook, Secret: "webhook-secret"}
		}
		if s.maxAttempts != 0 {
			ncfg.MaxAttempts = s.maxAttempts
		}
		require.NoError(t, ncfg.Validate())
	}
	clk := clock.NewManual(t0)
	r := newRig(t, db, clk, s.policy, ncfg)
	if s.logs != nil {
		r.sender = notify.NewSender(db, ncfg, clk, r.svc, slog.New(s.logs), prometheus.NewRegistry())
		r.sender.OnLateDelivery = r.engine.LateDelivery
	}
	id := r.open(t, s.severity)
	if s.held {
		_, err := r.worker.RunDue(context.Background())
		require.NoError(t, err)
	} else {
		r.tick(t)
	}
	return r, ncfg, id
}

// ackWhileSent delivers the due pages of r while held holds the first on
// the wire, and then bob acknowledges incident id. It returns the end of
// the delivery, once held is released.
func ackWhileSent(t *testing.T, r *rig, id string, held *holdSink) <-chan error {
	t.Helper()
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		_, err := r.sender.DeliverDue(ctx)
		done <- err
	}()
	<-held.arrived
	_, err := r.svc.Acknowledge(ctx, id, "bob")
	require.NoError(t, err)
	return done
}

// ticks advances r's clock by 5 minutes and runs what is due, n times.
func ticks(t *testing.T, r *rig, n int) {
	t.Helper()
	for range n {
		r.clock.Advance(5 * time.Minute)
		r.tick(t)
	}
}

// byRecipient maps "user/channel" to the state of the messages of event
// among recs, of every event if event is empty.
func byRecipient(recs []notify.Record, event string) map[string]string {
	states := map[string]string{}
	for _, rec := range recs {
		if event == "" || rec.Event == event {
			states[rec.User+"/"+rec.Channel] = rec.State
		}
	}
	return states
}

// allClears maps "user/channel" to the state of incident id's
// all-clear messages.
func allClears(t *testing.T, db *store.DB, id string) map[string]string {
	t.Helper()
	recs, err := notify.List(context.Background(), db, id)
	require.NoError(t, err)
	return byRecipient(recs, notify.EventAllClear)
}

// TestPagesWithdrawnOnAckAndResolve: the SMS provider fails bob's level 0
// pages (SMS and phone) and recovers later; once the incident is
// acknowledged or resolved, the pages still being retried are cancelled,
// not delivered, and one timeline entry says how many.
func TestPagesWithdrawnOnAckAndResolve(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(ctx context.Context, r *rig, id string) error
		want string
		// entry is the start of the timeline entry that counts the
		// withdrawn pages.
		entry string
	}{
		{name: "acknowledge", want: escalation.StateAcknowledged, entry: "Escalation stopped: acknowledged by bob",
			end: func(ctx context.Context, r *rig, id string) error {
				_, err := r.svc.Acknowledge(ctx, id, "bob")
				return err
			}},
		{name: "resolve", want: escalation.StateResolved, entry: "Escalation ended: incident resolved",
			end: func(ctx context.Context, r *rig, id string) error {
				_, err := r.svc.Resolve(ctx, id, "bob", "fixed")
				return err
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
				ctx := context.Background()
				sms, push := newFlakySink(t), newSink(t)
				r, _, id := newPageRig(t, db, pageSetup{policy: escalationYAML, severity: "critical", sms: &sink{Server: sms.Server}, push: push})
				require.Equal(t, []string{"bob/sms", "bob/phone", "bob/push"}, r.paged(t, id))
				require.Equal(t, 1, push.n)

				r.clock.Advance(time.Minute)
				require.NoError(t, tc.end(ctx, r, id))
				sms.recover()
				// Up to the ack timeout (30m), which pages again.
				ticks(t, r, 5)
				require.Zero(t, sms.count(), "no page after the incident is %s", tc.want)

				st, err := r.engine.Get(ctx, id)
				require.NoError(t, err)
				require.Equal(t, tc.want, st.State)
				require.Equal(t, map[string]string{"bob/sms": notify.StateCancelled, "bob/phone": notify.StateCancelled,
					"bob/push": notify.StateDelivered}, byRecipient(st.Notices, notify.EventTrigger))
				entries := r.timeline(t, id, tc.entry)
				require.Len(t, entries, 1)
				require.Contains(t, entries[0], "; 2 page(s) not yet delivered withdrawn: the incident is "+tc.want)
			})
		})
	}
}

// TestNoAllClearForWithdrawnPages: bob's level 0 SMS and phone pages fail
// (the SMS provider is down) and are withdrawn when he acknowledges; his
// push page was delivered. When the SLO recovers, the all-clear goes
// where a page was delivered (push), not to the SMS and phone numbers that
// were never paged, even though the provider is back.
func TestNoAllClearForWithdrawnPages(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		sms, push := newFlakySink(t), newSink(t)
		r, _, id := newPageRig(t, db, pageSetup{policy: escalationYAML, severity: "critical", sms: &sink{Server: sms.Server}, push: push})
		require.Equal(t, []string{"bob/sms", "bob/phone", "bob/push"}, r.paged(t, id))

		r.clock.Advance(time.Minute)
		_, err := r.svc.Acknowledge(ctx, id, "bob")
		require.NoError(t, err)
		sms.recover()
		_, err = r.svc.MarkRecovering(ctx, id, "sred", "api/availability short burn-rate windows back under")
		require.NoError(t, err)
		ticks(t, r, 3)

		require.Zero(t, sms.count(), "no all-clear by SMS or phone: bob was never paged there")
		push.mu.Lock()
		pushes := push.n
		push.mu.Unlock()
		require.Equal(t, 2, pushes, "the page and the all-clear by push")
		require.Equal(t, map[string]string{"bob/push": notify.StateDelivered}, allClears(t, db, id))
		require.Equal(t, []string{"Escalation stopped: the SLO is recovering (1 pending step(s) cancelled); all-clear sent via push to bob"},
			r.timeline(t, id, "Escalation stopped: the SLO is recovering"))
	})
}

// holdSink is an HTTP provider that holds its first request until
// released, saying when it arrived, and accepts every request.
type holdSink struct {
	*httptest.Server
	arrived chan struct{}
	release chan struct{}
	once    sync.Once
}

func newHoldSink(t *testing.T) *holdSink {
	return newHoldSinkAnswering(t, http.StatusAccepted, http.StatusAccepted)
}

// newHoldSinkAnswering is a holdSink that answers its held first request
// with first and every other request with rest.
func newHoldSinkAnswering(t *testing.T, first, rest int) *holdSink {
	s := &holdSink{arrived: make(chan struct{}), release: make(chan struct{})}
	var once sync.Once
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		held := false
		once.Do(func() { held = true })
		if held {
			close(s.arrived)
			select {
			case <-s.release:
			case <-r.Context().Done():
				return
			}
			w.WriteHeader(first)
			return
		}
		w.WriteHeader(rest)
	}))
	t.Cleanup(s.Close)
	t.Cleanup(s.Release) // a failed test does not leave the request waiting
	return s
}

// Release lets the held request be answered.
func (s *holdSink) Release() { s.once.Do(func() { close(s.release) }) }

// TestPageBeingSentOnAckIsDelivered: bob's MEDIUM page (push alone) is
// on the wire when he acknowledges: it is not withdrawn, the
// acknowledgement's entry says it was left to finish and counts no
// withdrawn page, and the status reads it as delivered.
func TestPageBeingSentOnAckIsDelivered(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		push := newHoldSink(t)
		r, _, id := newPageRig(t, db, pageSetup{policy: escalationYAML, severity: "medium", push: &sink{Server: push.Server}, held: true})
		require.Equal(t, []string{"bob/push"}, r.paged(t, id))
		done := ackWhileSent(t, r, id, push)
		push.Release()
		require.NoError(t, <-done)

		st, err := r.engine.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, escalation.StateAcknowledged, st.State)
		require.Equal(t, map[string]string{"bob/push": notify.StateDelivered}, byRecipient(st.Notices, notify.EventTrigger))
		entries := r.timeline(t, id, "Escalation stopped: acknowledged by bob")
		require.Len(t, entries, 1)
		require.NotContains(t, entries[0], "withdrawn")
		require.Contains(t, entries[0], "; 1 page(s) already being sent left to finish (not retried if the send fails)")
		require.Len(t, r.timeline(t, id, "Notification (trigger) sent by push to bob"), 1)
	})
}

// pdSink is a PagerDuty Events API that answers 503 while down and
// records the event_action of every event it accepted.
type pdSink struct {
	*httptest.Server
	mu       sync.Mutex
	down     bool
	accepted []string
}

func newPDSink(t *testing.T) *pdSink {
	s := &pdSink{down: true}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Action string `json:"event_action"`
		}
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		s.accepted = append(s.accepted, ev.Action)
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *pdSink) recover() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = false
}

func (s *pdSink) events() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.accepted)
}

// pagerDutyYAML pages the primary on call by PagerDuty and push.
const pagerDutyYAML = `
policies:
  - name: default
    levels: [{after: 0m, schedules: [primary], channels: [pagerduty, push]}]
`

// pagerDutyOnlyYAML pages the primary on call by PagerDuty alone: one
// message on the wire at a time.
const pagerDutyOnlyYAML = `
policies:
  - name: default
    levels: [{after: 0m, schedules: [primary], channels: [pagerduty]}]
`

// pdEvents lists the events of the incident's PagerDuty messages with
// their outbox states ("trigger cancelled").
func pdEvents(t *testing.T, db *store.DB, id string) []string {
	t.Helper()
	recs, err := notify.List(context.Background(), db, id)
	require.NoError(t, err)
	var out []string
	for _, rec := range recs {
		if rec.Channel == notify.ChannelPagerDuty {
			out = append(out, rec.Event+" "+rec.State)
		}
	}
	return out
}

// TestNoPagerDutyEventsForWithdrawnTrigger: PagerDuty is down when bob is
// paged, and the trigger, being retried, is withdrawn when he
// acknowledges. PagerDuty never got the incident: it gets neither the
// acknowledge nor the resolve (nor the all-clear's resolve) once it is
// back, though push, which got the page, does get the all-clear.
func TestNoPagerDutyEventsForWithdrawnTrigger(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pd := newPDSink(t)
		r, _, id := newPageRig(t, db, pageSetup{policy: pagerDutyYAML, severity: "critical", pagerDuty: pd.URL})
		require.Equal(t, []string{"trigger pending"}, pdEvents(t, db, id), "PagerDuty down: the trigger is retried")

		r.clock.Advance(time.Minute)
		_, err := r.svc.Acknowledge(ctx, id, "bob")
		require.NoError(t, err)
		pd.recover()
		_, err = r.svc.MarkRecovering(ctx, id, "sred", "api/availability short burn-rate windows back under")
		require.NoError(t, err)
		_, err = r.svc.Resolve(ctx, id, "bob", "fixed")
		require.NoError(t, err)
		ticks(t, r, 3)

		require.Empty(t, pd.events(), "PagerDuty never got the trigger: no acknowledge or resolve for it")
		require.Equal(t, []string{"trigger cancelled"}, pdEvents(t, db, id))
		require.Equal(t, map[string]string{"bob/push": notify.StateDelivered}, allClears(t, db, id))
	})
}

// TestPagerDutyEventsForTriggerBeingSent: bob acknowledges while the
// PagerDuty trigger is on the wire. It may be delivered, so PagerDuty gets
// the acknowledge, sent after the trigger (another sender does not send it
// meanwhile); and once it is delivered the resolve too. Had that send failed instead, see
// TestWithdrawnPageFailingWhileSent.
func TestPagerDutyEventsForTriggerBeingSent(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pd := newHoldSink(t)
		r, ncfg, id := newPageRig(t, db, pageSetup{policy: pagerDutyOnlyYAML, severity: "critical", pagerDuty: pd.URL, held: true})
		clk := r.clock
		done := ackWhileSent(t, r, id, pd)
		require.Equal(t, []string{"trigger cancelled", "acknowledge pending"}, pdEvents(t, db, id),
			"the trigger being sent may be delivered: PagerDuty gets the acknowledge")
		// Another replica's sender does not let the acknowledge overtake
		// the trigger still on the wire.
		other := notify.NewSender(db, ncfg, clk, r.svc, nil, prometheus.NewRegistry())
		_, err := other.DeliverDue(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{"trigger cancelled", "acknowledge pending"}, pdEvents(t, db, id),
			"the acknowledge waits for the trigger being sent")
		pd.Release()
		require.NoError(t, <-done)
		clk.Advance(time.Second) // the acknowledge held back waits a second
		r.tick(t)
		_, err = r.svc.Resolve(ctx, id, "bob", "fixed")
		require.NoError(t, err)
		r.tick(t)
		require.Equal(t, []string{"trigger delivered", "acknowledge delivered", "resolve delivered"}, pdEvents(t, db, id))
	})
}

// logSink keeps the records of a logger.
type logSink struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (l *logSink) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logSink) WithGroup(string) slog.Handler            { return l }
func (l *logSink) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Clone())
	return nil
}

// at lists the messages logged at level.
func (l *logSink) at(level slog.Level) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.recs {
		if r.Level == level {
			msg := r.Message
			r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
			out = append(out, msg)
		}
	}
	return out
}

// TestWithdrawnPageFailingWhileSent: bob acknowledges while his PagerDuty
// page is on the wire, and that send then fails (503). The page stays
// withdrawn (cancelled, not retried, its error kept); the sender logs it
// at Info as an expected end, not as an error; the timeline says so. The
// acknowledge went out (the page might have been delivered), but the
// resolve does not: PagerDuty never got the incident.
func TestWithdrawnPageFailingWhileSent(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pd, logs := newHoldSinkAnswering(t, http.StatusServiceUnavailable, http.StatusAccepted), &logSink{}
		r, _, id := newPageRig(t, db, pageSetup{policy: pagerDutyOnlyYAML, severity: "critical", pagerDuty: pd.URL, logs: logs, held: true})
		done := ackWhileSent(t, r, id, pd)
		pd.Release()
		require.NoError(t, <-done)

		require.Empty(t, logs.at(slog.LevelError), "a withdrawn page whose send failed is no error")
		infos := logs.at(slog.LevelInfo)
		require.Len(t, infos, 1)
		require.True(t, strings.HasPrefix(infos[0], "notification withdrawn while being sent, and the send failed: not retried (the incident was acknowledged or resolved) incident="+id+" channel=pagerduty"), infos[0])
		recs, err := notify.List(ctx, db, id)
		require.NoError(t, err)
		var trigger *notify.Record
		for i := range recs {
			if recs[i].Channel == notify.ChannelPagerDuty && recs[i].Event == notify.EventTrigger {
				trigger = &recs[i]
			}
		}
		require.NotNil(t, trigger)
		require.Equal(t, notify.StateCancelled, trigger.State)
		require.Contains(t, trigger.LastError, "503")
		require.False(t, trigger.Reaches(r.clock.Now()))
		require.Len(t, r.timeline(t, id, "Notification (trigger) by pagerduty failed while it was being withdrawn"), 1)

		ticks(t, r, 3)
		_, err = r.svc.Resolve(ctx, id, "bob", "fixed")
		require.NoError(t, err)
		r.tick(t)
		require.Equal(t, []string{"trigger cancelled", "acknowledge delivered"}, pdEvents(t, db, id),
			"no resolve: the page that might have reached PagerDuty did not")
		require.Empty(t, logs.at(slog.LevelError))
	})
}

// TestNoAllClearForFailedPages: bob's SMS and phone pages fail for good
// (the provider is down, one attempt allowed); his push page is
// delivered. When the SLO recovers, the all-clear goes by push alone: the
// SMS and phone numbers were never paged, as with withdrawn pages.
func TestNoAllClearForFailedPages(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		sms := newFlakySink(t)
		r, _, id := newPageRig(t, db, pageSetup{policy: escalationYAML, severity: "critical", sms: &sink{Server: sms.Server}, maxAttempts: 1})
		st, err := r.engine.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, map[string]string{"bob/sms": notify.StateFailed, "bob/phone": notify.StateFailed,
			"bob/push": notify.StateDelivered}, byRecipient(st.Notices, ""))

		sms.recover()
		_, err = r.svc.MarkRecovering(ctx, id, "sred", "api/availability short burn-rate windows back under")
		require.NoError(t, err)
		r.tick(t)

		require.Zero(t, sms.count(), "no all-clear by SMS or phone: bob was never reached there")
		require.Equal(t, map[string]string{"bob/push": notify.StateDelivered}, allClears(t, db, id))
		require.Equal(t, []string{"Escalation stopped: the SLO is recovering (2 pending step(s) cancelled); all-clear sent via push to bob"},
			r.timeline(t, id, "Escalation stopped: the SLO is recovering"))
	})
}

// dieMidSend claims the incident's PagerDuty trigger as a sender that
// begins its send (jobs.Start) and then dies: it never reports back, and
// its lease ends at the returned time.
func dieMidSend(t *testing.T, db *store.DB, clk *clock.Manual, ncfg *notify.Config) time.Time {
	t.Helper()
	ctx := context.Background()
	lease := time.Duration(ncfg.Lease)
	js, err := jobs.Claim(ctx, db, jobs.ClaimOptions{Queue: notify.Queue, Owner: "dead-sender", Now: clk.Now(), Lease: lease,
		Kinds: []jobs.Kind{notify.ChannelPagerDuty}})
	require.NoError(t, err)
	require.Len(t, js, 1)
	ok, err := jobs.Start(ctx, db, js[0].ID, "dead-sender", clk.Now())
	require.NoError(t, err)
	require.True(t, ok)
	return clk.Now().Add(lease)
}

// pdTrigger is the incident's PagerDuty trigger.
func pdTrigger(t *testing.T, db *store.DB, id string) notify.Record {
	t.Helper()
	recs, err := notify.List(context.Background(), db, id)
	require.NoError(t, err)
	for _, rec := range recs {
		if rec.Channel == notify.ChannelPagerDuty && rec.Event == notify.EventTrigger {
			return rec
		}
	}
	t.Fatal("no PagerDuty trigger")
	return notify.Record{}
}

// TestPagerDutyEventsAfterSenderDiedMidSend: the sender sending bob's
// PagerDuty page dies during the send (never reporting back), and bob
// acknowledges while its lease lasts. The page may be on the wire: the
// acknowledge is written (and goes out once the lease has ended, after
// the trigger). Once the lease has ended the send is over without a
// delivery: the page no longer counts as possibly delivered, so neither
// the all-clear nor the resolve goes to PagerDuty (push, which got the
// page, gets the all-clear). It used to count as being sent forever.
func TestPagerDutyEventsAfterSenderDiedMidSend(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pd, push := newPDSink(t), newSink(t)
		pd.recover()
		r, ncfg, id := newPageRig(t, db, pageSetup{policy: pagerDutyYAML, severity: "critical", push: push, pagerDuty: pd.URL, held: true})
		clk := r.clock
		leaseEnd := dieMidSend(t, db, clk, ncfg)
		r.tick(t) // the push page
		require.Equal(t, 1, push.n)

		clk.Advance(time.Minute)
		_, err := r.svc.Acknowledge(ctx, id, "bob")
		require.NoError(t, err)
		entries := r.timeline(t, id, "Escalation stopped: acknowledged by bob")
		require.Len(t, entries, 1)
		require.Contains(t, entries[0], "; 1 page(s) already being sent left to finish")
		require.Equal(t, []string{"trigger cancelled", "acknowledge pending"}, pdEvents(t, db, id),
			"the trigger being sent may be delivered: PagerDuty gets the acknowledge")
		require.True(t, pdTrigger(t, db, id).Reaches(clk.Now()), "being sent while the lease lasts")
		require.True(t, pdTrigger(t, db, id).Reaches(leaseEnd.Add(-time.Millisecond)))
		require.False(t, pdTrigger(t, db, id).Reaches(leaseEnd), "its sender's lease ended without an outcome")
		r.tick(t)
		require.Empty(t, pd.events(), "the acknowledge waits for the trigger while the lease lasts")

		clk.Set(leaseEnd)
		r.tick(t)
		require.Equal(t, []string{"acknowledge"}, pd.events())
		_, err = r.svc.MarkRecovering(ctx, id, "sred", "api/availability short burn-rate windows back under")
		require.NoError(t, err)
		_, err = r.svc.Resolve(ctx, id, "bob", "fixed")
		require.NoError(t, err)
		for range 3 {
			clk.Advance(5 * time.Minute)
			r.tick(t)
		}
		require.Equal(t, []string{"acknowledge"}, pd.events(), "no resolve: the trigger is not known to have reached PagerDuty")
		require.Equal(t, []string{"trigger cancelled", "acknowledge delivered"}, pdEvents(t, db, id))
		clear := map[string]string{}
		recs, err := notify.List(ctx, db, id)
		require.NoError(t, err)
		for _, rec := range recs {
			if rec.Event == notify.EventAllClear {
				clear[rec.User+"/"+rec.Channel] = rec.State
			}
		}
		require.Equal(t, map[string]string{"bob/push": notify.StateDelivered}, clear)
	})
}

// TestPageOfDeadSenderWithdrawnAfterLease: the sender sending bob's
// PagerDuty page dies during the send, and bob acknowledges once its
// lease has ended, before another sender claims the page again. That send
// is over: the page is withdrawn (never sent again), not left to finish,
// and counted as one whose send had begun and whose outcome is not known
// (its sender may yet record a delivery), not as one not yet delivered;
// PagerDuty gets no acknowledge.
func TestPageOfDeadSenderWithdrawnAfterLease(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pd := newPDSink(t)
		pd.recover()
		r, ncfg, id := newPageRig(t, db, pageSetup{policy: pagerDutyOnlyYAML, severity: "critical", pagerDuty: pd.URL, held: true})
		clk := r.clock
		clk.Set(dieMidSend(t, db, clk, ncfg))

		_, err := r.svc.Acknowledge(ctx, id, "bob")
		require.NoError(t, err)
		entries := r.timeline(t, id, "Escalation stopped: acknowledged by bob")
		require.Len(t, entries, 1)
		require.Contains(t, entries[0], "; 1 page(s) withdrawn whose send had begun and whose outcome is not known yet (the sender's lease ended without one; not sent again)")
		require.NotContains(t, entries[0], "not yet delivered", "its send had begun")
		require.NotContains(t, entries[0], "being sent")
		tl, err := r.svc.Timeline(ctx, id)
		require.NoError(t, err)
		i := slices.IndexFunc(tl, func(e incident.TimelineEntry) bool { return e.Message == entries[0] })
		require.Equal(t, map[string]any{"pages_withdrawn": float64(0), "pages_outcome_unknown": float64(1)},
			map[string]any{"pages_withdrawn": tl[i].Data["pages_withdrawn"], "pages_outcome_unknown": tl[i].Data["pages_outcome_unknown"]})
		require.False(t, pdTrigger(t, db, id).Reaches(clk.Now()))
		for range 3 {
			clk.Advance(5 * time.Minute)
			r.tick(t)
		}
		require.Empty(t, pd.events())
		require.Equal(t, []string{"trigger cancelled"}, pdEvents(t, db, id))
	})
}

// TestPagerDutyResolveAfterLateDelivery: bob acknowledges while his
// PagerDuty page is on the wire, and its sender stalls past its lease:
// the send reads as over without a delivery, so the incident's
// resolution writes no resolve. The send then succeeds after all: the
// page is recorded delivered (it reached PagerDuty) and, in the same
// write, the resolve it missed is written, after the acknowledge; the
// timeline says so. It used to be recorded delivered with no resolve,
// leaving PagerDuty's incident open.
func TestPagerDutyResolveAfterLateDelivery(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pd, logs := newHoldSink(t), &logSink{}
		r, ncfg, id := newPageRig(t, db, pageSetup{policy: pagerDutyOnlyYAML, severity: "critical", pagerDuty: pd.URL, logs: logs, held: true})
		done := ackWhileSent(t, r, id, pd)
		require.Equal(t, []string{"trigger cancelled", "acknowledge pending"}, pdEvents(t, db, id))
		r.clock.Advance(time.Duration(ncfg.Lease))
		require.False(t, pdTrigger(t, db, id).Reaches(r.clock.Now()), "its sender's lease ended without an outcome")
		_, err := r.svc.Resolve(ctx, id, "bob", "fixed")
		require.NoError(t, err)
		require.Equal(t, []string{"trigger cancelled", "acknowledge pending"}, pdEvents(t, db, id), "no resolve while the send reads as over")

		pd.Release()
		require.NoError(t, <-done)
		require.Equal(t, []string{"trigger delivered", "acknowledge pending", "resolve pending"}, pdEvents(t, db, id))
		require.True(t, pdTrigger(t, db, id).Reaches(r.clock.Now()))
		require.Len(t, r.timeline(t, id, "Page (trigger) by pagerduty, withdrawn while it was being sent, was delivered after its sender's lease had ended: PagerDuty resolve sent"), 1)
		require.Empty(t, logs.at(slog.LevelError))
		require.Len(t, logs.at(slog.LevelWarn), 1)
		require.True(t, strings.HasPrefix(logs.at(slog.LevelWarn)[0], "notification withdrawn while being sent was delivered after its sender's lease had ended"))

		ticks(t, r, 3)
		require.Equal(t, []string{"trigger delivered", "acknowledge delivered", "resolve delivered"}, pdEvents(t, db, id))
	})
}

// pushPageAcked pages bob's MEDIUM page by push alone through a sink that
// holds the request, and has bob acknowledge while it is on the wire
// (ackWhileSent): done gives the send's outcome once push is released.
// recoverAfterLease lets the lease of bob's push (pushPageAcked) end and
// the incident's SLO recover: its all-clear skips the push, whose send
// reads as over without a delivery.
func recoverAfterLease(t *testing.T, db *store.DB, r *rig, ncfg *notify.Config, id string) {
	t.Helper()
	r.clock.Advance(time.Duration(ncfg.Lease))
	_, err := r.svc.MarkRecovering(context.Background(), id, "sred", "api/availability short burn-rate windows back under")
	require.NoError(t, err)
	require.Empty(t, allClears(t, db, id), "the send reads as over without a delivery")
}

func pushPageAcked(t *testing.T, db *store.DB) (*rig, *notify.Config, string, *holdSink, <-chan error) {
	t.Helper()
	push := newHoldSink(t)
	r, ncfg, id := newPageRig(t, db, pageSetup{policy: escalationYAML, severity: "medium", push: &sink{Server: push.Server}, held: true})
	return r, ncfg, id, push, ackWhileSent(t, r, id, push)
}

// TestAllClearAfterLateDelivery: bob's MEDIUM page (push alone) is on the
// wire when he acknowledges, and its sender stalls past its lease; the
// SLO recovers meanwhile, and the all-clear skips bob's push (the send
// read as over without a delivery). The send then succeeds: bob was
// paged after all, and gets the all-clear, once, written with the page's
// delivery.
func TestAllClearAfterLateDelivery(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r, ncfg, id, push, done := pushPageAcked(t, db)
		recoverAfterLease(t, db, r, ncfg, id)

		push.Release()
		require.NoError(t, <-done)
		require.Equal(t, map[string]string{"bob/push": notify.StatePending}, allClears(t, db, id))
		require.Len(t, r.timeline(t, id, "Page (trigger) by push to bob, withdrawn while it was being sent, was delivered after its sender's lease had ended: all-clear sent via push to bob"), 1)
		ticks(t, r, 1)
		require.Equal(t, map[string]string{"bob/push": notify.StateDelivered}, allClears(t, db, id))
		st, err := r.engine.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, map[string]string{"bob/push": notify.StateDelivered}, byRecipient(st.Notices, notify.EventTrigger))
	})
}

// TestLateDeliveryOfPageWithdrawnAfterLease: bob's PagerDuty page is on
// the wire and its sender stalls past its lease before he acknowledges:
// the acknowledgement withdraws the page as one not being sent (its send
// reads as over) and writes no acknowledge. The send then succeeds: the
// page is recorded delivered and, in the same write, the acknowledge it
// missed is written, as for a page withdrawn while its lease lasted. It
// used to stay cancelled, its outcome dropped as a lost lease (logged at
// Error), and PagerDuty's incident was never acknowledged nor resolved.
func TestLateDeliveryOfPageWithdrawnAfterLease(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		pd, logs := newHoldSink(t), &logSink{}
		r, id := ackAfterLease(t, db, pd, logs)
		require.NoError(t, r.sendDone)
		require.Equal(t, []string{"trigger delivered", "acknowledge pending"}, pdEvents(t, db, id))
		require.True(t, pdTrigger(t, db, id).Reaches(r.clock.Now()))
		require.Len(t, r.timeline(t, id, "Notification (trigger) sent by pagerduty"), 1)
		require.Len(t, r.timeline(t, id, "Page (trigger) by pagerduty, withdrawn while it was being sent, was delivered after its sender's lease had ended: PagerDuty acknowledge sent"), 1)
		require.Empty(t, logs.at(slog.LevelError))
		warns := logs.at(slog.LevelWarn)
		require.Len(t, warns, 1)
		require.True(t, strings.HasPrefix(warns[0], "notification withdrawn while being sent was delivered after its sender's lease had ended"), warns[0])

		_, err := r.svc.Resolve(context.Background(), id, "bob", "fixed")
		require.NoError(t, err)
		ticks(t, r.rig, 3)
		require.Equal(t, []string{"trigger delivered", "acknowledge delivered", "resolve delivered"}, pdEvents(t, db, id))
	})
}

// TestFailedSendOfPageWithdrawnAfterLease: as in
// TestLateDeliveryOfPageWithdrawnAfterLease, but the stalled send then
// fails: the page stays cancelled with the error, not retried, and
// nothing follows it, as a withdrawn page whose send failed
// (TestWithdrawnPageFailingWhileSent). It used to be logged at Error as
// a lost lease, with no timeline entry.
func TestFailedSendOfPageWithdrawnAfterLease(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		pd, logs := newHoldSinkAnswering(t, http.StatusServiceUnavailable, http.StatusAccepted), &logSink{}
		r, id := ackAfterLease(t, db, pd, logs)
		require.NoError(t, r.sendDone)
		require.Equal(t, []string{"trigger cancelled"}, pdEvents(t, db, id))
		trigger := pdTrigger(t, db, id)
		require.Contains(t, trigger.LastError, "503")
		require.False(t, trigger.Reaches(r.clock.Now()))
		require.Empty(t, logs.at(slog.LevelError), "a withdrawn page whose send failed is no error")
		require.Len(t, r.timeline(t, id, "Notification (trigger) by pagerduty failed while it was being withdrawn"), 1)

		ticks(t, r.rig, 3)
		_, err := r.svc.Resolve(context.Background(), id, "bob", "fixed")
		require.NoError(t, err)
		r.tick(t)
		require.Equal(t, []string{"trigger cancelled"}, pdEvents(t, db, id), "the page reached nobody: no acknowledge, no resolve")
		require.Empty(t, logs.at(slog.LevelError))
	})
}

// lateRig is a rig whose PagerDuty page's send, held past its
// sender's lease, is over (sendDone, its DeliverDue's error).
type lateRig struct {
	*rig
	sendDone error
}

// ackAfterLease pages bob by PagerDuty through pd, which holds the
// request; while it is held the sender's lease ends and bob
// acknowledges, which withdraws the page as one whose send had begun and
// whose outcome is not known (its send reads as over) and writes no
// acknowledge; then pd answers.
func ackAfterLease(t *testing.T, db *store.DB, pd *holdSink, logs *logSink) (*lateRig, string) {
	t.Helper()
	ctx := context.Background()
	r, ncfg, id := newPageRig(t, db, pageSetup{policy: pagerDutyOnlyYAML, severity: "critical", pagerDuty: pd.URL, logs: logs, held: true})
	done := make(chan error, 1)
	go func() {
		_, err := r.sender.DeliverDue(ctx)
		done <- err
	}()
	<-pd.arrived
	r.clock.Advance(time.Duration(ncfg.Lease))
	_, err := r.svc.Acknowledge(ctx, id, "bob")
	require.NoError(t, err)
	entries := r.timeline(t, id, "Escalation stopped: acknowledged by bob")
	require.Len(t, entries, 1)
	require.Contains(t, entries[0], "; 1 page(s) withdrawn whose send had begun and whose outcome is not known yet")
	require.NotContains(t, entries[0], "not yet delivered", "its send had begun: the late delivery's entry says it was being sent")
	require.NotContains(t, entries[0], "being sent")
	require.Equal(t, []string{"trigger cancelled"}, pdEvents(t, db, id), "no acknowledge while the send reads as over")
	pd.Release()
	return &lateRig{rig: r, sendDone: <-done}, id
}

// TestAllClearAfterLateDeliveryToResolved: as in
// TestAllClearAfterLateDelivery bob's push page is on the wire when he
// acknowledges and its sender stalls past its lease, the SLO recovers
// and the all-clear skips him; the incident is then resolved, before the
// send succeeds. Bob was paged after all and gets the all-clear the
// recovery would have given him, once: it used to follow the incident's
// state alone, and a resolved incident's late page got none.
func TestAllClearAfterLateDeliveryToResolved(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r, ncfg, id, push, done := pushPageAcked(t, db)
		r.clock.Advance(time.Duration(ncfg.Lease))
		_, err := r.svc.MarkRecovering(ctx, id, "sred", "api/availability short burn-rate windows back under")
		require.NoError(t, err)
		_, err = r.svc.Resolve(ctx, id, "bob", "fixed")
		require.NoError(t, err)
		require.Empty(t, allClears(t, db, id), "the send reads as over without a delivery")

		push.Release()
		require.NoError(t, <-done)
		require.Equal(t, map[string]string{"bob/push": notify.StatePending}, allClears(t, db, id))
		require.Len(t, r.timeline(t, id, "Page (trigger) by push to bob, withdrawn while it was being sent, was delivered after its sender's lease had ended: all-clear sent via push to bob"), 1)
		ticks(t, r, 2)
		require.Equal(t, map[string]string{"bob/push": notify.StateDelivered}, allClears(t, db, id))
		recs, err := notify.List(ctx, db, id)
		require.NoError(t, err)
		var subjects []string
		for _, rec := range recs {
			if rec.Event == notify.EventAllClear {
				subjects = append(subjects, rec.Message.Subject)
			}
		}
		require.Len(t, subjects, 1)
		require.True(t, strings.HasPrefix(subjects[0], "[RESOLVED] Incident "+id), subjects[0])
	})
}

// TestNoAllClearAfterLateDeliveryToResolvedWithoutRecovery: an incident
// resolved without recovering first gave its pages no all-clear (only
// PagerDuty its resolve), so neither does a page of it delivered late.
func TestNoAllClearAfterLateDeliveryToResolvedWithoutRecovery(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r, ncfg, id, push, done := pushPageAcked(t, db)
		r.clock.Advance(time.Duration(ncfg.Lease))
		_, err := r.svc.Resolve(ctx, id, "bob", "fixed")
		require.NoError(t, err)

		push.Release()
		require.NoError(t, <-done)
		require.Equal(t, map[string]string{"bob/push": notify.StateDelivered}, byRecipient(mustList(t, db, id), notify.EventTrigger))
		require.Empty(t, allClears(t, db, id))
		require.Empty(t, r.timeline(t, id, "Page (trigger) by push to bob, withdrawn while it was being sent, was delivered after"))
	})
}

func mustList(t *testing.T, db *store.DB, id string) []notify.Record {
	t.Helper()
	recs, err := notify.List(context.Background(), db, id)
	require.NoError(t, err)
	return recs
}

// reopen resolves incident id of severity (opened by rig.open) and has
// its alert fire again a minute later, which re-opens it (flapping): its
// escalation starts a new run. The new run's first step is left due.
func reopen(t *testing.T, r *rig, id, severity string) {
	t.Helper()
	ctx := context.Background()
	_, err := r.svc.Resolve(ctx, id, "bob", "fixed")
	require.NoError(t, err)
	r.clock.Advance(time.Minute)
	labels := map[string]string{"alertname": "APIDown", "service": "api", "severity": severity}
	res, err := r.svc.Ingest(ctx, incident.Notification{
		Receiver: "sred", Status: "firing", GroupKey: "{}:" + severity + fmt.Sprint([]string(nil)), CommonLabels: labels,
		Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "fp-" + severity, StartsAt: r.clock.Now(), Labels: labels}},
	})
	require.NoError(t, err)
	require.Equal(t, []string{id}, res.Incidents)
	inc, err := r.svc.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, incident.StatusTriggered, inc.Status)
	st, err := r.engine.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, 2, st.Epoch)
}

// TestReopenClearsRecovering: an incident that recovered and was resolved
// re-opens not recovering (recovering_since cleared in the re-open's
// UPDATE): its new escalation run pages, and it turns recovering again,
// with its all-clear, when its SLO stops burning once more.
func TestReopenClearsRecovering(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r, _, id := newPageRig(t, db, pageSetup{policy: escalationYAML, severity: "medium"})
		_, err := r.svc.MarkRecovering(ctx, id, "sred", "api/availability short burn-rate windows back under")
		require.NoError(t, err)
		reopen(t, r, id, "medium")
		inc, err := r.svc.Get(ctx, id)
		require.NoError(t, err)
		require.Nil(t, inc.RecoveringSince, "re-opened: not recovering")
		r.tick(t)
		st, err := r.engine.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, escalation.StateActive, st.State)
		require.Equal(t, 0, st.Level, "the second run paged its first level")

		r.clock.Advance(time.Minute)
		inc, err = r.svc.MarkRecovering(ctx, id, "sred", "api/availability short burn-rate windows back under")
		require.NoError(t, err)
		require.Equal(t, r.clock.Now(), *inc.RecoveringSince)
		require.Len(t, r.timeline(t, id, "recovering: "), 2)
		st, err = r.engine.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, escalation.StateRecovering, st.State)
	})
}

// TestAllClearAfterLatePageOfEarlierRun: bob's push page is on the wire
// when he acknowledges, and its sender stalls past its lease; the SLO
// recovers (the all-clear skips bob: his send read as over), then the
// escalation starts a second run (the SLO burns again, or the incident
// is resolved and re-opens), which is resolved without recovering. The
// send then succeeds: bob gets the all-clear the first run's recovery
// would have given him, once (it used to look at the second run alone,
// which gave none, and bob heard nothing after the page). When the
// first recovery came while the page was still being sent, bob got its
// all-clear then and gets no other.
func TestAllClearAfterLatePageOfEarlierRun(t *testing.T) {
	for _, tc := range []struct {
		name string
		// reopen starts the second run by a re-open, not by burning again.
		reopen bool
		// early recovers while the page's lease lasts.
		early bool
	}{
		{name: "burning again"},
		{name: "re-opened", reopen: true},
		{name: "recovered while being sent", early: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
				ctx := context.Background()
				r, ncfg, id, push, done := pushPageAcked(t, db)
				markRecovering := func() {
					_, err := r.svc.MarkRecovering(ctx, id, "sred", "api/availability short burn-rate windows back under")
					require.NoError(t, err)
				}
				if tc.early {
					markRecovering()
					require.Equal(t, map[string]string{"bob/push": notify.StatePending}, allClears(t, db, id), "the page being sent may reach bob")
				}
				r.clock.Advance(time.Duration(ncfg.Lease))
				if !tc.early {
					markRecovering()
					require.Empty(t, allClears(t, db, id), "the send reads as over without a delivery")
				}
				if tc.reopen {
					reopen(t, r, id, "medium")
				} else {
					_, err := r.svc.BurningAgain(ctx, id, "sred", "api/availability page_fast 5m 20x > 14.4x")
					require.NoError(t, err)
				}
				st, err := r.engine.Get(ctx, id)
				require.NoError(t, err)
				require.Equal(t, 2, st.Epoch)
				_, err = r.svc.Resolve(ctx, id, "bob", "fixed")
				require.NoError(t, err)

				push.Release()
				require.NoError(t, <-done)
				require.Equal(t, map[string]string{"bob/push": notify.StateDelivered}, byRecipient(mustList(t, db, id), notify.EventTrigger))
				late := r.timeline(t, id, "Page (trigger) by push to bob, withdrawn while it was being sent, was delivered after")
				var subjects []string
				for _, rec := range mustList(t, db, id) {
					if rec.Event == notify.EventAllClear {
						subjects = append(subjects, rec.Message.Subject)
					}
				}
				require.Len(t, subjects, 1, "one all-clear to bob")
				if tc.early {
					require.Empty(t, late)
					require.True(t, strings.HasPrefix(subjects[0], "[RECOVERING] Incident "+id), subjects[0])
					return
				}
				require.Equal(t, []string{"Page (trigger) by push to bob, withdrawn while it was being sent, was delivered after its sender's lease had ended: all-clear sent via push to bob"}, late)
				require.True(t, strings.HasPrefix(subjects[0], "[RESOLVED] Incident "+id), subjects[0])
			})
		})
	}
}

// TestLatePageFindsRecoveryByMarker: as in TestAllClearAfterLatePageOfEarlierRun
// (burning again), the recovery that skipped bob's late page is found by
// its timeline entry's marker ("recovery": true in its data), not by the
// entry's wording: reworded, it still owes bob the all-clear. An entry
// written before the marker (none in its data) is found by its wording; a
// burn again, whatever its wording, is no recovery.
func TestLatePageFindsRecoveryByMarker(t *testing.T) {
	for _, tc := range []struct {
		name string
		// rewrite changes the stored entries of kind 'recovering'.
		rewrite string
		want    bool
	}{
		{name: "reworded recovery", rewrite: `UPDATE incident_timeline SET message = 'SLO back under its thresholds' WHERE kind = 'recovering' AND message LIKE 'recovering: %'`, want: true},
		{name: "recovery without marker", rewrite: `UPDATE incident_timeline SET data = '{}' WHERE kind = 'recovering' AND message LIKE 'recovering: %'`, want: true},
		{name: "burn again worded as a recovery", rewrite: `UPDATE incident_timeline SET message = CASE WHEN message LIKE 'recovering: %' THEN 'SLO back under its thresholds' ELSE 'recovering: burns again' END, data = CASE WHEN message LIKE 'recovering: %' THEN '{}' ELSE data END WHERE kind = 'recovering'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
				ctx := context.Background()
				r, ncfg, id, push, done := pushPageAcked(t, db)
				recoverAfterLease(t, db, r, ncfg, id)
				_, err := r.svc.BurningAgain(ctx, id, "sred", "api/availability page_fast 5m 20x > 14.4x")
				require.NoError(t, err)
				_, err = r.svc.Resolve(ctx, id, "bob", "fixed")
				require.NoError(t, err)
				_, err = db.ExecContext(ctx, tc.rewrite)
				require.NoError(t, err)

				push.Release()
				require.NoError(t, <-done)
				require.Equal(t, map[string]string{"bob/push": notify.StateDelivered}, byRecipient(mustList(t, db, id), notify.EventTrigger))
				late := r.timeline(t, id, "Page (trigger) by push to bob, withdrawn while it was being sent, was delivered after")
				if !tc.want {
					require.Empty(t, allClears(t, db, id), "no recovery since the page")
					require.Empty(t, late)
					return
				}
				require.Equal(t, map[string]string{"bob/push": notify.StatePending}, allClears(t, db, id))
				require.Equal(t, []string{"Page (trigger) by push to bob, withdrawn while it was being sent, was delivered after its sender's lease had ended: all-clear sent via push to bob"}, late)
			})
		})
	}
}
