package budget

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/slo"
)

// Incidents is what the budget service needs of the incident service to
// turn an exhausted error budget into an incident (error budget
// exhaustion is an incident trigger).
type Incidents interface {
	List(ctx context.Context, f incident.Filter) (*incident.Page, error)
	Ingest(ctx context.Context, n incident.Notification) (*incident.IngestResult, error)
	Raise(ctx context.Context, id, actor string, sev incident.Severity, kind, message string) (*incident.Incident, error)
	Options() incident.Options
}

// The alert sred raises itself when a budget runs out.
const (
	// AlertExhausted names the alert of an exhausted budget's incident.
	AlertExhausted = "SLOErrorBudgetExhausted"
	// BurnTierExhausted is its burn_tier label.
	BurnTierExhausted = "exhausted"
	// ExhaustedGroupPrefix starts the group keys of these alerts: not an
	// Alertmanager key ("{}..."), so reconciliation leaves them alone.
	ExhaustedGroupPrefix = incident.BudgetGroupPrefix
	// Actor is the timeline actor of the budget service.
	Actor = "budget"
)

// transition turns a recorded state change into incidents: entering
// exhausted opens a CRITICAL incident, or raises the SLO's open incident to
// CRITICAL (one incident per outage); leaving exhausted resolves the alert
// of the incident it opened. prevSince is when the previous state began.
func (s *Service) transition(ctx context.Context, st Status, ev *Event, prevSince time.Time) {
	inc := s.incidents
	if inc == nil {
		return
	}
	log := s.logger.With("service", st.Service, "slo", st.SLO, "group", ev.Group)
	switch {
	case ev.To == slo.BudgetExhausted && ev.From != slo.BudgetExhausted:
		id, created, err := s.openExhausted(ctx, inc, st, ev)
		if err != nil {
			log.Error("open the incident of an exhausted error budget", "err", err)
			return
		}
		log.Warn("error budget exhausted: incident opened or raised to CRITICAL", "incident", id, "created", created)
	case ev.From == slo.BudgetExhausted && ev.To != slo.BudgetExhausted && !prevSince.IsZero():
		if _, err := inc.Ingest(ctx, exhaustedNotification(inc.Options(), st, prevSince, "resolved", ev.Time)); err != nil {
			log.Error("resolve the alert of an exhausted error budget", "err", err)
		}
	}
}

func (s *Service) openExhausted(ctx context.Context, inc Incidents, st Status, ev *Event) (string, bool, error) {
	msg := joinedMessage(st)
	page, err := inc.List(ctx, incident.Filter{Limit: 1000, WithAlerts: true,
		Status: []incident.Status{incident.StatusTriggered, incident.StatusAcknowledged, incident.StatusInvestigating}})
	if err != nil {
		return "", false, err
	}
	for _, i := range page.Incidents { // newest first
		if !aboutSLO(i, st) {
			continue
		}
		if _, err := inc.Raise(ctx, i.ID, Actor, incident.SeverityCritical, "budget", msg); err != nil {
			return "", false, err
		}
		return i.ID, false, nil
	}
	res, err := inc.Ingest(ctx, exhaustedNotification(inc.Options(), st, ev.Time, "firing", time.Time{}))
	if err != nil {
		return "", false, err
	}
	if len(res.Incidents) == 0 {
		return "", false, fmt.Errorf("no incident for %s", AlertExhausted)
	}
	return res.Incidents[0], len(res.Created) > 0, nil
}

// joinedMessage is the timeline entry of an exhaustion that joins an open
// incident of its SLO: it names the SLO first, since the incident may hold
// the alerts of other SLOs of the service (correlation) and the
// SLOErrorBudgetExhausted alert of another SLO, and says why this SLO's
// exhaustion is an entry and not an alert of the incident.
func joinedMessage(st Status) string {
	name := st.Name()
	return fmt.Sprintf("error budget of %s exhausted (%s): %s; this incident already holds the alerts of %s, so its exhaustion is recorded here, not as an %s alert",
		name, st.RemainingText(2), PolicyAction(slo.BudgetExhausted), name, AlertExhausted)
}

