package yamlerr

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"
)

// TestPairs: the fields Pairs gives of a mapping are those yaml.v3
// decodes (the same map, in the order written, a merge's at its place),
// each key where it is written.
func TestPairs(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      string // key=value@line:col, in order
	}{
		{"plain", "m: {a: 1, b: 2}", "a=1@1:5 b=2@1:11"},
		{"merge", "d: &d {a: 1, b: 2}\nm: {<<: *d, c: 3}", "a=1@1:8 b=2@1:14 c=3@2:13"},
		{"a key written wins over a merged one", "d: &d {a: 1, b: 2}\nm: {b: 9, <<: *d}", "b=9@2:5 a=1@1:8"},
		{"the first of a list wins", "x: &x {a: 1}\ny: &y {a: 2, b: 2}\nm: {<<: [*x, *y]}", "a=1@1:8 b=2@2:14"},
		{"a merge of a merge", "x: &x {a: 1, b: 1}\ny: &y {<<: *x, b: 2}\nm: {<<: *y}", "a=1@1:8 b=2@2:16"},
		{"an alias value", "d: {v: &v 5}\nm: {a: *v}", "a=5@2:5"},
		{"an inline mapping merged", "m: {<<: {a: 1}, b: 2}", "a=1@1:10 b=2@1:17"},
		{"the last merge key of a mapping", "x: &x {a: 1}\ny: &y {b: 2}\nm: {<<: *x, <<: *y}", "b=2@2:8"},
		{"a mapping merged twice", "x: &x {a: 1}\nm: {<<: [*x, *x]}", "a=1@1:8"},
		{"a quoted << is a key", "m: {\"<<\": 1}", "<<=1@1:5"},
		{"a << with the non-specific tag merges", "m: {! <<: {a: 1}, b: 2}", "a=1@1:12 b=2@1:19"},
		{"a key written twice", "m: {a: 1, a: 2}", "a=1@1:5 a=2@1:11"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var doc yaml.Node
			require.NoError(t, yaml.Unmarshal([]byte(tc.doc), &doc))
			m := Lookup(doc.Content[0], "m")
			require.NotNil(t, m)
			pairs, err := Pairs(m)
			require.NoError(t, err)
			var got []string
			for _, p := range pairs {
				got = append(got, fmt.Sprintf("%s=%s@%d:%d", p.Key.Value, p.Value.Value, p.Key.Line, p.Key.Column))
			}
			require.Equal(t, tc.want, strings.Join(got, " "))
			// Lookup finds each field where Pairs does (the first of a key
			// written twice).
			first := map[string]*yaml.Node{}
			for _, p := range pairs {
				if first[p.Key.Value] == nil {
					first[p.Key.Value] = p.Value
				}
			}
			for k, v := range first {
				require.Same(t, v, Lookup(m, k), "Lookup(m, %q)", k)
			}
			// The same map as yaml.v3 decodes, but for a key written twice,
			// which the decoder refuses.
			var decoded map[string]map[string]any
			if err := yaml.Unmarshal([]byte(tc.doc), &decoded); err != nil {
				require.ErrorContains(t, err, "already defined")
				return
			}
			want := map[string]string{}
			for k, v := range decoded["m"] {
				want[k] = fmt.Sprint(v)
			}
			have := map[string]string{}
			for _, p := range pairs {
				have[p.Key.Value] = p.Value.Value
			}
			require.Equal(t, want, have)
		})
	}
}

// TestPairsErrors: a merge of what is no mapping, or of the mapping that
// holds it, is an error at the merge key's value, as the decoder refuses
// it.
// TestMergeKeyTags: a << key is a merge key when yaml.v3 decodes it as
// one, and Pairs and Lookup agree: a mapping built in code may leave the
// tag empty or non-specific, whatever the key's style.
func TestMergeKeyTags(t *testing.T) {
	for _, tag := range []string{"", "!", "!!merge", "tag:yaml.org,2002:merge", "!!str"} {
		for _, style := range []yaml.Style{0, yaml.DoubleQuotedStyle} {
			t.Run(fmt.Sprintf("tag %q style %d", tag, style), func(t *testing.T) {
				scalar := func(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: v} }
				m := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
					{Kind: yaml.ScalarNode, Value: "<<", Tag: tag, Style: style},
					{Kind: yaml.MappingNode, Content: []*yaml.Node{scalar("a"), scalar("1")}},
					scalar("b"), scalar("2"),
				}}
				var decoded map[string]any
				require.NoError(t, m.Decode(&decoded))
				_, merged := decoded["a"]
				require.Equal(t, merged, Lookup(m, "a") != nil, "Lookup(m, \"a\") of %v", decoded)
				pairs, err := Pairs(m)
				require.NoError(t, err)
				keys := map[string]bool{}
				for _, p := range pairs {
					keys[p.Key.Value] = true
				}
				require.Equal(t, merged, keys["a"], "Pairs(m) of %v", decoded)
			})
		}
	}
}

func TestPairsErrors(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"a scalar", "v: &v 5\nm: {<<: *v}", `line 2: a merge key (<<) takes a mapping or a list of mappings (e.g. <<: *base), got "5"`},
		{"a list of scalars", "m: {<<: [1]}", `line 1: a merge key (<<) takes a mapping or a list of mappings (e.g. <<: *base), got "1"`},
		{"itself", "m: &m {a: 1, <<: *m}", `line 1: a merge key (<<) cannot merge *m, a mapping that holds it`},
		{"a cycle", "x: &x {a: 1, y: &y {<<: *x}, <<: *y}\nm: {<<: *x}", `line 1: a merge key (<<) cannot merge *x, a mapping that holds it`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var doc yaml.Node
			require.NoError(t, yaml.Unmarshal([]byte(tc.doc), &doc))
			_, err := Pairs(Lookup(doc.Content[0], "m"))
			require.EqualError(t, err, tc.want)
		})
	}
}
