package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	commoncfg "github.com/prometheus/common/config"

	"github.com/rootuip/sre/pkg/limits"
)

// DeliveryError tells the outbox whether and when to retry.
type DeliveryError struct {
	Err       error
	Retryable bool
	// RetryAfter is the delay the receiver asked for (429 Retry-After).
	RetryAfter time.Duration
	// Status is the receiver's HTTP status (0: no HTTP answer).
	Status int
}

func (e *DeliveryError) Error() string { return e.Err.Error() }
func (e *DeliveryError) Unwrap() error { return e.Err }

func permanent(err error) error { return &DeliveryError{Err: err} }
func retryable(err error) error { return &DeliveryError{Err: err, Retryable: true} }

// checkResponse classifies an HTTP answer: 2xx is delivered; 429 and 408 are
// retried (after Retry-After when given); 5xx is retried with backoff; any
// other status is a permanent failure.
func checkResponse(resp *http.Response, now time.Time) error {
	if resp.StatusCode/100 == 2 {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	err := fmt.Errorf("unexpected status %s: %s", resp.Status, strings.TrimSpace(string(body)))
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout:
		return &DeliveryError{Err: err, Retryable: true, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), now), Status: resp.StatusCode}
	case resp.StatusCode/100 == 5:
		return &DeliveryError{Err: err, Retryable: true, Status: resp.StatusCode}
	}
	return &DeliveryError{Err: err, Status: resp.StatusCode}
}

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// deliverer sends messages for one configuration.
type deliverer struct {
	cfg    *Config
	client *http.Client
	now    func() time.Time
}

func (d *deliverer) deliver(ctx context.Context, m *Message) error {
	m = displaySafe(m) // bidirectional and invisible characters shown (visible.go)
	switch m.Channel {
	case ChannelEmail:
		return d.email(ctx, m)
	case ChannelSlack:
		return d.slack(ctx, m)
	case ChannelTeams:
		return d.teams(ctx, m)
	case ChannelMattermost:
		return d.mattermost(ctx, m)
	case ChannelWebhook:
		return d.webhook(ctx, m)
	case ChannelPagerDuty:
		return d.pagerduty(ctx, m)
	case ChannelSMS, ChannelPhone, ChannelPush:
		return d.provider(ctx, m)
	}
	return permanent(fmt.Errorf("unknown channel %q", m.Channel))
}

func notConfigured(ch string) error {
	return permanent(fmt.Errorf("channel %s is not configured (notifications.%s)", ch, ch))
}

func (d *deliverer) post(ctx context.Context, rawURL, contentType string, body []byte, hdr http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		// A URL that does not parse: say why, not what it is (it may hold
		// a secret, and the error is the notification's last_error).
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("invalid URL: %w", ue.Err)
		}
		return permanent(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "sred")
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := d.client.Do(req)
	if err != nil {
		// Network errors may succeed later. Strip the URL: it may hold a secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return retryable(fmt.Errorf("post: %w", err))
	}
	defer resp.Body.Close()
	defer io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16)) //nolint:errcheck
	return checkResponse(resp, d.now())
}

// --- Slack -----------------------------------------------------------------

