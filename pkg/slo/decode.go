package slo

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/yamlerr"
)

// Position is a line and column in a spec file.
type Position struct {
	Line, Column int
	// null: the field is written without a value (field: or field: ~),
	// which leaves it unset, as when it is left out.
	null bool
}

// positions maps a field path (e.g. "slos[0].objective") to where its value is.
type positions map[string]Position

// decoder decodes a yaml.v3 node tree into the spec types strictly: unknown
// fields, wrong kinds and unparsable values are errors naming the field path
// and its position. It records the position of every field it decodes.
type decoder struct {
	file string
	pos  positions
	// durations holds the text of every duration decoded, by field path.
	durations map[string]string
	errs      Errors
	// budget is how many nodes decoding may visit, aliases expanded
	// (aliasBudget); over it, decoding stops with one error.
	budget, visited int
	overBudget      bool
}

// Alias expansion budget: a document may expand to aliasExpansionFactor
// times its own nodes, plus aliasExpansionFloor. yaml.v3 limits aliases
// when it decodes into Go values, but this decoder walks the node tree and
// follows aliases itself: 1,000 SLOs aliasing one anchored window list
// took 35 s and 3.7 GB to validate.
const (
	aliasExpansionFactor = 10
	aliasExpansionFloor  = 10000
)

// aliasBudget is the number of nodes decoding n may visit.
func aliasBudget(n *yaml.Node) int {
	count := 0
	var walk func(*yaml.Node)
	walk = func(n *yaml.Node) {
		count++
		if n.Kind != yaml.AliasNode {
			for _, c := range n.Content {
				walk(c)
			}
		}
	}
	walk(n)
	return aliasExpansionFactor*count + aliasExpansionFloor
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Column: n.Column, Field: path, Msg: fmt.Sprintf(format, args...)})
}

var (
	durationType  = reflect.TypeOf(model.Duration(0))
	thresholdType = reflect.TypeOf(Threshold(0))
	nodeType      = reflect.TypeOf(yaml.Node{})
)

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.overBudget {
		return
	}
	if d.budget > 0 {
		if d.visited++; d.visited > d.budget {
			d.overBudget = true
			d.errorf(n, path, "aliases expand the document to more than %d values (%d times its size plus %d): too much aliasing", d.budget, aliasExpansionFactor, aliasExpansionFloor)
			return
		}
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.pos[path] = Position{Line: n.Line, Column: n.Column}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		d.pos[path] = Position{Line: n.Line, Column: n.Column, null: true}
		return
	}
	switch v.Type() {
	case nodeType:
		v.Set(reflect.ValueOf(*n))
		return
	case durationType:
		if !d.scalar(n, path) {
			return
		}
		dur, err := model.ParseDuration(n.Value)
		if err != nil {
			d.errorf(n, path, "invalid duration %q (use a Prometheus duration such as 5m, 24h, 30d)", n.Value)
			return
		}
		v.Set(reflect.ValueOf(dur))
		if d.durations != nil {
			d.durations[path] = n.Value
		}
		return
	case thresholdType:
		if !d.scalar(n, path) {
			return
		}
		if isNumberTag(n) {
			if f, ok := d.number(n, path); ok {
				v.SetFloat(f)
			}
			return
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(n.Value), 64); err == nil && isQuoted(n) {
			d.errorf(n, path, "expected a number or a duration, got the string %q (write it without quotes)", n.Value)
			return
		} else if err == nil && !finite(f) {
			d.errorf(n, path, "%s is not a finite number", n.Value)
			return
		}
		dur, err := model.ParseDuration(n.Value)
		if err != nil {
			d.errorf(n, path, "invalid threshold %q (use a number in the histogram's unit or a duration such as 200ms)", n.Value)
			return
		}
		v.SetFloat(time.Duration(dur).Seconds())
		if d.durations != nil {
			d.durations[path] = n.Value
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "expected a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errorf(n, path, "expected a mapping, got %s", kindName(n))
			return
		}
		m := reflect.MakeMap(v.Type())
		for _, kv := range d.pairs(n, path) {
			k, val := kv[0], kv[1]
			if !d.scalar(k, path) {
				continue
			}
			p := join(path, k.Value)
			if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
				d.errorf(k, p, "duplicate key %q", k.Value)
				continue
			}
			ev := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, ev, p)
			m.SetMapIndex(reflect.ValueOf(k.Value), ev)
		}
		v.Set(m)
	case reflect.String:
		if d.scalar(n, path) {
			v.SetString(n.Value)
		}
	case reflect.Float64:
		if !d.scalar(n, path) {
			return
		}
		if f, ok := d.number(n, path); ok {
			v.SetFloat(f)
		}
	case reflect.Bool:
		if !d.scalar(n, path) {
			return
		}
		// Only a YAML boolean (true, false): not 1, "true" or yes.
		var b bool
		if n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.errorf(n, path, "invalid boolean %q (use true or false)", n.Value)
			return
		}
		v.SetBool(b)
	default:
		d.errorf(n, path, "unsupported field type %s", v.Type())
	}
}

// isNumberTag reports whether a scalar is a YAML number (!!int or !!float,
// resolved or explicit).
func isNumberTag(n *yaml.Node) bool {
	t := n.ShortTag()
	return t == "!!int" || t == "!!float"
}

