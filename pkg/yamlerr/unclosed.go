package yamlerr

import (
	"bytes"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

const (
	endOfStream   = "found unexpected end of stream"
	docIndicator  = "found unexpected document indicator"
	unclosedSeq   = "did not find expected ',' or ']'"
	unclosedMap   = "did not find expected ',' or '}'"
	quoteNotClose = "quoted string opened here is not closed"
)

// unclosed finds the quote, "[" or "{" left open that the problem msg at
// line (the line Syntax found) comes from, and returns the message and
// position that name it: "quoted string opened here is not closed before
// line 9" at the quote's line and column. A quote left open runs on over
// the lines below it until the next quote closes it, and the decoder
// notices only there; a "[" left open, at the next key. ok is false when
// the problem is not one of these; a quote or bracket is blamed only when
// closing it on its line (the bracket: on the line before the problem)
// lets the decoder read past the problem.
func unclosed(data []byte, msg string, line int) (string, int, int, bool) {
	switch msg {
	case endOfStream, docIndicator:
		return openedQuote(data, msg)
	case unclosedSeq:
		return openedFlow(data, msg, line, '[', ']')
	case unclosedMap:
		return openedFlow(data, msg, line, '{', '}')
	}
	return closedLater(data, line)
}

// openedQuote names the quote of a quoted scalar the decoder met the end
// of the stream or a document marker in.
func openedQuote(data []byte, msg string) (string, int, int, bool) {
	q, found := quoteLine(data, msg)
	if !found {
		return "", 0, 0, false
	}
	col := 1
	if off, _, found := openQuote(lineOf(data, q)); found {
		col = column(lineOf(data, q), off)
	}
	if msg == docIndicator {
		if n, found := markerLine(data, q); found {
			return quoteNotClose + " before line " + strconv.Itoa(n), q, col, true
		}
	}
	return quoteNotClose, q, col, true
}

// closedLater names the quote opened above line, the problem's, that no
// quote closed before it: the decoder read the lines between as the
// string, ended it at a quote on line and found what follows that quote
// wrong.
func closedLater(data []byte, line int) (string, int, int, bool) {
	if line <= 1 {
		return "", 0, 0, false
	}
	prefix := data[:lineStart(data, line)]
	if q, found := quoteLine(prefix, endOfStream); found && q < line {
		if col, found := closesAt(data, q, line); found {
			return quoteNotClose + " before line " + strconv.Itoa(line), q, col, true
		}
	}
	// The quote that closed it may sit inside a later value (promql:
	// 'up{job="api"}'), so that the lines above the problem end in another
	// string: look for the nearest line above that opens a quote whose
	// closing on its line lets the decoder read past the problem.
	starts := lineStarts(data)
	budget := max(1, maxSearchBytes/max(1, len(data)))
	for q := line - 1; q >= max(1, line-maxQuoteSearch) && budget > 0; q-- {
		if _, _, opens := openQuote(lineAt(data, starts, q)); !opens {
			continue
		}
		budget--
		if col, found := closesAt(data, q, line); found {
			return quoteNotClose + " before line " + strconv.Itoa(line), q, col, true
		}
	}
	return "", 0, 0, false
}

// redecoded counts the bytes readsPast decoded (tests read it).
var redecoded atomic.Int64

// maxQuoteSearch bounds the lines closedLater looks at above a problem for
// a quote left open, and maxSearchBytes the bytes it decodes again doing
// so (each line that opens a quote is one decoding of the file): a posted
// spec of 1 MiB is decoded at most 8 more times, a file of 40 KiB for each
// of the 200 lines.
const (
	maxQuoteSearch = 200
	maxSearchBytes = 8 << 20
)

// closesAt returns the column of the quote line q opens and does not close
// when closing it at the end of q lets the decoder read past line.
func closesAt(data []byte, q, line int) (int, bool) {
	text := lineOf(data, q)
	off, quote, found := openQuote(text)
	if !found || !readsPast(closeLine(data, q, string(quote)), line) {
		return 0, false
	}
	return column(text, off), true
}

// openedFlow names the "[" or "{" (open) of a flow sequence or mapping
// that msg, a decoder error at line, says is not closed, when it is on a
// line above: the decoder notices at the next line that cannot continue
// the collection, or at the end of the stream.
func openedFlow(data []byte, msg string, line int, open, close byte) (string, int, int, bool) {
	f, found := flowLine(data, msg)
	if !found || f >= line {
		return "", 0, 0, false
	}
	// The decoder stopped at the end of the stream: the closing bracket
	// belongs on the last line.
	l, found := yamlV2ProblemLine(data, msg)
	eof := found && l+1 > lineCount(data)
	last := line - 1
	if eof {
		last = line
	}
	starts := lineStarts(data)
	for last > f && blank(lineAt(data, starts, last)) {
		last--
	}
	text := lineOf(data, f)
	off, found := openBracket(text, open)
	if !found {
		return "", 0, 0, false
	}
	closed := false
	for _, fixed := range closeFlow(data, last, close) {
		if readsPast(fixed, line) {
			closed = true
			break
		}
	}
	if !closed {
		return "", 0, 0, false
	}
	opened := strconv.Quote(string(open)) + " opened here is not closed"
	if eof {
		return opened, f, column(text, off), true
	}
	return opened + " before line " + strconv.Itoa(line), f, column(text, off), true
}

// flowLine returns the line of the "[" or "{" that msg, a yaml.v3 error
// about data, names: yaml.v3 reports the (0-based) line of the collection
// it was reading, no line for the first.
func flowLine(data []byte, msg string) (int, bool) {
	l, found := shiftedLine(data, msg)
	return l, found && l > 0
}

// readsPast reports whether the decoder reads data without a syntax error
// at or before line.
func readsPast(data []byte, line int) bool {
	redecoded.Add(int64(len(data)))
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if err == nil {
			continue
		}
		m := yamlLineRE.FindStringSubmatch(err.Error())
		if m == nil {
			// The end of the stream, or an error that is not about syntax.
			return true
		}
		l := 1
		if m[1] != "" {
			l, _ = strconv.Atoi(m[1])
		}
		if strings.HasPrefix(m[2], "did not find expected ") {
			if p, found := yamlV2ProblemLine(data, m[2]); found {
				l = p + 1
			}
		}
		return l > line
	}
}

