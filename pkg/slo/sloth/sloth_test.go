package sloth_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/slo"
	_ "github.com/rootuip/sre/pkg/slo/sloth"
)

func TestImport(t *testing.T) {
	specs, err := slo.LoadFile("testdata/sloth.yml")
	require.NoError(t, err)
	require.Len(t, specs, 1)
	s := specs[0]
	require.Equal(t, "myservice", s.Service)
	require.Equal(t, "sloth prometheus/v1", s.Source)
	require.Equal(t, map[string]string{"owner": "myteam"}, s.Labels)
	require.Equal(t, 1, s.Line)
	o := s.SLOs[0]
	require.Equal(t, "requests-availability", o.Name)
	require.Equal(t, 99.9, o.Objective)
	require.Equal(t, slo.DefaultPeriod, o.Period, "Sloth has no period: 30d")
	require.Equal(t, "30d", o.PeriodName())
	require.Equal(t, "Common SLO based on availability for HTTP request responses.", o.Description)
	require.Equal(t, `sum(rate(http_request_duration_seconds_count{job="myservice",code=~"(5..|429)"}[{{.window}}]))`, o.SLI.Events.ErrorQuery,
		"{{ .window }} becomes {{.window}}")
	require.Equal(t, `sum(rate(http_request_duration_seconds_count{job="myservice"}[{{.window}}]))`, o.SLI.Events.TotalQuery)
	require.Equal(t, "https://runbooks.example.com/myservice", o.Alerting.RunbookURL)
	require.Empty(t, o.Alerting.Annotations, "runbook_url moved to runbookURL")
	require.Equal(t, map[string]string{"category": "availability"}, o.Alerting.Labels)
	require.True(t, o.Alerting.Ticket.Disabled)
	require.False(t, o.Alerting.Page.Disabled)
	require.NotContains(t, o.Alerting.Page.Labels, "severity", "severity is the tier's Severity")
	require.Equal(t, "critical", o.Alerting.Page.Severity, "Sloth's severity label is kept")
	require.Equal(t, "MyServiceHighErrorRate", o.Alerting.Name, "Sloth's alert name is kept")
	require.Equal(t, 6, o.Line)
}

// load parses a Sloth document given as lines.
func load(lines ...string) ([]*slo.Spec, error) {
	return slo.Parse([]byte(strings.Join(lines, "\n")+"\n"), "sloth.yml")
}

const header = "version: prometheus/v1\nservice: svc\nslos:\n  - name: avail"

