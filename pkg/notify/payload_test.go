package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	commoncfg "github.com/prometheus/common/config"
	"github.com/stretchr/testify/require"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/payloads")

// hostileAlert is one page whose alert text is out of every provider's
// bounds, or tries to mention everyone.
type hostileAlert struct {
	name    string
	subject string
	body    string
	service string
	labels  map[string]string
}

func hostileAlerts() []hostileAlert {
	const incURL = "https://sred.example.com/incidents/INC-2026-0001"
	body := func(desc string) string {
		return "🚨 [CRITICAL] Incident: " + desc + "\nID: INC-2026-0001\nStarted: 14:30 UTC\nImpact: being assessed\nActions: Escalation level 0: paging alice\n" +
			"Incident: " + incURL + "\nAcknowledge: https://sred.example.com/ack/eyJpIjoiSU5DLTIwMjYtMDAwMSJ9.q_-Zx9_k\n"
	}
	manyLabels := map[string]string{}
	for i := 0; i < 300; i++ {
		manyLabels[fmt.Sprintf("label_%03d", i)] = strings.Repeat(fmt.Sprintf("v%03d ", i), 400) // 2,000 bytes
	}
	rtl := "\u202eevil.exe\u202c \u200f" // RTL override and mark
	return []hostileAlert{
		{name: "mentions", subject: "[CRITICAL] Incident INC-2026-0001: <!channel> @here @everyone <@U0ADMIN> *bold* _it_ ~s~ `c`",
			body:    body("<!channel> <!here> <!everyone> @channel @here @everyone <@U0ADMIN> <https://evil.example|click> [x](http://evil.example) ![i](http://evil.example/p.png)"),
			service: "api <!channel> @here"},
		{name: "description-20KB", subject: "[CRITICAL] Incident INC-2026-0001: API down",
			body: body(strings.Repeat("stack frame at handler.go:42 & <retry> ", 520)), service: "api"},
		{name: "title-5000", subject: "[CRITICAL] Incident INC-2026-0001: " + strings.Repeat("T", 5000),
			body: body(strings.Repeat("T", 5000)), service: strings.Repeat("s", 600)},
		{name: "emoji-rtl", subject: "[CRITICAL] Incident INC-2026-0001: " + strings.Repeat("🔥👩‍💻"+rtl, 400),
			body: body(strings.Repeat("🔥👩‍💻"+rtl+"ש", 600)), service: "api" + rtl},
		{name: "markup-20KB", subject: "[CRITICAL] Incident INC-2026-0001: " + strings.Repeat("<&>*_`[]()!#|~$\\@", 100),
			body: body(strings.Repeat("<&>*_`[]()!#|~$\\@x", 1200)), service: "<&>"},
		{name: "header-injection", subject: "[CRITICAL] Incident INC-2026-0001: down\r\nBcc: victim@evil.example\r\n\r\nforged",
			body: body("line\r.\r\nMAIL FROM:<e@evil.example>"), service: "api\r\nX-Evil: 1"},
		{name: "labels-500", subject: "[CRITICAL] Incident INC-2026-0001: many labels", body: body("many labels"), service: "api", labels: manyLabels},
	}
}

