package ui

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/chaos"
)

// Chaos is what the chaos pages need from the chaos service.
type Chaos interface {
	Experiments() []*chaos.Experiment
	List(ctx context.Context, limit int) ([]chaos.RunInfo, error)
	Get(ctx context.Context, id string) (*chaos.RunInfo, error)
	Approve(ctx context.Context, id, by string, role auth.Role, comment string) (*chaos.RunInfo, error)
}

type chaosData struct {
	Disabled    bool
	Experiments []*chaos.Experiment
	Waiting     []chaos.RunInfo
	Runs        []chaos.RunInfo
}

// chaosPage serves GET /chaos: the loaded experiments, the runs waiting for
// approval (with the Approve button) and the last 50 runs.
func (u *UI) chaosPage(w http.ResponseWriter, r *http.Request) {
	var d chaosData
	if u.src.Chaos == nil {
		d.Disabled = true
		u.render(w, r, http.StatusOK, "chaos.html", "Chaos", "chaos", d)
		return
	}
	d.Experiments = u.src.Chaos.Experiments()
	sort.Slice(d.Experiments, func(i, j int) bool { return d.Experiments[i].Name < d.Experiments[j].Name })
	runs, err := u.src.Chaos.List(r.Context(), 50)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	for i := range runs {
		runs[i] = *chaos.RunFor(r.Context(), &runs[i])
	}
	for _, run := range runs {
		if run.Status == chaos.StatusWaiting {
			d.Waiting = append(d.Waiting, run)
		}
	}
	d.Runs = runs
	u.render(w, r, http.StatusOK, "chaos.html", "Chaos", "chaos", d)
}

// chaosRunPage serves GET /chaos/runs/{id}: the run's step timeline, its
// faults and the links to its reports.
func (u *UI) chaosRunPage(w http.ResponseWriter, r *http.Request) {
	if u.src.Chaos == nil {
		u.errorPage(w, r, http.StatusNotFound, errors.New("chaos experiments are not configured"))
		return
	}
	run, err := u.src.Chaos.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, http.StatusOK, "chaos_run.html", "Chaos run "+run.ID, "chaos", chaos.RunFor(r.Context(), run))
}

// chaosApprove approves a run waiting for approval (the approver's role
// must allow the experiment's approval.role).
func (u *UI) chaosApprove(w http.ResponseWriter, r *http.Request) {
	if !u.form(w, r) {
		return
	}
	if u.src.Chaos == nil {
		u.errorPage(w, r, http.StatusNotFound, errors.New("chaos experiments are not configured"))
		return
	}
	role := auth.RoleAdmin // the explicit no-auth mode acts as admin
	if p, ok := auth.FromContext(r.Context()); ok && !p.NoAuth {
		role = p.Role
	}
	id := r.PathValue("id")
	if _, err := u.src.Chaos.Approve(r.Context(), id, actor(r), role, strings.TrimSpace(r.PostFormValue("comment"))); err != nil {
		u.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/chaos/runs/"+url.PathEscape(id)+"?done=approved", http.StatusSeeOther)
}