func isQuoted(n *yaml.Node) bool {
	return n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// number decodes a scalar that must be a finite YAML number: a string
// (quoted "99.9", or a plain NaN, Inf or hex float that YAML reads as a
// string) is not a number, and neither are .nan and .inf.
func (d *decoder) number(n *yaml.Node, path string) (float64, bool) {
	if !isNumberTag(n) {
		f, err := strconv.ParseFloat(strings.TrimSpace(n.Value), 64)
		switch {
		case err == nil && isQuoted(n):
			d.errorf(n, path, "expected a number, got the string %q (write it without quotes)", n.Value)
		case err == nil && !finite(f):
			d.errorf(n, path, "%s is not a finite number", n.Value)
		default:
			d.errorf(n, path, "invalid number %q", n.Value)
		}
		return 0, false
	}
	var f float64
	if err := n.Decode(&f); err != nil {
		d.errorf(n, path, "invalid number %q", n.Value)
		return 0, false
	}
	if !finite(f) {
		d.errorf(n, path, "%s is not a finite number", n.Value)
		return 0, false
	}
	return f, true
}

func (d *decoder) scalar(n *yaml.Node, path string) bool {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "expected a single value, got %s", kindName(n))
		return false
	}
	return true
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "an unexpected node"
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	t := structFieldsOf(v.Type())
	var seen uint64 // by field index; structs with more fields use seenMore
	var seenMore map[int]bool
	for _, kv := range d.pairs(n, path) {
		k, val := kv[0], kv[1]
		if !d.scalar(k, path) {
			continue
		}
		p := join(path, k.Value)
		idx, ok := t.fields[k.Value]
		if !ok {
			d.errorf(k, p, "unknown field %q (known fields: %s)", k.Value, strings.Join(t.known, ", "))
			continue
		}
		if idx < 64 {
			if seen&(1<<idx) != 0 {
				d.errorf(k, p, "duplicate field %q", k.Value)
				continue
			}
			seen |= 1 << idx
		} else {
			if seenMore[idx] {
				d.errorf(k, p, "duplicate field %q", k.Value)
				continue
			}
			if seenMore == nil {
				seenMore = map[int]bool{}
			}
			seenMore[idx] = true
		}
		d.decode(val, v.Field(idx), p)
	}
	if t.line != nil {
		if f := v.FieldByIndex(t.line); f.CanSet() {
			f.SetInt(int64(n.Line))
		}
	}
}

// pairs returns the keys and values of a mapping with its YAML merge keys
// (`<<: *base`, `<<: [*a, *b]`) expanded as YAML merges them
// (yamlerr.Pairs): a key written in the mapping wins over a merged one, and
// an earlier merged mapping over a later one; a mapping merged again, or a
// merge of the mapping that holds it, is read once. A key written twice is
// still a duplicate.
func (d *decoder) pairs(n *yaml.Node, path string) [][2]*yaml.Node {
	ps, err := yamlerr.Pairs(n)
	if err != nil {
		var ne *yamlerr.NodeError
		if !errors.As(err, &ne) {
			ne = &yamlerr.NodeError{Line: n.Line, Column: n.Column, Err: err}
		}
		d.errs = append(d.errs, &Error{File: d.file, Line: ne.Line, Column: ne.Column, Field: join(path, "<<"), Msg: ne.Err.Error()})
		return nil
	}
	out := make([][2]*yaml.Node, len(ps))
	for i, p := range ps {
		out[i] = [2]*yaml.Node{p.Key, p.Value}
	}
	return out
}

// structFields is what decodeStruct needs of a struct type: its fields by
// yaml name, their names in order, and the index of its `Line int` field
// (nil if none).
type structFields struct {
	fields map[string]int
	known  []string
	line   []int
}

var structFieldsCache sync.Map // reflect.Type -> *structFields

func structFieldsOf(t reflect.Type) *structFields {
	if sf, ok := structFieldsCache.Load(t); ok {
		return sf.(*structFields)
	}
	sf := &structFields{fields: map[string]int{}}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		sf.fields[tag] = i
		sf.known = append(sf.known, tag)
	}
	if f, ok := t.FieldByName("Line"); ok && f.Type.Kind() == reflect.Int {
		sf.line = f.Index
	}
	structFieldsCache.Store(t, sf)
	return sf
}

// DecodeStrict decodes a YAML node into v, a pointer to a struct with yaml
// tags, as strictly as spec files are read: unknown fields, wrong kinds and
// unparsable values are errors naming file, line, column and field path
// (under prefix). Supported field types are the ones of this package's
// spec: structs, pointers, slices, map[string]T, string, float64, bool,
// model.Duration and Threshold. A struct field `Line int` with no yaml tag
// receives the line of its mapping. Importers use it for their formats.
func DecodeStrict(file string, n *yaml.Node, v any, prefix string) error {
	_, err := DecodeStrictPositions(file, n, v, prefix)
	return err
}

// DecodeStrictPositions is DecodeStrict that also returns where the value
// of every decoded field path (e.g. "slos[0].objective") is in the file, so
// that importers can point validation errors at the exact line (see
// Spec.SetPosition).
func DecodeStrictPositions(file string, n *yaml.Node, v any, prefix string) (map[string]Position, error) {
	d := &decoder{file: file, pos: positions{}, budget: aliasBudget(n)}
	d.decode(n, reflect.ValueOf(v).Elem(), prefix)
	return d.pos, d.errs.err()
}
