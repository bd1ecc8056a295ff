package yamlerr

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	yamlv2 "go.yaml.in/yaml/v2"
	yaml "go.yaml.in/yaml/v3"
)

// TestFile: every problem of decoding a file is positioned as the errors
// of the SLO specs are (file:line:col), at the key or value it names, one
// problem a line, without the decoder's Go types.
func TestFile(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown field", "name: x\n  \nnme: y\n", `f.yml:3:1: unknown field "nme"`},
		{"unknown nested field", "sections:\n  - name: a\n    cuont: 1\n", `f.yml:3:5: unknown field "cuont"`},
		{"unknown field in a flow mapping", "sections: [{name: a, nme: b}]\n", `f.yml:1:22: unknown field "nme"`},
		{"wrong kind of value", "count: many\n", `f.yml:1:8: cannot use the string "many" here: want an integer`},
		{"value cut by the decoder", "name: a\ncount:    thirty minutes\n", `f.yml:2:11: cannot use the string "thirty …" here: want an integer`},
		{"the second of two equal values", "items: [5]\nsections: [{name: x}, 5]\n", `f.yml:2:23: cannot use the integer "5" here: want a mapping of fields`},
		{"a list for a mapping", "labels:\n  - a\n", `f.yml:2:3: cannot use a list here: want a mapping`},
		{"two problems", "nme: x\ncount: many\n", "f.yml:1:1: unknown field \"nme\"\nf.yml:2:8: cannot use the string \"many\" here: want an integer"},
		{"duplicate key", "name: a\n  \nname: b\n", `f.yml:3:1: mapping key "name" already defined at line 1`},
		{"syntax", "a:\n  b: 1\n   c: 2\n", "f.yml:3:4: invalid YAML: mapping values are not allowed in this context"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p plain
			dec := yaml.NewDecoder(stringsReader(tc.doc))
			dec.KnownFields(true)
			err := dec.Decode(&p)
			require.Error(t, err)
			got := File("f.yml", []byte(tc.doc), err)
			require.EqualError(t, got, tc.want, "decoder said: %v", err)
			require.ErrorIs(t, got, err)
		})
	}
}

// TestFileNodeError: a problem an UnmarshalYAML finds at a node is
// positioned at the node; an error with no position follows the file's
// name.
func TestFileNodeError(t *testing.T) {
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte("a:\n  bogus: 1\n"), &doc))
	key := doc.Content[0].Content[1].Content[0]
	err := At(key, "unknown field %q", key.Value)
	require.EqualError(t, err, `line 2: unknown field "bogus"`)
	require.EqualError(t, File("f.yml", nil, err), `f.yml:2:3: unknown field "bogus"`)
	var ne *NodeError
	require.True(t, errors.As(File("f.yml", nil, err), &ne))
	other := errors.New("one policy per file")
	require.EqualError(t, File("f.yml", nil, other), "f.yml: one policy per file")
	require.NoError(t, File("f.yml", nil, nil))
}

// TestFileLocatedOnce: a syntax error a loader has already located (as
// the config loader does) keeps its column.
func TestFileLocatedOnce(t *testing.T) {
	doc := []byte("a:\n  b: 1\n  c: [2, 3\n  d: 4\n")
	var n yaml.Node
	err := yaml.Unmarshal(doc, &n)
	require.Error(t, err)
	want := "f.yml:3:6: invalid YAML: \"[\" opened here is not closed before line 4"
	require.EqualError(t, File("f.yml", doc, err), want)
	require.EqualError(t, File("f.yml", doc, Located(doc, err)), want)
	require.EqualError(t, File("f.yml", doc, fmt.Errorf("decode: %w", Located(doc, err))), want)
}

