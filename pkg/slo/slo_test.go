package slo_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/slo"
	_ "github.com/rootuip/sre/pkg/slo/openslo"
	_ "github.com/rootuip/sre/pkg/slo/pyrra"
	_ "github.com/rootuip/sre/pkg/slo/sloth"
)

// One fixture per validation error, each with its exact message (file:line:column: field: problem).
func TestBadSpecs(t *testing.T) {
	want := map[string]string{
		"bad-duration.yml":             "testdata/bad/bad-duration.yml:7:13: slos[0].period: invalid duration \"30days\" (use a Prometheus duration such as 5m, 24h, 30d)",
		"budget-policy-order.yml":      "testdata/bad/budget-policy-order.yml:12:7: slos[0].budgetPolicy: thresholds must satisfy 100 >= green > yellow > exhausted >= 0 (got green 20, yellow 50, exhausted 0)",
		"detection-ticket.yml":         "testdata/bad/detection-ticket.yml:12:27: slos[0].alerting.ticket.maxDetectionTime: only the page tier has a maxDetectionTime",
		"detection-unreachable.yml":    "testdata/bad/detection-unreachable.yml:12:9: slos[0].alerting.page.maxDetectionTime: a total outage pages after 6m at the earliest (even with a 5m long window), above maxDetectionTime 5m: lower the page tier's for:, or raise maxDetectionTime (0 disables the bound)",
		"duplicate-field.yml":          "testdata/bad/duplicate-field.yml:7:5: slos[0].objective: duplicate field \"objective\"",
		"duplicate-tier-name.yml":      "testdata/bad/duplicate-tier-name.yml:15:26: slos[0].alerting.ticket.windows[1].longWindow: duplicate burn tier name \"ticket_1d\" (also alerting.ticket.windows[0]): set a name: of its own on one of them",
		"slo-name-dash.yml":            "testdata/bad/slo-name-dash.yml:5:11: slos[0].name: invalid SLO name \"-availability\" (letters, digits, '_', '.', '-', starting with a letter or digit; at most 63 characters)",
		"service-name-long.yml":        "testdata/bad/service-name-long.yml:3:10: service: invalid service name \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…\" (letters, digits, '_', '.', '-', starting with a letter or digit; at most 63 characters)",
		"long-values.yml":              "testdata/bad/long-values.yml:5:310: labels.team-vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv…: invalid label name \"team-vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv…\"\ntestdata/bad/long-values.yml:9:15: slos[0].groupBy[0]: invalid label name \"x-vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv…\"",
		"duplicate-slo.yml":            "testdata/bad/duplicate-slo.yml:11:11: slos[1].name: duplicate SLO name \"availability\" (also slos[0])",
		"error-selector-wider.yml":     "testdata/bad/error-selector-wider.yml:9:24: slos[0].sli.events.errorSelector: must repeat every matcher of totalSelector (missing job=\"api\"): errors and totals would count different series",
		"groupby-dropped.yml":          "testdata/bad/groupby-dropped.yml:10:21: slos[0].sli.events.errorQuery: result drops the groupBy label \"customer\" (aggregate by it)\ntestdata/bad/groupby-dropped.yml:11:21: slos[0].sli.events.totalQuery: result drops the groupBy label \"customer\" (aggregate by it)",
		"groupby-reserved.yml":         "testdata/bad/groupby-reserved.yml:7:15: slos[0].groupBy[0]: cannot group by \"slo\": the label is reserved (set by the generator)",
		"invalid-promql.yml":           "testdata/bad/invalid-promql.yml:9:24: slos[0].sli.events.errorSelector: invalid selector \"http_requests_total{job=\\\"api\\\",code=~\\\"5..\\\"\": 1:42: parse error: unexpected end of input inside braces",
		"invalid-yaml.yml":             "testdata/bad/invalid-yaml.yml:6:5: invalid YAML: did not find expected ',' or ']'",
		"invalid-yaml-2nd-doc.yml":     "testdata/bad/invalid-yaml-2nd-doc.yml:14:4: invalid YAML: did not find expected '-' indicator",
		"invalid-yaml-alias.yml":       "testdata/bad/invalid-yaml-alias.yml:7:13: invalid YAML: unknown anchor 'team_labels' referenced",
		"invalid-yaml-list.yml":        "testdata/bad/invalid-yaml-list.yml:11:4: invalid YAML: did not find expected '-' indicator",
		"invalid-yaml-control.yml":     "testdata/bad/invalid-yaml-control.yml:3:13: invalid YAML: control characters are not allowed",
		"invalid-yaml-first-line.yml":  "testdata/bad/invalid-yaml-first-line.yml:1:1: invalid YAML: found character that cannot start any token",
		"latency-bucket-name.yml":      "testdata/bad/latency-bucket-name.yml:9:20: slos[0].sli.latency.histogram: use the histogram's base name \"http_request_duration_seconds\", without _bucket",
		"latency-threshold-unit.yml":   "testdata/bad/latency-threshold-unit.yml:10:20: slos[0].sli.latency.threshold: threshold 250ms is a duration, read as 0.25 seconds, but histogram istio_request_duration_milliseconds is in milliseconds: write the number in milliseconds (250)",
		"latency-threshold.yml":        "testdata/bad/latency-threshold.yml:10:20: slos[0].sli.latency.threshold: invalid threshold \"fast\" (use a number in the histogram's unit or a duration such as 200ms)",
		"min-events-bool.yml":          "testdata/bad/min-events-bool.yml:11:18: slos[0].alerting.minEvents: needs an events or latency SLI (the bool SLI has no event count)",
		"missing-service.yml":          "testdata/bad/missing-service.yml:1:1: service: missing service name",
		"missing-window.yml":           "testdata/bad/missing-window.yml:9:21: slos[0].sli.events.errorQuery: query must use the range placeholder {{.window}} (e.g. rate(x[{{.window}}]))",
		"no-sli.yml":                   "testdata/bad/no-sli.yml:5:5: slos[0].sli: exactly one of events, latency, bool or raw must be set (got 0)",
		"not-a-list.yml":               "testdata/bad/not-a-list.yml:4:7: slos: expected a list, got \"availability\"",
		"objective-100.yml":            "testdata/bad/objective-100.yml:6:16: slos[0].objective: objective 100 leaves no error budget; it must be below 100",
		"objective-fraction.yml":       "testdata/bad/objective-fraction.yml:6:16: slos[0].objective: objective 0.999 looks like a fraction; write it as a percentage (99.9)",
		"objective-missing.yml":        "testdata/bad/objective-missing.yml:5:5: slos[0].objective: missing objective (a percentage such as 99.9)",
		"page-budget-neutral.yml":      "testdata/bad/page-budget-neutral.yml:16:23: slos[0].alerting.page.windows[0].burnRate: page tier page_3d has burn rate 1: a budget-neutral burn (1x) would page",
		"period-too-short.yml":         "testdata/bad/period-too-short.yml:7:13: slos[0].period: period 1h must be between 1d and 366d",
		"rule-file.yml":                "testdata/bad/rule-file.yml:2:1: apiVersion: missing apiVersion (want sre.rootuip.io/v1): this is a Prometheus rule file (groups:), not an SLO spec",
		"reserved-label.yml":           "testdata/bad/reserved-label.yml:5:13: labels.severity: label \"severity\" is reserved (set by the generator)",
		"sred-config.yml":              "testdata/bad/sred-config.yml:2:1: apiVersion: missing apiVersion (want sre.rootuip.io/v1): this is a sred configuration (webhook:, notifications:, escalation:), not an SLO spec; check it with srectl check config",
		"runbook.yml":                  "testdata/bad/runbook.yml:2:1: apiVersion: missing apiVersion (want sre.rootuip.io/v1): this is a runbook (matchers:, steps:), not an SLO spec; check it with srectl runbook validate",
		"alertmanager-config.yml":      "testdata/bad/alertmanager-config.yml:2:1: apiVersion: missing apiVersion (want sre.rootuip.io/v1): this is an Alertmanager configuration (route:, receivers:), not an SLO spec; check it with amtool check-config",
		"scaling-policy.yml":           "testdata/bad/scaling-policy.yml:2:1: apiVersion: missing apiVersion (want sre.rootuip.io/v1): this is a scaling policy (target:, metric:), not an SLO spec; check it with srectl scaling check",
		"rollout-stages.yml":           "testdata/bad/rollout-stages.yml:2:1: apiVersion: missing apiVersion (want sre.rootuip.io/v1): this is a rollout definition (service:, canary:), not an SLO spec; check it with srectl rollout validate",
		"chaos-experiment.yml":         "testdata/bad/chaos-experiment.yml:2:13: apiVersion: unsupported version \"chaos.sre.rootuip.io/v1\": this is a chaos experiment, not an SLO spec; check it with srectl chaos validate",
		"rollout-analysis.yml":         "testdata/bad/rollout-analysis.yml:3:7: kind: unsupported kind \"RolloutAnalysis\" (want ServiceLevelObjectives): this is a rollout analysis, not an SLO spec; sred loads it from analysis.spec_files of sred.yml: check it with srectl check config",
		"short-window.yml":             "testdata/bad/short-window.yml:15:26: slos[0].alerting.page.windows[0].shortWindow: must be at least 5m",
		"ticket-below-budget.yml":      "testdata/bad/ticket-below-budget.yml:16:29: slos[0].alerting.ticket.windows[0].budgetConsumed: ticket tier ticket_1h has burn rate 0.0072: below 1x it fires while the service spends its error budget slower than the period allows (raise burnRate or budgetConsumed)",
		"tier-named-budget.yml":        "testdata/bad/tier-named-budget.yml:14:19: slos[0].alerting.page.windows[0].name: tier name \"budget\" is the burn_tier of the error budget alert (SLOErrorBudgetConsumed): its alerts would be taken for it, and the inhibit rules would match one for the other",
		"tier-never-fires-window.yml":  "testdata/bad/tier-never-fires-window.yml:16:23: slos[0].alerting.page.windows[0].burnRate: burn tier page_1h can never fire: burn rate 25 x error budget 0.05 >= 1 (lower the factor, or disable the tier)",
		"tier-never-fires.yml":         "testdata/bad/tier-never-fires.yml:5:5: slos[0].alerting: burn tier page_fast can never fire: burn rate 14.4 x error budget 0.1 >= 1 (lower the factor, or disable the tier)",
		"two-slis.yml":                 "testdata/bad/two-slis.yml:8:7: slos[0].sli: exactly one of events, latency, bool or raw must be set (got 2)",
		"unknown-field.yml":            "testdata/bad/unknown-field.yml:7:5: slos[0].target: unknown field \"target\" (known fields: name, objective, period, description, groupBy, labels, sli, alerting, budgetPolicy)",
		"unsupported-version.yml":      "testdata/bad/unsupported-version.yml:1:10: version: unsupported version \"prometheus/v2\" (supported: sre.rootuip.io/v1, openslo/v1, pyrra.dev/v1alpha1, sloth prometheus/v1, sloth.slok.dev/v1)",
		"wrong-apiversion.yml":         "testdata/bad/wrong-apiversion.yml:1:13: apiVersion: unsupported version \"sre.rootuip.io/v2\" (supported: sre.rootuip.io/v1, openslo/v1, pyrra.dev/v1alpha1, sloth prometheus/v1, sloth.slok.dev/v1)",
		"wrong-kind.yml":               "testdata/bad/wrong-kind.yml:2:7: kind: unsupported kind \"SLO\" (want ServiceLevelObjectives)",
		"objective-nan.yml":            "testdata/bad/objective-nan.yml:6:16: slos[0].objective: NaN is not a finite number",
		"objective-string.yml":         "testdata/bad/objective-string.yml:6:16: slos[0].objective: expected a number, got the string \"99.9\" (write it without quotes)",
		"objective-hex-float.yml":      "testdata/bad/objective-hex-float.yml:6:16: slos[0].objective: invalid number \"0x1.8fp6\"",
		"min-events-inf.yml":           "testdata/bad/min-events-inf.yml:12:18: slos[0].alerting.minEvents: .inf is not a finite number",
		"budget-consumed-nan.yml":      "testdata/bad/budget-consumed-nan.yml:12:26: slos[0].alerting.budget.consumed: NaN is not a finite number",
		"burn-rate-inf.yml":            "testdata/bad/burn-rate-inf.yml:14:57: slos[0].alerting.page.windows[0].burnRate: Inf is not a finite number",
		"disabled-not-bool.yml":        "testdata/bad/disabled-not-bool.yml:12:24: slos[0].alerting.page.disabled: invalid boolean \"1\" (use true or false)",
		"objective-budget-zero.yml":    "testdata/bad/objective-budget-zero.yml:6:16: slos[0].objective: objective 99.99999999996 leaves an error budget below 1e-12 (budgets are kept to 12 decimals); it must be at most 99.9999999999",
		"groupby-fixed-label.yml":      "testdata/bad/groupby-fixed-label.yml:8:24: slos[0].labels.customer: label \"customer\" is in groupBy: a fixed value would give every group the same labels (duplicate series)\ntestdata/bad/groupby-fixed-label.yml:14:26: slos[0].alerting.labels.customer: label \"customer\" is in groupBy: a fixed value would give every group the same labels (duplicate series)",
		"objective-zero.yml":           "testdata/bad/objective-zero.yml:6:16: slos[0].objective: objective 0 must be a percentage, at least 1 and below 100",
		"period-zero.yml":              "testdata/bad/period-zero.yml:7:13: slos[0].period: period 0d must be between 1d and 366d",
		"budget-consumed-zero.yml":     "testdata/bad/budget-consumed-zero.yml:12:26: slos[0].alerting.budget.consumed: must be a percentage in (0, 100]",
		"burn-rate-zero.yml":           "testdata/bad/burn-rate-zero.yml:14:57: slos[0].alerting.page.windows[0].burnRate: must be a positive number (got 0)",
		"objective-one.yml":            "testdata/bad/objective-one.yml:5:5: slos[0].alerting: burn tier page_fast can never fire: burn rate 14.4 x error budget 0.99 >= 1 (lower the factor, or disable the tier)\ntestdata/bad/objective-one.yml:5:5: slos[0].alerting: burn tier page_slow can never fire: burn rate 6 x error budget 0.99 >= 1 (lower the factor, or disable the tier)\ntestdata/bad/objective-one.yml:5:5: slos[0].alerting: burn tier ticket_fast can never fire: burn rate 3 x error budget 0.99 >= 1 (lower the factor, or disable the tier)",
		"annotation-template.yml":      "testdata/bad/annotation-template.yml:13:26: slos[0].alerting.annotations.bad: invalid template \"{{ .Unclosed\": unclosed action\ntestdata/bad/annotation-template.yml:13:98: slos[0].alerting.annotations.f: invalid template \"{{ nosuchfunc 1 }}\": function \"nosuchfunc\" not defined\ntestdata/bad/annotation-template.yml:12:19: slos[0].alerting.runbookURL: invalid template \"https://x/{{ .Foo\": unclosed action",
		"annotation-template-line.yml": "testdata/bad/annotation-template-line.yml:12:24: slos[0].alerting.annotations.x: invalid template \"a\\n{{ end }}\": line 2: unexpected {{end}}",
	}
	files, err := filepath.Glob("testdata/bad/*.yml")
	require.NoError(t, err)
	require.Len(t, files, len(want), "every bad fixture needs its expected message")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			specs, err := slo.LoadFile(f)
			require.Nil(t, specs)
			require.EqualError(t, err, want[filepath.Base(f)])
		})
	}
}