func (d *deliverer) slack(ctx context.Context, m *Message) error {
	sc := d.cfg.Slack
	if sc == nil {
		return notConfigured(ChannelSlack)
	}
	u, err := d.cfg.secret(sc.WebhookURL, sc.WebhookURLFile)
	if err != nil {
		return retryable(fmt.Errorf("slack: %w", err))
	}
	// The subject and body are alert text: escaped in every text field,
	// the top-level text (the notification's fallback) as well as the
	// block, and cut to Slack's limits (fit.go). The mentions are sred's,
	// of the paged users: never cut.
	subj, cut := fit(m.Subject, slackSubjectMax, slackCost)
	subject := slackEscape(subj)
	if cut {
		subject += cutMark
	}
	var mentions []string
	for _, id := range m.Mentions {
		mentions = append(mentions, "<@"+id+">")
	}
	paging := ""
	if len(mentions) > 0 {
		paging = "\nPaging: " + strings.Join(mentions, " ")
	}
	var mentionBlocks []map[string]any
	if size(paging, utf16Units) > slackMentionsInline {
		paging = ""
		mentionBlocks = slackMentionBlocks(mentions, slackMaxBlocks-2)
	}
	head := "*" + subject + "*\n"
	note := cutNote("Slack", m, func(u, text string) string { return "<" + u + "|" + text + ">" })
	body, cut := fit(strings.TrimSpace(m.Body), slackSectionMax-size(head, utf16Units)-size(paging, utf16Units), slackCost)
	if cut {
		body, _ = fit(body, slackSectionMax-size(head, utf16Units)-size(paging, utf16Units)-size(note, utf16Units), slackCost)
		body = slackEscape(body) + note
	} else {
		body = slackEscape(body)
	}
	section := head + body + paging
	blocks := []map[string]any{{"type": "section", "text": map[string]string{"type": "mrkdwn", "text": section}}}
	blocks = append(blocks, mentionBlocks...)
	var buttons []map[string]any
	if m.AckURL != "" {
		buttons = append(buttons, map[string]any{"type": "button", "style": "danger", "text": map[string]string{"type": "plain_text", "text": "Acknowledge"}, "url": m.AckURL})
	}
	if m.URL != "" {
		buttons = append(buttons, map[string]any{"type": "button", "text": map[string]string{"type": "plain_text", "text": "Open incident"}, "url": m.URL})
	}
	if len(buttons) > 0 {
		blocks = append(blocks, map[string]any{"type": "actions", "elements": buttons})
	}
	// No previews of the links in alert text (a remote image would load
	// in every client that shows the message).
	payload := map[string]any{"text": subject, "blocks": blocks, "unfurl_links": false, "unfurl_media": false}
	if sc.Channel != "" {
		payload["channel"] = sc.Channel
	}
	if sc.Username != "" {
		payload["username"] = sc.Username
	}
	b, _ := json.Marshal(payload)
	if err := d.post(ctx, u, "application/json", b, nil); err != nil {
		return fmt.Errorf("slack: %w", err)
	}
	return nil
}

// slackMentionBlocks writes the mentions of many paged users in section
// blocks of at most slackSectionMax characters each, at most max blocks,
// the last saying how many more were paged when they do not all fit.
func slackMentionBlocks(mentions []string, max int) []map[string]any {
	var blocks []map[string]any
	text := "Paging:"
	for i, at := range mentions {
		if size(text, utf16Units)+1+len(at) > slackSectionMax-len(" and 99999 more") {
			if len(blocks) == max-1 {
				text += fmt.Sprintf(" and %d more", len(mentions)-i)
				break
			}
			blocks = append(blocks, map[string]any{"type": "section", "text": map[string]string{"type": "mrkdwn", "text": text}})
			text = ""
		}
		if text != "" {
			text += " "
		}
		text += at
	}
	return append(blocks, map[string]any{"type": "section", "text": map[string]string{"type": "mrkdwn", "text": text}})
}

// --- Microsoft Teams -----------------------------------------------------

// teamsColor is the Adaptive Card colour of a severity's heading.
func teamsColor(sev string) string {
	switch strings.ToUpper(sev) {
	case "CRITICAL", "HIGH":
		return "Attention"
	case "MEDIUM":
		return "Warning"
	}
	return "Default"
}

// teams posts a message with one Adaptive Card (schema 1.4), the payload
// that both Teams Workflows webhooks and legacy incoming webhooks accept.
// Mentions are Teams user principal names (oncall.users[].teams).
func (d *deliverer) teams(ctx context.Context, m *Message) error {
	tc := d.cfg.Teams
	if tc == nil {
		return notConfigured(ChannelTeams)
	}
	u, err := d.cfg.secret(tc.WebhookURL, tc.WebhookURLFile)
	if err != nil {
		return retryable(fmt.Errorf("teams: %w", err))
	}
	b := teamsPayload(m)
	if err := d.post(ctx, u, "application/json", b, nil); err != nil {
		return fmt.Errorf("teams: %w", err)
	}
	return nil
}

