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

// AtNamed is At for a check of the whole mapping n (a policy's bounds): the
// error is placed at the node under n that its message names, as
// FileChecks finds it (a value or key it quotes, the field its leading path
// names, a field named with its value: "min_instances 5"), else at n.
func AtNamed(n *yaml.Node, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	at := named(n, err.Error())
	if at == nil {
		at = n
	}
	return &NodeError{Line: at.Line, Column: at.Column, Err: err}
}

// Named returns the node under n that msg names, as AtNamed places it (a
// value or key it quotes, the field its leading path names, a field named
// with its value), nil when it names none: a decoder that checks its own
// fields places the check there, else at the object as a whole (Whole).
func Named(n *yaml.Node, msg string) *yaml.Node {
	if n == nil {
		return nil
	}
	return named(n, msg)
}

// named returns the node under root that msg names, nil if none.
func named(root *yaml.Node, msg string) *yaml.Node {
	if ctx := contextRE.FindString(msg); ctx != "" && ctx != msg {
		if n := scopedPath(root, ctx, msg[len(ctx):]); n != nil {
			return n
		}
		if n := named(root, msg[len(ctx):]); n != nil {
			return n
		}
	}
	var quotes []string
	for _, m := range quotedRE.FindAllStringSubmatch(msg, -1) {
		if v, err := strconv.Unquote(`"` + m[1] + `"`); err == nil && v != "" {
			quotes = append(quotes, v)
		}
	}
	if v := pathValue(root, "", msg); v != nil && v != root {
		if n, _ := refine(v, quotes); n != nil {
			return n
		}
		if emptyCollection(v) {
			return v
		}
	}
	if n := pathScalar(root, msg); n != nil {
		return n
	}
	if n, _ := refine(root, quotes); n != nil {
		return n
	}
	if n := fieldPath(root, "", msg); n != nil {
		return n
	}
	return fieldValue(root, msg)
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

// FileDecoded is File for the files whose decoder makes its own checks
// (a runbook, a rollout definition, an analysis spec, a scaling policy, a
// chaos experiment): an error of neither kind is positioned as FileChecks
// positions it (the value or key it quotes, the field its leading path
// names, a field named with its value: "abort.interval 100y"), else reads
// "file: msg". No position is made up for a message naming nothing, but
// for a check of the whole object marked with Whole.
func FileDecoded(file string, data []byte, err error) error {
	if err == nil {
		return nil
	}
	var se *SyntaxError
	var ne *NodeError
	var te *yaml.TypeError
	var te2 *yamlv2.TypeError
	if errors.As(err, &se) || errors.As(Located(data, err), &se) || errors.As(err, &ne) || errors.As(err, &te) || errors.As(err, &te2) {
		return File(file, data, err)
	}
	out := FileChecks(file, data, nil, err)
	var we *wholeError
	if errors.As(err, &we) && !strings.Contains(err.Error(), "\n") && strings.HasPrefix(out.Error(), file+": ") {
		if n := wholeObject(data, err.Error()); n != nil {
			return &rewritten{msg: position(file, n.Line, n.Column) + Message(err.Error()), err: err}
		}
	}
	return out
}

// Whole marks err as a check of the object a file holds as a whole (a
// field it requires is missing: "faults: at least one fault is
// required"): FileDecoded places it, when it names no node of the file
// but the key of a top-level field, at that key, else at that object,
// the value of its name field, else its mapping, as promtool
// places a rule group's check at the group's name. errors.Is and
// errors.As still see err.
func Whole(err error) error {
	if err == nil {
		return nil
	}
	return &wholeError{err: err}
}

type wholeError struct{ err error }

func (w *wholeError) Error() string { return w.err.Error() }
func (w *wholeError) Unwrap() error { return w.err }

// wholeObject returns the node Whole places the error msg at: the field
// of the document's mapping its leading path names ("faults: ..." at the
// key faults when the file has it), else the value of the mapping's name
// field, else the mapping; nil when the document is no mapping.
func wholeObject(data []byte, msg string) *yaml.Node {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	m := doc.Content[0]
	if n := fieldPath(m, "", msg); n != nil {
		return n
	}
	if v, _ := child(m, "name"); v != nil && v.Kind == yaml.ScalarNode && v.Value != "" {
		return v
	}
	return m
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
	var fe *fieldsError
	errors.As(err, &fe)
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return &rewritten{msg: typeErrors(file, data, te.Errors, fe), err: err}
	}
	var te2 *yamlv2.TypeError
	if errors.As(err, &te2) {
		return &rewritten{msg: typeErrors(file, data, te2.Errors, fe), err: err}
	}
	if !locate {
		return InFile(file, Rewrite(err))
	}
	var sections []string
	if section != "" {
		sections = []string{section}
	}
	return &rewritten{msg: placeLines(file, data, sections, true, err.Error()), err: err}
}

