// Package bidi shows the bidirectional control characters of a text
// instead of applying them. A right-to-left override (U+202E) or an
// isolate in an incident's title, a label or an annotation reorders how
// the text around it is displayed: a title can read otherwise than it is
// ("Trojan Source"). The console, the status page and its Atom feed, the
// acknowledge page and the HTML SLA report pass their rendered output
// through this package, so that every such
// character, wherever the alert- or user-supplied text is, shows as
// <U+202E>; the stored data and the JSON API keep them as they are.
package bidi

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// names are the characters shown, with their Unicode names: the
// embeddings, overrides and isolates and the implicit marks.
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

// IsControl reports whether r is one of the bidirectional control
// characters this package shows.
func IsControl(r rune) bool {
	_, ok := names[r]
	return ok
}

// Invisible reports whether r reorders or hides text without showing
// itself: a bidirectional control character (IsControl), a zero-width
// space, a word joiner, a byte order mark or a tag character. The
// notification channels and srectl on a terminal show each as its code.
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

// at returns the control character b starts with and its length in
// bytes, or 0. Each is encoded as D8 9C (U+061C) or E2 80/81 xx.
func at(b []byte) (rune, int) {
	if len(b) < 2 || b[0] != 0xD8 && b[0] != 0xE2 {
		return 0, 0
	}
	r, n := utf8.DecodeRune(b)
	if !IsControl(r) {
		return 0, 0
	}
	return r, n
}

// contains reports whether b holds a control character.
func contains(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if _, n := at(b[i:]); n > 0 {
			return true
		}
	}
	return false
}

// escaped writes r's visible form escaped for HTML or XML text and
// attribute values.
func escaped(b *bytes.Buffer, r rune) { fmt.Fprintf(b, "&lt;U+%04X&gt;", r) }

// XML returns an encoded XML document (the Atom feed) with every control
// character replaced by its visible form, escaped: <U+202E> in text and
// attribute values alike.
func XML(doc []byte) []byte {
	if !contains(doc) {
		return doc
	}
	var b bytes.Buffer
	b.Grow(len(doc) + 64)
	for i := 0; i < len(doc); {
		if r, n := at(doc[i:]); n > 0 {
			escaped(&b, r)
			i += n
			continue
		}
		b.WriteByte(doc[i])
		i++
	}
	return b.Bytes()
}

// rawText are the elements whose content is text, where markup is not
// parsed (script, style) or shown as text (title, textarea).
var rawText = map[string]bool{"script": true, "style": true, "textarea": true, "title": true}

// HTML returns a page rendered by html/template with every control
// character shown: in the page's text as a span of class "bidi" holding
// <U+202E>, whose title names the character (as code hosts warn of
// them); in attribute values, in the title, a textarea, a script or a
// style and inside inline SVG, where a span is no markup, as the text
// <U+202E>. html/template escapes every "<" of the data it renders, so
// each "<" of the page starts markup.
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
	)
	for i := 0; i < len(page); {
		if r, n := at(page[i:]); n > 0 {
			if inTag || raw != "" || foreign > 0 {
				escaped(&b, r)
			} else {
				fmt.Fprintf(&b, `<span class="bidi" title="U+%04X %s: a bidirectional control character in the text, shown instead of applied">&lt;U+%04X&gt;</span>`,
					r, names[r], r)
			}
			i += n
			continue
		}
		c := page[i]
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
		i++
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
