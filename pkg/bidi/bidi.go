// Package bidi shows the bidirectional control characters and the
// invisible characters of a text instead of applying them. A
// right-to-left override (U+202E) or an isolate in an incident's title, a
// label or an annotation reorders how the text around it is displayed: a
// title can read otherwise than it is ("Trojan Source"); a zero-width
// space, a word joiner, a byte order mark or a tag character hides in a
// name, so that "pay\u200bpal" looks like "paypal". The console, the
// status page and its Atom feed, the acknowledge page and the HTML SLA
// report pass their rendered output through this package, and the
// notification channels their alert text (Text), so that every such
// character, wherever the alert- or user-supplied text is, shows as
// <U+202E>; srectl, on a terminal, writes the same characters as their
// \u escapes (Next, for output written in parts). The stored data and
// the JSON API keep them as they are.
//
// Right-to-left letters need no control character and read as before.
// The zero-width joiner and non-joiner are kept between two non-ASCII
// characters, where they join emoji (👩‍💻) and shape Persian and Indic
// words, and tag characters are kept in an emoji flag (🏴 of England,
// Scotland, Wales); elsewhere they are shown too.
package bidi

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// names are the bidirectional control characters shown, with their
// Unicode names: the embeddings, overrides and isolates and the implicit
// marks.
var names = map[rune]string{
	0x061C: "ARABIC LETTER MARK",
	0x200E: "LEFT-TO-RIGHT MARK",
	0x200F: "RIGHT-TO-LEFT MARK",
	0x202A: "LEFT-TO-RIGHT EMBEDDING",
	0x202B: "RIGHT-TO-LEFT EMBEDDING",
	0x202C: "POP DIRECTIONAL FORMATTING",
	0x202D: "LEFT-TO-RIGHT OVERRIDE",
	0x202E: "RIGHT-TO-LEFT OVERRIDE",
	0x2066: "LEFT-TO-RIGHT ISOLATE",
	0x2067: "RIGHT-TO-LEFT ISOLATE",
	0x2068: "FIRST STRONG ISOLATE",
	0x2069: "POP DIRECTIONAL ISOLATE",
}

// invisibleNames are the invisible characters shown (but the tag
// characters, named by name), with their Unicode names.
var invisibleNames = map[rune]string{
	0x200B: "ZERO WIDTH SPACE",
	0x200C: "ZERO WIDTH NON-JOINER",
	0x200D: "ZERO WIDTH JOINER",
	0x2060: "WORD JOINER",
	0xFEFF: "ZERO WIDTH NO-BREAK SPACE",
}

// name returns the Unicode name of a character shown.
func name(r rune) string {
	if n, ok := names[r]; ok {
		return n
	}
	if n, ok := invisibleNames[r]; ok {
		return n
	}
	switch c := r - 0xE0000; {
	case c == 0x01:
		return "LANGUAGE TAG"
	case c == 0x20:
		return "TAG SPACE"
	case c == 0x7F:
		return "CANCEL TAG"
	case c >= 'a' && c <= 'z':
		return "TAG LATIN SMALL LETTER " + string(c-'a'+'A')
	case c >= 'A' && c <= 'Z':
		return "TAG LATIN CAPITAL LETTER " + string(c)
	case c >= '0' && c <= '9':
		return "TAG DIGIT " + [...]string{"ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"}[c-'0']
	}
	return "TAG CHARACTER"
}

// IsControl reports whether r is one of the bidirectional control
// characters this package shows.
func IsControl(r rune) bool {
	_, ok := names[r]
	return ok
}

// Invisible reports whether r reorders or hides text without showing
// itself: a bidirectional control character (IsControl), a zero-width
// space, a word joiner, a byte order mark or a tag character. Text and
// the pages show each as its code (but tag characters in an emoji flag);
// srectl on a terminal too.
func Invisible(r rune) bool {
	switch {
	case IsControl(r):
		return true
	case r == 0x200B, // ZERO WIDTH SPACE
		r == 0x2060, // WORD JOINER
		r == 0xFEFF: // ZERO WIDTH NO-BREAK SPACE (byte order mark)
		return true
	case r >= 0xE0000 && r <= 0xE007F: // tag characters
		return true
	}
	return false
}

// joiner reports whether r is a zero-width non-joiner or joiner.
func joiner(r rune) bool { return r == 0x200C || r == 0x200D }

