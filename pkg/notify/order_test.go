package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// orderReceiver is a webhook receiver that logs, per incident, when each
// message arrived and when it was answered. A message named in hold
// ("INC/event") is answered only once the test closes its channel; one
// named in codes gets that status.
type orderReceiver struct {
	*httptest.Server
	mu      sync.Mutex
	log     map[string][]string // incident -> "arrive event", "answer event"
	hold    map[string]chan struct{}
	codes   map[string]int
	arrived chan string // the held messages, as they arrive
}

func newOrderReceiver(t *testing.T) *orderReceiver {
	o := &orderReceiver{log: map[string][]string{}, hold: map[string]chan struct{}{}, codes: map[string]int{}, arrived: make(chan string, 16)}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m struct {
			Incident string `json:"incident_id"`
			Event    string `json:"event"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		key := m.Incident + "/" + m.Event
		o.mu.Lock()
		o.log[m.Incident] = append(o.log[m.Incident], "arrive "+m.Event)
		release, hold := o.hold[key]
		delete(o.hold, key)
		code := o.codes[key]
		o.mu.Unlock()
		if hold {
			o.arrived <- key
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		o.mu.Lock()
		o.log[m.Incident] = append(o.log[m.Incident], "answer "+m.Event)
		o.mu.Unlock()
		if code == 0 {
			code = http.StatusOK
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(o.Close)
	return o
}

// holdNext makes the next request of key wait until the returned function
// is called.
func (o *orderReceiver) holdNext(t *testing.T, key string) func() {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := make(chan struct{})
	o.hold[key] = c
	var once sync.Once
	release := func() { once.Do(func() { close(c) }) }
	t.Cleanup(release) // a failed test does not leave the request waiting
	return release
}

func (o *orderReceiver) incident(id string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.log[id]...)
}

// The webhook messages of one incident claimed together (a trigger and,
// a moment later, its acknowledge and resolve) reach the receiver one
// after another in the order they were written, each once the previous
// one was answered, while another incident's messages go out meanwhile;
// an incident's messages stop at its first failure and wait, without an
// attempt, behind the failed one; and a message whose lease would end
// during its send is put back rather than sent.
func TestWebhookMessagesOfAnIncidentInOrder(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{jobs.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)
		clk := clock.NewManual(t0)
		recv := newOrderReceiver(t)
		cfg := &Config{MinBackoff: model.Duration(10 * time.Second), MaxBackoff: model.Duration(time.Minute),
			Webhook: &WebhookConfig{URL: recv.URL, Secret: commoncfg.Secret("k")}}
		require.NoError(t, cfg.Validate())
		s := NewSender(db, cfg, clk, nil, nil, prometheus.NewRegistry())
		enqueue := func(inc, event string) {
			t.Helper()
			_, err := Enqueue(ctx, db, clk.Now(), inc+"/webhook/"+event, &Message{IncidentID: inc, Channel: ChannelWebhook,
				Event: event, Subject: event, Body: event, Severity: "CRITICAL", Time: clk.Now()})
			require.NoError(t, err)
		}
		record := func(inc, event string) Record {
			t.Helper()
			recs, err := List(ctx, db, inc)
			require.NoError(t, err)
			for _, r := range recs {
				if r.Key == inc+"/webhook/"+event {
					return r
				}
			}
			t.Fatalf("no message %s/%s", inc, event)
			return Record{}
		}
		deliverInBackground := func() chan int {
			done := make(chan int, 1)
			go func() {
				n, err := s.DeliverDue(ctx)
				if err != nil {
					t.Error(err)
				}
				done <- n
			}()
			return done
		}
		inOrder := func(events ...string) []string {
			var out []string
			for _, e := range events {
				out = append(out, "arrive "+e, "answer "+e)
			}
			return out
		}

		// Two incidents' messages, written interleaved and all due in one
		// claim; INC-A's trigger is answered only when the test says.
		enqueue("INC-A", EventTrigger)
		enqueue("INC-B", EventTrigger)
		enqueue("INC-A", EventAcknowledge)
		enqueue("INC-B", EventResolve)
		enqueue("INC-A", EventResolve)
		release := recv.holdNext(t, "INC-A/"+EventTrigger)
		done := deliverInBackground()
		require.Equal(t, "INC-A/"+EventTrigger, <-recv.arrived)
		// INC-B's messages go out while INC-A's trigger waits for its answer.
		require.Eventually(t, func() bool {
			return record("INC-B", EventTrigger).State == StateDelivered && record("INC-B", EventResolve).State == StateDelivered
		}, 30*time.Second, 5*time.Millisecond)
		require.Equal(t, inOrder(EventTrigger, EventResolve), recv.incident("INC-B"))
		require.Equal(t, []string{"arrive " + EventTrigger}, recv.incident("INC-A"), "the acknowledge and resolve wait for the trigger's answer")
		require.Equal(t, StateSending, record("INC-A", EventAcknowledge).State)
		release()
		require.Equal(t, 5, <-done)
		require.Equal(t, inOrder(EventTrigger, EventAcknowledge, EventResolve), recv.incident("INC-A"))
		for _, e := range []string{EventTrigger, EventAcknowledge, EventResolve} {
			r := record("INC-A", e)
			require.Equal(t, StateDelivered, r.State, e)
			require.Equal(t, 1, r.Attempts, e)
		}

		// INC-C's trigger fails: its acknowledge and resolve are not sent
		// but put back behind it, due at its retry and without an attempt;
		// INC-D's message, in the same claim, is delivered.
		clk.Advance(time.Second)
		recv.mu.Lock()
		recv.codes["INC-C/"+EventTrigger] = http.StatusServiceUnavailable
		recv.mu.Unlock()
		enqueue("INC-C", EventTrigger)
		enqueue("INC-C", EventAcknowledge)
		enqueue("INC-D", EventTrigger)
		enqueue("INC-C", EventResolve)
		n, err := s.DeliverDue(ctx)
		require.NoError(t, err)
		require.Equal(t, 2, n, "messages attempted")
		require.Equal(t, inOrder(EventTrigger), recv.incident("INC-C"))
		require.Equal(t, StateDelivered, record("INC-D", EventTrigger).State)
		trig := record("INC-C", EventTrigger)
		require.Equal(t, StatePending, trig.State)
		require.Equal(t, clk.Now().Add(10*time.Second), trig.NextAttempt)
		for _, e := range []string{EventAcknowledge, EventResolve} {
			r := record("INC-C", e)
			require.Equal(t, StatePending, r.State, e)
			require.Equal(t, 0, r.Attempts, e)
			require.Equal(t, trig.NextAttempt, r.NextAttempt, e)
		}
		// The trigger's retry is delivered; the others follow it, in order.
		recv.mu.Lock()
		delete(recv.codes, "INC-C/"+EventTrigger)
		recv.mu.Unlock()
		clk.Advance(10 * time.Second)
		for i := 0; i < 3 && record("INC-C", EventResolve).State != StateDelivered; i++ {
			_, err := s.DeliverDue(ctx)
			require.NoError(t, err)
		}
		require.Equal(t, inOrder(EventTrigger, EventTrigger, EventAcknowledge, EventResolve), recv.incident("INC-C"))
		for _, e := range []string{EventAcknowledge, EventResolve} {
			r := record("INC-C", e)
			require.Equal(t, StateDelivered, r.State, e)
			require.Equal(t, 1, r.Attempts, "waiting costs no attempt")
		}

		// INC-E's trigger is answered so late that its acknowledge's lease
		// would end within a send's timeout: the acknowledge is put back,
		// due at once, rather than sent while another sender may claim it.
		clk.Advance(time.Second)
		enqueue("INC-E", EventTrigger)
		enqueue("INC-E", EventAcknowledge)
		release = recv.holdNext(t, "INC-E/"+EventTrigger)
		done = deliverInBackground()
		require.Equal(t, "INC-E/"+EventTrigger, <-recv.arrived)
		clk.Advance(time.Duration(cfg.Lease - cfg.Timeout))
		release()
		require.Equal(t, 1, <-done)
		require.Equal(t, inOrder(EventTrigger), recv.incident("INC-E"))
		ack := record("INC-E", EventAcknowledge)
		require.Equal(t, StatePending, ack.State)
		require.Equal(t, 0, ack.Attempts)
		require.Equal(t, clk.Now(), ack.NextAttempt)
		n, err = s.DeliverDue(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Equal(t, inOrder(EventTrigger, EventAcknowledge), recv.incident("INC-E"))
	})
}
