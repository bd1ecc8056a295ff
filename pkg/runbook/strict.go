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
func checkFields(n *yaml.Node, t reflect.Type, what string, top bool) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if !top && reflect.PointerTo(t).Implements(nodeUnmarshaler) {
		return nil
	}
	if n.Kind == yaml.AliasNode {
		return errAt(n, "YAML aliases are not supported in runbooks")
	}
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
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
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
			if err := checkFields(v, f.Type, what+" "+k.Value, false); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for _, c := range n.Content {
			if err := checkFields(c, t.Elem(), what, false); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := checkFields(n.Content[i+1], t.Elem(), what, false); err != nil {
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