func TestLoadExamples(t *testing.T) {
	specs, err := slo.LoadDir("../../examples/slos")
	require.NoError(t, err)
	got := map[string]float64{}
	for _, s := range specs {
		for _, o := range s.SLOs {
			got[s.Service+"/"+o.Name] = o.Objective
		}
	}
	// The example SLOs of the api service.
	require.Equal(t, 99.99, got["api/availability"])
	require.Equal(t, 95.0, got["api/latency"])
	require.Equal(t, 99.5, got["api/success-rate"])
	require.Contains(t, got, "api/data-integrity")
	require.GreaterOrEqual(t, len(specs), 3)

	var api *slo.Spec
	for _, s := range specs {
		if s.Service == "api" {
			api = s
		}
	}
	require.Equal(t, 0.2, float64(api.SLOs[1].SLI.Latency.Threshold), "200ms is 0.2 seconds")
	require.Equal(t, 7*24*time.Hour, api.SLOs[1].PeriodDuration())
	require.Equal(t, slo.DefaultBudgetPolicy, api.SLOs[2].BudgetPolicy, "defaults apply")
	require.InDelta(t, 0.0001, api.SLOs[0].ErrorBudget(), 1e-15)
}

func TestDuplicateAcrossFiles(t *testing.T) {
	_, err := slo.LoadFiles("../../examples/slos/api.yml", "../../examples/slos/api.yml")
	require.ErrorContains(t, err, `SLO "availability" of service "api" is already defined at ../../examples/slos/api.yml:8`)
}

