package openslo_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/slo"
)

// TestImportMergeKeys: an object whose fields a merge key brings in
// reads as one written out; a misspelt field it brings in is refused at
// the anchor.
func TestImportMergeKeys(t *testing.T) {
	slos := sloDoc(ratioBad, append(rolling7d, "  objectives:", "    - target: 0.999")...)
	for _, tc := range []struct{ name, doc, want string }{
		{"merged metadata and spec", "apiVersion: openslo/v1\nkind: Service\n<<: {metadata: {name: shop}, spec: {description: x}}\n---\n" + slos, ""},
		{"aliased metadata", "apiVersion: openslo/v1\nkind: Service\nspec: {description: &d x, owner: *d}\nmetadata: {name: shop}\n---\n" + slos, ""},
		{"misspelt field merged", "apiVersion: openslo/v1\nkind: Service\n<<: {metdata: {name: shop}, spec: {description: x}}\n---\n" + slos,
			`shop.yml:3:6: metdata: unknown field "metdata"`},
		{"merge of a scalar", "apiVersion: openslo/v1\nkind: &k Service\n<<: *k\nmetadata: {name: shop}\n---\n" + slos,
			`shop.yml:3:5: <<: a merge key (<<) takes a mapping or a list of mappings (e.g. <<: *base), got "Service"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			specs, err := slo.Parse([]byte(tc.doc), "shop.yml")
			if tc.want != "" {
				require.EqualError(t, err, tc.want)
				return
			}
			require.NoError(t, err)
			require.Equal(t, 99.9, specs[0].SLOs[0].Objective)
		})
	}
}
