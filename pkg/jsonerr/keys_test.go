package jsonerr

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDuplicateKeyDeepNesting: the duplicate-key check of a body nested
// thousands of levels deep costs about what the body does, not the
// square of its depth: the path of an object is built only for the error.
func TestDuplicateKeyDeepNesting(t *testing.T) {
	const depth = 9000
	deep := strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
	body := []byte(`{"at":"now","ignored":[` + deep + `,` + deep + `]}`)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	require.NoError(t, duplicateKey(body, "the JSON body"))
	runtime.ReadMemStats(&after)
	// 2 x 9,000 objects, a map each: a few MiB. Paths rebuilt at every
	// level cost 2 x 81 MB.
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(32<<20), "bytes allocated")

	dup := []byte(`{"x":[` + strings.Repeat(`{"a":`, 3) + `{"b":1,"b":2}` + strings.Repeat("}", 3) + `]}`)
	require.EqualError(t, duplicateKey(dup, "the JSON body"), `x[0].a.a.a: key "b" given twice`)
}

type keysInner struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
}

type keysBody struct {
	Items  []keysInner          `json:"items"`
	ByName map[string]keysInner `json:"by_name"`
	Raw    json.RawMessage      `json:"raw"`
	At     *time.Time           `json:"at"`
}

// TestCheckKeysOnePass: CheckKeysOf read a body twice, once for keys
// given twice and once more (decoded whole into a tree) for keys naming
// a field only without regard to case. It reads it once: finding both
// costs what finding keys given twice alone does, and each is still
// found where it was, the first in the body named.
func TestCheckKeysOnePass(t *testing.T) {
	for _, tc := range []struct{ name, body, err string }{
		{"fine", `{"items":[{"name":"a","labels":{"Name":"x"}}],"by_name":{"Items":{"name":"b"}},"raw":{"Name":1,"name":2},"at":"2026-01-01T00:00:00Z"}`, ""},
		{"twice", `{"items":[{"name":"a"},{"name":"b","name":"c"}]}`, `items[1]: key "name" given twice`},
		{"twice in raw", `{"raw":{"a":1,"a":2}}`, `raw: key "a" given twice`},
		{"case at the top", `{"Items":[]}`, `the JSON body: unknown field "Items": the field is "items" (field names are case-sensitive)`},
		{"case in a list", `{"items":[{"name":"a"},{"NAME":"b"}]}`, `items[1]: unknown field "NAME": the field is "name" (field names are case-sensitive)`},
		{"case in a map", `{"by_name":{"x":{"Labels":{}}}}`, `by_name.x: unknown field "Labels": the field is "labels" (field names are case-sensitive)`},
		{"the first of both", `{"items":[{"Name":"a"}],"by_name":{"x":{"name":"a","name":"b"}}}`,
			`items[0]: unknown field "Name": the field is "name" (field names are case-sensitive)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckKeys([]byte(tc.body), &keysBody{})
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tc.err)
		})
	}

	var body strings.Builder
	body.WriteString(`{"items":[`)
	for i := range 200 {
		if i > 0 {
			body.WriteByte(',')
		}
		body.WriteString(`{"name":"item","labels":{"service":"api","severity":"critical","instance":"10.0.0.1:9090"}}`)
	}
	body.WriteString(`]}`)
	b := []byte(body.String())
	require.NoError(t, CheckKeys(b, &keysBody{}))
	dup := testing.AllocsPerRun(20, func() { _ = duplicateKey(b, "the JSON body") })
	both := testing.AllocsPerRun(20, func() { _ = CheckKeys(b, &keysBody{}) })
	t.Logf("allocations: keys given twice %.0f, both checks %.0f", dup, both)
	require.LessOrEqual(t, both, dup*1.1, "the case check reads the body again")
}