func TestBudgetPolicyState(t *testing.T) {
	p := slo.DefaultBudgetPolicy
	for _, c := range []struct {
		remaining float64
		want      slo.BudgetState
	}{
		{1, slo.BudgetGreen}, {0.51, slo.BudgetGreen}, {0.5, slo.BudgetYellow}, {0.2, slo.BudgetYellow},
		{0.19, slo.BudgetRed}, {0.01, slo.BudgetRed}, {0, slo.BudgetExhausted}, {-0.5, slo.BudgetExhausted},
	} {
		require.Equal(t, c.want, p.State(c.remaining), "remaining %v", c.remaining)
	}
}

// The workbook's windows for 30d, and correctly scaled ones for other periods:
// page factors stay above 1 and below what the budget allows.
func TestDefaultWindows(t *testing.T) {
	type w struct {
		long, short string
		rate        float64
	}
	for _, c := range []struct {
		period string
		sev    string
		want   []w
	}{
		{"30d", slo.SeverityPage, []w{{"1h", "5m", 14.4}, {"6h", "30m", 6}}},
		{"30d", slo.SeverityTicket, []w{{"1d", "2h", 3}, {"3d", "6h", 1}}},
		{"7d", slo.SeverityPage, []w{{"14m", "5m", 14.4}, {"1h24m", "7m", 6}}},
		{"1d", slo.SeverityPage, []w{{"5m", "5m", 5.76}, {"12m", "5m", 6}}},
		{"1d", slo.SeverityTicket, []w{{"48m", "5m", 3}, {"2h24m", "12m", 1}}},
		{"28d", slo.SeverityPage, []w{{"56m", "5m", 14.4}, {"5h36m", "28m", 6}}},
	} {
		d, err := model.ParseDuration(c.period)
		require.NoError(t, err)
		var got []w
		for _, x := range slo.DefaultWindows(time.Duration(d), c.sev) {
			got = append(got, w{model.Duration(x.Long).String(), model.Duration(x.Short).String(), x.BurnRate})
		}
		require.Equal(t, c.want, got, "%s %s", c.period, c.sev)
	}
}

