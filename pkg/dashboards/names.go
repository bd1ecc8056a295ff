package dashboards

// Series produced by the rule generator (see docs/rules.md). Every series
// carries the labels service and slo.
const (
	sliErrorEvents   = "slo:sli_error_events:rate5m"
	sliTotalEvents   = "slo:sli_total_events:rate5m"
	errorRatio5m     = "slo:sli_error:ratio_rate5m"
	errorRatio1h     = "slo:sli_error:ratio_rate1h"
	errorRatio1d     = "slo:sli_error:ratio_rate1d"
	errorRatioPeriod = "slo:sli_error:ratio_period"
	objective        = "slo:objective:ratio"
	errorBudget      = "slo:error_budget:ratio"
	periodSeconds    = "slo:period:seconds"
	burnRate1h       = "slo:burn_rate:ratio_rate1h"
	burnRate6h       = "slo:burn_rate:ratio_rate6h"
	budgetRemaining  = "slo:error_budget_remaining:ratio"
	sloInfo          = "slo:info"
	// burnRateAny selects the burn rate of every window the generator
	// records for an SLO (windows differ with the SLO period).
	burnRateAny = `{__name__=~"slo:burn_rate:ratio_rate.+"`
	// errorRatioAny selects the error ratio of every window.
	errorRatioAny = `{__name__=~"slo:sli_error:ratio_rate.+"`
)
