package yamlerr

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"
)

type plain struct {
	Name     string            `yaml:"name"`
	Count    int               `yaml:"count"`
	Items    []string          `yaml:"items"`
	Labels   map[string]string `yaml:"labels"`
	Enabled  bool              `yaml:"enabled"`
	Sections []*plain          `yaml:"sections"`
}

// TestRewrite decodes bad documents with the real decoder (strict, as
// config files are loaded) and checks that no Go type name survives.
func TestRewrite(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"nme: x\n", "yaml: unmarshal errors:\n  line 1: unknown field \"nme\""},
		{"count: many\n", "yaml: unmarshal errors:\n  line 1: cannot use the string \"many\" here: want an integer"},
		{"items: 5\n", "yaml: unmarshal errors:\n  line 1: cannot use the integer \"5\" here: want a list"},
		{"labels: [a]\n", "yaml: unmarshal errors:\n  line 1: cannot use a list here: want a mapping"},
		{"enabled: maybe\n", "yaml: unmarshal errors:\n  line 1: cannot use the string \"maybe\" here: want true or false"},
		{"sections: [5]\n", "yaml: unmarshal errors:\n  line 1: cannot use the integer \"5\" here: want a mapping of fields"},
		{"- a\n", "yaml: unmarshal errors:\n  line 1: cannot use a list here: want a mapping of fields"},
	} {
		var p plain
		dec := yaml.NewDecoder(stringsReader(tc.doc))
		dec.KnownFields(true)
		err := dec.Decode(&p)
		require.Error(t, err, tc.doc)
		got := Rewrite(err)
		require.Equal(t, tc.want, got.Error(), "from %q", err.Error())
		require.NotContains(t, got.Error(), "yamlerr.")
		require.NotContains(t, got.Error(), "plain")
		var te *yaml.TypeError
		require.True(t, errors.As(got, &te), "the original error stays in the chain")
	}
	require.Nil(t, Rewrite(nil))
	other := errors.New("objective 100 leaves no error budget")
	require.Same(t, other, Rewrite(other))
	require.Equal(t, "line 3: cannot use the integer \"5\" here: want a mapping of fields",
		Message("line 3: cannot unmarshal !!int `5` into escalation.plain"))
	require.Equal(t, `line 1: unknown field "receiver"`, Message("line 1: field receiver not found in type config.Config"))
	require.Equal(t, "line 2: cannot use the string \"x\" here: want a list", Message("line 2: cannot unmarshal !!str `x` into []*escalation.Policy"))
	require.Equal(t, `template: title:1:3: executing "title" at <.NoSuchField>: the template data has no field NoSuchField`,
		Message(`template: title:1:3: executing "title" at <.NoSuchField>: can't evaluate field NoSuchField in type incident.TitleData`))
	require.Equal(t, "line 2: cannot use the string \"30 minutes\" here: want a duration such as 30s or 5m", Message("line 2: cannot unmarshal !!str `30 minutes` into model.Duration"))
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

// TestRewriteCutsValues: a value the message quotes is cut as every error
// of the project cuts what it echoes (limits.Quote), and the decoder's own
// cut of a value longer than ten bytes ends with the same mark, on a
// character boundary.
func TestRewriteCutsValues(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"cut by the decoder", "count: thirty minutes\n", "line 1: cannot use the string \"thirty …\" here: want an integer"},
		{"cut inside a character", "count: доступность\n", "line 1: cannot use the string \"дос…\" here: want an integer"},
		{"ten bytes", "items: abcdefghij\n", "line 1: cannot use the string \"abcdefghij\" here: want a list"},
		{"a quote in the value", "count: 'a\"b'\n", "line 1: cannot use the string \"a\\\"b\" here: want an integer"},
		{"a backtick in the value", "count: a`b\n", "line 1: cannot use the string \"a`b\" here: want an integer"},
		{"two backticks in a row", "count: a``b\n", "line 1: cannot use the string \"a``b\" here: want an integer"},
		{"a backtick at the end", "count: 'ab`'\n", "line 1: cannot use the string \"ab`\" here: want an integer"},
		{"a backtick and into", "count: 'a` into b'\n", "line 1: cannot use the string \"a` into b\" here: want an integer"},
		{"backticks cut by the decoder", "count: a`b`c`d`e`f\n", "line 1: cannot use the string \"a`b`c`d…\" here: want an integer"},
		{"a newline in the value", "count: \"a\\nb\"\n", "line 1: cannot use the string \"a\\nb\" here: want an integer"},
		{"two values with backticks", "count: a`b\nenabled: '`c`'\n", "line 1: cannot use the string \"a`b\" here: want an integer\n  line 2: cannot use the string \"`c`\" here: want true or false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p plain
			err := yaml.Unmarshal([]byte(tc.doc), &p)
			require.Error(t, err)
			require.Equal(t, "yaml: unmarshal errors:\n  "+tc.want, Rewrite(err).Error())
		})
	}
	require.Equal(t, "line 2: cannot use the string \"a`b\" here: want an integer (in count)",
		Message("line 2: cannot unmarshal !!str `a`b` into int (in count)"), "more after the type")
	long := strings.Repeat("x", 100)
	require.Equal(t, "line 2: cannot use the string \""+strings.Repeat("x", 61)+"…\" here: want an integer",
		Message("line 2: cannot unmarshal !!str `"+long+"` into int"))
}