// TestFileSection: the errors of a decoder's own checks, which name no
// line, are positioned at the value or key they quote or the field their
// path names, else at the key of the section, one line each; yaml.v2's
// unmarshal errors (exporter-toolkit, prometheus/common) are positioned as
// yaml.v3's are.
func TestFileSection(t *testing.T) {
	doc := "global: {}\nretention:\n  audit_log: forever\ntokens:\n  - name: ci\n  - name: cd\n"
	for _, tc := range []struct{ name, section, err, want string }{
		{"quoted value", "retention", `not a valid duration string: "forever"`, `f.yml:3:14: not a valid duration string: "forever"`},
		{"quoted value outside the section", "global", `not a valid duration string: "forever"`, `f.yml:1:1: not a valid duration string: "forever"`},
		{"field path", "", "tokens[1] (cd): sha256 is required", "f.yml:6:5: tokens[1] (cd): sha256 is required"},
		{"section path", "retention", "retention: audit_log: must be longer", "f.yml:3:3: retention: audit_log: must be longer"},
		{"section key", "retention", "retention: must be set", "f.yml:2:1: retention: must be set"},
		{"nothing to point at", "", "something is wrong", "f.yml: something is wrong"},
		{"one position a line", "", "tokens[0]: a\n\"forever\" b", "f.yml:5:5: tokens[0]: a\nf.yml:3:14: \"forever\" b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := errors.New(tc.err)
			got := FileSection("f.yml", []byte(doc), tc.section, err)
			require.EqualError(t, got, tc.want)
			require.ErrorIs(t, got, err)
			// File leaves them unpositioned.
			require.EqualError(t, File("f.yml", []byte(doc), err), "f.yml: "+tc.err)
		})
	}
	var w plain
	v2doc := "name: a\nnme: b\n"
	err := yamlv2.UnmarshalStrict([]byte(v2doc), &w)
	require.Error(t, err)
	require.EqualError(t, File("w.yml", []byte(v2doc), err), `w.yml:2:1: unknown field "nme"`)
}

// TestFileSectionCore: with no section given (sred.yml's core sections),
// a check's message is placed within the top-level section its leading
// path names, at the value it quotes or the field it names (the first
// word after the path included), else at that section's key.
func TestFileSectionCore(t *testing.T) {
	doc := "webhook:\n  bearer_token: OPS-\n  max_body_bytes: 0\nglobal:\n  incident_id_prefix: OPS-\nincidents:\n  auto_resolve_after: 30s\n"
	for _, tc := range []struct{ err, want string }{
		// "OPS-" is webhook's value too: the message names global.
		{`global: incident_id_prefix "OPS-" must contain only letters and digits`, `f.yml:5:23: global: incident_id_prefix "OPS-" must contain only letters and digits`},
		{"incidents: auto_resolve_after must be 0 (off) or at least 1m, got 30s", "f.yml:7:3: incidents: auto_resolve_after must be 0 (off) or at least 1m, got 30s"},
		{"webhook: max_body_bytes must be positive, got 0", "f.yml:3:3: webhook: max_body_bytes must be positive, got 0"},
		{"webhook: at most one of bearer_token and bearer_token_file must be set", "f.yml:1:1: webhook: at most one of bearer_token and bearer_token_file must be set"},
		{"config must hold a single YAML document", "f.yml: config must hold a single YAML document"},
	} {
		require.EqualError(t, FileSection("f.yml", []byte(doc), "", errors.New(tc.err)), tc.want)
	}
}

