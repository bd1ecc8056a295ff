package scaling

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPolicyMergeKeys: a policy sharing settings with YAML anchors, merge
// keys and aliases decodes to the policy written out; a misspelt field
// in an anchored mapping is refused at the anchor.
func TestPolicyMergeKeys(t *testing.T) {
	const written = `service: api
target: {action: {exec: {command: [scale, "{{ .Vars.replicas }}"]}}}
min_instances: 1
max_instances: 5
metric: {type: cpu}
scale_up: {threshold: 80, step: 2, cooldown: 5m}
scale_down: {threshold: 30, step: 2, cooldown: 5m}
schedules:
  - {name: day, start: '09:00', end: '18:00', min_instances: 2, time_zone: Europe/Paris}
  - {name: eve, start: '18:00', end: '22:00', min_instances: 2, time_zone: Europe/Paris}
`
	for _, tc := range []struct{ name, doc string }{
		{"merge key", `service: api
target: {action: {exec: {command: [scale, "{{ .Vars.replicas }}"]}}}
min_instances: 1
max_instances: 5
metric: {type: cpu}
scale_up: &up {threshold: 80, step: 2, cooldown: 5m}
scale_down: {<<: *up, threshold: 30}
schedules:
  - &day {name: day, start: '09:00', end: '18:00', min_instances: 2, time_zone: Europe/Paris}
  - {<<: *day, name: eve, start: '18:00', end: '22:00'}
`},
		{"merge of a list, an alias as a value", `service: api
target: {action: {exec: {command: [scale, "{{ .Vars.replicas }}"]}}}
min_instances: &two 1
max_instances: 5
metric: {type: cpu}
scale_up: &up {threshold: 80, step: &step 2}
scale_down: {<<: [{threshold: 30}, *up], cooldown: 5m}
schedules:
  - &day {name: day, start: '09:00', end: '18:00', min_instances: *step, time_zone: Europe/Paris}
  - {<<: [{name: eve, start: '18:00'}, *day], end: '22:00'}
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := Parse([]byte(written), "p.yml")
			require.NoError(t, err)
			got, err := Parse([]byte(tc.doc), "p.yml")
			require.NoError(t, err)
			if tc.name != "merge key" {
				got.ScaleUp.Cooldown = want.ScaleUp.Cooldown // the list merges scale_down's only
			}
			require.Equal(t, want.ScaleDown, got.ScaleDown)
			require.Equal(t, want.Schedules[1].Name, got.Schedules[1].Name)
			got.raw, want.raw = nil, nil
			for i := range got.Schedules {
				got.Schedules[i].loc, want.Schedules[i].loc = nil, nil
			}
			require.Equal(t, want, got)
		})
	}
}

// TestPolicyMergeKeyErrors: a problem inside a merged mapping is placed
// at the anchor, with the texts of a mapping written out.
func TestPolicyMergeKeyErrors(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"misspelt field in the anchor", good + "schedules:\n  - &d {name: a, start: '09:00', end: '12:00', min_instance: 2}\n  - {<<: *d, name: b}\n",
			`p.yml:9:48: schedule: unknown field "min_instance" (want name, days, start, end, time_zone, min_instances)`},
		{"misspelt field in a merged rule", `service: api
target: {action: {exec: {command: [scale, "{{ .Vars.replicas }}"]}}}
min_instances: 1
max_instances: 5
metric: {type: cpu}
scale_up: &up {threshold: 80, cooldwn: 5m}
scale_down: {<<: *up, threshold: 30}
`, `p.yml:6:31: scale_up/scale_down: unknown field "cooldwn" (want threshold, step, cooldown, stabilization)`},
		{"merge of a scalar", `service: api
target: {action: {exec: {command: [scale, "{{ .Vars.replicas }}"]}}}
min_instances: &one 1
max_instances: 5
metric: {type: cpu}
scale_up: {threshold: 80}
scale_down: {<<: *one, threshold: 30}
`, `p.yml:7:18: a merge key (<<) takes a mapping or a list of mappings (e.g. <<: *base), got "1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), "p.yml")
			require.EqualError(t, err, tc.want)
		})
	}
}
