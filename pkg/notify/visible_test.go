package notify

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/stretchr/testify/require"
)

func TestVisible(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"plain", "api down", "api down"},
		{"override", "\u202eexe.live", "<U+202E>exe.live"},
		{"isolates", "a\u2066b\u2067c\u2068d\u2069", "a<U+2066>b<U+2067>c<U+2068>d<U+2069>"},
		{"embeddings", "\u202a\u202b\u202c\u202d", "<U+202A><U+202B><U+202C><U+202D>"},
		{"marks", "\u200e\u200f\u061c", "<U+200E><U+200F><U+061C>"},
		{"zero width space", "pay\u200bpal", "pay<U+200B>pal"},
		{"word joiner and bom", "\ufeffa\u2060b", "<U+FEFF>a<U+2060>b"},
		{"joiner next to ASCII", "@\u200dchannel", "@<U+200D>channel"},
		{"non-joiner next to ASCII", "ad\u200cmin", "ad<U+200C>min"},
		{"joiner at the ends", "\u200d😀\u200d", "<U+200D>😀<U+200D>"},
		{"joiner beside a control", "😀\u200d\u202e", "😀<U+200D><U+202E>"},
		{"tags smuggled", "ok\U000E0069\U000E0067\U000E006E", "ok<U+E0069><U+E0067><U+E006E>"},
		{"tags without cancel after flag", "🏴\U000E0067\U000E0062", "🏴<U+E0067><U+E0062>"},
		// Legitimate text: unchanged.
		{"arabic", "خدمة الدفع متوقفة", "خدمة الدفع متوقفة"},
		{"hebrew", "שירות התשלומים", "שירות התשלומים"},
		{"persian non-joiner", "می\u200cخواهم", "می\u200cخواهم"},
		{"emoji joiner", "👩\u200d💻", "👩\u200d💻"},
		{"flag of England", "🏴\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F!", "🏴\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F!"},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, visible(c.in))
			require.Equal(t, c.want, visible(c.want), "a second pass changes nothing")
		})
	}
}

// displayAlert is one alert whose text holds bidirectional or invisible
// characters (hostile) or legitimate right-to-left text, with how each
// text must arrive.
type displayAlert struct {
	name, title, service, desc, label string
	wantTitle, wantService, wantDesc  string
}

func displayAlerts() []displayAlert {
	const flag = "🏴\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F"
	return []displayAlert{
		{name: "rlo-service", title: "checkout \u202edesrever\u202c down", service: "\u202eexe.ipa", desc: "resolved \u2067firing\u2069", label: "\u202e",
			wantTitle: "checkout <U+202E>desrever<U+202C> down", wantService: "<U+202E>exe.ipa", wantDesc: "resolved <U+2067>firing<U+2069>"},
		{name: "invisible", title: "pay\u200bpal login \u2060failing", service: "\ufeffapi", desc: "@\u200dchannel ad\u200cmin \U000E0069\U000E0067\U000E006E", label: "a\u200bb",
			wantTitle: "pay<U+200B>pal login <U+2060>failing", wantService: "<U+FEFF>api", wantDesc: "<U+200D>channel ad<U+200C>min <U+E0069><U+E0067><U+E006E>"},
		{name: "marks", title: "db \u200f\u061c\u200e\u202a\u202b\u202d\u2066\u2068", service: "db", desc: "lag", label: "\u200f",
			wantTitle: "db <U+200F><U+061C><U+200E><U+202A><U+202B><U+202D><U+2066><U+2068>", wantService: "db", wantDesc: "lag"},
		{name: "arabic", title: "خدمة الدفع متوقفة", service: "الدفع", desc: "ارتفاع معدل الأخطاء في واجهة الدفع", label: "الدفع",
			wantTitle: "خدمة الدفع متوقفة", wantService: "الدفع", wantDesc: "ارتفاع معدل الأخطاء في واجهة الدفع"},
		{name: "hebrew-persian-emoji", title: "שירות התשלומים 👩\u200d💻", service: "می\u200cخواهم", desc: flag + " London", label: "שירות",
			wantTitle: "שירות התשלומים 👩\u200d💻", wantService: "می\u200cخواهم", wantDesc: flag + " London"},
	}
}