// TestFileChecks: the errors of the checks made after decoding (a policy
// naming a user the oncall section lacks) are placed at the node they
// name, the quotes after the first narrowing the search to what it names;
// a line that names no node, or that is positioned in another file, has
// no position: never the key of a section alone.
func TestFileChecks(t *testing.T) {
	doc := "oncall:\n  users: [{name: primary}]\n" +
		"escalation:\n  policies:\n    - name: primary\n      levels: [{users: [primary]}]\n" +
		"    - name: backup\n      levels:\n        - users: [ann]\n        - schedules: [primary]\n"
	sections := []string{"escalation", "oncall"}
	for _, tc := range []struct{ err, want string }{
		{`escalation: policy "backup" level 1: unknown schedule "primary"`, `f.yml:10:23: escalation: policy "backup" level 1: unknown schedule "primary"`},
		{`policy "backup" level 1: unknown schedule "primary"`, `f.yml:10:23: policy "backup" level 1: unknown schedule "primary"`},
		{`escalation: policy "other" level 0: unknown user "nobody"`, `f.yml: escalation: policy "other" level 0: unknown user "nobody"`},
		{"escalation: something is wrong", "f.yml: escalation: something is wrong"},
		// A path through lists and fields: the value it names, not the
		// same name quoted elsewhere in the policy.
		{`escalation: policies[0] (primary): levels[0].users[0]: unknown user "primary"`, `f.yml:6:25: escalation: policies[0] (primary): levels[0].users[0]: unknown user "primary"`},
		{`escalation: policies[1] (backup): levels[1].schedules[0]: unknown schedule "primary"`, `f.yml:10:23: escalation: policies[1] (backup): levels[1].schedules[0]: unknown schedule "primary"`},
		{`escalation: policies.yml:3:4: unknown user "primary"`, `f.yml: escalation: policies.yml:3:4: unknown user "primary"`},
		{"escalation: policies: too many\noncall: users[0]: no contact", "f.yml:4:3: escalation: policies: too many\nf.yml:2:11: oncall: users[0]: no contact"},
	} {
		err := errors.New(tc.err)
		got := FileChecks("f.yml", []byte(doc), sections, err)
		require.EqualError(t, got, tc.want)
		require.ErrorIs(t, got, err)
	}
	require.NoError(t, FileChecks("f.yml", []byte(doc), sections, nil))
}

// TestFileDecoded: a decoder's own check is positioned at the node it
// names (a quoted value, a field named with its value, the last such pair
// of the message), a syntax or type error as File says, and a message
// naming nothing keeps the file's name alone.
func TestFileDecoded(t *testing.T) {
	doc := "name: Bad\nabort:\n  interval: 100y\nfaults:\n  - {type: latency, latency: 10s}\n"
	for _, tc := range []struct{ err, want string }{
		{`name "Bad" must be lowercase`, `f.yml:1:7: name "Bad" must be lowercase`},
		{"abort.interval 100y is above 5m", "f.yml:3:13: abort.interval 100y is above 5m"},
		{"fault of type latency: latency 10s must be between 100ms and 5s", "f.yml:5:30: fault of type latency: latency 10s must be between 100ms and 5s"},
		{"abort.interval 5m is above 1m", "f.yml: abort.interval 5m is above 1m"},
		{"at least one fault is required", "f.yml: at least one fault is required"},
		{`name "Bad": template: Bad:1:10: no field`, `f.yml:1:7: name "Bad": template: Bad:1:10: no field`},
		{`name "Bad": see other.yml:1:10: here`, `f.yml: name "Bad": see other.yml:1:10: here`},
	} {
		require.EqualError(t, FileDecoded("f.yml", []byte(doc), errors.New(tc.err)), tc.want)
	}
	// A check of the whole object (Whole) naming no node: at the object,
	// its name, else its mapping; at the field it names when the file has it.
	for _, tc := range []struct{ doc, err, want string }{
		{doc, "duration is required", "f.yml:1:7: duration is required"},
		{doc, "faults: at least one fault is required", "f.yml:4:1: faults: at least one fault is required"},
		{"# an experiment\nkind: Experiment\n", "name is required", "f.yml:2:1: name is required"},
		{"- a\n", "name is required", "f.yml: name is required"},
	} {
		err := errors.New(tc.err)
		got := FileDecoded("f.yml", []byte(tc.doc), Whole(err))
		require.EqualError(t, got, tc.want)
		require.ErrorIs(t, got, err)
	}
	bad := "a:\n  b: 1\n   c: 2\n"
	var n yaml.Node
	err := yaml.Unmarshal([]byte(bad), &n)
	require.EqualError(t, FileDecoded("f.yml", []byte(bad), err), "f.yml:3:4: invalid YAML: mapping values are not allowed in this context")
	require.NoError(t, FileDecoded("f.yml", nil, nil))
}

