package jsonerr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/rootuip/sre/pkg/limits"
)

// CheckKeys returns the error of b, one JSON value v was decoded from
// without error by encoding/json, whose keys are ambiguous: a key given
// twice in one object (with the object's path; encoding/json keeps the
// last one, where a proxy or another reader may have read the first), or
// a key naming a field of v only without regard to case (with the
// field's name; encoding/json accepts "Labels" for "labels"). The API's
// bodies (pkg/web's UnmarshalStrict and UnmarshalLenient, the
// Alertmanager webhook's own decoder) are read through it.
func CheckKeys(b []byte, v any) error { return CheckKeysOf(b, v, "the JSON body") }

// CheckKeysOf is CheckKeys naming b itself top (an error about the keys
// of b's outermost object reads "top: key ..."), or with no name before
// the error when top is "" (the caller names the value: an import line).
// It reads b once, for both checks: the first ambiguous key in the order
// of b is the one named.
func CheckKeysOf(b []byte, v any, top string) error {
	return checkKeys(b, reflect.TypeOf(v), top)
}

// at prefixes msg with where, when there is one.
func at(where, msg string) error {
	if where == "" {
		return errors.New(msg)
	}
	return fmt.Errorf("%s: %s", where, msg)
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

// keysOf is the type whose keys checkKeys checks for a value decoded into
// t: t without its pointers, or nil when the value reads its own keys (a
// json.Unmarshaler, json.RawMessage) or t is nil.
func keysOf(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		if t.Implements(jsonUnmarshaler) {
			return nil
		}
		t = t.Elem()
	}
	if t == nil || t.Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		return nil
	}
	return t
}

// caseField returns the error of key k of an object decoded into struct
// type t that names no field of t exactly but one without regard to case
// (with the field's name; the first by name when several do), nil for
// any other key. where is the object's path.
func caseField(t reflect.Type, fields map[string]reflect.Type, k, where string) error {
	names := make([]string, 0, len(fields))
	for name := range fields {
		if strings.EqualFold(name, k) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	return at(where, fmt.Sprintf("unknown field %s: the field is %q (field names are case-sensitive)", limits.Quote(k), names[0]))
}

// checkKeys returns an error naming the first key of b (a valid JSON
// value, decoded into a value of type t; nil for none) given twice in one
// object, with the path of that object, or naming a field of its struct
// only without regard to case, with the field's name. The path is built
// only for the error, from the frames open at that point (each ancestor's
// current key or index): a deep nesting costs its depth, not the square
// of it.
func checkKeys(b []byte, t reflect.Type, top string) error {
	type frame struct {
		object bool
		keys   map[string]bool
		key    string // the key whose value comes next
		isKey  bool   // whether the next token is a key
		index  int
		// typ is the type the container is decoded into (keysOf; nil:
		// its keys' case is not checked); val is the type of the value
		// that comes next in it.
		typ, val reflect.Type
		fields   map[string]reflect.Type
	}
	var stack []*frame
	// path is the path of the innermost frame: the key or index each
	// frame around it is at.
	path := func() string {
		var p strings.Builder
		for _, f := range stack[:len(stack)-1] {
			if f.object {
				if p.Len() > 0 {
					p.WriteByte('.')
				}
				p.WriteString(f.key)
			} else {
				fmt.Fprintf(&p, "[%d]", f.index)
			}
		}
		return p.String()
	}
	where := func() string {
		if w := path(); w != "" {
			return w
		}
		return top
	}
	// valueDone moves the innermost frame past a value.
	valueDone := func() {
		if len(stack) == 0 {
			return
		}
		f := stack[len(stack)-1]
		if f.object {
			f.isKey = true
		} else {
			f.index++
		}
	}
	// next is the type of the value that comes next.
	root := keysOf(t)
	next := func() reflect.Type {
		if len(stack) == 0 {
			return root
		}
		return stack[len(stack)-1].val
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			// io.EOF; a syntax error was the decoder's to report.
			return nil
		}
		if len(stack) > 0 {
			if f := stack[len(stack)-1]; f.object && f.isKey {
				if d, ok := tok.(json.Delim); ok && d == '}' {
					stack = stack[:len(stack)-1]
					valueDone()
					continue
				}
				k, _ := tok.(string)
				if f.keys[k] {
					return at(where(), "key "+limits.Quote(k)+" given twice")
				}
				f.keys[k], f.key, f.isKey, f.val = true, k, false, nil
				switch {
				case f.fields != nil:
					if ft, ok := f.fields[k]; ok {
						f.val = keysOf(ft)
					} else if err := caseField(f.typ, f.fields, k, where()); err != nil {
						return err
					}
				case f.typ != nil && f.typ.Kind() == reflect.Map:
					f.val = keysOf(f.typ.Elem())
				}
				continue
			}
		}
		switch d, _ := tok.(json.Delim); d {
		case '{':
			f := &frame{object: true, keys: map[string]bool{}, isKey: true, typ: next()}
			if f.typ != nil && f.typ.Kind() == reflect.Struct {
				f.fields = jsonFields(f.typ)
			}
			stack = append(stack, f)
		case '[':
			f := &frame{typ: next()}
			if f.typ != nil && (f.typ.Kind() == reflect.Slice || f.typ.Kind() == reflect.Array) {
				f.val = keysOf(f.typ.Elem())
			}
			stack = append(stack, f)
		case ']':
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

// jsonFieldCache holds jsonFields by type.
var jsonFieldCache sync.Map

// jsonFields returns the JSON names of the fields of struct type t, as
// encoding/json reads them, each with its type (Fields), once per
// type.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := jsonFieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	out := Fields(t)
	jsonFieldCache.Store(t, out)
	return out
}

// duplicateKey returns an error naming the first key given twice in one
// object of b (a valid JSON value), with the path of that object.
func duplicateKey(b []byte, top string) error { return checkKeys(b, nil, top) }
