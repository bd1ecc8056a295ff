package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// sel is the selector of the SLO picked in the dashboard variables.
const sel = `{service="$service", slo="$slo"}`

// The SLO detail dashboard's queries of the achieved ratio and the data
// coverage of the SLO picked in $service and $slo (tests evaluate them
// against Prometheus next to sred's budget and SLA figures).
var (
	AchievedQuery = `1 - max(` + errorRatioPeriod + sel + `)`
	CoverageQuery = `min(` + dataCoverage + sel + `)`
)

// sloDetail shows one SLO: its budget burn-down, the burn rate of every
// alert window and the alerts of its rules.
func sloDetail() *dashboard.DashboardBuilder {
	return base("rootuip-sre-slo-detail", "SRE / SLO detail",
		"One SLO: error budget burn-down, burn rate per alert window, SLI events and alerts.").
		Time("now-30d", "now").
		WithVariable(labelVariable("service", "Service", `label_values(`+sloInfo+`, service)`)).
		WithVariable(labelVariable("slo", "SLO", `label_values(`+sloInfo+`{service="$service"}, slo)`)).
		WithRow(dashboard.NewRowBuilder("Status")).
		WithPanel(newStat(panelSpec{
			title:       "Objective",
			description: "Target ratio of good events over the SLO period.",
			unit:        "percentunit", width: 3, height: 5,
			queries:    []query{instant(`max(`+objective+sel+`)`, "")},
			thresholds: thresholds("blue"),
		})).
		WithPanel(newStat(panelSpec{
			title:       "Period",
			description: "Length of the SLO period (rolling window).",
			unit:        "s", width: 3, height: 5,
			queries:    []query{instant(`max(`+periodSeconds+sel+`)`, "")},
			thresholds: thresholds("blue"),
		})).
		WithPanel(newStat(panelSpec{
			title: "Achieved over the period",
			description: "Ratio of good events over the period (a ratio of sums, not an average of ratios), over the data that exists: " +
				"for an SLO younger than its period, over the covered part (Data coverage), as sred's budget, gate and SLA reports.",
			unit: "percentunit", width: 4, height: 5,
			queries:    []query{instant(AchievedQuery, "")},
			thresholds: thresholds("blue"),
		})).
		WithPanel(newStat(panelSpec{
			title: "Data coverage",
			description: "Fraction of the SLO period its data covers, as sred computes it (sre_slo_data_coverage_ratio): below 100% the SLO " +
				"is younger than its period, and the achieved ratio and the budget are over the covered part, not extrapolated to the period.",
			unit: "percentunit", width: 3, height: 5,
			queries:    []query{instant(CoverageQuery, "")},
			thresholds: thresholds("orange", step{1, "green"}),
		})).
		WithPanel(newStat(panelSpec{
			title:       "Error budget remaining",
			description: "Share of the period's error budget not yet spent; negative when overspent.",
			unit:        "percentunit", width: 4, height: 5,
			queries:    []query{instant(`min(`+budgetRemaining+sel+`)`, "")},
			thresholds: budgetThresholds(),
		})).
		WithPanel(newStat(panelSpec{
			title: "Budget policy",
			description: "Error budget policy state in force for this SLO, as sred's budget poller evaluates it with the SLO's own " +
				"budgetPolicy thresholds; the worst state of the SLO's groups. Unknown: no data yet.",
			width: 4, height: 5,
			queries:    []query{instant(policyState(`service="$service", slo="$slo", `, ""), "")},
			thresholds: policyThresholds(),
			mappings:   policyMappings(),
		})).
		WithPanel(newStat(panelSpec{
			title:       "Burn rate (1h)",
			description: "Error ratio over the last hour divided by the error budget.",
			width:       3, height: 5,
			queries:    []query{instant(`max(`+burnRate1h+sel+`)`, "")},
			thresholds: thresholds("green", step{1, "yellow"}, step{6, "orange"}, step{14.4, "red"}),
		})).
		WithRow(dashboard.NewRowBuilder("Error budget")).
		WithPanel(newTimeseries(panelSpec{
			title: "Error budget burn-down",
			description: "Remaining error budget over time. The lines are the default policy's thresholds (yellow at 50%, red below 20%); " +
				"an SLO with its own budgetPolicy changes state where the Budget policy panel says. " +
				"The budget alert fires at 80% consumed by default.",
			unit: "percentunit", width: 24, height: 9,
			queries:    []query{q(`min(`+budgetRemaining+sel+`)`, "remaining")},
			thresholds: budgetThresholds(),
		})).
		WithRow(dashboard.NewRowBuilder("Burn rate")).
		WithPanel(newTimeseries(panelSpec{
			title: "Burn rate per window",
			description: "Burn rate over every window the rules record for this SLO. " +
				"The page tiers fire when a long and its short window both exceed the tier's factor.",
			width: 12, height: 9,
			queries:    []query{q(`max by (__name__) (`+burnRateAny+`, service="$service", slo="$slo"})`, "{{__name__}}")},
			thresholds: thresholds("green", step{1, "yellow"}, step{6, "orange"}, step{14.4, "red"}),
			min:        f(0),
		})).
		WithPanel(newTimeseries(panelSpec{
			title:       "Error ratio per window",
			description: "Error ratio over every recorded window against the error budget (1 - objective).",
			unit:        "percentunit", width: 12, height: 9,
			queries: []query{
				q(`max by (__name__) (`+errorRatioAny+`, service="$service", slo="$slo"})`, "{{__name__}}"),
				q(`max(`+errorBudget+sel+`)`, "error budget"),
			},
			min: f(0),
		})).
		WithRow(dashboard.NewRowBuilder("SLI events")).
		WithPanel(newTimeseries(panelSpec{
			title:       "Events per second",
			description: "All and bad events of the SLI, recorded over 5m.",
			unit:        "reqps", width: 24, height: 8,
			queries: []query{
				q(`sum(`+sliTotalEvents+sel+`)`, "all"),
				q(`sum(`+sliErrorEvents+sel+`)`, "bad"),
			},
			min: f(0),
		})).
		WithRow(dashboard.NewRowBuilder("Alerts")).
		WithPanel(newTable(panelSpec{
			title:       "Alerts of this SLO",
			description: "Pending and firing alerts of the generated rules for this SLO.",
			width:       12, height: 8,
			queries: []query{instant(
				`sum by (alertname, severity, burn_tier, alertstate) (ALERTS`+sel+`)`, "")},
		})).
		WithPanel(newTimeseries(panelSpec{
			title:       "Alert history",
			description: "Alerts of this SLO over time (1 while pending or firing).",
			width:       12, height: 8,
			queries: []query{q(
				`max by (alertname, burn_tier, alertstate) (ALERTS`+sel+`)`, "{{alertname}} {{burn_tier}} {{alertstate}}")},
			min: f(0), max: f(1),
		})).
		WithPanel(newTimeseries(panelSpec{
			title:       "Open incidents of the service",
			description: "Incidents open for this service in sred, by their highest severity; 0 once they are resolved.",
			width:       24, height: 7,
			queries: []query{q(openIncidentsBy("severity", `service="$service"`), "{{severity}}")},
			min:     f(0),
		}))
}
