package rollout

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	sretest "github.com/rootuip/sre/pkg/testutil"
)

const validHead = "name: api-canary\nservice: api\nenvironment: staging\n"

const setWeight = "  set_weight: {http: {endpoint: proxy, method: PUT, path: /w, body: '{{ .Vars.weight }}'}}\n"

// TestDefinitionErrors: one invalid definition per error, with the exact
// message people read.
func TestDefinitionErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, err string }{
		{"bad name", "name: API\n", `d.yml:1:7: name "API": want lower-case letters, digits, '-' or '_' (at most 64)`},
		{"no service", "name: x\nenvironment: e\ncanary: {stages: [{weight: 100}]}\n",
			`d.yml:1:7: rollout "x": service is required (the deploy gate and the target lock need it)`},
		{"no environment", "name: x\nservice: s\n", `d.yml:1:7: rollout "x": environment is required (the target lock is environment/service)`},
		{"no strategy", validHead, `d.yml:1:7: rollout "api-canary": want exactly one of canary or blue_green`},
		{"unknown field", validHead + "strategy: canary\n", "d.yml:4:1: unknown field \"strategy\""},
		{"weight as text", validHead + "canary:\n  stages: [{weight: ten}]\n" + setWeight,
			"d.yml:5:21: cannot use the string \"ten\" here: want an integer"},
		{"weight above 100", validHead + "canary:\n  stages: [{weight: 150}]\n" + setWeight,
			`d.yml:5:13: rollout "api-canary": canary.stages[0]: weight 150: want 1 to 100 (percent of traffic)`},
		{"weights go down", validHead + "canary:\n  stages: [{weight: 50, duration: 1m}, {weight: 10, duration: 1m}, {weight: 100}]\n" + setWeight,
			`d.yml:5:41: rollout "api-canary": canary.stages[1]: weight 10: weights must increase (previous 50)`},
		{"no duration", validHead + "canary:\n  stages: [{weight: 10}, {weight: 100}]\n" + setWeight,
			`d.yml:5:13: rollout "api-canary": canary.stages[0]: weight 10 needs a duration (how long the canary is watched)`},
		{"does not reach 100", validHead + "canary:\n  stages: [{weight: 10, duration: 1m}]\n" + setWeight,
			`d.yml:5:3: rollout "api-canary": canary.stages: the last stage has weight 10; end with weight 100`},
		{"no set_weight", validHead + "canary:\n  stages: [{weight: 100}]\n", `d.yml:1:7: rollout "api-canary": canary.set_weight is required`},
		{"undeclared variable", validHead + "canary:\n  stages: [{weight: 100}]\n  set_weight: {exec: {command: [/bin/echo, '{{ .Vars.host }}']}}\n",
			`d.yml:6:44: rollout "api-canary": canary.set_weight: action: command[1]: template "{{ .Vars.host }}" uses variable "host", which is not a declared variable`},
		{"shell", validHead + "canary:\n  stages: [{weight: 100}]\n  set_weight: {exec: {command: [sh, -c, 'echo {{ .Vars.weight }}']}}\n",
			"exec.command runs the shell sh"},
		{"analysis without canary labels", validHead + "analysis: {spec: api}\ncanary:\n  stages: [{weight: 100}]\n" + setWeight,
			"d.yml: analysis.canary: the labels selecting the canary's series are required (e.g. {track: canary})"},
		{"bad label name", validHead + "analysis: {spec: api, canary: {track-name: canary}}\ncanary:\n  stages: [{weight: 100}]\n" + setWeight,
			`d.yml:4:32: analysis.canary: "track-name" is not a Prometheus label name`},
		{"empty canary label value", validHead + "analysis: {spec: api, canary: {track: ''}}\ncanary:\n  stages: [{weight: 100}]\n" + setWeight,
			"d.yml:4:23: analysis.canary: label track has an empty value, which selects the series without that label: give the value of the canary's series"},
		{"empty baseline label value", validHead + "analysis: {spec: api, canary: {track: canary}, baseline: {track: }}\ncanary:\n  stages: [{weight: 100}]\n" + setWeight,
			"d.yml:4:48: analysis.baseline: label track has an empty value, which selects the series without that label: give the value of the baseline's series"},
		{"blue-green without rollback", validHead + "blue_green:\n  deploy: {exec: {command: [/bin/true]}}\n  health: {exec: {command: [/bin/true]}}\n  switch: {exec: {command: [/bin/true]}}\n",
			`d.yml:1:7: rollout "api-canary": blue_green.rollback is required`},
		{"bad version pattern", validHead + "version_pattern: '['\ncanary:\n  stages: [{weight: 100}]\n" + setWeight,
			"d.yml:4:18: rollout \"api-canary\": version_pattern: error parsing regexp: missing closing ]: `[)$`"},
		// A syntax error is positioned file:line:col, as in sred.yml.
		{"bracket left open", validHead + "canary:\n  stages: [{weight: 100}\n" + setWeight,
			`d.yml:5:11: invalid YAML: "[" opened here is not closed before line 6`},
		// A file of another kind is named as such, not refused field by
		// field ("unknown field apiVersion", "unknown field kind", ...).
		{"analysis spec", "apiVersion: sre.rootuip.io/v1\nkind: RolloutAnalysis\nname: api\ninterval: 5m\n",
			`d.yml: a document of kind "RolloutAnalysis", not a rollout definition (name, service, analysis, and canary or blue_green: docs/rollout-runner.md); analysis specs (RolloutAnalysis) are loaded from sred.yml's analysis.spec_files and checked by srectl check config`},
		{"two documents", validHead + "canary:\n  stages: [{weight: 100}]\n" + setWeight + "---\nname: b\n", "d.yml: one rollout per file, found a second YAML document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "d.yml")
			require.Error(t, err)
			if strings.HasPrefix(tc.err, "d.yml") {
				require.Equal(t, tc.err, err.Error())
			} else {
				require.Contains(t, err.Error(), tc.err)
			}
			require.NotContains(t, err.Error(), "into int", "no Go type in errors")
		})
	}
}

// TestExamplesLoad loads examples/rollouts/stages as sred does.
func TestExamplesLoad(t *testing.T) {
	dir := filepath.Join(sretest.RepoRoot(t), "examples", "rollouts", "stages")
	defs, err := Load([]string{dir}, nil)
	require.NoError(t, err)
	var got []string
	for _, d := range defs {
		var stages []string
		for _, s := range d.Plan() {
			stages = append(stages, s.Name)
		}
		got = append(got, d.Name+": "+d.Strategy()+" "+strings.Join(stages, ",")+" on "+d.Target()+" endpoints "+strings.Join(d.Endpoints(), ","))
	}
	require.Equal(t, []string{
		"api-blue-green: blue_green deploy,health,switch,watch,retire on staging/api endpoints api-green,canary-proxy",
		"api-canary: canary weight-10,weight-50,weight-100 on staging/api endpoints canary-proxy",
	}, got)
	_, err = Load([]string{dir, filepath.Join(dir, "api-canary.yml")}, nil)
	require.ErrorContains(t, err, `name "api-canary" already used by`)
}
