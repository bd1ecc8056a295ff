package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

func decodeConfig(t *testing.T, yml string) *Config {
	t.Helper()
	var cfg Config
	dec := yaml.NewDecoder(strings.NewReader(yml))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&cfg))
	return &cfg
}

// TestTeamsMattermostAndGenericProvider delivers to Microsoft Teams and
// Mattermost incoming webhooks and to a non-Twilio SMS provider (JSON body
// template, bearer token, custom header), all real HTTP servers, and checks
// each payload.
func TestTeamsMattermostAndGenericProvider(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations, jobs.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)
		clock := clock.NewManual(t0)
		svc, incID := openIncident(t, db, t0)

		teams := newEndpoint(t, answer{code: 429, retryAfter: "5"}) // Teams throttles with 429
		mm := newEndpoint(t)
		sms := newEndpoint(t)
		push := newEndpoint(t)
		dir := t.TempDir()
		writeFile(t, dir, "teams_url", teams.URL+"/workflows/abc/triggers/manual/paths/invoke?sig=s3cret")
		writeFile(t, dir, "sms_token", "tok-123")
		cfg := decodeConfig(t, fmt.Sprintf(`
teams: {webhook_url_file: teams_url}
mattermost: {webhook_url: %q, channel: incidents, username: sred, icon_url: "https://sred.example.com/icon.png"}
sms:
  url: %q
  bearer_token_file: sms_token
  headers: {X-Api-Version: "2"}
  body_template: '{"to": {{ json .To }}, "sender": "SRED", "text": {{ json .Text }}, "ref": {{ json .IncidentID }}}'
push:
  url: %q
  username: sred
  password: pw
  content_type: text/plain
  body_template: '{{ .Subject }} -> {{ .AckURL }}'
`, mm.URL+"/hooks/xyz", sms.URL+"/v1/messages", push.URL+"/topic"))
		cfg.SetBaseDir(dir)

		base := Message{IncidentID: incID, Event: EventTrigger, Subject: "[CRITICAL] Incident " + incID + ": API \"down\"",
			Body: "🚨 [CRITICAL] Incident: API down\nID: " + incID + "\n", Title: "API down", Service: "api", Severity: "CRITICAL",
			URL: "https://sred.example.com/incidents/" + incID, AckURL: "https://sred.example.com/ack/tok", Time: t0}
		for _, m := range []struct {
			ch, user, to string
			mentions     []string
		}{
			{ChannelTeams, "", "", []string{"alice@example.com"}},
			{ChannelMattermost, "", "", []string{"alice", "bob"}},
			{ChannelSMS, "alice", "+15550000001", nil},
			{ChannelPush, "alice", "alice-phone", nil},
		} {
			msg := base
			msg.Channel, msg.User, msg.To, msg.Mentions = m.ch, m.user, m.to, m.mentions
			_, err := Enqueue(ctx, db, t0, incID+"/"+m.ch, &msg)
			require.NoError(t, err)
		}
		s := NewSender(db, cfg, clock, svc, nil, nil)
		_, err := s.DeliverDue(ctx)
		require.NoError(t, err)
		clock.Advance(5 * time.Second)
		_, err = s.DeliverDue(ctx)
		require.NoError(t, err)
		recs, err := List(ctx, db, incID)
		require.NoError(t, err)
		for _, r := range recs {
			require.Equal(t, StateDelivered, r.State, r.Channel)
		}

		// Teams: one Adaptive Card with heading, body, facts, mention and buttons.
		require.Len(t, teams.Requests(), 2, "429 then delivered after Retry-After")
		tr := teams.Requests()[1]
		require.Equal(t, "application/json", tr.Header.Get("Content-Type"))
		var tm teamsJSON
		require.NoError(t, json.Unmarshal(tr.Body, &tm), string(tr.Body))
		require.Equal(t, "message", tm.Type)
		require.Len(t, tm.Attachments, 1)
		card := tm.Attachments[0].Content
		require.Equal(t, "application/vnd.microsoft.card.adaptive", tm.Attachments[0].ContentType)
		require.Equal(t, "AdaptiveCard", card.Type)
		require.Equal(t, "1.4", card.Version)
		// The subject and body are escaped Markdown (TestChatChannelsEscapeAlertText).
		require.Equal(t, `\[CRITICAL\] Incident `+incID+`: API "down"`, card.Body[0].Text)
		require.Equal(t, "Attention", card.Body[0].Color)
		require.Equal(t, "🚨 \\[CRITICAL\\] Incident: API down\nID: "+incID, card.Body[1].Text)
		require.Equal(t, []map[string]string{{"title": "Incident", "value": incID}, {"title": "Severity", "value": "CRITICAL"}, {"title": "Service", "value": "api"}}, card.Body[2].Facts)
		require.Equal(t, "Paging: <at>alice@example.com</at>", card.Body[3].Text)
		require.Len(t, card.MSTeams.Entities, 1)
		require.Equal(t, "mention", card.MSTeams.Entities[0].Type)
		require.Equal(t, "<at>alice@example.com</at>", card.MSTeams.Entities[0].Text)
		require.Equal(t, map[string]string{"id": "alice@example.com", "name": "alice@example.com"}, card.MSTeams.Entities[0].Mentioned)
		require.Equal(t, []map[string]string{
			{"type": "Action.OpenUrl", "title": "Acknowledge", "url": base.AckURL},
			{"type": "Action.OpenUrl", "title": "Open incident", "url": base.URL},
		}, card.Actions)

		// Mattermost: Markdown text with mentions and links, overrides.
		require.Len(t, mm.Requests(), 1)
		var mp map[string]string
		require.NoError(t, json.Unmarshal(mm.Requests()[0].Body, &mp))
		require.Equal(t, map[string]string{
			"text": "#### \\[CRITICAL\\] Incident " + incID + ": API \"down\"\n🚨 \\[CRITICAL\\] Incident: API down\nID: " + incID + "\nPaging: @alice @bob\n" +
				"[Acknowledge](" + base.AckURL + ") · [Open incident](" + base.URL + ")",
			"channel": "incidents", "username": "sred", "icon_url": "https://sred.example.com/icon.png",
		}, mp)

		// SMS through a JSON provider with a bearer token and a header.
		require.Len(t, sms.Requests(), 1)
		sr := sms.Requests()[0]
		require.Equal(t, "Bearer tok-123", sr.Header.Get("Authorization"))
		require.Equal(t, "2", sr.Header.Get("X-Api-Version"))
		require.Equal(t, "application/json", sr.Header.Get("Content-Type"))
		var sp map[string]string
		require.NoError(t, json.Unmarshal(sr.Body, &sp), string(sr.Body))
		require.Equal(t, map[string]string{"to": "+15550000001", "sender": "SRED", "text": base.Subject + "\nAck: " + base.AckURL, "ref": incID}, sp)

		// Push with a plain-text template and basic auth.
		pr := push.Requests()[0]
		require.Equal(t, "text/plain", pr.Header.Get("Content-Type"))
		require.Equal(t, "Basic c3JlZDpwdw==", pr.Header.Get("Authorization"))
		require.Equal(t, base.Subject+" -> "+base.AckURL, string(pr.Body))
	})
}

func TestProviderAndChatConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, yml, err string }{
		{"teams needs url", "teams: {}", "notifications: teams: webhook_url or webhook_url_file is required"},
		{"teams url", "teams: {webhook_url: 'outlook.office.com/webhook'}", `notifications: teams: webhook_url "outlook.office.com/webhook" is not an http(s) URL`},
		{"mattermost both", "mattermost: {webhook_url: 'http://x', webhook_url_file: f}", "notifications: mattermost: at most one of webhook_url and webhook_url_file may be set"},
		{"mattermost icon", "mattermost: {webhook_url: 'http://x', icon_url: 'icon.png'}", `notifications: mattermost: icon_url "icon.png" is not an http(s) URL`},
		{"basic and bearer", "sms: {url: 'http://x', from: '+1555', username: a, bearer_token: b}", "notifications: sms: at most one of basic auth (username, password) and bearer_token may be set"},
		{"bearer twice", "push: {url: 'http://x', bearer_token: a, bearer_token_file: b}", "notifications: push: at most one of bearer_token and bearer_token_file may be set"},
		{"auth header", "push: {url: 'http://x', headers: {authorization: x}}", "notifications: push: headers: Authorization is set by the provider's auth and content_type fields"},
		{"bad header", "push: {url: 'http://x', headers: {'X Key': x}}", `notifications: push: headers: invalid header name "X Key"`},
		{"template syntax", "sms: {url: 'http://x', body_template: '{{ .To '}", "notifications: sms: body_template: template: body:1: unclosed action"},
		{"template field", "sms: {url: 'http://x', body_template: '{{ .Phone }}'}", `notifications: sms: body_template: template: body:1:3: executing "body" at <.Phone>: can't evaluate field Phone in type notify.ProviderData`},
		{"content type without template", "phone: {url: 'http://x', from: '+1555', content_type: application/json}", "notifications: phone: content_type needs body_template (the default body is a form)"},
		{"form needs from", "phone: {url: 'http://x'}", "notifications: phone: from is required by the default (Twilio-compatible) form body"},
		{"webhook max_bytes negative", "webhook: {url: 'http://x', secret: s, max_bytes: -1}", "notifications: webhook: max_bytes -1: want at least 4096 (unset: 262144)"},
		{"webhook max_bytes small", "webhook: {url: 'http://x', secret: s, max_bytes: 4095}", "notifications: webhook: max_bytes 4095: want at least 4096 (unset: 262144)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			dec := yaml.NewDecoder(strings.NewReader(tc.yml))
			dec.KnownFields(true)
			require.EqualError(t, dec.Decode(&c), tc.err)
		})
	}
	// A template provider does not need from.
	c := decodeConfig(t, "sms: {url: 'http://x', body_template: '{{ json .Text }}'}")
	require.Equal(t, "application/json", c.SMS.ContentType)
	require.True(t, c.Configured(ChannelSMS))
}

