package rulegen

import (
	"sync"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/slo"
)

// Recording-rule names. They follow Prometheus' level:metric:operations
// convention and are the contract between the generator, sred's budget and
// SLA code and the dashboards: every series carries the labels service and
// slo (LabelService, LabelSLO) plus the SLO's groupBy labels.
const (
	// ErrorEventsRate5m is the per-second rate of bad events over 5m (for
	// time-based SLIs: 1 - good fraction). Summing it over any range and
	// dividing by the same sum of TotalEventsRate5m gives the error ratio of
	// that range as a ratio of sums.
	ErrorEventsRate5m = "slo:sli_error_events:rate5m"
	// TotalEventsRate5m is the per-second rate of all events over 5m (1 for time-based SLIs).
	TotalEventsRate5m = "slo:sli_total_events:rate5m"
	// ErrorRatioPeriod is the error ratio over the SLO's whole period (label period).
	ErrorRatioPeriod = "slo:sli_error:ratio_period"
	// Objective is the objective as a ratio, e.g. 0.9999.
	Objective = "slo:objective:ratio"
	// ErrorBudget is 1 - objective.
	ErrorBudget = "slo:error_budget:ratio"
	// PeriodSeconds is the SLO's period in seconds.
	PeriodSeconds = "slo:period:seconds"
	// ErrorBudgetRemaining is 1 - ErrorRatioPeriod / error budget; below 0 when overspent.
	ErrorBudgetRemaining = "slo:error_budget_remaining:ratio"
	// Info is 1, with labels objective, period and sli_kind.
	Info = "slo:info"
)

// Labels set by the generator.
const (
	LabelService   = "service"
	LabelSLO       = "slo"
	LabelSeverity  = "severity"
	LabelBurnTier  = "burn_tier"
	LabelPeriod    = "period"
	LabelObjective = "objective"
	LabelSLIKind   = "sli_kind"
)

// AnnotationBurnRate is the annotation of a burn-rate alert that holds its
// tier's factor (14.4 for a 30-day SLO's page_fast): sred names incidents
// after it ("api/availability burning 14.4x: page").
const AnnotationBurnRate = "burn_rate_threshold"

// Alert names.
const (
	// AlertPage fires for a page tier (severity="page").
	AlertPage = "SLOBurnRatePage"
	// AlertTicket fires for a ticket tier (severity="ticket").
	AlertTicket = "SLOBurnRateTicket"
	// AlertBudget fires when the consumed share of the period's budget reaches
	// the threshold (80% by default); burn_tier="budget".
	AlertBudget = "SLOErrorBudgetConsumed"
	// BurnTierBudget is the burn_tier label value of AlertBudget.
	BurnTierBudget = slo.BudgetTier
)

// WindowName formats a window as in the rule names, e.g. 5m, 1h, 1h24m, 3d.
func WindowName(w time.Duration) string { return windowNamesOf(w).window }

// ErrorRatioRecord is the name of the error ratio over window w, e.g.
// slo:sli_error:ratio_rate1h.
func ErrorRatioRecord(w time.Duration) string { return windowNamesOf(w).errorRatio }

// BurnRateRecord is the name of the burn rate over window w, e.g.
// slo:burn_rate:ratio_rate1h (error ratio / error budget).
func BurnRateRecord(w time.Duration) string { return windowNamesOf(w).burnRate }

// windowNames are the names of a window, formatted once per window: an SLO
// names its few windows some 40 times.
type windowNames struct{ window, errorRatio, burnRate string }

var windowNamesCache sync.Map // time.Duration -> *windowNames

func windowNamesOf(w time.Duration) *windowNames {
	if n, ok := windowNamesCache.Load(w); ok {
		return n.(*windowNames)
	}
	name := model.Duration(w).String()
	n := &windowNames{window: name, errorRatio: "slo:sli_error:ratio_rate" + name, burnRate: "slo:burn_rate:ratio_rate" + name}
	windowNamesCache.Store(w, n)
	return n
}

// BurnAlertName is the name of the burn-rate alerts of an SLO's tier
// (severity slo.SeverityPage or slo.SeverityTicket): the SLO's
// Alerting.Name when set (Sloth's alerting.name, one name for both
// tiers), else AlertPage or AlertTicket.
func BurnAlertName(o *slo.SLO, severity string) string {
	switch {
	case o.Alerting.Name != "":
		return o.Alerting.Name
	case severity == slo.SeverityTicket:
		return AlertTicket
	}
	return AlertPage
}

// TierSeverity is the severity label of the burn-rate alerts of an SLO's
// tier: the tier's Severity when set (Sloth's page_alert and ticket_alert
// severity label), else severity itself (page or ticket).
func TierSeverity(o *slo.SLO, severity string) string {
	t := o.Alerting.Page
	if severity == slo.SeverityTicket {
		t = o.Alerting.Ticket
	}
	if t.Severity != "" {
		return t.Severity
	}
	return severity
}
