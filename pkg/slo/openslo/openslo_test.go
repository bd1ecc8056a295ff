package openslo_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/slo"
	_ "github.com/rootuip/sre/pkg/slo/openslo"
)

func TestImport(t *testing.T) {
	specs, err := slo.LoadFile("testdata/openslo.yml")
	require.NoError(t, err)
	require.Len(t, specs, 1)
	require.Equal(t, "web", specs[0].Service)
	require.Equal(t, "openslo/v1", specs[0].Source)
	o := specs[0].SLOs[0]
	require.Equal(t, "web-availability", o.Name)
	require.Equal(t, 99.5, o.Objective)
	require.Equal(t, 28*24*time.Hour, o.PeriodDuration())
	require.Equal(t, "28d", o.PeriodName(), "OpenSLO's spelling, not 4w")
	require.Equal(t, "Web availability", o.Description, "displayName without a description")
	require.Equal(t, `http_requests_total{job="web",code=~"5.."}`, o.SLI.Events.ErrorSelector)
	require.Equal(t, `http_requests_total{job="web"}`, o.SLI.Events.TotalSelector)
	ws := o.Windows()
	require.Len(t, ws, 2)
	// alertAfter 2m raises the detection bound to 7m; at 99.5% a 14.4x
	// burn over 1h would page a total outage after 9m, so the long window
	// shortens to 41m (7m).
	require.Equal(t, slo.DefaultMaxDetectionTime+model.Duration(2*time.Minute), o.Alerting.Page.MaxDetectionTime)
	require.Equal(t, slo.Window{Name: "fast-burn", Severity: slo.SeverityPage, Long: 41 * time.Minute, Short: 5 * time.Minute, BurnRate: 14.4, For: 2 * time.Minute}, ws[0])
	require.Equal(t, 7*time.Minute, o.DetectionTime())
	require.Equal(t, slo.Window{Name: "slow-burn", Severity: slo.SeverityTicket, Long: 72 * time.Hour, Short: 6 * time.Hour, BurnRate: 1}, ws[1])
}

// sloDoc is an SLO object with an inline indicator; spec lines replace
// the objectives and what follows.
func sloDoc(indicator string, rest ...string) string {
	return strings.Join(append([]string{
		"apiVersion: openslo/v1",
		"kind: SLO",
		"metadata:",
		"  name: checkout",
		"spec:",
		"  service: shop",
		"  indicator:",
		"    metadata: {name: errors}",
		"    spec:",
		indicator,
	}, rest...), "\n") + "\n"
}

const ratioBad = `      ratioMetric:
        counter: true
        bad: {metricSource: {type: Prometheus, spec: {query: 'orders_total{outcome="error"}'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'orders_total'}}}`

var rolling7d = []string{"  budgetingMethod: Occurrences", "  timeWindow:", "    - duration: 7d", "      isRolling: true"}

func TestImportEdgeCases(t *testing.T) {
	// good + total becomes error = total - good; targetPercent; several
	// objectives become one SLO each; no alert policy: the workbook tiers.
	doc := sloDoc(`      ratioMetric:
        counter: true
        good: {metricSource: {type: prometheus, spec: {query: 'orders_total{outcome="ok"}'}}}
        total: {metricSource: {spec: {query: 'orders_total'}}}`,
		append(rolling7d, "  objectives:", "    - targetPercent: 99.5", "    - target: 0.95")...)
	specs, err := slo.Parse([]byte(doc), "shop.yml")
	require.NoError(t, err)
	require.Len(t, specs, 1)
	require.Len(t, specs[0].SLOs, 2)
	a, b := specs[0].SLOs[0], specs[0].SLOs[1]
	require.Equal(t, "checkout-0", a.Name)
	require.Equal(t, "checkout-1", b.Name)
	require.Equal(t, 99.5, a.Objective)
	require.Equal(t, 95.0, b.Objective, "0.95 x 100 without float noise")
	require.Equal(t, "7d", a.PeriodName())
	require.Equal(t, `sum(rate(orders_total[{{.window}}])) - sum(rate(orders_total{outcome="ok"}[{{.window}}]))`, a.SLI.Events.ErrorQuery)
	require.Equal(t, `sum(rate(orders_total[{{.window}}]))`, a.SLI.Events.TotalQuery)
	require.Equal(t, slo.DefaultWindows(7*24*time.Hour, slo.SeverityPage), a.Windows()[:2])

	// Service, DataSource and AlertNotificationTarget objects are ignored.
	specs, err = slo.Parse([]byte("apiVersion: openslo/v1\nkind: Service\nmetadata: {name: shop}\nspec: {description: x}\n---\n"+
		sloDoc(ratioBad, append(rolling7d, "  objectives:", "    - target: 0.999")...)), "shop.yml")
	require.NoError(t, err)
	require.Equal(t, 99.9, specs[0].SLOs[0].Objective)
	require.Equal(t, `orders_total{outcome="error"}`, specs[0].SLOs[0].SLI.Events.ErrorSelector)
}

