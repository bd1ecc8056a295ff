package yamlerr

import (
	"testing"

	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"
)

type fieldsDoc struct {
	Server  fieldsServer            `yaml:"server"`
	Routes  []fieldsRoute           `yaml:"routes"`
	Targets map[string]*fieldsRoute `yaml:"targets"`
	Wide    fieldsWide              `yaml:"wide"`
	Odd     fieldsOdd               `yaml:"odd"`
	Other   map[string]any          `yaml:",inline"`
}

// fieldsServer decodes itself through its "plain" alias, as the sections
// of sred.yml do: the decoder names the alias, not fieldsServer.
type fieldsServer struct {
	Listen    string `yaml:"listen"`
	Timeout   string `yaml:"timeout"`
	fieldsTLS `yaml:",inline"`
}

func (s *fieldsServer) UnmarshalYAML(unmarshal func(any) error) error {
	type plain fieldsServer
	return unmarshal((*plain)(s))
}

type fieldsTLS struct {
	CertFile string `yaml:"cert_file"`
	Internal string `yaml:"-"`
}

type fieldsRoute struct {
	Match    string `yaml:"match"`
	Receiver string `yaml:"receiver"`
}

// fieldsWide has more fields than an error lists.
type fieldsWide struct {
	A, B, C, D, E, F, G, H, I, J, K, L, M string
}

// fieldsOdd is written in another shape than its Go struct.
type fieldsOdd struct{ Set map[string]bool }

type fieldsOddForm struct {
	Values []string `yaml:"values"`
}

func (o *fieldsOdd) UnmarshalYAML(unmarshal func(any) error) error {
	var f fieldsOddForm
	if err := unmarshal(&f); err != nil {
		return err
	}
	o.Set = map[string]bool{}
	for _, v := range f.Values {
		o.Set[v] = true
	}
	return nil
}

// TestFields: an unknown field of a file decoded into a known Go type
// names the place it is in and the field meant, else the fields allowed
// there when they are few; when its place does not lead to a struct of the
// type the decoder names, the message is Message's.
func TestFields(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		root      any
		want      string
	}{
		{"close field of a plain alias", "server:\n  listen: x\n  listn: y\n", fieldsDoc{},
			`f.yml:3:3: unknown field "listn" in server (did you mean "listen"?)`},
		{"close field of an inline struct", "server:\n  cert_fle: x\n", fieldsDoc{},
			`f.yml:2:3: unknown field "cert_fle" in server (did you mean "cert_file"?)`},
		{"no close field, few fields", "server:\n  zzz: 1\n", &fieldsDoc{},
			`f.yml:2:3: unknown field "zzz" in server (known fields: cert_file, listen, timeout)`},
		{"item of a list", "routes:\n  - match: a\n  - recever: b\n", fieldsDoc{},
			`f.yml:3:5: unknown field "recever" in routes[1] (did you mean "receiver"?)`},
		{"value of a map", "targets:\n  web:\n    mach: a\n  \"a b\":\n    x: 1\n", fieldsDoc{},
			"f.yml:3:5: unknown field \"mach\" in targets.web (did you mean \"match\"?)\n" +
				`f.yml:5:5: unknown field "x" in targets."a b" (known fields: match, receiver)`},
		{"no close field, many fields", "wide:\n  zzz: 1\n", fieldsDoc{},
			`f.yml:2:3: unknown field "zzz" in wide`},
		{"close field among many", "wide:\n  aa: 1\n", fieldsDoc{},
			`f.yml:2:3: unknown field "aa" in wide (did you mean "a"?)`},
		{"another shape than the Go struct", "odd:\n  valus: [a]\n", fieldsDoc{},
			`f.yml:2:3: unknown field "valus"`},
		{"top level", "mtch: a\n", fieldsRoute{},
			`f.yml:1:1: unknown field "mtch" (did you mean "match"?)`},
		{"written under an anchor elsewhere", "x: &a {listn: 1}\nserver: *a\n", fieldsDoc{},
			`f.yml:1:8: unknown field "listn"`},
		{"not marked", "server:\n  listn: y\n", nil,
			`f.yml:2:3: unknown field "listn"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d any = &fieldsDoc{}
			if _, ok := tc.root.(fieldsRoute); ok {
				d = &fieldsRoute{}
			}
			dec := yaml.NewDecoder(stringsReader(tc.doc))
			dec.KnownFields(true)
			err := dec.Decode(d)
			require.Error(t, err)
			marked := err
			if tc.root != nil {
				marked = Fields(err, tc.root)
				require.Equal(t, err.Error(), marked.Error(), "Fields keeps the message")
			}
			got := FileSection("f.yml", []byte(tc.doc), "", marked)
			require.EqualError(t, got, tc.want, "decoder said: %v", err)
			require.ErrorIs(t, got, err)
			var te *yaml.TypeError
			require.ErrorAs(t, got, &te)
		})
	}
	require.NoError(t, Fields(nil, fieldsDoc{}))
}