func TestImportEdgeCases(t *testing.T) {
	// Raw SLIs and the runbook annotation.
	specs, err := load(header,
		"    objective: 99.5",
		"    sli:",
		"      raw:",
		"        error_ratio_query: sum(rate(e[{{.window}}])) / sum(rate(t[{{.window}}]))",
		"    alerting:",
		"      annotations: {runbook: https://rb/x, team_channel: '#svc'}",
		"      page_alert: {disable: true, labels: {tier: one}}",
	)
	require.NoError(t, err)
	o := specs[0].SLOs[0]
	require.Equal(t, "sum(rate(e[{{.window}}])) / sum(rate(t[{{.window}}]))", o.SLI.Raw.ErrorRatioQuery)
	require.Nil(t, o.SLI.Events)
	require.Equal(t, "https://rb/x", o.Alerting.RunbookURL)
	require.Equal(t, map[string]string{"team_channel": "#svc"}, o.Alerting.Annotations)
	require.True(t, o.Alerting.Page.Disabled)
	require.Equal(t, map[string]string{"tier": "one", "sloth_severity": "page", "sloth_id": "svc-avail", "sloth_service": "svc", "sloth_slo": "avail"},
		o.Alerting.Page.Labels, "Sloth's labels, as on Sloth's alerts")
	require.Empty(t, o.Alerting.Name, "no alerting.name: SLOBurnRatePage and SLOBurnRateTicket")
	require.Empty(t, o.Alerting.Page.Severity, "no severity label: page")

	// Several Sloth documents in one file, next to a native one.
	specs, err = slo.Parse([]byte(header+"\n    objective: 99\n    sli: {raw: {error_ratio_query: 'sum(rate(x[{{.window}}]))'}}\n"+
		"---\nversion: prometheus/v1\nservice: other\nslos:\n  - name: avail\n    objective: 99\n    sli: {raw: {error_ratio_query: 'sum(rate(x[{{.window}}]))'}}\n"+
		"---\napiVersion: sre.rootuip.io/v1\nkind: ServiceLevelObjectives\nservice: native\nslos:\n  - name: up\n    objective: 99\n    sli: {bool: {selector: up}}\n"), "mixed.yml")
	require.NoError(t, err)
	var got []string
	for _, s := range specs {
		got = append(got, s.Service+" "+s.Source)
	}
	require.ElementsMatch(t, []string{"svc sloth prometheus/v1", "other sloth prometheus/v1", "native sre.rootuip.io/v1"}, got)

	// The same SLO twice across Sloth documents.
	_, err = slo.Parse([]byte(header+"\n    objective: 99\n    sli: {raw: {error_ratio_query: 'sum(rate(x[{{.window}}]))'}}\n---\n"+
		header+"\n    objective: 99.9\n    sli: {raw: {error_ratio_query: 'sum(rate(x[{{.window}}]))'}}\n"), "twice.yml")
	require.EqualError(t, err, `twice.yml:11:11: slos[0].name: SLO "avail" of service "svc" is already defined at twice.yml:4`)
}

