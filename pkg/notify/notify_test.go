package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// endpoint is an HTTP server that records requests and answers with a
// scripted sequence of status codes (then 200).
type endpoint struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []recorded
	answers []answer
}

type answer struct {
	code       int
	retryAfter string
}

type recorded struct {
	Header http.Header
	Body   []byte
}

func newEndpoint(t *testing.T, answers ...answer) *endpoint {
	e := &endpoint{answers: answers}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.reqs = append(e.reqs, recorded{Header: r.Header.Clone(), Body: b})
		a := answer{code: 200}
		if len(e.answers) > 0 {
			a, e.answers = e.answers[0], e.answers[1:]
		}
		e.mu.Unlock()
		if a.retryAfter != "" {
			w.Header().Set("Retry-After", a.retryAfter)
		}
		w.WriteHeader(a.code)
		fmt.Fprint(w, `{"status":"ok"}`)
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *endpoint) Requests() []recorded {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]recorded(nil), e.reqs...)
}

func writeFile(t *testing.T, dir, name, content string) string {
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content+"\n"), 0o600))
	return p
}

func openIncident(t *testing.T, db *store.DB, now time.Time) (*incident.Service, string) {
	return openIncidentOn(t, db, now, nil)
}

// openIncidentOn is openIncident with the service's events published on bus.
func openIncidentOn(t *testing.T, db *store.DB, now time.Time, bus *events.Bus) (*incident.Service, string) {
	svc, err := incident.NewService(db, incident.DefaultOptions(), nil, bus, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	svc.Clock = clock.NewManual(now)
	res, err := svc.Ingest(context.Background(), incident.Notification{
		Receiver: "sred", Status: "firing", GroupKey: `{}:{alertname="APIDown"}`,
		GroupLabels:  map[string]string{"alertname": "APIDown"},
		CommonLabels: map[string]string{"alertname": "APIDown", "service": "api", "severity": "critical"},
		Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "f1", StartsAt: now.Add(-time.Minute),
			Labels: map[string]string{"alertname": "APIDown", "service": "api", "severity": "critical"}}},
	})
	require.NoError(t, err)
	require.Len(t, res.Created, 1)
	return svc, res.Created[0]
}

