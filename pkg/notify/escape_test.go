package notify

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/stretchr/testify/require"
)

// hostile is an alert summary written to abuse a chat channel: mass
// mentions in Mattermost and Slack syntax, a link whose text hides its
// target, and a remote (tracking) image.
const hostile = "@channel @all <!channel> <!here> [Click to re-login](http://evil.example/login) ![t](http://evil.example/pixel.png)"

func TestEscapeChatText(t *testing.T) {
	const zwj = "\u200d"
	for _, tc := range []struct {
		name, in                 string
		slack, mattermost, teams string
	}{
		{"empty", "", "", "", ""},
		{"plain", "API down: 5xx ratio 0.31 on eu-west-1 (2/3 pods)", "API down: 5xx ratio 0.31 on eu-west-1 (2/3 pods)",
			`API down: 5xx ratio 0.31 on eu-west-1 \(2/3 pods\)`, `API down: 5xx ratio 0.31 on eu-west-1 \(2/3 pods\)`},
		{"hostile", hostile,
			"@channel @all &lt;!channel&gt; &lt;!here&gt; [Click to re-login](http://evil.example/login) ![t](http://evil.example/pixel.png)",
			"@" + zwj + "channel @" + zwj + `all \<\!channel\> \<\!here\> \[Click to re-login\]\(http://evil.example/login\) \!\[t\]\(http://evil.example/pixel.png\)`,
			`@channel @all \<\!channel\> \<\!here\> \[Click to re-login\]\(http://evil.example/login\) \!\[t\]\(http://evil.example/pixel.png\)`},
		{"mentions", "@here @alice x.@channel alice@example.com", "@here @alice x.@channel alice@example.com",
			"@" + zwj + "here @" + zwj + "alice x.@" + zwj + "channel alice@" + zwj + "example.com", "@here @alice x.@channel alice@example.com"},
		{"backslash", `\@channel \[x](y)`, `\@channel \[x](y)`, `\\@` + zwj + `channel \\\[x\]\(y\)`, `\\@channel \\\[x\]\(y\)`},
		{"markdown", "`code` *b* _i_ ~~s~~ # h | t > q &amp; $x$",
			"`code` *b* _i_ ~~s~~ # h | t &gt; q &amp;amp; $x$",
			"\\`code\\` \\*b\\* \\_i\\_ \\~\\~s\\~\\~ \\# h \\| t \\> q \\&amp; \\$x\\$",
			"\\`code\\` \\*b\\* \\_i\\_ \\~\\~s\\~\\~ \\# h \\| t \\> q \\&amp; \\$x\\$"},
		{"autolink and html", "<http://evil.example> <img src=x>", "&lt;http://evil.example&gt; &lt;img src=x&gt;",
			`\<http://evil.example\> \<img src=x\>`, `\<http://evil.example\> \<img src=x\>`},
		{"unicode", "Zürich — 🚨 ＠channel", "Zürich — 🚨 ＠channel", "Zürich — 🚨 ＠channel", "Zürich — 🚨 ＠channel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.slack, slackEscape(tc.in), "slack")
			require.Equal(t, tc.mattermost, escapeText(tc.in, mattermostEscape), "mattermost")
			require.Equal(t, tc.teams, escapeText(tc.in, teamsEscape), "teams")
		})
	}
}

// TestEscapeTextKeepsLinks: sred's own links in a text are kept as they are
// (a backslash in them would break them), the text around them escaped, so
// a hostile link around one of them is still no link.
func TestEscapeTextKeepsLinks(t *testing.T) {
	const inc, ack = "https://sred.example.com/incidents/INC-1", "https://sred.example.com/ack/eyJp_-Q.s_-g"
	for _, tc := range []struct{ in, want string }{
		{"Incident: " + inc + "\nAcknowledge: " + ack + "\n", "Incident: " + inc + "\nAcknowledge: " + ack + "\n"},
		{"[Re-login](" + ack + ")", `\[Re-login\]\(` + ack + `\)`},
		{"_" + ack + "_" + ack, `\_` + ack + `\_` + ack},
		{"https://sred.example.com/ack/eyJp_", `https://sred.example.com/ack/eyJp\_`},
	} {
		require.Equal(t, tc.want, escapeText(tc.in, teamsEscape, inc, "", ack), tc.in)
	}
	// Of two links found at the same place, the longer is kept whole.
	require.Equal(t, "x https://a/b_c/d_e", escapeText("x https://a/b_c/d_e", teamsEscape, "https://a/b_c", "https://a/b_c/d_e"))
}