// A total outage pages within the page tier's maxDetectionTime (5m by
// default): the fastest page window's long window shortens, keeping its
// burn rate, only as far as needed.
func TestMaxDetectionTime(t *testing.T) {
	type win struct {
		name, long, short string
		rate              float64
	}
	for _, c := range []struct {
		name      string
		objective string
		period    string
		page      string
		want      []win // page windows
		detection string
	}{
		// 14.4x over 1h at 99.9% fires within 3m: nothing changes.
		{"high objective", "99.9", "30d", "{}", []win{{"page_fast", "1h", "5m", 14.4}, {"page_slow", "6h", "30m", 6}}, "3m"},
		// 14.4x at 99%: 1h would take 11m; 20m is the longest window that pages
		// within 5m (3/20 > 0.144; within 10m: 8/55).
		{"99% over 30d", "99", "30d", "{}", []win{{"page_fast", "20m", "5m", 14.4}, {"page_slow", "6h", "30m", 6}}, "5m"},
		// 14.4x at 95% is a 72% error ratio: only the 5m window pages within 5m.
		{"95% over 7d", "95", "7d", "{}", []win{{"page_fast", "5m", "5m", 14.4}, {"page_slow", "1h24m", "7m", 6}}, "4m"},
		{"bound raised", "95", "7d", "{maxDetectionTime: 15m}", []win{{"page_fast", "14m", "5m", 14.4}, {"page_slow", "1h24m", "7m", 6}}, "13m"},
		{"bound disabled", "95", "7d", "{maxDetectionTime: 0s}", []win{{"page_fast", "14m", "5m", 14.4}, {"page_slow", "1h24m", "7m", 6}}, "13m"},
		{"bound of 10m", "99", "30d", "{maxDetectionTime: 10m}", []win{{"page_fast", "55m", "5m", 14.4}, {"page_slow", "6h", "30m", 6}}, "10m"},
		// for: counts (4m left: 2/n > 0.06 gives 33m); the short window is a
		// twelfth of the long one, at least 5m;
		// an explicit window keeps its name.
		{"explicit window", "99", "30d", "{for: 1m, windows: [{longWindow: 6h, shortWindow: 30m, burnRate: 6}]}", []win{{"page_6h", "33m", "5m", 6}}, "5m"},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := "apiVersion: sre.rootuip.io/v1\nkind: ServiceLevelObjectives\nservice: api\nslos:\n  - name: x\n    objective: " + c.objective +
				"\n    period: " + c.period + "\n    sli: {bool: {selector: up}}\n    alerting: {page: " + c.page + "}\n"
			specs, err := slo.Parse([]byte(spec), "api.yml")
			require.NoError(t, err)
			o := &specs[0].SLOs[0]
			var got []win
			for _, w := range o.Windows() {
				if w.Severity == slo.SeverityPage {
					got = append(got, win{w.Name, model.Duration(w.Long).String(), model.Duration(w.Short).String(), w.BurnRate})
				}
			}
			require.Equal(t, c.want, got)
			require.Equal(t, c.detection, model.Duration(o.DetectionTime()).String())
		})
	}
}

