package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
)

// quantile is the PromQL of a quantile of an incident duration histogram
// over the dashboard range, by severity.
func quantile(phi, histogram string) string {
	return `histogram_quantile(` + phi + `, sum by (severity, le) (max by (service, severity, le) (increase(` +
		histogram + `_bucket{service=~"$service"}[$__range]))))`
}

// Resolved and post-mortem counts of CRITICAL and HIGH incidents, per series.
const (
	resolvedSev1    = `max by (service, severity) (sre_incident_time_to_resolve_seconds_count{severity=~"CRITICAL|HIGH", service=~"$service"})`
	postmortemsSev1 = `max by (service, severity) (sre_incident_postmortems_completed_total{severity=~"CRITICAL|HIGH", service=~"$service"})`
)

// chaosFaultsActive is 1 per experiment and service while one of its faults
// is injected.
const chaosFaultsActive = `max by (experiment, service) (sre_chaos_fault_active{service=~"$service"}) > 0`

// chaosAnnotation marks on every panel the time ranges in which a chaos
// experiment had faults injected (contiguous samples become one region).
func chaosAnnotation() *dashboard.AnnotationQueryBuilder {
	return dashboard.NewAnnotationQueryBuilder().
		Name("Chaos experiments").
		Datasource(datasource).
		Enable(true).
		IconColor("orange").
		Expr(chaosFaultsActive).
		Step("30s").
		TitleFormat("chaos {{experiment}}").
		TextFormat("faults injected on {{service}}").
		TagKeys("experiment,service").
		Target(prometheus.NewDataqueryBuilder().Datasource(datasource).Expr(chaosFaultsActive).RefId("Anno"))
}

// engineeringServices selects a series of every service the engineering
// dashboard has figures of: its SLOs (slo:info), its incidents (the stored
// incidents counter, which keeps a service's series once it had one) and
// its chaos experiments. A service with incidents but no SLO is listed too;
// the zero series without a service are not.
var engineeringServices = `{__name__=~"` + sloInfo + `|sre_incidents_stored_total|sre_chaos_resilience_score", service!=""}`