func TestDeliveryToRealEndpoints(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations, jobs.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)
		clock := clock.NewManual(t0)
		svc, incID := openIncident(t, db, t0)

		smtpSrv := startSMTP(t)
		slack := newEndpoint(t)
		hook := newEndpoint(t)
		pd := newEndpoint(t, answer{code: 429, retryAfter: "30"})
		sms := newEndpoint(t, answer{code: 503})
		phone := newEndpoint(t)
		push := newEndpoint(t, answer{code: 400})

		dir := t.TempDir()
		writeFile(t, dir, "smtp_password", "s3cret")
		writeFile(t, dir, "pd_key", "R0UTINGKEY")
		writeFile(t, dir, "hook_secret", "hmac-key")
		yml := fmt.Sprintf(`
min_backoff: 10s
max_backoff: 5m
email:
  smarthost: %q
  from: "sred <sred@example.com>"
  auth_username: sred
  auth_password_file: smtp_password
  tls_config: {ca_file: %q}
slack: {webhook_url: %q, channel: "#incidents"}
webhook: {url: %q, secret_file: hook_secret}
pagerduty: {url: %q, routing_key_file: pd_key}
sms: {url: %q, username: AC123, password: tok, from: "+15550000000"}
phone: {url: %q, username: AC123, password: tok, from: "+15550000000"}
push: {url: %q}
`, smtpSrv.Addr, smtpSrv.CAFile, slack.URL+"/hooks/T0/B0/XYZ", hook.URL, pd.URL, sms.URL+"/Messages.json", phone.URL+"/Calls.json", push.URL)
		var cfg Config
		dec := yaml.NewDecoder(strings.NewReader(yml))
		dec.KnownFields(true)
		require.NoError(t, dec.Decode(&cfg))
		cfg.SetBaseDir(dir)

		base := Message{IncidentID: incID, Event: EventTrigger, Subject: "[CRITICAL] Incident " + incID + ": API down",
			Body: "🚨 [CRITICAL] Incident: API down\nID: " + incID + "\n", Title: "API down", Service: "api", Severity: "CRITICAL",
			URL: "https://sred.example.com/incidents/" + incID, AckURL: "https://sred.example.com/ack/tok", Time: t0}
		msgs := map[string]Message{}
		for _, m := range []struct{ ch, user, to string }{
			{ChannelEmail, "alice", "alice@example.com"}, {ChannelSMS, "alice", "+15550000001"}, {ChannelPhone, "alice", "+15550000001"},
			{ChannelPush, "alice", "device-1"}, {ChannelSlack, "", ""}, {ChannelWebhook, "", ""}, {ChannelPagerDuty, "", ""},
		} {
			msg := base
			msg.Channel, msg.User, msg.To = m.ch, m.user, m.to
			if m.ch == ChannelSlack {
				msg.Mentions = []string{"U024BE7LH"}
			}
			key := incID + "/0/0/" + m.ch + "/" + m.user
			ok, err := Enqueue(ctx, db, t0, key, &msg)
			require.NoError(t, err)
			require.True(t, ok)
			ok, err = Enqueue(ctx, db, t0, key, &msg)
			require.NoError(t, err)
			require.False(t, ok, "the dedup key drops a second copy")
			msgs[m.ch] = msg
		}

		reg := prometheus.NewRegistry()
		s := NewSender(db, &cfg, clock, svc, nil, reg)
		n, err := s.DeliverDue(ctx)
		require.NoError(t, err)
		require.Equal(t, 7, n)

		states := func() map[string]string {
			recs, err := List(ctx, db, incID)
			require.NoError(t, err)
			out := map[string]string{}
			for _, r := range recs {
				out[r.Channel] = r.State
			}
			return out
		}
		require.Equal(t, map[string]string{
			"email": "delivered", "slack": "delivered", "webhook": "delivered", "phone": "delivered",
			"sms": "pending", "pagerduty": "pending", "push": "failed",
		}, states(), "a failing channel does not hold up the others")

		// Email arrived over STARTTLS, authenticated, with the rendered text.
		mails := smtpSrv.Mails()
		require.Len(t, mails, 1)
		require.True(t, mails[0].TLS)
		require.Equal(t, "sred", mails[0].User)
		require.Equal(t, "sred@example.com", mails[0].From)
		require.Equal(t, "alice@example.com", mails[0].To)
		require.Contains(t, mails[0].Data, "Subject: [CRITICAL] Incident "+incID+": API down\r\n")
		require.Contains(t, mails[0].Data, "\r\n\r\n🚨 [CRITICAL] Incident: API down\r\nID: "+incID+"\r\n")

		// Slack: readable text, mention, ack and incident buttons.
		var sl struct {
			Text    string `json:"text"`
			Channel string `json:"channel"`
			Blocks  []struct {
				Type     string            `json:"type"`
				Text     map[string]string `json:"text"`
				Elements []struct {
					URL string `json:"url"`
				} `json:"elements"`
			} `json:"blocks"`
		}
		require.NoError(t, json.Unmarshal(slack.Requests()[0].Body, &sl))
		require.Equal(t, base.Subject, sl.Text)
		require.Equal(t, "#incidents", sl.Channel)
		require.Contains(t, sl.Blocks[0].Text["text"], "Paging: <@U024BE7LH>")
		require.Equal(t, base.AckURL, sl.Blocks[1].Elements[0].URL)
		require.Equal(t, base.URL, sl.Blocks[1].Elements[1].URL)

		// Webhook: JSON signed with HMAC-SHA256 over timestamp.body.
		hr := hook.Requests()[0]
		ts := hr.Header.Get(TimestampHeader)
		require.Equal(t, fmt.Sprint(t0.Unix()), ts)
		require.Equal(t, Sign("hmac-key", ts, hr.Body), hr.Header.Get(SignatureHeader))
		var wp map[string]any
		require.NoError(t, json.Unmarshal(hr.Body, &wp))
		require.Equal(t, "1", wp["version"])
		require.Equal(t, incID, wp["incident_id"])
		require.Equal(t, "trigger", wp["event"])

		// Phone: Twilio-style form with basic auth and TwiML.
		pr := phone.Requests()[0]
		form, err := url.ParseQuery(string(pr.Body))
		require.NoError(t, err)
		require.Equal(t, "+15550000001", form.Get("To"))
		require.Equal(t, "+15550000000", form.Get("From"))
		require.Equal(t, "<Response><Say>[CRITICAL] Incident "+incID+": API down</Say></Response>", form.Get("Twiml"))
		require.Equal(t, "Basic QUMxMjM6dG9r", pr.Header.Get("Authorization"))

		// 503 backs off min_backoff (10s); 429 waits for Retry-After (30s).
		clock.Advance(10 * time.Second)
		_, err = s.DeliverDue(ctx)
		require.NoError(t, err)
		require.Equal(t, "delivered", states()["sms"])
		require.Equal(t, "pending", states()["pagerduty"])
		require.Len(t, pd.Requests(), 1)
		clock.Advance(20 * time.Second)
		_, err = s.DeliverDue(ctx)
		require.NoError(t, err)
		require.Equal(t, "delivered", states()["pagerduty"])

		smsForm, err := url.ParseQuery(string(sms.Requests()[1].Body))
		require.NoError(t, err)
		require.Equal(t, base.Subject+"\nAck: "+base.AckURL, smsForm.Get("Body"))

		var ev struct {
			RoutingKey  string `json:"routing_key"`
			EventAction string `json:"event_action"`
			DedupKey    string `json:"dedup_key"`
			Payload     struct {
				Summary, Source, Severity string
			} `json:"payload"`
			Links []map[string]string `json:"links"`
		}
		require.NoError(t, json.Unmarshal(pd.Requests()[1].Body, &ev))
		require.Equal(t, "R0UTINGKEY", ev.RoutingKey)
		require.Equal(t, "trigger", ev.EventAction)
		require.Equal(t, incID, ev.DedupKey)
		require.Equal(t, "critical", ev.Payload.Severity)
		require.Equal(t, "api", ev.Payload.Source)
		require.Len(t, ev.Links, 2)

		// Every outcome is on the incident timeline.
		tl, err := svc.Timeline(ctx, incID)
		require.NoError(t, err)
		var notes []string
		for _, e := range tl {
			if e.Kind == "notification" {
				notes = append(notes, e.Message)
			}
		}
		require.Len(t, notes, 9) // 7 first attempts, 2 retries
		require.Contains(t, notes, "Notification (trigger) by push to alice failed after 1 attempt, giving up: push: unexpected status 400 Bad Request: {\"status\":\"ok\"}")
		require.Contains(t, notes, "Notification (trigger) by pagerduty failed (attempt 1), retrying in 30s: pagerduty: unexpected status 429 Too Many Requests: {\"status\":\"ok\"}")
		require.Contains(t, notes, "Notification (trigger) sent by email to alice")

		require.NoError(t, promtestutil.GatherAndCompare(reg, strings.NewReader(`
# HELP sre_notifications_pending Notifications waiting in the outbox (pending or being sent), counted in the store at each scrape: the same on every replica (take max, not sum).
# TYPE sre_notifications_pending gauge
sre_notifications_pending 0
`), "sre_notifications_pending"))
		for ch, want := range map[string][3]float64{
			"email": {1, 0, 0}, "sms": {1, 1, 0}, "pagerduty": {1, 1, 0}, "push": {0, 0, 1}, "phone": {1, 0, 0},
		} {
			require.Equal(t, want[0], promtestutil.ToFloat64(s.sent.WithLabelValues(ch, "delivered")), ch)
			require.Equal(t, want[1], promtestutil.ToFloat64(s.sent.WithLabelValues(ch, "retry")), ch)
			require.Equal(t, want[2], promtestutil.ToFloat64(s.sent.WithLabelValues(ch, "failed")), ch)
		}
	})
}