// Validation errors of an imported spec point at the Sloth field's own line
// and column, named with the native field path.
func TestImportErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		lines []string
		want  string
	}{
		{"objective as a fraction", []string{header,
			"    objective: 0.999",
			"    sli: {raw: {error_ratio_query: 'sum(rate(x[{{.window}}]))'}}",
		}, "sloth.yml:5:16: slos[0].objective: objective 0.999 looks like a fraction; write it as a percentage (99.9)"},
		{"objective 100", []string{header,
			"    objective: 100",
			"    sli: {raw: {error_ratio_query: 'sum(rate(x[{{.window}}]))'}}",
		}, "sloth.yml:5:16: slos[0].objective: objective 100 leaves no error budget; it must be below 100"},
		{"not a vector", []string{header,
			"    objective: 99.9",
			"    sli:",
			"      events:",
			"        error_query: scalar(sum(rate(http_requests_total{code=~\"5..\"}[{{.window}}])))",
			"        total_query: sum(rate(http_requests_total[{{.window}}]))",
		}, "sloth.yml:8:22: slos[0].sli.events.errorQuery: query must return an instant vector, not a scalar"},
		{"no window placeholder", []string{header,
			"    objective: 99.9",
			"    sli:",
			"      events:",
			"        error_query: sum(rate(http_requests_total{code=~\"5..\"}[5m]))",
			"        total_query: sum(rate(http_requests_total[{{.window}}]))",
		}, "sloth.yml:8:22: slos[0].sli.events.errorQuery: query must use the range placeholder {{.window}} (e.g. rate(x[{{.window}}]))"},
		{"invalid PromQL", []string{header,
			"    objective: 99.9",
			"    sli:",
			"      raw:",
			"        error_ratio_query: sum(rate(x[{{.window}}])",
		}, "sloth.yml:8:28: slos[0].sli.raw.errorRatioQuery: invalid PromQL: 1:16: parse error: unclosed left parenthesis"},
		{"events and raw", []string{header,
			"    objective: 99.9",
			"    sli:",
			"      raw: {error_ratio_query: 'sum(rate(x[{{.window}}]))'}",
			"      events: {error_query: 'sum(rate(e[{{.window}}]))', total_query: 'sum(rate(t[{{.window}}]))'}",
		}, "sloth.yml:7:7: slos[0].sli: exactly one of events, latency, bool or raw must be set (got 2)"},
		{"no SLI", []string{header,
			"    objective: 99.9",
		}, "sloth.yml:4:5: slos[0].sli: exactly one of events, latency, bool or raw must be set (got 0)"},
		{"plugin", []string{header,
			"    objective: 99.9",
			"    sli:",
			"      plugin: {id: sloth-common/kubernetes/apiserver/availability}",
		}, "sloth.yml:7:15: slos[0].sli.plugin: Sloth SLI plugins are not supported; use events or raw"},
		{"plugin with options", []string{header,
			"    objective: 99.9",
			"    sli:",
			"      plugin:",
			"        id: sloth-common/slok-go-http-metrics/latency",
			"        options: {filter: 'job=\"api\"', bucket: \"1\"}",
		}, "sloth.yml:8:9: slos[0].sli.plugin: Sloth SLI plugins are not supported; use events or raw"},
		{"reserved alert label", []string{header,
			"    objective: 99.9",
			"    sli: {raw: {error_ratio_query: 'sum(rate(x[{{.window}}]))'}}",
			"    alerting:",
			"      page_alert:",
			"        labels: {burn_tier: fast}",
		}, "sloth.yml:9:29: slos[0].alerting.page.labels.burn_tier: label \"burn_tier\" is reserved (set by the generator)"},
		{"reserved service label", []string{"version: prometheus/v1", "service: svc", "labels:", "  slo: x", "slos:", "  - name: a",
			"    objective: 99.9",
			"    sli: {raw: {error_ratio_query: 'sum(rate(x[{{.window}}]))'}}",
		}, "sloth.yml:4:8: labels.slo: label \"slo\" is reserved (set by the generator)"},
		{"invalid name", []string{"version: prometheus/v1", "service: my service", "slos:", "  - name: a",
			"    objective: 99.9",
			"    sli: {raw: {error_ratio_query: 'sum(rate(x[{{.window}}]))'}}",
		}, "sloth.yml:2:10: service: invalid service name \"my service\" (letters, digits, '_', '.', '-', starting with a letter or digit; at most 63 characters)"},
		{"unknown field", []string{header,
			"    objective: 99.9",
			"    period: 7d",
		}, "sloth.yml:6:5: slos[0].period: unknown field \"period\" (known fields: name, objective, description, labels, sli, alerting)"},
		{"wrong type", []string{header,
			"    objective: high",
		}, "sloth.yml:5:16: slos[0].objective: invalid number \"high\""},
		{"unsupported version", []string{"version: prometheus/v2", "service: svc"},
			"sloth.yml:1:10: version: unsupported version \"prometheus/v2\" (supported: sre.rootuip.io/v1, sloth prometheus/v1, sloth.slok.dev/v1)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			specs, err := load(c.lines...)
			require.Nil(t, specs)
			require.EqualError(t, err, c.want)
		})
	}
}

func TestObjectiveFractionFixture(t *testing.T) {
	_, err := slo.LoadFile("testdata/objective-fraction.yml")
	require.EqualError(t, err, "testdata/objective-fraction.yml:5:16: slos[0].objective: objective 0.999 looks like a fraction; write it as a percentage (99.9)")
}