// unsafe returns the first character of s a channel must not send as it
// is: a bidirectional control, a zero-width space, word joiner or byte
// order mark, a tag character out of a flag, a joiner next to ASCII.
func unsafe(s string) (rune, bool) {
	rs := []rune(s)
	for i, r := range rs {
		switch {
		case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == 0x200E, r == 0x200F, r == 0x061C,
			r == 0x200B, r == 0x2060, r == 0xFEFF:
			return r, true
		case r == 0x200C || r == 0x200D:
			if i == 0 || i == len(rs)-1 || rs[i-1] < 0x80 || rs[i+1] < 0x80 {
				return r, true
			}
		case r >= 0xE0000 && r <= 0xE007F:
			if !strings.Contains(s, "🏴") {
				return r, true
			}
		}
	}
	return 0, false
}

// TestChannelsShowBidiControls sends a page of each alert over every
// channel to a real HTTP receiver (and renders the email), and checks that
// no payload carries a bidirectional control or invisible character as it
// is, every one shown as <U+XXXX>, while right-to-left text, emoji joined
// and flags arrive unchanged. The payloads are compared with
// testdata/payloads/bidi-<alert>.<channel> (go test -update rewrites them).
func TestChannelsShowBidiControls(t *testing.T) {
	const (
		incURL = "https://sred.example.com/incidents/INC-2026-0001"
		ackURL = "https://sred.example.com/ack/eyJpIjoiSU5DLTIwMjYtMDAwMSJ9.q_-Zx9_k"
	)
	channels := []string{ChannelSlack, ChannelTeams, ChannelMattermost, ChannelPagerDuty, ChannelSMS, ChannelPhone, ChannelPush, ChannelWebhook}
	for _, a := range displayAlerts() {
		t.Run(a.name, func(t *testing.T) {
			ep := map[string]*endpoint{}
			for _, ch := range channels {
				ep[ch] = newEndpoint(t)
			}
			cfg := &Config{
				Slack:      &SlackConfig{WebhookURL: commoncfg.Secret(ep[ChannelSlack].URL)},
				Teams:      &TeamsConfig{WebhookURL: commoncfg.Secret(ep[ChannelTeams].URL)},
				Mattermost: &MattermostConfig{WebhookURL: commoncfg.Secret(ep[ChannelMattermost].URL)},
				PagerDuty:  &PagerDutyConfig{URL: ep[ChannelPagerDuty].URL, RoutingKey: "rk"},
				SMS:        &ProviderConfig{URL: ep[ChannelSMS].URL, From: "+15550100000"},
				Phone:      &ProviderConfig{URL: ep[ChannelPhone].URL, From: "+15550100000"},
				Push:       &ProviderConfig{URL: ep[ChannelPush].URL},
				Webhook:    &WebhookConfig{URL: ep[ChannelWebhook].URL, Secret: "s"},
			}
			t0 := time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)
			subject, body, err := cfg.Render(TemplateData{ID: "INC-2026-0001", Title: a.title, Service: a.service, Severity: "CRITICAL",
				Impact: a.desc, Started: t0, Sent: t0, Actions: "Escalation level 0: paging alice", URL: incURL, AckURL: ackURL})
			require.NoError(t, err)
			d := &deliverer{cfg: cfg, client: ep[ChannelSlack].Client(), now: func() time.Time { return t0 }}
			msg := func(ch string) *Message {
				return &Message{IncidentID: "INC-2026-0001", Channel: ch, Event: EventTrigger, Subject: subject, Body: body, Title: a.title,
					Service: a.service, Severity: "CRITICAL", Labels: map[string]string{"team": a.label}, URL: incURL, AckURL: ackURL, Time: t0,
					User: "alice", To: "+15550000001"}
			}
			payloads := map[string][]byte{}
			for _, ch := range channels {
				m := msg(ch)
				require.NoError(t, d.deliver(context.Background(), m), ch)
				require.Equal(t, subject, m.Subject, "the stored message is left as it is")
				reqs := ep[ch].Requests()
				require.Len(t, reqs, 1, ch)
				payloads[ch] = reqs[0].Body
			}
			payloads[ChannelEmail] = d.emailBody(&EmailConfig{From: "sred@example.com"}, msg(ChannelEmail))

			// What each channel displays of the alert: every channel the
			// subject (the title), some the body (the description) and
			// the service.
			carries := map[string][]string{
				ChannelSlack: {a.wantTitle, a.wantDesc}, ChannelMattermost: {a.wantTitle, a.wantDesc},
				ChannelTeams: {a.wantTitle, a.wantDesc, a.wantService}, ChannelPagerDuty: {a.wantTitle, a.wantService},
				ChannelSMS: {a.wantTitle}, ChannelPhone: {a.wantTitle}, ChannelPush: {a.wantTitle, a.wantDesc},
				ChannelEmail: {a.wantTitle, a.wantDesc}, ChannelWebhook: {a.wantTitle, a.wantDesc, a.wantService},
			}
			for ch, p := range payloads {
				t.Run(ch, func(t *testing.T) {
					texts := payloadTexts(t, ch, p)
					for i, s := range texts {
						texts[i] = displayed(ch, s)
					}
					for _, s := range texts {
						if ch == ChannelWebhook && s == a.label {
							continue // the webhook's labels are data, kept as they are
						}
						r, bad := unsafe(s)
						require.False(t, bad, "%s sends U+%04X as it is in %q", ch, r, s)
					}
					all := strings.Join(texts, "\n")
					for _, s := range carries[ch] {
						require.Contains(t, all, s, ch)
					}
					name := "bidi-" + a.name + "." + ch + ".json"
					switch ch {
					case ChannelWebhook:
						return // signed with the time; its texts are checked above
					case ChannelSMS, ChannelPhone, ChannelPush:
						// The form's fields, decoded, one a paragraph.
						form, err := url.ParseQuery(string(p))
						require.NoError(t, err)
						var b strings.Builder
						for _, k := range slices.Sorted(maps.Keys(form)) {
							fmt.Fprintf(&b, "%s:\n%s\n\n", k, form.Get(k))
						}
						p, name = []byte(b.String()), strings.TrimSuffix(name, ".json")+".txt"
					case ChannelEmail:
						p = regexp.MustCompile(`Message-Id: <[0-9a-f]+\.`).ReplaceAll(p, []byte("Message-Id: <RANDOM."))
						name = strings.TrimSuffix(name, ".json") + ".txt"
					default:
						p = indentJSON(t, p)
					}
					golden(t, name, p)
				})
			}
		})
	}
}

