package cli

import (
	"fmt"
	"io"
)

// termSafe writes what srectl prints with the control characters other
// than newline and tab replaced by their \u escapes (\u001b for ESC): the
// text comes from sred, and much of it from alert labels and annotations
// anyone who can fire an alert wrote, so an escape sequence in an
// incident's title must not move the cursor, rewrite the screen, set the
// terminal's title or hide a line (\r) when `srectl incidents list` prints
// it. JSON and YAML output carry no raw control characters but C1 ones
// (U+0080 to U+009F), whose \u escape JSON reads as the same character.
type termSafe struct {
	w io.Writer
	// carry is set when the last write ended with 0xC2, held back: it may
	// be the first byte of a C1 character whose second byte comes next.
	carry bool
}

func (t *termSafe) Write(p []byte) (int, error) {
	n := len(p)
	if t.carry {
		p = append([]byte{0xC2}, p...)
		t.carry = false
	}
	if len(p) > 0 && p[len(p)-1] == 0xC2 {
		p, t.carry = p[:len(p)-1], true
	}
	var out []byte
	start := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		r := rune(c)
		switch {
		case c < 0x20 && c != '\n' && c != '\t', c == 0x7f:
		case c == 0xC2 && i+1 < len(p) && p[i+1] >= 0x80 && p[i+1] <= 0x9f:
			r = rune(p[i+1])
		default:
			continue
		}
		out = append(out, p[start:i]...)
		out = fmt.Appendf(out, `\u%04x`, r)
		if r >= 0x80 {
			i++
		}
		start = i + 1
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

// Flush writes a 0xC2 held back by the last write (the output ended in the
// middle of a character).
func (t *termSafe) Flush() error {
	if !t.carry {
		return nil
	}
	t.carry = false
	_, err := t.w.Write([]byte{0xC2})
	return err
}
