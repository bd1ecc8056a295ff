package jsonerr

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

type Meta struct {
	Owner string `json:"owner"`
}

type window struct {
	Start time.Time      `json:"start"`
	For   model.Duration `json:"for"`
}

type body struct {
	Meta
	Name    string            `json:"name"`
	Labels  map[string]string `json:"labels"`
	Windows []window          `json:"windows"`
	Due     *time.Time        `json:"due,omitempty"`
	Count   uint              `json:"count"`
	Level   int               `json:"level"`
	On      bool              `json:"on"`
	Hidden  string            `json:"-"`
	Plain   string
}

func TestRewrite(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"not an object", `["x"]`, `want an object, got a list`},
		{"string for int", `{"level": "2"}`, `level: want an integer, got a string`},
		{"fraction for int", `{"level": 1.5}`, `level: want an integer, got a number (1.5)`},
		{"negative for uint", `{"count": -1}`, `count: want a non-negative integer, got a number (-1)`},
		{"number for bool", `{"on": 1}`, `on: want true or false, got a number`},
		{"map value", `{"labels": {"a": "x", "service": 1}}`, `labels.service: want a string, got a number`},
		{"list element field", `{"windows": [{"start": "2026-12-05T10:00:00Z"}, {"start": 5}]}`, `windows[1].start: want an RFC 3339 time, got a number`},
		{"time in a list", `{"windows": [{}, {"start": "monday"}]}`, `windows[1].start: cannot parse "monday" as an RFC 3339 time (as 2026-12-05T10:00:00Z)`},
		{"pointer time", `{"due": "next week"}`, `due: cannot parse "next week" as an RFC 3339 time (as 2026-12-05T10:00:00Z)`},
		{"case-insensitive name", `{"DUE": "x"}`, `DUE: cannot parse "x" as an RFC 3339 time (as 2026-12-05T10:00:00Z)`},
		{"long value cut", `{"due": "` + string(bytes.Repeat([]byte("y"), 100)) + `"}`, `due: cannot parse "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy…" as an RFC 3339 time (as 2026-12-05T10:00:00Z)`},
		{"own decoder's error", `{"windows": [{"for": "soon"}]}`, `windows[0].for: not a valid duration string: "soon"`},
		{"embedded field", `{"owner": 7}`, `owner: want a string, got a number`},
		{"untagged field", `{"Plain": false}`, `Plain: want a string, got a boolean`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v body
			err := json.Unmarshal([]byte(tc.in), &v)
			require.Error(t, err)
			got := Rewrite(err, []byte(tc.in), &v)
			require.EqualError(t, got, tc.want)
			require.ErrorIs(t, got, err, "the original error stays reachable")
		})
	}
}

func TestRewriteLeavesAlone(t *testing.T) {
	var v body
	for _, in := range []string{`{"name": `, `{"name": "a"} x`} {
		err := json.Unmarshal([]byte(in), &v)
		require.Error(t, err)
		require.Same(t, err, Rewrite(err, []byte(in), &v), in)
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(`{"nmae": "x"}`)))
	dec.DisallowUnknownFields()
	err := dec.Decode(&v)
	require.EqualError(t, Rewrite(err, []byte(`{"nmae": "x"}`), &v), `json: unknown field "nmae"`)
	long := `{"` + strings.Repeat("n", 5000) + `": "x"}`
	dec = json.NewDecoder(strings.NewReader(long))
	dec.DisallowUnknownFields()
	err = dec.Decode(&v)
	require.EqualError(t, Rewrite(err, []byte(long), &v), `json: unknown field "`+strings.Repeat("n", 61)+`…"`, "a long unknown key is cut")
	require.ErrorIs(t, Rewrite(err, []byte(long), &v), err)
	require.NoError(t, Rewrite(nil, nil, &v))
	other := errors.New("read: connection reset")
	require.Same(t, other, Rewrite(other, []byte(`{}`), &v), "an error the body does not explain")
}

type Inner struct {
	Deep  int    `json:"deep"`
	Name  int    `json:"name"` // shadowed by outer.Name
	Twice string `json:"twice"`
}

type Other struct {
	Twice int `json:"twice"` // as deep as Inner.Twice: the first wins
}

type Looped struct {
	*Looped
	Loop string `json:"loop"`
}

type hidden struct {
	Promoted string `json:"promoted"`
}

type outer struct {
	*Inner
	Other
	hidden
	Looped
	Tagged     Meta   `json:"tagged"`
	Name       string `json:"name"`
	Omitted    string `json:",omitempty"`
	Skipped    string `json:"-"`
	Dash       string `json:"-,"`
	unexported string
}

// Fields and fields walk a struct's fields as encoding/json does: tags,
// "-", omitempty, embedded structs promoted (through pointers, unexported
// ones too, a named one not), the shallower name winning in Fields and
// every name listed in fields.
func TestFields(t *testing.T) {
	typ := reflect.TypeFor[outer]()
	require.Equal(t, map[string]reflect.Type{
		"deep":     reflect.TypeFor[int](),
		"twice":    reflect.TypeFor[string](),
		"promoted": reflect.TypeFor[string](),
		"loop":     reflect.TypeFor[string](),
		"tagged":   reflect.TypeFor[Meta](),
		"name":     reflect.TypeFor[string](),
		"Omitted":  reflect.TypeFor[string](),
		"-":        reflect.TypeFor[string](),
	}, Fields(typ))
	var names []string
	for _, f := range fields(typ) {
		names = append(names, f.name)
	}
	require.Equal(t, []string{"deep", "name", "twice", "twice", "promoted", "loop", "tagged", "name", "Omitted", "-"}, names)
	require.Equal(t, map[string]reflect.Type{
		"owner": reflect.TypeFor[string](), "name": reflect.TypeFor[string](), "labels": reflect.TypeFor[map[string]string](),
		"windows": reflect.TypeFor[[]window](), "due": reflect.TypeFor[*time.Time](), "count": reflect.TypeFor[uint](),
		"level": reflect.TypeFor[int](), "on": reflect.TypeFor[bool](), "Plain": reflect.TypeFor[string](),
	}, Fields(reflect.TypeFor[body]()))
}