// teamsPayload is the message with one Adaptive Card, at most
// teamsMaxBytes: the heading, the summary and the service are cut to
// their own bounds, the message to what is left of the payload's.
func teamsPayload(m *Message) []byte {
	subj, cut := fit(m.Subject, teamsSubjectMax, teamsCost)
	subject := escapeText(subj, teamsEscape)
	summary, _ := fit(m.Subject, teamsSubjectMax, jsonCost)
	if cut {
		subject += cutMark
		summary += cutMark
	}
	svc, cut := fit(m.Service, teamsFactMax, teamsCost)
	service := escapeText(svc, teamsEscape)
	if cut {
		service += cutMark
	}
	// TextBlocks and facts are Markdown: the alert text in them is
	// escaped, sred's links in the body are kept.
	body := []map[string]any{
		{"type": "TextBlock", "text": subject, "weight": "Bolder", "size": "Medium", "wrap": true, "color": teamsColor(m.Severity)},
		{"type": "TextBlock", "text": "", "wrap": true},
	}
	fact := func(title, value string) map[string]string {
		return map[string]string{"title": title, "value": escapeText(value, teamsEscape)}
	}
	facts := []map[string]string{fact("Incident", m.IncidentID), fact("Severity", m.Severity)}
	if m.Service != "" {
		facts = append(facts, map[string]string{"title": "Service", "value": service})
	}
	body = append(body, map[string]any{"type": "FactSet", "facts": facts})
	card := map[string]any{
		"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
		"type":    "AdaptiveCard",
		"version": "1.4",
		"msteams": map[string]any{"width": "Full"},
	}
	if len(m.Mentions) > 0 {
		text, entities := teamsMentions(m.Mentions)
		body = append(body, map[string]any{"type": "TextBlock", "text": text, "wrap": true})
		card["msteams"].(map[string]any)["entities"] = entities
	}
	card["body"] = body
	var actions []map[string]string
	if m.AckURL != "" {
		actions = append(actions, map[string]string{"type": "Action.OpenUrl", "title": "Acknowledge", "url": m.AckURL})
	}
	if m.URL != "" {
		actions = append(actions, map[string]string{"type": "Action.OpenUrl", "title": "Open incident", "url": m.URL})
	}
	if actions != nil {
		card["actions"] = actions
	}
	payload := map[string]any{
		"type":        "message",
		"summary":     summary,
		"attachments": []map[string]any{{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": nil, "content": card}},
	}
	// The payload without the message's text: what is left is the text's.
	empty, _ := json.Marshal(payload)
	room := teamsMaxBytes - len(empty)
	text, cut := fit(strings.TrimSpace(m.Body), room, teamsCost)
	if cut {
		note := cutNote("Teams", m, func(u, text string) string { return "[" + text + "](" + u + ")" })
		text, _ = fit(text, room-size(note, jsonCost), teamsCost)
		text = escapeText(text, teamsEscape, m.URL, m.AckURL) + note
	} else {
		text = escapeText(text, teamsEscape, m.URL, m.AckURL)
	}
	body[1]["text"] = text
	b, _ := json.Marshal(payload)
	return b
}

// teamsMentions returns the "Paging:" text and the mention entities of
// the paged users, at most teamsMentionsMax bytes of JSON together: the
// mentions that do not fit are left out, the text ending with how many
// more were paged (as Slack's last mention block does).
func teamsMentions(upns []string) (string, []map[string]any) {
	text := "Paging:"
	var entities []map[string]any
	used := size(text, jsonCost)
	for i, upn := range upns {
		at := "<at>" + upn + "</at>"
		e := map[string]any{"type": "mention", "text": at, "mentioned": map[string]string{"id": upn, "name": upn}}
		eb, _ := json.Marshal(e)
		c := 1 + size(at, jsonCost) + len(eb) + 1 // the space, the text, the entity and its comma
		if used+c > teamsMentionsMax-len(" and 99999 more") {
			return text + fmt.Sprintf(" and %d more", len(upns)-i), entities
		}
		used += c
		text += " " + at
		entities = append(entities, e)
	}
	return text, entities
}

// --- Mattermost --------------------------------------------------------------

// mattermost posts Markdown text to an incoming webhook; paged users are
// @-mentioned by their Mattermost username (oncall.users[].mattermost).
// The subject and body are escaped (mattermostEscape), sred's links in the
// body kept.
func (d *deliverer) mattermost(ctx context.Context, m *Message) error {
	mc := d.cfg.Mattermost
	if mc == nil {
		return notConfigured(ChannelMattermost)
	}
	u, err := d.cfg.secret(mc.WebhookURL, mc.WebhookURLFile)
	if err != nil {
		return retryable(fmt.Errorf("mattermost: %w", err))
	}
	// The heading, the mentions and the links are kept; the message gets
	// what is left of a post's characters (fit.go).
	subj, cut := fit(m.Subject, mattermostSubjectMax, mattermostCost)
	head := "#### " + escapeText(subj, mattermostEscape)
	if cut {
		head += cutMark
	}
	var tail strings.Builder
	if len(m.Mentions) > 0 {
		var at []string
		for _, name := range m.Mentions {
			at = append(at, "@"+name)
		}
		tail.WriteString("Paging: " + strings.Join(at, " ") + "\n")
	}
	var links []string
	if m.AckURL != "" {
		links = append(links, "[Acknowledge]("+m.AckURL+")")
	}
	if m.URL != "" {
		links = append(links, "[Open incident]("+m.URL+")")
	}
	if links != nil {
		tail.WriteString(strings.Join(links, " · ") + "\n")
	}
	room := mattermostMaxRunes - utf8.RuneCountInString(head) - 2 - utf8.RuneCountInString(tail.String())
	text, cut := fit(strings.TrimSpace(m.Body), room, mattermostCost)
	if cut {
		note := cutNote("Mattermost", m, func(u, text string) string { return "[" + text + "](" + u + ")" })
		text, _ = fit(text, room-utf8.RuneCountInString(note), mattermostCost)
		text = escapeText(text, mattermostEscape, m.URL, m.AckURL) + note
	} else {
		text = escapeText(text, mattermostEscape, m.URL, m.AckURL)
	}
	var b strings.Builder
	b.WriteString(head + "\n" + text + "\n" + tail.String())
	payload := map[string]any{"text": strings.TrimSpace(b.String())}
	if mc.Channel != "" {
		payload["channel"] = mc.Channel
	}
	if mc.Username != "" {
		payload["username"] = mc.Username
	}
	if mc.IconURL != "" {
		payload["icon_url"] = mc.IconURL
	}
	body, _ := json.Marshal(payload)
	if err := d.post(ctx, u, "application/json", body, nil); err != nil {
		return fmt.Errorf("mattermost: %w", err)
	}
	return nil
}

// --- generic webhook ---------------------------------------------------------

// Webhook headers.
const (
	SignatureHeader = "X-Sre-Signature"
	TimestampHeader = "X-Sre-Timestamp"
)

// WebhookPayload is the JSON document POSTed by the webhook channel.
type WebhookPayload struct {
	Version string `json:"version"`
	*Message
	// Truncated says what was cut to fit max_bytes; absent when nothing
	// was (as Alertmanager's truncatedAlerts for its max_alerts).
	Truncated *WebhookTruncated `json:"truncated,omitempty"`
}

// WebhookTruncated says what a webhook document left out to fit
// max_bytes.
type WebhookTruncated struct {
	// Labels and Mentions are how many label pairs (the last by name)
	// and mentions (the last paged) were left out.
	Labels   int `json:"labels,omitempty"`
	Mentions int `json:"mentions,omitempty"`
	// Text: the subject, the title, the service or the body was cut,
	// ending with "…".
	Text bool `json:"text,omitempty"`
}

// webhookPayload is the webhook's document, at most max bytes: when the
// whole message is larger, the subject, title and service are cut to
// max/16 bytes each, the mentions to max/8, the labels to max/4 (whole
// pairs, in the order of their names) and the body to what is left. The
// notification is always sent: a message whose fixed fields alone are
// over max goes out with them.
func webhookPayload(m *Message, max int) ([]byte, error) {
	b, err := json.Marshal(WebhookPayload{Version: "1", Message: m})
	if err != nil || len(b) <= max {
		return b, err
	}
	c := *m
	tr := &WebhookTruncated{}
	for _, f := range []*string{&c.Subject, &c.Title, &c.Service} {
		if s := fitMarked(*f, max/16, jsonCost); s != *f {
			*f, tr.Text = s, true
		}
	}
	used := 0
	for i, at := range m.Mentions {
		used += size(at, jsonCost) + 3 // quotes and comma
		if used > max/8 {
			c.Mentions, tr.Mentions = m.Mentions[:i], len(m.Mentions)-i
			break
		}
	}
	if len(m.Labels) > 0 {
		used = 0
		c.Labels = map[string]string{}
		for _, k := range slices.Sorted(maps.Keys(m.Labels)) {
			used += size(k, jsonCost) + size(m.Labels[k], jsonCost) + 6 // quotes, colon, comma
			if used > max/4 {
				tr.Labels = len(m.Labels) - len(c.Labels)
				break
			}
			c.Labels[k] = m.Labels[k]
		}
	}
	body := c.Body
	c.Body = ""
	empty, err := json.Marshal(WebhookPayload{Version: "1", Message: &c, Truncated: &WebhookTruncated{Labels: tr.Labels, Mentions: tr.Mentions, Text: true}})
	if err != nil {
		return nil, err
	}
	if room := max - len(empty); room <= len(cutMark) {
		c.Body = ""
	} else {
		c.Body = fitMarked(body, room, jsonCost)
	}
	tr.Text = tr.Text || c.Body != body
	return json.Marshal(WebhookPayload{Version: "1", Message: &c, Truncated: tr})
}

// Sign computes the webhook signature: "sha256=" + hex(HMAC-SHA256(secret,
// timestamp + "." + body)). Receivers recompute it and compare in constant
// time, and reject old timestamps to stop replays.
func Sign(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func (d *deliverer) webhook(ctx context.Context, m *Message) error {
	wc := d.cfg.Webhook
	if wc == nil {
		return notConfigured(ChannelWebhook)
	}
	secret, err := d.cfg.secret(wc.Secret, wc.SecretFile)
	if err != nil {
		return retryable(fmt.Errorf("webhook: %w", err))
	}
	max := wc.MaxBytes
	if max == 0 {
		max = DefaultWebhookMaxBytes
	}
	b, err := webhookPayload(m, max)
	if err != nil {
		return permanent(fmt.Errorf("webhook: %w", err))
	}
	ts := strconv.FormatInt(d.now().Unix(), 10)
	hdr := http.Header{TimestampHeader: {ts}, SignatureHeader: {Sign(secret, ts, b)}}
	if err := d.post(ctx, wc.URL, "application/json", b, hdr); err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	return nil
}

// --- PagerDuty ---------------------------------------------------------------

func pdSeverity(s string) string {
	switch strings.ToUpper(s) {
	case "CRITICAL":
		return "critical"
	case "HIGH":
		return "error"
	case "MEDIUM":
		return "warning"
	}
	return "info"
}

func (d *deliverer) pagerduty(ctx context.Context, m *Message) error {
	pc := d.cfg.PagerDuty
	if pc == nil {
		return notConfigured(ChannelPagerDuty)
	}
	key, err := d.cfg.secret(pc.RoutingKey, pc.RoutingKeyFile)
	if err != nil {
		return retryable(fmt.Errorf("pagerduty: %w", err))
	}
	ev := map[string]any{
		"routing_key":  key,
		"event_action": m.Event,
		"dedup_key":    m.IncidentID,
	}
	if m.Event == EventTrigger {
		// PagerDuty takes at most 1024 characters; cut on a UTF-8
		// boundary, not in the middle of a character.
		summary, _ := limits.Truncate(m.Subject, pagerDutySummaryMax)
		source := m.Service
		if source == "" {
			source = "sred"
		}
		details := map[string]any{"incident_id": m.IncidentID, "level": m.Level, "labels": m.Labels}
		ev["payload"] = map[string]any{
			"summary":        summary,
			"source":         source,
			"severity":       pdSeverity(m.Severity),
			"component":      m.Service,
			"timestamp":      m.Time.UTC().Format(time.RFC3339),
			"custom_details": details,
		}
		var links []map[string]string
		if m.URL != "" {
			links = append(links, map[string]string{"href": m.URL, "text": "Incident " + m.IncidentID})
		}
		if m.AckURL != "" {
			links = append(links, map[string]string{"href": m.AckURL, "text": "Acknowledge in sred"})
		}
		if links != nil {
			ev["links"] = links
		}
	}
	b, _ := json.Marshal(ev)
	if len(b) > pagerDutyEventMax && m.Event == EventTrigger {
		// Labels that make the event larger than PagerDuty takes: each
		// value cut, and if that is not enough, the labels left out (the
		// incident page shows them).
		details := ev["payload"].(map[string]any)["custom_details"].(map[string]any)
		cut := make(map[string]string, len(m.Labels))
		for k, v := range m.Labels {
			cut[k], _ = limits.Truncate(v, pagerDutyLabelMax)
		}
		details["labels"] = cut
		if b, _ = json.Marshal(ev); len(b) > pagerDutyEventMax {
			delete(details, "labels")
			details["labels_omitted"] = fmt.Sprintf("%d labels, too large for PagerDuty: see %s", len(m.Labels), m.URL)
			b, _ = json.Marshal(ev)
		}
	}
	if err := d.post(ctx, pc.URL, "application/json", b, nil); err != nil {
		return fmt.Errorf("pagerduty: %w", err)
	}
	return nil
}

// --- SMS, phone, push --------------------------------------------------------

func (d *deliverer) provider(ctx context.Context, m *Message) error {
	var pc *ProviderConfig
	switch m.Channel {
	case ChannelSMS:
		pc = d.cfg.SMS
	case ChannelPhone:
		pc = d.cfg.Phone
	case ChannelPush:
		pc = d.cfg.Push
	}
	if pc == nil {
		return notConfigured(m.Channel)
	}
	if m.To == "" {
		return permanent(fmt.Errorf("%s: user %q has no contact for this channel", m.Channel, m.User))
	}
	pw, err := d.cfg.secret(pc.Password, pc.PasswordFile)
	if err != nil {
		return retryable(fmt.Errorf("%s: %w", m.Channel, err))
	}
	bearer, err := d.cfg.secret(pc.BearerToken, pc.BearerTokenFile)
	if err != nil {
		return retryable(fmt.Errorf("%s: %w", m.Channel, err))
	}
	hdr := http.Header{}
	for k, v := range pc.Headers {
		hdr.Set(k, v)
	}
	switch {
	case bearer != "":
		hdr.Set("Authorization", "Bearer "+bearer)
	case pc.Username != "" || pw != "":
		r := &http.Request{Header: hdr}
		r.SetBasicAuth(pc.Username, pw)
	}
	var body []byte
	contentType := pc.ContentType
	if pc.BodyTemplate != "" {
		t := pc.body
		if t == nil {
			if t, err = parseProviderTemplate(pc.BodyTemplate); err != nil {
				return permanent(fmt.Errorf("%s: %w", m.Channel, err))
			}
		}
		var b bytes.Buffer
		if err := t.Execute(&b, providerData(m, pc.From)); err != nil {
			return permanent(fmt.Errorf("%s: render body_template: %w", m.Channel, err))
		}
		body = b.Bytes()
		if contentType == "" {
			contentType = "application/json"
		}
	} else {
		body, contentType = []byte(twilioForm(m, pc.From).Encode()), "application/x-www-form-urlencoded"
	}
	if err := d.post(ctx, pc.URL, contentType, body, hdr); err != nil {
		return fmt.Errorf("%s: %w", m.Channel, err)
	}
	return nil
}

// twilioForm is the default provider body: Twilio's Messages (sms) and
// Calls (phone) form fields; push gets Title, Body and Url.
func twilioForm(m *Message, from string) url.Values {
	form := url.Values{"To": {m.To}}
	if from != "" {
		form.Set("From", from)
	}
	switch m.Channel {
	case ChannelSMS:
		form.Set("Body", providerData(m, from).Text)
	case ChannelPhone:
		say, cut := fit(m.Subject, phoneSayMax-1, func(rune) int { return 1 })
		if cut {
			say += cutMark
		}
		form.Set("Twiml", "<Response><Say>"+xmlEscape(say)+"</Say></Response>")
	case ChannelPush:
		title, cut := fit(m.Subject, pushTitleMax, bytesCost)
		if cut {
			title, _ = fit(title, pushTitleMax-len(cutMark), bytesCost)
			title += cutMark
		}
		form.Set("Title", title)
		body, cut := fit(m.Body, pushBodyMax, bytesCost)
		if cut {
			body, _ = fit(body, pushBodyMax-len(cutMark), bytesCost)
			body += cutMark
		}
		form.Set("Body", body)
		if m.AckURL != "" {
			form.Set("Url", m.AckURL)
		} else if m.URL != "" {
			form.Set("Url", m.URL)
		}
	}
	return form
}

func xmlEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&quot;")
		case '\'':
			b.WriteString("&apos;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// --- email -------------------------------------------------------------------

func splitHostPort(hp string) (string, string, error) {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", "", fmt.Errorf("%q: want host:port", hp)
	}
	if h == "" || p == "" {
		return "", "", fmt.Errorf("%q: want host:port", hp)
	}
	return h, p, nil
}

// smtpErr classifies an SMTP error: 4xx replies and network errors are
// retried, 5xx replies are permanent.
func smtpErr(stage string, err error) error {
	err = fmt.Errorf("email: %s: %w", stage, err)
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 {
		return permanent(err)
	}
	return retryable(err)
}

func (d *deliverer) email(ctx context.Context, m *Message) error {
	ec := d.cfg.Email
	if ec == nil {
		return notConfigured(ChannelEmail)
	}
	if m.To == "" {
		return permanent(fmt.Errorf("email: user %q has no email address", m.User))
	}
	host, _, _ := splitHostPort(ec.Smarthost)
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", ec.Smarthost)
	if err != nil {
		return retryable(fmt.Errorf("email: connect: %w", err))
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	tlsConfig := func() (*tls.Config, error) {
		tc, err := commoncfg.NewTLSConfig(&ec.TLSConfig)
		if err != nil {
			return nil, permanent(fmt.Errorf("email: tls_config: %w", err))
		}
		if tc.ServerName == "" {
			tc.ServerName = host
		}
		return tc, nil
	}
	implicit := ec.TLS == EmailImplicitTLS
	if implicit {
		tc, err := tlsConfig()
		if err != nil {
			conn.Close()
			return err
		}
		tconn := tls.Client(conn, tc)
		if err := tconn.HandshakeContext(ctx); err != nil {
			conn.Close()
			return retryable(fmt.Errorf("email: TLS handshake: %w", err))
		}
		conn = tconn
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return smtpErr("greeting", err)
	}
	defer c.Close()
	hello := ec.Hello
	if hello == "" {
		hello = "localhost"
	}
	if err := c.Hello(hello); err != nil {
		return smtpErr("EHLO", err)
	}
	if !implicit {
		if ok, _ := c.Extension("STARTTLS"); ok {
			tc, err := tlsConfig()
			if err != nil {
				return err
			}
			if err := c.StartTLS(tc); err != nil {
				return smtpErr("STARTTLS", err)
			}
		} else if ec.RequireTLS == nil || *ec.RequireTLS {
			return retryable(fmt.Errorf("email: %s does not offer STARTTLS and require_tls is true", ec.Smarthost))
		}
	}
	if ec.AuthUsername != "" {
		pw, err := d.cfg.secret(ec.AuthPassword, ec.AuthPasswordFile)
		if err != nil {
			return retryable(fmt.Errorf("email: %w", err))
		}
		if ok, _ := c.Extension("AUTH"); !ok {
			return permanent(fmt.Errorf("email: %s does not offer AUTH", ec.Smarthost))
		}
		// PlainAuth refuses to send the password over a connection without TLS.
		if err := c.Auth(smtp.PlainAuth("", ec.AuthUsername, pw, host)); err != nil {
			return smtpErr("AUTH", err)
		}
	}
	from, _ := parseAddress(ec.From)
	if err := c.Mail(from); err != nil {
		return smtpErr("MAIL FROM", err)
	}
	if err := c.Rcpt(m.To); err != nil {
		return smtpErr("RCPT TO", err)
	}
	w, err := c.Data()
	if err != nil {
		return smtpErr("DATA", err)
	}
	if _, err := w.Write(d.emailBody(ec, m)); err != nil {
		return smtpErr("DATA", err)
	}
	if err := w.Close(); err != nil {
		return smtpErr("DATA", err)
	}
	if err := c.Quit(); err != nil {
		return smtpErr("QUIT", err) // the message was accepted; a failing QUIT is retried conservatively
	}
	return nil
}

func (d *deliverer) emailBody(ec *EmailConfig, m *Message) []byte {
	m = displaySafe(m) // as deliver does; a second time changes nothing
	var b bytes.Buffer
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	hdr := func(k, v string) {
		fmt.Fprintf(&b, "%s: %s\r\n", k, strings.NewReplacer("\r", " ", "\n", " ").Replace(v))
	}
	hdr("From", ec.From)
	hdr("To", m.To)
	// The subject folded: RFC 5322 lines are at most 998 characters and
	// RFC 2047 encoded words at most 75.
	fmt.Fprintf(&b, "Subject: %s\r\n", subjectHeader(strings.NewReplacer("\r", " ", "\n", " ").Replace(m.Subject)))
	hdr("Date", d.now().Format(time.RFC1123Z))
	hdr("Message-Id", fmt.Sprintf("<%s.%s@sred>", hex.EncodeToString(rnd[:]), strings.ReplaceAll(m.IncidentID, " ", "")))
	hdr("X-Sre-Incident", m.IncidentID)
	for k, v := range ec.Headers {
		hdr(k, v)
	}
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=UTF-8")
	// Every line break as CRLF, a bare CR too: "<CR>.<CR><LF>" ends the
	// message on some servers, and the DATA writer escapes a dot only
	// after CRLF (or LF), so alert text could otherwise smuggle a mail in.
	body := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(m.Body)
	if !longLine(body) {
		hdr("Content-Transfer-Encoding", "8bit")
		b.WriteString("\r\n")
		b.WriteString(strings.ReplaceAll(body, "\n", "\r\n"))
		return b.Bytes()
	}
	// A line longer than SMTP's 998 octets (a description of one long
	// line): servers refuse the message or break the line. Quoted-printable
	// keeps every line short and the text as it was.
	hdr("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	w := quotedprintable.NewWriter(&b)
	_, _ = w.Write([]byte(body))
	_ = w.Close()
	return b.Bytes()
}

// longLine reports whether a line of s is longer than emailLineMax bytes.
func longLine(s string) bool {
	for s != "" {
		line, rest, _ := strings.Cut(s, "\n")
		if len(line) > emailLineMax {
			return true
		}
		s = rest
	}
	return false
}

// subjectHeader is the value of the Subject header: printable ASCII up
// to 78 characters as it is, anything else as RFC 2047 encoded words of
// at most 75 characters each (whole characters in each), one a line.
func subjectHeader(s string) string {
	plain := len(s) <= 78-len("Subject: ")
	for i := 0; plain && i < len(s); i++ {
		plain = s[i] >= 0x20 && s[i] < 0x7f
	}
	if plain {
		return s
	}
	const prefix, suffix = "=?UTF-8?B?", "?="
	max := (75 - len(prefix) - len(suffix)) / 4 * 3 // bytes of text in one word
	var words []string
	for s != "" {
		n := len(s)
		if n > max {
			n = max
			for n > 0 && !utf8.RuneStart(s[n]) {
				n--
			}
		}
		words = append(words, prefix+base64Std(s[:n])+suffix)
		s = s[n:]
	}
	return strings.Join(words, "\r\n ")
}

func parseAddress(s string) (string, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", err
	}
	return a.Address, nil
}

func base64Std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