// FileChecks positions the errors of the checks a program makes after
// decoding file (a reference to a user, a schedule, a channel that does
// not exist; a file a field names that is missing): each line of err at
// the node it names in file, as FileSection finds it (the value it quotes,
// else the key it quotes, else the field its leading path names), within
// the top-level section its leading path names ("escalation: ..."), else
// within the first of sections where it is found. A line that names no
// node of file, or that carries the position of another file, reads
// "file: msg": the key of a section alone is no position for a check.
func FileChecks(file string, data []byte, sections []string, err error) error {
	if err == nil {
		return nil
	}
	return &rewritten{msg: placeLines(file, data, sections, false, err.Error()), err: err}
}

// otherPositionRE matches a line that already has the position of a file
// ("runbooks/restart.yml:3:7: ...").
var otherPositionRE = regexp.MustCompile(`(?:^|\s)\S+:\d+:\d+: `)

// otherPosition reports whether l has the position of another file; the
// "template: name:1:10: " of a Go template's error is none.
func otherPosition(l string) bool {
	for _, m := range otherPositionRE.FindAllStringIndex(l, -1) {
		if !strings.HasSuffix(strings.TrimRight(l[:m[0]], " "), "template:") {
			return true
		}
	}
	return false
}

// placeLines positions each line of msg in file (see FileSection and
// FileChecks; sectionKey: a line found nowhere else is placed at the key
// of its section).
func placeLines(file string, data []byte, sections []string, sectionKey bool, msg string) string {
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		if !sectionKey && otherPosition(l) {
			lines[i] = file + ": " + Message(l)
			continue
		}
		line, col, ok := 0, 0, false
		if own := leadingSection(data, l); own != "" && (len(sections) == 0 || !sectionKey) {
			line, col, ok = quotedValue(data, own, l, sectionKey)
		} else if len(sections) == 0 {
			line, col, ok = quotedValue(data, "", l, sectionKey)
		}
		for _, s := range sections {
			if ok {
				break
			}
			line, col, ok = quotedValue(data, s, l, sectionKey)
		}
		if ok {
			lines[i] = position(file, line, col) + Message(l)
		} else {
			lines[i] = file + ": " + Message(l)
		}
	}
	return strings.Join(lines, "\n")
}

// leadingSection returns the top-level key of data that msg's leading path
// starts with ("incidents: ...", "webhook.bearer_token_file: ..."), "" if
// none.
func leadingSection(data []byte, msg string) string {
	prefix := pathPrefixRE.FindString(msg)
	if prefix == "" {
		return ""
	}
	name := pathSegmentRE.FindString(prefix)
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return ""
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == name {
			return name
		}
	}
	return ""
}

// contextRE is the leading context of a check's message that names the
// object checked by its name: `rollout "web": `, `policy "p": `.
var contextRE = regexp.MustCompile(`^(?:[A-Za-z_]\w* "(?:[^"\\]|\\.)*": )+`)