// displayed undoes a channel's escaping of its format: the text as the
// receiver shows it. Mattermost's zero-width joiner after each @ is sred's
// (it keeps alert text from mentioning anyone) and shows as nothing.
func displayed(ch, s string) string {
	switch ch {
	case ChannelSlack:
		return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
	case ChannelTeams, ChannelMattermost:
		s = regexp.MustCompile(`\\([\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e])`).ReplaceAllString(s, "$1")
		if ch == ChannelMattermost {
			s = strings.ReplaceAll(s, "@"+zeroWidthJoiner, "@")
		}
	}
	return s
}

// payloadTexts returns the texts a receiver displays of a payload: every
// JSON string, the form values, the TwiML text, the email's decoded
// subject and body.
func payloadTexts(t *testing.T, ch string, p []byte) []string {
	t.Helper()
	var out []string
	switch ch {
	case ChannelSMS, ChannelPhone, ChannelPush:
		form, err := url.ParseQuery(string(p))
		require.NoError(t, err)
		for _, vs := range form {
			out = append(out, vs...)
		}
		if tw := form.Get("Twiml"); tw != "" {
			var resp struct {
				Say string `xml:"Say"`
			}
			require.NoError(t, xml.Unmarshal([]byte(tw), &resp))
			out = append(out, resp.Say)
		}
	case ChannelEmail:
		m, err := mail.ReadMessage(strings.NewReader(string(p)))
		require.NoError(t, err)
		subj, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
		require.NoError(t, err)
		b, err := io.ReadAll(m.Body)
		require.NoError(t, err)
		out = append(out, subj, strings.ReplaceAll(string(b), "\r\n", "\n"))
	default:
		var v any
		require.NoError(t, json.Unmarshal(p, &v))
		var walk func(any)
		walk = func(v any) {
			switch v := v.(type) {
			case string:
				out = append(out, v)
			case []any:
				for _, e := range v {
					walk(e)
				}
			case map[string]any:
				for _, e := range v {
					walk(e)
				}
			}
		}
		walk(v)
	}
	return out
}

// TestFitKeepsVisibleFormWhole: a cut never ends in the middle of a hidden
// character's visible form, which would read as text ("<U+20").
func TestFitKeepsVisibleFormWhole(t *testing.T) {
	s := visible("ab\u202ecd")
	require.Equal(t, "ab<U+202E>cd", s)
	for max, want := range map[int]string{2: "ab", 3: "ab<", 4: "ab", 5: "ab", 9: "ab", 10: "ab<U+202E>", 11: "ab<U+202E>c"} {
		got, cut := fit(s, max, func(rune) int { return 1 })
		require.True(t, cut)
		require.Equal(t, want, got, "max %d", max)
	}
	got, _ := fit("a <b> c", 5, func(rune) int { return 1 })
	require.Equal(t, "a <b>", got, "other markup is cut as any text")
}
