package notify

import (
	"strings"
	"unicode/utf8"
)

// Providers refuse a message over their size limits (Slack answers 400
// invalid_blocks, Twilio 400, Teams 413), and a refused page is a page
// lost. Alert text has no such bound: a description of 20 KB, a title of
// thousands of characters. So each channel cuts the alert text of its
// payload to the provider's documented limits (docs/notifications.md,
// "Provider limits"), keeping what matters first (severity, title, the
// mentions of the paged users, the incident and acknowledge links) and
// ending what it cut with a visible mark and a link to the incident page.

// Provider limits, as the providers document them.
const (
	// Slack: a section block's text is at most 3,000 characters, a message
	// at most 50 blocks (https://api.slack.com/reference/block-kit/blocks).
	slackSectionMax = 3000
	slackMaxBlocks  = 50
	// slackSubjectMax bounds the subject in the heading and in the
	// top-level text (the notification's preview), leaving room for the
	// message in the section.
	slackSubjectMax = 1000
	// slackMentionsInline: mentions up to this long stay in the message's
	// section; longer ones get section blocks of their own.
	slackMentionsInline = 1000

	// Teams: a webhook message is at most about 28 KB; Teams has been seen
	// to count a body sent without a charset as UTF-16 (2 bytes a
	// character), so sred keeps the whole payload at most 14,000 bytes of
	// UTF-8, which is under 28 KB in either count.
	teamsMaxBytes   = 14000
	teamsSubjectMax = 1000 // bytes of the heading (and of the summary)
	teamsFactMax    = 256  // bytes of the service fact
	// teamsMentionsMax bounds the mentions of the paged users: the
	// "Paging:" text and the msteams.entities, in bytes of JSON.
	teamsMentionsMax = 4000

	// Mattermost: a post is at most 16,383 characters (runes); a longer
	// webhook text is split into several posts.
	mattermostMaxRunes   = 16383
	mattermostSubjectMax = 1000

	// PagerDuty Events API v2: summary at most 1,024 characters, dedup_key
	// at most 255, an event at most 512 KB.
	pagerDutySummaryMax = 1024
	pagerDutyEventMax   = 512 << 10
	// pagerDutyLabelMax bounds each label value in custom_details when the
	// event would be larger than pagerDutyEventMax with them whole.
	pagerDutyLabelMax = 256

	// SMS: Twilio takes at most 1,600 characters and recommends at most
	// 320; sred's text is at most 320 UTF-16 units: at most 3 GSM-7
	// segments (153 characters each) or 5 UCS-2 segments (67 each).
	smsMaxUnits = 320
	// Phone: Twilio's Twiml parameter is at most 4,000 characters; the
	// spoken subject is cut to 500 characters (escaped for XML at most
	// 3,000).
	phoneSayMax = 500
	// Push: APNs and FCM payloads are at most 4 KB.
	pushTitleMax = 256  // bytes
	pushBodyMax  = 3000 // bytes

	// Email: a line is at most 998 octets without its CRLF (RFC 5321
	// 4.5.3.1.6, RFC 5322 2.1.1).
	emailLineMax = 998
)

// cost is the size of a character in a payload field: in the provider's
// unit (characters, UTF-16 units, bytes) and after the escaping for its
// format.
type cost func(r rune) int

// utf16Units is the size of r in UTF-16 code units, as JavaScript counts
// a string's length.
func utf16Units(r rune) int {
	if r >= 0x10000 {
		return 2
	}
	return 1
}

// slackCost: Slack counts characters, taken as UTF-16 units (at least the
// number of runes), of the text after slackEscape.
func slackCost(r rune) int {
	switch r {
	case '&':
		return 5 // &amp;
	case '<', '>':
		return 4 // &lt; &gt;
	}
	return utf16Units(r)
}

// mattermostCost: runes of the text after mattermostEscape.
func mattermostCost(r rune) int {
	if r == '@' || r < 0x80 && strings.ContainsRune(markdownSpecial, r) {
		return 2
	}
	return 1
}

// jsonCost is the size in bytes of r in a JSON string as encoding/json
// writes it (HTML characters and control characters as \u00XX, invalid
// UTF-8 as \ufffd).
func jsonCost(r rune) int {
	switch r {
	case '"', '\\', '\n', '\r', '\t':
		return 2
	case '<', '>', '&', '\u2028', '\u2029', utf8.RuneError:
		return 6
	}
	if r < 0x20 {
		return 6
	}
	return utf8.RuneLen(r)
}

// teamsCost: bytes in the JSON payload of r after teamsEscape.
func teamsCost(r rune) int {
	if r < 0x80 && strings.ContainsRune(markdownSpecial, r) {
		return 2 + jsonCost(r) // the backslash, itself escaped in JSON
	}
	return jsonCost(r)
}

// xmlCost: characters of r after xmlEscape.
func xmlCost(r rune) int {
	switch r {
	case '<', '>':
		return 4
	case '&':
		return 5
	case '"', '\'':
		return 6
	}
	return 1
}

func bytesCost(r rune) int {
	if r == utf8.RuneError {
		return 3
	}
	return utf8.RuneLen(r)
}

// size is the cost of s.
func size(s string, c cost) int {
	n := 0
	for _, r := range s {
		n += c(r)
	}
	return n
}

// fit returns s when its cost is at most max, else its longest prefix
// (cut between characters) whose cost is at most max, and true. A cut
// prefix loses a visible form of a hidden character cut in its middle, its
// trailing white space, and a trailing zero-width joiner
// or variation selector (so that the mark after it does not join an emoji
// cut in half).
func fit(s string, max int, c cost) (string, bool) {
	if max < 0 {
		max = 0
	}
	n := 0
	for i, r := range s {
		n += c(r)
		if n > max {
			return strings.TrimRightFunc(trimPartialCode(s[:i]), func(r rune) bool {
				return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\u200d' || r >= '\ufe00' && r <= '\ufe0f'
			}), true
		}
	}
	return s, false
}

// trimPartialCode returns s without a visible form of a hidden character
// (<U+202E>, visible.go) cut before its end: "<U+20" would read as text.
// A lone "<" is kept: alert text is full of them.
func trimPartialCode(s string) string {
	i := strings.LastIndexByte(s, '<')
	if i < 0 || len(s)-i < len("<U") || len(s)-i >= len("<U+E007F") {
		return s
	}
	for j, c := range s[i+1:] {
		switch {
		case j == 0 && c == 'U', j == 1 && c == '+', j >= 2 && (c >= '0' && c <= '9' || c >= 'A' && c <= 'F'):
		default:
			return s
		}
	}
	return s[:i]
}

// cutMark ends alert text that was cut.
const cutMark = "…"

// cutNote is the line that follows a message cut to a provider's limit:
// where to read it whole. link writes a link in the channel's format.
func cutNote(provider string, m *Message, link func(url, text string) string) string {
	s := cutMark + "\n(cut to " + provider + "'s size limit"
	if m.URL != "" {
		s += "; the full text: " + link(m.URL, "incident "+m.IncidentID)
	}
	return s + ")"
}
