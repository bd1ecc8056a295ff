package ui

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/oncall"
	"github.com/rootuip/sre/pkg/slo"
)

// sloRow is one SLO (group) on the home page.
type sloRow struct {
	Service, SLO, Group string
	Objective           float64
	Achieved, Remaining *float64
	// RemainingText is the remaining budget as people read it (see
	// remainingText).
	RemainingText string
	State         string
	BurnRates     []budget.BurnRate
	// Alerts are the tiers of its generated alert rules that are pending
	// or firing in Prometheus (tier -> state).
	Alerts map[string]string
}

// serviceRow is one service with its SLOs and gate answer.
type serviceRow struct {
	Name string
	SLOs []sloRow
	// Worst is the worst budget state of its SLOs.
	Worst string
	// Gate is the deploy gate's answer to a normal change: allow, deny or
	// "no data".
	Gate       string
	GateReason string
	Open       bool // expanded: not green or matched a search
	// Firing counts its SLOs with a generated alert rule firing.
	Firing int
}

type homeData struct {
	Services   []serviceRow
	SLOCount   int
	Shown      int
	Query      string
	State      string
	States     []string
	Stats      *incident.Stats
	Severities []incident.Severity
	Open       []incident.Incident
	OpenTotal  int
	OnCall     []oncall.OnCallEntry
	OnCallErr  string
	NoBudgets  bool
	NoOnCall   bool
	// PollFailure is why the last poll could not read the budgets, its
	// error as the reader may read it in PollError (errText); Polled says
	// whether an earlier poll did (the states shown are its).
	PollFailure *budget.PollFailure
	PollError   string
	Polled      bool
}

var stateOrder = map[string]int{"exhausted": 0, "red": 1, "yellow": 2, "unknown": 3, "green": 4}

// gateAnswer is what the deploy gate would answer for a normal change of
// a service in this state (the gate applies the same policy; asking it
// would record a decision per page view).
func gateAnswer(sts []budget.Status) (answer, reason string) {
	worst, which := budget.Worst(sts)
	if which == nil {
		return "no data", "no SLO of the service has data yet"
	}
	if budget.Allows(worst, budget.ChangeNormal) {
		return "allow", fmt.Sprintf("error budget %s", worst)
	}
	name := which.SLO
	if g := which.GroupString(); g != "" {
		name += "{" + g + "}"
	}
	return "deny", fmt.Sprintf("error budget of %s is %s: %s", name, worst, budget.PolicyAction(worst))
}

// serviceStatuses is what the deploy gate weighs for a service, which
// answers for the whole service: the statuses of its other SLOs in snap
// and this SLO's own. The page of an SLO without data said "no data: no
// SLO of the service has data yet", and that of a green SLO "allow",
// while another SLO of the service made the gate deny.
func serviceStatuses(snap []budget.Status, service, slo string, own []budget.Status) []budget.Status {
	sts := append([]budget.Status(nil), own...)
	for _, st := range snap {
		if st.Service == service && st.SLO != slo {
			sts = append(sts, st)
		}
	}
	return sts
}

// home serves GET /: every service with its SLOs, grouped and sorted worst
// first, filtered by ?q= (substring of service or SLO) and ?state=
// (green, yellow, red, exhausted, unknown, or "attention" for not green).
func (u *UI) home(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := u.opts.Clock.Now()
	d := homeData{Query: strings.TrimSpace(r.URL.Query().Get("q")), State: r.URL.Query().Get("state"),
		States: []string{"attention", "exhausted", "red", "yellow", "green", "unknown"}, Severities: incident.Severities}
	if len(d.Query) > 200 {
		u.errorPage(w, r, http.StatusBadRequest, badRequest("search longer than 200 characters"))
		return
	}
	if _, ok := stateOrder[d.State]; !ok && d.State != "" && d.State != "attention" {
		u.errorPage(w, r, http.StatusBadRequest, badRequest("unknown state %s", limits.Quote(d.State)))
		return
	}
	if u.src.Budgets == nil {
		d.NoBudgets = true
	} else {
		d.Services, d.SLOCount, d.Shown = u.services(d.Query, d.State)
		d.PollFailure, d.Polled = u.src.Budgets.LastPollFailure(), len(u.src.Budgets.Snapshot()) > 0
		if d.PollFailure != nil {
			d.PollError = u.errText(r, d.PollFailure.Err)
		}
	}
	st, err := u.stats(ctx)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	d.Stats = st
	page, err := u.src.Incidents.List(ctx, incident.Filter{
		Status: []incident.Status{incident.StatusTriggered, incident.StatusAcknowledged, incident.StatusInvestigating}, Limit: 200})
	if err != nil {
		u.fail(w, r, err)
		return
	}
	sort.SliceStable(page.Incidents, func(i, j int) bool {
		return page.Incidents[i].Severity.Rank() < page.Incidents[j].Severity.Rank()
	})
	d.Open, d.OpenTotal = page.Incidents, page.Total
	if len(d.Open) > 20 {
		d.Open = d.Open[:20]
	}
	if u.src.OnCall == nil {
		d.NoOnCall = true
	} else if d.OnCall, err = u.src.OnCall.Who(ctx, "", "", now, 0); err != nil {
		d.OnCallErr = u.errText(r, err)
	}
	u.render(w, r, http.StatusOK, "home.html", "Services", "home", d)
}