// TestPayloadsWithinProviderLimits renders a page of each hostile alert
// for every channel, sent over real HTTP to a receiver, and checks each
// payload against its provider's documented limits and schema, that alert
// text mentions nobody, and that what matters (severity, title, the paged
// users, the incident and acknowledge links) is still there. The payloads
// are compared with testdata/payloads/<alert>.<channel> (go test -update
// rewrites them).
func TestPayloadsWithinProviderLimits(t *testing.T) {
	const (
		incURL = "https://sred.example.com/incidents/INC-2026-0001"
		ackURL = "https://sred.example.com/ack/eyJpIjoiSU5DLTIwMjYtMDAwMSJ9.q_-Zx9_k"
	)
	mentions := map[string][]string{
		ChannelSlack:      {"U024BE7LH", "U0BOB"},
		ChannelTeams:      {"alice@example.com"},
		ChannelMattermost: {"alice", "bob"},
	}
	for _, a := range hostileAlerts() {
		t.Run(a.name, func(t *testing.T) {
			ep := map[string]*endpoint{}
			for _, ch := range []string{ChannelSlack, ChannelTeams, ChannelMattermost, ChannelPagerDuty, ChannelSMS, ChannelPhone, ChannelPush} {
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
			}
			t0 := time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)
			d := &deliverer{cfg: cfg, client: ep[ChannelSlack].Client(), now: func() time.Time { return t0 }}
			msg := func(ch string) *Message {
				m := &Message{IncidentID: "INC-2026-0001", Channel: ch, Event: EventTrigger, Subject: a.subject, Body: a.body, Title: a.subject,
					Service: a.service, Severity: "CRITICAL", Labels: a.labels, URL: incURL, AckURL: ackURL, Time: t0, Mentions: mentions[ch]}
				if ch == ChannelSMS || ch == ChannelPhone || ch == ChannelPush || ch == ChannelEmail {
					m.User, m.To = "alice", "+15550000001"
				}
				return m
			}
			for ch := range ep {
				require.NoError(t, d.deliver(context.Background(), msg(ch)), ch)
				require.Len(t, ep[ch].Requests(), 1, ch)
			}
			body := func(ch string) []byte { return ep[ch].Requests()[0].Body }

			t.Run("slack", func(t *testing.T) {
				var p slackJSON
				require.NoError(t, json.Unmarshal(body(ChannelSlack), &p))
				require.NotContains(t, string(body(ChannelSlack)), "link_names", "a plain @here from an app is text only without link_names")
				require.LessOrEqual(t, len(p.Blocks), slackMaxBlocks)
				require.LessOrEqual(t, utf16Len(p.Text), 3000, "the top-level text")
				require.True(t, strings.HasPrefix(p.Text, "[CRITICAL] Incident INC-2026-0001: "), p.Text[:40])
				var texts []string
				texts = append(texts, p.Text)
				for _, b := range p.Blocks {
					if b.Type == "section" {
						require.LessOrEqual(t, utf16Len(b.Text["text"]), slackSectionMax, "a section block's text")
						texts = append(texts, b.Text["text"])
					}
					for _, e := range b.Elements {
						require.LessOrEqual(t, utf16Len(e.Text["text"]), 75, "a button's text")
						require.LessOrEqual(t, len(e.URL), 3000, "a button's url")
					}
				}
				section := p.Blocks[0].Text["text"]
				require.True(t, strings.HasPrefix(section, "*[CRITICAL] Incident INC-2026-0001: "))
				require.True(t, strings.HasSuffix(section, "\nPaging: <@U024BE7LH> <@U0BOB>"), "the paged users are mentioned")
				// Slack acts on <!...>, <@...> and <url|text> only: in alert
				// text they are escaped, the mentions are sred's.
				for _, s := range texts {
					for _, m := range regexp.MustCompile(`<[^>]*>`).FindAllString(s, -1) {
						require.Contains(t, []string{"<@U024BE7LH>", "<@U0BOB>", "<" + incURL + "|incident INC-2026-0001>"}, m)
					}
				}
				last := p.Blocks[len(p.Blocks)-1]
				require.Equal(t, "actions", last.Type)
				require.Equal(t, ackURL, last.Elements[0].URL)
				require.Equal(t, incURL, last.Elements[1].URL)
				checkCutNote(t, section, a.body, "Slack's", "<"+incURL+"|incident INC-2026-0001>", slackSectionMax)
				golden(t, a.name+".slack.json", indentJSON(t, body(ChannelSlack)))
			})

			t.Run("teams", func(t *testing.T) {
				b := body(ChannelTeams)
				require.LessOrEqual(t, len(b), teamsMaxBytes, "Teams takes about 28 KB, counted as UTF-16 by some tenants")
				var p teamsJSON
				require.NoError(t, json.Unmarshal(b, &p))
				require.Equal(t, "message", p.Type)
				require.Len(t, p.Attachments, 1)
				card := p.Attachments[0].Content
				require.Equal(t, "application/vnd.microsoft.card.adaptive", p.Attachments[0].ContentType)
				require.Equal(t, "AdaptiveCard", card.Type)
				require.Equal(t, "1.4", card.Version)
				require.True(t, strings.HasPrefix(card.Body[0].Text, `\[CRITICAL\] Incident INC-2026-0001: `))
				require.True(t, strings.HasPrefix(p.Summary, "[CRITICAL] Incident INC-2026-0001: "))
				require.Len(t, card.MSTeams.Entities, 1, "only the paged user is mentioned")
				require.Equal(t, "<at>alice@example.com</at>", card.MSTeams.Entities[0].Text)
				require.Equal(t, "Paging: <at>alice@example.com</at>", card.Body[3].Text)
				for _, blk := range card.Body[:3] {
					require.NotContains(t, blk.Text, "<at>")
				}
				require.Equal(t, ackURL, card.Actions[0]["url"])
				require.Equal(t, incURL, card.Actions[1]["url"])
				checkCutNote(t, card.Body[1].Text, a.body, "Teams's", "[incident INC-2026-0001]("+incURL+")", teamsMaxBytes)
				golden(t, a.name+".teams.json", indentJSON(t, b))
			})

			t.Run("mattermost", func(t *testing.T) {
				var p map[string]string
				require.NoError(t, json.Unmarshal(body(ChannelMattermost), &p))
				text := p["text"]
				require.LessOrEqual(t, utf8.RuneCountInString(text), mattermostMaxRunes, "one post")
				require.True(t, strings.HasPrefix(text, `#### \[CRITICAL\] Incident INC-2026-0001: `))
				require.Contains(t, text, "\nPaging: @alice @bob\n")
				require.True(t, strings.HasSuffix(text, "[Acknowledge]("+ackURL+") · [Open incident]("+incURL+")"))
				// Every @ of alert text is followed by a zero-width joiner:
				// only the paged users are mentioned.
				for _, i := range regexp.MustCompile(`@`).FindAllStringIndex(text, -1) {
					rest := text[i[1]:]
					if !strings.HasPrefix(rest, "\u200d") {
						require.True(t, strings.HasPrefix(rest, "alice ") || strings.HasPrefix(rest, "bob\n"), "a mention in alert text: %.20q", rest)
					}
				}
				checkCutNote(t, text, a.body, "Mattermost's", "[incident INC-2026-0001]("+incURL+")", 4*mattermostMaxRunes)
				golden(t, a.name+".mattermost.json", indentJSON(t, body(ChannelMattermost)))
			})

			t.Run("pagerduty", func(t *testing.T) {
				b := body(ChannelPagerDuty)
				require.LessOrEqual(t, len(b), pagerDutyEventMax)
				var p struct {
					RoutingKey  string `json:"routing_key"`
					EventAction string `json:"event_action"`
					DedupKey    string `json:"dedup_key"`
					Payload     struct {
						Summary       string         `json:"summary"`
						Source        string         `json:"source"`
						Severity      string         `json:"severity"`
						CustomDetails map[string]any `json:"custom_details"`
					} `json:"payload"`
					Links []map[string]string `json:"links"`
				}
				require.NoError(t, json.Unmarshal(b, &p))
				require.Equal(t, "trigger", p.EventAction)
				require.NotEmpty(t, p.RoutingKey)
				require.LessOrEqual(t, utf8.RuneCountInString(p.DedupKey), 255)
				require.LessOrEqual(t, utf8.RuneCountInString(p.Payload.Summary), pagerDutySummaryMax)
				require.NotEmpty(t, p.Payload.Summary)
				require.NotEmpty(t, p.Payload.Source)
				require.Contains(t, []string{"critical", "error", "warning", "info"}, p.Payload.Severity)
				require.True(t, strings.HasPrefix(p.Payload.Summary, "[CRITICAL] Incident INC-2026-0001: "))
				require.Equal(t, incURL, p.Links[0]["href"])
				if len(a.labels) > 0 {
					labels, ok := p.Payload.CustomDetails["labels"].(map[string]any)
					require.True(t, ok, "the labels are kept, cut")
					require.Len(t, labels, len(a.labels))
					for _, v := range labels {
						require.LessOrEqual(t, len(v.(string)), pagerDutyLabelMax)
					}
				}
				golden(t, a.name+".pagerduty.json", indentJSON(t, b))
			})

			t.Run("sms", func(t *testing.T) {
				form, err := url.ParseQuery(string(body(ChannelSMS)))
				require.NoError(t, err)
				text := form.Get("Body")
				require.LessOrEqual(t, utf16Len(text), smsMaxUnits, "at most 3 GSM-7 or 5 UCS-2 segments")
				require.LessOrEqual(t, utf8.RuneCountInString(text), 1600, "Twilio's limit")
				require.True(t, strings.HasPrefix(text, "[CRITICAL] Incident INC-2026-0001: "))
				require.True(t, strings.HasSuffix(text, "\nAck: "+ackURL), "the acknowledge link is kept whole")
				golden(t, a.name+".sms.txt", []byte(text))
			})

			t.Run("phone", func(t *testing.T) {
				form, err := url.ParseQuery(string(body(ChannelPhone)))
				require.NoError(t, err)
				twiml := form.Get("Twiml")
				require.LessOrEqual(t, utf8.RuneCountInString(twiml), 4000, "Twilio's Twiml limit")
				var resp struct {
					Say string `xml:"Say"`
				}
				require.NoError(t, xml.Unmarshal([]byte(twiml), &resp), "well-formed TwiML")
				require.True(t, strings.HasPrefix(resp.Say, "[CRITICAL] Incident INC-2026-0001: "))
				require.LessOrEqual(t, utf8.RuneCountInString(resp.Say), phoneSayMax)
				golden(t, a.name+".phone.txt", []byte(twiml))
			})

			t.Run("push", func(t *testing.T) {
				form, err := url.ParseQuery(string(body(ChannelPush)))
				require.NoError(t, err)
				require.LessOrEqual(t, len(form.Get("Title")), pushTitleMax)
				require.LessOrEqual(t, len(form.Get("Body")), pushBodyMax)
				require.LessOrEqual(t, len(body(ChannelPush)), 4096*3, "a push payload of 4 KB of text, form-encoded")
				require.Equal(t, ackURL, form.Get("Url"))
				require.True(t, strings.HasPrefix(form.Get("Title"), "[CRITICAL] Incident INC-2026-0001: "))
				golden(t, a.name+".push.txt", []byte(form.Get("Title")+"\n---\n"+form.Get("Body")))
			})

			t.Run("email", func(t *testing.T) {
				m := msg(ChannelEmail)
				m.To = "alice@example.com"
				out := d.emailBody(&EmailConfig{From: "sred@example.com"}, m)
				checkEmail(t, out)
				golden(t, a.name+".email.txt", regexp.MustCompile(`Message-Id: <[0-9a-f]+\.`).ReplaceAll(out, []byte("Message-Id: <RANDOM.")))
			})
		})
	}
}

