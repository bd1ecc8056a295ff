package rulegen_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/config"
	amcommoncfg "github.com/prometheus/alertmanager/config/common"
	amlabels "github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/template"
	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/rulegen"
	"github.com/rootuip/sre/pkg/slo"
	_ "github.com/rootuip/sre/pkg/slo/openslo"
	_ "github.com/rootuip/sre/pkg/slo/pyrra"
	_ "github.com/rootuip/sre/pkg/slo/sloth"
	"github.com/rootuip/sre/pkg/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func generate(t *testing.T, paths ...string) ([]*slo.Spec, []*rulegen.File) {
	t.Helper()
	specs, err := slo.LoadFiles(paths...)
	require.NoError(t, err)
	files, err := rulegen.Generate(specs)
	require.NoError(t, err)
	return specs, files
}

// Golden pairs: testdata/in-X.yml compiles to testdata/out-X.yml.
func TestGolden(t *testing.T) {
	ins, err := filepath.Glob(filepath.Join(goldenDir, "in-*.yml"))
	require.NoError(t, err)
	require.NotEmpty(t, ins)
	for _, in := range ins {
		name := strings.TrimPrefix(filepath.Base(in), "in-")
		t.Run(name, func(t *testing.T) {
			specs, files := generate(t, in)
			var got bytes.Buffer
			for _, f := range files {
				b, err := f.Marshal()
				require.NoError(t, err)
				got.Write(b)
			}
			inh, err := rulegen.MarshalInhibitRules(rulegen.InhibitRules(specs))
			require.NoError(t, err)
			got.Write(inh)
			golden := filepath.Join(goldenDir, "out-"+name)
			if *update {
				require.NoError(t, os.WriteFile(golden, got.Bytes(), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./pkg/rulegen -update")
			require.Equal(t, string(want), got.String())
		})
	}
}

// rules/ must be what `make generate` (srectl generate -i examples/slos -o
// rules --tests rules/tests) writes for examples/slos.
func TestRulesUpToDate(t *testing.T) {
	root := testutil.RepoRoot(t)
	specs, files := generate(t, "examples/slos") // relative: the Source comments name it
	want := map[string]string{}
	for _, f := range files {
		b, err := f.Marshal()
		require.NoError(t, err)
		want["rules/"+f.Name] = string(b)
	}
	for _, s := range specs {
		for i := range s.SLOs {
			suite, _ := rulegen.BuildSuite("../"+s.Service+".yml", s, &s.SLOs[i])
			if suite == nil {
				continue
			}
			b, err := suite.Marshal()
			require.NoError(t, err)
			want["rules/tests/"+rulegen.SuiteFileName(s.Service, s.SLOs[i].Name)] = string(b)
		}
	}
	have := map[string]string{}
	for _, sub := range []string{"rules", "rules/tests"} {
		paths, err := filepath.Glob(filepath.Join(root, sub, "*.yml"))
		require.NoError(t, err)
		for _, p := range paths {
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			have[sub+"/"+filepath.Base(p)] = string(b)
		}
	}
	for name, w := range want {
		require.Equal(t, w, have[name], "%s is stale: run make generate", name)
	}
	for name := range have {
		require.Contains(t, want, name, "%s is no longer generated: run make generate", name)
	}
}

func init() {
	// go run needs the module root as working directory.
	if wd, err := os.Getwd(); err == nil {
		_ = os.Chdir(filepath.Join(wd, "..", ".."))
		// Relative to the module root, so the "# Source:" lines of the
		// golden files do not depend on where the repository is checked out.
		goldenDir = filepath.Join("pkg", "rulegen", "testdata")
	}
}

var goldenDir string

// Every generated file passes the pinned promtool, and the generated suites
// of the golden inputs pass `promtool test rules`.
func TestPromtool(t *testing.T) {
	promtool := testutil.Tool(t, "promtool")
	ins, _ := filepath.Glob(filepath.Join(goldenDir, "in-*.yml"))
	// The importers' examples compile too.
	ins = append(ins, filepath.Join(goldenDir, "..", "..", "slo", "sloth", "testdata", "sloth.yml"),
		filepath.Join(goldenDir, "..", "..", "slo", "openslo", "testdata", "openslo.yml"),
		filepath.Join(goldenDir, "..", "..", "slo", "openslo", "testdata", "rate-queries.yml"),
		filepath.Join(goldenDir, "..", "..", "slo", "pyrra", "testdata", "pyrra.yml"),
		filepath.Join(goldenDir, "..", "..", "slo", "pyrra", "testdata", "list.yml"))
	dir := t.TempDir()
	var suites []string
	for _, in := range ins {
		specs, files := generate(t, in)
		for _, f := range files {
			b, err := f.Marshal()
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, f.Name), b, 0o644))
		}
		for _, s := range specs {
			for i := range s.SLOs {
				suite, _ := rulegen.BuildSuite("../"+s.Service+".yml", s, &s.SLOs[i])
				if suite == nil {
					continue
				}
				b, err := suite.Marshal()
				require.NoError(t, err)
				p := filepath.Join(dir, "tests", rulegen.SuiteFileName(s.Service, s.SLOs[i].Name))
				require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
				require.NoError(t, os.WriteFile(p, b, 0o644))
				suites = append(suites, p)
			}
		}
	}
	rules, _ := filepath.Glob(filepath.Join(dir, "*.yml"))
	out, err := exec.Command(promtool, append([]string{"check", "rules"}, rules...)...).CombinedOutput()
	require.NoError(t, err, string(out))
	require.NotEmpty(t, suites)
	out, err = exec.Command(promtool, append([]string{"test", "rules"}, suites...)...).CombinedOutput()
	require.NoError(t, err, string(out))
}

