package rulegen

import (
	"bytes"
	"slices"
	"strings"
	"sync"
	"unicode"

	"github.com/prometheus/prometheus/model/rulefmt"
	yaml "go.yaml.in/yaml/v3"
)

// encodeRuleGroups writes groups as yaml.v3 (indent 2) encodes
// rulefmt.RuleGroups, byte for byte, without reflection and the generic
// emitter: the encoding took 60% of `srectl generate` once the load check
// was cheap (docs/benchmarks.md). The common scalars (plain and literal
// block strings of printable ASCII) are written directly; any other scalar
// is encoded by yaml.v3 on its own, and groups using fields generation never
// sets are encoded whole by yaml.v3. TestEncodeMatchesYAML holds the output
// to yaml.v3's.
func encodeRuleGroups(buf *bytes.Buffer, groups []rulefmt.RuleGroup) error {
	if !simpleGroups(groups) {
		return encodeYAML(buf, rulefmt.RuleGroups{Groups: groups})
	}
	e := ruleEncoder{buf: buf}
	if len(groups) == 0 {
		buf.WriteString("groups: []\n")
		return nil
	}
	buf.WriteString("groups:\n")
	for _, g := range groups {
		buf.WriteString("  - name: ")
		if err := e.value(g.Name, 4); err != nil {
			return err
		}
		if len(g.Rules) == 0 {
			buf.WriteString("    rules: []\n")
			continue
		}
		buf.WriteString("    rules:\n")
		for i := range g.Rules {
			r := &g.Rules[i]
			first := true
			field := func(name string) {
				if first {
					buf.WriteString("      - ")
					first = false
				} else {
					buf.WriteString("        ")
				}
				buf.WriteString(name)
				buf.WriteString(": ")
			}
			if r.Record != "" {
				field("record")
				if err := e.value(r.Record, 8); err != nil {
					return err
				}
			}
			if r.Alert != "" {
				field("alert")
				if err := e.value(r.Alert, 8); err != nil {
					return err
				}
			}
			field("expr")
			if err := e.value(r.Expr, 8); err != nil {
				return err
			}
			if r.For != 0 {
				field("for")
				if err := e.value(r.For.String(), 8); err != nil {
					return err
				}
			}
			for _, m := range []struct {
				name string
				m    map[string]string
			}{{"labels", r.Labels}, {"annotations", r.Annotations}} {
				if len(m.m) == 0 {
					continue
				}
				field(m.name)
				buf.Truncate(buf.Len() - 1) // "labels:" ends the line
				buf.WriteByte('\n')
				keys := e.keys[:0]
				for k := range m.m {
					keys = append(keys, k)
				}
				slices.SortFunc(keys, yamlKeyCompare)
				e.keys = keys
				for _, k := range keys {
					buf.WriteString("          ")
					buf.WriteString(k)
					buf.WriteString(": ")
					if err := e.value(m.m[k], 10); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// encodedSizeHint is a little more than the size of f as Marshal writes it
// (encodeRuleGroups and the header), for sizing its buffer.
func encodedSizeHint(f *File) int {
	n := len(Header) + 256
	for _, s := range f.Sources {
		n += len(s) + 11
	}
	for _, g := range f.Groups {
		n += len(g.Name) + 32
		for i := range g.Rules {
			r := &g.Rules[i]
			n += 64 + len(r.Record) + len(r.Alert) + len(r.Expr) + 12*strings.Count(r.Expr, "\n")
			for k, v := range r.Labels {
				n += len(k) + len(v) + 16
			}
			for k, v := range r.Annotations {
				n += len(k) + len(v) + 16
			}
		}
	}
	return n + n/16
}

// simpleGroups: only the fields generation sets are used (no group interval,
// query offset, limit or labels, no keep_firing_for), and every label and
// annotation name is written plain.
func simpleGroups(groups []rulefmt.RuleGroup) bool {
	for _, g := range groups {
		if g.Interval != 0 || g.QueryOffset != nil || g.Limit != 0 || len(g.Labels) > 0 {
			return false
		}
		for i := range g.Rules {
			r := &g.Rules[i]
			if r.KeepFiringFor != 0 {
				return false
			}
			for k := range r.Labels {
				if !plainScalar(k) {
					return false
				}
			}
			for k := range r.Annotations {
				if !plainScalar(k) {
					return false
				}
			}
		}
	}
	return true
}

func encodeYAML(buf *bytes.Buffer, v any) error {
	enc := yaml.NewEncoder(buf)
	enc.SetIndent(2)
	// Not closed: Close would end the stream ("...") after an open-ended
	// last scalar, which Marshal never wrote.
	return enc.Encode(v)
}

type ruleEncoder struct {
	buf  *bytes.Buffer
	keys []string // reused to sort each map's keys
}

// otherScalars are the scalars yaml.v3 encoded (see other), across files:
// a yaml.v3 encoder costs some 100 KiB of buffers, and the same label value
// (a Slack channel, say) recurs in every service's file.
var otherScalars sync.Map

// value writes s as the value of a mapping key at column indent, and the
// line break that ends it.
func (e *ruleEncoder) value(s string, indent int) error {
	switch {
	case plainScalar(s):
		e.buf.WriteString(s)
		e.buf.WriteByte('\n')
		return nil
	case singleQuotedScalar(s):
		e.buf.WriteByte('\'')
		e.buf.WriteString(strings.ReplaceAll(s, "'", "''"))
		e.buf.WriteString("'\n")
		return nil
	case decimalNumber(s):
		e.buf.WriteByte('"')
		e.buf.WriteString(s)
		e.buf.WriteString("\"\n")
		return nil
	case literalScalar(s):
		e.buf.WriteByte('|')
		body, clip := strings.CutSuffix(s, "\n")
		if !clip {
			e.buf.WriteByte('-')
		}
		e.buf.WriteByte('\n')
		for line := range strings.SplitSeq(body, "\n") {
			if line != "" {
				e.buf.WriteString(spaces[:indent+2])
				e.buf.WriteString(line)
			}
			e.buf.WriteByte('\n')
		}
		return nil
	}
	enc, err := e.other(s)
	if err != nil {
		return err
	}
	// Continuation lines (a literal or folded block) are indented from
	// the key's column.
	first, rest, _ := strings.Cut(enc, "\n")
	e.buf.WriteString(first)
	e.buf.WriteByte('\n')
	for line := range strings.SplitSeq(strings.TrimSuffix(rest, "\n"), "\n") {
		if rest == "" {
			break
		}
		if line != "" {
			e.buf.WriteString(spaces[:indent])
			e.buf.WriteString(line)
		}
		e.buf.WriteByte('\n')
	}
	return nil
}

const spaces = "                                "

// other encodes s with yaml.v3 as a mapping value at column 0, without
// the key.
func (e *ruleEncoder) other(s string) (string, error) {
	if enc, ok := otherScalars.Load(s); ok {
		return enc.(string), nil
	}
	var b bytes.Buffer
	if err := encodeYAML(&b, map[string]string{"k": s}); err != nil {
		return "", err
	}
	enc := strings.TrimPrefix(b.String(), "k: ")
	otherScalars.Store(s, enc)
	return enc, nil
}

// plainScalar reports whether yaml.v3 writes s plain, for the strings this
// decides quickly: printable ASCII on one line, starting with a letter, '_',
// '$', '(' or '/', not a YAML 1.1 boolean or null, with no ": ", " #" or
// trailing ':' or space. Other strings may be plain too; they go the slow way.
func plainScalar(s string) bool {
	if s == "" {
		return false
	}
	c := s[0]
	if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '$' || c == '(' || c == '/') {
		return false
	}
	if len(s) <= 5 && reservedWord(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return false
		}
		switch c {
		case ':':
			if i+1 == len(s) || s[i+1] == ' ' {
				return false
			}
		case '#':
			if s[i-1] == ' ' {
				return false
			}
		}
	}
	return s[len(s)-1] != ' '
}

// singleQuotedScalar reports whether yaml.v3 writes s single-quoted, for
// the strings this decides quickly: printable ASCII on one line, starting
// with a letter or '_' (so a string, never a number, and plain unless it
// holds ": ", " #" or ends with ':' or a space), not plain.
func singleQuotedScalar(s string) bool {
	if s == "" || plainScalar(s) || reservedWord(s) {
		return false
	}
	c := s[0]
	if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// decimalNumber: digits with at most one decimal point inside, which YAML
// reads as an integer or a float, so yaml.v3 double-quotes the string.
func decimalNumber(s string) bool {
	dot := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
		case c == '.' && !dot && i > 0 && i < len(s)-1:
			dot = true
		default:
			return false
		}
	}
	return s != ""
}

// reservedWord: the words YAML resolves to a boolean or null (yaml.v3's
// resolve table and its YAML 1.1 booleans), which yaml.v3 quotes.
func reservedWord(s string) bool {
	switch s {
	case "y", "Y", "yes", "Yes", "YES", "on", "On", "ON",
		"n", "N", "no", "No", "NO", "off", "Off", "OFF",
		"true", "True", "TRUE", "false", "False", "FALSE",
		"null", "Null", "NULL":
		return true
	}
	return false
}

// literalScalar reports whether yaml.v3 writes s as a literal block
// without indentation or keep hints, for the strings this decides quickly:
// several lines of printable ASCII, the first not starting with a space,
// no space before a line break or at the end, at most one final line break.
func literalScalar(s string) bool {
	if !strings.Contains(s, "\n") || s[0] == ' ' || s[0] == '\n' || s[len(s)-1] == ' ' || strings.HasSuffix(s, "\n\n") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\n' {
			if s[i-1] == ' ' {
				return false
			}
			continue
		}
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// yamlKeyCompare orders mapping keys as yaml.v3 does (its keyList.Less for
// strings: runs of digits compare as numbers, letters before other
// characters after a digit).
func yamlKeyCompare(a, b string) int {
	if a == b {
		return 0
	}
	if yamlKeyLess(a, b) {
		return -1
	}
	return 1
}

func yamlKeyLess(a, b string) bool {
	if isASCII(a) && isASCII(b) {
		// Bytes are runes: no conversion (label names are ASCII).
		return keyLess([]byte(a), []byte(b))
	}
	return keyLess([]rune(a), []rune(b))
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func keyLess[E byte | rune](ar, br []E) bool {
	digits := false
	for i := 0; i < len(ar) && i < len(br); i++ {
		if ar[i] == br[i] {
			digits = unicode.IsDigit(rune(ar[i]))
			continue
		}
		al := unicode.IsLetter(rune(ar[i]))
		bl := unicode.IsLetter(rune(br[i]))
		if al && bl {
			return ar[i] < br[i]
		}
		if al || bl {
			if digits {
				return al
			}
			return bl
		}
		var ai, bi int
		var an, bn int64
		if ar[i] == '0' || br[i] == '0' {
			for j := i - 1; j >= 0 && unicode.IsDigit(rune(ar[j])); j-- {
				if ar[j] != '0' {
					an = 1
					bn = 1
					break
				}
			}
		}
		for ai = i; ai < len(ar) && unicode.IsDigit(rune(ar[ai])); ai++ {
			an = an*10 + int64(ar[ai]-'0')
		}
		for bi = i; bi < len(br) && unicode.IsDigit(rune(br[bi])); bi++ {
			bn = bn*10 + int64(br[bi]-'0')
		}
		if an != bn {
			return an < bn
		}
		if ai != bi {
			return ai < bi
		}
		return ar[i] < br[i]
	}
	return len(ar) < len(br)
}