// Every unsupported or invalid construct is an error at the OpenSLO field
// it is about.
func TestImportErrors(t *testing.T) {
	objectives := append(append([]string{}, rolling7d...), "  objectives:", "    - target: 0.999")
	for _, c := range []struct {
		name string
		doc  string
		want string
	}{
		{"timeslices", sloDoc(ratioBad, "  budgetingMethod: Timeslices", "  timeWindow: [{duration: 7d, isRolling: true}]", "  objectives: [{target: 0.99}]"),
			`shop.yml:14:20: spec.budgetingMethod: budgeting method "Timeslices" is not supported (only Occurrences)`},
		{"calendar window", sloDoc(ratioBad, "  budgetingMethod: Occurrences", "  timeWindow:", "    - duration: 1M", "      calendar: {startTime: '2024-01-01 00:00:00', timeZone: UTC}", "  objectives: [{target: 0.99}]"),
			`shop.yml:16:7: spec.timeWindow[0]: calendar time windows are not supported (only isRolling: true)`},
		{"two windows", sloDoc(ratioBad, "  budgetingMethod: Occurrences", "  timeWindow: [{duration: 7d, isRolling: true}, {duration: 28d, isRolling: true}]", "  objectives: [{target: 0.99}]"),
			`shop.yml:15:15: spec.timeWindow: exactly one time window is supported (got 2)`},
		{"invalid duration", sloDoc(ratioBad, "  budgetingMethod: Occurrences", "  timeWindow:", "    - duration: 1 week", "      isRolling: true", "  objectives: [{target: 0.99}]"),
			`shop.yml:16:17: spec.timeWindow[0].duration: invalid duration "1 week" (use a Prometheus duration such as 7d or 28d)`},
		{"zero duration", sloDoc(ratioBad, "  budgetingMethod: Occurrences", "  timeWindow:", "    - duration: 0d", "      isRolling: true", "  objectives: [{target: 0.99}]"),
			`shop.yml:16:17: slos[0].period: period 0d must be between 1d and 366d`},
		{"objective 1.0", sloDoc(ratioBad, append(append([]string{}, rolling7d...), "  objectives:", "    - target: 1.0")...),
			`shop.yml:19:15: slos[0].objective: objective 100 leaves no error budget; it must be below 100`},
		{"period too short", sloDoc(ratioBad, "  budgetingMethod: Occurrences", "  timeWindow:", "    - duration: 1h", "      isRolling: true", "  objectives: [{target: 0.99}]"),
			`shop.yml:16:17: slos[0].period: period 1h must be between 1d and 366d`},
		{"op objective", sloDoc(ratioBad, append(append([]string{}, rolling7d...), "  objectives:", "    - {op: lte, value: 200, target: 0.99}")...),
			`shop.yml:19:7: spec.objectives[0]: only objectives with a target are supported`},
		{"threshold metric", sloDoc("      thresholdMetric: {metricSource: x}", objectives...),
			`shop.yml:10:24: spec.indicator.spec.thresholdMetric: SLI "errors": only ratioMetric is supported`},
		{"non-Prometheus source", sloDoc(`      ratioMetric:
        bad: {metricSource: {type: Datadog, spec: {query: 'x'}}}
        total: {metricSource: {type: Datadog, spec: {query: 'y'}}}`, objectives...),
			`shop.yml:11:36: spec.indicator.spec.ratioMetric.bad.metricSource.type: SLI "errors": bad: metric source "Datadog" is not supported (only Prometheus)`},
		{"not a rate", sloDoc(`      ratioMetric:
        bad: {metricSource: {spec: {query: 'sum(x)'}}}
        total: {metricSource: {spec: {query: 'y'}}}`, objectives...),
			`shop.yml:11:44: spec.indicator.spec.ratioMetric.bad.metricSource.spec.query: SLI "errors": bad: only counter selectors or rate() queries over counters are supported, e.g. sum(rate(x[5m])) (got "sum(x)")`},
		{"summed counters with offset", sloDoc(`      ratioMetric:
        counter: true
        bad: {metricSource: {spec: {query: 'sum(x offset 5m)'}}}
        total: {metricSource: {spec: {query: 'y'}}}`, objectives...),
			`shop.yml:12:44: spec.indicator.spec.ratioMetric.bad.metricSource.spec.query: SLI "errors": bad: offset and @ are not supported in "sum(x offset 5m)"`},
		{"increase", sloDoc(`      ratioMetric:
        bad: {metricSource: {spec: {query: 'sum(increase(x[1h]))'}}}
        total: {metricSource: {spec: {query: 'sum(increase(y[1h]))'}}}`, objectives...),
			`shop.yml:11:44: spec.indicator.spec.ratioMetric.bad.metricSource.spec.query: SLI "errors": bad: only rate() over counters is supported, e.g. sum(rate(x[5m])) (got "sum(increase(x[1h]))")`},
		{"offset", sloDoc(`      ratioMetric:
        good: {metricSource: {spec: {query: 'y'}}}
        total: {metricSource: {spec: {query: 'sum(rate(y[5m] offset 1h))'}}}`, objectives...),
			`shop.yml:12:46: spec.indicator.spec.ratioMetric.total.metricSource.spec.query: SLI "errors": total: offset and @ are not supported in "sum(rate(y[5m] offset 1h))"`},
		{"subquery", sloDoc(`      ratioMetric:
        bad: {metricSource: {spec: {query: 'sum(rate(x[5m]))'}}}
        total: {metricSource: {spec: {query: 'max_over_time(sum(rate(y[5m]))[1h:])'}}}`, objectives...),
			`shop.yml:12:46: spec.indicator.spec.ratioMetric.total.metricSource.spec.query: SLI "errors": total: subqueries are not supported in "max_over_time(sum(rate(y[5m]))[1h:])"`},
		{"not a vector", sloDoc(`      ratioMetric:
        bad: {metricSource: {spec: {query: 'scalar(sum(rate(x[5m])))'}}}
        total: {metricSource: {spec: {query: 'y'}}}`, objectives...),
			`shop.yml:11:44: spec.indicator.spec.ratioMetric.bad.metricSource.spec.query: SLI "errors": bad: the query must return an instant vector, not a scalar`},
		{"good and bad", sloDoc(`      ratioMetric:
        good: {metricSource: {spec: {query: 'x'}}}
        bad: {metricSource: {spec: {query: 'y'}}}
        total: {metricSource: {spec: {query: 'z'}}}`, objectives...),
			`shop.yml:11:9: spec.indicator.spec.ratioMetric: SLI "errors": ratioMetric needs total and exactly one of good and bad`},
		{"error selector drops a matcher", sloDoc(`      ratioMetric:
        bad: {metricSource: {spec: {query: 'orders_total{outcome="error"}'}}}
        total: {metricSource: {spec: {query: 'orders_total{job="shop"}'}}}`, objectives...),
			`shop.yml:11:44: slos[0].sli.events.errorSelector: must repeat every matcher of totalSelector (missing job="shop"): errors and totals would count different series`},
		{"unknown field", sloDoc(ratioBad, append(append([]string{}, objectives...), "  budget: 1")...),
			`shop.yml:20:3: spec.budget: unknown field "budget" (known fields: description, service, indicator, indicatorRef, budgetingMethod, timeWindow, objectives, alertPolicies)`},
		{"undefined indicatorRef", "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec:\n  service: shop\n  indicatorRef: nope\n  budgetingMethod: Occurrences\n  timeWindow: [{duration: 7d, isRolling: true}]\n  objectives: [{target: 0.99}]\n",
			`shop.yml:6:17: spec.indicatorRef: SLI "nope" is not defined in this file`},
		{"undefined alert policy", sloDoc(ratioBad, append(append([]string{}, objectives...), "  alertPolicies: [nope]")...),
			`shop.yml:20:19: spec.alertPolicies: AlertPolicy "nope" is not defined in this file`},
		{"unknown kind", "apiVersion: openslo/v1\nkind: Budget\nmetadata: {name: x}\nspec: {}\n",
			`shop.yml:1:1: kind: unknown OpenSLO kind "Budget"`},
		{"unknown envelope field", "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nstatus: {}\nspec: {}\n",
			`shop.yml:4:1: status: unknown field "status"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			specs, err := slo.Parse([]byte(c.doc), "shop.yml")
			require.Nil(t, specs)
			require.EqualError(t, err, c.want)
		})
	}
}

// The common Prometheus form of OpenSLO sources, per-second rates of
// counters (aggregated or not), becomes query templates: each range is the
// generator's {{.window}}.
func TestImportRateQueries(t *testing.T) {
	objectives := append(append([]string{}, rolling7d...), "  objectives:", "    - target: 0.999")
	for _, c := range []struct {
		name             string
		ratio            string
		errQuery, totalQ string
	}{
		{"bad and total", `      ratioMetric:
        counter: true
        bad: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(http_requests_total{job="web",code=~"5.."}[5m]))'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(http_requests_total{job="web"}[5m]))'}}}`,
			`sum(rate(http_requests_total{job="web",code=~"5.."}[{{.window}}]))`, `sum(rate(http_requests_total{job="web"}[{{.window}}]))`},
		{"unaggregated, ranges as written", `      ratioMetric:
        bad: {metricSource: {spec: {query: 'rate(http_requests_total{code=~"5.."}[1m]) + rate(grpc_errors_total [ 2m ])'}}}
        total: {metricSource: {spec: {query: 'rate(http_requests_total[30s])'}}}`,
			`rate(http_requests_total{code=~"5.."}[{{.window}}]) + rate(grpc_errors_total [{{.window}}])`, `rate(http_requests_total[{{.window}}])`},
		{"good query and total selector", `      ratioMetric:
        good: {metricSource: {spec: {query: 'sum by (code) (rate(orders_total{outcome="ok"}[5m]))'}}}
        total: {metricSource: {spec: {query: 'orders_total'}}}`,
			`sum(sum(rate(orders_total[{{.window}}]))) - sum(sum by (code) (rate(orders_total{outcome="ok"}[{{.window}}])))`, `sum(rate(orders_total[{{.window}}]))`},
		{"summed counters (counter: true, as OpenSLO's examples)", `      ratioMetric:
        counter: true
        good: {metricSource: {type: Prometheus, spec: {query: 'sum(http_requests_total{job="web",code!~"5.."})'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum by (code) ((http_requests_total{job="web"}))'}}}`,
			`sum(sum by (code) ((rate(http_requests_total{job="web"}[{{.window}}])))) - sum(sum(rate(http_requests_total{job="web",code!~"5.."}[{{.window}}])))`,
			`sum by (code) ((rate(http_requests_total{job="web"}[{{.window}}])))`},
		{"bad selector and total query", `      ratioMetric:
        bad: {metricSource: {spec: {query: 'orders_total{outcome="error"}'}}}
        total: {metricSource: {spec: {query: 'sum(rate(orders_total[5m]))'}}}`,
			`sum(rate(orders_total{outcome="error"}[{{.window}}]))`, `sum(rate(orders_total[{{.window}}]))`},
	} {
		t.Run(c.name, func(t *testing.T) {
			specs, err := slo.Parse([]byte(sloDoc(c.ratio, objectives...)), "shop.yml")
			require.NoError(t, err)
			e := specs[0].SLOs[0].SLI.Events
			require.Empty(t, e.ErrorSelector)
			require.Equal(t, c.errQuery, e.ErrorQuery)
			require.Equal(t, c.totalQ, e.TotalQuery)
		})
	}
}

