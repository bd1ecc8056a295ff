package ui

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/web"
)

// listPageSize is the number of incidents per page of /incidents.
const listPageSize = 50

type listData struct {
	Page     *incident.Page
	Status   string
	Service  string
	Severity string
	// Peak is the highest severity the incidents had (?peak_severity=,
	// incident.Filter's PeakSeverity).
	Peak     string
	Prev     string
	Next     string
	From, To int
}

// list serves GET /incidents: open incidents by default, filtered by
// status (open, all or one status), service, severity and the highest
// severity they had (peak_severity), 50 a page.
func (u *UI) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := listData{Status: q.Get("status"), Service: strings.TrimSpace(q.Get("service")), Severity: q.Get("severity"), Peak: q.Get("peak_severity")}
	f := incident.Filter{Service: d.Service, Limit: listPageSize}
	switch d.Status {
	case "", "open":
		d.Status = "open"
		f.Status = []incident.Status{incident.StatusTriggered, incident.StatusAcknowledged, incident.StatusInvestigating}
	case "all":
	case string(incident.StatusTriggered), string(incident.StatusAcknowledged), string(incident.StatusInvestigating),
		string(incident.StatusResolved), string(incident.StatusPostmortemDone):
		f.Status = []incident.Status{incident.Status(d.Status)}
	default:
		u.errorPage(w, r, http.StatusBadRequest, badRequest("status: unknown status %s (want %s)", limits.Quote(d.Status), incident.StatusFilterValues))
		return
	}
	if d.Severity != "" {
		sv, err := incident.ParseSeverity(d.Severity)
		if err != nil {
			u.errorPage(w, r, http.StatusBadRequest, fmt.Errorf("severity: %w", err))
			return
		}
		f.Severity = []incident.Severity{sv}
		d.Severity = string(sv)
	}
	if d.Peak != "" {
		sv, err := incident.ParseSeverity(d.Peak)
		if err != nil {
			u.errorPage(w, r, http.StatusBadRequest, fmt.Errorf("peak_severity: %w", err))
			return
		}
		f.PeakSeverity = []incident.Severity{sv}
		d.Peak = string(sv)
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 10_000_000 {
			u.errorPage(w, r, http.StatusBadRequest, badRequest("offset: want a non-negative integer, got %s", limits.Quote(v)))
			return
		}
		f.Offset = n
	}
	page, err := u.src.Incidents.List(r.Context(), f)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	d.Page = page
	d.From, d.To = f.Offset+1, f.Offset+len(page.Incidents)
	link := func(off int) string {
		v := url.Values{"status": {d.Status}}
		if d.Service != "" {
			v.Set("service", d.Service)
		}
		if d.Severity != "" {
			v.Set("severity", d.Severity)
		}
		if d.Peak != "" {
			v.Set("peak_severity", d.Peak)
		}
		v.Set("offset", strconv.Itoa(off))
		return "/incidents?" + v.Encode()
	}
	if f.Offset > 0 {
		d.Prev = link(max(0, f.Offset-listPageSize))
	}
	if f.Offset+len(page.Incidents) < page.Total {
		d.Next = link(f.Offset + listPageSize)
	}
	u.render(w, r, http.StatusOK, "list.html", "Incidents", "incidents", d)
}

// show serves GET /incidents/{id}. An ID typed in another case
// (inc-2026-0001) is redirected to the page of its stored form
// (/incidents/INC-2026-0001), query kept.
func (u *UI) show(w http.ResponseWriter, r *http.Request) {
	id, ok := u.resolveID(w, r)
	if !ok {
		return
	}
	if id != r.PathValue("id") {
		target := "/incidents/" + url.PathEscape(id)
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target, http.StatusFound)
		return
	}
	inc, err := u.src.Incidents.Get(r.Context(), id)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	tl, err := u.src.Incidents.TimelineView(r.Context(), id)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	tl = web.TimelineFor(r.Context(), tl)
	items, err := u.src.Incidents.ActionItems(r.Context(), id)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, http.StatusOK, "incident.html", inc.ID, "incidents", map[string]any{
		"Incident": inc, "Timeline": tl, "Items": items, "Escalation": u.src.Escalation != nil,
		"Causes": likelyCauses(tl), "Runbooks": u.incidentRunbooks(inc),
	})
}

// incidentRunbook is a runbook as an incident page shows it.
type incidentRunbook struct {
	Name, Description string
	URLs              []string
	// Runs: its matchers select the incident in its current state.
	// Otherwise an alert only links its documentation (Linked).
	Runs bool
	// Waits: its matchers select the incident but not in its current
	// severity or state; it runs once the incident is Trigger.
	Waits   bool
	Trigger string
}

// incidentRunbooks lists the runbooks an incident's alerts link (a
// runbook_url annotation naming one of a runbook's urls, or a `runbook:
// <name>` annotation) and those whose matchers select it. A link shows the
// runbook's documentation; only the matchers make it run.
func (u *UI) incidentRunbooks(inc *incident.Incident) []incidentRunbook {
	if u.src.Runbooks == nil {
		return nil
	}
	var out []incidentRunbook
	for _, rb := range u.src.Runbooks.Runbooks() {
		runs, linked := rb.Matches(inc), rb.Linked(inc)
		waits := !runs && inc.Status.Open() && rb.Selects(inc)
		if runs || linked || waits {
			out = append(out, incidentRunbook{Name: rb.Name, Description: rb.Description, URLs: rb.URLs, Runs: runs,
				Waits: waits, Trigger: rb.Trigger()})
		}
	}
	return out
}

// resolveID is the request's {id} in its stored form
// (incident.Service.ResolveID); an unknown ID is answered with the 404
// page and false.
func (u *UI) resolveID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id, err := u.src.Incidents.ResolveID(r.Context(), r.PathValue("id"))
	if err != nil {
		u.fail(w, r, err)
		return "", false
	}
	return id, true
}

