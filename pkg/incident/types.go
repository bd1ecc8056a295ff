// Package incident holds the incident model of sred and the service that
// turns Alertmanager notifications into durable incidents.
package incident

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/store"
)

// Severity of an incident: CRITICAL, HIGH, MEDIUM, LOW.
type Severity string

const (
	SeverityCritical Severity = "CRITICAL"
	SeverityHigh     Severity = "HIGH"
	SeverityMedium   Severity = "MEDIUM"
	SeverityLow      Severity = "LOW"
)

// Severities lists all severities from most to least severe.
var Severities = []Severity{SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow}

// ParseSeverity accepts a severity name in any case.
func ParseSeverity(s string) (Severity, error) {
	v := Severity(strings.ToUpper(strings.TrimSpace(s)))
	for _, k := range Severities {
		if v == k {
			return v, nil
		}
	}
	return "", fmt.Errorf("unknown severity %s (want one of CRITICAL, HIGH, MEDIUM, LOW)", limits.Quote(s))
}

// Rank orders severities: CRITICAL is 0, LOW is 3, unknown is 4.
func (s Severity) Rank() int {
	for i, k := range Severities {
		if s == k {
			return i
		}
	}
	return len(Severities)
}

// higher returns the higher of two severities; an empty or unknown one
// gives way to the other.
func higher(a, b Severity) Severity {
	if b.Rank() < a.Rank() {
		return b
	}
	return a
}

// Status of an incident in its lifecycle:
// triggered -> acknowledged -> investigating -> resolved -> postmortem_done.
type Status string

const (
	StatusTriggered      Status = "triggered"
	StatusAcknowledged   Status = "acknowledged"
	StatusInvestigating  Status = "investigating"
	StatusResolved       Status = "resolved"
	StatusPostmortemDone Status = "postmortem_done"
)

// StatusFilterValues are the values a status filter takes (GET
// /api/v1/incidents?status=, the console's incident list), as their errors
// name them: open (triggered, acknowledged or investigating), all, or one
// status.
const StatusFilterValues = "open, all, triggered, acknowledged, investigating, resolved, postmortem_done"

// Open reports whether the incident still needs attention.
func (s Status) Open() bool {
	return s == StatusTriggered || s == StatusAcknowledged || s == StatusInvestigating
}

// Incident is the durable record of one episode of trouble.
type Incident struct {
	ID       string   `json:"id"` // INC-2026-0001
	Title    string   `json:"title"`
	Service  string   `json:"service"`
	Severity Severity `json:"severity"`
	// PeakSeverity is the highest severity the incident has had (the one
	// it paged with): Severity follows the alerts still firing and falls
	// when the highest of them resolves, PeakSeverity never does. The
	// metrics by severity count incidents under it.
	PeakSeverity Severity          `json:"peak_severity"`
	Status       Status            `json:"status"`
	Labels       map[string]string `json:"labels"` // common labels of the group
	// GroupKey is the Alertmanager group this incident was opened for.
	GroupKey string `json:"group_key,omitempty"`
	Receiver string `json:"receiver,omitempty"`
	// RunbookURLs are the runbook_url annotations of its alerts.
	RunbookURLs []string `json:"runbook_urls,omitempty"`
	Assignee    string   `json:"assignee,omitempty"`
	Impact      string   `json:"impact,omitempty"`
	Flapping    bool     `json:"flapping,omitempty"`
	// MitigatedBy is "automation" when a runbook's verification passed.
	MitigatedBy string `json:"mitigated_by,omitempty"`
	// SnoozedUntil is the end of the snooze in progress: when it passes and
	// the incident is still open, responders are notified again.
	SnoozedUntil *time.Time `json:"snoozed_until,omitempty"`
	// RecoveringSince is set while the incident is recovering: every short
	// burn-rate window of its SLO is back under its threshold, escalation
	// stopped and the all-clear went out; it resolves when its alerts do.
	RecoveringSince *time.Time `json:"recovering_since,omitempty"`

	DetectedAt     time.Time  `json:"detected_at"` // earliest alert startsAt
	CreatedAt      time.Time  `json:"created_at"`
	AcknowledgedAt *time.Time `json:"acknowledged_at,omitempty"`
	ResolvedAt     *time.Time `json:"resolved_at,omitempty"`
	// RecoveredAt is the last alert endsAt once every alert has resolved.
	RecoveredAt *time.Time `json:"recovered_at,omitempty"`
	UpdatedAt   time.Time  `json:"updated_at"`

	// RootService is the likely root cause among the services of the
	// incident (the deepest failing dependency, see Correlation.Root).
	RootService string `json:"root_service,omitempty"`
	// Services are the affected services: those of every alert group on
	// the incident (Get fills it, with Links).
	Services []string `json:"services,omitempty"`
	// Links are the alert groups on the incident and why they joined it.
	Links []Link `json:"links,omitempty"`
	// MergedInto is the incident this one was merged into (Merge).
	MergedInto string `json:"merged_into,omitempty"`

	Alerts []Alert `json:"alerts,omitempty"`
}

