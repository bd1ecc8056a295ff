// Package slo holds the versioned SLO spec model (apiVersion sre.rootuip.io/v1),
// its strict YAML loader and its validation.
//
// A spec file describes one service and its SLOs:
//
//	apiVersion: sre.rootuip.io/v1
//	kind: ServiceLevelObjectives
//	service: api
//	slos:
//	  - name: availability
//	    objective: 99.99
//	    period: 30d
//	    sli:
//	      events:
//	        errorSelector: http_requests_total{job="api",code=~"5.."}
//	        totalSelector: http_requests_total{job="api"}
//
// Load a file or a directory with LoadFile or LoadDir. Every error names the
// file, line, column and field it is about. Other formats (Sloth, OpenSLO)
// load into the same model once their importer package is linked in (see
// RegisterImporter).
package slo

import (
	"math"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
)

// APIVersion is the only spec version this package reads.
const APIVersion = "sre.rootuip.io/v1"

// Kind is the kind of a spec document.
const Kind = "ServiceLevelObjectives"

// Severities of burn-rate alert tiers.
const (
	SeverityPage   = "page"
	SeverityTicket = "ticket"
)

// BudgetTier is the burn_tier label value of the budget alert, which no
// burn-rate window may take (rulegen.BurnTierBudget).
const BudgetTier = "budget"

// Spec is one service and its SLOs: the content of one spec document.
type Spec struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	// Service names the service; it becomes the `service` label of every rule.
	Service string `yaml:"service"`
	// Labels are added to every generated rule of this service (e.g. team).
	Labels map[string]string `yaml:"labels,omitempty"`
	SLOs   []SLO             `yaml:"slos"`

	// File is the file the spec was read from ("" when parsed from memory).
	File string `yaml:"-"`
	// Line is the line of the document in File (1 for single-document files).
	Line int `yaml:"-"`
	// Source names the format the spec was read from: "sre.rootuip.io/v1",
	// "sloth prometheus/v1", "sloth.slok.dev/v1 PrometheusServiceLevel" or
	// "openslo/v1".
	Source string `yaml:"-"`
	// Warnings are what an importer kept or changed that the reader should
	// know (srectl validate and generate print them); they fail nothing.
	Warnings []*Error `yaml:"-"`

	pos positions
}

// SLO is one service level objective.
type SLO struct {
	// Name identifies the SLO within its service; it becomes the `slo` label.
	Name string `yaml:"name"`
	// Objective is the target in percent, 0 < objective < 100 (e.g. 99.99).
	Objective float64 `yaml:"objective"`
	// Period is the compliance period (e.g. 24h, 7d, 30d). Default 30d.
	Period model.Duration `yaml:"period,omitempty"`
	// Description is free text for humans (alert annotations, docs); it never becomes a label.
	Description string `yaml:"description,omitempty"`
	// GroupBy fans the SLO out per value of these labels (e.g. customer):
	// every rule keeps them, and each group has its own budget and alerts.
	GroupBy []string `yaml:"groupBy,omitempty"`
	// Labels are added to every rule of this SLO.
	Labels map[string]string `yaml:"labels,omitempty"`
	SLI    SLI               `yaml:"sli"`
	// Alerting configures the burn-rate and error-budget alerts.
	Alerting Alerting `yaml:"alerting,omitempty"`
	// BudgetPolicy holds the error-budget status thresholds. Defaults to
	// green > 50%, yellow 20-50%, red < 20%, exhausted 0%.
	BudgetPolicy BudgetPolicy `yaml:"budgetPolicy,omitempty"`

	// Line is the line of this SLO in its file.
	Line int `yaml:"-"`

	// periodText is the period as the spec spells it (7d, not 1w).
	periodText string
	// objectiveSet: the spec writes the objective, even as 0 (ApplyDefaults).
	objectiveSet bool
	// parsed are the SLI's selectors and queries Validate parsed, by text.
	parsed map[string]parser.Expr
}

// SLI is the indicator of an SLO: exactly one of its fields is set.
type SLI struct {
	Events  *EventsSLI  `yaml:"events,omitempty"`
	Latency *LatencySLI `yaml:"latency,omitempty"`
	Bool    *BoolSLI    `yaml:"bool,omitempty"`
	Raw     *RawSLI     `yaml:"raw,omitempty"`
}

// SLI kinds, as returned by SLI.Kind and written in the `sli_kind` label of slo:info.
const (
	KindEvents  = "events"
	KindLatency = "latency"
	KindBool    = "bool"
	KindRaw     = "raw"
)

// Kind returns the kind of the SLI ("events", "latency", "bool", "raw"), or "" if none is set.
func (s SLI) Kind() string {
	switch {
	case s.Events != nil:
		return KindEvents
	case s.Latency != nil:
		return KindLatency
	case s.Bool != nil:
		return KindBool
	case s.Raw != nil:
		return KindRaw
	}
	return ""
}

