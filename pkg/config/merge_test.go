package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLoadMergeKeys: sections sharing settings with anchors, merge keys
// and aliases load as the file written out; a section a merge brings in
// is checked as one written.
func TestLoadMergeKeys(t *testing.T) {
	written := []byte(`global: {incident_id_prefix: OPS}
incidents: {service_labels: [service, job], default_severity: HIGH}
toy: {name: OPS, colour: red}
`)
	for _, tc := range []struct{ name, src string }{
		{"merge keys", `global: {incident_id_prefix: &p OPS}
incidents: &inc {service_labels: &labels [service, job], default_severity: HIGH}
toy: {<<: {name: *p, colour: blue}, colour: red}
`},
		{"a merged section", `global: {incident_id_prefix: OPS}
<<: [{incidents: {service_labels: [service, job], default_severity: HIGH}}, {incidents: {}}]
toy: {name: OPS, colour: red}
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := Load(written, "toy")
			require.NoError(t, err)
			got, err := Load([]byte(tc.src), "toy")
			require.NoError(t, err)
			require.Equal(t, want.Global, got.Global)
			require.Equal(t, want.Incidents, got.Incidents)
			var w, g struct{ Name, Colour string }
			require.NoError(t, want.Decode("toy", &w))
			require.NoError(t, got.Decode("toy", &g))
			require.Equal(t, w, g)
		})
	}
	// A section a merge brings in that no subsystem owns is refused.
	_, err := Load([]byte("global: &g {incident_id_prefix: OPS}\n<<: {toys: *g}\n"), "toy")
	require.EqualError(t, err, "yaml: unmarshal errors:\n  line 2: field toys not found in type config.Config")
}

// TestNotSredConfigMergeKeys: another kind of file is told by a key a
// merge brings in as by one written.
func TestNotSredConfigMergeKeys(t *testing.T) {
	_, err := Load([]byte("name: rb\n<<: {steps: []}\n"))
	require.ErrorContains(t, err, "this is a runbook (steps:), not a sred configuration; check it with srectl runbook validate")
}
