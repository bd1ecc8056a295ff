package yamlerr

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	yamlv2 "go.yaml.in/yaml/v2"
	yaml "go.yaml.in/yaml/v3"
)

var yamlLineRE = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// Syntax locates a YAML syntax error of the decoder (yaml.v3) in data, the
// bytes it decoded: it returns the error's message without its "yaml:
// line N:" prefix and the 1-based line and column of the problem (0 when
// unknown), or ok false when err is not such an error. yaml.v3 names a
// parser error ("did not find expected ...") by the 0-based line of the
// construct it was in (an unclosed "[" on line 11 of a list starting on
// line 5 read "line 4"), and an error on the first line, or in the bytes
// themselves (a control character), by no line. A problem that comes from
// a quote, "[" or "{" left open is reported where it opened, in a message
// of its own ("quoted string opened here is not closed before line 9").
func Syntax(data []byte, err error) (msg string, line, col int, ok bool) {
	m := yamlLineRE.FindStringSubmatch(err.Error())
	if m == nil {
		return "", 0, 0, false
	}
	msg = m[2]
	line, col = 1, 1
	if m[1] != "" {
		line, _ = strconv.Atoi(m[1])
	}
	switch {
	case strings.HasPrefix(m[2], "did not find expected "):
		// yaml.v2 (same parser) names the 0-based line of the token the
		// parser did not expect: the problem itself.
		if l, found := yamlV2ProblemLine(data, m[2]); found {
			line = l + 1
		} else {
			line++
		}
		// At the end of the stream: the last line.
		lines := bytes.Count(data, []byte("\n"))
		if !bytes.HasSuffix(data, []byte("\n")) {
			lines++
		}
		line = min(line, max(lines, 1))
	case m[1] == "":
		switch a := aliasErrorRE.FindStringSubmatch(m[2]); {
		case a != nil:
			// Composer errors name no line: find the alias.
			l, c, _ := findAlias(data, a[1])
			return msg, l, c, true
		case isReaderError(m[2]):
			l, c, _ := badCharacter(data)
			return msg, l, c, true
		case m[2] == "document contains excessive aliasing" || strings.HasPrefix(m[2], "attempted to go past"):
			return msg, 0, 0, true
		}
	}
	// A quote or bracket left open above the problem: name it.
	if u, l, c, found := unclosed(data, m[2], line); found {
		return u, l, c, true
	}
	line, col = problemColumn(data, msg, line)
	return msg, line, col, true
}

// problemColumn returns where on line the problem msg names is, as the
// decoder names no column: a tab in the indentation (for a tab error the
// decoder names the line above it; a tab in the indentation of the line is
// also the character that cannot start a token), else the first character
// of the line, the key or value the decoder stopped at (column 1 on a
// blank line).
func problemColumn(data []byte, msg string, line int) (int, int) {
	last := line
	switch {
	case strings.HasPrefix(msg, "found a tab character"):
		last = lineCount(data)
	case strings.HasPrefix(msg, "found character that cannot start any token"):
	default:
		last = 0
	}
	starts := lineStarts(data)
	for n := line; n <= last; n++ {
		text := lineAt(data, starts, n)
		if i := bytes.IndexByte(text[:indentation(text)], '\t'); i >= 0 {
			return n, column(text, i)
		}
	}
	text := lineAt(data, starts, line)
	return line, column(text, indentation(text))
}

// indentation is the length of the spaces and tabs line starts with.
func indentation(line []byte) int {
	return len(line) - len(bytes.TrimLeft(line, " \t"))
}

// quoteLine returns the line of the opening quote of the quoted scalar
// that msg, a yaml.v3 error about data, says is left open. yaml.v3 names
// the line of the quote, but the end of the stream when the quote is on
// the first line (0 in its 0-based count reads as no line); with a blank
// line before the document, the quote is never on the first line.
func quoteLine(data []byte, msg string) (int, bool) {
	l, found := shiftedLine(data, msg)
	return max(l-1, 1), found
}

// shiftedLine decodes data after a blank line and returns the line of
// yaml.v3's error when it is msg and has one: in the decoder's count, the
// 0-based line of data (1-based in the shifted document).
func shiftedLine(data []byte, msg string) (int, bool) {
	var n yaml.Node
	err := yaml.Unmarshal(append([]byte("\n"), data...), &n)
	if err == nil {
		return 0, false
	}
	m := yamlLineRE.FindStringSubmatch(err.Error())
	if m == nil || m[2] != msg || m[1] == "" {
		return 0, false
	}
	l, _ := strconv.Atoi(m[1])
	return l, true
}

