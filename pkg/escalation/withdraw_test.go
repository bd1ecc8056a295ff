package escalation_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/escalation"
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
			testutil.Backends(t, allMigrations, func(t *testing.T, db *store.DB) {
				ctx := context.Background()
				sms, push, email, slack := newFlakySink(t), newSink(t), newSink(t), newSink(t)
				clk := clock.NewManual(t0)
				ncfg := notifyConfig(t, &sink{Server: sms.Server}, push, email, slack)
				r := newRig(t, db, clk, escalationYAML, ncfg)
				id := r.open(t, "critical")
				r.tick(t)
				require.Equal(t, []string{"bob/sms", "bob/phone", "bob/push"}, r.paged(t, id))
				require.Equal(t, 1, push.n)

				clk.Advance(time.Minute)
				require.NoError(t, tc.end(ctx, r, id))
				sms.recover()
				// Up to the ack timeout (30m), which pages again.
				for range 5 {
					clk.Advance(5 * time.Minute)
					r.tick(t)
				}
				require.Zero(t, sms.count(), "no page after the incident is %s", tc.want)

				st, err := r.engine.Get(ctx, id)
				require.NoError(t, err)
				require.Equal(t, tc.want, st.State)
				states := map[string]string{}
				for _, rec := range st.Notices {
					if rec.Event == notify.EventTrigger {
						states[rec.User+"/"+rec.Channel] = rec.State
					}
				}
				require.Equal(t, map[string]string{"bob/sms": notify.StateCancelled, "bob/phone": notify.StateCancelled,
					"bob/push": notify.StateDelivered}, states)
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
	testutil.Backends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		sms, push, email, slack := newFlakySink(t), newSink(t), newSink(t), newSink(t)
		clk := clock.NewManual(t0)
		r := newRig(t, db, clk, escalationYAML, notifyConfig(t, &sink{Server: sms.Server}, push, email, slack))
		id := r.open(t, "critical")
		r.tick(t)
		require.Equal(t, []string{"bob/sms", "bob/phone", "bob/push"}, r.paged(t, id))

		clk.Advance(time.Minute)
		_, err := r.svc.Acknowledge(ctx, id, "bob")
		require.NoError(t, err)
		sms.recover()
		_, err = r.svc.MarkRecovering(ctx, id, "sred", "api/availability short burn-rate windows back under")
		require.NoError(t, err)
		for range 3 {
			clk.Advance(5 * time.Minute)
			r.tick(t)
		}

		require.Zero(t, sms.count(), "no all-clear by SMS or phone: bob was never paged there")
		push.mu.Lock()
		pushes := push.n
		push.mu.Unlock()
		require.Equal(t, 2, pushes, "the page and the all-clear by push")
		clear := map[string]string{}
		recs, err := notify.List(ctx, db, id)
		require.NoError(t, err)
		for _, rec := range recs {
			if rec.Event == notify.EventAllClear {
				clear[rec.User+"/"+rec.Channel] = rec.State
			}
		}
		require.Equal(t, map[string]string{"bob/push": notify.StateDelivered}, clear)
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
	s := &holdSink{arrived: make(chan struct{}), release: make(chan struct{})}
	var first sync.Once
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		held := false
		first.Do(func() { held = true })
		if held {
			close(s.arrived)
			select {
			case <-s.release:
			case <-r.Context().Done():
				return
			}
		}
		w.WriteHeader(http.StatusAccepted)
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
	testutil.Backends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		sms, push, email, slack := newSink(t), newHoldSink(t), newSink(t), newSink(t)
		clk := clock.NewManual(t0)
		r := newRig(t, db, clk, escalationYAML, notifyConfig(t, sms, &sink{Server: push.Server}, email, slack))
		id := r.open(t, "medium")
		_, err := r.worker.RunDue(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{"bob/push"}, r.paged(t, id))
		done := make(chan error, 1)
		go func() {
			_, err := r.sender.DeliverDue(ctx)
			done <- err
		}()
		<-push.arrived
		_, err = r.svc.Acknowledge(ctx, id, "bob")
		require.NoError(t, err)
		push.Release()
		require.NoError(t, <-done)

		st, err := r.engine.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, escalation.StateAcknowledged, st.State)
		states := map[string]string{}
		for _, rec := range st.Notices {
			if rec.Event == notify.EventTrigger {
				states[rec.User+"/"+rec.Channel] = rec.State
			}
		}
		require.Equal(t, map[string]string{"bob/push": notify.StateDelivered}, states)
		entries := r.timeline(t, id, "Escalation stopped: acknowledged by bob")
		require.Len(t, entries, 1)
		require.NotContains(t, entries[0], "withdrawn")
		require.Contains(t, entries[0], "; 1 page(s) already being sent left to finish (not retried if the send fails)")
		require.Len(t, r.timeline(t, id, "Notification (trigger) sent by push to bob"), 1)
	})
}