var quotedRE = regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`)

// quotedValue returns the position of the node of data (of its top-level
// section section, when not "") that msg names: the scalar value it
// quotes, else the key it quotes (refined by the quotes that follow: in
// `policy "p" level 1: unknown user "nobody"` the "nobody" of policy p),
// else the field its leading path names; else, for a section and when
// sectionKey, the position of the section's key.
func quotedValue(data []byte, section, msg string, sectionKey bool) (line, col int, ok bool) {
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
				key, root = root.Content[i], resolve(root.Content[i+1])
				break
			}
		}
		if key == nil || root == nil {
			return 0, 0, false
		}
	}
	if !sectionKey {
		// Past a context naming the object checked (`rollout "web": `,
		// the whole file), the node the rest names.
		if ctx := contextRE.FindString(msg); ctx != "" && ctx != msg {
			if n := scopedPath(root, ctx, msg[len(ctx):]); n != nil {
				return n.Line, n.Column, true
			}
			if line, col, ok := quotedValue(data, section, msg[len(ctx):], false); ok {
				return line, col, ok
			}
		}
	}
	var quotes []string
	for _, m := range quotedRE.FindAllStringSubmatch(msg, -1) {
		if v, err := strconv.Unquote(`"` + m[1] + `"`); err == nil && v != "" {
			quotes = append(quotes, v)
		}
	}
	v := pathValue(root, section, msg)
	if v != nil && v != root {
		// The quote within the field the leading path names
		// ("analysis.spec: spec \"api\" is not loaded").
		if n, _ := refine(v, quotes); n != nil {
			return n.Line, n.Column, true
		}
	}
	// An empty list or mapping a check refuses ("steps[0].command: []"),
	// as AtNamed places it; not a section's own value ("escalation: {}"
	// names no node for "escalation: default severities..."), nor for a
	// section of sred.yml, whose checks name the key.
	if !sectionKey && v != nil && v != root && emptyCollection(v) {
		return v.Line, v.Column, true
	}
	// The value a leading path reaches ("queries.errors: template: ...",
	// "step: 10s must be ..."), before a quote that may name another node.
	// Not for a section of sred.yml, whose checks name the key.
	if !sectionKey {
		if n := pathScalar(root, stripSection(msg, section)); n != nil {
			return n.Line, n.Column, true
		}
	}
	if n, _ := refine(root, quotes); n != nil {
		return n.Line, n.Column, true
	}
	if n := fieldPath(root, section, msg); n != nil {
		return n.Line, n.Column, true
	}
	if !sectionKey {
		if n := fieldValue(root, msg); n != nil {
			return n.Line, n.Column, true
		}
	}
	if key != nil && sectionKey {
		return key.Line, key.Column, true
	}
	return 0, 0, false
}

// stripSection returns msg without the leading "section: " of its path.
func stripSection(msg, section string) string {
	if section != "" {
		if rest, ok := strings.CutPrefix(msg, section+": "); ok {
			return rest
		}
		if rest, ok := strings.CutPrefix(msg, section+"."); ok {
			return rest
		}
	}
	return msg
}

// scopedPath returns the scalar value that rest's leading path names
// whole within the mapping the context ctx names by its last quote (`check
// "api": query: ...`: the query of the mapping whose value is "api"), the
// first such in the document; nil when there is none.
func scopedPath(root *yaml.Node, ctx, rest string) *yaml.Node {
	qs := quotedRE.FindAllStringSubmatch(ctx, -1)
	if len(qs) == 0 || pathPrefixRE.FindString(rest) == "" {
		return nil
	}
	q, err := strconv.Unquote(`"` + qs[len(qs)-1][1] + `"`)
	if err != nil || q == "" {
		return nil
	}
	for _, o := range occurrences(root, q) {
		if o.within.Kind != yaml.MappingNode || o.node == o.within {
			continue
		}
		if v := pathScalar(o.within, rest); v != nil {
			return v
		}
	}
	return nil
}

