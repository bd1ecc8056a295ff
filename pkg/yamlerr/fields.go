package yamlerr

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/suggest"
)

// maxListedFields is how many fields a mapping may have for an unknown
// field's error to list them all when none is close to the one written.
const maxListedFields = 12

// Fields marks err, an error of decoding a file into root (a value of, or
// a pointer to, the Go type decoded), so that File, FileSection and
// FileDecoded say of an unknown field the decoder reports where it is and
// what was meant: `unknown field "intervall" in global (did you mean
// "interval"?)`, or, when no field is close, the fields allowed there if
// they are at most 12 (`(known fields: alertname, timeout)`). more names
// the keys root's own inline map accepts (the sections of subsystems).
// The message is as Message writes it when the field's place in the file
// does not lead to a struct of root's type (a type decoding itself in
// another shape). errors.Is and errors.As still see err.
func Fields(err error, root any, more ...string) error {
	if err == nil {
		return nil
	}
	return &fieldsError{err: err, root: reflect.TypeOf(root), more: more}
}

type fieldsError struct {
	err  error
	root reflect.Type
	more []string
}

func (e *fieldsError) Error() string { return e.err.Error() }
func (e *fieldsError) Unwrap() error { return e.err }

// unknownFieldRE is the decoder's message for an unknown field.
var unknownFieldRE = regexp.MustCompile(`^field (.+) not found in type (\S+)$`)

// message is Message(msg) for the problem msg the decoder reports at line
// of data, with the place and the fields of an unknown field when e (which
// may be nil) knows the type decoded.
func (e *fieldsError) message(data []byte, line int, msg string) string {
	out := Message(msg)
	if e == nil || e.root == nil {
		return out
	}
	m := unknownFieldRE.FindStringSubmatch(msg)
	if m == nil {
		return out
	}
	return out + e.hint(data, line, m[1], m[2])
}

// hint is what follows `unknown field "name"` for the key name at line of
// data that the decoder found no field for in goType: " in section" and
// the field meant or the fields allowed; "" when the key's place does not
// lead to a struct of goType.
func (e *fieldsError) hint(data []byte, line int, name, goType string) string {
	path, ok := keyPath(data, line, name)
	if !ok {
		return ""
	}
	t, ok := walkType(e.root, path)
	if !ok || !sameType(t, goType) {
		return ""
	}
	names, open := fieldNames(t)
	if open {
		if len(path) > 0 {
			return ""
		}
		names = append(names, e.more...)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	where := ""
	if len(path) > 0 {
		where = " in " + renderPath(path)
	}
	if c := suggest.Closest(name, names); c != "" && c != name {
		return where + fmt.Sprintf(" (did you mean %q?)", c)
	}
	if len(names) > 0 && len(names) <= maxListedFields {
		return where + " (known fields: " + strings.Join(names, ", ") + ")"
	}
	return where
}

// pathSegment is a step from a node to one under it: the value of a key
// of a mapping, or an item of a list.
type pathSegment struct {
	key   string
	index int
	item  bool
}

// keyPath returns the path, from the top of the (first) document of data,
// of the mapping that writes key name at line.
func keyPath(data []byte, line int, name string) ([]pathSegment, bool) {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return nil, false
	}
	return findKey(doc.Content[0], line, name, nil)
}

func findKey(n *yaml.Node, line int, name string, path []pathSegment) ([]pathSegment, bool) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; k.Line == line && k.Value == name {
				return path, true
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := append(path[:len(path):len(path)], pathSegment{key: n.Content[i].Value})
			if found, ok := findKey(n.Content[i+1], line, name, p); ok {
				return found, true
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := append(path[:len(path):len(path)], pathSegment{index: i, item: true})
			if found, ok := findKey(c, line, name, p); ok {
				return found, true
			}
		}
	}
	return nil, false
}

// walkType returns the type path leads to from t.
func walkType(t reflect.Type, path []pathSegment) (reflect.Type, bool) {
	for _, s := range path {
		t = deref(t)
		switch t.Kind() {
		case reflect.Struct:
			if s.item {
				return nil, false
			}
			f, ok := structField(t, s.key)
			if !ok {
				return nil, false
			}
			t = f
		case reflect.Map:
			if s.item {
				return nil, false
			}
			t = t.Elem()
		case reflect.Slice, reflect.Array:
			if !s.item {
				return nil, false
			}
			t = t.Elem()
		default:
			return nil, false
		}
	}
	t = deref(t)
	return t, t.Kind() == reflect.Struct
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// yamlFields calls fn with each field of struct t as the YAML decoder
// names it, the fields of its inline structs included; it reports whether
// t has an inline map (which takes any other key).
func yamlFields(t reflect.Type, fn func(name string, ft reflect.Type)) (open bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.PkgPath != "" && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, flags, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(","+flags+",", ",inline,") {
			switch ft := deref(f.Type); ft.Kind() {
			case reflect.Struct:
				if yamlFields(ft, fn) {
					open = true
				}
			case reflect.Map:
				open = true
			}
			continue
		}
		if f.PkgPath != "" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fn(name, f.Type)
	}
	return open
}

// structField returns the type of the field of struct t named name.
func structField(t reflect.Type, name string) (reflect.Type, bool) {
	var found reflect.Type
	yamlFields(t, func(n string, ft reflect.Type) {
		if n == name && found == nil {
			found = ft
		}
	})
	return found, found != nil
}

// fieldNames returns the names of the fields of struct t, and whether an
// inline map takes other keys.
func fieldNames(t reflect.Type) ([]string, bool) {
	var names []string
	open := yamlFields(t, func(n string, _ reflect.Type) { names = append(names, n) })
	return names, open
}

// sameType reports whether goType, as the decoder names it, is t, or the
// alias a type that decodes itself declares of its own struct ("type plain
// X" in X's UnmarshalYAML, named "pkg.plain").
func sameType(t reflect.Type, goType string) bool {
	goType = strings.TrimLeft(goType, "*")
	if goType == t.String() {
		return true
	}
	pkg, _, ok := strings.Cut(t.String(), ".")
	return ok && goType == pkg+".plain"
}

var plainKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// renderPath writes path as the checks of the project name a place:
// "alertmanager.watchdog", "escalation.policies[0].levels[1]".
func renderPath(path []pathSegment) string {
	var b strings.Builder
	for i, s := range path {
		switch {
		case s.item:
			b.WriteString("[" + strconv.Itoa(s.index) + "]")
		default:
			if i > 0 {
				b.WriteByte('.')
			}
			if plainKeyRE.MatchString(s.key) {
				b.WriteString(s.key)
			} else {
				b.WriteString(limits.Quote(s.key))
			}
		}
	}
	return b.String()
}
