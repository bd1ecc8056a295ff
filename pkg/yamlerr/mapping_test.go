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

// TestExpand: the expanded copy of a document reads as the document does,
// with no anchor, alias or merge key left in it, and keeps the places of
// its nodes.
func TestExpand(t *testing.T) {
	for _, tc := range []struct{ name, doc string }{
		{"plain", "a: 1\nb: [x, y]\n"},
		{"an alias value", "a: &v {x: 1}\nb: *v\n"},
		{"an alias in a list", "a: &v 5\nb: [*v, *v]\n"},
		{"a merge", "base: &b {x: 1, y: 2}\nm: {<<: *b, y: 3}\n"},
		{"a merge at the top", "<<: {x: 1}\ny: 2\n"},
		{"a merge of a merge", "x: &x {a: 1}\ny: &y {<<: *x, b: 2}\nm: {<<: [*y, {c: 3}]}\n"},
		{"an alias of a mapping with a merge", "x: &x {a: 1}\ny: &y {<<: *x}\nm: *y\n"},
		{"a quoted << is a key", "m: {\"<<\": 1}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var doc yaml.Node
			require.NoError(t, yaml.Unmarshal([]byte(tc.doc), &doc))
			got, err := Expand(&doc)
			require.NoError(t, err)
			out, err := yaml.Marshal(got)
			require.NoError(t, err)
			var want, have any
			require.NoError(t, yaml.Unmarshal([]byte(tc.doc), &want))
			require.NoError(t, yaml.Unmarshal(out, &have))
			require.Equal(t, want, have, "expanded:\n%s", out)
			var again yaml.Node
			require.NoError(t, yaml.Unmarshal(out, &again))
			var check func(n *yaml.Node)
			check = func(n *yaml.Node) {
				require.NotEqual(t, yaml.AliasNode, n.Kind, "an alias left in:\n%s", out)
				require.Empty(t, n.Anchor, "an anchor left in:\n%s", out)
				require.False(t, isMerge(n), "a merge key left in:\n%s", out)
				for _, c := range n.Content {
					check(c)
				}
			}
			check(&again)
			// The copy of an aliased value is placed at its anchor's value.
			for _, p := range mustPairs(t, got.Content[0]) {
				orig := Lookup(doc.Content[0], p.Key.Value)
				require.Equal(t, [2]int{orig.Line, orig.Column}, [2]int{p.Value.Line, p.Value.Column}, p.Key.Value)
			}
		})
	}
}

func mustPairs(t *testing.T, n *yaml.Node) []Pair {
	t.Helper()
	pairs, err := Pairs(n)
	require.NoError(t, err)
	return pairs
}

// TestExpandErrors: what cannot be expanded is an error at its place.
func TestExpandErrors(t *testing.T) {
	laughs := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for i := 'b'; i <= 'f'; i++ {
		laughs += fmt.Sprintf("%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	for _, tc := range []struct{ name, doc, want string }{
		{"a merge of a list of scalars", "m: {<<: [1]}", `1:9: a merge key (<<) takes a mapping or a list of mappings (e.g. <<: *base), got "1"`},
		{"an anchor holding its own alias", "a: &a [x, *a]", "1:11: the value of anchor &a holds an alias of itself"},
		{"too many nodes", laughs, fmt.Sprintf("5:36: aliases expand the document to more than %d nodes", MaxExpandNodes)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var doc yaml.Node
			require.NoError(t, yaml.Unmarshal([]byte(tc.doc), &doc))
			_, err := Expand(&doc)
			var ne *NodeError
			require.ErrorAs(t, err, &ne)
			require.Equal(t, tc.want, fmt.Sprintf("%d:%d: %v", ne.Line, ne.Column, ne.Err))
		})
	}
}