// emptyCollection reports whether n is an empty list or mapping written
// in the document ("command: []"): the value a check of that field
// refuses, where its error is placed rather than at the key.
func emptyCollection(n *yaml.Node) bool {
	return (n.Kind == yaml.SequenceNode || n.Kind == yaml.MappingNode) && len(n.Content) == 0
}

// pathScalar returns the scalar value that msg's leading path reaches from
// n, as far as the document has it ("query: template: x:1:2: ...": the
// value of query, which has no field template); nil when it reaches no
// scalar.
func pathScalar(n *yaml.Node, msg string) *yaml.Node {
	prefix := pathPrefixRE.FindString(msg)
	at := n
	for _, seg := range strings.Split(strings.TrimSuffix(prefix, ": "), ": ") {
		if j := strings.Index(seg, " ("); j >= 0 {
			seg = seg[:j]
		}
		for _, part := range pathSegmentRE.FindAllString(seg, -1) {
			next, _ := child(at, part)
			if next == nil {
				if at != n && at.Kind == yaml.ScalarNode {
					return at
				}
				return nil
			}
			at = next
		}
	}
	if at != n && at.Kind == yaml.ScalarNode {
		return at
	}
	return nil
}

// maxOccurrences bounds the places of one quoted text refine tries.
const maxOccurrences = 16

// refine returns the node under scope that the first of quotes found there
// names, refined by the quotes after it (each searched in what the one
// before it names: the mapping or list holding a value, the value of a
// key), and how many quotes that chain matched; nil when none is found.
// Of the places a quote is found, the one whose chain matches most wins,
// else the first in the document.
func refine(scope *yaml.Node, quotes []string) (*yaml.Node, int) {
	for i, q := range quotes {
		occ := occurrences(scope, q)
		if len(occ) == 0 {
			continue
		}
		var best *yaml.Node
		most := -1
		for _, o := range occ {
			n, m := refine(o.within, quotes[i+1:])
			if n == nil {
				n = o.node
			}
			if m > most {
				best, most = n, m
			}
		}
		return best, most + 1
	}
	return nil, 0
}

type occurrence struct{ node, within *yaml.Node }

// occurrences lists, in document order, the scalar values under n equal to
// v, else the keys equal to v: each with the node later quotes are
// searched in. An alias, a merge key's included, is followed to its
// anchor's value (where a value it brings in is written), each anchor's
// value once.
func occurrences(n *yaml.Node, v string) []occurrence {
	n = resolve(n)
	if n == nil {
		return nil
	}
	for _, key := range []bool{false, true} {
		var out []occurrence
		seen := map[*yaml.Node]bool{}
		var walk func(n *yaml.Node)
		walk = func(n *yaml.Node) {
			if n = resolve(n); n == nil || len(out) >= maxOccurrences {
				return
			}
			if n.Anchor != "" {
				if seen[n] {
					return
				}
				seen[n] = true
			}
			switch n.Kind {
			case yaml.MappingNode:
				for i := 0; i+1 < len(n.Content); i += 2 {
					k, val := n.Content[i], resolve(n.Content[i+1])
					if val == nil {
						continue
					}
					if key && k.Kind == yaml.ScalarNode && k.Value == v {
						out = append(out, occurrence{k, val})
					}
					if !key && val.Kind == yaml.ScalarNode && val.Value == v {
						out = append(out, occurrence{val, n})
					}
					walk(val)
				}
			case yaml.SequenceNode:
				for _, c := range n.Content {
					if c = resolve(c); c == nil {
						continue
					}
					if !key && c.Kind == yaml.ScalarNode && c.Value == v {
						out = append(out, occurrence{c, n})
					}
					walk(c)
				}
			}
		}
		if !key && n.Kind == yaml.ScalarNode && n.Value == v {
			out = append(out, occurrence{n, n})
		}
		walk(n)
		if len(out) > 0 {
			return out
		}
	}
	return nil
}

