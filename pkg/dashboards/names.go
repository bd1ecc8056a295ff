package dashboards

import (
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/collector"
	"github.com/rootuip/sre/pkg/rulegen"
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

// increaseBySeries is the increase of a store counter over r, de-duplicated
// across replicas, per service and severity.
func increaseBySeries(metric, selector, r string) string {
	return `max by (service, severity) (increase(` + metric + selector + `[` + r + `]))`
}

// mean is the mean of a duration histogram over r.
func mean(histogram, selector, r string) string {
	return `sum(` + increaseBySeries(histogram+"_sum", selector, r) + `) / sum(` + increaseBySeries(histogram+"_count", selector, r) + `)`
}
