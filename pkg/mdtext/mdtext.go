// Package mdtext escapes text from outside (alert labels, configured names)
// for the Markdown reports sred writes (the SLA report, the noise report),
// so that a value keeps to its table cell and shows as written: no line
// break, pipe, emphasis, code span, HTML or link.
package mdtext

import (
	"strings"
	"unicode"
)

var (
	// A backslash is escaped too: kept as it is, a value's "\[" read
	// "\\[", an escaped backslash before a live bracket (a link), and
	// its "\|" a pipe that ended the table cell.
	cell = strings.NewReplacer(`\`, `\\`, "|", `\|`, "`", "\\`", "*", `\*`, "_", `\_`, "<", "&lt;", ">", "&gt;", "[", `\[`, "]", `\]`)
	text = strings.NewReplacer(`\`, `\\`, "|", `\|`, "<", "&lt;", ">", "&gt;", "[", `\[`, "]", `\]`)
)

// Cell escapes a value (a label value, a configured name) for a table
// cell: control characters (newlines, tabs, terminal escapes) become
// spaces, and Markdown syntax is escaped.
func Cell(s string) string { return cell.Replace(oneLine(s)) }

// Text escapes sred's own text with values in it (a suggestion naming an
// alert) for a table cell: as Cell, but its code spans and emphasis stay.
func Text(s string) string { return text.Replace(oneLine(s)) }

func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}
