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
func CheckKeysOf(b []byte, v any, top string) error {
	if err := duplicateKey(b, top); err != nil {
		return err
	}
	return caseKeys(b, reflect.TypeOf(v), top)
}

// at prefixes msg with where, when there is one.
func at(where, msg string) error {
	if where == "" {
		return errors.New(msg)
	}
	return fmt.Errorf("%s: %s", where, msg)
}

// caseKeys returns an error naming the first key of b (a valid JSON value
// without duplicate keys, decoded into a value of type t) that names a
// field of its struct only without regard to case, with the field's name.
func caseKeys(b []byte, t reflect.Type, top string) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil // the decoder's to report
	}
	return walkCase(tree, t, "", top)
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

func walkCase(v any, t reflect.Type, path, top string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		if t.Implements(jsonUnmarshaler) {
			return nil
		}
		t = t.Elem()
	}
	if t == nil || t.Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		return nil // the type reads its own keys
	}
	child := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if ft, ok := fields[k]; ok {
				if err := walkCase(obj[k], ft, child(k), top); err != nil {
					return err
				}
				continue
			}
			names := make([]string, 0, len(fields))
			for name := range fields {
				names = append(names, name)
			}
			sort.Strings(names)
			for _, name := range names {
				if strings.EqualFold(name, k) {
					where := top
					if path != "" {
						where = path
					}
					return at(where, fmt.Sprintf("unknown field %s: the field is %q (field names are case-sensitive)", limits.Quote(k), name))
				}
			}
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := walkCase(obj[k], t.Elem(), child(k), top); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		arr, ok := v.([]any)
		if !ok {
			return nil
		}
		for i, e := range arr {
			if err := walkCase(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), top); err != nil {
				return err
			}
		}
	}
	return nil
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
// object of b (a valid JSON value), with the path of that object. The
// path is built only then, from the frames open at that point (each
// ancestor's current key or index): a deep nesting costs its depth, not
// the square of it.
func duplicateKey(b []byte, top string) error {
	type frame struct {
		object bool
		keys   map[string]bool
		key    string // the key whose value comes next
		isKey  bool   // whether the next token is a key
		index  int
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
					where := path()
					if where == "" {
						where = top
					}
					return at(where, "key "+limits.Quote(k)+" given twice")
				}
				f.keys[k], f.key, f.isKey = true, k, false
				continue
			}
		}
		switch d, _ := tok.(json.Delim); d {
		case '{':
			stack = append(stack, &frame{object: true, keys: map[string]bool{}, isKey: true})
		case '[':
			stack = append(stack, &frame{})
		case ']':
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}