// TestPagerDutySummaryCutOnRuneBoundary: PagerDuty takes a summary of at
// most 1024 characters; a longer subject of multi-byte characters is cut on
// a UTF-8 boundary and ends with "…", not with half a character that
// arrives as U+FFFD.
func TestPagerDutySummaryCutOnRuneBoundary(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations, jobs.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)
		clock := clock.NewManual(t0)
		svc, incID := openIncident(t, db, t0)
		pd := newEndpoint(t)
		cfg := decodeConfig(t, fmt.Sprintf("pagerduty: {url: %q, routing_key: k}\n", pd.URL+"/v2/enqueue"))
		subject := "[CRITICAL] " + strings.Repeat("データベース", 100) // 1,811 bytes
		msg := Message{IncidentID: incID, Channel: ChannelPagerDuty, Event: EventTrigger, Subject: subject, Severity: "CRITICAL", Service: "api", Time: t0}
		_, err := Enqueue(ctx, db, t0, incID+"/pd", &msg)
		require.NoError(t, err)
		_, err = NewSender(db, cfg, clock, svc, nil, nil).DeliverDue(ctx)
		require.NoError(t, err)
		require.Len(t, pd.Requests(), 1)
		var ev struct {
			Payload struct {
				Summary string `json:"summary"`
			} `json:"payload"`
		}
		require.NoError(t, json.Unmarshal(pd.Requests()[0].Body, &ev))
		require.NotContains(t, ev.Payload.Summary, "\uFFFD")
		require.LessOrEqual(t, len(ev.Payload.Summary), 1024)
		require.True(t, strings.HasSuffix(ev.Payload.Summary, "…"), ev.Payload.Summary[len(ev.Payload.Summary)-12:])
		require.True(t, strings.HasPrefix(subject, strings.TrimSuffix(ev.Payload.Summary, "…")))
	})
}
