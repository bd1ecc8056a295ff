package dashboards

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// policyMappings names the ranks of policyState and colours them.
func policyMappings() []dashboard.ValueMapping {
	opts := map[string]dashboard.ValueMappingResult{}
	for i, s := range policyStates {
		opts[fmt.Sprint(s.rank)] = dashboard.ValueMappingResult{
			Text: cog.ToPtr(s.text), Color: cog.ToPtr(s.color), Index: cog.ToPtr(int32(i)),
		}
	}
	return []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText, Options: opts}}}
}

// policyThresholds colour the ranks of policyState like policyMappings.
func policyThresholds() *dashboard.ThresholdsConfigBuilder {
	steps := make([]step, 0, len(policyStates)-1)
	for _, s := range policyStates[1:] {
		steps = append(steps, step{float64(s.rank), s.color})
	}
	return thresholds(policyStates[0].color, steps...)
}

// operations is for the people running the services now: real-time service
// metrics, error budget status, automation activity and the deployment
// pipeline's change policy.
func operations() *dashboard.DashboardBuilder {
	return base("rootuip-sre-operations", "SRE / Operations",
		"Real-time service metrics, error budget status, automation activity and deployment policy.").
		Time("now-6h", "now").
		Refresh("30s").
		WithRow(dashboard.NewRowBuilder("Real-time service metrics")).
		WithPanel(newTimeseries(panelSpec{
			title: "SLI events per second by SLO",
			description: "All events counted by each SLO's SLI (requests for request-based SLIs), as recorded over 5m, " +
				"the groups of a grouped SLO summed. Time-based SLIs count one event per second. " +
				"Per SLO, not summed per service: a service's SLOs often count the same requests.",
			unit: "reqps", width: 8, height: 8,
			// The SLOs of a service count the same requests (availability,
			// latency, success rate): summing them by service multiplied
			// the service's request rate by its number of SLOs.
			queries: []query{q(`sum by (service, slo) (`+sliTotalEvents+`)`, "{{service}} / {{slo}}")},
			min:     f(0),
		})).
		WithPanel(newTimeseries(panelSpec{
			title:       "Error ratio (5m) by SLO",
			description: "Share of bad events over the last 5 minutes.",
			unit:        "percentunit", width: 8, height: 8,
			queries: []query{q(`max by (service, slo) (`+errorRatio5m+`)`, "{{service}} / {{slo}}")},
			min:     f(0),
		})).
		WithPanel(newTimeseries(panelSpec{
			title:       "Open incidents by service",
			description: "Incidents triggered, acknowledged or under investigation, by service; 0 for a service whose incidents are all resolved.",
			width:       8, height: 8,
			// The zero series of the severities without open incidents
			// have no service (docs/metrics.md): no row without a name.
			queries: []query{q(openIncidentsBy("service", `service!=""`), "{{service}}")},
			min:     f(0),
		})).
		WithRow(dashboard.NewRowBuilder("Error budget status")).
		WithPanel(newBarGauge(panelSpec{
			title:       "Error budget remaining",
			description: "Remaining error budget of each SLO over its period.",
			unit:        "percentunit", width: 8, height: 8,
			queries:    []query{instant(`min by (service, slo) (`+budgetRemaining+`)`, "{{service}} / {{slo}}")},
			thresholds: budgetThresholds(),
			min:        f(0), max: f(1),
		})).
		WithPanel(newTimeseries(panelSpec{
			title: "Burn rate (1h) by SLO",
			description: "Error ratio over 1h divided by the error budget. 1 spends the budget exactly over the period; " +
				"14.4 (page) spends 2% of a 30d budget in an hour.",
			width: 8, height: 8,
			queries:    []query{q(`max by (service, slo) (`+burnRate1h+`)`, "{{service}} / {{slo}}")},
			thresholds: thresholds("green", step{6, "orange"}, step{14.4, "red"}),
			min:        f(0),
		})).
		WithPanel(newTable(panelSpec{
			title:       "Firing SLO alerts",
			description: "Burn-rate and budget alerts of the generated rules that are firing now.",
			width:       8, height: 8,
			queries: []query{instant(
				`sum by (alertname, service, slo, severity, burn_tier) (ALERTS{alertstate="firing", slo!=""})`, "")},
		})).
		WithRow(dashboard.NewRowBuilder("Automation activity")).
		WithPanel(newTimeseries(panelSpec{
			title:       "Runbook executions by result",
			description: "Runbook executions started by incidents or by hand, by result.",
			width:       8, height: 8,
			queries: []query{q(`sum by (runbook, result) (increase(sre_runbook_executions_total[$__rate_interval]))`, "{{runbook}} {{result}}")},
			min:     f(0),
		})).
		WithPanel(newTimeseries(panelSpec{
			title:       "Notifications by channel and result",
			description: "Notifications sent to responders, by channel and result.",
			width:       8, height: 8,
			queries: []query{q(`sum by (channel, result) (increase(sre_notifications_total[$__rate_interval]))`, "{{channel}} {{result}}")},
			min:     f(0),
		})).
		WithPanel(newTimeseries(panelSpec{
			title:       "Escalation steps fired",
			description: "Escalation steps fired because an incident was not acknowledged in time, by severity and outcome.",
			width:       8, height: 8,
			queries: []query{q(`sum by (severity, outcome) (increase(sre_escalation_steps_total[$__rate_interval]))`, "{{severity}} {{outcome}}")},
			min:     f(0),
		})).
		WithPanel(newStat(panelSpec{
			title:       "Automation coverage",
			description: "Share of incidents mitigated by runbook automation (target: above 80%).",
			unit:        "percentunit", width: 12, height: 5,
			queries:    []query{instant(`max(sre_automation_coverage_ratio)`, "")},
			thresholds: thresholds("red", step{0.5, "yellow"}, step{0.8, "green"}),
		})).
		WithPanel(newStat(panelSpec{
			title:       "Toil",
			description: "Of the incidents created in the last 30 days and resolved, the share resolved by hand, no automation having mitigated them (target: below 20%). No data until one is resolved.",
			unit:        "percentunit", width: 12, height: 5,
			queries:    []query{instant(`max(sre_toil_ratio)`, "")},
			thresholds: thresholds("green", step{0.2, "yellow"}, step{0.5, "red"}),
		})).
		WithRow(dashboard.NewRowBuilder("Deployment pipeline")).
		WithPanel(newTable(panelSpec{
			title: "Change policy by SLO",
			description: "Error budget policy state of each SLO (and group) as sred's budget poller evaluates it, " +
				"with the SLO's own budgetPolicy thresholds (default: green above 50% remaining, yellow from 20%, red below 20%, exhausted at 0). " +
				"The deploy gate (srectl gate, POST /api/v1/gate) decides from the same states: green and yellow allow every change, " +
				"red only critical changes, exhausted only emergency overrides. Unknown: no data yet.",
			width: 12, height: 8,
			queries:    []query{instant(policyState("", "service, slo, group"), "")},
			thresholds: policyThresholds(),
			mappings:   policyMappings(),
		})).
		WithPanel(newTimeseries(panelSpec{
			title: "Deploy gate decisions",
			description: "Answers of the deploy gate (srectl gate, POST /api/v1/gate) by decision and change kind; " +
				"override=\"true\" marks emergency overrides.",
			width: 12, height: 8,
			queries: []query{q(`sum by (decision, change, override) (increase(sre_gate_decisions_total[$__rate_interval]))`,
				"{{decision}} {{change}} override={{override}}")},
			min: f(0),
		})).
		WithPanel(newTimeseries(panelSpec{
			title: "Deployments by result",
			description: "Changes recorded (srectl change record, POST /api/v1/changes, the stage runner, Argo Rollouts and Flagger) " +
				"by service, kind (deploy, config, infra) and result: succeeded, failed, rolled_back, or refused by the deploy gate. " +
				"The deployment frequency counts the succeeded deploys alone.",
			width: 12, height: 8,
			queries: []query{q(`sum by (service, kind, result) (max by (service, kind, result) (increase(`+deployments+`[$__rate_interval])))`,
				"{{service}} {{kind}} {{result}}")},
			min: f(0),
		})).
		WithPanel(newBarGauge(panelSpec{
			title: "Change failure rate",
			description: "Share of the changes shipped within changes.dora_window (7d by default) that failed: failed, rolled back, " +
				"or followed by an incident on the service within changes.incident_link_window (DORA: elite below 15%).",
			unit: "percentunit", width: 6, height: 8,
			queries:    []query{instant(`max by (service) (`+changeFailRatio+`)`, "{{service}}")},
			thresholds: thresholds("green", step{0.15, "yellow"}, step{0.3, "red"}),
			min:        f(0), max: f(1),
		})).
		WithPanel(newBarGauge(panelSpec{
			title:       "Deployment frequency",
			description: "Deployments (changes of kind deploy) that succeeded per day, over changes.dora_window: configuration and infrastructure changes are no deployments.",
			unit:        "short", width: 6, height: 8,
			queries:    []query{instant(`max by (service) (`+deployFrequency+`)`, "{{service}}")},
			thresholds: thresholds("blue"),
			min:        f(0),
		})).
		WithPanel(newTimeseries(panelSpec{
			title:       "Lead time for changes (median, 1d)",
			description: "Commit time to the change's success, median of the changes of the last day (changes recorded with a commit time).",
			unit:        "s", width: 8, height: 8,
			queries: []query{q(`histogram_quantile(0.5, sum by (service, le) (max by (service, le) (increase(`+changeLeadTime+`_bucket[1d]))))`,
				"{{service}}")},
			min: f(0),
		})).
		WithPanel(newTimeseries(panelSpec{
			title:       "Time to restore (mean, 1d)",
			description: "Incidents linked to a change as its likely cause: mean time from the failure's start (the incident's first alert) to its resolution, over the last day.",
			unit:        "s", width: 8, height: 8,
			queries: []query{q(serviceMean(changeRestore, "1d", "service"), "{{service}}")},
			min:     f(0),
		})).
		WithPanel(newTimeseries(panelSpec{
			title:       "Rollbacks and failed changes",
			description: "Changes rolled back, and changes that failed (rolled back, failed, or followed by an incident).",
			width:       8, height: 8,
			queries: []query{
				q(`sum by (service) (`+perService(rollbacks, "", "$__rate_interval")+`)`, "{{service}} rolled back"),
				q(`sum by (service) (`+perService(changeFailures, "", "$__rate_interval")+`)`, "{{service}} failed"),
			},
			min: f(0),
		}))
}