// closeLine returns data with s added at the end of line n.
func closeLine(data []byte, n int, s string) []byte {
	end := lineStart(data, n) + len(lineOf(data, n))
	out := make([]byte, 0, len(data)+len(s))
	out = append(out, data[:end]...)
	out = append(out, s...)
	return append(out, data[end:]...)
}

// maxCloseFlow bounds the ways closeFlow tries: each is a copy of the
// whole document decoded again, and a line of a posted spec (up to 1 MiB)
// can hold thousands of " #".
const maxCloseFlow = 4

// closeFlow returns the ways to close a flow collection on line n: at the
// end of the line, or before a comment on it (the first maxCloseFlow-1
// places that can start one: a " #" inside a quoted string cannot).
func closeFlow(data []byte, n int, close byte) [][]byte {
	text := lineOf(data, n)
	start := lineStart(data, n)
	out := [][]byte{closeLine(data, n, string(close))}
	for i := 1; i < len(text) && len(out) < maxCloseFlow; i++ {
		if text[i] == '#' && (text[i-1] == ' ' || text[i-1] == '\t') {
			at := start + i - 1
			fixed := append(append(append([]byte{}, data[:at]...), close), data[at:]...)
			out = append(out, fixed)
		}
	}
	return out
}

// openQuote returns the offset and the quote of the quoted scalar line
// opens and does not close, if any. A quote opens a scalar at the start of
// the line's content or after a space, "[", "{" or ","; inside a plain
// scalar (it's) it is a character like any other.
func openQuote(line []byte) (int, byte, bool) {
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			return 0, 0, false
		}
		if (c == '"' || c == '\'') && startsToken(line, i) {
			end := quoteEnd(line, i)
			if end < 0 {
				return i, c, true
			}
			i = end
		}
	}
	return 0, 0, false
}

