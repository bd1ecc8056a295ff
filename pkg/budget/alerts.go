package budget

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/rulegen"
)

// EventAlertState is published when a poll sees a generated alert rule of
// an SLO change state in Prometheus (inactive, pending, firing).
const EventAlertState = "budget.alert_state"

// Alert rule states, as Prometheus reports them.
const (
	RuleInactive = "inactive"
	RulePending  = "pending"
	RuleFiring   = "firing"
)

// AlertRule is one alert rule generated for an SLO (package rulegen) as
// the Prometheus rules API reports it.
type AlertRule struct {
	Service  string `json:"service"`
	SLO      string `json:"slo"`
	Name     string `json:"name"`      // SLOBurnRatePage, SLOBurnRateTicket, SLOErrorBudgetConsumed
	BurnTier string `json:"burn_tier"` // the tier's name, or "budget"
	Severity string `json:"severity"`
	Group    string `json:"group"` // the rule group in Prometheus
	// State is the rule's state: inactive, pending or firing (the worst of
	// its alerts).
	State  string `json:"state"`
	Health string `json:"health"`
	// LastError is the rule's last evaluation error.
	LastError      string        `json:"last_error,omitempty"`
	For            time.Duration `json:"for"`
	LastEvaluation time.Time     `json:"last_evaluation"`
	Query          string        `json:"query"`
	Alerts         []RuleAlert   `json:"alerts"`
}

// RuleAlert is one active alert of a rule (one per SLO group).
type RuleAlert struct {
	Labels   map[string]string `json:"labels"`
	State    string            `json:"state"`
	ActiveAt time.Time         `json:"active_at"`
	Value    string            `json:"value"`
}

// Key is the rule's identity: service/slo/burn_tier.
func (r AlertRule) Key() string { return r.Service + "/" + r.SLO + "/" + r.BurnTier }

// AlertRules reads the alert rules that package rulegen generated for the
// configured SLOs from Prometheus' rules API, with their state, sorted by
// service, SLO and tier. Rules of SLOs that are not configured are left
// out; so are rules Prometheus has not loaded (nothing to report).
func (s *Service) AlertRules(ctx context.Context) ([]AlertRule, error) {
	_, objs, prom, perr := s.state()
	if prom == nil {
		return nil, perr
	}
	known := make(map[string]bool, len(objs))
	for _, o := range objs {
		known[o.Key()] = true
	}
	ctx, cancel := prom.ctx(ctx)
	defer cancel()
	res, err := prom.API.Rules(ctx, nil)
	if err != nil {
		return nil, &UnavailableError{URL: prom.URL, Query: "GET /api/v1/rules", Err: err}
	}
	var out []AlertRule
	for _, g := range res.Groups {
		for _, r := range g.Rules {
			ar, ok := r.(v1.AlertingRule)
			if !ok {
				continue
			}
			svc, name, tier := string(ar.Labels[rulegen.LabelService]), string(ar.Labels[rulegen.LabelSLO]), string(ar.Labels[rulegen.LabelBurnTier])
			if tier == "" || !known[svc+"/"+name] {
				continue
			}
			rule := AlertRule{Service: svc, SLO: name, Name: ar.Name, BurnTier: tier, Severity: string(ar.Labels[rulegen.LabelSeverity]),
				Group: g.Name, State: ruleState(ar.State), Health: string(ar.Health), LastError: ar.LastError,
				For: time.Duration(ar.Duration * float64(time.Second)), LastEvaluation: ar.LastEvaluation, Query: ar.Query,
				Alerts: []RuleAlert{}}
			for _, a := range ar.Alerts {
				if a == nil {
					continue
				}
				rule.Alerts = append(rule.Alerts, RuleAlert{Labels: labelMap(a.Labels), State: string(a.State), ActiveAt: a.ActiveAt, Value: a.Value})
			}
			out = append(out, rule)
		}
	}
	slices.SortFunc(out, func(a, b AlertRule) int {
		return strings.Compare(a.Service+"\x00"+a.SLO+"\x00"+a.Severity+"\x00"+a.BurnTier, b.Service+"\x00"+b.SLO+"\x00"+b.Severity+"\x00"+b.BurnTier)
	})
	return out, nil
}

// RulesFor returns rules as the principal of ctx may read them: for a
// caller who is not an admin, the server's file paths in each rule's last
// evaluation error (the text of Prometheus or of the ruler, which can name
// a credentials file it cannot read) are cut to their base names
// (auth.RedactPaths); URLs stay whole. rules is not changed; an admin gets
// it as it is.
func RulesFor(ctx context.Context, rules []AlertRule) []AlertRule {
	return auth.ViewEach(ctx, rules, func(r *AlertRule) { auth.CutPaths(&r.LastError) })
}

// ruleState maps the rules API's state (empty before the first
// evaluation) to inactive, pending or firing.
func ruleState(s string) string {
	switch s {
	case RulePending, RuleFiring:
		return s
	}
	return RuleInactive
}

func labelMap(ls model.LabelSet) map[string]string {
	m := make(map[string]string, len(ls))
	for k, v := range ls {
		m[string(k)] = string(v)
	}
	return m
}

// AlertSnapshot returns the generated alert rules as of the last poll that
// could read them (nil before).
func (s *Service) AlertSnapshot() []AlertRule {
	s.snapMu.RLock()
	defer s.snapMu.RUnlock()
	return s.alerts
}

// pollAlerts reads the generated alert rules, keeps them for the pages and
// publishes an EventAlertState for every rule whose state changed since the
// last poll. A failure is logged: the budgets were read, the rules API may
// be refused (e.g. by a proxy that only forwards queries).
func (s *Service) pollAlerts(ctx context.Context, now time.Time) {
	rules, err := s.AlertRules(ctx)
	if err != nil {
		s.logger.Debug("read alert rules", "err", err)
		return
	}
	s.snapMu.Lock()
	prev := s.alerts
	s.alerts = rules
	s.snapMu.Unlock()
	if s.bus == nil {
		return
	}
	old := make(map[string]string, len(prev))
	for _, r := range prev {
		old[r.Key()] = r.State
	}
	for _, r := range rules {
		from, ok := old[r.Key()]
		if !ok {
			from = RuleInactive
		}
		if from == r.State {
			continue
		}
		s.bus.Publish(events.Event{Type: EventAlertState, Time: now, Service: r.Service, Data: map[string]any{
			"slo": r.SLO, "alertname": r.Name, "burn_tier": r.BurnTier, "severity": r.Severity, "from": from, "to": r.State,
			"message": fmt.Sprintf("%s (%s) of %s/%s is %s", r.Name, r.BurnTier, r.Service, r.SLO, r.State),
		}})
	}
}

// FiringBySLO returns, per service/slo key, the tiers of its generated
// alert rules that are firing or pending, as of the last poll.
func FiringBySLO(rules []AlertRule) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, r := range rules {
		if r.State == RuleInactive {
			continue
		}
		k := r.Service + "/" + r.SLO
		if out[k] == nil {
			out[k] = map[string]string{}
		}
		out[k][r.BurnTier] = r.State
	}
	return out
}
