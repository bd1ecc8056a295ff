package ui

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/rootuip/sre/pkg/rollout"
)

// Rollouts is what the rollouts page needs from the stage runner.
type Rollouts interface {
	Definitions() []*rollout.Definition
	List(ctx context.Context, f rollout.ListFilter) ([]*rollout.Rollout, error)
	Get(ctx context.Context, id int64) (*rollout.Rollout, error)
}

type rolloutsData struct {
	Disabled    bool
	Definitions []*rollout.Definition
	Rollouts    []*rollout.Rollout
	// Selected is the rollout of ?id=, with its stages and history.
	Selected *rollout.Rollout
}

// rolloutsPage serves GET /rollouts: the loaded definitions, the latest
// rollouts with their state, stage and weight, and one rollout's stages
// and history (?id=). Actions are srectl's and the API's
// (docs/rollout-runner.md).
func (u *UI) rolloutsPage(w http.ResponseWriter, r *http.Request) {
	var d rolloutsData
	if u.src.Rollouts == nil {
		d.Disabled = true
		u.render(w, r, http.StatusOK, "rollouts.html", "Rollouts", "rollouts", d)
		return
	}
	d.Definitions = u.src.Rollouts.Definitions()
	var err error
	if d.Rollouts, err = u.src.Rollouts.List(r.Context(), rollout.ListFilter{Limit: 50}); err != nil {
		u.fail(w, r, err)
		return
	}
	if v := r.URL.Query().Get("id"); v != "" {
		id, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil || id <= 0 {
			u.errorPage(w, r, http.StatusBadRequest, errors.New("id: want a rollout ID"))
			return
		}
		if d.Selected, err = u.src.Rollouts.Get(r.Context(), id); err != nil {
			if errors.Is(err, rollout.ErrNotFound) {
				u.errorPage(w, r, http.StatusNotFound, err)
				return
			}
			u.fail(w, r, err)
			return
		}
	}
	for i, ro := range d.Rollouts {
		d.Rollouts[i] = rollout.RolloutFor(r.Context(), ro)
	}
	d.Selected = rollout.RolloutFor(r.Context(), d.Selected)
	u.render(w, r, http.StatusOK, "rollouts.html", "Rollouts", "rollouts", d)
}