// PeakText is what follows an incident's severity wherever it is shown
// (the console, srectl incidents, the post-mortem draft) when its peak is
// higher: "(CRITICAL at its highest)"; "" when the peak is its severity,
// lower, or not stored. A value receiver, so that a template given an
// Incident that is not addressable (a map's value) can call it.
func (inc Incident) PeakText() string {
	if inc.PeakSeverity == "" || inc.PeakSeverity.Rank() >= inc.Severity.Rank() {
		return ""
	}
	return fmt.Sprintf("(%s at its highest)", inc.PeakSeverity)
}

// SeverityText is an incident's severity as it is shown: the current one,
// followed by PeakText when the peak is higher (an SLO's page resolved
// before its ticket): "MEDIUM (CRITICAL at its highest)", or "MEDIUM".
func (inc Incident) SeverityText() string {
	if p := inc.PeakText(); p != "" {
		return string(inc.Severity) + " " + p
	}
	return string(inc.Severity)
}

// Alert is one alert episode, identified by (fingerprint, startsAt).
type Alert struct {
	Fingerprint string     `json:"fingerprint"`
	StartsAt    time.Time  `json:"starts_at"`
	EndsAt      *time.Time `json:"ends_at,omitempty"`
	// Status is firing or resolved; stale for an alert still firing when
	// its incident was resolved for lack of deliveries (auto_resolve_after).
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	GeneratorURL string            `json:"generator_url,omitempty"`
	// GroupKeys are the Alertmanager groups that delivered this episode
	// to the incident: two when Alertmanager's group_by changed while it
	// fired (the same alert, by fingerprint and start, arrives in a new
	// group). It is listed once, as the group that delivered it last
	// says; each group keeps its own copy (its history and resolves).
	GroupKeys []string `json:"group_keys,omitempty"`
}

// TimelineEntry is one event in an incident's history.
type TimelineEntry struct {
	ID         int64          `json:"id"`
	IncidentID string         `json:"incident_id"`
	Time       time.Time      `json:"time"`
	Kind       string         `json:"kind"`  // alert_fired, alert_resolved, status, note, notification, escalation, runbook_step, ...
	Actor      string         `json:"actor"` // "alertmanager", "sred", a user name, "runbook:<name>"
	Message    string         `json:"message"`
	Data       map[string]any `json:"data,omitempty"`

	// rawData is Data already encoded (set by the ingest path).
	rawData string
}

// TimelineLikelyCause is the kind of the timeline entries that name a
// recorded change (a deployment, a configuration or infrastructure change)
// as the likely cause of an incident: the incident page and the post-mortem
// draft show them as such.
const TimelineLikelyCause = "likely_cause"

// ChangeKind says what happened to an incident.
type ChangeKind string

const (
	ChangeCreated       ChangeKind = "created"
	ChangeUpdated       ChangeKind = "updated" // alerts added or resolved, no status change
	ChangeAcknowledged  ChangeKind = "acknowledged"
	ChangeInvestigating ChangeKind = "investigating"
	ChangeResolved      ChangeKind = "resolved"
	ChangeReopened      ChangeKind = "reopened"
	// ChangeFlapping: a flapping incident re-opened once more, damped
	// (Options.FlapThreshold): its escalation does not restart at once but
	// after Change.Hold, and only if the incident is still open then (a
	// resolve before ends it): a group that keeps firing and resolving
	// pages no more, one that stays firing pages again.
	ChangeFlapping ChangeKind = "flapping"
	// ChangeMitigated: MitigatedBy was set (a runbook's verification passed).
	ChangeMitigated ChangeKind = "mitigated"
	// ChangePostmortemDone: a resolved incident's post-mortem was completed.
	ChangePostmortemDone ChangeKind = "postmortem_done"
	// ChangeSnoozed: an open incident was snoozed until Incident.SnoozedUntil.
	ChangeSnoozed ChangeKind = "snoozed"
	// ChangeRecovering: every short burn-rate window of the incident's SLO
	// is back under its threshold (Incident.RecoveringSince was set).
	ChangeRecovering ChangeKind = "recovering"
	// ChangeBurningAgain: a recovering incident's SLO burns again over a
	// short window (Incident.RecoveringSince was cleared).
	ChangeBurningAgain ChangeKind = "burning_again"
	// ChangeSeverityRaised: an alert of a higher severity joined the open
	// incident (a page tier of the SLO whose ticket tier opened it).
	ChangeSeverityRaised ChangeKind = "severity_raised"
	// ChangeSeverityLowered: the alerts of its severity resolved, lower
	// ones still fire.
	ChangeSeverityLowered ChangeKind = "severity_lowered"
)

// InternalGroupPrefix starts the group key of incidents sred opens itself
// (the Watchdog's): they receive no Alertmanager deliveries, so
// auto_resolve_after and reconciliation leave them alone.
const InternalGroupPrefix = "sred:"

// ManualGroupPrefix starts the group key of an incident opened by hand
// ("manual:<id>").
const ManualGroupPrefix = "manual:"