// TestAtNamed: a check of a mapping is placed at the node its message
// names: the value of the field its path names when that value is an
// empty list or mapping the check refuses ("command: []"), the key when
// the field's value is not what is named, the mapping when nothing is.
func TestAtNamed(t *testing.T) {
	doc := "name: heal\ncommand: []\nenv: {}\ntimeout: 5m\npaths:\n  - /a\n"
	var n yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(doc), &n))
	m := n.Content[0]
	for _, tc := range []struct {
		msg       string
		line, col int
	}{
		{"command: [] is empty (an argv list)", 2, 10},
		{"env: {} is empty", 3, 6},
		{"timeout: 5m is above 1m", 4, 10},
		{`paths[0]: "/a" is refused`, 6, 5},
		{"paths: one path only", 5, 1},
		{"nothing named", 1, 1},
	} {
		var ne *NodeError
		require.ErrorAs(t, AtNamed(m, "%s", tc.msg), &ne, tc.msg)
		require.Equal(t, [2]int{tc.line, tc.col}, [2]int{ne.Line, ne.Column}, tc.msg)
	}
}

// TestMergeKeysAndAliases: a check naming a field that an alias (*d) or a
// merge key (<<: *d, <<: [*a, *b]) brings in is placed where the value is
// written, at its anchor (&d), as yaml.v3 decodes it: a key the mapping
// writes wins over a merged one, an earlier merged mapping over a later
// one. Before, such a field was placed at the mapping that holds the
// merge, or at the key of the field the alias is the value of.
func TestMergeKeysAndAliases(t *testing.T) {
	doc := `defaults: &d
  after: 5m
  users: [bob]
  channels: &chs []
fast: &f {after: 1m, repeat: 2}
escalation:
  policies:
    - name: api
      levels:
        - <<: *d
          users: [ann]
        - <<: [*f, *d]
        - after: &late 30m
          users: *chs
        - after: *late
          timeout: &bad forever
        - {timeout: *bad}
retry:
  <<: *f
`
	for _, tc := range []struct{ name, err, want string }{
		{"merged value", "escalation: policies[0] (api): levels[0].after: 5m must be later than the previous level's",
			"f.yml:2:10: escalation: policies[0] (api): levels[0].after: 5m must be later than the previous level's"},
		{"written key wins over the merged one", "escalation: policies[0] (api): levels[0].users[0]: unknown user \"ann\"",
			"f.yml:11:19: escalation: policies[0] (api): levels[0].users[0]: unknown user \"ann\""},
		{"the first of a list of merges wins", "escalation: policies[0] (api): levels[1].after: 1m must be later than the previous level's",
			"f.yml:5:18: escalation: policies[0] (api): levels[1].after: 1m must be later than the previous level's"},
		{"from the second of a list of merges", "escalation: policies[0] (api): levels[1].users[0]: unknown user \"bob\"",
			"f.yml:3:11: escalation: policies[0] (api): levels[1].users[0]: unknown user \"bob\""},
		{"field named by a merge", "escalation: policies[0] (api): levels[1].repeat: 2 must not be above 1",
			"f.yml:5:30: escalation: policies[0] (api): levels[1].repeat: 2 must not be above 1"},
		{"aliased scalar", "escalation: policies[0] (api): levels[3].after: 30m must be later than the previous level's",
			"f.yml:13:18: escalation: policies[0] (api): levels[3].after: 30m must be later than the previous level's"},
		{"aliased empty list", "escalation: policies[0] (api): levels[2].users: [] is empty",
			"f.yml:4:13: escalation: policies[0] (api): levels[2].users: [] is empty"},
		{"quote in a scope that merges it", `escalation: policy "api" level 1: unknown user "bob"`,
			`f.yml:3:11: escalation: policy "api" level 1: unknown user "bob"`},
		{"aliased value of a field in a flow mapping", "escalation: policies[0] (api): levels[4].timeout: forever is not a duration",
			"f.yml:16:20: escalation: policies[0] (api): levels[4].timeout: forever is not a duration"},
		{"field named with its value through a merge", "retry.repeat 2 is above 1",
			"f.yml:5:30: retry.repeat 2 is above 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := errors.New(tc.err)
			got := FileChecks("f.yml", []byte(doc), nil, err)
			require.EqualError(t, got, tc.want)
			require.ErrorIs(t, got, err)
		})
	}

	// The check of a mapping's UnmarshalYAML (AtNamed), of the level
	// that merges its fields.
	var n yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(doc), &n))
	levels, _ := child(n.Content[0], "escalation")
	for _, p := range []string{"policies", "[0]", "levels"} {
		levels, _ = child(levels, p)
	}
	for _, tc := range []struct {
		level     int
		msg       string
		line, col int
	}{
		{0, "after: 5m must be later", 2, 10},
		{1, "repeat: 2 must not be above 1", 5, 30},
		{1, "users: unknown user \"bob\"", 3, 11},
		{2, "users: [] is empty", 4, 13},
		{3, "timeout: forever is not a duration", 16, 20},
		{4, "timeout: forever is not a duration", 16, 20},
	} {
		var ne *NodeError
		require.ErrorAs(t, AtNamed(levels.Content[tc.level], "%s", tc.msg), &ne, tc.msg)
		require.Equal(t, [2]int{tc.line, tc.col}, [2]int{ne.Line, ne.Column}, "levels[%d]: %s", tc.level, tc.msg)
	}
}

