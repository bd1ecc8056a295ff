package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/rootuip/sre/pkg/collector"
)

// executive answers "are we reliable, and what is it costing us": overall
// health, SLO compliance, active incidents and business impact.
func executive() *dashboard.DashboardBuilder {
	return base("rootuip-sre-executive", "SRE / Executive",
		"Overall health, SLO compliance, active incidents and business impact.").
		Time("now-30d", "now").
		WithRow(dashboard.NewRowBuilder("Overall health")).
		WithPanel(newStat(panelSpec{
			title:       "SLOs within budget",
			description: "Share of SLOs whose error ratio over their whole period is within the error budget (remaining budget >= 0).",
			unit:        "percentunit",
			queries: []query{instant(
				`(count(`+budgetRemaining+` >= 0) or 0 * count(`+budgetRemaining+`)) / count(`+budgetRemaining+`)`, "")},
			thresholds: thresholds("red", step{0.9, "yellow"}, step{1, "green"}),
		})).
		WithPanel(newStat(panelSpec{
			title:       "SLOs with budget exhausted",
			description: "SLOs whose error budget for the period is spent: emergency changes only.",
			queries: []query{instant(
				`count(`+budgetRemaining+` <= 0) or 0 * count(`+budgetRemaining+`)`, "")},
			thresholds: thresholds("green", step{1, "red"}),
		})).
		WithPanel(newStat(panelSpec{
			title:       "Open incidents",
			description: "Incidents triggered, acknowledged or under investigation. 0 only when sred counted them; no data when sred is not scraped or its store failed.",
			queries:     []query{instant(orZeroWhenCounted(`sum(`+incidentsOpen+`)`), "")},
			thresholds:  thresholds("green", step{1, "yellow"}),
		})).
		WithPanel(newStat(panelSpec{
			title:       "Open CRITICAL / HIGH incidents",
			description: "Open incidents whose highest severity is CRITICAL or HIGH (SEV1/2), even when their alerts still firing are lower now. 0 only when sred counted them; no data when sred is not scraped or its store failed.",
			queries:     []query{instant(orZeroWhenCounted(`sum(max by (service, severity) (`+collector.MetricIncidentsOpen+`{severity=~"CRITICAL|HIGH"}))`), "")},
			thresholds:  thresholds("green", step{1, "red"}),
		})).
		WithRow(dashboard.NewRowBuilder("SLO compliance")).
		WithPanel(newBarGauge(panelSpec{
			title: "Error budget remaining",
			description: "Remaining error budget of each SLO over its period. Colours follow the default policy: " +
				"green above 50% (normal), yellow 20-50% (reduce deployments), red below 20% (freeze non-critical changes), 0 or less: exhausted. " +
				"SLOs with their own budgetPolicy: see the policy state on the Operations and SLO detail dashboards.",
			unit: "percentunit", width: 12, height: 8,
			queries:    []query{instant(`min by (service, slo) (`+budgetRemaining+`)`, "{{service}} / {{slo}}")},
			thresholds: budgetThresholds(),
			min:        f(0), max: f(1),
		})).
		WithPanel(newTable(panelSpec{
			title:       "Objective and achievement",
			description: "Objective of each SLO and the ratio of good events achieved over its period.",
			unit:        "percentunit", width: 12, height: 8,
			queries: []query{
				instant(`max by (service, slo) (`+objective+`)`, "objective"),
				instant(`1 - max by (service, slo) (`+errorRatioPeriod+`)`, "achieved"),
			},
		})).
		WithRow(dashboard.NewRowBuilder("Active incidents")).
		WithPanel(newBarGauge(panelSpec{
			title:       "Open incidents by service and severity",
			description: "Open incidents per service and highest severity (the one they paged with).",
			width:       12, height: 8,
			queries:    []query{instant(`sum by (service, severity) (`+incidentsOpen+`) > 0`, "{{service}} {{severity}}")},
			thresholds: thresholds("yellow", step{3, "red"}),
			min:        f(0),
		})).
		WithPanel(newTimeseries(panelSpec{
			title:       "Incidents opened per day",
			description: "New incidents per day by severity (the highest when the incident was first counted).",
			width:       12, height: 8,
			queries: []query{q(`sum by (severity) (`+increaseBySeries("sre_incidents_stored_total", "", "1d")+`)`, "{{severity}}")},
			min:     f(0),
		})).
		WithRow(dashboard.NewRowBuilder("Business impact")).
		WithPanel(newStat(panelSpec{
			title:       "MTTR",
			description: "Mean time to resolve incidents resolved in the selected range (target: under 15 minutes).",
			unit:        "s",
			queries: []query{instant(
				mean("sre_incident_time_to_resolve_seconds", "", "$__range"), "")},
			thresholds: thresholds("green", step{900, "red"}),
		})).
		WithPanel(newStat(panelSpec{
			title:       "MTTA",
			description: "Mean time to acknowledge incidents acknowledged in the selected range (target: under 10 minutes).",
			unit:        "s",
			queries: []query{instant(
				mean("sre_incident_time_to_acknowledge_seconds", "", "$__range"), "")},
			thresholds: thresholds("green", step{600, "red"}),
		})).
		WithPanel(newStat(panelSpec{
			title:       "Lowest MTBF",
			description: "Mean time between failures of the service with the most frequent incidents (target: over 30 days).",
			unit:        "s",
			queries:     []query{instant(`min(sre_incident_mtbf_seconds)`, "")},
			thresholds:  thresholds("red", step{30 * 86400, "green"}),
		})).
		WithPanel(newStat(panelSpec{
			title:       "Post-mortem completion (SEV1/2)",
			description: "Share of resolved incidents whose highest severity was CRITICAL or HIGH with a completed post-mortem, the lower of the two severities (target: 100%).",
			unit:        "percentunit",
			queries:     []query{instant(`min(sre_incident_postmortem_completion_ratio)`, "")},
			thresholds:  thresholds("red", step{0.9, "yellow"}, step{1, "green"}),
		})).
		WithPanel(newBarGauge(panelSpec{
			title: "Error budget spent (time equivalent)",
			description: "Budget consumed over the period, as the time at full outage it corresponds to: " +
				"(1 - remaining) x budget x period x data coverage. An SLO younger than its period has its " +
				"remaining budget over the part its data covers (sre_slo_data_coverage_ratio): " +
				"that part, not the whole period, is what the error ratio applies to.",
			unit: "s", width: 12, height: 8,
			queries:    []query{instant(budgetSpentSeconds, "{{service}} / {{slo}}")},
			thresholds: thresholds("green", step{0, "green"}),
			min:        f(0),
		})).
		WithPanel(newTimeseries(panelSpec{
			title:       "Time in incident per day",
			description: "Summed resolution time of incidents resolved each day, by their highest severity.",
			unit:        "s", width: 12, height: 8,
			queries: []query{q(`sum by (severity) (`+increaseBySeries("sre_incident_time_to_resolve_seconds_sum", "", "1d")+`)`, "{{severity}}")},
			min:     f(0),
		})).
		WithRow(dashboard.NewRowBuilder("Delivery performance (DORA)")).
		WithPanel(newStat(panelSpec{
			title:       "Deployment frequency",
			description: "Deployments (changes of kind deploy) that succeeded per day, all services, over changes.dora_window (7d by default).",
			unit:        "short",
			queries:     []query{instant(`sum(max by (service) (`+deployFrequency+`))`, "")},
			thresholds:  thresholds("blue"),
		})).
		WithPanel(newStat(panelSpec{
			title:       "Lead time for changes",
			description: "Mean time from commit to the change's success, of the changes that succeeded in the selected range (DORA: elite under a day).",
			unit:        "s",
			queries:     []query{instant(serviceMean(changeLeadTime, "$__range", ""), "")},
			thresholds:  thresholds("green", step{86400, "yellow"}, step{7 * 86400, "red"}),
		})).
		WithPanel(newStat(panelSpec{
			title: "Change failure rate",
			description: "Failed changes (failed, rolled back, or followed by an incident) / changes shipped in the selected range, " +
				"all services together (DORA: elite below 15%). Counted as they happen: a change when it finishes, a failure when it is known " +
				"(an incident linked later counts then), so a change that finished before the range and failed in it counts in the failures alone; " +
				"sre_change_failure_ratio, per service, counts both by when the change finished, over changes.dora_window.",
			unit: "percentunit",
			queries: []query{instant(`sum(`+perService(changeFailures, "", "$__range")+`) / sum(max by (service, kind, result) (increase(`+
				deployments+`{result!="refused"}[$__range])))`, "")},
			thresholds: thresholds("green", step{0.15, "yellow"}, step{0.3, "red"}),
		})).
		WithPanel(newStat(panelSpec{
			title:       "Time to restore",
			description: "Mean time from the failure's start (the first alert) to the resolution of the incidents linked to a change, resolved in the selected range (DORA: elite under an hour).",
			unit:        "s",
			queries:     []query{instant(serviceMean(changeRestore, "$__range", ""), "")},
			thresholds:  thresholds("green", step{3600, "yellow"}, step{86400, "red"}),
		}))
}

// budgetSpentSeconds is the error budget an SLO spent, as seconds at full
// outage: its error ratio over the covered part of the period times that
// part's length. Multiplying by the whole period instead made a
// five-minute outage of a young 30d SLO read as weeks.
var budgetSpentSeconds = `max by (service, slo) (1 - ` + budgetRemaining + `)` +
	` * on (service, slo) max by (service, slo) (` + errorBudget + `)` +
	` * on (service, slo) max by (service, slo) (` + periodSeconds + `)` +
	` * on (service, slo) min by (service, slo) (` + dataCoverage + `)`
