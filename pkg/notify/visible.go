package notify

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/rootuip/sre/pkg/bidi"
)

// Alert text reaches a page from alert labels and annotations anyone who
// can fire an alert writes. A bidirectional control character in it (a
// right-to-left override, an isolate, an embedding, a mark) reorders how a
// chat client, a mail reader or a phone displays the text around it, and
// an invisible one (a zero-width space or joiner, a word joiner, a byte
// order mark, a tag character) hides in a name: a service name reads
// reversed, "resolved" shows where the text says "firing", "pay​pal" looks
// like "paypal" ("Trojan Source"). So, as the console does (pkg/bidi),
// every channel shows each such character of the alert text as its code,
// <U+202E>, instead of applying it. Right-to-left letters need no control
// character: an Arabic or Hebrew service name or description reads as
// before. The zero-width joiner and non-joiner are kept between two
// non-ASCII characters, where they join emoji (👩‍💻) and shape Persian and
// Indic words, and tag characters are kept in an emoji flag (🏴 of England,
// Scotland, Wales); elsewhere they are shown too. The visible form is
// ASCII, so each channel escapes it and counts it against its provider's
// limits (fit.go) as any other text.

// invisible reports whether r is shown as its code wherever it is.
func invisible(r rune) bool { return bidi.Invisible(r) }

// joiner reports whether r is a zero-width non-joiner or joiner.
func joiner(r rune) bool { return r == 0x200C || r == 0x200D }

const (
	blackFlag = 0x1F3F4
	cancelTag = 0xE007F
)

// flagTags returns the length in bytes of the tag characters s starts
// with when they end an emoji flag sequence (after 🏴: tag digits and
// small letters, then CANCEL TAG), or 0.
func flagTags(s string) int {
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == cancelTag && i > 0:
			return i + n
		case r >= 0xE0030 && r <= 0xE0039, r >= 0xE0061 && r <= 0xE007A:
			i += n
		default:
			return 0
		}
	}
	return 0
}

// needsShowing reports whether visible changes s.
func needsShowing(s string) bool {
	for _, r := range s {
		if invisible(r) || joiner(r) {
			return true
		}
	}
	return false
}

// visible returns s with every bidirectional control and invisible format
// character shown as <U+XXXX>, but the joiners between two non-ASCII
// characters and the tags of emoji flags.
func visible(s string) string {
	if !needsShowing(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 32)
	prev := rune(-1)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if prev == blackFlag {
			if t := flagTags(s[i:]); t > 0 {
				b.WriteString(s[i : i+t])
				i, prev = i+t, cancelTag
				continue
			}
		}
		show := invisible(r)
		if joiner(r) {
			next, _ := utf8.DecodeRuneInString(s[i+n:])
			show = !(joinable(prev) && joinable(next))
		}
		if show {
			fmt.Fprintf(&b, "<U+%04X>", r)
		} else {
			b.WriteString(s[i : i+n])
		}
		i, prev = i+n, r
	}
	return b.String()
}

// joinable reports whether a joiner next to r is kept: r is a visible
// non-ASCII character (a letter, a mark, an emoji, a variation selector).
func joinable(r rune) bool {
	return r >= 0x80 && r != utf8.RuneError && !invisible(r) && !joiner(r)
}

// displaySafe returns m with the alert text every channel displays (the
// subject, the body, the title, the service and, but for the webhook, the
// label values) passed through visible; m itself, stored in the outbox,
// is left as it is. The webhook's labels are data its receiver matches
// on, kept as the alert had them.
func displaySafe(m *Message) *Message {
	c := *m
	c.Subject, c.Body, c.Title, c.Service = visible(m.Subject), visible(m.Body), visible(m.Title), visible(m.Service)
	if m.Channel != ChannelWebhook && len(m.Labels) > 0 {
		changed := false
		for _, v := range m.Labels {
			if needsShowing(v) {
				changed = true
				break
			}
		}
		if changed {
			c.Labels = make(map[string]string, len(m.Labels))
			for k, v := range m.Labels {
				c.Labels[k] = visible(v)
			}
		}
	}
	return &c
}
