package web

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestUnmarshalStrictDuplicateKeys: a key given twice in one object, at
// any depth, is an error naming the object and the key; the same key in
// different objects, and keys differing only in case in a map, are not.
func TestUnmarshalStrictDuplicateKeys(t *testing.T) {
	type body struct {
		Labels map[string]string `json:"labels"`
		Items  []struct {
			Name string         `json:"name"`
			Meta map[string]any `json:"meta"`
		} `json:"items"`
		At string `json:"at"`
	}
	for _, tc := range []struct{ json, err string }{
		{`{"labels":{"a":"1","A":"2"},"items":[{"name":"x"},{"name":"y","meta":{"k":[{"k":1},{"k":2}]}}],"at":"now"}`, ""},
		{`{"at":"a","at":"b"}`, `the JSON body: key "at" given twice`},
		{`{"labels":{"a":"1"},"labels":{"b":"2"}}`, `the JSON body: key "labels" given twice`},
		{`{"labels":{"service":"api","service":"checkout"}}`, `labels: key "service" given twice`},
		{`{"items":[{"name":"x"},{"name":"y","name":"z"}]}`, `items[1]: key "name" given twice`},
		{`{"items":[{"name":"x","meta":{"k":[{},{"v":1,"v":2}]}}]}`, `items[0].meta.k[1]: key "v" given twice`},
	} {
		var v body
		err := UnmarshalStrict([]byte(tc.json), &v)
		if tc.err == "" {
			require.NoError(t, err, tc.json)
			continue
		}
		require.EqualError(t, err, tc.err, tc.json)
	}
}

// TestUnmarshalStrictFieldCase: a key that names a field only without
// regard to case ("Labels" for "labels", "TITLE", "ſervice" by Unicode
// folding), which encoding/json accepts, is an error naming the key and
// the field, at any depth, embedded structs' fields included; keys of a
// map differing in case, and exact names, are accepted.
func TestUnmarshalStrictFieldCase(t *testing.T) {
	type Common struct {
		Service string `json:"service"`
	}
	type item struct {
		Name string `json:"name"`
	}
	type body struct {
		Common
		Labels map[string]string `json:"labels"`
		Items  []item            `json:"items"`
		Next   *item             `json:"next"`
		ByKey  map[string]item   `json:"by_key"`
		Plain  string
	}
	for _, tc := range []struct{ json, err string }{
		{`{"service":"api","labels":{"a":"1","A":"2"},"items":[{"name":"x"}],"next":{"name":"y"},"by_key":{"K":{"name":"z"}},"Plain":"p"}`, ""},
		{`{"Labels":{"a":"1"}}`, `the JSON body: unknown field "Labels": the field is "labels" (field names are case-sensitive)`},
		{`{"SERVICE":"api"}`, `the JSON body: unknown field "SERVICE": the field is "service" (field names are case-sensitive)`},
		{`{"ſervice":"api"}`, `the JSON body: unknown field "ſervice": the field is "service" (field names are case-sensitive)`},
		{`{"plain":"p"}`, `the JSON body: unknown field "plain": the field is "Plain" (field names are case-sensitive)`},
		{`{"items":[{"name":"x"},{"Name":"y"}]}`, `items[1]: unknown field "Name": the field is "name" (field names are case-sensitive)`},
		{`{"next":{"NAME":"y"}}`, `next: unknown field "NAME": the field is "name" (field names are case-sensitive)`},
		{`{"by_key":{"k":{"nAme":"z"}}}`, `by_key.k: unknown field "nAme": the field is "name" (field names are case-sensitive)`},
	} {
		var v body
		err := UnmarshalStrict([]byte(tc.json), &v)
		if tc.err == "" {
			require.NoError(t, err, tc.json)
			require.Equal(t, "api", v.Service)
			require.Equal(t, "p", v.Plain)
			continue
		}
		require.EqualError(t, err, tc.err, tc.json)
	}
}

// TestUnmarshalNull: null where an object is wanted (a struct, a map,
// through pointers) is an error, strict or lenient, where encoding/json
// leaves the value as it is; null inside the object, and null for a value
// that reads its own JSON or is not an object, are decoded as before.
func TestUnmarshalNull(t *testing.T) {
	type body struct {
		Labels map[string]string `json:"labels"`
	}
	const want = "want a JSON object, got null"
	for _, unmarshal := range []func([]byte, any) error{UnmarshalStrict, UnmarshalLenient} {
		var b body
		require.EqualError(t, unmarshal([]byte("null"), &b), want)
		pb := &body{}
		require.EqualError(t, unmarshal([]byte(" \n null \t"), &pb), want)
		var m map[string]any
		require.EqualError(t, unmarshal([]byte("null"), &m), want)

		require.NoError(t, unmarshal([]byte(`{"labels":null}`), &b))
		require.Nil(t, b.Labels)
		var raw json.RawMessage
		require.NoError(t, unmarshal([]byte("null"), &raw))
		require.Equal(t, "null", string(raw))
		var list []string
		require.NoError(t, unmarshal([]byte("null"), &list))
		require.Nil(t, list)
	}
}

// TestDuplicateKeyDeepNesting: a body nested thousands of levels deep (in
// a field the type ignores, as a lenient route reads it) is read, and a
// key given twice deep in it is named by its path. What the check costs
// is jsonerr's TestDuplicateKeyDeepNesting.
func TestDuplicateKeyDeepNesting(t *testing.T) {
	const depth = 9000
	deep := strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
	body := []byte(`{"at":"now","ignored":[` + deep + `,` + deep + `]}`)
	var v struct {
		At string `json:"at"`
	}
	require.NoError(t, UnmarshalLenient(body, &v))
	require.Equal(t, "now", v.At)

	dup := []byte(`{"x":[` + strings.Repeat(`{"a":`, 3) + `{"b":1,"b":2}` + strings.Repeat("}", 3) + `]}`)
	require.EqualError(t, UnmarshalLenient(dup, &v), `x[0].a.a.a: key "b" given twice`)
}