// The detection model against hand-computed cases: k minutes into a total
// outage the 5m ratio is k/5, a longer window's ratio the mean of its
// one-minute samples of it.
func TestOutageDetection(t *testing.T) {
	for _, c := range []struct {
		long, short time.Duration
		rate        float64
		budget      float64
		forDur      time.Duration
		want        time.Duration
	}{
		// 5m ratio 0.2 > 0.0144 after 1m; 1h: (0.2+0.4+0.6)/60 = 0.02 > 0.0144 after 3m.
		{time.Hour, 5 * time.Minute, 14.4, 0.001, 0, 3 * time.Minute},
		{time.Hour, 5 * time.Minute, 14.4, 0.001, 90 * time.Second, 5 * time.Minute},
		// 0.72: the 5m ratio passes it at 4/5; over 14m the mean passes it at k=13: (3+8)/14 = 0.786 (k=12: 10/14 = 0.714).
		{14 * time.Minute, 5 * time.Minute, 14.4, 0.05, 0, 13 * time.Minute},
		{5 * time.Minute, 5 * time.Minute, 14.4, 0.05, 0, 4 * time.Minute},
		// Exactly 0.6 is not above 0.6: k=3 (1.2/30... over 30m: 0.6/30 = 0.02 = 2 x 0.01 at k=2).
		{30 * time.Minute, 5 * time.Minute, 2, 0.01, 0, 3 * time.Minute},
		// Burn rate x budget >= 1 never fires.
		{time.Hour, 5 * time.Minute, 14.4, 0.1, 0, time.Duration(math.MaxInt64)},
	} {
		w := slo.Window{Long: c.long, Short: c.short, BurnRate: c.rate, For: c.forDur}
		require.Equal(t, c.want, w.OutageDetection(c.budget), "%s with budget %v", w, c.budget)
	}
}

// Validation keeps what it parsed of the SLI for rule generation, by exact
// text: a query with its window placeholder set to 5m, a selector as written.
func TestParsedExpr(t *testing.T) {
	specs, err := slo.Parse([]byte("apiVersion: sre.rootuip.io/v1\nkind: ServiceLevelObjectives\nservice: api\nslos:\n"+
		"  - name: q\n    objective: 99\n    sli:\n      events:\n        errorQuery: sum(rate(x{code=\"500\"}[{{.window}}]))\n        totalQuery: sum(rate(x[{{.window}}]))\n"+
		"  - name: s\n    objective: 99\n    sli:\n      latency:\n        histogram: h{job=\"api\"}\n        threshold: 300ms\n"), "api.yml")
	require.NoError(t, err)
	q, s := &specs[0].SLOs[0], &specs[0].SLOs[1]
	require.Equal(t, `sum(rate(x{code="500"}[5m]))`, q.ParsedExpr(`sum(rate(x{code="500"}[5m]))`).String())
	require.NotNil(t, q.ParsedExpr(`sum(rate(x[5m]))`))
	require.Nil(t, q.ParsedExpr(`sum(rate(x[{{.window}}]))`), "queries are kept with their window set")
	require.Nil(t, q.ParsedExpr(`h{job="api"}`), "another SLO's selector")
	require.Equal(t, `h{job="api"}`, s.ParsedExpr(`h{job="api"}`).String())
	s.SLI.Latency.Histogram = `h{job="web"}`
	require.Nil(t, s.ParsedExpr(s.SLI.Latency.Histogram), "text changed after validation")
}