// aboutSLO reports whether incident i is about st's SLO (and group): its
// own labels name it, or one of its alerts does (groups that correlation
// attached to it, such as another SLO's page during the same outage).
func aboutSLO(i incident.Incident, st Status) bool {
	is := func(ls map[string]string) bool {
		return ls["service"] == st.Service && ls["slo"] == st.SLO && sameGroup(ls, st.Group)
	}
	if is(i.Labels) || (i.Service == st.Service && i.Labels["slo"] == st.SLO && sameGroup(i.Labels, st.Group)) {
		return true
	}
	for _, a := range i.Alerts {
		if is(a.Labels) {
			return true
		}
	}
	return false
}

// settleExhausted resolves the alert of an exhausted budget once the SLO
// no longer burns over its shortest window (burn rate at most 1): the
// outage that spent the budget is over, so the incident follows its other
// alerts again (and resolves with them); the budget stays exhausted for the
// gate. It does nothing while the SLO burns, and is idempotent (a resolved
// episode stays resolved; the next exhaustion is a new transition).
func (s *Service) settleExhausted(ctx context.Context, st Status) {
	if s.incidents == nil || s.db == nil || st.State != slo.BudgetExhausted || burning(st) {
		return
	}
	var since int64
	err := s.db.QueryRowContext(ctx, `SELECT since_ms FROM budget_states WHERE service = $1 AND slo = $2 AND grp = $3`,
		st.Service, st.SLO, st.GroupString()).Scan(&since)
	if err != nil {
		s.logger.Error("read the state of an exhausted error budget", "service", st.Service, "slo", st.SLO, "err", err)
		return
	}
	n := exhaustedNotification(s.incidents.Options(), st, time.UnixMilli(since).UTC(), "resolved", s.now().UTC())
	if _, err := s.incidents.Ingest(ctx, n); err != nil {
		s.logger.Error("resolve the alert of an exhausted error budget", "service", st.Service, "slo", st.SLO, "err", err)
	}
}

// burning reports whether the SLO burns budget over its shortest window
// (true when that rate is unknown).
func burning(st Status) bool {
	var rate *float64
	shortest := time.Duration(-1)
	for _, br := range st.BurnRates {
		d, err := model.ParseDuration(br.Window)
		if err != nil {
			continue
		}
		if shortest < 0 || time.Duration(d) < shortest {
			shortest, rate = time.Duration(d), br.Rate
		}
	}
	return rate == nil || *rate > 1
}

// sameGroup reports whether labels carry the values of the SLO's group.
func sameGroup(labels, group map[string]string) bool {
	for k, v := range group {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// exhaustedNotification is the alert of an exhausted budget, as one
// Alertmanager group of its own per SLO (and group).
func exhaustedNotification(opts incident.Options, st Status, start time.Time, status string, ends time.Time) incident.Notification {
	labels := map[string]string{
		"alertname": AlertExhausted, "service": st.Service, "slo": st.SLO,
		"burn_tier": BurnTierExhausted, opts.SeverityLabel: criticalValue(opts),
	}
	for k, v := range st.Group {
		labels[k] = v
	}
	name := st.Name()
	key := ExhaustedGroupPrefix + st.Service + "/" + st.SLO
	if g := st.GroupString(); g != "" {
		key += "/" + g
	}
	ann := map[string]string{
		"summary": fmt.Sprintf("Error budget of %s exhausted (%s)", name, st.RemainingText(2)),
		"description": "The SLO's error budget for its period is spent: the budget policy allows emergency changes only " +
			"until it recovers. sred raised this alert itself (the budget poll); it resolves when the SLO no longer burns over its shortest window, " +
			"or when the budget is positive again.",
	}
	ls := model.LabelSet{}
	for k, v := range labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return incident.Notification{
		Receiver: "sred", Status: status, GroupKey: key, Actor: Actor,
		GroupLabels:  map[string]string{"service": st.Service, "slo": st.SLO},
		CommonLabels: labels, CommonAnnotations: ann,
		Alerts: []incident.NotifiedAlert{{Status: status, Labels: labels, Annotations: ann, StartsAt: start, EndsAt: ends,
			Fingerprint: ls.Fingerprint().String()}},
	}
}

// criticalValue is a severity label value that maps to CRITICAL.
func criticalValue(opts incident.Options) string {
	var keys []string
	for k, v := range opts.SeverityMap {
		if v == incident.SeverityCritical {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "critical" {
			return k
		}
	}
	if len(keys) > 0 {
		return keys[0]
	}
	return string(incident.SeverityCritical)
}
