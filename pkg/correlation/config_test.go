package correlation

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"
)

func decode(t *testing.T, src string) (Services, Config, error) {
	t.Helper()
	var doc struct {
		Services    Services `yaml:"services"`
		Correlation Config   `yaml:"correlation"`
	}
	// The section's defaults, as config.Decode gives them.
	if err := yaml.Unmarshal([]byte("correlation: {}\n"), &doc); err != nil {
		return nil, Config{}, err
	}
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	err := dec.Decode(&doc)
	return doc.Services, doc.Correlation, err
}

func TestLoad(t *testing.T) {
	for _, tc := range []struct {
		name, src, err string
	}{
		{name: "valid", src: `
services:
  db: {}
  api: {depends_on: [db]}
`},
		{name: "unknown dependency", src: `
services:
  api: {depends_on: [dbb]}
`, err: `services: api (sred.yml) depends on unknown service "dbb"`},
		{name: "cycle", src: `
services:
  a: {depends_on: [b]}
  b: {depends_on: [c]}
  c: {depends_on: [a]}
`, err: `services: dependency cycle: a -> b -> c -> a`},
		{name: "self", src: `
services:
  a: {depends_on: [a]}
`, err: `services: dependency cycle: a -> a`},
		{name: "listed twice", src: `
services:
  db: {}
  a: {depends_on: [db, db]}
`, err: `services: a: depends_on lists "db" twice`},
		{name: "bad name", src: `
services:
  "a b": {}
`, err: `services: invalid service name "a b"`},
		{name: "unknown field", src: `
services:
  a: {depends: [b]}
`, err: `field depends not found`},
		{name: "rule without labels", src: `
correlation:
  label_rules: [{name: r}]
`, err: `correlation: label rule "r": labels must not be empty`},
		{name: "rule bad label", src: `
correlation:
  label_rules: [{name: r, labels: [cluster-name]}]
`, err: `correlation: label rule "r": invalid label name "cluster-name"`},
		{name: "rule twice", src: `
correlation:
  label_rules: [{name: r, labels: [a]}, {name: r, labels: [b]}]
`, err: `correlation: label_rules: rule "r" defined twice`},
		{name: "rule without window", src: `
correlation:
  window: 0s
  label_rules: [{name: r, labels: [a]}]
`, err: `correlation: label rule "r": no window (set its window or correlation.window)`},
		{name: "missing file", src: `
correlation:
  service_files: [nothing/*.yml]
`, err: `correlation: service_files: nothing/*.yml matches no file`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svcs, c, err := decode(t, tc.src)
			if err == nil {
				_, err = Load(svcs, c, nil)
			}
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.err)
		})
	}
}

func TestLoadImportsFiles(t *testing.T) {
	svcs, c, err := decode(t, `
services:
  db: {}
  cache: {}
correlation:
  service_files: [testdata/*.yml]
`)
	require.NoError(t, err)
	require.Equal(t, DefaultWindow, time.Duration(c.Window))
	require.True(t, c.SharedDependencies)
	g, err := Load(svcs, c, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"api", "cache", "checkout", "db"}, g.Names())
	require.Equal(t, "testdata/services.yml", g.Sources["checkout"])
	require.Equal(t, "sred.yml", g.Sources["db"])
	paths := g.Paths()
	require.Equal(t, []string{"checkout", "api", "db"}, paths["checkout"]["db"])
	require.Equal(t, []string{"checkout", "api"}, paths["checkout"]["api"])
	require.Empty(t, paths["db"])

	// A service of the file defined again inline is an error naming both.
	svcs["api"] = Service{}
	_, err = Load(svcs, c, nil)
	require.ErrorContains(t, err, `services: service "api" defined twice (in sred.yml and testdata/services.yml)`)

	// A file's dependency on a service nobody defines.
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "s.yml"), []byte("services:\n  web: {depends_on: [cdn]}\n"), 0o644))
	_, err = Load(nil, Config{ServiceFiles: []string{filepath.Join(dir, "*.yml")}}, nil)
	require.ErrorContains(t, err, `services: web (`+filepath.Join(dir, "s.yml")+`) depends on unknown service "cdn"`)
}

func TestRoot(t *testing.T) {
	svcs, c, err := decode(t, `
services:
  db: {}
  cache: {}
  api: {depends_on: [db, cache]}
  checkout: {depends_on: [api]}
  search: {depends_on: [db]}
`)
	require.NoError(t, err)
	g, err := Load(svcs, c, nil)
	require.NoError(t, err)
	corr := Compile(g, c)
	for _, tc := range []struct {
		affected []string
		root     string
	}{
		{[]string{"checkout"}, "checkout"},
		{[]string{"checkout", "api"}, "api"},
		{[]string{"checkout", "api", "db", "search"}, "db"},
		// Two failing dependencies: the one more of the others depend on.
		{[]string{"api", "search", "db", "cache"}, "db"},
		// Services outside the graph count as leaves.
		{[]string{"api", "billing"}, "api"},
	} {
		require.Equal(t, tc.root, corr.Root(tc.affected), "%v", tc.affected)
	}
}