// TestLeaseAfterCrash: a sender that claimed a message and died leaves it to
// another sender once the lease expires; nothing is lost. The page's send
// was never marked as begun (jobs.Start): the dead sender's claim counts
// no attempt.
func TestLeaseAfterCrash(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations, jobs.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)
		clock := clock.NewManual(t0)
		hook := newEndpoint(t)
		cfg := &Config{Webhook: &WebhookConfig{URL: hook.URL, Secret: commoncfg.Secret("k")}}
		require.NoError(t, cfg.Validate())
		_, err := Enqueue(ctx, db, t0, "k1", &Message{IncidentID: "INC-1", Channel: ChannelWebhook, Event: EventTrigger, Subject: "x"})
		require.NoError(t, err)

		dead := NewSender(db, cfg, clock, nil, nil, nil)
		claimed, err := dead.claim(ctx, t0, jobs.ClaimOptions{}) // claims, then "dies" before sending
		require.NoError(t, err)
		require.Len(t, claimed, 1)

		live := NewSender(db, cfg, clock, nil, nil, nil)
		n, err := live.DeliverDue(ctx)
		require.NoError(t, err)
		require.Equal(t, 0, n, "the lease keeps the message exclusive")
		clock.Advance(time.Duration(cfg.Lease))
		n, err = live.DeliverDue(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Len(t, hook.Requests(), 1)
		recs, err := List(ctx, db, "INC-1")
		require.NoError(t, err)
		require.Equal(t, StateDelivered, recs[0].State)
		require.Equal(t, 1, recs[0].Attempts, "the dead sender's claim never marked the page's send as begun: no attempt")

		// Delivered rows are kept for notifications.retention (7 days), then pruned.
		clock.Advance(time.Duration(cfg.Retention) - time.Minute)
		pruned, err := live.Prune(ctx)
		require.NoError(t, err)
		require.Zero(t, pruned)
		clock.Advance(2 * time.Minute)
		pruned, err = live.Prune(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, pruned)
		recs, err = List(ctx, db, "INC-1")
		require.NoError(t, err)
		require.Empty(t, recs)
	})
}

