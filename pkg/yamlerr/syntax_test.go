package yamlerr

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"
)

// TestLocated: a syntax error names the line of the problem, where the
// decoder names the line above the construct it is in (or none on the
// first line and for the bytes themselves), and a quote or "[" left open
// is named where it opened; other errors are left alone.
func TestLocated(t *testing.T) {
	for _, c := range []struct{ name, doc, want string }{
		{"unclosed flow sequence", "a: 1\nb:\n  c: [2, 3\nd: 4\n", "yaml: line 3: \"[\" opened here is not closed before line 4"},
		{"on the first line", "a: [1\n", "yaml: line 1: did not find expected ',' or ']'"},
		{"control character", "a: 1\nb: 2\n\x01\n", "yaml: line 3: control characters are not allowed"},
		{"undefined alias", "a: 1\nb: *nowhere\n", "yaml: line 2: unknown anchor 'nowhere' referenced"},
		{"unclosed double quote on the first line", "a: \"x\nb: 1\nc: 2\n", "yaml: line 1: quoted string opened here is not closed"},
		{"unclosed single quote on the first line", "a: 'x\nb: 1\nc: 2", "yaml: line 1: quoted string opened here is not closed"},
		{"unclosed quote in a list on the first line", "- \"x\n- 2\n", "yaml: line 1: quoted string opened here is not closed"},
		{"unclosed quote before a document marker", "a: \"x\nb: 1\n---\nc: 2\n", "yaml: line 1: quoted string opened here is not closed before line 3"},
		{"unclosed quote", "a: 1\nb: \"x\nc: 2\nd: 3\n", "yaml: line 2: quoted string opened here is not closed"},
		{"unclosed quote on the last line", "a: 1\nb: 2\nc: \"x", "yaml: line 3: quoted string opened here is not closed"},
		{"mis-indented", "a:\n  b: 1\n   c: 2\n", "yaml: line 3: mapping values are not allowed in this context"},
		{"not syntax", "a: [1]\n", "yaml: unmarshal errors:\n  line 1: cannot unmarshal !!seq into int"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var v map[string]int
			if c.name != "not syntax" {
				var n yaml.Node
				err := yaml.Unmarshal([]byte(c.doc), &n)
				require.Error(t, err)
				require.EqualError(t, Located([]byte(c.doc), err), c.want, "decoder said: %v", err)
				return
			}
			err := yaml.Unmarshal([]byte(c.doc), &v)
			require.Error(t, err)
			require.Equal(t, err, Located([]byte(c.doc), err))
			require.EqualError(t, err, c.want)
		})
	}
}

// TestInFile: a syntax error is positioned in its file as the errors of the
// SLO specs are (file:line:col), with the column of the problem; any other
// error follows the file's name; both still unwrap to the decoder's error.
func TestInFile(t *testing.T) {
	for _, c := range []struct{ name, doc, want string }{
		{"unclosed flow sequence", "a: 1\nb:\n  c: [2, 3\nd: 4\n", "sred.yml:3:6: invalid YAML: \"[\" opened here is not closed before line 4"},
		{"control character", "a: 1\nb: x\x01\n", "sred.yml:2:5: invalid YAML: control characters are not allowed"},
		{"undefined alias", "a: 1\nb: *nowhere\n", "sred.yml:2:4: invalid YAML: unknown anchor 'nowhere' referenced"},
		{"mis-indented key", "a:\n  b: 1\n   c: 2\n", "sred.yml:3:4: invalid YAML: mapping values are not allowed in this context"},
		{"second value on a line", "a:\n  b: c: d\n", "sred.yml:2:3: invalid YAML: mapping values are not allowed in this context"},
		{"key outdented in a list", "a:\n  - b\n  c: 2\n", "sred.yml:3:3: invalid YAML: did not find expected '-' indicator"},
		{"tab in the indentation", "a:\n  b: 1\n \tc: 2\n", "sred.yml:3:2: invalid YAML: found a tab character that violates indentation"},
		{"excessive aliasing, no line", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.doc == "" {
				err := errors.New("yaml: document contains excessive aliasing")
				got := InFile("sred.yml", Located(nil, err))
				require.EqualError(t, got, "sred.yml: yaml: document contains excessive aliasing")
				require.ErrorIs(t, got, err)
				return
			}
			var n yaml.Node
			err := yaml.Unmarshal([]byte(c.doc), &n)
			require.Error(t, err)
			got := InFile("sred.yml", Located([]byte(c.doc), err))
			require.EqualError(t, got, c.want)
			require.ErrorIs(t, got, err)
			// Wrapped, as the chaos, analysis, scaling and rollout
			// loaders pass it, the error keeps its line and column.
			for _, wrapped := range []error{
				Rewrite(&wrapper{Located([]byte(c.doc), err)}),
				fmt.Errorf("decode: %w", Located([]byte(c.doc), err)),
			} {
				require.Regexp(t, `^sred\.yml:\d+:\d+: invalid YAML: `, InFile("sred.yml", wrapped).Error())
			}
		})
	}
}

// wrapper is an error wrapping another with a message Rewrite changes.
type wrapper struct{ err error }

func (w *wrapper) Error() string {
	return "yaml: unmarshal errors:\n  line 1: field x not found in type chaos.plain"
}
func (w *wrapper) Unwrap() error { return w.err }
