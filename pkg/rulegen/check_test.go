package rulegen

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/slo/slobench"
)

// rulefmtVerdict is what Prometheus' rule loader says of groups: the number
// of problems it finds in them once encoded as Marshal encodes them.
func rulefmtVerdict(t *testing.T, groups []rulefmt.RuleGroup) int {
	t.Helper()
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	require.NoError(t, enc.Encode(rulefmt.RuleGroups{Groups: groups}))
	_, errs := rulefmt.Parse(buf.Bytes(), false, model.UTF8Validation, slo.Parser, promslog.NewNopLogger())
	return len(errs)
}

// TestCheckGroupsAgreesWithRulefmt: Marshal's check (checkGroups) accepts
// exactly what rulefmt.Parse accepts, on valid rules and on each kind of
// problem rulefmt reports.
func TestCheckGroupsAgreesWithRulefmt(t *testing.T) {
	alert := func(mod func(r *rulefmt.Rule)) []rulefmt.RuleGroup {
		r := rulefmt.Rule{
			Alert: "SLOBurnRatePage",
			Expr:  `slo:burn_rate:1h{service="api"} > 14.4`,
			Labels: map[string]string{
				"severity": "page",
				"team":     `{{ "{{" }}platform{{ "}}" }}`,
			},
			Annotations: map[string]string{
				"summary":     "api is burning its budget {{ $value | humanize }}x too fast ({{ $labels.instance }})",
				"description": `{{ with query "up" }}{{ . | first | value | humanizePercentage }}{{ end }} {{ $externalURL }} {{ printf "%s" $externalLabels.cluster | toUpper }}`,
				"plain":       "no template at all: } { }}",
			},
		}
		if mod != nil {
			mod(&r)
		}
		return []rulefmt.RuleGroup{{Name: "slo:api:availability", Rules: []rulefmt.Rule{r}}}
	}
	record := func(mod func(r *rulefmt.Rule)) []rulefmt.RuleGroup {
		r := rulefmt.Rule{Record: "slo:sli_error:ratio_rate5m", Expr: `sum(rate(x[5m]))`, Labels: map[string]string{"slo": "availability"}}
		if mod != nil {
			mod(&r)
		}
		return []rulefmt.RuleGroup{{Name: "slo:api:availability", Rules: []rulefmt.Rule{r}}}
	}
	cases := map[string][]rulefmt.RuleGroup{
		"valid alert":               alert(nil),
		"valid record":              record(nil),
		"unknown template function": alert(func(r *rulefmt.Rule) { r.Annotations["summary"] = "{{ $value | nosuchfunc }}" }),
		"unclosed template action":  alert(func(r *rulefmt.Rule) { r.Annotations["summary"] = "{{ $value " }),
		"undefined variable":        alert(func(r *rulefmt.Rule) { r.Labels["team"] = "{{ $nope }}" }),
		"bad label template":        alert(func(r *rulefmt.Rule) { r.Labels["team"] = "{{ end }}" }),
		"define in a template":      alert(func(r *rulefmt.Rule) { r.Annotations["x"] = `{{ define "t" }}x{{ end }}{{ template "t" }}` }),
		"invalid label name":        alert(func(r *rulefmt.Rule) { r.Labels["__name__"] = "x" }),
		"invalid label value":       alert(func(r *rulefmt.Rule) { r.Labels["team"] = "\xff" }),
		"bad expression":            alert(func(r *rulefmt.Rule) { r.Expr = "sum(" }),
		"empty expression":          record(func(r *rulefmt.Rule) { r.Expr = "" }),
		"record and alert":          record(func(r *rulefmt.Rule) { r.Alert = "X" }),
		"neither record nor alert":  record(func(r *rulefmt.Rule) { r.Record = "" }),
		"record with annotations":   record(func(r *rulefmt.Rule) { r.Annotations = map[string]string{"a": "b"} }),
		"record with for":           record(func(r *rulefmt.Rule) { r.For = model.Duration(60e9) }),
		"record name with braces":   record(func(r *rulefmt.Rule) { r.Record = `x{a="b"}` }),
		"repeated group name":       append(record(nil), record(nil)...),
		"empty group name":          {{Rules: record(nil)[0].Rules}},
	}
	for name, groups := range cases {
		t.Run(name, func(t *testing.T) {
			want := rulefmtVerdict(t, groups)
			err := checkGroups(groups, false)
			if want == 0 {
				require.NoError(t, err)
			} else {
				require.Error(t, err, "rulefmt found %d problems", want)
			}
		})
	}
}

// TestMarshalLoadsInPrometheus: what Marshal writes for the examples loads
// with rulefmt.Parse into exactly the generated groups.
func TestMarshalLoadsInPrometheus(t *testing.T) {
	// The test binary runs from the repository root (init in rulegen_test.go).
	specs, err := slo.LoadFiles("examples/slos", "pkg/slo/sloth/testdata/sloth.yml")
	require.NoError(t, err)
	files, err := Generate(specs)
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		data, err := f.Marshal()
		require.NoError(t, err)
		got, errs := rulefmt.Parse(data, false, model.UTF8Validation, slo.Parser, promslog.NewNopLogger())
		require.Empty(t, errs)
		require.Equal(t, f.Groups, got.Groups, f.Name)
	}
}

// yamlEncoded is what Marshal wrote before encodeRuleGroups: yaml.v3 with
// indent 2.
func yamlEncoded(t *testing.T, groups []rulefmt.RuleGroup) string {
	t.Helper()
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	require.NoError(t, enc.Encode(rulefmt.RuleGroups{Groups: groups}))
	return buf.String()
}

