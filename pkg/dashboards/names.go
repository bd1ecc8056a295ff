package dashboards

import (
	"fmt"
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/change"
	"github.com/rootuip/sre/pkg/collector"
	"github.com/rootuip/sre/pkg/rulegen"
	"github.com/rootuip/sre/pkg/slo"
)

// Series produced by the rule generator (pkg/rulegen is the source of the
// names, docs/rules.md documents them). Every series carries the labels
// service and slo.
var (
	sliErrorEvents   = rulegen.ErrorEventsRate5m
	sliTotalEvents   = rulegen.TotalEventsRate5m
	errorRatio5m     = rulegen.ErrorRatioRecord(5 * time.Minute)
	errorRatio1d     = rulegen.ErrorRatioRecord(24 * time.Hour)
	errorRatioPeriod = rulegen.ErrorRatioPeriod
	objective        = rulegen.Objective
	errorBudget      = rulegen.ErrorBudget
	periodSeconds    = rulegen.PeriodSeconds
	burnRate1h       = rulegen.BurnRateRecord(time.Hour)
	burnRate6h       = rulegen.BurnRateRecord(6 * time.Hour)
	budgetRemaining  = rulegen.ErrorBudgetRemaining
	sloInfo          = rulegen.Info
	// burnRateAny selects the burn rate of every window the generator
	// records for an SLO (windows differ with the SLO period).
	burnRateAny = `{__name__=~"` + strings.TrimSuffix(rulegen.BurnRateRecord(time.Hour), "1h") + `.+"`
	// errorRatioAny selects the error ratio of every window.
	errorRatioAny = `{__name__=~"` + strings.TrimSuffix(rulegen.ErrorRatioRecord(time.Hour), "1h") + `.+"`
)

// Metrics computed from the store are the same on every sred replica:
// queries take the max per series before summing across services.
var (
	incidentsOpen = `max by (service, severity) (` + collector.MetricIncidentsOpen + `)`
)

// orZeroWhenCounted completes an aggregation of sre_incidents_open, which
// has no series while no incident is open, with 0 when some sred counted the
// open incidents in its last scrape; with no sred scraped, or its store
// failing, the result stays empty instead of a reassuring 0.
func orZeroWhenCounted(expr string) string {
	return expr + ` or 0 * max(` + collector.MetricScrapeSuccess + `{collector="open"} == 1)`
}

// openIncidentsBy is the number of open incidents by the labels in by
// (service or severity), for the series that match matchers, with a 0 for
// each value that has stored incidents but none open, so that a time series
// drops to 0 when the last incident resolves instead of ending on its last
// count (sre_incidents_open has no series for a service without open
// incidents). The zeros need sred to have counted the open incidents in its
// last scrape, as orZeroWhenCounted.
func openIncidentsBy(by, matchers string) string {
	perSeries := func(metric string) string {
		return `sum by (` + by + `) (max by (service, severity) (` + metric + `{` + matchers + `}))`
	}
	return perSeries(collector.MetricIncidentsOpen) + ` or 0 * ` + perSeries(collector.MetricIncidentsStored) +
		` and on () max(` + collector.MetricScrapeSuccess + `{collector="open"} == 1)`
}

// increaseBySeries is the increase of a store counter over r, de-duplicated
// across replicas, per service and severity.
func increaseBySeries(metric, selector, r string) string {
	return `max by (service, severity) (increase(` + metric + selector + `[` + r + `]))`
}

// mean is the mean of a duration histogram over r.
func mean(histogram, selector, r string) string {
	return `sum(` + increaseBySeries(histogram+"_sum", selector, r) + `) / sum(` + increaseBySeries(histogram+"_count", selector, r) + `)`
}

// budgetPolicyState is exported by sred's budget poller (pkg/budget): per
// SLO and group, 1 for the error budget policy state in force, computed with
// the SLO's own budgetPolicy thresholds, 0 for the other states.
const budgetPolicyState = "sre_slo_budget_policy_state"

// dataCoverage is sred's gauge of the fraction of an SLO's period its data
// covers (pkg/budget).
const dataCoverage = "sre_slo_data_coverage_ratio"

// policyStates are the states of budgetPolicyState with the rank the
// dashboards show (worse is higher, as the deploy gate ranks them; unknown,
// an SLO without data, is 0) and how they are displayed.
var policyStates = []struct {
	state       slo.BudgetState
	rank        int
	text, color string
}{
	{budget.StateUnknown, 0, "Unknown: no data", "text"},
	{slo.BudgetGreen, 1, "Green: normal operations", "green"},
	{slo.BudgetYellow, 2, "Yellow: reduce deployment frequency", "yellow"},
	{slo.BudgetRed, 3, "Red: freeze non-critical changes", "red"},
	{slo.BudgetExhausted, 4, "Exhausted: emergency changes only", "dark-red"},
}

// policyState is the rank of the policy state in force, the worst one per
// group of labels by (every SLO when by is empty), for the series that
// match matchers (a label matcher list ending in a comma, or empty).
func policyState(matchers, by string) string {
	terms := make([]string, 0, len(policyStates))
	for _, s := range policyStates {
		terms = append(terms, fmt.Sprintf(`%d * (%s{%sstate=%q} == 1)`, s.rank, budgetPolicyState, matchers, s.state))
	}
	agg := "max"
	if by != "" {
		agg = "max by (" + by + ")"
	}
	return agg + " (" + strings.Join(terms, " or ") + ")"
}

// Change records and the DORA measures (pkg/change), read from the store:
// identical on every replica, so queries take the max per series first.
var (
	deployments     = change.MetricDeployments
	rollbacks       = change.MetricRollbacks
	changeFailures  = change.MetricFailures
	changeFailRatio = change.MetricFailureRatio
	deployFrequency = change.MetricFrequency
	changeLeadTime  = change.MetricLeadTime
	changeRestore   = change.MetricRestoreTime
)

// perService is the increase of a per-service store counter over r, the
// replicas' copies collapsed.
func perService(metric, selector, r string) string {
	return `max by (service) (increase(` + metric + selector + `[` + r + `]))`
}

// serviceMean is the mean of a per-service store histogram over r, by
// the labels in by ("" for one figure).
func serviceMean(histogram, r, by string) string {
	agg := "sum"
	if by != "" {
		agg = "sum by (" + by + ")"
	}
	return agg + ` (` + perService(histogram+"_sum", "", r) + `) / ` + agg + ` (` + perService(histogram+"_count", "", r) + `)`
}
