package runbook

import (
	"reflect"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/yamlerr"
)

// errAt is a validation error at node n of a runbook file: Parse names
// its line and column (yamlerr.File).
func errAt(n *yaml.Node, format string, args ...any) error {
	return yamlerr.At(n, format, args...)
}

var nodeUnmarshaler = reflect.TypeFor[yaml.Unmarshaler]()

// checkFields reports mapping keys of n that the Go type t does not declare,
// recursively, so that a misspelt field is an error with its line instead of
// being ignored. Types that implement yaml.Unmarshaler check their own fields.
// Aliases and merge keys are read as the decoder reads them (a misspelt
// field an anchor holds is placed there), each node checked once.
func checkFields(n *yaml.Node, t reflect.Type, what string, top bool) error {
	return fieldChecker{}.check(n, t, what, top)
}

// fieldChecker holds the nodes checkFields has checked, by the type they
// were checked as: an anchor aliased many times is checked once.
type fieldChecker map[checkedNode]bool

type checkedNode struct {
	n *yaml.Node
	t reflect.Type
}

func (c fieldChecker) check(n *yaml.Node, t reflect.Type, what string, top bool) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if !top && reflect.PointerTo(t).Implements(nodeUnmarshaler) {
		return nil
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if c[checkedNode{n, t}] {
		return nil
	}
	c[checkedNode{n, t}] = true
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil // the decoder reports the type mismatch
		}
		fields := map[string]reflect.StructField{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			fields[name] = f
		}
		pairs, err := yamlerr.Pairs(n)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, p := range pairs {
			k, v := p.Key, p.Value
			f, ok := fields[k.Value]
			if !ok {
				names := make([]string, 0, len(fields))
				for name := range fields {
					names = append(names, name)
				}
				sort.Strings(names)
				return errAt(k, "unknown field %q in %s (known fields: %s)", k.Value, what, strings.Join(names, ", "))
			}
			if seen[k.Value] {
				return errAt(k, "field %q set twice in %s", k.Value, what)
			}
			seen[k.Value] = true
			if err := c.check(v, f.Type, what+" "+k.Value, false); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for _, item := range n.Content {
			if err := c.check(item, t.Elem(), what, false); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		pairs, err := yamlerr.Pairs(n)
		if err != nil {
			return err
		}
		for _, p := range pairs {
			if err := c.check(p.Value, t.Elem(), what, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// decodeStrict checks n for unknown fields and decodes it into v.
func decodeStrict(n *yaml.Node, v any, what string) error {
	if err := checkFields(n, reflect.TypeOf(v), what, true); err != nil {
		return err
	}
	// A *yaml.TypeError as it is: the decoder adds its problems to those
	// of the document, which Parse positions at their keys and values.
	return n.Decode(v)
}