// services groups the SLOs by service: every configured objective shows,
// with its last polled budget when there is one.
func (u *UI) services(q, state string) ([]serviceRow, int, int) {
	byService := map[string][]budget.Status{}
	firing := budget.FiringBySLO(u.src.Budgets.AlertSnapshot())
	seen := map[string]bool{}
	for _, st := range u.src.Budgets.Snapshot() {
		byService[st.Service] = append(byService[st.Service], st)
		seen[st.Service+"/"+st.SLO] = true
	}
	for _, o := range u.src.Budgets.Objectives() {
		if !seen[o.Key()] {
			byService[o.Service] = append(byService[o.Service], budget.Status{
				Service: o.Service, SLO: o.SLO.Name, Objective: o.SLO.ObjectiveRatio(), State: budget.StateUnknown})
		}
	}
	lq := strings.ToLower(q)
	var out []serviceRow
	total, shown := 0, 0
	for name, sts := range byService {
		sr := serviceRow{Name: name}
		sr.Gate, sr.GateReason = gateAnswer(sts)
		worst, _ := budget.Worst(sts)
		sr.Worst = string(worst)
		for _, st := range sts {
			total++
			s := string(st.State)
			switch {
			case state == "attention" && (s == "green" || s == "unknown"):
				continue
			case state != "" && state != "attention" && s != state:
				continue
			case lq != "" && !strings.Contains(strings.ToLower(name+"/"+st.SLO+" "+st.GroupString()), lq):
				continue
			}
			sr.SLOs = append(sr.SLOs, sloRow{Service: st.Service, SLO: st.SLO, Group: st.GroupString(), Objective: st.Objective,
				Achieved: st.SLIAchieved, Remaining: st.Budget.RemainingRatio, RemainingText: remainingText(st), State: s, BurnRates: st.BurnRates,
				Alerts: firing[st.Service+"/"+st.SLO]})
		}
		for _, row := range sr.SLOs {
			for _, state := range row.Alerts {
				if state == budget.RuleFiring {
					sr.Firing++
					break
				}
			}
		}
		if len(sr.SLOs) == 0 {
			continue
		}
		shown += len(sr.SLOs)
		sort.Slice(sr.SLOs, func(i, j int) bool {
			a, b := sr.SLOs[i], sr.SLOs[j]
			if stateOrder[a.State] != stateOrder[b.State] {
				return stateOrder[a.State] < stateOrder[b.State]
			}
			return a.SLO+a.Group < b.SLO+b.Group
		})
		sr.Open = q != "" || state != "" || (sr.Worst != "green" && sr.Worst != string(budget.StateUnknown))
		out = append(out, sr)
	}
	sort.Slice(out, func(i, j int) bool {
		if stateOrder[out[i].Worst] != stateOrder[out[j].Worst] {
			return stateOrder[out[i].Worst] < stateOrder[out[j].Worst]
		}
		return out[i].Name < out[j].Name
	})
	return out, total, shown
}

// tierRow is one burn-rate alert tier with the current rates of its windows.
type tierRow struct {
	Name, Severity string
	Long, Short    string
	Threshold      float64
	LongRate       *float64
	ShortRate      *float64
	Firing         bool
	// NoData: a window has no burn rate (no traffic recorded yet, or the
	// recording rules are not loaded), so the tier is neither above nor
	// below its threshold.
	NoData            bool
	LongBar, ShortBar int // bar widths in percent, the threshold at 50
}

type sloData struct {
	Service, SLO string
	Objective    budget.Objective
	Ratio        float64
	Period       string
	Statuses     []budget.Status
	Tiers        []tierRow
	BurnDown     []chart
	BurnCharts   []chart
	Events       []budget.Event
	Incidents    []incident.Incident
	Gate         string
	GateReason   string
	DetailErr    string
	// Rules are the SLO's generated alert rules as Prometheus evaluates
	// them; RulesErr says why they could not be read.
	Rules    []budget.AlertRule
	RulesErr string
}