// The generated suites have teeth: rules whose page factor is below 1x
// (what validation forbids) fail the budget-neutral test.
func TestSuiteCatchesBrokenRules(t *testing.T) {
	promtool := testutil.Tool(t, "promtool")
	specs, files := generate(t, "examples/slos/api.yml")
	dir := t.TempDir()
	b, err := files[0].Marshal()
	require.NoError(t, err)
	broken := strings.ReplaceAll(string(b), "> 14.4", "> 0.5")
	require.NotEqual(t, string(b), broken)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "api.yml"), []byte(broken), 0o644))
	suite, err := rulegen.BuildSuite("api.yml", specs[0], &specs[0].SLOs[0])
	require.NoError(t, err)
	sb, err := suite.Marshal()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "suite.yml"), sb, 0o644))
	out, err := exec.Command(promtool, "test", "rules", filepath.Join(dir, "suite.yml")).CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "FAILED")
	require.Contains(t, string(out), `burn_tier="page_fast"`)
}

// The uneven-traffic scenario has teeth: long windows averaged from the 5m
// ratios, as Sloth computes its period ratio, fail it (about 5% instead of
// the 0.91% of events that failed).
func TestSuiteCatchesAveragedRatios(t *testing.T) {
	promtool := testutil.Tool(t, "promtool")
	specs, files := generate(t, "examples/slos/api.yml")
	o := &specs[0].SLOs[0]
	ident := fmt.Sprintf(`{service="%s",slo="%s"}`, specs[0].Service, o.Name)
	replaced := 0
	for gi := range files[0].Groups {
		g := &files[0].Groups[gi]
		if g.Name != rulegen.GroupName(specs[0].Service, o.Name) {
			continue
		}
		for ri := range g.Rules {
			r := &g.Rules[ri]
			rng := ""
			switch {
			case r.Record == rulegen.ErrorRatioPeriod:
				rng = o.PeriodName()
			case strings.HasPrefix(r.Record, "slo:sli_error:ratio_rate") && r.Record != rulegen.ErrorRatioRecord(slo.BaseWindow):
				rng = strings.TrimPrefix(r.Record, "slo:sli_error:ratio_rate")
			default:
				continue
			}
			r.Expr = fmt.Sprintf("avg_over_time(%s%s[%s])", rulegen.ErrorRatioRecord(slo.BaseWindow), ident, rng)
			replaced++
		}
	}
	require.Equal(t, len(rulegen.Windows(o)), replaced, "every window but 5m, and the period")
	b, err := files[0].Marshal()
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "api.yml"), b, 0o644))
	suite, err := rulegen.BuildSuite("api.yml", specs[0], o)
	require.NoError(t, err)
	var uneven []rulegen.TestGroup
	for _, g := range suite.Tests {
		if strings.HasPrefix(g.Name, "uneven traffic") {
			uneven = append(uneven, g)
		}
	}
	require.Len(t, uneven, 1)
	suite.Tests = uneven
	sb, err := suite.Marshal()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "suite.yml"), sb, 0o644))
	out, err := exec.Command(promtool, "test", "rules", filepath.Join(dir, "suite.yml")).CombinedOutput()
	require.Error(t, err, string(out))
	require.Contains(t, string(out), "FAILED")
	// The averaged 1d ratio: 0 for the busy hour, 0.1 for the quiet one.
	m := regexp.MustCompile(`ratio_rate1d\{service=\\"api\\",slo=\\"availability\\"\}\), 1e-09\)", time: 2h19m,\s+exp: \{service="api", slo="availability"\} 9\.090909000000001E-03\s+got: \{service="api", slo="availability"\} (\S+)`).FindStringSubmatch(string(out))
	require.NotNil(t, m, string(out))
	var got float64
	_, err = fmt.Sscan(m[1], &got)
	require.NoError(t, err)
	t.Logf("averaged 1d ratio: %v", got)
	require.InDelta(t, 0.05, got, 0.005, "the mean of the 5m ratios")

	// The same suite passes on the rules as generated.
	_, files = generate(t, "examples/slos/api.yml")
	b, err = files[0].Marshal()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "api.yml"), b, 0o644))
	out, err = exec.Command(promtool, "test", "rules", filepath.Join(dir, "suite.yml")).CombinedOutput()
	require.NoError(t, err, string(out))
}