// LoadFiles reads files in parallel: the specs and the errors come in the
// order of the files, as read one after the other, and a file that cannot
// be read is reported as the first such file in order.
func TestLoadFilesInOrder(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for i := range 40 {
		p := filepath.Join(dir, fmt.Sprintf("s%02d.yml", i))
		objective := "99.9"
		if i%7 == 3 {
			objective = "0.999" // a validation error, reported with its file
		}
		spec := fmt.Sprintf("apiVersion: sre.rootuip.io/v1\nkind: ServiceLevelObjectives\nservice: svc-%02d\nslos:\n  - name: up\n    objective: %s\n    sli:\n      bool:\n        selector: up{job=\"svc-%02d\"}\n", i, objective, i)
		require.NoError(t, os.WriteFile(p, []byte(spec), 0o644))
		paths = append(paths, p)
	}
	var (
		want     []string
		wantErrs []string
	)
	for _, p := range paths {
		specs, err := slo.LoadFile(p)
		if err != nil {
			for _, e := range err.(slo.Errors) {
				wantErrs = append(wantErrs, e.Error())
			}
			continue
		}
		want = append(want, specs[0].Service)
	}
	_, err := slo.LoadFiles(paths...)
	var got []string
	for _, e := range err.(slo.Errors) {
		got = append(got, e.Error())
	}
	require.Len(t, wantErrs, 6)
	require.Equal(t, wantErrs, got)

	var valid []string
	for i, p := range paths {
		if i%7 != 3 {
			valid = append(valid, p)
		}
	}
	specs, err := slo.LoadFiles(valid...)
	require.NoError(t, err)
	var services []string
	for _, s := range specs {
		services = append(services, s.Service)
	}
	require.Equal(t, want, services)

	missing := []string{valid[0], filepath.Join(dir, "missing-1.yml"), valid[1], filepath.Join(dir, "missing-2.yml")}
	_, err = slo.LoadFiles(missing...)
	require.ErrorContains(t, err, "missing-1.yml")
}

// An empty document (a trailing ---, or one with only a comment) is
// skipped, as Sloth skips it; a file of only empty documents is empty.
func TestEmptyDocuments(t *testing.T) {
	spec := "apiVersion: sre.rootuip.io/v1\nkind: ServiceLevelObjectives\nservice: api\nslos:\n  - name: x\n    objective: 99\n    sli: {bool: {selector: up}}\n"
	for _, data := range []string{
		spec + "---\n",
		spec + "---\n# nothing here\n",
		"---\n# first\n---\n" + spec + "---\n---\n",
	} {
		specs, err := slo.Parse([]byte(data), "api.yml")
		require.NoError(t, err, "%q", data)
		require.Len(t, specs, 1)
	}
	_, err := slo.Parse([]byte("---\n# only a comment\n---\n"), "api.yml")
	require.EqualError(t, err, "api.yml: no SLO spec found (empty file)")
	_, err = slo.Parse([]byte(spec+"--- ~\n"), "api.yml")
	require.ErrorContains(t, err, "api.yml:8:5: expected a mapping", "an explicit null is not empty")
}

// A window's for: 0s is its own for:, not the tier's; a window without
// for: takes the tier's. An explicit `period:` or `for:` without a value
// (null) is left out.
func TestExplicitZeroFor(t *testing.T) {
	spec := "apiVersion: sre.rootuip.io/v1\nkind: ServiceLevelObjectives\nservice: api\nslos:\n  - name: x\n    objective: 99.9\n    period:\n" +
		"    sli: {bool: {selector: up}}\n    alerting:\n      budget: {for: ~}\n      page:\n        for: 2m\n        windows:\n" +
		"          - {longWindow: 1h, shortWindow: 5m, burnRate: 14.4, for: 0s}\n          - {longWindow: 6h, shortWindow: 30m, burnRate: 6}\n"
	specs, err := slo.Parse([]byte(spec), "api.yml")
	require.NoError(t, err)
	o := &specs[0].SLOs[0]
	ws := o.Windows()
	require.Equal(t, time.Duration(0), ws[0].For, "for: 0s is kept")
	require.Equal(t, 2*time.Minute, ws[1].For, "the tier's for:")
	require.Equal(t, slo.DefaultPeriod, o.Period)
	require.Equal(t, slo.DefaultBudgetFor, o.Alerting.Budget.For)
}

// Aliases expand to at most 10 times the document's own nodes (plus
// 10,000): 1,000 SLOs aliasing one anchored list of 40 windows took
// seconds and gigabytes to validate. Reasonable reuse (an anchored
// alerting block for a few SLOs) is fine.
func TestAliasExpansionBudget(t *testing.T) {
	bomb := func(slos, windows int) []byte {
		var b strings.Builder
		b.WriteString("apiVersion: sre.rootuip.io/v1\nkind: ServiceLevelObjectives\nservice: svc\nslos:\n")
		b.WriteString("  - name: s0\n    objective: 99.9\n    sli: {bool: {selector: up}}\n    alerting:\n      page:\n        windows: &w\n")
		for i := range windows {
			fmt.Fprintf(&b, "          - {longWindow: %dh, shortWindow: 5m, burnRate: 14.4, name: w%d}\n", i%20+1, i)
		}
		for i := 1; i < slos; i++ {
			fmt.Fprintf(&b, "  - {name: s%d, objective: 99.9, sli: {bool: {selector: up}}, alerting: {page: {windows: *w}}}\n", i)
		}
		return []byte(b.String())
	}
	_, err := slo.Parse(bomb(1000, 40), "bomb.yml")
	var es slo.Errors
	require.ErrorAs(t, err, &es)
	require.Len(t, es, 1)
	require.Regexp(t, `^bomb.yml:\d+:\d+: slos\[\d+\]\.alerting\.page\.windows\[\d+\]: aliases expand the document to more than \d+ values \(10 times its size plus 10000\): too much aliasing$`, err.Error())

	specs, err := slo.Parse(bomb(20, 4), "reuse.yml")
	require.NoError(t, err)
	require.Len(t, specs[0].SLOs, 20)
	require.Len(t, specs[0].SLOs[19].Alerting.Page.Windows, 4)
}

