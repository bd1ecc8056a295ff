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

// Lines escapes a text of several lines written by a person (an
// incident's impact statement) for a paragraph of its own: each line as
// Text, after its leading spaces, with a character that would start a
// Markdown block there (a heading, a list, a quote, a rule, a code
// fence) escaped, so that the text can make no heading or section of the
// document it is in; blank lines stay paragraph breaks.
func Lines(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i, l := range lines {
		l = strings.TrimLeft(Text(l), " ")
		if l != "" && strings.ContainsRune("#=-+*_~`", rune(l[0])) {
			l = `\` + l
		}
		lines[i] = l
	}
	return strings.Join(lines, "\n")
}

func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}