// The inhibit rules load in Alertmanager's own config parser.
func TestInhibitRulesLoad(t *testing.T) {
	specs, _ := generate(t, "examples/slos")
	b, err := rulegen.MarshalInhibitRules(rulegen.InhibitRules(specs))
	require.NoError(t, err)
	cfg, err := config.Load("route:\n  receiver: default\nreceivers:\n  - name: default\n" + string(b))
	require.NoError(t, err)
	require.Len(t, cfg.InhibitRules, 1)
	r := cfg.InhibitRules[0]
	page := map[string]string{"severity": "page", "burn_tier": "page_fast", "service": "checkout", "slo": "orders", "customer": "acme"}
	ticket := map[string]string{"severity": "ticket", "burn_tier": "ticket_slow", "service": "checkout", "slo": "orders", "customer": "acme"}
	require.True(t, amlabels.Matchers(r.SourceMatchers).Matches(labelSet(page)))
	require.True(t, amlabels.Matchers(r.TargetMatchers).Matches(labelSet(ticket)))
	require.False(t, amlabels.Matchers(r.TargetMatchers).Matches(labelSet(page)), "a page never inhibits a page")
	require.Contains(t, r.Equal, "customer", "grouped SLOs inhibit per group")
}

func TestLeRegexp(t *testing.T) {
	for _, c := range []struct {
		v     float64
		match []string
		not   []string
	}{
		{0.2, []string{"0.2", "0.20", "0.200"}, []string{"0.25", "2", "0.02"}},
		{1, []string{"1", "1.0", "1.00"}, []string{"10", "0.1", "1.5"}},
		{30, []string{"30", "30.0"}, []string{"3", "300"}},
		{0.00001, []string{"0.00001", "1e-05"}, []string{"0.0001"}},
	} {
		m, err := labels.NewMatcher(labels.MatchRegexp, "le", rulegen.LeRegexp(c.v))
		require.NoError(t, err)
		for _, s := range c.match {
			require.True(t, m.Matches(s), "%v should match %q", c.v, s)
		}
		for _, s := range c.not {
			require.False(t, m.Matches(s), "%v should not match %q", c.v, s)
		}
	}
}

