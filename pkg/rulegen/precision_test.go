package rulegen_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/rulegen"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/testutil"
)

// writeRules parses one spec, writes its rule file into a new directory and
// returns the directory with the parsed spec.
func writeRules(t *testing.T, spec string) (string, *slo.Spec) {
	t.Helper()
	specs, err := slo.Parse([]byte(spec), "s.yml")
	require.NoError(t, err)
	files, err := rulegen.Generate(specs)
	require.NoError(t, err)
	require.Len(t, files, 1)
	dir := t.TempDir()
	b, err := files[0].Marshal()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, files[0].Name), b, 0o644))
	return dir, specs[0]
}

// promtoolTest runs `promtool test rules` on a suite written into dir.
func promtoolTest(t *testing.T, dir string, suite []byte) {
	t.Helper()
	p := filepath.Join(dir, "suite.yml")
	require.NoError(t, os.WriteFile(p, suite, 0o644))
	out, err := exec.Command(testutil.Tool(t, "promtool"), "test", "rules", p).CombinedOutput()
	require.NoError(t, err, string(out))
}

const tinySpec = `apiVersion: sre.rootuip.io/v1
kind: ServiceLevelObjectives
service: s
slos:
  - name: a
    objective: %s
    sli:
      %s
`

// The generated suites pass up to the highest objective validation accepts:
// their input values keep significant digits, not 6 decimals (a 2.5x burn
// at 99.99999999% is 2.5e-7 bad events a minute, which was written as 0,
// and the slow-burn ticket never fired).
func TestSuiteTinyBudgets(t *testing.T) {
	for _, obj := range []string{"99.99999999", "99.9999999999"} {
		for _, sli := range []string{
			`events: {errorSelector: 'x_total{code="5"}', totalSelector: x_total}`,
			`latency: {histogram: h_seconds, threshold: 0.2}`,
			`raw: {errorRatioQuery: 'sum(rate(e_total[{{.window}}])) / sum(rate(t_total[{{.window}}]))'}`,
		} {
			t.Run(obj+" "+sli, func(t *testing.T) {
				dir, spec := writeRules(t, fmt.Sprintf(tinySpec, obj, sli))
				suite, err := rulegen.BuildSuite("s.yml", spec, &spec.SLOs[0])
				require.NoError(t, err)
				b, err := suite.Marshal()
				require.NoError(t, err)
				promtoolTest(t, dir, b)
			})
		}
	}
}

// A raw SLI whose numerator grows while its denominator does not (two
// exporters scraped apart, a counter of errors only) gives an infinite
// ratio: the 5m step counts as all bad, and the period's figures stay finite
// numbers (before, the total-events recording was 0 x Inf + 1 = NaN, and
// the budget was NaN for a whole period).
func TestRawInfiniteRatioKeepsBudgetFinite(t *testing.T) {
	dir, _ := writeRules(t, fmt.Sprintf(tinySpec, "99.9",
		`raw: {errorRatioQuery: 'sum(rate(e_total[{{.window}}])) / sum(rate(t_total[{{.window}}]))'}`))
	promtoolTest(t, dir, []byte(`rule_files: [s.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 't_total'
        values: 0+1000x29 29000+0x60
      - series: 'e_total'
        values: 0+0x29 0+1x60
    promql_expr_test:
      - expr: count(abs(slo:error_budget_remaining:ratio{service="s",slo="a"}) < +Inf)
        eval_time: 80m
        exp_samples:
          - labels: '{}'
            value: 1
      - expr: slo:sli_total_events:rate5m{service="s",slo="a"} == 1
        eval_time: 40m
        exp_samples:
          - labels: 'slo:sli_total_events:rate5m{service="s",slo="a"}'
            value: 1
      - expr: slo:sli_error_events:rate5m{service="s",slo="a"}
        eval_time: 40m
        exp_samples:
          - labels: 'slo:sli_error_events:rate5m{service="s",slo="a"}'
            value: 1
`))
}

