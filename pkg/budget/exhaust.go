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
// turn an exhausted error budget into an incident (the guide lists error
// budget exhaustion as an incident trigger).
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
	ExhaustedGroupPrefix = "budget-exhausted/"
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
	msg := "error budget exhausted: " + ev.Message
	page, err := inc.List(ctx, incident.Filter{Service: st.Service, Limit: 1000,
		Status: []incident.Status{incident.StatusTriggered, incident.StatusAcknowledged, incident.StatusInvestigating}})
	if err != nil {
		return "", false, err
	}
	for _, i := range page.Incidents { // newest first
		if i.Labels["slo"] != st.SLO || !sameGroup(i.Labels, st.Group) {
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
	name := st.Service + "/" + st.SLO
	key := ExhaustedGroupPrefix + name
	if g := st.GroupString(); g != "" {
		name += "{" + g + "}"
		key += "/" + g
	}
	rem := "no"
	if st.Budget.RemainingRatio != nil {
		rem = fmt.Sprintf("%.2f%%", *st.Budget.RemainingRatio*100)
	}
	ann := map[string]string{
		"summary": fmt.Sprintf("Error budget of %s exhausted (%s remaining)", name, rem),
		"description": "The SLO's error budget for its period is spent: the budget policy allows emergency changes only " +
			"until it recovers. sred opened this incident itself (the budget poll); it resolves when the budget is positive again.",
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