func TestAckToken(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	tok, err := SignAck("key", AckClaims{IncidentID: "INC-2026-0001", User: "alice", Expires: now.Add(time.Hour).Unix()})
	require.NoError(t, err)
	c, err := VerifyAck("key", tok, now)
	require.NoError(t, err)
	require.Equal(t, AckClaims{IncidentID: "INC-2026-0001", User: "alice", Expires: now.Add(time.Hour).Unix()}, c)
	_, err = VerifyAck("key", tok, now.Add(time.Hour))
	require.ErrorIs(t, err, ErrAckTokenExpired)
	_, err = VerifyAck("other", tok, now)
	require.ErrorIs(t, err, ErrAckTokenInvalid)
	_, err = VerifyAck("key", "x"+tok, now)
	require.ErrorIs(t, err, ErrAckTokenInvalid)
	_, err = VerifyAck("key", "garbage", now)
	require.ErrorIs(t, err, ErrAckTokenInvalid)
}

func TestRetryAfterAndBackoff(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	require.Equal(t, 30*time.Second, retryAfter("30", now))
	require.Equal(t, 90*time.Second, retryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now))
	require.Equal(t, time.Duration(0), retryAfter("soon", now))
	cfg := &Config{}
	require.NoError(t, cfg.Validate())
	for attempt, want := range map[int]time.Duration{1: 10 * time.Second, 2: 20 * time.Second, 3: 40 * time.Second, 7: 10 * time.Minute, 20: 10 * time.Minute} {
		require.Equal(t, want, backoff(cfg, attempt), "attempt %d", attempt)
	}
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct{ name, yml, err string }{
		{"unknown field", "smtp: {}", "field smtp not found in type notify.plain"},
		{"both secret and file", "webhook: {url: 'http://x', secret: a, secret_file: b}", "notifications: webhook: at most one of secret and secret_file may be set"},
		{"webhook needs secret", "webhook: {url: 'http://x'}", "notifications: webhook: secret or secret_file is required"},
		{"bad url", "slack: {webhook_url: 'ftp://x'}", "notifications: slack: webhook_url \"ftp://x\" is not an http(s) URL"},
		{"bad smarthost", "email: {smarthost: mail.example.com, from: a@b.c}", "notifications: email: smarthost: \"mail.example.com\": want host:port"},
		{"bad from", "email: {smarthost: 'mail:25', from: 'nobody'}", "notifications: email: from \"nobody\": mail: missing '@' or angle-addr"},
		{"sms needs from", "sms: {url: 'http://x'}", "notifications: sms: from is required"},
		{"bad template", "body_template: '{{ .Nope }}'", "notifications: body_template: template: body:1:3: executing \"body\" at <.Nope>: can't evaluate field Nope in type notify.TemplateData"},
		{"backoff order", "min_backoff: 1m\nmax_backoff: 1s", "notifications: min_backoff 1m and max_backoff 1s: want 0 < min_backoff <= max_backoff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			dec := yaml.NewDecoder(strings.NewReader(tc.yml))
			dec.KnownFields(true)
			err := dec.Decode(&c)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.err)
		})
	}
}