var (
	pathPrefixRE  = regexp.MustCompile(`^(?:[A-Za-z_][\w.]*(?:\[\d+\]|\.[A-Za-z_]\w*)*(?: \([^)]*\))?: )+`)
	pathSegmentRE = regexp.MustCompile(`[A-Za-z_]\w*|\[\d+\]`)
)

// fieldPath returns the node that msg's leading path names ("tokens[0]
// (ci): ...", "escalation: policies[1].levels[0]: ..."), as far as the
// document has it: the key of a field, the item of a list; nil when msg
// names no field of root. A first field equal to section is skipped. A
// path that the document has whole is followed by the field that the
// first word after it names, when there is one ("incidents:
// auto_resolve_after must be ...": the key auto_resolve_after).
func fieldPath(root *yaml.Node, section, msg string) *yaml.Node {
	prefix := pathPrefixRE.FindString(msg)
	if prefix == "" && section == "" {
		return nil
	}
	var found *yaml.Node
	n := root
	if prefix != "" {
		for i, seg := range strings.Split(strings.TrimSuffix(prefix, ": "), ": ") {
			if j := strings.Index(seg, " ("); j >= 0 {
				seg = seg[:j]
			}
			parts := pathSegmentRE.FindAllString(seg, -1)
			if i == 0 && len(parts) > 0 && parts[0] == section {
				parts = parts[1:]
			}
			for _, part := range parts {
				next, at := child(n, part)
				if next == nil {
					return found
				}
				n, found = next, at
			}
		}
	}
	if m := fieldWordRE.FindStringSubmatch(msg[len(prefix):]); m != nil {
		if _, at := child(n, m[1]); at != nil {
			return at
		}
	}
	return found
}

// fieldValueRE is a field named with its value in a message ("latency
// 10s must be ...", "target.instances 5 exceeds ...").
var fieldValueRE = regexp.MustCompile(`(?:^|[\s(])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*) ([^\s,;:()"]+)`)

// fieldValue returns the scalar value under root of the field that msg
// names together with that value ("abort.interval 100y": the value 100y
// of the key interval of a mapping that is the value of a key abort), the
// last such pair of msg found (the first ones are often the context:
// "fault of type latency: latency 10s ..."); nil when none is found.
func fieldValue(root *yaml.Node, msg string) *yaml.Node {
	var found *yaml.Node
	for _, m := range fieldValueRE.FindAllStringSubmatchIndex(msg, -1) {
		path := strings.Split(msg[m[2]:m[3]], ".")
		value := strings.TrimRight(msg[m[4]:m[5]], ".")
		if n := keyValue(root, path, value); n != nil {
			found = n
		}
	}
	return found
}

// keyValue returns the first scalar value equal to value, under n, of a
// key path (each key but the first the child of the one before it),
// following aliases and merge keys as child does.
func keyValue(n *yaml.Node, path []string, value string) *yaml.Node {
	return keyValueIn(n, path, value, map[*yaml.Node]bool{})
}

// keyValueIn is keyValue searching each anchor's value once (seen).
func keyValueIn(n *yaml.Node, path []string, value string, seen map[*yaml.Node]bool) *yaml.Node {
	if n = resolve(n); n == nil {
		return nil
	}
	if n.Anchor != "" {
		if seen[n] {
			return nil
		}
		seen[n] = true
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == path[0] {
				at := resolve(v)
				for _, p := range path[1:] {
					if at, _ = child(at, p); at == nil {
						break
					}
				}
				if at != nil && at.Kind == yaml.ScalarNode && at.Value == value {
					return at
				}
			}
			if r := keyValueIn(v, path, value, seen); r != nil {
				return r
			}
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if r := keyValueIn(c, path, value, seen); r != nil {
				return r
			}
		}
	}
	return nil
}