// TestChatChannelsEscapeAlertText delivers a message whose title (and so
// subject and body) holds hostile alert text to Slack, Mattermost and
// Teams: every text field of each payload shows it escaped for its format,
// while sred's own mentions, links and buttons still work.
func TestChatChannelsEscapeAlertText(t *testing.T) {
	const (
		incURL = "https://sred.example.com/incidents/INC-2026-0001"
		ackURL = "https://sred.example.com/ack/eyJpIjoiSU5DLTIwMjYtMDAwMSJ9.q_-Zx9_k"
		zwj    = "\u200d"
	)
	slack, mm, teams := newEndpoint(t), newEndpoint(t), newEndpoint(t)
	cfg := &Config{
		Slack:      &SlackConfig{WebhookURL: commoncfg.Secret(slack.URL)},
		Mattermost: &MattermostConfig{WebhookURL: commoncfg.Secret(mm.URL)},
		Teams:      &TeamsConfig{WebhookURL: commoncfg.Secret(teams.URL)},
	}
	subject, body, err := cfg.Render(TemplateData{ID: "INC-2026-0001", Title: hostile, Severity: "CRITICAL", Service: "api <!channel>",
		Started: time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC), Impact: "[checkout](http://evil.example) @here", Actions: "none", URL: incURL, AckURL: ackURL})
	require.NoError(t, err)
	d := &deliverer{cfg: cfg, client: slack.Client(), now: time.Now}
	deliver := func(ch string, mentions ...string) {
		t.Helper()
		m := &Message{IncidentID: "INC-2026-0001", Channel: ch, Event: EventTrigger, Subject: subject, Body: body, Title: hostile,
			Service: "api <!channel>", Severity: "CRITICAL", Mentions: mentions, URL: incURL, AckURL: ackURL}
		require.NoError(t, d.deliver(context.Background(), m))
	}
	deliver(ChannelSlack, "U024BE7LH")
	deliver(ChannelMattermost, "alice")
	deliver(ChannelTeams, "alice@example.com")

	t.Run("slack", func(t *testing.T) {
		var p slackJSON
		require.NoError(t, json.Unmarshal(slack.Requests()[0].Body, &p))
		esc := "@channel @all &lt;!channel&gt; &lt;!here&gt; [Click to re-login](http://evil.example/login) ![t](http://evil.example/pixel.png)"
		require.Equal(t, "[CRITICAL] Incident INC-2026-0001: "+esc, p.Text, "the top-level text (the notification's fallback)")
		require.Equal(t, "*[CRITICAL] Incident INC-2026-0001: "+esc+"*\n"+
			"🚨 [CRITICAL] Incident: "+esc+"\nID: INC-2026-0001\nStarted: 14:30 UTC\nImpact: [checkout](http://evil.example) @here\nActions: none\n"+
			"Incident: "+incURL+"\nAcknowledge: "+ackURL+"\nPaging: <@U024BE7LH>", p.Blocks[0].Text["text"])
		require.NotNil(t, p.UnfurlLinks)
		require.NotNil(t, p.UnfurlMedia)
		require.False(t, *p.UnfurlLinks)
		require.False(t, *p.UnfurlMedia)
		require.Equal(t, ackURL, p.Blocks[1].Elements[0].URL)
		require.Equal(t, incURL, p.Blocks[1].Elements[1].URL)
	})

	t.Run("mattermost", func(t *testing.T) {
		var p map[string]string
		require.NoError(t, json.Unmarshal(mm.Requests()[0].Body, &p))
		esc := "@" + zwj + "channel @" + zwj + `all \<\!channel\> \<\!here\> \[Click to re-login\]\(http://evil.example/login\) \!\[t\]\(http://evil.example/pixel.png\)`
		require.Equal(t, `#### \[CRITICAL\] Incident INC-2026-0001: `+esc+"\n"+
			`🚨 \[CRITICAL\] Incident: `+esc+"\nID: INC-2026-0001\nStarted: 14:30 UTC\n"+
			`Impact: \[checkout\]\(http://evil.example\) @`+zwj+"here\nActions: none\n"+
			// sred's links and mentions are Markdown.
			"Incident: "+incURL+"\nAcknowledge: "+ackURL+"\n"+
			"Paging: @alice\n"+
			"[Acknowledge]("+ackURL+") · [Open incident]("+incURL+")", p["text"])
	})

	t.Run("teams", func(t *testing.T) {
		var p teamsJSON
		require.NoError(t, json.Unmarshal(teams.Requests()[0].Body, &p))
		card := p.Attachments[0].Content
		esc := `@channel @all \<\!channel\> \<\!here\> \[Click to re-login\]\(http://evil.example/login\) \!\[t\]\(http://evil.example/pixel.png\)`
		require.Equal(t, `\[CRITICAL\] Incident INC-2026-0001: `+esc, card.Body[0].Text)
		require.Equal(t, `🚨 \[CRITICAL\] Incident: `+esc+"\nID: INC-2026-0001\nStarted: 14:30 UTC\n"+
			`Impact: \[checkout\]\(http://evil.example\) @here`+"\nActions: none\n"+
			"Incident: "+incURL+"\nAcknowledge: "+ackURL, card.Body[1].Text)
		require.Equal(t, []map[string]string{{"title": "Incident", "value": "INC-2026-0001"}, {"title": "Severity", "value": "CRITICAL"},
			{"title": "Service", "value": `api \<\!channel\>`}}, card.Body[2].Facts)
		require.Equal(t, "Paging: <at>alice@example.com</at>", card.Body[3].Text)
		require.Equal(t, []map[string]string{
			{"type": "Action.OpenUrl", "title": "Acknowledge", "url": ackURL},
			{"type": "Action.OpenUrl", "title": "Open incident", "url": incURL},
		}, card.Actions)
		// The summary is plain text (the notification's preview).
		require.Equal(t, subject, p.Summary)
	})
}