// WindowPlaceholder is replaced by the range (e.g. 5m) in user-written queries.
const WindowPlaceholder = "{{.window}}"

// EventsSLI is a ratio of bad events to all events, from two counters.
// Either the two selectors or the two queries are set.
type EventsSLI struct {
	// ErrorSelector selects the counters of bad events, e.g. http_requests_total{job="api",code=~"5.."}.
	ErrorSelector string `yaml:"errorSelector,omitempty"`
	// TotalSelector selects the counters of all events, e.g. http_requests_total{job="api"}.
	TotalSelector string `yaml:"totalSelector,omitempty"`
	// ErrorQuery is a PromQL expression of the per-second rate of bad events over {{.window}},
	// aggregated by the SLO's groupBy labels, e.g. sum(rate(x{code=~"5.."}[{{.window}}])).
	ErrorQuery string `yaml:"errorQuery,omitempty"`
	// TotalQuery is the same for all events.
	TotalQuery string `yaml:"totalQuery,omitempty"`
}

// LatencySLI counts requests slower than a threshold as bad, from a histogram.
type LatencySLI struct {
	// Histogram is the histogram's base name with optional matchers,
	// e.g. http_request_duration_seconds{job="api"} (without _bucket).
	Histogram string `yaml:"histogram"`
	// Threshold is the latency bound, in the histogram's unit (seconds for
	// *_seconds). A duration such as 200ms is converted to seconds.
	Threshold Threshold `yaml:"threshold"`
	// Native reads a native histogram instead of a classic one (_bucket/_count).
	Native bool `yaml:"native,omitempty"`

	// thresholdText is the threshold as written when it is a duration
	// (300ms), else "".
	thresholdText string
}

// BoolSLI is a time-based SLI from a 0/1 gauge such as up or probe_success:
// the bad fraction is the share of time the gauge is 0.
type BoolSLI struct {
	// Selector selects the gauge series, e.g. probe_success{job="blackbox",instance="https://ingest"}.
	Selector string `yaml:"selector"`
}

// RawSLI is the escape hatch: a query returning the error ratio over {{.window}}.
// Long windows weigh each 5m step equally (there is no event count).
type RawSLI struct {
	ErrorRatioQuery string `yaml:"errorRatioQuery"`
}

// Threshold is a latency threshold in the histogram's unit. In YAML it is a
// number or a Prometheus duration (converted to seconds).
type Threshold float64

// Alerting configures the alerts of an SLO.
type Alerting struct {
	// Name, when set, names the page and ticket burn-rate alerts instead of
	// SLOBurnRatePage and SLOBurnRateTicket. Importers set it (Sloth's
	// alerting.name); a spec file cannot.
	Name string `yaml:"-"`
	// Labels are added to every alert of the SLO (e.g. team).
	Labels map[string]string `yaml:"labels,omitempty"`
	// Annotations are added to every alert of the SLO.
	Annotations map[string]string `yaml:"annotations,omitempty"`
	// RunbookURL becomes the runbook_url annotation.
	RunbookURL string `yaml:"runbookURL,omitempty"`
	// MinEvents is the minimum number of events in an alert's long window for
	// a burn-rate alert to fire (low-traffic gate). 0 disables the gate.
	MinEvents float64 `yaml:"minEvents,omitempty"`
	// Page and Ticket are the two burn-rate severities.
	Page   Tier `yaml:"page,omitempty"`
	Ticket Tier `yaml:"ticket,omitempty"`
	// Budget is the alert on consumed error budget (80% by default).
	Budget BudgetAlert `yaml:"budget,omitempty"`
}

// Tier is one severity of burn-rate alerts.
type Tier struct {
	// Disabled turns the tier's alerts off.
	Disabled bool `yaml:"disabled,omitempty"`
	// Severity, when set, is the severity label of the tier's alerts
	// instead of page or ticket. Importers set it (the severity label of
	// Sloth's page_alert and ticket_alert); a spec file cannot.
	Severity string `yaml:"-"`
	// Labels are added to the tier's alerts (service, slo, severity and burn_tier are reserved).
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
	// For is the default `for:` of the tier's windows.
	For model.Duration `yaml:"for,omitempty"`
	// Windows overrides the window pairs of this tier. By default they are the
	// SRE workbook's, scaled to the SLO's period (see DefaultWindows).
	Windows []BurnWindow `yaml:"windows,omitempty"`
	// MaxDetectionTime bounds the time a total outage takes to page (page
	// tier only; default 5m, 0 in a spec file disables the bound): when the
	// fastest page window would fire later, its long window is shortened,
	// keeping its burn rate (see SLO.Windows and SLO.DetectionTime).
	MaxDetectionTime model.Duration `yaml:"maxDetectionTime,omitempty"`
}