// PagerDuty keeps an incident's state from its events: an acknowledge
// that overtakes the trigger still being retried is dropped there (no
// such incident yet), and the trigger then opens an incident that stays
// open. A PagerDuty message of an incident waits for the earlier ones of
// the incident, and the wait costs it no attempt; Slack's do not wait
// (the webhook's wait for failed ones: TestWebhookWaitsForFailedMessage).
func TestPagerDutyEventsInOrder(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations, jobs.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)
		clk := clock.NewManual(t0)
		svc, incID := openIncident(t, db, t0)
		pd := newEndpoint(t, answer{code: 500})
		slack := newEndpoint(t, answer{code: 500})
		dir := t.TempDir()
		writeFile(t, dir, "pd_key", "R0UTINGKEY")
		var cfg Config
		dec := yaml.NewDecoder(strings.NewReader(fmt.Sprintf("min_backoff: 10s\nmax_backoff: 10s\npagerduty: {url: %q, routing_key_file: pd_key}\nslack: {webhook_url: %q}\n", pd.URL, slack.URL+"/hook")))
		dec.KnownFields(true)
		require.NoError(t, dec.Decode(&cfg))
		cfg.SetBaseDir(dir)
		s := NewSender(db, &cfg, clk, svc, nil, prometheus.NewRegistry())
		enqueue := func(ch, event string) {
			t.Helper()
			_, err := Enqueue(ctx, db, clk.Now(), incID+"/"+ch+"/"+event, &Message{IncidentID: incID, Channel: ch, Event: event,
				Subject: event, Body: event, Severity: "CRITICAL", Time: clk.Now()})
			require.NoError(t, err)
		}
		events := func(e *endpoint) []string {
			var out []string
			for _, r := range e.Requests() {
				var b struct {
					Action string `json:"event_action"`
					Event  string `json:"event"`
					Text   string `json:"text"`
				}
				require.NoError(t, json.Unmarshal(r.Body, &b))
				out = append(out, b.Action+b.Event+b.Text)
			}
			return out
		}
		deliver := func() {
			t.Helper()
			_, err := s.DeliverDue(ctx)
			require.NoError(t, err)
		}

		enqueue(ChannelPagerDuty, EventTrigger)
		enqueue(ChannelSlack, EventTrigger)
		deliver() // both answered 500: retried 10 s later
		require.Equal(t, []string{"trigger"}, events(pd))
		clk.Advance(time.Second)
		enqueue(ChannelPagerDuty, EventAcknowledge)
		enqueue(ChannelSlack, EventAcknowledge)
		deliver()
		require.Equal(t, []string{"trigger"}, events(pd), "the acknowledge waits for the trigger")
		require.Equal(t, []string{"trigger", "acknowledge"}, events(slack), "other channels do not wait")

		clk.Advance(9 * time.Second) // the trigger's retry
		deliver()
		require.Equal(t, []string{"trigger", "trigger"}, events(pd), "sent, and the acknowledge still waits while it is")
		clk.Advance(time.Second)
		deliver()
		require.Equal(t, []string{"trigger", "trigger", "acknowledge"}, events(pd))

		recs, err := List(ctx, db, incID)
		require.NoError(t, err)
		for _, r := range recs {
			if r.Channel == ChannelPagerDuty {
				require.Equal(t, StateDelivered, r.State, r.Key)
				if strings.HasSuffix(r.Key, EventAcknowledge) {
					require.Equal(t, 1, r.Attempts, "waiting costs no attempt")
				}
			}
		}
	})
}

