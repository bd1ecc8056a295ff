package yamlerr

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	yamlv2 "go.yaml.in/yaml/v2"
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
// names (yaml.v3's and yaml.v2's, as exporter-toolkit and
// prometheus/common decode with yaml.v2); an error of neither kind reads
// "file: err". errors.Is and errors.As still see err.
func File(file string, data []byte, err error) error {
	return fileError(file, data, err, false, "")
}

// FileSection is File for the files whose every problem names its line
// and column (the sections of sred.yml that subsystems decode, the users
// file, the web config file): an error of neither kind, such as a
// decoder's own check ("not a valid duration string: \"forever\""), is
// positioned at the value it quotes, else at the key it quotes, else at
// the field its leading path names ("tokens[0] (ci): ..."), else, when
// section is not "", at the key of that top-level section, in which the
// search stays; each line of a multi-line error on its own.
func FileSection(file string, data []byte, section string, err error) error {
	return fileError(file, data, err, true, section)
}

func fileError(file string, data []byte, err error, locate bool, section string) error {
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
	var te2 *yamlv2.TypeError
	if errors.As(err, &te2) {
		return &rewritten{msg: typeErrors(file, data, te2.Errors), err: err}
	}
	if !locate {
		return InFile(file, Rewrite(err))
	}
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		if line, col, ok := quotedValue(data, section, l); ok {
			lines[i] = position(file, line, col) + Message(l)
		} else {
			lines[i] = file + ": " + Message(l)
		}
	}
	return &rewritten{msg: strings.Join(lines, "\n"), err: err}
}

var quotedRE = regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`)

// quotedValue returns the position of the first scalar value of data (of
// its top-level section section, when not "") that msg quotes; else, for
// a section, the position of the section's key.
func quotedValue(data []byte, section, msg string) (line, col int, ok bool) {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) != 1 {
		return 0, 0, false
	}
	root := doc.Content[0]
	var key *yaml.Node
	if section != "" {
		if root.Kind != yaml.MappingNode {
			return 0, 0, false
		}
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == section {
				key, root = root.Content[i], root.Content[i+1]
				break
			}
		}
		if key == nil {
			return 0, 0, false
		}
	}
	nodes := appendNodes(nil, root, false)
	// A value first ("forever" of a bad duration), then a key (the name
	// of a user whose entry lacks a field).
	for _, key := range []bool{false, true} {
		for _, m := range quotedRE.FindAllStringSubmatch(msg, -1) {
			v, err := strconv.Unquote(`"` + m[1] + `"`)
			if err != nil || v == "" {
				continue
			}
			for _, n := range nodes {
				if n.key == key && n.tag != "!!map" && n.tag != "!!seq" && n.value == v {
					return n.line, n.column, true
				}
			}
		}
	}
	if n := fieldPath(root, section, msg); n != nil {
		return n.Line, n.Column, true
	}
	if key != nil {
		return key.Line, key.Column, true
	}
	return 0, 0, false
}

var (
	pathPrefixRE  = regexp.MustCompile(`^(?:[A-Za-z_][\w.]*(?:\[\d+\])*(?: \([^)]*\))?: )+`)
	pathSegmentRE = regexp.MustCompile(`[A-Za-z_]\w*|\[\d+\]`)
)

// fieldPath returns the node that msg's leading path names ("tokens[0]
// (ci): ...", "escalation: policies[1].levels[0]: ..."), as far as the
// document has it: the key of a field, the item of a list; nil when msg
// names no field of root. A first segment equal to section is skipped.
func fieldPath(root *yaml.Node, section, msg string) *yaml.Node {
	prefix := pathPrefixRE.FindString(msg)
	if prefix == "" {
		return nil
	}
	var found *yaml.Node
	n := root
	for i, seg := range strings.Split(strings.TrimSuffix(prefix, ": "), ": ") {
		if j := strings.Index(seg, " ("); j >= 0 {
			seg = seg[:j]
		}
		if i == 0 && seg == section {
			continue
		}
		for _, part := range pathSegmentRE.FindAllString(seg, -1) {
			next, at := child(n, part)
			if next == nil {
				return found
			}
			n, found = next, at
		}
	}
	return found
}

// child returns the value of field or item part of n and the node that
// names it (the key, or the item).
func child(n *yaml.Node, part string) (value, at *yaml.Node) {
	if strings.HasPrefix(part, "[") {
		i, err := strconv.Atoi(strings.Trim(part, "[]"))
		if err != nil || n.Kind != yaml.SequenceNode || i >= len(n.Content) {
			return nil, nil
		}
		return n.Content[i], n.Content[i]
	}
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == part {
			return n.Content[i+1], n.Content[i]
		}
	}
	return nil, nil
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