func labelSet(m map[string]string) model.LabelSet {
	ls := model.LabelSet{}
	for k, v := range m {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls
}

// The period label, the period's range and the alert texts keep the spec's
// own spelling of the period (7d stays 7d, not Prometheus' 1w).
func TestPeriodSpelling(t *testing.T) {
	for _, period := range []string{"7d", "1w", "24h", "1d", "28d", "4w", "30d", "168h", "14d", "90d"} {
		t.Run(period, func(t *testing.T) {
			spec := "apiVersion: sre.rootuip.io/v1\nkind: ServiceLevelObjectives\nservice: api\nslos:\n  - name: up\n    objective: 99\n    period: " + period + "\n    sli:\n      bool:\n        selector: up{job=\"api\"}\n"
			specs, err := slo.Parse([]byte(spec), "api.yml")
			require.NoError(t, err)
			require.Equal(t, period, specs[0].SLOs[0].PeriodName())
			g, err := rulegen.GenerateSLO(specs[0], &specs[0].SLOs[0])
			require.NoError(t, err)
			var labelled int
			for _, r := range g.Rules {
				if v, ok := r.Labels[rulegen.LabelPeriod]; ok {
					require.Equal(t, period, v, r.Record)
					labelled++
				}
				if r.Record == rulegen.ErrorRatioPeriod {
					require.Contains(t, r.Expr, "["+period+"])")
				}
				if r.Alert != "" {
					require.Contains(t, r.Annotations["description"], "objective over "+period)
				}
			}
			require.Equal(t, 3, labelled, "ratio_period, error_budget_remaining and info")
		})
	}
	// An SLO built in Go has no spelling: Prometheus' form.
	o := &slo.SLO{Period: model.Duration(7 * 24 * time.Hour)}
	require.Equal(t, "1w", o.PeriodName())
	require.NoError(t, o.SetPeriod("7d"))
	require.Equal(t, "7d", o.PeriodName())
	require.Error(t, o.SetPeriod("7 days"))
}

// Which SLIs get a generated suite, and why the others do not.
func TestSuiteInputs(t *testing.T) {
	for _, c := range []struct {
		sli string
		why string
	}{
		{"events: {errorSelector: 'x_total{code=~\"5..\"}', totalSelector: 'x_total'}", ""},
		{"latency: {histogram: 'h_seconds{job=\"a\"}', threshold: 200ms}", ""},
		{"latency: {histogram: 'h_seconds{job=\"a\"}', threshold: 0.2, native: true}", ""},
		{"bool: {selector: 'up{job=\"a\"}'}", ""},
		{"raw: {errorRatioQuery: 'sum(rate(e_total[{{.window}}])) / sum(rate(t_total[{{.window}}]))'}", ""},
		{"raw: {errorRatioQuery: '(sum(increase(e_total[{{.window}}])) / sum(increase(t_total[{{.window}}])))'}", ""},
		{"raw: {errorRatioQuery: '1 - avg(avg_over_time(up[{{.window}}]))'}",
			"raw SLI inputs are synthesized only for a ratio of two counter rates (bad / total), each reading one series selector"},
		{"raw: {errorRatioQuery: 'avg_over_time(e[{{.window}}]) / avg_over_time(t[{{.window}}])'}",
			"raw SLI inputs are synthesized only for a ratio of two counter rates (bad / total), each reading one series selector"},
		{"raw: {errorRatioQuery: 'sum(rate(e[{{.window}}])) / (sum(rate(t[{{.window}}])) + sum(rate(u[{{.window}}])))'}",
			"raw SLI inputs are synthesized only for a ratio of two counter rates (bad / total), each reading one series selector"},
		{"events: {errorSelector: 'x_total{code=\"5\",code=\"6\"}', totalSelector: 'x_total'}", "no series satisfies both selectors"},
	} {
		t.Run(c.sli, func(t *testing.T) {
			spec := "apiVersion: sre.rootuip.io/v1\nkind: ServiceLevelObjectives\nservice: a\nslos:\n  - name: s\n    objective: 99.9\n    sli:\n      " + c.sli + "\n"
			specs, err := slo.Parse([]byte(spec), "a.yml")
			require.NoError(t, err)
			suite, err := rulegen.BuildSuite("a.yml", specs[0], &specs[0].SLOs[0])
			if c.why == "" {
				require.NoError(t, err)
				require.NotNil(t, suite)
				return
			}
			require.ErrorIs(t, err, rulegen.ErrNoFixture)
			require.EqualError(t, err, "no test inputs can be synthesized: "+c.why)
			require.Nil(t, suite)
		})
	}
}

// The rule files load as they are in Thanos Ruler and Mimir (mimirtool
// decodes them with unknown fields rejected and names the namespace after
// the file): only the rule-file fields every ruler knows, and only PromQL
// functions and template functions they all implement; no @ or offset.
func TestPortableOutput(t *testing.T) {
	ins, err := filepath.Glob(filepath.Join(goldenDir, "in-*.yml"))
	require.NoError(t, err)
	portable := map[string]bool{
		// Generated expressions.
		"rate": true, "sum_over_time": true, "avg_over_time": true, "clamp": true, "clamp_min": true,
		"clamp_max": true, "vector": true, "histogram_count": true, "histogram_fraction": true,
	}
	templateRE := regexp.MustCompile(`{{ "(?:{{|}})" }}|{{.*?}}`)
	for _, paths := range append([][]string{{"examples/slos"}}, ins) {
		_, files := generate(t, paths...)
		for _, f := range files {
			b, err := f.Marshal()
			require.NoError(t, err)
			var doc map[string][]map[string]any
			require.NoError(t, yaml.Unmarshal(b, &doc))
			require.Equal(t, []string{"groups"}, slices.Collect(maps.Keys(doc)), f.Name)
			for _, g := range doc["groups"] {
				for k := range g {
					require.Contains(t, []string{"name", "rules"}, k, "group field of %s", f.Name)
				}
			}
			for _, g := range f.Groups {
				for _, r := range g.Rules {
					require.Zero(t, r.KeepFiringFor, r.Alert)
					expr, err := slo.Parser.ParseExpr(r.Expr)
					require.NoError(t, err)
					parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
						switch x := n.(type) {
						case *parser.Call:
							require.True(t, portable[x.Func.Name], "%s: function %s", f.Name, x.Func.Name)
						case *parser.VectorSelector:
							require.Nil(t, x.Timestamp, "%s: @", f.Name)
							require.Zero(t, x.StartOrEnd, "%s: @", f.Name)
							require.Zero(t, x.OriginalOffset, "%s: offset", f.Name)
						}
						return nil
					})
					for _, text := range r.Annotations {
						for _, tmpl := range templateRE.FindAllString(text, -1) {
							require.Regexp(t, `^{{ (\$value \| humanize(Percentage)?|\$labels\.[a-z_]+|"{{"|"}}"|if lt \$value [0-9.]+|printf "%\.[0-9][fg]" \$value|else|end) }}$`, tmpl, f.Name)
						}
					}
				}
			}
		}
	}
}

// The native-histogram suite catches the NaN that an unguarded
// histogram_fraction leaves in the period's sums once traffic stops.
func TestNativeSuiteCatchesNaN(t *testing.T) {
	promtool := testutil.Tool(t, "promtool")
	specs, files := generate(t, "examples/slos/ingest.yml")
	var o *slo.SLO
	for i := range specs[0].SLOs {
		if specs[0].SLOs[i].Name == "batch-latency" {
			o = &specs[0].SLOs[i]
		}
	}
	require.NotNil(t, o)
	require.True(t, o.SLI.Latency.Native)
	h := `sum (rate(ingest_batch_commit_seconds{job="ingest"}[5m]))`
	broken := 0
	for gi := range files[0].Groups {
		for ri, r := range files[0].Groups[gi].Rules {
			if r.Record == rulegen.ErrorEventsRate5m && r.Labels[rulegen.LabelSLO] == "batch-latency" {
				require.Contains(t, r.Expr, ">= 0", "the generated rule drops NaN")
				files[0].Groups[gi].Rules[ri].Expr = fmt.Sprintf("histogram_count(%s) * (1 - histogram_fraction(0, 30, %s))", h, h)
				broken++
			}
		}
	}
	require.Equal(t, 1, broken)
	dir := t.TempDir()
	b, err := files[0].Marshal()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ingest.yml"), b, 0o644))
	suite, err := rulegen.BuildSuite("ingest.yml", specs[0], o)
	require.NoError(t, err)
	sb, err := suite.Marshal()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "suite.yml"), sb, 0o644))
	out, err := exec.Command(promtool, "test", "rules", filepath.Join(dir, "suite.yml")).CombinedOutput()
	require.Error(t, err, string(out))
	require.Contains(t, string(out), `count(abs(slo:error_budget_remaining:ratio{service=\"ingest\",slo=\"batch-latency\"}) < +Inf)", time: 2h50m,
        exp: {} 1E+00
        got: nil`)
}