// A webhook receiver keeps state from the events too: an acknowledge must
// not reach it before the trigger that is being retried. A webhook message
// waits, without an attempt, for an earlier one of its incident that
// failed (backing off, or sent again in the same claim) until that one is
// delivered; fresh messages of an incident go out in one claim, in order.
func TestWebhookWaitsForFailedMessage(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations, jobs.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)
		clk := clock.NewManual(t0)
		svc, incID := openIncident(t, db, t0)
		hook := newEndpoint(t, answer{code: 500}, answer{code: 503}) // then 200
		cfg := &Config{MinBackoff: model.Duration(10 * time.Second), MaxBackoff: model.Duration(time.Minute),
			Webhook: &WebhookConfig{URL: hook.URL, Secret: commoncfg.Secret("k")}}
		require.NoError(t, cfg.Validate())
		s := NewSender(db, cfg, clk, svc, nil, prometheus.NewRegistry())
		enqueue := func(key, event string) {
			t.Helper()
			_, err := Enqueue(ctx, db, clk.Now(), incID+"/webhook/"+key, &Message{IncidentID: incID, Channel: ChannelWebhook,
				Event: event, Subject: event, Body: event, Severity: "CRITICAL", Time: clk.Now()})
			require.NoError(t, err)
		}
		events := func() []string {
			var out []string
			for _, r := range hook.Requests() {
				var b struct {
					Event string `json:"event"`
				}
				require.NoError(t, json.Unmarshal(r.Body, &b))
				out = append(out, b.Event)
			}
			return out
		}
		record := func(key string) Record {
			t.Helper()
			recs, err := List(ctx, db, incID)
			require.NoError(t, err)
			for _, r := range recs {
				if r.Key == incID+"/webhook/"+key {
					return r
				}
			}
			t.Fatalf("no message %s", key)
			return Record{}
		}
		steps := []struct {
			advance time.Duration
			enqueue []string // keys, also the events
			sent    int      // DeliverDue's count
			events  []string // all requests so far
			ack     string   // the acknowledge's state after the step
		}{
			{enqueue: []string{EventTrigger}, sent: 1, events: []string{"trigger"}},
			// The trigger backs off until t0+10s: the acknowledge waits for it.
			{advance: time.Second, enqueue: []string{EventAcknowledge}, sent: 0, events: []string{"trigger"}, ack: StatePending},
			// Both due: the trigger is sent (and fails again, backing off
			// until t0+30s); the acknowledge is put back behind it...
			{advance: 9 * time.Second, sent: 1, events: []string{"trigger", "trigger"}, ack: StatePending},
			// ... and then waits for its retry.
			{sent: 0, events: []string{"trigger", "trigger"}, ack: StatePending},
			{advance: 19 * time.Second, sent: 0, events: []string{"trigger", "trigger"}, ack: StatePending},
			// The endpoint is back: the trigger is delivered, then the acknowledge.
			{advance: time.Second, sent: 1, events: []string{"trigger", "trigger", "trigger"}, ack: StatePending},
			{sent: 1, events: []string{"trigger", "trigger", "trigger", "acknowledge"}, ack: StateDelivered},
			// Fresh messages of the incident go out in one claim, one
			// after another in the order they were written.
			{advance: time.Second, enqueue: []string{EventTrigger + "-2", EventResolve}, sent: 2, events: []string{"trigger", "trigger", "trigger", "acknowledge", "trigger-2", "resolve"}, ack: StateDelivered},
		}
		for i, st := range steps {
			clk.Advance(st.advance)
			for _, k := range st.enqueue {
				enqueue(k, k)
			}
			n, err := s.DeliverDue(ctx)
			require.NoError(t, err)
			require.Equal(t, st.sent, n, "step %d: messages sent", i)
			require.Equal(t, st.events, events(), "step %d", i)
			if st.ack != "" {
				require.Equal(t, st.ack, record(EventAcknowledge).State, "step %d", i)
			}
		}
		require.Equal(t, 3, record(EventTrigger).Attempts)
		require.Equal(t, 1, record(EventAcknowledge).Attempts, "waiting costs no attempt")
	})
}
