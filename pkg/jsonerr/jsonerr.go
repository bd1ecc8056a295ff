// Package jsonerr rewrites the errors of encoding/json for people, as
// yamlerr does for YAML: the decoder names the Go types it decodes into
// ("cannot unmarshal number into Go struct field Message.version of type
// string", "Go value of type struct { Reason string ... }"), and the error
// of a value that decodes itself (a time) names no field at all ("parsing
// time "monday" as "2006-01-02T15:04:05Z07:00": ..."). Rewrite says which
// field of the body holds what, and what the field wants instead.
package jsonerr

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rootuip/sre/pkg/limits"
)

// Rewrite returns the error of decoding body into v (a pointer, as given
// to the decoder) worded by field: "labels.service: want a string, got a
// number", "alerts[1].startsAt: cannot parse "yesterday" as an RFC 3339
// time (as 2026-12-05T10:00:00Z)". An unknown field keeps encoding/json's
// wording with its name cut as limits.Quote cuts it; syntax errors and
// errors it cannot place are returned as they are. errors.Is and errors.As
// still see the original.
func Rewrite(err error, body []byte, v any) error {
	if err == nil {
		return nil
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return err
	}
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		msg := "want " + want(te.Type) + ", got " + got(te.Value)
		if te.Field != "" {
			// encoding/json joins the path with dots, indexes included
			// as nothing: the located path says where in lists too.
			if p, _, _, ok := locate(t, body, ""); ok && p != "" {
				msg = p + ": " + msg
			} else {
				msg = te.Field + ": " + msg
			}
		}
		return &rewritten{msg: msg, err: err}
	}
	if k, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		// The key is the caller's: quoted cut, as every refused value.
		if name, uerr := strconv.Unquote(k); uerr == nil {
			return &rewritten{msg: "json: unknown field " + short(name), err: err}
		}
		return err
	}
	if t == nil {
		return err
	}
	path, leaf, raw, ok := locate(t, body, "")
	if !ok || path == "" {
		return err
	}
	var pe *time.ParseError
	if errors.As(err, &pe) {
		return &rewritten{msg: fmt.Sprintf("%s: cannot parse %s as an RFC 3339 time (as 2026-12-05T10:00:00Z)", path, short(pe.Value)), err: err}
	}
	if leaf == reflect.TypeFor[time.Time]() {
		return &rewritten{msg: path + ": want an RFC 3339 time, got " + kindOf(raw), err: err}
	}
	return &rewritten{msg: path + ": " + err.Error(), err: err}
}

type rewritten struct {
	msg string
	err error
}

func (r *rewritten) Error() string { return r.msg }
func (r *rewritten) Unwrap() error { return r.err }

// short quotes a value as every error answer of sred quotes what it
// refused: cut at limits.MaxEchoBytes, ending with limits.TruncationMark.
func short(s string) string {
	return limits.Quote(s)
}

var (
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// decodesItself tells whether t decodes its JSON value through a method of
// its own: the decoder does not look inside it.
func decodesItself(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return t.Implements(unmarshalerType) || p.Implements(unmarshalerType) ||
		t.Implements(textUnmarshalerType) || p.Implements(textUnmarshalerType)
}

// locate returns the path of the first value of raw that does not decode
// into t, below prefix ("" for raw itself), with that value and the type
// it does not decode into. ok is false when raw decodes.
func locate(t reflect.Type, raw []byte, prefix string) (path string, leaf reflect.Type, val []byte, ok bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if json.Unmarshal(raw, reflect.New(t).Interface()) == nil {
		return "", nil, nil, false
	}
	if decodesItself(t) {
		return prefix, t, raw, true
	}
	switch t.Kind() {
	case reflect.Struct:
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			return prefix, t, raw, true
		}
		for _, f := range fields(t) {
			for k, sub := range m {
				// encoding/json matches names case-insensitively.
				if k != f.name && !strings.EqualFold(k, f.name) {
					continue
				}
				if p, lt, lv, bad := locate(f.typ, sub, join(prefix, k)); bad {
					return p, lt, lv, true
				}
			}
		}
	case reflect.Slice, reflect.Array:
		var l []json.RawMessage
		if json.Unmarshal(raw, &l) != nil {
			return prefix, t, raw, true
		}
		for i, sub := range l {
			if p, lt, lv, bad := locate(t.Elem(), sub, prefix+"["+strconv.Itoa(i)+"]"); bad {
				return p, lt, lv, true
			}
		}
	case reflect.Map:
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			return prefix, t, raw, true
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if p, lt, lv, bad := locate(t.Elem(), m[k], join(prefix, k)); bad {
				return p, lt, lv, true
			}
		}
	}
	return prefix, t, raw, true
}

// kindOf names the kind of a JSON value.
func kindOf(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "a list"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

type field struct {
	name string
	typ  reflect.Type
}

// fields lists the JSON fields of a struct type as encoding/json sees
// them: the tag's name or the Go name, embedded structs' fields promoted
// where the embedded field stands, "-" left out. A name an embedded struct
// repeats is listed each time.
func fields(t reflect.Type) []field {
	var out []field
	eachField(t, nil, func(f field, _ int) { out = append(out, f) })
	return out
}

// Fields returns the JSON names of the fields of struct type t, as
// encoding/json reads them (the tag's name or the field's, "-" left out;
// the fields of embedded structs without a name promoted, the shallower
// winning, then the first), each with its type.
func Fields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	depths := map[string]int{}
	eachField(t, nil, func(f field, depth int) {
		if d, ok := depths[f.name]; ok && d <= depth {
			return
		}
		out[f.name], depths[f.name] = f.typ, depth
	})
	return out
}

// eachField calls fn with each JSON field of struct type t in the order of
// its Go fields, an embedded struct's where it is embedded, with how many
// embedded structs deep it is (outer holds the structs t is embedded in,
// nil for the top one). An embedded struct that embeds itself (through a
// pointer) is walked once.
func eachField(t reflect.Type, outer []reflect.Type, fn func(f field, depth int)) {
	if slices.Contains(outer, t) {
		return
	}
	outer = append(outer, t)
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := sf.Type
		if sf.Anonymous && name == "" {
			et := ft
			for et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				eachField(et, outer, fn)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		fn(field{name: name, typ: ft}, len(outer)-1)
	}
}

// want names what a Go type takes in JSON.
func want(t reflect.Type) string {
	if t == nil {
		return "another value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeFor[time.Time]() {
		return "an RFC 3339 time"
	}
	if t == reflect.TypeFor[time.Duration]() {
		return "a duration in nanoseconds"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return "another value"
}

// got names the JSON value encoding/json found ("number", "string",
// "array", "object", "bool", "number 1.5").
func got(v string) string {
	kind, rest, _ := strings.Cut(v, " ")
	a := map[string]string{"number": "a number", "string": "a string", "array": "a list", "object": "an object", "bool": "a boolean"}[kind]
	if a == "" {
		a = v
	} else if rest != "" && utf8.ValidString(rest) && len(rest) <= 64 {
		// "number -1" into a uint, "number 1.5" into an int.
		a += " (" + rest + ")"
	}
	return a
}