// sloPage serves GET /slos/{service}/{slo}.
func (u *UI) sloPage(w http.ResponseWriter, r *http.Request) {
	if u.src.Budgets == nil {
		u.errorPage(w, r, http.StatusNotFound, badRequest("no SLOs are configured (slos.spec_files)"))
		return
	}
	service, name := r.PathValue("service"), r.PathValue("slo")
	d := sloData{Service: service, SLO: name}
	found := false
	for _, o := range u.src.Budgets.Objectives() {
		if o.Service == service && o.SLO.Name == name {
			d.Objective, found = o, true
			d.Ratio, d.Period = o.SLO.ObjectiveRatio(), o.PeriodName()
			break
		}
	}
	if !found {
		u.errorPage(w, r, http.StatusNotFound, fmt.Errorf("SLO %s of service %s: %w", limits.Quote(name), limits.Quote(service), budget.ErrNotFound))
		return
	}
	for _, st := range u.src.Budgets.Snapshot() {
		if st.Service == service && st.SLO == name {
			d.Statuses = append(d.Statuses, st)
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if det, err := u.src.Budgets.Detail(ctx, service, name, u.opts.Clock.Now()); err != nil {
		d.DetailErr = u.errText(r, err)
	} else {
		d.Statuses, d.Events = det.Statuses, det.Events
		tiers := d.Objective.SLO.Windows()
		for _, h := range det.History {
			c := chart{Title: groupTitle(h.Group), Points: h.Points}
			if h.Metric == "remaining_ratio" {
				c.Unit, c.Title = "%", "Budget remaining "+c.Title
				c.Lines = []hline{{Value: 0, Label: "exhausted"}}
				d.BurnDown = append(d.BurnDown, c)
				continue
			}
			c.Unit, c.Title = "×", "Burn rate over "+h.Window+" "+c.Title
			for _, t := range tiers {
				if model.Duration(t.Long).String() == h.Window {
					c.Lines = append(c.Lines, hline{Value: t.BurnRate, Label: t.Name + " " + trimFloat(t.BurnRate, 2) + "×"})
				}
			}
			d.BurnCharts = append(d.BurnCharts, c)
		}
	}
	if rules, err := u.src.Budgets.AlertRules(ctx); err != nil {
		d.RulesErr = u.errText(r, err)
	} else {
		for _, rl := range rules {
			if rl.Service == service && rl.SLO == name {
				d.Rules = append(d.Rules, rl)
			}
		}
		d.Rules = budget.RulesFor(r.Context(), d.Rules)
	}
	d.Gate, d.GateReason = gateAnswer(serviceStatuses(u.src.Budgets.Snapshot(), service, name, d.Statuses))
	if len(d.Statuses) > 0 {
		d.Tiers = tierRows(d.Objective.SLO.Windows(), d.Statuses[0])
	}
	page, err := u.src.Incidents.List(r.Context(), incident.Filter{Service: service, Limit: 200, WithAlerts: true})
	if err != nil {
		u.fail(w, r, err)
		return
	}
	for _, inc := range page.Incidents {
		if !aboutSLO(inc, name) {
			continue
		}
		d.Incidents = append(d.Incidents, inc)
		if len(d.Incidents) == 10 {
			break
		}
	}
	u.render(w, r, http.StatusOK, "slo.html", service+"/"+name, "home", d)
}

// aboutSLO reports whether an incident of the SLO's service concerns the
// SLO: it names no SLO, the alert that opened it is the SLO's, or one of
// its alerts is (the SLO's pages joined the incident another SLO's alert
// opened, as in one outage of a service).
func aboutSLO(inc incident.Incident, name string) bool {
	if v, ok := inc.Labels["slo"]; !ok || v == name {
		return true
	}
	for _, a := range inc.Alerts {
		if a.Labels["slo"] == name {
			return true
		}
	}
	return false
}

func groupTitle(g map[string]string) string {
	if len(g) == 0 {
		return ""
	}
	keys := make([]string, 0, len(g))
	for k := range g {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + g[k]
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// tierRows pairs each alert tier with the current burn rates of its long
// and short windows: the tier's alert fires when both exceed its threshold.
func tierRows(ws []slo.Window, st budget.Status) []tierRow {
	rates := map[string]*float64{}
	for _, br := range st.BurnRates {
		rates[br.Window] = br.Rate
	}
	bar := func(v *float64, th float64) int {
		if v == nil || th <= 0 {
			return 0
		}
		p := int(*v / th * 50)
		return min(max(p, 0), 100)
	}
	var out []tierRow
	for _, w := range ws {
		t := tierRow{Name: w.Name, Severity: w.Severity, Long: model.Duration(w.Long).String(), Short: model.Duration(w.Short).String(),
			Threshold: w.BurnRate}
		t.LongRate, t.ShortRate = rates[t.Long], rates[t.Short]
		t.NoData = t.LongRate == nil || t.ShortRate == nil
		t.Firing = !t.NoData && *t.LongRate > w.BurnRate && *t.ShortRate > w.BurnRate
		t.LongBar, t.ShortBar = bar(t.LongRate, w.BurnRate), bar(t.ShortRate, w.BurnRate)
		out = append(out, t)
	}
	return out
}

// remainingText is the remaining budget of the console: its percentage,
// "< -100% (N x the budget spent)" below -100% (budget.RemainingPercent)
// and the data's coverage while it does not cover the period.
func remainingText(st budget.Status) string {
	r := st.Budget.RemainingRatio
	if r == nil {
		return "–"
	}
	s := pct(*r)
	if *r < -1 {
		s = budget.RemainingPercent(r, 2)
	}
	if c := st.CoveredText(); c != "" {
		s += " over " + c
	}
	return s
}