// At most 100 errors are listed, then how many more there are.
func TestErrorsCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: sre.rootuip.io/v1\nkind: ServiceLevelObjectives\nservice: svc\nslos:\n")
	for i := range 150 {
		fmt.Fprintf(&b, "  - {name: s%d, objective: 0.5, sli: {bool: {selector: up}}}\n", i)
	}
	_, err := slo.Parse([]byte(b.String()), "many.yml")
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 101)
	require.Equal(t, "many.yml:5:27: slos[0].objective: objective 0.5 looks like a fraction; write it as a percentage (50)", lines[0])
	require.Equal(t, "... and 50 more errors", lines[100])
	require.Len(t, err.(slo.Errors), 150, "the list itself is whole")
}

// A metric name may be written as Prometheus 3 quotes it,
// {"http.server.request.count", ...}, or as {__name__="x"}; a selector
// whose name is not one fixed value has none.
func TestSelectorMetricName(t *testing.T) {
	doc := func(total, errSel string) string {
		return "apiVersion: sre.rootuip.io/v1\nkind: ServiceLevelObjectives\nservice: api\nslos:\n  - name: x\n    objective: 99.9\n    sli:\n      events:\n" +
			"        errorSelector: '" + errSel + "'\n        totalSelector: '" + total + "'\n"
	}
	for _, c := range []struct{ total, errSel, want string }{
		{`{"http.server.request.count", job="api"}`, `{"http.server.request.count", job="api", code="500"}`, ""},
		{`{__name__="requests_total", job="api"}`, `{__name__="requests_total", job="api", code="500"}`, ""},
		{`requests_total{job="api"}`, `{"requests_total", job="api", code="500"}`, ""},
		// Same counter: the error selector must still repeat the total's matchers.
		{`{"http.server.request.count", job="api"}`, `{"http.server.request.count", code="500"}`,
			`api.yml:9:24: slos[0].sli.events.errorSelector: must repeat every matcher of totalSelector (missing job="api"): errors and totals would count different series`},
		{`{__name__=~"a|b"}`, `a{code="500"}`,
			`api.yml:10:24: slos[0].sli.events.totalSelector: selector "{__name__=~\"a|b\"}" has no metric name (write name{...}, {"name", ...} or {__name__="name", ...})`},
	} {
		_, err := slo.Parse([]byte(doc(c.total, c.errSel)), "api.yml")
		if c.want == "" {
			require.NoError(t, err, c.total)
		} else {
			require.EqualError(t, err, c.want)
		}
	}
}

// TestLoadDirThroughSymlink: a directory of specs named through a symbolic
// link (slos -> a checkout's directory) loads its specs, named under the
// link, instead of "no SLO spec found".
func TestLoadDirThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "checkout", "slos")
	require.NoError(t, os.MkdirAll(filepath.Join(real, "team"), 0o755))
	data, err := os.ReadFile("../../examples/slos/api.yml")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(real, "team", "api.yml"), data, 0o644))
	link := filepath.Join(dir, "slos")
	require.NoError(t, os.Symlink(real, link))

	specs, err := slo.LoadDir(link)
	require.NoError(t, err)
	require.Len(t, specs, 1)
	require.Equal(t, "api", specs[0].Service)
	require.Equal(t, filepath.Join(link, "team", "api.yml"), specs[0].File)
}

// YAML merge keys share fields between SLOs, as anchors share values: keys
// written in the mapping win over merged ones, earlier merged mappings over
// later ones (before, "<<" was an unknown field).
func TestMergeKeys(t *testing.T) {
	doc := `apiVersion: sre.rootuip.io/v1
kind: ServiceLevelObjectives
service: s
slos:
  - &base
    name: a
    objective: 99.9
    labels: &team {team: sre, tier: gold}
    sli: {events: {errorSelector: 'x_total{code="5"}', totalSelector: x_total}}
  - <<: *base
    name: b
    objective: 99.5
  - <<: [{period: 7d, objective: 95}, *base]
    name: c
    labels: {<<: *team, tier: silver}
`
	specs, err := slo.Parse([]byte(doc), "merge.yml")
	require.NoError(t, err)
	got := map[string]string{}
	for _, o := range specs[0].SLOs {
		got[o.Name] = fmt.Sprintf("%v %s %v %s", o.Objective, o.PeriodName(), o.Labels, o.SLI.Events.TotalSelector)
	}
	require.Equal(t, map[string]string{
		"a": "99.9 30d map[team:sre tier:gold] x_total",
		"b": "99.5 30d map[team:sre tier:gold] x_total",
		"c": "95 7d map[team:sre tier:silver] x_total",
	}, got)

	_, err = slo.Parse([]byte(strings.Replace(doc, "<<: *base\n    name: b", "<<: 5\n    name: b", 1)), "merge.yml")
	require.EqualError(t, err, `merge.yml:10:9: slos[1].<<: a merge key (<<) takes a mapping or a list of mappings (e.g. <<: *base), got "5"`)

	// A mapping that merges itself is an error at the merge, not a
	// decoder that never ends; so is each mapping that merges it.
	_, err = slo.Parse([]byte(strings.Replace(doc, "    name: a\n", "    name: a\n    <<: *base\n", 1)), "merge.yml")
	require.EqualError(t, err, "merge.yml:7:9: slos[0].<<: a merge key (<<) cannot merge *base, a mapping that holds it\n"+
		"merge.yml:7:9: slos[1].<<: a merge key (<<) cannot merge *base, a mapping that holds it\n"+
		"merge.yml:7:9: slos[2].<<: a merge key (<<) cannot merge *base, a mapping that holds it")
}

