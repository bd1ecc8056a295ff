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
// With bidi set (srectl's output is a terminal), the characters the
// console and the notification channels show (bidi.Text: U+202E, a
// zero-width space, a tag character...) are written as their escapes too
// (\u202e, \U000e0041): on a terminal they would reorder or hide the text
// around them ("Trojan Source"). As there, a zero-width joiner or
// non-joiner between two visible non-ASCII characters is kept (👩‍💻, Indic
// and Persian words) and escaped elsewhere (\u200d), and the tags of an
// emoji flag after 🏴 are kept (the flag of Wales); bidi.Next decides, and
// the bytes it needs to see what follows (a write ending after a joiner,
// or in a flag's tags) wait for the next write or Flush. Into a pipe or a
// file they are written as they are: YAML's plain scalars would read the
// escape as text.
type termSafe struct {
	w    io.Writer
	bidi bool
	// carry holds the bytes the last write ended with whose escaping
	// depends on what comes next: a character the write ended in the
	// middle of, and with bidi a joiner or a flag's tags.
	carry []byte
	// prev is the last character written (0 before any): with bidi,
	// whether a joiner or a flag's tags are escaped depends on it.
	prev rune
}

func (t *termSafe) Write(p []byte) (int, error) {
	n := len(p)
	if len(t.carry) > 0 {
		p = append(t.carry, p...)
		t.carry = nil
	}
	if err := t.write(p, true); err != nil {
		return 0, err
	}
	return n, nil
}

// write writes p escaped; with more (writes may follow), the bytes at its
// end whose escaping depends on what follows are kept in carry.
func (t *termSafe) write(p []byte, more bool) error {
	var out []byte
	start := 0
	i := 0
scan:
	for i < len(p) {
		c := p[i]
		r, size, escape := rune(c), 1, false
		switch {
		case c < utf8.RuneSelf:
			escape = c < 0x20 && c != '\n' && c != '\t' || c == 0x7f
		case t.bidi:
			var need bool
			if r, size, escape, need = bidi.Next(p[i:], t.prev, more); need {
				break scan
			}
		default:
			if more && !utf8.FullRune(p[i:]) {
				break scan
			}
			r, size = utf8.DecodeRune(p[i:])
		}
		if r >= 0x80 && r <= 0x9f && size == 2 {
			escape = true // a C1 control
		}
		t.prev = r
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
	if i < len(p) {
		t.carry = append([]byte(nil), p[i:]...)
		p = p[:i]
	}
	if out != nil {
		p = append(out, p[start:]...)
	}
	if len(p) > 0 {
		if _, err := t.w.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// Flush writes the bytes held back by the last write, escaped as at the
// end of the output: a joiner there is escaped, a flag's tags without
// their CANCEL TAG too, a character cut short is written as it is.
func (t *termSafe) Flush() error {
	if len(t.carry) == 0 {
		return nil
	}
	c := t.carry
	t.carry = nil
	return t.write(c, false)
}