// PrometheusRule names fold case and turn '_' and '.' into '-': services
// my_service and My.Service would be the same object, one replacing the
// other.
func TestPrometheusRuleNameCollision(t *testing.T) {
	doc := "apiVersion: sre.rootuip.io/v1\nkind: ServiceLevelObjectives\nservice: %s\nslos:\n  - name: a\n    objective: 99.9\n    sli: {bool: {selector: up}}\n"
	specs, err := slo.Parse([]byte(fmt.Sprintf(doc, "my_service")+"---\n"+fmt.Sprintf(doc, "My.Service")+"---\n"+fmt.Sprintf(doc, "other")), "s.yml")
	require.NoError(t, err)
	files, err := rulegen.Generate(specs)
	require.NoError(t, err)
	require.Equal(t, "my-service-slos", rulegen.PrometheusRuleName("My.Service"))
	require.EqualError(t, rulegen.CheckPrometheusRuleNames(files),
		`services "My.Service" and "my_service" would both be the PrometheusRule "my-service-slos" (Kubernetes names are lower case, with '-' for '_' and '.'): rename one`)
	require.NoError(t, rulegen.CheckPrometheusRuleNames(files[1:]))
}

// A spec file name with a newline (or another control character) is
// quoted in the "# Source:" comment: written as it is, it ended the
// comment and the rest of the name broke the file.
func TestSourceNameQuoted(t *testing.T) {
	spec := "apiVersion: sre.rootuip.io/v1\nkind: ServiceLevelObjectives\nservice: api\nslos:\n  - name: a\n    objective: 99.9\n    sli: {bool: {selector: up}}\n"
	for name, want := range map[string]string{
		"slos/api.yml":        "# Source: slos/api.yml\n",
		"ev\nil.yml":          "# Source: \"ev\\nil.yml\"\n",
		"a\rb\x00.yml":        "# Source: \"a\\rb\\x00.yml\"\n",
		"x\u2028y.yml":        "# Source: \"x\\u2028y.yml\"\n",
		"caf\xe9.yml":         "# Source: \"caf\\xe9.yml\"\n",
		"café \"quoted\".yml": "# Source: café \"quoted\".yml\n",
	} {
		specs, err := slo.Parse([]byte(spec), name)
		require.NoError(t, err)
		files, err := rulegen.Generate(specs)
		require.NoError(t, err)
		data, err := files[0].Marshal()
		require.NoError(t, err)
		require.Contains(t, string(data), rulegen.Header+want, "%q", name)
		var v map[string]any
		require.NoError(t, yaml.Unmarshal(data, &v), "%q", name)
	}
}

// A summary or description set in the spec's annotations (the SLO's or a
// tier's) is kept; the generated ones fill in the rest.
func TestAnnotationsKeepSpecSummary(t *testing.T) {
	specs, err := slo.Parse([]byte(`apiVersion: sre.rootuip.io/v1
kind: ServiceLevelObjectives
service: api
slos:
  - name: availability
    objective: 99.9
    sli: {bool: {selector: up}}
    alerting:
      annotations: {summary: 'High error rate on {{ $labels.service }}'}
      ticket: {annotations: {description: 'Look at it tomorrow'}}
`), "api.yml")
	require.NoError(t, err)
	files, err := rulegen.Generate(specs)
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, r := range files[0].Groups[0].Rules {
		if r.Alert == "" {
			continue
		}
		seen[r.Alert] = true
		require.Equal(t, "High error rate on {{ $labels.service }}", r.Annotations["summary"], r.Alert)
		if r.Alert == rulegen.AlertTicket {
			require.Equal(t, "Look at it tomorrow", r.Annotations["description"])
		} else {
			require.Contains(t, r.Annotations["description"], "error budget", r.Alert)
		}
	}
	require.True(t, seen[rulegen.AlertPage] && seen[rulegen.AlertTicket] && seen[rulegen.AlertBudget], "%v", seen)
}

