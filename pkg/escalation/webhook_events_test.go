package escalation_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// webhookSink records the webhook messages it gets, answering 503 while
// down.
type webhookSink struct {
	*httptest.Server
	mu   sync.Mutex
	down bool
	got  []notify.WebhookPayload
}

func newWebhookSink(t *testing.T) *webhookSink {
	s := &webhookSink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p notify.WebhookPayload
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		s.got = append(s.got, p)
	}))
	t.Cleanup(s.Close)
	return s
}

// events lists the messages got as "event user subject".
func (s *webhookSink) events() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, p := range s.got {
		out = append(out, p.Event+" "+p.User+" "+p.Subject)
	}
	return out
}

func (s *webhookSink) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

const webhookOnlyYAML = `
policies:
  - name: default
    levels: [{after: 0m, schedules: [primary], channels: [webhook]}]
`

// TestWebhookGetsAcknowledgeAndResolve: a webhook receiver that got an
// incident's trigger (a ticket, a thread per incident) gets its
// acknowledge, saying who acknowledged, and its resolve, once each, as
// PagerDuty does; the channels without state (push) do not.
func TestWebhookGetsAcknowledgeAndResolve(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		wh := newWebhookSink(t)
		r, _, id := newPageRig(t, db, pageSetup{policy: webhookOnlyYAML, severity: "critical", webhook: wh.URL})
		require.Equal(t, []string{"trigger  [CRITICAL] Incident " + id + ": APIDown on api"}, wh.events())

		r.clock.Advance(time.Minute)
		_, err := r.svc.Acknowledge(ctx, id, "alice")
		require.NoError(t, err)
		r.tick(t)
		_, err = r.svc.Resolve(ctx, id, "alice", "fixed")
		require.NoError(t, err)
		r.tick(t)
		require.Equal(t, []string{
			"trigger  [CRITICAL] Incident " + id + ": APIDown on api",
			"acknowledge alice [ACKNOWLEDGED] Incident " + id + ": APIDown on api",
			"resolve alice [RESOLVED] Incident " + id + ": APIDown on api",
		}, wh.events())
	})
}

// TestNoWebhookEventsForWithdrawnTrigger: the webhook is down when bob is
// paged, and the trigger, being retried, is withdrawn when he
// acknowledges: the receiver never heard of the incident and gets
// neither its acknowledge nor its resolve once it is back.
func TestNoWebhookEventsForWithdrawnTrigger(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		wh := newWebhookSink(t)
		wh.setDown(true)
		r, _, id := newPageRig(t, db, pageSetup{policy: webhookOnlyYAML, severity: "critical", webhook: wh.URL})
		r.clock.Advance(time.Minute)
		_, err := r.svc.Acknowledge(ctx, id, "bob")
		require.NoError(t, err)
		wh.setDown(false)
		_, err = r.svc.Resolve(ctx, id, "bob", "fixed")
		require.NoError(t, err)
		ticks(t, r, 3)
		require.Empty(t, wh.events(), "the trigger was withdrawn before it reached the receiver")
	})
}

// TestWebhookAllClearOncePerIncident: a webhook receiver gets one
// all-clear for an incident however many people its pages named (two
// levels, three users), as it gets one acknowledge and one resolve; the
// per-user channels (sms) get one per paged user.
func TestWebhookAllClearOncePerIncident(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		wh := newWebhookSink(t)
		r, _, id := newPageRig(t, db, pageSetup{policy: `
policies:
  - name: default
    levels:
      - {after: 0m, users: [alice, bob], channels: [webhook, sms]}
      - {after: 5m, users: [carol], channels: [webhook, sms]}
`, severity: "critical", webhook: wh.URL})
		ticks(t, r, 1)
		_, err := r.svc.MarkRecovering(ctx, id, "sred", "api/availability short burn-rate windows back under")
		require.NoError(t, err)
		r.tick(t)
		require.Equal(t, []string{
			"trigger  [CRITICAL] Incident " + id + ": APIDown on api",
			"trigger  [CRITICAL] Incident " + id + ": APIDown on api",
			"all_clear  [RECOVERING] Incident " + id + ": APIDown on api",
		}, wh.events())
		require.Equal(t, map[string]string{"/webhook": "delivered", "alice/sms": "delivered", "bob/sms": "delivered", "carol/sms": "delivered"},
			allClears(t, db, id))
	})
}