// joinable reports whether a joiner next to r is kept: r is a visible
// non-ASCII character (a letter, a mark, an emoji, a variation selector),
// not a C1 control character (U+0080 to U+009F), which srectl shows as
// its escape and a page does not show at all.
func joinable(r rune) bool {
	return r >= 0xA0 && r != utf8.RuneError && !Invisible(r) && !joiner(r)
}

const (
	blackFlag = 0x1F3F4
	cancelTag = 0xE007F
)

// flagTags returns the length in bytes of the tag characters b starts
// with when they end an emoji flag sequence (after 🏴: tag digits and
// small letters, then CANCEL TAG), or 0. With more (bytes after b are
// still to come), need reports that b ends before the sequence is
// decided: after tags without their CANCEL TAG, or in a character.
func flagTags[T string | []byte](b T, more bool) (n int, need bool) {
	i := 0
	for i < len(b) {
		if more && !fullRune(b[i:]) {
			return 0, true
		}
		r, n := decode(b[i:])
		switch {
		case r == cancelTag && i > 0:
			return i + n, false
		case r >= 0xE0030 && r <= 0xE0039, r >= 0xE0061 && r <= 0xE007A:
			i += n
		default:
			return 0, false
		}
	}
	return 0, more
}

func decode[T string | []byte](b T) (rune, int) {
	if len(b) > 0 && b[0] < utf8.RuneSelf {
		return rune(b[0]), 1
	}
	return utf8.DecodeRuneInString(string(b[:min(len(b), utf8.UTFMax)]))
}

// fullRune reports whether b starts with a whole character, or with
// bytes that are no UTF-8 (false for an empty b).
func fullRune[T string | []byte](b T) bool {
	if len(b) > 0 && b[0] < utf8.RuneSelf {
		return true
	}
	return utf8.FullRuneInString(string(b[:min(len(b), utf8.UTFMax)]))
}

// next looks at the character b starts with, after the character prev
// (-1 at the start of the text): it returns the character and its length
// in bytes, and whether it is shown. The tag characters of an emoji flag
// after 🏴 are returned as one CANCEL TAG of their whole length, kept.
func next[T string | []byte](b T, prev rune) (r rune, n int, show bool) {
	r, n, show, _ = scan(b, prev, false)
	return r, n, show
}

// Next is the rule of Text for a text read in parts, as a writer gets
// it: it looks at the character b (not empty) starts with, after the
// character prev (-1 at the start of the text, else the r Next returned
// for the character before), and returns the character, its length in
// bytes and whether it is shown. The tag characters of an emoji flag
// after 🏴 are returned as one CANCEL TAG of their whole length, not
// shown. With more, bytes after b are still to come: need then reports
// that the answer depends on them (b ends in the character, after a
// joiner whose neighbour is still to come, or in the tags after a 🏴),
// and b is to be kept and looked at again with the bytes that follow,
// or with more false at the end of the text, where a joiner at the end
// is shown and tags without their CANCEL TAG are shown one by one. An
// empty b has no character to look at: need, whatever more says.
func Next(b []byte, prev rune, more bool) (r rune, n int, show, need bool) {
	if len(b) == 0 {
		return 0, 0, false, true
	}
	return scan(b, prev, more)
}

func scan[T string | []byte](b T, prev rune, more bool) (r rune, n int, show, need bool) {
	if prev == blackFlag {
		t, wait := flagTags(b, more)
		if wait {
			return 0, 0, false, true
		}
		if t > 0 {
			return cancelTag, t, false, false
		}
	}
	if more && !fullRune(b) {
		return 0, 0, false, true
	}
	r, n = decode(b)
	if r < utf8.RuneSelf {
		return r, n, false, false
	}
	if joiner(r) {
		if !joinable(prev) {
			return r, n, true, false
		}
		if more && !fullRune(b[n:]) {
			return 0, 0, false, true
		}
		after, _ := decode(b[n:])
		return r, n, !(len(b) > n && joinable(after)), false
	}
	return r, n, Invisible(r), false
}

// contains reports whether b holds a character to show.
func contains[T string | []byte](b T) bool {
	prev := rune(-1)
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			prev = rune(b[i])
			i++
			continue
		}
		r, n, show := next(b[i:], prev)
		if show {
			return true
		}
		i, prev = i+n, r
	}
	return false
}