func TestImportAlertConditions(t *testing.T) {
	policy := "---\napiVersion: openslo/v1\nkind: AlertPolicy\nmetadata: {name: burn}\nspec:\n  conditions:\n    - kind: AlertCondition\n      metadata: {name: Fast Burn}\n      spec:\n        severity: critical\n        condition: {kind: burnrate, op: gt, threshold: 10, lookbackWindow: 2h, alertAfter: 5m}\n"
	objectives := append(append([]string{}, rolling7d...), "  objectives:", "    - target: 0.999", "  alertPolicies:", "    - burn")
	specs, err := slo.Parse([]byte(sloDoc(ratioBad, objectives...)+policy), "shop.yml")
	require.NoError(t, err)
	ws := specs[0].SLOs[0].Windows()
	require.Equal(t, []slo.Window{{Name: "fast_burn", Severity: slo.SeverityPage, Long: 2 * time.Hour, Short: 10 * time.Minute, BurnRate: 10, For: 5 * time.Minute}}, ws,
		"critical pages; the short window is a twelfth; no ticket condition disables tickets")

	bad := strings.Replace(policy, "kind: burnrate", "kind: timeToBurn", 1)
	_, err = slo.Parse([]byte(sloDoc(ratioBad, objectives...)+bad), "shop.yml")
	require.EqualError(t, err, `shop.yml:31:9: AlertCondition.spec.condition.kind: condition kind "timeToBurn" is not supported (only burnrate)`)

	// A window error points at the condition's lookbackWindow, not at the
	// SLO.
	bad = strings.Replace(policy, "lookbackWindow: 2h", "lookbackWindow: 4m", 1)
	_, err = slo.Parse([]byte(sloDoc(ratioBad, objectives...)+bad), "shop.yml")
	require.EqualError(t, err, `shop.yml:32:76: slos[0].alerting.page.windows[0].shortWindow: must be shorter than longWindow`)

	// A threshold must be a finite number (NaN would switch the alert off).
	bad = strings.Replace(policy, "threshold: 10", "threshold: NaN", 1)
	_, err = slo.Parse([]byte(sloDoc(ratioBad, objectives...)+bad), "shop.yml")
	require.EqualError(t, err, `shop.yml:32:56: AlertCondition.spec.condition.threshold: NaN is not a finite number`)
}

