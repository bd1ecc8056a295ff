package cli

import (
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/rootuip/sre/pkg/bidi"
)

// termSafe writes what srectl prints with the control characters other
// than newline and tab replaced by their \u escapes (\u001b for ESC): the
// text comes from sred, and much of it from alert labels and annotations
// anyone who can fire an alert wrote, so an escape sequence in an
// incident's title must not move the cursor, rewrite the screen, set the
// terminal's title or hide a line (\r) when `srectl incidents list` prints
// it. JSON and YAML output carry no raw control characters but C1 ones
// (U+0080 to U+009F), whose \u escape JSON reads as the same character.
//
// With bidi set (srectl's output is a terminal), the bidirectional
// control characters and the invisible ones (bidi.Invisible: U+202E, a
// zero-width space, a tag character...) are written as their escapes too
// (\u202e, \U000e0041): on a terminal they would reorder or hide the text
// around them ("Trojan Source"), as the console and the pages show them.
// Into a pipe or a file they are written as they are: YAML's plain
// scalars would read the escape as text.
type termSafe struct {
	w    io.Writer
	bidi bool
	// carry holds the bytes of a character the last write ended in the
	// middle of: its other bytes come with the next write.
	carry []byte
}

func (t *termSafe) Write(p []byte) (int, error) {
	n := len(p)
	if len(t.carry) > 0 {
		p = append(t.carry, p...)
		t.carry = nil
	}
	if k := partialRune(p); k > 0 {
		t.carry = append([]byte(nil), p[len(p)-k:]...)
		p = p[:len(p)-k]
	}
	var out []byte
	start := 0
	for i := 0; i < len(p); {
		c := p[i]
		r, size := rune(c), 1
		if c >= utf8.RuneSelf {
			r, size = utf8.DecodeRune(p[i:])
		}
		escape := false
		switch {
		case c < 0x20 && c != '\n' && c != '\t', c == 0x7f:
			escape = true
		case r >= 0x80 && r <= 0x9f && size == 2:
			escape = true
		case t.bidi && size > 1 && bidi.Invisible(r):
			escape = true
		}
		if !escape {
			i += size
			continue
		}
		out = append(out, p[start:i]...)
		if r > 0xffff {
			out = fmt.Appendf(out, `\U%08x`, r)
		} else {
			out = fmt.Appendf(out, `\u%04x`, r)
		}
		i += size
		start = i
	}
	if out != nil {
		p = append(out, p[start:]...)
	}
	if len(p) > 0 {
		if _, err := t.w.Write(p); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// partialRune returns how many bytes at the end of p are the start of a
// UTF-8 character not complete in p (0 when none).
func partialRune(p []byte) int {
	for k := 1; k <= utf8.UTFMax-1 && k <= len(p); k++ {
		c := p[len(p)-k]
		if c < utf8.RuneSelf {
			return 0
		}
		if utf8.RuneStart(c) {
			if utf8.FullRune(p[len(p)-k:]) {
				return 0
			}
			return k
		}
	}
	return 0
}

// Flush writes the bytes held back by the last write (the output ended in
// the middle of a character).
func (t *termSafe) Flush() error {
	if len(t.carry) == 0 {
		return nil
	}
	c := t.carry
	t.carry = nil
	_, err := t.w.Write(c)
	return err
}