// BudgetGroupPrefix starts the group key of the alert sred raises itself
// when an error budget runs out (budget.ExhaustedGroupPrefix).
const BudgetGroupPrefix = "budget-exhausted/"

// ReservedGroupPrefix returns the prefix of sred's own group keys that key
// starts with, or "". A webhook delivery under such a key would join (and
// could resolve) an incident sred opened itself.
func ReservedGroupPrefix(key string) string {
	for _, p := range []string{InternalGroupPrefix, ManualGroupPrefix, BudgetGroupPrefix} {
		if strings.HasPrefix(key, p) {
			return p
		}
	}
	return ""
}

// Change is passed to hooks inside the transaction that made it.
type Change struct {
	Kind     ChangeKind
	Incident *Incident
	Prev     Status
	Actor    string
	Time     time.Time
	// Groups are the alert groups of the incident the change concerns
	// (Incident.Labels are only those of the group that opened it):
	//   - ChangeCreated: the group whose alerts opened the incident (a
	//     delivery, a split), or the incident itself (Labels, GroupKey)
	//     for one opened by hand;
	//   - ChangeUpdated: the group whose new firing alerts a delivery
	//     placed on the incident (a group that joined it, or was already
	//     on it); none for other updates (alerts resolved, a merge);
	//   - ChangeMitigated, ChangeSnoozed, ChangeRecovering,
	//     ChangeBurningAgain: none;
	//   - the changes of an open incident's status or severity
	//     (acknowledged, investigating, reopened, flapping,
	//     severity_raised, severity_lowered): every group on the incident
	//     (its links), with the group a delivery brought;
	//   - none when the incident is not open.
	// A hook that acts on alerts by their labels (runbooks) looks at these,
	// not at Incident.Labels.
	Groups []AlertGroup
	// Hold is, for ChangeFlapping, how long the escalation waits before it
	// restarts (the flap window).
	Hold time.Duration
}

// AlertGroup is an alert group on an incident, as hooks see it.
type AlertGroup struct {
	// GroupKey is the group's key: Alertmanager's, or one of sred's own
	// (InternalGroupPrefix, the budget poller's, "manual:<id>").
	GroupKey string
	// Labels are the group's common labels, those every alert of the
	// group has: Alertmanager's commonLabels of the delivery that brought
	// the change's alerts, or for the other groups on the incident those
	// recorded when they joined it (Link.Labels).
	Labels map[string]string
}

// Hook reacts to incident changes inside the same database transaction, so
// that follow-up work (escalation timers, runbook runs, silences) is recorded
// atomically with the change: if the transaction commits, the work is durable;
// if the hook fails, the change rolls back.
// Hooks must only write to the database; side effects on the outside world
// happen later, from workers that read what the hook wrote.
type Hook interface {
	IncidentChanged(ctx context.Context, tx *sql.Tx, ch Change) error
}

// BatchHook is a Hook that can add the writes of a new incident's change
// to the statement writing the incident itself (on PostgreSQL, the
// delivery's rows: one round trip for both). Its writes must hold to what
// store.Batch allows: they see nothing of the incident nor of each other.
type BatchHook interface {
	Hook
	// IncidentChangedIn adds ch's writes to w and reports true, or reports
	// false: IncidentChanged is then called, once w has run. A hook that
	// reports true after adding probes (w.Probe) has IncidentChanged
	// called once w has run only when one of them found a row.
	IncidentChangedIn(ctx context.Context, ch Change, w *Writes) (bool, error)
}

// Writes are what BatchHooks add to the statement writing a new incident.
type Writes struct {
	store.Batch
	// Timeline are entries written after the incident's own ones, in the
	// same INSERT and in this order. Each must have its Time and Kind.
	Timeline []TimelineEntry

	probes []probe
}

// probe is a query of Writes.Probe, its placeholders numbered from $1.
type probe struct {
	query string
	args  []any
}

// Probe asks, in the statement writing the new incident, whether query (a
// SELECT, with placeholders numbered $1 to $len(args) and no other '$'
// followed by a digit) finds a row, as the database was before the
// statement. The hook's IncidentChanged then runs after the statement
// only when one of its probes found one: a hook that writes only when a
// row exists (a change that is the new incident's likely cause) costs no
// round trip when none does.
func (w *Writes) Probe(query string, args ...any) {
	w.probes = append(w.probes, probe{query: query, args: args})
}

// HookFunc adapts a function to Hook.
type HookFunc func(ctx context.Context, tx *sql.Tx, ch Change) error

// IncidentChanged implements Hook.
func (f HookFunc) IncidentChanged(ctx context.Context, tx *sql.Tx, ch Change) error {
	return f(ctx, tx, ch)
}

// TimelineWriter appends to an incident's timeline, optionally inside a
// caller's transaction (tx may be nil). Subsystems (escalation, runbooks)
// use it to record what they did.
type TimelineWriter interface {
	AddTimeline(ctx context.Context, tx *sql.Tx, e TimelineEntry) error
}