// engineering is for the engineers improving reliability: detailed SLI/SLO
// metrics, performance trends and incident analysis.
func engineering() *dashboard.DashboardBuilder {
	return base("rootuip-sre-engineering", "SRE / Engineering",
		"Detailed SLI/SLO metrics, performance trends and incident analysis.").
		Time("now-7d", "now").
		Annotation(chaosAnnotation()).
		WithVariable(labelVariable("service", "Service", `label_values(`+engineeringServices+`, service)`).
			Multi(true).IncludeAll(true).AllValue(".*")).
		WithRow(dashboard.NewRowBuilder("SLI / SLO detail")).
		WithPanel(newTable(panelSpec{
			title:       "SLO catalogue",
			description: "Every SLO the rules define, with its objective, period and SLI kind.",
			width:       12, height: 8,
			queries: []query{instant(`max by (service, slo, objective, period, sli_kind) (`+sloInfo+`{service=~"$service"})`, "")},
		})).
		WithPanel(newTable(panelSpec{
			title:       "Error ratio per window",
			description: "Error ratio of each SLO over every window the rules record.",
			unit:        "percentunit", width: 12, height: 8,
			queries: []query{instant(`max by (__name__, service, slo) (`+errorRatioAny+`, service=~"$service"})`, "")},
		})).
		WithPanel(newTimeseries(panelSpec{
			title:       "Bad events per second",
			description: "Rate of bad events of each SLO, recorded over 5m.",
			unit:        "reqps", width: 12, height: 8,
			queries: []query{q(`sum by (service, slo) (`+sliErrorEvents+`{service=~"$service"})`, "{{service}} / {{slo}}")},
			min:     f(0),
		})).
		WithPanel(newTimeseries(panelSpec{
			title:       "All events per second",
			description: "Rate of all events of each SLO, recorded over 5m.",
			unit:        "reqps", width: 12, height: 8,
			queries: []query{q(`sum by (service, slo) (`+sliTotalEvents+`{service=~"$service"})`, "{{service}} / {{slo}}")},
			min:     f(0),
		})).
		WithRow(dashboard.NewRowBuilder("Performance trends")).
		WithPanel(newTimeseries(panelSpec{
			title:       "Error ratio (1d) by SLO",
			description: "Daily error ratio trend against each SLO's error budget (dashed).",
			unit:        "percentunit", width: 12, height: 8,
			queries: []query{
				q(`max by (service, slo) (`+errorRatio1d+`{service=~"$service"})`, "{{service}} / {{slo}}"),
				q(`max by (service, slo) (`+errorBudget+`{service=~"$service"})`, "budget {{service}} / {{slo}}"),
			},
			min: f(0),
		})).
		WithPanel(newTimeseries(panelSpec{
			title:       "Burn rate (6h) by SLO",
			description: "Six-hour burn rate: 6 pages, 1 spends the budget exactly over the period.",
			width:       12, height: 8,
			queries:    []query{q(`max by (service, slo) (`+burnRate6h+`{service=~"$service"})`, "{{service}} / {{slo}}")},
			thresholds: thresholds("green", step{1, "yellow"}, step{6, "red"}),
			min:        f(0),
		})).
		WithPanel(newTimeseries(panelSpec{
			title:       "Error budget remaining",
			description: "Remaining error budget of each SLO over time.",
			unit:        "percentunit", width: 24, height: 8,
			queries:    []query{q(`min by (service, slo) (`+budgetRemaining+`{service=~"$service"})`, "{{service}} / {{slo}}")},
			thresholds: budgetThresholds(),
		})).
		WithRow(dashboard.NewRowBuilder("Incident analysis")).
		WithPanel(newTable(panelSpec{
			title: "Incident response times (p50 / p90) by severity",
			description: "Quantiles over the selected range of detection time (alert start to incident), " +
				"time to acknowledge, time to resolve and time to recover (last alert resolved), by the incidents' highest severity (the one they paged with).",
			unit: "s", width: 24, height: 7,
			queries: []query{
				instant(quantile("0.5", "sre_incident_detection_seconds"), "detect p50"),
				instant(quantile("0.9", "sre_incident_detection_seconds"), "detect p90"),
				instant(quantile("0.5", "sre_incident_time_to_acknowledge_seconds"), "ack p50"),
				instant(quantile("0.9", "sre_incident_time_to_acknowledge_seconds"), "ack p90"),
				instant(quantile("0.5", "sre_incident_time_to_resolve_seconds"), "resolve p50"),
				instant(quantile("0.9", "sre_incident_time_to_resolve_seconds"), "resolve p90"),
				instant(quantile("0.5", "sre_incident_time_to_recover_seconds"), "recover p50"),
				instant(quantile("0.9", "sre_incident_time_to_recover_seconds"), "recover p90"),
			},
		})).
		WithPanel(newTimeseries(panelSpec{
			title:       "Mean time to acknowledge and resolve",
			description: "Mean over incidents acknowledged or resolved in the last day, rolling.",
			unit:        "s", width: 12, height: 8,
			queries: []query{
				q(mean("sre_incident_time_to_acknowledge_seconds", `{service=~"$service"}`, "1d"), "MTTA"),
				q(mean("sre_incident_time_to_resolve_seconds", `{service=~"$service"}`, "1d"), "MTTR"),
				q(mean("sre_incident_detection_seconds", `{service=~"$service"}`, "1d"), "detection"),
			},
			thresholds: thresholds("green", step{900, "red"}),
			min:        f(0),
		})).
		WithPanel(newTimeseries(panelSpec{
			title:       "Incidents opened by service",
			description: "New incidents per hour by service.",
			width:       12, height: 8,
			// Not the zero series without a service, which "All" (.*) matches.
			queries: []query{q(`sum by (service) (`+increaseBySeries("sre_incidents_stored_total", `{service=~"$service", service!=""}`, "1h")+`)`, "{{service}}")},
			min:     f(0),
		})).
		WithPanel(newBarGauge(panelSpec{
			title:       "MTBF by service",
			description: "Mean time between the starts of consecutive incidents of each service (target: over 30 days).",
			unit:        "s", width: 12, height: 8,
			queries:    []query{instant(`max by (service) (sre_incident_mtbf_seconds{service=~"$service"})`, "{{service}}")},
			thresholds: thresholds("red", step{7 * 86400, "yellow"}, step{30 * 86400, "green"}),
			min:        f(0),
		})).
		WithPanel(newBarGauge(panelSpec{
			title:       "Post-mortems pending (SEV1/2)",
			description: "Resolved incidents whose highest severity was CRITICAL or HIGH still waiting for a post-mortem.",
			width:       12, height: 8,
			queries: []query{instant(
				`sum by (severity) ((`+resolvedSev1+` - `+postmortemsSev1+`) or `+resolvedSev1+`)`, "{{severity}}")},
			thresholds: thresholds("green", step{1, "red"}),
			min:        f(0),
		})).
		WithRow(dashboard.NewRowBuilder("Chaos experiments")).
		WithPanel(newBarGauge(panelSpec{
			title:       "Resilience score",
			description: "Resilience score (0-100) of the last run of each experiment: 100 minus the availability, latency and error-rate degradation measured before, during and after the faults, plus the recovery bonus (docs/chaos.md).",
			width:       8, height: 8,
			queries:    []query{instant(`max by (experiment, service) (sre_chaos_resilience_score{service=~"$service"})`, "{{service}} / {{experiment}}")},
			thresholds: thresholds("red", step{50, "yellow"}, step{80, "green"}),
			min:        f(0), max: f(100),
		})).
		WithPanel(newBarGauge(panelSpec{
			title:       "Experiment runs by result",
			description: "Chaos experiment runs over the dashboard range, by result (succeeded, failed, aborted, refused).",
			width:       8, height: 8,
			queries: []query{instant(`sum by (result) (increase(sre_chaos_experiments_total[$__range]))`, "{{result}}")},
			min:     f(0),
		})).
		WithPanel(newTimeseries(panelSpec{
			title:       "Faults injected",
			description: "Faults injected at each moment, by service and fault type (every sred replica).",
			width:       8, height: 8,
			queries: []query{q(`sum by (service, type) (sre_chaos_fault_active{service=~"$service"})`, "{{service}} / {{type}}")},
			min:     f(0),
		})).
		// sred itself: whether it keeps up with Alertmanager and its own
		// queues (docs/metrics.md, docs/benchmarks.md).
		WithRow(dashboard.NewRowBuilder("sred health")).
		WithPanel(newTimeseries(panelSpec{
			title:       "Webhook deliveries",
			description: "Alertmanager deliveries applied to the store per second, every replica, by outcome (changed, duplicate, error).",
			unit:        "reqps", width: 8, height: 6,
			queries: []query{q(`sum by (outcome) (rate(sre_webhook_deliveries_total[5m]))`, "{{outcome}}")},
			min:     f(0),
		})).
		WithPanel(newTimeseries(panelSpec{
			title:       "Webhook store latency",
			description: "Time to apply one delivery to the store, commit included, per replica (p50 and p99). The answer to Alertmanager waits for it.",
			unit:        "s", width: 8, height: 6,
			queries: []query{
				q(`histogram_quantile(0.5, sum by (instance, le) (rate(sre_webhook_ingest_duration_seconds_bucket[5m])))`, "p50 {{instance}}"),
				q(`histogram_quantile(0.99, sum by (instance, le) (rate(sre_webhook_ingest_duration_seconds_bucket[5m])))`, "p99 {{instance}}"),
			},
			thresholds: thresholds("green", step{0.05, "yellow"}, step{1, "red"}),
			min:        f(0),
		})).
		WithPanel(newTimeseries(panelSpec{
			title:       "Store writer utilisation",
			description: "SQLite: the share of the time the store's one writer was applying or committing a transaction, per replica. Near 100%, deliveries queue for it (0 on PostgreSQL, which has no such writer).",
			unit:        "percentunit", width: 8, height: 6,
			queries:    []query{q(`max by (instance) (rate(sre_store_writer_busy_seconds_total[5m]))`, "{{instance}}")},
			thresholds: thresholds("green", step{0.8, "yellow"}, step{0.95, "red"}),
			min:        f(0), max: f(1),
		})).
		WithPanel(newTimeseries(panelSpec{
			title:       "Job lag by queue",
			description: "How long the oldest due job of each queue has waited past its due time: escalation steps (late pages), notifications, runbooks, recovery checks. 0 when none is overdue.",
			unit:        "s", width: 8, height: 6,
			queries:    []query{q(`max by (queue) (sre_jobs_oldest_due_seconds)`, "{{queue}}")},
			thresholds: thresholds("green", step{30, "yellow"}, step{120, "red"}),
			min:        f(0),
		})).
		WithPanel(newTimeseries(panelSpec{
			title:       "Jobs pending by queue",
			description: "Jobs waiting to run or running, due or not, by queue.",
			width:       8, height: 6,
			queries: []query{q(`max by (queue) (sre_jobs_pending)`, "{{queue}}")},
			min:     f(0),
		})).
		WithPanel(newTimeseries(panelSpec{
			title:       "Store connection pool waits",
			description: "Seconds spent per second waiting for a free store connection, per replica and pool (main; on PostgreSQL also side, the incident numbers' pool). Waits that grow while PostgreSQL has idle CPU say the pool is too small (--storage.postgres-max-connections).",
			unit:        "s", width: 8, height: 6,
			queries: []query{q(`sum by (instance, db_name) (rate(go_sql_wait_duration_seconds_total[5m]))`, "{{instance}} {{db_name}}")},
			min:     f(0),
		})).
		WithPanel(newTimeseries(panelSpec{
			title:       "Store collector duration",
			description: "Time each part of the incident statistics collector spent per scrape.",
			unit:        "s", width: 12, height: 6,
			queries: []query{q(`max by (collector) (sre_collector_scrape_duration_seconds)`, "{{collector}}")},
			min:     f(0),
		})).
		WithPanel(newTimeseries(panelSpec{
			title:       "Store collector success",
			description: "1 when the part of the collector read the store successfully at the last scrape.",
			width:       12, height: 6,
			queries: []query{q(`min by (collector) (sre_collector_scrape_success)`, "{{collector}}")},
			min:     f(0), max: f(1),
		}))
}