func TestTimeslicesFixture(t *testing.T) {
	_, err := slo.LoadFile("testdata/timeslices.yml")
	require.EqualError(t, err, `testdata/timeslices.yml:23:20: spec.budgetingMethod: budgeting method "Timeslices" is not supported (only Occurrences)`)
}

// Objects are referenced by name within a file: a second SLI,
// AlertPolicy or AlertCondition of the same name is an error (the last
// one silently won).
func TestImportDuplicateNames(t *testing.T) {
	for _, kind := range []string{"SLI", "AlertPolicy", "AlertCondition"} {
		obj := "apiVersion: openslo/v1\nkind: " + kind + "\nmetadata:\n  name: dup\nspec: {}\n"
		_, err := slo.Parse([]byte(obj+"---\n"+obj), "shop.yml")
		require.EqualError(t, err, `shop.yml:10:9: metadata.name: `+kind+` "dup" is already defined at line 4`, kind)
	}
	// The same name in different kinds is fine.
	_, err := slo.Parse([]byte("apiVersion: openslo/v1\nkind: AlertPolicy\nmetadata: {name: dup}\nspec: {}\n---\napiVersion: openslo/v1\nkind: AlertCondition\nmetadata: {name: dup}\nspec: {}\n"), "shop.yml")
	require.NoError(t, err)
}
