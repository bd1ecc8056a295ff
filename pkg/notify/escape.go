package notify

import "strings"

// A message's subject and body are plain text: they are rendered from
// templates over incident titles, labels and impacts, which come from alert
// labels and annotations (often templated from scraped label values) and
// from users. The chat channels interpret their text (Slack mrkdwn,
// Markdown in Mattermost and Teams), so each escapes it for its format and
// the text shows as written: no mentions that notify a whole channel, no
// links whose text hides their target, no remote images. What sred builds
// itself (the Acknowledge and incident links, the mentions of the paged
// users, the heading) is added around the escaped text, not escaped.

// slackEscape escapes the three characters Slack reserves in every text
// field (https://api.slack.com/reference/surfaces/formatting#escaping):
// with them escaped, <!channel>, <!here>, <@U…> and <url|text> in alert
// text are shown, not acted on.
func slackEscape(s string) string {
	return slackEscaper.Replace(s)
}

var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// markdownSpecial are the ASCII punctuation characters that start or end
// Markdown syntax in Mattermost and in Adaptive Cards (CommonMark and its
// GitHub extensions): emphasis, code, links and images, autolinks and
// HTML, headings, block quotes, tables, strikethrough, entities, LaTeX
// (Mattermost). CommonMark lets a backslash escape any ASCII punctuation
// character, which then shows as itself.
const markdownSpecial = "\\`*_[]()!<>#|~&$"

// zeroWidthJoiner follows every @ in Mattermost text. Mattermost finds
// mentions in a post's words, split at anything but letters, digits and
// ".-_:@", and a backslash is such a separator: "\@channel" would still
// notify the channel. The joiner splits the @ from the name, so @channel,
// @all, @here and @username show as written and notify nobody.
const zeroWidthJoiner = "\u200d"

// mattermostEscape writes s to b as Mattermost Markdown that shows s as
// written: Markdown syntax escaped, every @ followed by a zero-width joiner.
func mattermostEscape(b *strings.Builder, s string) { markdownEscape(b, s, true) }

// teamsEscape writes s to b as Adaptive Card Markdown that shows s as
// written. Teams mentions are made only by the card's msteams.entities
// (<at>name</at> in the text without an entity is text), so an @ needs no
// escaping.
func teamsEscape(b *strings.Builder, s string) { markdownEscape(b, s, false) }

func markdownEscape(b *strings.Builder, s string, mentions bool) {
	for len(s) > 0 {
		i := strings.IndexFunc(s, func(r rune) bool {
			return r < 0x80 && strings.ContainsRune(markdownSpecial, r) || mentions && r == '@'
		})
		if i < 0 {
			b.WriteString(s)
			return
		}
		b.WriteString(s[:i])
		if c := s[i]; c == '@' {
			b.WriteString("@" + zeroWidthJoiner)
		} else {
			b.WriteByte('\\')
			b.WriteByte(c)
		}
		s = s[i+1:]
	}
}

// escapeText escapes s with esc, except the occurrences of keep (the links
// sred built: the incident page, the acknowledge link), which are written
// as they are so that they stay links: a backslash inside a URL would be
// part of the link.
func escapeText(s string, esc func(*strings.Builder, string), keep ...string) string {
	var b strings.Builder
	b.Grow(len(s) + len(s)/8)
	for s != "" {
		at, n := -1, 0
		for _, k := range keep {
			if k == "" {
				continue
			}
			// The first occurrence; of two at the same place, the longer.
			if i := strings.Index(s, k); i >= 0 && (at < 0 || i < at || i == at && len(k) > n) {
				at, n = i, len(k)
			}
		}
		if at < 0 {
			esc(&b, s)
			break
		}
		esc(&b, s[:at])
		b.WriteString(s[at : at+n])
		s = s[at+n:]
	}
	return b.String()
}