// TestEncodeMatchesYAML: encodeRuleGroups writes what yaml.v3 writes, on the
// rules generated from the examples and the benchmark's specs, and on
// scalars chosen to take every branch (plain, quoted, literal blocks with
// and without a final line break, blank lines, reserved words, numbers,
// indicators, non-ASCII, tabs, odd keys).
func TestEncodeMatchesYAML(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, slobench.Write(filepath.Join(dir, "sloth"), filepath.Join(dir, "native"), 3))
	var groups []rulefmt.RuleGroup
	// The same services in both formats: loaded apart.
	for _, in := range [][]string{{"examples/slos", "pkg/slo/sloth/testdata/sloth.yml", filepath.Join(dir, "sloth")}, {filepath.Join(dir, "native")}} {
		specs, err := slo.LoadFiles(in...)
		require.NoError(t, err)
		files, err := Generate(specs)
		require.NoError(t, err)
		for _, f := range files {
			groups = append(groups, f.Groups...)
		}
	}
	scalars := []string{
		"", " ", "a", "abc def", "a:b", "a: b", "a:", "a #b", "a#b", "#a", "-a", "- a", "--- a", "...", "?a", ":a",
		"true", "True", "yes", "no", "on", "off", "y", "n", "null", "~", "0", "1", "2", "99.9", "1e3", "0x1F", "1_000", "1:20",
		"2026-12-03", "5m", "30d", ".5", "+1", ".inf", "<<", "'a'", `"a"`, "a'b", `a"b`, "{{ $value }}", "x {{ $value | humanize }}x",
		"a\nb", "a\nb\n", "a\n\nb", "a\nb\n\n", "\na", " a\nb", "a \nb", "a\n b", "a\tb", "a\nb\tc", "é", "a\u00e9\nb", "\x01",
		"a ", "a\n", "| a", "> a", "[a]", "{a}", "a,b", "a, b", "@a", "`a`", "%a", "&a", "*a", "!a", "a!b",
		"0123", "09", "1.", "1.2.3", "12", "3.14", "The period's budget: gone", "a 'b' c #d", "x:", "_a: b", "yes: no", "Off ",
		"sum(rate(x{job=\"a\",code=~\"5..\"}[5m]))\n/\n(sum(rate(x[5m])) > 0)", "https://runbooks.example.com/api",
	}
	// Plain label names (the fast path) in an order yaml.v3 sorts its own way.
	keys := []string{"a", "b", "a1", "a10", "a2", "A", "_x", "z_9", "a_b", "a0", "a01", "tier", "team", "Z", "_", "ab1c", "ab10c"}
	extra := rulefmt.RuleGroup{Name: "extra"}
	oddKeys := rulefmt.RuleGroup{Name: "odd keys"}
	for i, s := range scalars {
		l := map[string]string{}
		for j, k := range keys {
			l[k] = scalars[(i+j)%len(scalars)]
		}
		extra.Rules = append(extra.Rules,
			rulefmt.Rule{Record: "r", Expr: s, Labels: l},
			rulefmt.Rule{Alert: "A", Expr: "x", For: model.Duration(90e9), Annotations: map[string]string{"s": s, "d": s + "\n" + s}},
		)
		oddKeys.Rules = append(oddKeys.Rules, rulefmt.Rule{Alert: "A", Expr: "x", Labels: map[string]string{s: "v", "on": "x", "1": "y"}})
	}
	for name, gs := range map[string][]rulefmt.RuleGroup{
		"generated": groups,
		"scalars":   {extra},
		"odd keys":  {oddKeys},
		"no groups": nil,
		"no rules":  {{Name: "empty"}},
		"interval":  {{Name: "i", Interval: model.Duration(60e9), Rules: []rulefmt.Rule{{Record: "r", Expr: "x"}}}},
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			require.NoError(t, encodeRuleGroups(&buf, gs))
			require.Equal(t, yamlEncoded(t, gs), buf.String())
		})
	}
}

// TestTemplatesSharedFromFirstAction: a template that parsed is not parsed
// again when another text (of another SLO, in another file) is the same
// from its first action on; everything else still is, and errors still
// name the line in the whole text.
func TestTemplatesSharedFromFirstAction(t *testing.T) {
	group := func(summary string) []rulefmt.RuleGroup {
		return []rulefmt.RuleGroup{{Name: "g", Rules: []rulefmt.Rule{{Alert: "SLOBurnRatePage", Expr: "x", Annotations: map[string]string{"summary": summary}}}}}
	}
	for _, summary := range []string{
		"svc-a SLO a is burning its error budget {{ $value | humanize }}x too fast",
		"svc-b SLO b is burning its error budget {{ $value | humanize }}x too fast",
		"svc-c\n{{ $value | humanize }}x too fast",
		"svc-d {{ $value | humanize }}x too fast {{ $nope }}",
		"svc-e\n\n{{ $nope }} {{ $value | humanize }}x too fast",
		"svc-f {{ $value | nosuchfunc }}x too fast",
		"{{ $value | humanize }}x too fast {{",
	} {
		err := checkGroups(group(summary), true)
		if rulefmtVerdict(t, group(summary)) == 0 {
			require.NoError(t, err, summary)
		} else {
			require.Error(t, err, summary)
		}
	}
	err := checkGroups(group("svc-e\n\n{{ $nope }} {{ $value | humanize }}x too fast"), true)
	require.ErrorContains(t, err, "__alert_SLOBurnRatePage:3:")
}