// pathValue returns the value of the field msg's leading path names when
// the document has the whole path, else nil.
func pathValue(root *yaml.Node, section, msg string) *yaml.Node {
	prefix := pathPrefixRE.FindString(msg)
	if prefix == "" {
		return nil
	}
	n := root
	for i, seg := range strings.Split(strings.TrimSuffix(prefix, ": "), ": ") {
		if j := strings.Index(seg, " ("); j >= 0 {
			seg = seg[:j]
		}
		parts := pathSegmentRE.FindAllString(seg, -1)
		if i == 0 && len(parts) > 0 && parts[0] == section {
			parts = parts[1:]
		}
		for _, part := range parts {
			if n, _ = child(n, part); n == nil {
				return nil
			}
		}
	}
	return n
}

// fieldWordRE is the word that may name a field after a path.
var fieldWordRE = regexp.MustCompile(`^([A-Za-z_]\w*) `)

// child returns the value of field or item part of n and the node that
// names it (the key, or the item), as the decoder reads them: an alias
// (*d) stands for the value of its anchor (&d), and a mapping's merge key
// (<<: *d, <<: [*a, *b]) brings in the fields it does not write itself.
// value and at are where they are written: a field or item brought in by
// an alias or a merge is the one under the anchor.
func child(n *yaml.Node, part string) (value, at *yaml.Node) {
	n = resolve(n)
	if n == nil {
		return nil, nil
	}
	if strings.HasPrefix(part, "[") {
		i, err := strconv.Atoi(strings.Trim(part, "[]"))
		if err != nil || n.Kind != yaml.SequenceNode || i >= len(n.Content) {
			return nil, nil
		}
		item := resolve(n.Content[i])
		return item, item
	}
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	return field(n, part, map[*yaml.Node]bool{})
}

// field returns the value of key part of mapping n and the key: a key n
// writes, else one of the mappings its merge key brings in, the first of
// a list of them first (yaml.v3 reads the last merge key of a mapping, as
// here). seen holds the mappings already searched: an anchor holding its
// own alias is searched once.
func field(n *yaml.Node, part string, seen map[*yaml.Node]bool) (value, at *yaml.Node) {
	if seen[n] {
		return nil, nil
	}
	seen[n] = true
	var merge *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if isMerge(k) {
			merge = n.Content[i+1]
			continue
		}
		if k.Value == part {
			return resolve(n.Content[i+1]), k
		}
	}
	if merge == nil {
		return nil, nil
	}
	srcs := []*yaml.Node{merge}
	if merge.Kind == yaml.SequenceNode {
		srcs = merge.Content
	}
	for _, src := range srcs {
		if src = resolve(src); src != nil && src.Kind == yaml.MappingNode {
			if v, k := field(src, part, seen); v != nil {
				return v, k
			}
		}
	}
	return nil, nil
}

// resolve returns the node alias n stands for (the value of its anchor),
// n itself when n is no alias.
func resolve(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode {
		return n.Alias
	}
	return n
}

// position is "file:line:col: ".
func position(file string, line, col int) string {
	return file + ":" + strconv.Itoa(line) + ":" + strconv.Itoa(col) + ": "
}

var problemLineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// typeErrors positions each of the decoder's "line N: msg" problems in
// file, one a line; fe (nil when the error is not marked by Fields) adds
// the place and the fields of an unknown field.
func typeErrors(file string, data []byte, problems []string, fe *fieldsError) string {
	nodes := documentNodes(data)
	out := make([]string, len(problems))
	for i, p := range problems {
		m := problemLineRE.FindStringSubmatch(p)
		if m == nil {
			out[i] = file + ": " + Message(p)
			continue
		}
		line, _ := strconv.Atoi(m[1])
		out[i] = position(file, line, problemNodeColumn(data, nodes, line, m[2])) + fe.message(data, line, m[2])
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
