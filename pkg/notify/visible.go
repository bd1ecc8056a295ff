package notify

import "github.com/rootuip/sre/pkg/bidi"

// Alert text reaches a page from alert labels and annotations anyone who
// can fire an alert writes. A bidirectional control character in it (a
// right-to-left override, an isolate, an embedding, a mark) reorders how a
// chat client, a mail reader or a phone displays the text around it, and
// an invisible one (a zero-width space or joiner, a word joiner, a byte
// order mark, a tag character) hides in a name: a service name reads
// reversed, "resolved" shows where the text says "firing", "pay​pal" looks
// like "paypal" ("Trojan Source"). So, with the console's rules (pkg/bidi),
// every channel shows each such character of the alert text as its code,
// <U+202E>, instead of applying it. Right-to-left letters need no control
// character: an Arabic or Hebrew service name or description reads as
// before. The zero-width joiner and non-joiner are kept between two
// non-ASCII characters, where they join emoji (👩‍💻) and shape Persian and
// Indic words, and tag characters are kept in an emoji flag (🏴 of England,
// Scotland, Wales); elsewhere they are shown too. The visible form is
// ASCII, so each channel escapes it and counts it against its provider's
// limits (fit.go) as any other text.

// visible returns s with every bidirectional control and invisible format
// character shown as <U+XXXX>, but the joiners between two non-ASCII
// characters and the tags of emoji flags: bidi.Text, as the console shows
// them (bidi.HTML).
func visible(s string) string { return bidi.Text(s) }

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
			if visible(v) != v {
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