// TestAliasCycle: an anchor whose value holds its own alias (which the
// decoder refuses) is searched once: placing a check ends.
func TestAliasCycle(t *testing.T) {
	doc := "a: &a {b: *a, <<: *a, c: [*a]}\n"
	for _, tc := range []struct{ msg, checks, section string }{
		// The path as far as the document has it: the key b.
		{`a.b.b.b.x: unknown user "nobody"`, "1:8", "1:8"},
		{`a.b.b.c[0].b: "x"`, "1:8", "1:8"},
		{"a: c 5 is wrong", "1:23", "1:23"},
		// Nothing under a: no position for a check, the section's key
		// for a section.
		{"a.x.y: wrong", "", "1:1"},
		{`x "y": z: "nobody"`, "", "1:1"},
	} {
		at := func(pos string) string {
			if pos == "" {
				return "f.yml: " + tc.msg
			}
			return "f.yml:" + pos + ": " + tc.msg
		}
		err := errors.New(tc.msg)
		require.EqualError(t, FileChecks("f.yml", []byte(doc), nil, err), at(tc.checks))
		require.EqualError(t, FileDecoded("f.yml", []byte(doc), err), at(tc.checks))
		require.EqualError(t, FileSection("f.yml", []byte(doc), "a", err), at(tc.section))
	}
}

// TestEmptyCollectionChecked: the check made after decoding that refuses
// an empty list or mapping ("steps[0].command: []") is placed at that
// value, as AtNamed places it; a section of sred.yml (FileSection) keeps
// the key. A section's own empty value is no position for its checks.
func TestEmptyCollectionChecked(t *testing.T) {
	doc := "name: heal\nsteps:\n  - command: []\n    env: {}\n  - args: [a]\nescalation: {}\n"
	for _, tc := range []struct{ msg, at, section string }{
		{"steps[0].command: [] is empty (an argv list)", "3:14", "3:5"},
		{"steps[0].env: {} is empty", "4:10", "4:5"},
		{"steps[1].args: must not be empty", "5:5", "5:5"},
		{"escalation: default severities.LOW.channels[1]: channel slack is not configured", "", "6:1"},
	} {
		at := func(pos string) string {
			if pos == "" {
				return "f.yml: " + tc.msg
			}
			return "f.yml:" + pos + ": " + tc.msg
		}
		err := errors.New(tc.msg)
		require.EqualError(t, FileChecks("f.yml", []byte(doc), nil, err), at(tc.at))
		require.EqualError(t, FileDecoded("f.yml", []byte(doc), err), at(tc.at))
		require.EqualError(t, FileSection("f.yml", []byte(doc), "", err), at(tc.section))
	}
}
