package ui

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/oncall"
	"github.com/rootuip/sre/pkg/runbook"
)

type oncallData struct {
	Disabled   bool
	Schedules  []oncallSchedule
	Services   []string
	Service    string
	Severity   string
	Severities []incident.Severity
	Sim        *escalation.Simulation
	SimErr     string
	// SimSteps are Sim's steps with the zone each is shown in; SimZones
	// names those zones, for the line above the table.
	SimSteps []simStep
	SimZones string
}

// simStep is one step of the dry run with the zone its time is shown in.
type simStep struct {
	escalation.PlannedPage
	Loc *time.Location
}

// simSteps gives each step of sim the zone of the first schedule its level
// pages, else of the policy's first schedule, else UTC (the zones the shift
// tables use), and names the zones used.
func simSteps(sim *escalation.Simulation, oc *oncall.Config) ([]simStep, string) {
	if sim == nil {
		return nil, ""
	}
	zone := func(schedules []string) *time.Location {
		for _, name := range schedules {
			if s := oc.Schedule(name); s != nil {
				return s.Location()
			}
		}
		return nil
	}
	policyLoc := time.UTC
	var levels []escalation.FrozenLevel
	if sim.Frozen != nil {
		levels = sim.Frozen.Levels
		for _, l := range levels {
			if loc := zone(l.Schedules); loc != nil {
				policyLoc = loc
				break
			}
		}
	}
	out := make([]simStep, 0, len(sim.Steps))
	var names []string
	for _, p := range sim.Steps {
		loc := policyLoc
		if p.Level >= 0 && p.Level < len(levels) {
			if l := zone(levels[p.Level].Schedules); l != nil {
				loc = l
			}
		}
		if !slices.Contains(names, loc.String()) {
			names = append(names, loc.String())
		}
		out = append(out, simStep{PlannedPage: p, Loc: loc})
	}
	return out, strings.Join(names, ", ")
}

// oncallSchedule is one schedule of the on-call page with its zone, the
// zone its shifts are shown in (as `srectl oncall` shows them).
type oncallSchedule struct {
	oncall.OnCallEntry
	// Loc is the schedule's zone; nil (the shifts' own zone) when this
	// sred does not know the zone's name.
	Loc *time.Location
}

// oncallSchedules gives each entry its zone.
func oncallSchedules(entries []oncall.OnCallEntry) []oncallSchedule {
	out := make([]oncallSchedule, 0, len(entries))
	for _, e := range entries {
		s := oncallSchedule{OnCallEntry: e}
		if e.TimeZone != "" {
			if loc, err := time.LoadLocation(e.TimeZone); err == nil {
				s.Loc = loc
			}
		}
		out = append(out, s)
	}
	return out
}

// oncallPage serves GET /oncall: who is on call per schedule with the next
// 7 days of shifts (overrides marked) in the schedule's zone, and, for ?service=&severity=, who
// each escalation level would page (what `srectl escalation simulate` shows).
func (u *UI) oncallPage(w http.ResponseWriter, r *http.Request) {
	d := oncallData{Severities: incident.Severities, Service: strings.TrimSpace(r.URL.Query().Get("service")),
		Severity: r.URL.Query().Get("severity")}
	if u.src.OnCall == nil {
		d.Disabled = true
		u.render(w, r, http.StatusOK, "oncall.html", "On call", "oncall", d)
		return
	}
	now := u.opts.Clock.Now()
	entries, err := u.src.OnCall.Who(r.Context(), "", "", now, 7)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	d.Schedules = oncallSchedules(entries)
	for _, s := range u.src.OnCall.Config().Services {
		d.Services = append(d.Services, s.Name)
	}
	if d.Service != "" && u.src.Escalation != nil {
		if len(d.Service) > 200 {
			u.errorPage(w, r, http.StatusBadRequest, badRequest("service longer than 200 characters"))
			return
		}
		sev := "critical"
		if d.Severity != "" {
			sv, err := incident.ParseSeverity(d.Severity)
			if err != nil {
				u.errorPage(w, r, http.StatusBadRequest, err)
				return
			}
			sev = strings.ToLower(string(sv))
		}
		d.Sim, err = u.src.Escalation.Simulate(r.Context(), map[string]string{"service": d.Service, "severity": sev}, now)
		if err != nil {
			d.SimErr = u.errText(r, err)
		}
		d.SimSteps, d.SimZones = simSteps(d.Sim, u.src.OnCall.Config())
	}
	u.render(w, r, http.StatusOK, "oncall.html", "On call", "oncall", d)
}

type runbooksData struct {
	Disabled bool
	// DryRun is runbooks.dry_run: every runbook runs dry.
	DryRun   bool
	Runbooks []runbook.RunbookInfo
	Pending  []*runbook.Run
	Runs     []*runbook.Run
}

// runbooksPage serves GET /runbooks: the runbooks, the runs waiting for
// approval and the last 20 runs with their step output.
func (u *UI) runbooksPage(w http.ResponseWriter, r *http.Request) {
	var d runbooksData
	if u.src.Runbooks == nil {
		d.Disabled = true
		u.render(w, r, http.StatusOK, "runbooks.html", "Runbooks", "runbooks", d)
		return
	}
	d.DryRun = u.src.Runbooks.DryRun()
	for _, rb := range u.src.Runbooks.Runbooks() {
		info := rb.Info()
		info.DryRun = info.DryRun || d.DryRun
		d.Runbooks = append(d.Runbooks, info)
	}
	var err error
	if d.Pending, err = u.src.Runbooks.ListRuns(r.Context(), runbook.RunFilter{Status: runbook.RunWaitingApproval, Limit: 100}); err != nil {
		u.fail(w, r, err)
		return
	}
	runs, err := u.src.Runbooks.ListRuns(r.Context(), runbook.RunFilter{Limit: 20})
	if err != nil {
		u.fail(w, r, err)
		return
	}
	for _, run := range runs {
		full, err := u.src.Runbooks.GetRun(r.Context(), run.ID)
		if err != nil {
			u.fail(w, r, err)
			return
		}
		d.Runs = append(d.Runs, runbook.RunFor(r.Context(), full))
	}
	d.Pending = runbook.RunsFor(r.Context(), d.Pending)
	u.render(w, r, http.StatusOK, "runbooks.html", "Runbooks", "runbooks", d)
}

// runAction approves or denies (cancels) a run waiting for approval.
func (u *UI) runAction(w http.ResponseWriter, r *http.Request) {
	if !u.form(w, r) {
		return
	}
	if u.src.Runbooks == nil {
		u.errorPage(w, r, http.StatusNotFound, badRequest("no runbooks are configured"))
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		u.errorPage(w, r, http.StatusBadRequest, badRequest("invalid run id %s", limits.Quote(r.PathValue("id"))))
		return
	}
	comment := strings.TrimSpace(r.PostFormValue("comment"))
	switch r.PathValue("action") {
	case "approve":
		_, err = u.src.Runbooks.Approve(r.Context(), id, actor(r), comment)
	case "deny":
		if comment == "" {
			comment = "denied from the console"
		}
		_, err = u.src.Runbooks.Cancel(r.Context(), id, actor(r), comment)
	default:
		u.errorPage(w, r, http.StatusNotFound, badRequest("unknown action %s", limits.Quote(r.PathValue("action"))))
		return
	}
	if err != nil {
		u.fail(w, r, err)
		return
	}
	done := "approved"
	if r.PathValue("action") == "deny" {
		done = "denied"
	}
	http.Redirect(w, r, "/runbooks?done="+done, http.StatusSeeOther)
}