// A burn-rate alert's summary gives its factor as a plain number, as
// Prometheus expands it: "2110x too fast", not humanize's "2.11kx".
func TestBurnSummaryFactorPlain(t *testing.T) {
	_, files := generate(t, "examples/slos/api.yml")
	var summary string
	for _, g := range files[0].Groups {
		for _, r := range g.Rules {
			if r.Alert == rulegen.AlertPage && summary == "" {
				summary = r.Annotations["summary"]
			}
		}
	}
	require.NotEmpty(t, summary)
	for _, tc := range []struct {
		value float64
		want  string
	}{
		{14.4, "14.4x too fast"},
		{6.0321, "6.03x too fast"},
		{1, "1x too fast"},
		{99.4, "99.4x too fast"},
		{999.6, "1000x too fast"},
		{2110.4, "2110x too fast"},
		{10000, "10000x too fast"},
	} {
		smpl := promql.Sample{F: tc.value}
		got, err := template.NewTemplateExpander(context.Background(),
			"{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"+summary,
			"__alert_"+rulegen.AlertPage, template.AlertTemplateData(map[string]string{}, nil, "", smpl), 0, nil, nil, nil).Expand()
		require.NoError(t, err)
		require.True(t, strings.HasSuffix(got, " is burning its error budget "+tc.want), "value %v: %q", tc.value, got)
	}
}