// done redirects to the incident's page with the banner of code (a key of
// doneBanners).
func (u *UI) done(w http.ResponseWriter, r *http.Request, id, code string) {
	http.Redirect(w, r, "/incidents/"+url.PathEscape(id)+"?done="+code, http.StatusSeeOther)
}

// act serves the action buttons of an incident page:
// POST /incidents/{id}/{ack,investigate,note,status-update,snooze,escalate,resolve,postmortem-done}.
func (u *UI) act(w http.ResponseWriter, r *http.Request) {
	if !u.form(w, r) {
		return
	}
	id, ok := u.resolveID(w, r)
	if !ok {
		return
	}
	who := actor(r)
	field := func(name string) string { return strings.TrimSpace(r.PostFormValue(name)) }
	var err error
	var what string
	switch r.PathValue("action") {
	case "ack":
		_, err = u.src.Incidents.Acknowledge(r.Context(), id, who)
		what = "acknowledged"
	case "investigate":
		_, err = u.src.Incidents.Investigate(r.Context(), id, who, field("assignee"))
		what = "assigned"
	case "resolve":
		_, err = u.src.Incidents.Resolve(r.Context(), id, who, field("note"))
		what = "resolved"
	case "note":
		if field("text") == "" {
			err = badRequest("the note is empty")
			break
		}
		_, err = u.src.Incidents.AddNote(r.Context(), id, who, field("text"))
		what = "noted"
	case "status-update":
		su := incident.StatusUpdate{Actor: who, Impact: field("impact"), Actions: field("actions"),
			Public: field("public") == "on", PublicMessage: field("public_message")}
		if su.PublicMessage != "" && !su.Public {
			err = badRequest("public message: tick \"Public\" to publish it on the status page")
			break
		}
		if v := field("next_update"); v != "" {
			d, perr := web.ParseDuration(v)
			if perr != nil {
				err = badRequest("next update: %v", perr)
				break
			}
			su.NextUpdate = u.opts.Clock.Now().Add(time.Duration(d)).UTC()
		}
		_, err = u.src.Incidents.PostStatusUpdate(r.Context(), id, su)
		what = "updated"
	case "snooze":
		d, perr := web.ParseDuration(field("duration"))
		switch {
		case perr != nil:
			err = badRequest("snooze duration: %v", perr)
		case time.Duration(d) < incident.MinSnooze || time.Duration(d) > incident.MaxSnooze:
			err = badRequest("snooze duration must be between %s and %s", model.Duration(incident.MinSnooze), model.Duration(incident.MaxSnooze))
		default:
			_, err = u.src.Incidents.Snooze(r.Context(), id, who, time.Duration(d))
		}
		what = "snoozed"
	case "escalate":
		if u.src.Escalation == nil {
			err = badRequest("no escalation engine is configured")
			break
		}
		if _, err = u.src.Incidents.Get(r.Context(), id); err == nil {
			err = u.src.Escalation.EscalateNow(r.Context(), id, "escalated from the console by "+who)
		}
		what = "escalated"
	case "postmortem-done":
		_, err = u.src.Incidents.CompletePostmortem(r.Context(), id, who)
		what = "closed"
	default:
		u.errorPage(w, r, http.StatusNotFound, errors.New("unknown action "+limits.Quote(r.PathValue("action"))))
		return
	}
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.done(w, r, id, what)
}

// itemDone marks an action item done.
func (u *UI) itemDone(w http.ResponseWriter, r *http.Request) {
	if !u.form(w, r) {
		return
	}
	id, ok := u.resolveID(w, r)
	if !ok {
		return
	}
	item, err := strconv.ParseInt(r.PathValue("item"), 10, 64)
	if err != nil || item <= 0 {
		u.errorPage(w, r, http.StatusBadRequest, badRequest("invalid action item id %s", limits.Quote(r.PathValue("item"))))
		return
	}
	st := incident.ActionDone
	if _, err := u.src.Incidents.UpdateActionItem(r.Context(), id, item, actor(r), incident.ActionItemUpdate{State: &st}); err != nil {
		u.fail(w, r, err)
		return
	}
	u.done(w, r, id, "action-item-done")
}

func (u *UI) newForm(w http.ResponseWriter, r *http.Request) {
	u.render(w, r, http.StatusOK, "new.html", "Open an incident", "incidents", map[string]any{
		"Severities": incident.Severities, "Service": r.URL.Query().Get("service"),
	})
}

// create serves the "Open an incident" form.
func (u *UI) create(w http.ResponseWriter, r *http.Request) {
	if !u.form(w, r) {
		return
	}
	m := incident.ManualIncident{
		Title: r.PostFormValue("title"), Service: r.PostFormValue("service"),
		Severity: incident.Severity(r.PostFormValue("severity")), Description: r.PostFormValue("description"), Actor: actor(r),
	}
	if err := m.Check(); err != nil {
		u.errorPage(w, r, http.StatusBadRequest, err)
		return
	}
	inc, err := u.src.Incidents.Create(r.Context(), m)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.done(w, r, inc.ID, "opened")
}

// likelyCause is a recorded change named as the likely cause of an
// incident (its timeline's likely_cause entries, written by pkg/change).
type likelyCause struct {
	Text     string
	ChangeID string
}

func likelyCauses(tl []incident.TimelineEntry) []likelyCause {
	var out []likelyCause
	for _, e := range incident.LikelyCauses(tl) {
		c := likelyCause{Text: strings.TrimPrefix(e.Message, "likely cause: ")}
		if id, ok := e.Data["change_id"]; ok {
			c.ChangeID = fmt.Sprint(id)
		}
		out = append(out, c)
	}
	return out
}
