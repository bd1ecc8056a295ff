package pyrra_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/rulegen"
	"github.com/rootuip/sre/pkg/slo"
	_ "github.com/rootuip/sre/pkg/slo/pyrra"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// Golden pairs: Pyrra objects in testdata/X.yml compile to the rules in
// testdata/X.rules.yml.
func TestGolden(t *testing.T) {
	for _, name := range []string{"pyrra", "list"} {
		t.Run(name, func(t *testing.T) {
			specs, err := slo.LoadFile(filepath.Join("testdata", name+".yml"))
			require.NoError(t, err)
			files, err := rulegen.Generate(specs)
			require.NoError(t, err)
			var got bytes.Buffer
			for _, f := range files {
				b, err := f.Marshal()
				require.NoError(t, err)
				got.Write(b)
			}
			golden := filepath.Join("testdata", name+".rules.yml")
			if *update {
				require.NoError(t, os.WriteFile(golden, got.Bytes(), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./pkg/slo/pyrra -update")
			require.Equal(t, string(want), got.String())
		})
	}
}

func TestImport(t *testing.T) {
	specs, err := slo.LoadFile("testdata/pyrra.yml")
	require.NoError(t, err)
	type sloOf struct{ service, slo string }
	got := map[sloOf]*slo.SLO{}
	var order []sloOf
	for _, s := range specs {
		require.Equal(t, "pyrra.dev/v1alpha1 ServiceLevelObjective", s.Source)
		for i := range s.SLOs {
			k := sloOf{s.Service, s.SLOs[i].Name}
			got[k] = &s.SLOs[i]
			order = append(order, k)
		}
	}
	// The service: the namespace, app.kubernetes.io/name, pyrra.dev/service;
	// the two SLOs of service pyrra share one spec.
	require.Equal(t, []sloOf{{"monitoring", "thanos-store-errors"}, {"caddy", "caddy-response-latency"}, {"pyrra", "connect-latency"}, {"pyrra", "probe-success"}}, order)
	require.Len(t, specs, 3)

	for _, c := range []struct {
		name  string
		slo   sloOf
		check func(t *testing.T, o *slo.SLO)
	}{
		{"ratio", sloOf{"monitoring", "thanos-store-errors"}, func(t *testing.T, o *slo.SLO) {
			require.Equal(t, 99.5, o.Objective)
			require.Equal(t, model.Duration(28*24*time.Hour), o.Period)
			require.Equal(t, "4w", o.PeriodName(), "the window keeps its spelling")
			require.Equal(t, "Thanos Store serves Series requests without errors.", o.Description)
			require.Equal(t, &slo.EventsSLI{
				ErrorSelector: `grpc_server_handled_total{job="thanos-store",grpc_method="Series",grpc_code=~"Aborted|Unavailable|Internal|Unknown|Unimplemented|DataLoss"}`,
				TotalSelector: `grpc_server_handled_total{job="thanos-store",grpc_method="Series"}`,
			}, o.SLI.Events)
			require.Equal(t, []string{"grpc_service"}, o.GroupBy)
			require.Equal(t, map[string]string{"team": "storage"}, o.Labels, "only pyrra.dev/ labels, without the prefix")
			require.Equal(t, "ThanosStoreErrorBudgetBurn", o.Alerting.Name, "alerting.name names both tiers' alerts, as in Pyrra")
			require.Equal(t, "https://runbooks.example.com/thanos-store", o.Alerting.RunbookURL)
			require.Equal(t, map[string]string{"dashboard": "https://grafana.example.com/d/thanos"}, o.Alerting.Annotations)
			require.False(t, o.Alerting.Page.Disabled)
			require.Empty(t, o.Alerting.Page.Windows, "the workbook's windows")
		}},
		{"latency", sloOf{"caddy", "caddy-response-latency"}, func(t *testing.T, o *slo.SLO) {
			require.Equal(t, 90.0, o.Objective)
			require.Equal(t, &slo.LatencySLI{Histogram: `caddy_http_response_duration_seconds{code!~"5..",handler="subroute",job="caddy"}`, Threshold: 0.05}, o.SLI.Latency)
			require.Nil(t, o.Labels)
			// 14.4x a 10% budget is an error ratio of 1.44: never fires.
			require.Len(t, o.Alerting.Page.Windows, 1)
			w := o.Alerting.Page.Windows[0]
			require.Equal(t, "page_slow", w.Name)
			require.Equal(t, model.Duration(2*time.Hour+48*time.Minute), w.LongWindow)
			require.Equal(t, model.Duration(14*time.Minute), w.ShortWindow)
			require.Equal(t, 6.0, w.BurnRate)
			require.Empty(t, o.Alerting.Ticket.Windows)
			var names []string
			for _, w := range o.Windows() {
				names = append(names, w.Name)
			}
			require.Equal(t, []string{"page_slow", "ticket_fast", "ticket_slow"}, names)
		}},
		{"latencyNative", sloOf{"pyrra", "connect-latency"}, func(t *testing.T, o *slo.SLO) {
			require.Equal(t, &slo.LatencySLI{Histogram: `connect_server_requests_duration_seconds{job="pyrra",code="ok"}`, Threshold: 0.2, Native: true}, o.SLI.Latency)
			require.Equal(t, []string{"method"}, o.GroupBy)
			require.Equal(t, "7d", o.PeriodName())
		}},
		{"bool_gauge, burnrates: false", sloOf{"pyrra", "probe-success"}, func(t *testing.T, o *slo.SLO) {
			require.Equal(t, &slo.BoolSLI{Selector: `probe_success{job="blackbox"}`}, o.SLI.Bool)
			require.True(t, o.Alerting.Page.Disabled)
			require.True(t, o.Alerting.Ticket.Disabled)
			require.True(t, o.Alerting.Budget.Disabled)
			require.Empty(t, o.Windows())
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := got[c.slo]
			require.NotNil(t, o, "%v not imported", c.slo)
			c.check(t, o)
		})
	}
}

// A Kubernetes List, as kubectl get -o yaml prints it (server-side
// metadata and status included), and Pyrra's own list kind.
func TestList(t *testing.T) {
	specs, err := slo.LoadFile("testdata/list.yml")
	require.NoError(t, err)
	require.Len(t, specs, 1)
	require.Equal(t, "kube-system", specs[0].Service)
	require.Len(t, specs[0].SLOs, 2)
	require.Equal(t, "coredns-response-errors", specs[0].SLOs[0].Name)
	require.Equal(t, 99.99, specs[0].SLOs[0].Objective)
	require.Equal(t, "apiserver-read-latency", specs[0].SLOs[1].Name)
	require.Equal(t, slo.Threshold(5), specs[0].SLOs[1].SLI.Latency.Threshold)

	b, err := os.ReadFile("testdata/list.yml")
	require.NoError(t, err)
	own := strings.Replace(string(b), "apiVersion: v1\nkind: List", "apiVersion: pyrra.dev/v1alpha1\nkind: ServiceLevelObjectiveList", 1)
	require.NotEqual(t, string(b), own)
	specs, err = slo.Parse([]byte(own), "list.yml")
	require.NoError(t, err)
	require.Len(t, specs[0].SLOs, 2)

	for _, c := range []struct{ name, in, want string }{
		// Generating nothing would remove every rule file, as for an empty file.
		{"empty", "apiVersion: pyrra.dev/v1alpha1\nkind: ServiceLevelObjectiveList\nitems: []\n",
			"list.yml:3:8: items: no ServiceLevelObjective in the list"},
		{"another object in the list", "apiVersion: v1\nkind: List\nitems:\n" +
			"  - {apiVersion: pyrra.dev/v1alpha1, kind: ServiceLevelObjective, metadata: {name: a, namespace: web}, spec: {target: '99', window: 28d, indicator: {bool_gauge: {metric: up}}}}\n" +
			"  - {apiVersion: sloth.slok.dev/v1, kind: PrometheusServiceLevel, metadata: {name: b}, spec: {service: x, slos: []}}\n",
			"list.yml:5:43: items[1].kind: unsupported object sloth.slok.dev/v1 PrometheusServiceLevel (want pyrra.dev/v1alpha1 ServiceLevelObjective)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := slo.Parse([]byte(c.in), "list.yml")
			require.EqualError(t, err, c.want)
		})
	}
}

const base = `apiVersion: pyrra.dev/v1alpha1
kind: ServiceLevelObjective
metadata:
  name: errors
  namespace: web
spec:
  target: "99.5"
  window: 28d
  indicator:
    ratio:
      errors: {metric: 'http_requests_total{job="web",code=~"5.."}'}
      total: {metric: 'http_requests_total{job="web"}'}
`

// doc is base with each old text replaced by the new one.
func doc(t *testing.T, pairs ...string) string {
	t.Helper()
	s := base
	for i := 0; i+1 < len(pairs); i += 2 {
		require.Contains(t, s, pairs[i])
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

const latency = `    latency:
      success: {metric: 'http_request_duration_seconds_bucket{job="web",le="0.3"}'}
      total: {metric: 'http_request_duration_seconds_count{job="web"}'}
`

const ratio = `    ratio:
      errors: {metric: 'http_requests_total{job="web",code=~"5.."}'}
      total: {metric: 'http_requests_total{job="web"}'}
`

// Every Pyrra feature the model cannot express is refused at its field.
func TestRefusals(t *testing.T) {
	for _, c := range []struct {
		name string
		doc  []string // replacements in base
		want string
	}{
		{"target as a fraction", []string{`"99.5"`, `"0.995"`},
			`pyrra.yml:7:11: spec.target: target "0.995" is a fraction, but Pyrra's target is a percentage (Pyrra only warns, and its alerts never fire): write "99.5"`},
		{"target not a number", []string{`"99.5"`, `"high"`},
			`pyrra.yml:7:11: spec.target: target "high" is not a number (write a percentage such as "99.5")`},
		{"target NaN", []string{`"99.5"`, `"NaN"`},
			`pyrra.yml:7:11: spec.target: target "NaN" is not a number (write a percentage such as "99.5")`},
		{"target missing", []string{"  target: \"99.5\"\n", ""},
			`pyrra.yml:7:3: spec.target: missing target (a percentage such as "99.5")`},
		{"target 100", []string{`"99.5"`, `"100"`},
			`pyrra.yml:7:11: slos[0].objective: objective 100 leaves no error budget; it must be below 100`},
		{"window missing", []string{"  window: 28d\n", ""},
			`pyrra.yml:7:3: spec.window: missing window (a Prometheus duration such as 28d)`},
		{"window invalid", []string{"28d", "a month"},
			`pyrra.yml:8:11: spec.window: invalid window "a month" (use a Prometheus duration such as 7d, 4w or 28d)`},
		{"window too short", []string{"28d", "1h"},
			`pyrra.yml:8:11: slos[0].period: period 1h must be between 1d and 366d`},
		{"no service", []string{"  namespace: web\n", ""},
			`pyrra.yml:4:3: metadata: no service: set the label pyrra.dev/service (or app.kubernetes.io/name), or metadata.namespace`},
		{"no name", []string{"  name: errors\n", ""},
			`pyrra.yml:4:3: metadata.name: missing metadata.name (the SLO's name)`},
		{"two indicators", []string{ratio, ratio + latency},
			`pyrra.yml:10:5: spec.indicator: exactly one of ratio, latency, latencyNative and bool_gauge is needed (got 2)`},
		{"boolGauge spelled in camelCase", []string{ratio, "    boolGauge: {metric: up}\n"},
			`pyrra.yml:10:5: spec.indicator.boolGauge: unknown field "boolGauge" (known fields: ratio, latency, latencyNative, bool_gauge)`},
		{"unknown spec field", []string{"  window: 28d\n", "  window: 28d\n  windows: 7d\n"},
			`pyrra.yml:9:3: spec.windows: unknown field "windows" (known fields: description, target, window, indicator, alerting, partial_response_strategy, performanceOverAccuracy, ruleOutput)`},
		{"ratio error selector drops a matcher", []string{`{job="web",code=~"5.."}`, `{code=~"5.."}`},
			`pyrra.yml:11:24: slos[0].sli.events.errorSelector: must repeat every matcher of totalSelector (missing job="web"): errors and totals would count different series`},
		{"grouping label also a label", []string{"  namespace: web\n", "  namespace: web\n  labels: {pyrra.dev/job: web}\n", "'}\n", "'}\n      grouping: [job]\n"},
			`pyrra.yml:6:27: slos[0].labels.job: label "job" is in groupBy: a fixed value would give every group the same labels (duplicate series)`},
		{"latency success without le", []string{ratio, latency, `,le="0.3"`, ``},
			`pyrra.yml:11:25: spec.indicator.latency.success.metric: success metric needs a matcher le="<latency>" choosing the bucket (e.g. le="0.5")`},
		{"latency le not a number", []string{ratio, latency, `le="0.3"`, `le="fast"`},
			`pyrra.yml:11:25: spec.indicator.latency.success.metric: le="fast" is not a positive finite bucket bound`},
		{"latency le +Inf", []string{ratio, latency, `le="0.3"`, `le="+Inf"`},
			`pyrra.yml:11:25: spec.indicator.latency.success.metric: le="+Inf" is not a positive finite bucket bound`},
		{"latency success selects other series", []string{ratio, latency, `{job="web",le="0.3"}`, `{job="web",code=~"5..",le="0.3"}`},
			`pyrra.yml:11:25: spec.indicator.latency.success.metric: success and total metrics must select the same series apart from le (success has code=~"5.."): good and total events would count different requests`},
		{"latency total selects other series", []string{ratio, latency, `_count{job="web"}`, `_count{job="web",code="200"}`},
			`pyrra.yml:11:25: spec.indicator.latency.success.metric: success and total metrics must select the same series apart from le (total has code="200"): good and total events would count different requests`},
		{"latency total not a _count", []string{ratio, latency, `_count{`, `_sum{`},
			`pyrra.yml:12:23: spec.indicator.latency.total.metric: total metric http_request_duration_seconds_sum is not a histogram's _count series`},
		{"latency success of another histogram", []string{ratio, latency, `http_request_duration_seconds_bucket`, `rpc_duration_seconds_bucket`},
			`pyrra.yml:11:25: spec.indicator.latency.success.metric: success metric rpc_duration_seconds_bucket is not the _bucket series of http_request_duration_seconds (want http_request_duration_seconds_bucket)`},
		{"latency success not a selector", []string{ratio, latency, `'http_request_duration_seconds_bucket{job="web",le="0.3"}'`, `'sum(http_request_duration_seconds_bucket{le="0.3"})'`},
			`pyrra.yml:11:25: spec.indicator.latency.success.metric: "sum(http_request_duration_seconds_bucket{le=\"0.3\"})" is not a selector with a metric name (e.g. x_bucket{job="api",le="0.5"})`},
		{"native latency in milliseconds", []string{ratio, "    latencyNative:\n      latency: 300ms\n      total: {metric: 'istio_request_duration_milliseconds{job=\"web\"}'}\n"},
			`pyrra.yml:11:16: spec.indicator.latencyNative.latency: latency 300ms is read as 0.3 seconds, but histogram istio_request_duration_milliseconds is in milliseconds: write this SLO in the sre.rootuip.io/v1 format with the threshold in milliseconds`},
		{"native latency not a duration", []string{ratio, "    latencyNative:\n      latency: fast\n      total: {metric: 'rpc_duration_seconds'}\n"},
			`pyrra.yml:11:16: spec.indicator.latencyNative.latency: invalid latency "fast" (a Prometheus duration such as 200ms)`},
		{"absent alerts", []string{"  window: 28d\n", "  window: 28d\n  alerting: {absent: true}\n"},
			`pyrra.yml:9:22: spec.alerting.absent: absent alerts are not generated (they fire on idle services): remove absent, or set it to false`},
		{"absent name", []string{"  window: 28d\n", "  window: 28d\n  alerting: {absent: false, absentName: WebAbsent}\n"},
			`pyrra.yml:9:41: spec.alerting.absentName: absent alerts are not generated: remove absentName`},
		{"severities", []string{"  window: 28d\n", "  window: 28d\n  alerting:\n    severities: {fastBurn: critical}\n"},
			`pyrra.yml:10:28: spec.alerting.severities.fastBurn: alert severities are fixed: page for the fast burn rates, ticket for the slow ones, warning for the consumed budget: remove severities.fastBurn`},
		{"partial response warn", []string{"  window: 28d\n", "  window: 28d\n  partial_response_strategy: warn\n"},
			`pyrra.yml:9:30: spec.partial_response_strategy: partial_response_strategy "warn" is not supported: generated rule groups have none (Thanos Ruler aborts on partial responses)`},
		{"ruleOutput", []string{"  window: 28d\n", "  window: 28d\n  ruleOutput: {enableDescriptionAsLabel: true}\n"},
			`pyrra.yml:9:15: spec.ruleOutput: ruleOutput is not supported: labels of the PrometheusRule objects are set with srectl generate --prometheus-rule.label, and a description never becomes a label`},
		{"other kind", []string{"kind: ServiceLevelObjective", "kind: Objective"},
			`pyrra.yml:2:7: kind: unsupported object pyrra.dev/v1alpha1 Objective (want pyrra.dev/v1alpha1 ServiceLevelObjective)`},
		{"reserved label", []string{"  namespace: web\n", "  namespace: web\n  labels: {pyrra.dev/severity: high}\n"},
			`pyrra.yml:6:32: slos[0].labels.severity: label "severity" is reserved (set by the generator)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := slo.Parse([]byte(doc(t, c.doc...)), "pyrra.yml")
			require.Error(t, err)
			require.Equal(t, c.want, err.Error())
		})
	}
}

// Accepted as Pyrra writes them: the defaults spelled out, a target as a
// plain number, performanceOverAccuracy, status, and the same SLO name in
// two services.
func TestAccepted(t *testing.T) {
	for _, c := range []struct {
		name  string
		doc   []string
		check func(t *testing.T, specs []*slo.Spec)
	}{
		{"defaults spelled out", []string{"  window: 28d\n", "  window: 28d\n  alerting: {disabled: false, burnrates: true, absent: false}\n  partial_response_strategy: abort\n  performanceOverAccuracy: true\n"},
			func(t *testing.T, specs []*slo.Spec) {
				o := specs[0].SLOs[0]
				require.False(t, o.Alerting.Page.Disabled)
				require.False(t, o.Alerting.Ticket.Disabled)
				require.False(t, o.Alerting.Budget.Disabled)
				require.Len(t, o.Windows(), 4)
			}},
		{"disabled", []string{"  window: 28d\n", "  window: 28d\n  alerting: {disabled: true}\n"},
			func(t *testing.T, specs []*slo.Spec) {
				o := specs[0].SLOs[0]
				require.True(t, o.Alerting.Page.Disabled && o.Alerting.Ticket.Disabled && o.Alerting.Budget.Disabled)
			}},
		{"alert name", []string{"  window: 28d\n", "  window: 28d\n  alerting: {name: WebErrorBudgetBurn}\n"},
			func(t *testing.T, specs []*slo.Spec) {
				o := &specs[0].SLOs[0]
				require.Equal(t, "WebErrorBudgetBurn", o.Alerting.Name)
				files, err := rulegen.Generate(specs)
				require.NoError(t, err)
				alerts := map[string][]string{}
				for _, r := range files[0].Groups[0].Rules {
					if r.Alert != "" {
						alerts[r.Labels["severity"]] = append(alerts[r.Labels["severity"]], r.Alert)
					}
				}
				require.Equal(t, map[string][]string{
					"page":    {"WebErrorBudgetBurn", "WebErrorBudgetBurn"},
					"ticket":  {"WebErrorBudgetBurn", "WebErrorBudgetBurn"},
					"warning": {"SLOErrorBudgetConsumed"},
				}, alerts, "both tiers named after it, as Pyrra names its burn-rate alerts; the budget alert keeps its name")
			}},
		{"alert name with burnrates: false", []string{"  window: 28d\n", "  window: 28d\n  alerting: {name: WebErrorBudgetBurn, burnrates: false}\n"},
			func(t *testing.T, specs []*slo.Spec) { require.Empty(t, specs[0].SLOs[0].Windows()) }},
		{"target as a number", []string{`"99.5"`, `99.5`},
			func(t *testing.T, specs []*slo.Spec) { require.Equal(t, 99.5, specs[0].SLOs[0].Objective) }},
		{"status", []string{"", "status: {type: PrometheusRule}\n"},
			func(t *testing.T, specs []*slo.Spec) { require.Equal(t, "web", specs[0].Service) }},
		{"app.kubernetes.io/name before the namespace", []string{"  namespace: web\n", "  namespace: web\n  labels: {app.kubernetes.io/name: shop}\n"},
			func(t *testing.T, specs []*slo.Spec) { require.Equal(t, "shop", specs[0].Service) }},
		{"runbook_url before runbook", []string{"  namespace: web\n", "  namespace: web\n  annotations: {pyrra.dev/runbook_url: https://rb/new, pyrra.dev/runbook: https://rb/old}\n"},
			func(t *testing.T, specs []*slo.Spec) {
				require.Equal(t, "https://rb/new", specs[0].SLOs[0].Alerting.RunbookURL)
				require.Empty(t, specs[0].SLOs[0].Alerting.Annotations)
			}},
		{"pyrra.dev/service first, and not a label", []string{"  namespace: web\n", "  namespace: web\n  labels: {app.kubernetes.io/name: shop, pyrra.dev/service: cart}\n"},
			func(t *testing.T, specs []*slo.Spec) {
				require.Equal(t, "cart", specs[0].Service)
				require.Empty(t, specs[0].SLOs[0].Labels)
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := base
			if c.doc[0] == "" {
				in += c.doc[1]
			} else {
				in = doc(t, c.doc...)
			}
			specs, err := slo.Parse([]byte(in), "pyrra.yml")
			require.NoError(t, err)
			require.Len(t, specs, 1)
			c.check(t, specs)
		})
	}

	// The same name in two namespaces: two services. In one, an error.
	two := base + "---\n" + strings.Replace(base, "namespace: web", "namespace: shop", 1)
	specs, err := slo.Parse([]byte(two), "pyrra.yml")
	require.NoError(t, err)
	require.Len(t, specs, 2)
	_, err = slo.Parse([]byte(base+"---\n"+base), "pyrra.yml")
	require.EqualError(t, err, `pyrra.yml:17:9: slos[1].name: duplicate SLO name "errors" (also slos[0])`)
}
