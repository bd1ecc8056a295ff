package web

import (
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