// The inhibit rules, loaded in a real Alertmanager, make a page silence
// the tickets and the budget warning of its own SLO, whatever severity
// label the page carries (Sloth's page_alert severity, or alerting.labels'
// on both tiers, even page), and nothing of another SLO nor another page.
// Tickets of severity page silence nothing: neither the pages of their SLO
// when these carry another severity (critical, or ticket with the two
// swapped) nor its budget warning when no page fires.
func TestInhibitRulesInAlertmanager(t *testing.T) {
	specs, files := generate(t, "examples/slos/api.yml", filepath.Join(goldenDir, "in-sloth-alerting.yml"), filepath.Join(goldenDir, "in-sloth-page-severity.yml"),
		filepath.Join(goldenDir, "in-sloth-ticket-page.yml"))
	// One more rule, of the test's own: an InhibitorLive alert silences an
	// InhibitorProbe, which shows when Alertmanager's inhibitor has
	// subscribed to the alerts (below).
	probe := rulegen.InhibitRule{SourceMatchers: []string{`alertname="InhibitorLive"`}, TargetMatchers: []string{`alertname="InhibitorProbe"`}}
	inh, err := rulegen.MarshalInhibitRules(append(rulegen.InhibitRules(specs), probe))
	require.NoError(t, err)
	am := testutil.StartAlertmanager(t, testutil.AlertmanagerOptions{Config: "route:\n  receiver: default\nreceivers:\n  - name: default\n" + string(inh)})
	// postAlerts posts alerts as one request; alertStatus lists whether
	// each alert Alertmanager holds is inhibited, by alertname and
	// service/slo/burn_tier.
	postAlerts := func(alerts []map[string]any) {
		body, err := json.Marshal(alerts)
		require.NoError(t, err)
		resp, err := http.Post(am.URL+"/api/v2/alerts", "application/json", bytes.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	alertStatus := func() (byName, bySLO map[string]bool) {
		byName, bySLO = map[string]bool{}, map[string]bool{}
		r, err := http.Get(am.URL + "/api/v2/alerts")
		require.NoError(t, err)
		var list []struct {
			Labels map[string]string
			Status struct{ InhibitedBy []string }
		}
		require.NoError(t, json.NewDecoder(r.Body).Decode(&list))
		r.Body.Close()
		for _, a := range list {
			inhibited := len(a.Status.InhibitedBy) > 0
			byName[a.Labels["alertname"]] = inhibited
			if a.Labels["slo"] != "" {
				bySLO[a.Labels["service"]+"/"+a.Labels["slo"]+"/"+a.Labels["burn_tier"]] = inhibited
			}
		}
		return byName, bySLO
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	// The inhibitor reads the alerts of a request in order only once it
	// has subscribed: alerts stored before that reach it in the store's
	// (map) order. Wait until it silences the probe, so that the
	// generated alerts below reach it in the order they are posted.
	probeStart := time.Now().UTC().Add(-time.Minute)
	postAlerts([]map[string]any{
		{"labels": map[string]string{"alertname": "InhibitorLive"}, "startsAt": probeStart, "endsAt": probeStart.Add(time.Hour)},
		{"labels": map[string]string{"alertname": "InhibitorProbe"}, "startsAt": probeStart, "endsAt": probeStart.Add(time.Hour)},
	})
	for {
		if byName, _ := alertStatus(); byName["InhibitorProbe"] {
			break
		}
		<-tick.C
	}

	// The labels of each generated alert, by service/slo/burn_tier.
	generated := map[string]map[string]string{}
	for _, f := range files {
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				l := maps.Clone(r.Labels)
				l["alertname"] = r.Alert
				generated[l["service"]+"/"+l["slo"]+"/"+l["burn_tier"]] = l
			}
		}
	}
	// Firing: each SLO's page, ticket and budget warning; only the ticket
	// and budget warning of payments/split, billing/all-page and
	// billing/no-page (nothing pages there).
	inhibited := map[string]bool{
		"api/availability/page_fast": false, "api/availability/ticket_slow": true, "api/availability/budget": true,
		"myservice/requests-availability/page_slow": false, "myservice/requests-availability/ticket_fast": true, "myservice/requests-availability/budget": true,
		"payments/shared/page_fast": false, "payments/shared/page_slow": false, "payments/shared/ticket_slow": true, "payments/shared/budget": true,
		"payments/split/ticket_fast": false, "payments/split/budget": false,
		"payments/both-page/page_fast": false, "payments/both-page/ticket_fast": true,
		"billing/ticket-page/page_fast": false, "billing/ticket-page/ticket_slow": true, "billing/ticket-page/budget": true,
		"billing/swapped/page_slow": false, "billing/swapped/ticket_fast": true, "billing/swapped/budget": true,
		"billing/all-page/ticket_fast": false, "billing/all-page/ticket_slow": false, "billing/all-page/budget": false,
		"billing/no-page/ticket_fast": false, "billing/no-page/ticket_slow": false, "billing/no-page/budget": false,
	}
	// Posted in one request, api/availability's page last: Alertmanager
	// hands the alerts to its inhibitor in order, so once that page (whose
	// severity="page" the rules always matched) silences its ticket, every
	// other page is known to the inhibitor too.
	const last = "api/availability/page_fast"
	keys := slices.Sorted(maps.Keys(inhibited))
	keys = append(slices.DeleteFunc(keys, func(k string) bool { return k == last }), last)
	start := time.Now().UTC().Add(-time.Minute)
	var alerts []map[string]any
	for _, key := range keys {
		l, ok := generated[key]
		require.True(t, ok, "no generated alert %s", key)
		alerts = append(alerts, map[string]any{"labels": l, "startsAt": start, "endsAt": start.Add(time.Hour)})
	}
	require.Equal(t, "critical", generated["payments/shared/ticket_slow"]["severity"], "both tiers of payments/shared are critical")
	require.Equal(t, "pageteam", generated["myservice/requests-availability/page_slow"]["severity"])
	require.Equal(t, "page", generated["payments/both-page/ticket_fast"]["severity"], "both tiers of payments/both-page are page")
	for _, key := range []string{"billing/ticket-page/ticket_slow", "billing/swapped/ticket_fast", "billing/all-page/ticket_fast", "billing/no-page/ticket_slow"} {
		require.Equal(t, "page", generated[key]["severity"], "the tickets of %s are page", key)
	}
	require.Equal(t, "critical", generated["billing/ticket-page/page_fast"]["severity"])
	require.Equal(t, "ticket", generated["billing/swapped/page_slow"]["severity"])
	postAlerts(alerts)

	// Alertmanager learns of the sources asynchronously: wait until the
	// last page silences its ticket, then compare all of them.
	for {
		_, got := alertStatus()
		if got["api/availability/ticket_slow"] {
			require.Equal(t, inhibited, got)
			return
		}
		<-tick.C
	}
}

// The inhibit rules for every combination of the severities of an SLO's
// pages, tickets and budget warning (Sloth's page_alert and ticket_alert
// severities, a native spec's budget.severity), beside SLOs of the usual
// severities, one with a page tier named as another SLO's tickets, and one
// without a page tier: inhibited as Alertmanager's inhibitor decides
// (inhibits), each alert of an SLO with pages other than a page is
// silenced by each of that SLO's pages and by nothing else, a page never;
// with no page firing nothing is silenced.
func TestInhibitRulesSeverities(t *testing.T) {
	const sloth = "version: prometheus/v1\nservice: svc\nslos:\n  - name: a\n    objective: 99.9\n" +
		"    sli: {raw: {error_ratio_query: 'sum(rate(errors[{{.window}}])) / sum(rate(requests[{{.window}}]))'}}\n"
	const native = "apiVersion: sre.rootuip.io/v1\nkind: ServiceLevelObjectives\nservice: web\nslos:\n" +
		"  - name: standard\n    objective: 99.9\n    sli: {events: {errorSelector: 'http_requests_total{code=~\"5..\"}', totalSelector: http_requests_total}}\n"
	for _, tc := range []struct {
		name     string
		alerting string // the alerting block of svc/a (Sloth)
		native   string // more SLOs of web (native)
	}{
		{"page ticket", "{page_alert: {labels: {severity: page}}, ticket_alert: {labels: {severity: ticket}}}", ""},
		{"page critical", "{ticket_alert: {labels: {severity: critical}}}", ""},
		{"critical ticket", "{page_alert: {labels: {severity: critical}}}", ""},
		{"critical critical", "{labels: {severity: critical}}", ""},
		{"page page", "{labels: {severity: page}}", ""},
		{"critical page", "{page_alert: {labels: {severity: critical}}, ticket_alert: {labels: {severity: page}}}", ""},
		{"ticket page", "{page_alert: {labels: {severity: ticket}}, ticket_alert: {labels: {severity: page}}}", ""},
		{"no page tier, ticket page", "{page_alert: {disable: true}, ticket_alert: {labels: {severity: page}}}", ""},
		{"page page, ticket tier disabled", "{labels: {severity: page}, ticket_alert: {disable: true}}", ""},
		{"budget page", "{page_alert: {labels: {severity: page}}}",
			"  - name: budget-page\n    objective: 99\n    sli: {events: {errorSelector: 'x_total{code=\"5\"}', totalSelector: x_total}}\n" +
				"    alerting: {budget: {severity: page}}\n"},
		{"budget page, no page tier", "{ticket_alert: {labels: {severity: page}}}",
			"  - name: budget-page\n    objective: 99\n    sli: {events: {errorSelector: 'x_total{code=\"5\"}', totalSelector: x_total}}\n" +
				"    alerting: {page: {disabled: true}, budget: {severity: page}}\n"},
		{"page windows named as tickets of page", "{ticket_alert: {labels: {severity: page}}}",
			"  - name: renamed\n    objective: 99\n    sli: {events: {errorSelector: 'x_total{code=\"5\"}', totalSelector: x_total}}\n" +
				"    alerting:\n      page:\n        windows: [{name: ticket_fast, longWindow: 1h, shortWindow: 5m, burnRate: 14.4}]\n" +
				"      ticket:\n        windows: [{name: page_fast, longWindow: 1d, shortWindow: 2h, burnRate: 3}]\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "sloth.yml"), []byte(sloth+"    alerting: "+tc.alerting+"\n"), 0o644))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "web.yml"), []byte(native+tc.native), 0o644))
			specs, files := generate(t, filepath.Join(dir, "sloth.yml"), filepath.Join(dir, "web.yml"), "examples/slos/api.yml")
			b, err := rulegen.MarshalInhibitRules(rulegen.InhibitRules(specs))
			require.NoError(t, err)
			cfg, err := config.Load("route:\n  receiver: default\nreceivers:\n  - name: default\n" + string(b))
			require.NoError(t, err)

			// Every alert of every SLO, and whether it is a page.
			type alert struct {
				key    string // service/slo/burn_tier
				labels model.LabelSet
				page   bool
			}
			var alerts []alert
			hasPages := map[string]bool{} // service/slo
			for _, s := range specs {
				for i := range s.SLOs {
					o := &s.SLOs[i]
					pages := map[string]bool{}
					for _, w := range o.Windows() {
						pages[w.Name] = w.Severity == slo.SeverityPage
						hasPages[s.Service+"/"+o.Name] = hasPages[s.Service+"/"+o.Name] || pages[w.Name]
					}
					for _, f := range files {
						for _, g := range f.Groups {
							for _, r := range g.Rules {
								if r.Alert == "" || r.Labels["service"] != s.Service || r.Labels["slo"] != o.Name {
									continue
								}
								l := maps.Clone(r.Labels)
								l["alertname"] = r.Alert
								alerts = append(alerts, alert{s.Service + "/" + o.Name + "/" + l["burn_tier"], labelSet(l), pages[l["burn_tier"]]})
							}
						}
					}
				}
			}
			require.Greater(t, len(alerts), 20)
			sev := map[string]string{}
			for _, a := range alerts {
				sev[a.key] = string(a.labels["severity"])
			}
			if tc.name == "critical page" {
				require.Equal(t, "critical", sev["svc/a/page_fast"])
				require.Equal(t, "page", sev["svc/a/ticket_fast"])
			}

			// Everything fires.
			var firing []model.LabelSet
			for _, a := range alerts {
				firing = append(firing, a.labels)
			}
			for _, target := range alerts {
				owner := target.key[:strings.LastIndexByte(target.key, '/')]
				for _, source := range alerts {
					want := !target.page && source.page && strings.HasPrefix(source.key, owner+"/")
					require.Equal(t, want, inhibits(cfg.InhibitRules, source.labels, target.labels),
						"%s (severity %s) silencing %s (severity %s)", source.key, sev[source.key], target.key, sev[target.key])
				}
				require.Equal(t, !target.page && hasPages[owner], inhibited(cfg.InhibitRules, firing, target.labels),
					"%s (severity %s) with every alert firing", target.key, sev[target.key])
			}
			// Only tickets and budget warnings fire.
			var quiet []model.LabelSet
			for _, a := range alerts {
				if !a.page {
					quiet = append(quiet, a.labels)
				}
			}
			for _, a := range alerts {
				if !a.page {
					require.False(t, inhibited(cfg.InhibitRules, quiet, a.labels), "%s (severity %s) with no page firing", a.key, sev[a.key])
				}
			}
		})
	}
}

// inhibits is whether Alertmanager's inhibitor lets the firing alert
// source silence target through one of rules: target on a rule's target
// side, source on its source side with the rule's equal labels alike (a
// label both lack is alike), and, when target is on the source side too, a
// source that is not on the target side (Alertmanager's inhibit.Mutes and
// InhibitRule.hasEqual).
func inhibits(rules []amcommoncfg.InhibitRule, source, target model.LabelSet) bool {
	for _, r := range rules {
		if !amlabels.Matchers(r.TargetMatchers).Matches(target) || !amlabels.Matchers(r.SourceMatchers).Matches(source) {
			continue
		}
		if amlabels.Matchers(r.SourceMatchers).Matches(target) && amlabels.Matchers(r.TargetMatchers).Matches(source) {
			continue
		}
		alike := true
		for _, l := range r.Equal {
			alike = alike && source[model.LabelName(l)] == target[model.LabelName(l)]
		}
		if alike {
			return true
		}
	}
	return false
}

// inhibited is whether one of the firing alerts silences target.
func inhibited(rules []amcommoncfg.InhibitRule, firing []model.LabelSet, target model.LabelSet) bool {
	for _, s := range firing {
		if inhibits(rules, s, target) {
			return true
		}
	}
	return false
}