// Located is err with the line Syntax finds, in the decoder's form ("yaml:
// line N: msg"), or err itself when it is not a syntax error or its line
// is not known. The error is a *SyntaxError, which also holds the column.
func Located(data []byte, err error) error {
	msg, line, col, ok := Syntax(data, err)
	if !ok || line == 0 {
		return err
	}
	return &SyntaxError{Msg: msg, Line: line, Column: col, err: err}
}

// SyntaxError is a YAML syntax error located by Syntax (Located).
type SyntaxError struct {
	Msg          string
	Line, Column int
	err          error
}

// Error is the decoder's form, "yaml: line N: msg".
func (e *SyntaxError) Error() string { return "yaml: line " + strconv.Itoa(e.Line) + ": " + e.Msg }

// Unwrap returns the decoder's error.
func (e *SyntaxError) Unwrap() error { return e.err }

// InFile is err positioned in file: a *SyntaxError reads as the errors of
// the SLO specs read, "file:line:col: invalid YAML: msg"; any other error
// reads "file: err". The *SyntaxError is found wrapped too (Rewrite,
// fmt.Errorf's %w). errors.Is and errors.As still see err.
func InFile(file string, err error) error {
	var se *SyntaxError
	if errors.As(err, &se) {
		return &rewritten{msg: file + ":" + strconv.Itoa(se.Line) + ":" + strconv.Itoa(se.Column) + ": invalid YAML: " + se.Msg, err: err}
	}
	return &rewritten{msg: file + ": " + err.Error(), err: err}
}

var aliasErrorRE = regexp.MustCompile(`^(?:unknown anchor|anchor) '(.*)' (?:referenced|value contains itself)$`)

// isReaderError reports whether msg is one of the errors yaml.v3 reports
// about the bytes themselves (an encoding error or a control character).
func isReaderError(msg string) bool {
	for _, p := range []string{"control characters", "invalid leading UTF-8", "invalid trailing UTF-8",
		"incomplete UTF-", "invalid Unicode", "invalid length of a UTF-8", "expected low surrogate", "unexpected low surrogate"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// findAlias returns where the first alias *name is.
func findAlias(data []byte, name string) (line, col int, ok bool) {
	alias := []byte("*" + name)
	for off := 0; ; {
		i := bytes.Index(data[off:], alias)
		if i < 0 {
			return 0, 0, false
		}
		i += off
		end := i + len(alias)
		// The whole name: an alias ends at a space, a line break or a flow
		// indicator.
		if end == len(data) || bytes.IndexByte([]byte(" \t\r\n,]}"), data[end]) >= 0 {
			before := data[:i]
			line = bytes.Count(before, []byte("\n")) + 1
			col = utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:]) + 1
			return line, col, true
		}
		off = end
	}
}

// yamlV2ProblemLine parses data with yaml.v2 and returns the line its
// error names when it is the same problem.
func yamlV2ProblemLine(data []byte, msg string) (int, bool) {
	dec := yamlv2.NewDecoder(bytes.NewReader(data))
	for {
		var v any
		err := dec.Decode(&v)
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) {
			return 0, false
		}
		m := yamlLineRE.FindStringSubmatch(err.Error())
		if m == nil || m[2] != msg {
			return 0, false
		}
		if m[1] == "" {
			return 0, true
		}
		line, _ := strconv.Atoi(m[1])
		return line, true
	}
}

// badCharacter finds the first byte YAML refuses (invalid UTF-8, a control
// character other than tab and line breaks): yaml.v3 reports these without
// a position.
func badCharacter(data []byte) (line, col int, ok bool) {
	line, col = 1, 1
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		bad := r == utf8.RuneError && size <= 1
		if !bad && r != '\t' && r != '\n' && r != '\r' && r != 0x85 {
			bad = r < 0x20 || (r >= 0x7f && r < 0xa0) || (r >= 0xd800 && r <= 0xdfff) || r == 0xfffe || r == 0xffff
		}
		if bad {
			return line, col, true
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		data = data[size:]
	}
	return 0, 0, false
}