// The counters of the generated suites only decrease where a scenario resets
// them on purpose: as promtool expands them (each step adds the increment to
// the previous value), a phase never starts below where the one before it
// ended, and a good-events counter never shrinks because a minute has more
// bad events than traffic. Prometheus reads any decrease as a counter reset,
// whose whole value counts as new events (before: the minEvents scenario's
// single error made api/availability's good counter drop from 8.08 to 7.22,
// 7 phantom requests, and a flat phase after 0.2 bad events a minute started
// below the sum promtool had accumulated; a native histogram's buckets
// did the same after a phase of 999.4 good events a minute).
func TestSuiteCountersMonotonic(t *testing.T) {
	var specs []*slo.Spec
	ex, err := slo.LoadDir("examples/slos")
	require.NoError(t, err)
	specs = append(specs, ex...)
	for _, obj := range []string{"99.99", "99.97", "99.9999999999"} {
		for _, sli := range []string{
			`events: {errorSelector: 'x_total{code="5"}', totalSelector: x_total}`,
			`latency: {histogram: h_seconds, threshold: 0.2}`,
			`latency: {histogram: h_seconds, threshold: 0.2, native: true}`,
			`raw: {errorRatioQuery: 'sum(rate(e_total[{{.window}}])) / sum(rate(t_total[{{.window}}]))'}`,
		} {
			s, err := slo.Parse([]byte(fmt.Sprintf(tinySpec, obj, sli)), "s.yml")
			require.NoError(t, err)
			specs = append(specs, s...)
		}
	}
	for _, spec := range specs {
		for i := range spec.SLOs {
			o := &spec.SLOs[i]
			suite, err := rulegen.BuildSuite("s.yml", spec, o)
			if err != nil || o.SLI.Bool != nil {
				continue
			}
			for _, g := range suite.Tests {
				if strings.Contains(g.Name, "counter reset") {
					continue
				}
				for _, in := range g.InputSeries {
					_, vals, err := slo.Parser.ParseSeriesDesc(in.Series + " " + in.Values)
					require.NoError(t, err)
					for j := 1; j < len(vals); j++ {
						require.False(t, decreases(vals[j-1], vals[j]),
							"%s/%s %q: %s decreases at sample %d: %s", spec.Service, o.Name, g.Name, in.Series, j, in.Values)
					}
				}
			}
		}
	}
}

// decreases reports whether Prometheus reads cur after prev as a counter
// reset.
func decreases(prev, cur parser.SequenceValue) bool {
	switch {
	case cur.Omitted || prev.Omitted:
		return false
	case cur.Histogram != nil && prev.Histogram != nil:
		return cur.Histogram.DetectReset(prev.Histogram)
	default:
		return cur.Value < prev.Value
	}
}

// A native-histogram suite's inputs hold no counter reset in Prometheus'
// own reading, outside the scenario that resets on purpose: a phase after
// 999.4 good events a minute started at the rounded 58964.6, below the
// 58964.60000000006 promtool had summed, and resets() counted one.
func TestNativeSuiteHasNoCounterResets(t *testing.T) {
	for _, obj := range []string{"99.97", "99.99", "99.9"} {
		t.Run(obj, func(t *testing.T) {
			specs, err := slo.Parse([]byte(fmt.Sprintf(tinySpec, obj, `latency: {histogram: h_seconds, threshold: 0.2, native: true}`)), "s.yml")
			require.NoError(t, err)
			spec := specs[0]
			suite, err := rulegen.BuildSuite("s.yml", spec, &spec.SLOs[0])
			require.NoError(t, err)
			var groups []rulegen.TestGroup
			for _, g := range suite.Tests {
				if strings.Contains(g.Name, "counter reset") {
					continue
				}
				g.AlertRuleTests, g.PromqlExprTests = nil, []rulegen.ExprTest{resetsAtEnd(t, g)}
				groups = append(groups, g)
			}
			require.NotEmpty(t, groups)
			// The inputs alone are under test: no rules to evaluate.
			suite.Tests, suite.RuleFiles = groups, nil
			b, err := suite.Marshal()
			require.NoError(t, err)
			promtoolTest(t, t.TempDir(), b)
		})
	}
}

// resetsAtEnd expects no counter reset of h_seconds in g by its last sample.
func resetsAtEnd(t *testing.T, g rulegen.TestGroup) rulegen.ExprTest {
	t.Helper()
	samples := 0
	for _, in := range g.InputSeries {
		_, vals, err := slo.Parser.ParseSeriesDesc(in.Series + " " + in.Values)
		require.NoError(t, err)
		samples = max(samples, len(vals))
	}
	end := time.Duration(samples-1) * time.Minute
	return rulegen.ExprTest{
		Expr:       fmt.Sprintf("sum(resets(h_seconds[%s])) or vector(0)", model.Duration(end+time.Minute)),
		EvalTime:   model.Duration(end),
		ExpSamples: []rulegen.ExpSample{{Labels: "{}", Value: 0}},
	}
}