// openBracket returns the offset of the last open (a "[" or "{") on line
// that the line does not close.
func openBracket(line []byte, open byte) (int, bool) {
	var stack []int
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			i = len(line)
		case (c == '"' || c == '\'') && startsToken(line, i):
			end := quoteEnd(line, i)
			if end < 0 {
				i = len(line)
				break
			}
			i = end
		case c == '[' || c == '{':
			stack = append(stack, i)
		case (c == ']' || c == '}') && len(stack) > 0:
			stack = stack[:len(stack)-1]
		}
	}
	for j := len(stack) - 1; j >= 0; j-- {
		if line[stack[j]] == open {
			return stack[j], true
		}
	}
	return 0, false
}

func startsToken(line []byte, i int) bool {
	return i == 0 || bytes.IndexByte([]byte(" \t[{,"), line[i-1]) >= 0
}

// quoteEnd returns the offset of the quote that closes the quoted scalar
// opened at line[open], or -1 when the line does not close it.
func quoteEnd(line []byte, open int) int {
	q := line[open]
	for j := open + 1; j < len(line); j++ {
		switch {
		case q == '"' && line[j] == '\\':
			j++
		case line[j] == q && q == '\'' && j+1 < len(line) && line[j+1] == '\'':
			j++
		case line[j] == q:
			return j
		}
	}
	return -1
}

// markerLine returns the first line after line q that is a document
// marker ("---" or "...").
func markerLine(data []byte, q int) (int, bool) {
	starts := lineStarts(data)
	for n := q + 1; n <= len(starts); n++ {
		text := lineAt(data, starts, n)
		for _, m := range []string{"---", "..."} {
			if bytes.HasPrefix(text, []byte(m)) && (len(text) == 3 || text[3] == ' ' || text[3] == '\t') {
				return n, true
			}
		}
	}
	return 0, false
}

// blank reports whether line holds nothing or only a comment.
func blank(line []byte) bool {
	text := bytes.TrimSpace(line)
	return len(text) == 0 || text[0] == '#'
}

// lineStart returns the offset of line n (1-based) in data, len(data)
// past its last line.
func lineStart(data []byte, n int) int {
	off := 0
	for ; n > 1; n-- {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			return len(data)
		}
		off += i + 1
	}
	return off
}

// lineOf returns line n (1-based) of data without its line break.
func lineOf(data []byte, n int) []byte {
	text := data[lineStart(data, n):]
	if i := bytes.IndexByte(text, '\n'); i >= 0 {
		text = text[:i]
	}
	return bytes.TrimSuffix(text, []byte("\r"))
}

// lineStarts returns the offset of each line of data, the first line's
// first: the loops over lines read them from it, each line found once
// (lineOf walks data from its start, so a loop of it over a document of
// many lines took time in the square of their number).
func lineStarts(data []byte) []int {
	starts := make([]int, 1, lineCount(data))
	for off := 0; ; {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 || off+i+1 == len(data) {
			return starts
		}
		off += i + 1
		starts = append(starts, off)
	}
}

// lineAt returns line n (1-based) of data, starts its lineStarts, without
// its line break; as lineOf.
func lineAt(data []byte, starts []int, n int) []byte {
	if n < 1 || n > len(starts) {
		return nil
	}
	text := data[starts[n-1]:]
	if i := bytes.IndexByte(text, '\n'); i >= 0 {
		text = text[:i]
	}
	return bytes.TrimSuffix(text, []byte("\r"))
}

// lineCount returns the number of lines of data.
func lineCount(data []byte) int {
	lines := bytes.Count(data, []byte("\n"))
	if !bytes.HasSuffix(data, []byte("\n")) {
		lines++
	}
	return max(lines, 1)
}

// column returns the 1-based column of line[off], in characters.
func column(line []byte, off int) int {
	return utf8.RuneCount(line[:off]) + 1
}