// Text returns s with every bidirectional control and invisible
// character shown as <U+XXXX>, but the joiners between two non-ASCII
// characters and the tags of emoji flags: the form the notification
// channels send. A second pass changes nothing.
func Text(s string) string {
	if !contains(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 32)
	prev := rune(-1)
	for i := 0; i < len(s); {
		r, n, show := next(s[i:], prev)
		if show {
			fmt.Fprintf(&b, "<U+%04X>", r)
		} else {
			b.WriteString(s[i : i+n])
		}
		i, prev = i+n, r
	}
	return b.String()
}

// escaped writes r's visible form escaped for HTML or XML text and
// attribute values.
func escaped(b *bytes.Buffer, r rune) { fmt.Fprintf(b, "&lt;U+%04X&gt;", r) }

// XML returns an encoded XML document (the Atom feed) with every
// character Text shows replaced by its visible form, escaped: <U+202E> in
// text and attribute values alike.
func XML(doc []byte) []byte {
	if !contains(doc) {
		return doc
	}
	var b bytes.Buffer
	b.Grow(len(doc) + 64)
	prev := rune(-1)
	for i := 0; i < len(doc); {
		r, n, show := next(doc[i:], prev)
		if show {
			escaped(&b, r)
		} else {
			b.Write(doc[i : i+n])
		}
		i, prev = i+n, r
	}
	return b.Bytes()
}

// rawText are the elements whose content is text, where markup is not
// parsed (script, style) or shown as text (title, textarea).
var rawText = map[string]bool{"script": true, "style": true, "textarea": true, "title": true}

// HTML returns a page rendered by html/template with every character
// Text shows shown: in the page's text as a span of class "bidi" holding
// <U+202E>, whose title names the character (as code hosts warn of
// them); in attribute values, in the title, a textarea, a script or a
// style and inside inline SVG, where a span is no markup, as the text
// <U+202E>. html/template escapes every "<" of the data it renders, so
// each "<" of the page starts markup. A joiner next to markup (after a
// ">", before a "<") is next to ASCII, and shown.
func HTML(page []byte) []byte {
	if !contains(page) {
		return page
	}
	var b bytes.Buffer
	b.Grow(len(page) + 256)
	var (
		inTag   bool   // between < and >
		quote   byte   // the quote of the attribute value being read
		raw     string // the raw text element being read
		pending string // the raw text element whose start tag is being read
		foreign int    // depth of svg and math elements
		prev    = rune(-1)
	)
	for i := 0; i < len(page); {
		c := page[i]
		if c >= utf8.RuneSelf {
			r, n, show := next(page[i:], prev)
			switch {
			case !show:
				b.Write(page[i : i+n])
			case inTag || raw != "" || foreign > 0:
				escaped(&b, r)
			case IsControl(r):
				fmt.Fprintf(&b, `<span class="bidi" title="U+%04X %s: a bidirectional control character in the text, shown instead of applied">&lt;U+%04X&gt;</span>`,
					r, name(r), r)
			default:
				fmt.Fprintf(&b, `<span class="bidi" title="U+%04X %s: an invisible character in the text, shown instead of hidden">&lt;U+%04X&gt;</span>`,
					r, name(r), r)
			}
			i, prev = i+n, r
			continue
		}
		switch {
		case inTag:
			switch {
			case quote != 0:
				if c == quote {
					quote = 0
				}
			case c == '"' || c == '\'':
				quote = c
			case c == '>':
				inTag, raw, pending = false, pending, ""
			}
		case c == '<':
			name, closing := tagName(page[i+1:])
			if raw != "" && (!closing || name != raw) {
				break // text of the raw text element
			}
			inTag, raw = true, ""
			switch {
			case name == "svg" || name == "math":
				if closing {
					foreign = max(0, foreign-1)
				} else if !bytes.HasPrefix(bytes.TrimLeft(page[i+1+len(name):], " \t\n"), []byte("/>")) {
					foreign++
				}
			case !closing && rawText[name] && foreign == 0:
				pending = name
			}
		}
		b.WriteByte(c)
		i, prev = i+1, rune(c)
	}
	return b.Bytes()
}

// tagName returns the lower-case name of the tag b starts with (after
// its "<") and whether it is an end tag; "" for a comment or doctype.
func tagName(b []byte) (string, bool) {
	closing := len(b) > 0 && b[0] == '/'
	if closing {
		b = b[1:]
	}
	n := 0
	for n < len(b) && (b[n] >= 'a' && b[n] <= 'z' || b[n] >= 'A' && b[n] <= 'Z' || n > 0 && b[n] >= '0' && b[n] <= '9') {
		n++
	}
	return string(bytes.ToLower(b[:n])), closing
}