// Sloth's Kubernetes object (sloth.slok.dev/v1 PrometheusServiceLevel)
// imports as its prometheus/v1 spec does.
func TestImportCRD(t *testing.T) {
	specs, err := slo.LoadFile("testdata/crd.yml")
	require.NoError(t, err)
	require.Len(t, specs, 1)
	s := specs[0]
	require.Equal(t, "myservice", s.Service)
	require.Equal(t, "sloth.slok.dev/v1 PrometheusServiceLevel", s.Source)
	require.Equal(t, map[string]string{"owner": "myteam"}, s.Labels)
	require.Equal(t, 2, s.Line)
	require.Len(t, s.SLOs, 2)
	o := s.SLOs[0]
	require.Equal(t, "requests-availability", o.Name)
	require.Equal(t, 99.9, o.Objective)
	require.Equal(t, slo.DefaultPeriod, o.Period)
	require.Equal(t, `sum(rate(http_request_duration_seconds_count{job="myservice",code=~"(5..|429)"}[{{.window}}]))`, o.SLI.Events.ErrorQuery)
	require.Equal(t, `sum(rate(http_request_duration_seconds_count{job="myservice"}[{{.window}}]))`, o.SLI.Events.TotalQuery)
	require.Equal(t, "https://runbooks.example.com/myservice", o.Alerting.RunbookURL)
	require.Equal(t, map[string]string{"category": "availability"}, o.Alerting.Labels)
	require.True(t, o.Alerting.Ticket.Disabled)
	require.False(t, o.Alerting.Page.Disabled)
	require.NotContains(t, o.Alerting.Page.Labels, "severity")
	require.Equal(t, "critical", o.Alerting.Page.Severity)
	require.Equal(t, "MyServiceHighErrorRate", o.Alerting.Name)
	require.Equal(t, []string{`testdata/crd.yml:29:23: slos[0].alerting.pageAlert.labels.severity: SLO myservice/requests-availability: the page alerts keep severity "critical", as Sloth's do, instead of severity="page" (they also carry sloth_severity="page"): sred maps "critical" to an incident severity through severity_map (a value not in it gets the default severity), and srectl generate --inhibit-rules gives this SLO an inhibit rule of its own, matching its pages by burn_tier`},
		warnings(s), "the field is named as in the object")
	require.Equal(t, 14, o.Line)
	require.Equal(t, "sum(rate(e[{{.window}}])) / sum(rate(t[{{.window}}]))", s.SLOs[1].SLI.Raw.ErrorRatioQuery)
}

func TestImportCRDErrors(t *testing.T) {
	const head = "apiVersion: sloth.slok.dev/v1\nkind: PrometheusServiceLevel\nmetadata: {name: x}\nspec:\n  service: svc\n  slos:\n    - name: avail"
	for _, tc := range []struct {
		name  string
		lines []string
		want  string
	}{
		{"fraction objective", []string{head,
			"      objective: 0.999",
			"      sli: {raw: {errorRatioQuery: 'sum(rate(x[{{.window}}]))'}}",
		}, "sloth.yml:8:18: slos[0].objective: objective 0.999 looks like a fraction; write it as a percentage (99.9)"},
		{"snake_case field", []string{head,
			"      objective: 99.9",
			"      sli: {raw: {error_ratio_query: 'sum(rate(x[{{.window}}]))'}}",
		}, "sloth.yml:9:19: spec.slos[0].sli.raw.error_ratio_query: unknown field \"error_ratio_query\" (known fields: errorRatioQuery)"},
		{"page alert label", []string{head,
			"      objective: 99.9",
			"      sli: {raw: {errorRatioQuery: 'sum(rate(x[{{.window}}]))'}}",
			"      alerting: {pageAlert: {labels: {burn_tier: fast}}}",
		}, "sloth.yml:10:50: slos[0].alerting.page.labels.burn_tier: label \"burn_tier\" is reserved (set by the generator)"},
		{"plugin", []string{head,
			"      objective: 99.9",
			"      sli: {plugin: {id: x, options: {a: b}}}",
		}, "sloth.yml:9:21: slos[0].sli.plugin: Sloth SLI plugins are not supported; use events or raw"},
		{"kind", []string{"apiVersion: sloth.slok.dev/v1\nkind: PrometheusServiceLevels\nspec: {service: svc}"},
			"sloth.yml:2:7: kind: unsupported kind \"PrometheusServiceLevels\" (want PrometheusServiceLevel)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(tc.lines...)
			require.EqualError(t, err, tc.want)
		})
	}
}

func warnings(s *slo.Spec) []string {
	var out []string
	for _, w := range s.Warnings {
		out = append(out, w.Error())
	}
	return out
}

