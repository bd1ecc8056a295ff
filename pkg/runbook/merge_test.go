package runbook

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestParseMergeKeys: a runbook sharing settings between steps with YAML
// anchors, merge keys and aliases reads as the runbook written out.
func TestParseMergeKeys(t *testing.T) {
	const written = `name: rb
matchers: ['alertname="X"']
steps:
  - name: a
    timeout: 30s
    on_failure: continue
    exec: {command: [/bin/echo, a], env: {MODE: safe, LEVEL: "1"}}
  - name: b
    timeout: 30s
    on_failure: continue
    exec: {command: [/bin/echo, b], env: {MODE: safe, LEVEL: "2"}}
  - name: c
    timeout: 30s
    on_failure: continue
    wait: {duration: 1s}
`
	for _, tc := range []struct{ name, src string }{
		{"merge keys", `name: rb
matchers: ['alertname="X"']
steps:
  - &step
    name: a
    timeout: 30s
    on_failure: continue
    exec: {command: [/bin/echo, a], env: &env {MODE: safe, LEVEL: "1"}}
  - <<: *step
    name: b
    exec: {command: [/bin/echo, b], env: {<<: *env, LEVEL: "2"}}
  - {<<: *step, name: c, exec: null, wait: {duration: 1s}}
`},
		{"a list of merges, aliases as values", `name: rb
matchers: ['alertname="X"']
steps:
  - name: a
    timeout: &timeout 30s
    on_failure: &cont continue
    exec: {command: [/bin/echo, a], env: &env {MODE: safe, LEVEL: "1"}}
  - name: b
    timeout: *timeout
    on_failure: *cont
    exec: {command: [/bin/echo, b], env: {<<: [{LEVEL: "2"}, *env]}}
  - {name: c, timeout: *timeout, on_failure: *cont, wait: {duration: 1s}}
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := Parse([]byte(written), "rb.yml")
			require.NoError(t, err)
			got, err := Parse([]byte(tc.src), "rb.yml")
			require.NoError(t, err)
			w, err := json.Marshal(want)
			require.NoError(t, err)
			g, err := json.Marshal(got)
			require.NoError(t, err)
			require.JSONEq(t, string(w), string(g))
		})
	}
}

// TestParseMergeKeyErrors: a misspelt field a merge brings in is refused
// at the anchor, with the text of one written out; a merge of a scalar
// is refused at it.
func TestParseMergeKeyErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"misspelt field in a merged step", `name: rb
matchers: ['alertname="X"']
x: &base {timout: 5s}
steps:
  - {<<: *base, name: a, wait: {duration: 1s}}
`, `rb.yml:3:1: unknown field "x" in runbook`},
		{"misspelt field in a merged http step", `name: rb
matchers: ['alertname="X"']
steps:
  - name: a
    wait: {duration: 1s}
    labels: &l {team: x}
  - {<<: *l, name: b, wait: {duration: 1s}}
`, `rb.yml:6:17: unknown field "team" in step (known fields: approval, exec, http, idempotent, kubernetes, labels, name, notify, on_failure, promql, timeout, verify, wait)`},
		{"merge of a scalar", `name: rb
matchers: ['alertname="X"']
steps:
  - name: &n a
    wait: {duration: 1s}
  - {<<: *n, name: b, wait: {duration: 1s}}
`, `rb.yml:6:10: a merge key (<<) takes a mapping or a list of mappings (e.g. <<: *base), got "a"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "rb.yml")
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestActionMergeKeys: an action reads merge keys as a runbook step does,
// and refuses a step's own fields a merge brings in.
func TestActionMergeKeys(t *testing.T) {
	for _, tc := range []struct{ name, src, err string }{
		{"merged exec", "<<: {exec: {command: [/bin/true]}}\ntimeout: 5s", ""},
		{"merged name", "<<: {name: x}\nexec: {command: [/bin/true]}", `action: unknown field "name"`},
		{"merged misspelt field", "<<: {timout: 5s}\nexec: {command: [/bin/true]}", `unknown field "timout"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseAction(t, tc.src, nil)
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.err)
		})
	}
}