// checkCutNote: a text cut to its provider's limit says so and links to
// the incident page; one not cut does not.
func checkCutNote(t *testing.T, text, body, provider, link string, max int) {
	t.Helper()
	if strings.Contains(text, "(cut to "+provider+" size limit") {
		require.Contains(t, text, "…\n(cut to "+provider+" size limit; the full text: "+link+")")
		require.Greater(t, len(body), max/8, "a short text is not cut")
		return
	}
	require.Contains(t, text, "Actions: Escalation level 0: paging alice", "a text not cut is whole")
}

// checkEmail checks a message against RFC 5322 and 5321: lines of at
// most 998 octets ending in CRLF, no bare CR or LF, headers that alert
// text cannot add to, encoded words of at most 75 characters.
func checkEmail(t *testing.T, msg []byte) {
	t.Helper()
	s := string(msg)
	require.NotRegexp(t, `\r[^\n]|\r$|[^\r]\n`, s, "a bare CR or LF")
	head, _, ok := strings.Cut(s, "\r\n\r\n")
	require.True(t, ok)
	for _, line := range strings.Split(s, "\r\n") {
		require.LessOrEqual(t, len(line), emailLineMax, "%.40q", line)
	}
	var names []string
	for _, line := range strings.Split(head, "\r\n") {
		if line[0] == ' ' || line[0] == '\t' {
			continue // folded
		}
		name, _, ok := strings.Cut(line, ":")
		require.True(t, ok, "%.60q", line)
		names = append(names, name)
	}
	require.Equal(t, []string{"From", "To", "Subject", "Date", "Message-Id", "X-Sre-Incident", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"}, names)
	for _, w := range regexp.MustCompile(`=\?[^ ]*\?=`).FindAllString(head, -1) {
		require.LessOrEqual(t, len(w), 75, "an encoded word")
	}
}

func utf16Len(s string) int { return len(utf16.Encode([]rune(s))) }

func indentJSON(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	require.NoError(t, json.Indent(&out, b, "", "  "))
	out.WriteByte('\n')
	return out.Bytes()
}

// golden compares got with testdata/payloads/name, or writes it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", "payloads", name)
	if *updateGolden {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, got, 0o644))
		return
	}
	want, err := os.ReadFile(p)
	require.NoError(t, err, "go test ./pkg/notify -run TestPayloadsWithinProviderLimits -update writes it")
	require.Equal(t, string(want), string(got), name)
}