// BurnWindow is one multi-window burn-rate condition: the alert fires when
// the burn rate over both the long and the short window exceeds BurnRate.
type BurnWindow struct {
	// Name is the burn_tier label value (default "<severity>_<long window>").
	Name        string         `yaml:"name,omitempty"`
	LongWindow  model.Duration `yaml:"longWindow"`
	ShortWindow model.Duration `yaml:"shortWindow"`
	// BurnRate is the factor; when 0 it is derived from BudgetConsumed:
	// burn rate = budget share x period / long window.
	BurnRate float64 `yaml:"burnRate,omitempty"`
	// BudgetConsumed is the share of the period's budget (percent) that a
	// burn at BurnRate consumes over the long window.
	BudgetConsumed float64 `yaml:"budgetConsumed,omitempty"`
	// For delays firing; defaults to the tier's For. A for: 0s written in
	// the spec is kept.
	For model.Duration `yaml:"for,omitempty"`

	// Whether the spec sets For, BurnRate and BudgetConsumed, even to 0
	// (ApplyDefaults); a value other than 0 counts as set.
	forSet, burnRateSet, budgetConsumedSet bool
}

// BudgetAlert fires when a share of the period's error budget is consumed.
type BudgetAlert struct {
	Disabled bool `yaml:"disabled,omitempty"`
	// Consumed is the percentage of budget consumed that fires the alert. Default 80.
	Consumed float64 `yaml:"consumed,omitempty"`
	// Severity of the alert. Default "warning".
	Severity string `yaml:"severity,omitempty"`
	// For delays firing. Default 5m.
	For model.Duration `yaml:"for,omitempty"`
}

// BudgetPolicy maps the remaining error budget to a status. Thresholds are
// percentages of budget remaining.
type BudgetPolicy struct {
	// Green: remaining > Green. Default 50.
	Green float64 `yaml:"green,omitempty"`
	// Yellow: Yellow <= remaining <= Green; Red below. Default 20.
	Yellow float64 `yaml:"yellow,omitempty"`
	// Exhausted: remaining <= Exhausted. Default 0.
	Exhausted float64 `yaml:"exhausted,omitempty"`
}

// BudgetState is the status of an error budget.
type BudgetState string

// Budget states of the error-budget policy.
const (
	BudgetGreen     BudgetState = "green"
	BudgetYellow    BudgetState = "yellow"
	BudgetRed       BudgetState = "red"
	BudgetExhausted BudgetState = "exhausted"
)

// Default values.
const (
	DefaultPeriod         = model.Duration(30 * 24 * time.Hour)
	DefaultBudgetConsumed = 80.0
	DefaultBudgetSeverity = "warning"
	DefaultBudgetFor      = model.Duration(5 * time.Minute)
	// DefaultMaxDetectionTime is the default bound on the time a total
	// outage takes to page (Tier.MaxDetectionTime of the page tier).
	DefaultMaxDetectionTime = model.Duration(5 * time.Minute)
)

// DefaultBudgetPolicy is the default policy: green > 50% remaining,
// yellow 20-50%, red < 20%, exhausted at 0%.
var DefaultBudgetPolicy = BudgetPolicy{Green: 50, Yellow: 20, Exhausted: 0}

// State returns the status for a remaining budget given as a ratio
// (1 = untouched, 0 = exhausted, negative = overspent).
func (p BudgetPolicy) State(remaining float64) BudgetState {
	r := remaining * 100
	switch {
	case math.IsNaN(r):
		return BudgetExhausted
	case r <= p.Exhausted:
		return BudgetExhausted
	case r < p.Yellow:
		return BudgetRed
	case r <= p.Green:
		return BudgetYellow
	}
	return BudgetGreen
}

// ErrorBudget returns the error budget as a ratio (1 - objective/100).
func (s *SLO) ErrorBudget() float64 { return roundRatio(1 - s.Objective/100) }

// ObjectiveRatio returns the objective as a ratio (e.g. 0.9999).
func (s *SLO) ObjectiveRatio() float64 { return roundRatio(s.Objective / 100) }

// PeriodDuration returns the period.
func (s *SLO) PeriodDuration() time.Duration { return time.Duration(s.Period) }

// PeriodName returns the period as the spec spells it (e.g. 7d, 24h, 28d),
// for the `period` label and for messages. Without a spelling (an SLO built
// in Go, or the default) it is the Prometheus form of Period (30d).
func (s *SLO) PeriodName() string {
	if s.periodText != "" {
		if d, err := model.ParseDuration(s.periodText); err == nil && d == s.Period {
			return s.periodText
		}
	}
	return s.Period.String()
}

// SetPeriod parses a Prometheus duration (e.g. 7d) into Period and keeps
// its spelling for PeriodName. Importers use it.
func (s *SLO) SetPeriod(text string) error {
	d, err := model.ParseDuration(text)
	if err != nil {
		return err
	}
	s.Period, s.periodText = d, text
	return nil
}

// roundRatio removes float noise such as 1-0.9999 = 9.999999999998899e-05.
func roundRatio(v float64) float64 {
	return math.Round(v*1e12) / 1e12
}