// TestFormatMergeKeys: the field that tells a spec's format (apiVersion,
// Sloth's version) is read as the decoder reads it, also where a merge key
// brings it in; so are the fields that name another kind of file. Before,
// such a spec was "missing apiVersion".
func TestFormatMergeKeys(t *testing.T) {
	const sli = `{events: {errorSelector: 'x_total{code="5"}', totalSelector: x_total}}`
	for _, tc := range []struct {
		name, doc string
		want      string // the specs' services and SLOs, or the error
	}{
		{"native", "<<: {apiVersion: sre.rootuip.io/v1, kind: ServiceLevelObjectives}\nservice: s\n" +
			"slos: [{name: a, objective: 99.9, sli: " + sli + "}]\n", "s/a"},
		{"native, another kind", "<<: {apiVersion: sre.rootuip.io/v1, kind: RolloutAnalysis}\nservice: s\n",
			`f.yml:1:43: kind: unsupported kind "RolloutAnalysis" (want ServiceLevelObjectives): this is a rollout analysis, not an SLO spec; sred loads it from analysis.spec_files of sred.yml: check it with srectl check config`},
		{"sloth", "<<: {version: prometheus/v1}\nservice: s\nslos: [{name: a, objective: 99.9, sli: {events: " +
			"{error_query: 'sum(rate(x_total{code=\"5\"}[{{.window}}]))', total_query: 'sum(rate(x_total[{{.window}}]))'}}, alerting: {page_alert: {disable: true}, ticket_alert: {disable: true}}}]\n", "s/a"},
		{"sloth CRD", "<<: {apiVersion: sloth.slok.dev/v1, kind: PrometheusServiceLevel}\nmetadata: {name: s}\n" +
			"spec: {service: s, slos: [{name: a, objective: 99.9, sli: {events: " +
			"{errorQuery: 'sum(rate(x_total{code=\"5\"}[{{.window}}]))', totalQuery: 'sum(rate(x_total[{{.window}}]))'}}, alerting: {pageAlert: {disable: true}, ticketAlert: {disable: true}}}]}\n", "s/a"},
		{"pyrra", "<<: {apiVersion: pyrra.dev/v1alpha1, kind: ServiceLevelObjective}\nmetadata: {name: a, namespace: s}\n" +
			"spec: {target: '99.5', window: 4w, indicator: {ratio: {errors: {metric: 'x_total{code=\"5\"}'}, total: {metric: x_total}}}}\n", "s/a"},
		{"pyrra list", "<<: {apiVersion: v1, kind: List}\nitems: [{<<: {apiVersion: pyrra.dev/v1alpha1}, kind: ServiceLevelObjective, metadata: {name: a, namespace: s}, " +
			"spec: {target: '99.5', window: 4w, indicator: {ratio: {errors: {metric: 'x_total{code=\"5\"}'}, total: {metric: x_total}}}}}]\n", "s/a"},
		{"openslo", "<<: {apiVersion: openslo/v1, kind: SLO}\nmetadata: {name: a}\nspec: {service: s, budgetingMethod: Occurrences, " +
			"timeWindow: [{duration: 30d, isRolling: true}], objectives: [{target: 0.999}], indicator: {metadata: {name: x}, spec: {ratioMetric: " +
			"{counter: true, bad: {metricSource: {type: Prometheus, spec: {query: 'x_total{code=\"5\"}'}}}, total: {metricSource: {type: Prometheus, spec: {query: x_total}}}}}}}\n", "s/a"},
		{"an unsupported version", "<<: {apiVersion: example.com/v9}\nservice: s\n",
			`f.yml:1:18: apiVersion: unsupported version "example.com/v9" (supported: sre.rootuip.io/v1, `},
		{"a rule file", "<<: {groups: []}\n",
			"f.yml:1:1: apiVersion: missing apiVersion (want sre.rootuip.io/v1): this is a Prometheus rule file (groups:), not an SLO spec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			specs, err := slo.Parse([]byte(tc.doc), "f.yml")
			if strings.HasPrefix(tc.want, "f.yml:") {
				require.Error(t, err)
				require.True(t, strings.HasPrefix(err.Error(), tc.want), "got %v", err)
				return
			}
			require.NoError(t, err)
			var got []string
			for _, s := range specs {
				for _, o := range s.SLOs {
					got = append(got, s.Service+"/"+o.Name)
				}
			}
			require.Equal(t, tc.want, strings.Join(got, " "))
		})
	}
}