// A severity label of page_alert or ticket_alert is kept on the alerts, as
// Sloth keeps it; one other than page or ticket warns, naming the file, the
// field and the SLO. page and ticket, a disabled tier and no label do not.
func TestImportSeverityWarnings(t *testing.T) {
	sli := "    objective: 99.9\n    sli: {raw: {error_ratio_query: 'sum(rate(x[{{.window}}]))'}}"
	for _, tc := range []struct {
		name     string
		alerting string
		page     string
		ticket   string
		want     []string
	}{
		{"none", "", "", "", nil},
		{"page and ticket", "{page_alert: {labels: {severity: page}}, ticket_alert: {labels: {severity: ticket}}}", "page", "ticket", nil},
		{"page tier", "{page_alert: {labels: {severity: pageteam}}}", "pageteam", "", []string{
			`sloth.yml:7:48: slos[0].alerting.page_alert.labels.severity: SLO svc/avail: the page alerts keep severity "pageteam", as Sloth's do, instead of severity="page" (they also carry sloth_severity="page"): sred maps "pageteam" to an incident severity through severity_map (a value not in it gets the default severity), and srectl generate --inhibit-rules gives this SLO an inhibit rule of its own, matching its pages by burn_tier`}},
		{"ticket tier", "{ticket_alert: {labels: {severity: slack}}}", "", "slack", []string{
			`sloth.yml:7:50: slos[0].alerting.ticket_alert.labels.severity: SLO svc/avail: the ticket alerts keep severity "slack", as Sloth's do, instead of severity="ticket" (they also carry sloth_severity="ticket"): sred maps "slack" to an incident severity through severity_map (a value not in it gets the default severity)`}},
		{"ticket tier page", "{ticket_alert: {labels: {severity: page}}}", "", "page", []string{
			`sloth.yml:7:50: slos[0].alerting.ticket_alert.labels.severity: SLO svc/avail: the ticket alerts keep severity "page", as Sloth's do, instead of severity="ticket" (they also carry sloth_severity="ticket"): sred maps "page" to an incident severity through severity_map (a value not in it gets the default severity), and srectl generate --inhibit-rules gives this SLO an inhibit rule of its own, matching its pages by burn_tier, and leaves its tickets out of the rule matching pages by severity="page"`}},
		{"ticket tier page, no page tier", "{page_alert: {disable: true}, ticket_alert: {labels: {severity: page}}}", "", "page", []string{
			`sloth.yml:7:79: slos[0].alerting.ticket_alert.labels.severity: SLO svc/avail: the ticket alerts keep severity "page", as Sloth's do, instead of severity="ticket" (they also carry sloth_severity="ticket"): sred maps "page" to an incident severity through severity_map (a value not in it gets the default severity), and srectl generate --inhibit-rules leaves its tickets out of the rule matching pages by severity="page"`}},
		{"disabled tier", "{ticket_alert: {disable: true, labels: {severity: slack}}}", "", "slack", nil},
		{"both tiers", "{labels: {severity: critical}, ticket_alert: {labels: {severity: ticket}}}", "critical", "ticket", []string{
			`sloth.yml:7:35: slos[0].alerting.labels.severity: SLO svc/avail: the page alerts keep severity "critical", as Sloth's do, instead of severity="page" (they also carry sloth_severity="page"): sred maps "critical" to an incident severity through severity_map (a value not in it gets the default severity), and srectl generate --inhibit-rules gives this SLO an inhibit rule of its own, matching its pages by burn_tier`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := []string{header, sli}
			if tc.alerting != "" {
				lines = append(lines, "    alerting: "+tc.alerting)
			}
			specs, err := load(lines...)
			require.NoError(t, err)
			o := specs[0].SLOs[0]
			require.Equal(t, tc.page, o.Alerting.Page.Severity)
			require.Equal(t, tc.ticket, o.Alerting.Ticket.Severity)
			require.Equal(t, tc.want, warnings(specs[0]))
		})
	}
}
