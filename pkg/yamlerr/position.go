package yamlerr

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// NodeError is a problem a decoder's own checks (an UnmarshalYAML) find at
// a node of the document: File positions it at the node's line and column.
type NodeError struct {
	Line, Column int
	Err          error
}

// At returns a *NodeError at node n.
func At(n *yaml.Node, format string, args ...any) error {
	return &NodeError{Line: n.Line, Column: n.Column, Err: fmt.Errorf(format, args...)}
}

// Error is "line N: msg", the decoder's form for one problem.
func (e *NodeError) Error() string { return "line " + strconv.Itoa(e.Line) + ": " + e.Err.Error() }

// Unwrap returns the problem.
func (e *NodeError) Unwrap() error { return e.Err }

// File positions err, an error of decoding data (the bytes of file), in
// file as the errors of the SLO specs read: "file:line:col: msg", one line
// per problem, without the Go type names of the decoder (Message). A
// syntax error reads as InFile says; a problem of the decoder (an unknown
// field, a value of the wrong kind) gets the column of the key or value it
// names; an error of neither kind reads "file: err". errors.Is and
// errors.As still see err.
func File(file string, data []byte, err error) error {
	if err == nil {
		return nil
	}
	var se *SyntaxError
	if !errors.As(err, &se) {
		err = Located(data, err)
	}
	if errors.As(err, &se) {
		return InFile(file, err)
	}
	var ne *NodeError
	if errors.As(err, &ne) {
		return &rewritten{msg: position(file, ne.Line, ne.Column) + Message(ne.Err.Error()), err: err}
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return &rewritten{msg: typeErrors(file, data, te.Errors), err: err}
	}
	return InFile(file, Rewrite(err))
}

// position is "file:line:col: ".
func position(file string, line, col int) string {
	return file + ":" + strconv.Itoa(line) + ":" + strconv.Itoa(col) + ": "
}

var problemLineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// typeErrors positions each of the decoder's "line N: msg" problems in
// file, one a line.
func typeErrors(file string, data []byte, problems []string) string {
	nodes := documentNodes(data)
	out := make([]string, len(problems))
	for i, p := range problems {
		m := problemLineRE.FindStringSubmatch(p)
		if m == nil {
			out[i] = file + ": " + Message(p)
			continue
		}
		line, _ := strconv.Atoi(m[1])
		out[i] = position(file, line, problemNodeColumn(data, nodes, line, m[2])) + Message(m[2])
	}
	return strings.Join(out, "\n")
}

var (
	fieldProblemRE = regexp.MustCompile("^(?:field (.+?) (?:not found|already set) in type \\S+|mapping key \"(.*)\" already defined at line \\d+)$")
	valueProblemRE = regexp.MustCompile("^cannot unmarshal (!!\\w+)(?: `((?s:.*))`)? into \\S+$")
)

// problemNodeColumn returns the column of the node the decoder's problem
// msg on line names: the key of a field, the value of a wrong kind; else
// the first character of the line.
func problemNodeColumn(data []byte, nodes []nodeAt, line int, msg string) int {
	if m := fieldProblemRE.FindStringSubmatch(msg); m != nil {
		name := m[1] + m[2]
		for _, n := range nodes {
			if n.line == line && n.key && n.value == name {
				return n.column
			}
		}
	}
	if m := valueProblemRE.FindStringSubmatch(msg); m != nil {
		for _, n := range nodes {
			if n.line == line && !n.key && n.tag == m[1] && decoderValueMatches(n.value, m[2]) {
				return n.column
			}
		}
	}
	text := lineAt(data, lineStarts(data), line)
	return column(text, indentation(text))
}

// decoderValueMatches reports whether shown is how the decoder shows value:
// whole up to ten bytes, else its first seven bytes and "...".
func decoderValueMatches(value, shown string) bool {
	if len(value) > decoderCutBytes+len(decoderCutMark) {
		return shown == value[:decoderCutBytes]+decoderCutMark
	}
	return shown == value
}

// nodeAt is a node of a document where File looks for a problem's column.
type nodeAt struct {
	line, column int
	key          bool
	tag, value   string
}

// documentNodes lists the nodes of every document of data, in order, up to
// the first that does not parse.
func documentNodes(data []byte) []nodeAt {
	var out []nodeAt
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		if dec.Decode(&doc) != nil {
			return out
		}
		out = appendNodes(out, &doc, false)
	}
}

func appendNodes(out []nodeAt, n *yaml.Node, key bool) []nodeAt {
	if n.Kind != yaml.DocumentNode {
		out = append(out, nodeAt{line: n.Line, column: n.Column, key: key, tag: n.ShortTag(), value: nodeValue(n)})
	}
	for i, c := range n.Content {
		out = appendNodes(out, c, n.Kind == yaml.MappingNode && i%2 == 0)
	}
	return out
}

// nodeValue is the value the decoder names: a scalar's, none for a list or
// a mapping.
func nodeValue(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return n.Value
	}
	return ""
}
