package app

import (
	"context"

	"github.com/rootuip/sre/pkg/noise"
	"github.com/rootuip/sre/pkg/ui"
)

// UI is the SRE console: the home page (/), SLO, incident, on-call,
// runbook and chaos pages, the dependency graph and the noise report.
// Every message sred sends links to <external_url>/incidents/<id>. It is
// built last: it reads what the subsystems before it set on the App (a nil
// one shows as not configured).
var UI = Spec[struct{}]{
	Name: "ui",
	Build: func(ctx context.Context, a *App, _ struct{}) (func(context.Context, struct{}), error) {
		return nil, setupUI(ctx, a)
	},
}

func setupUI(_ context.Context, a *App) error {
	src := ui.Sources{Incidents: a.Incidents}
	if a.Escalation != nil {
		src.Escalation = a.Escalation
	}
	if a.OnCall != nil {
		src.OnCall = a.OnCall
	}
	if a.Runbooks != nil {
		src.Runbooks = a.Runbooks
	}
	if a.Budgets != nil {
		src.Budgets = a.Budgets
	}
	if a.Changes != nil {
		src.Changes = a.Changes
	}
	if a.Graph != nil {
		src.Graph = a.Graph
	}
	src.Noise = func(ctx context.Context, o noise.Options) (*noise.Report, error) { return noise.Build(ctx, a.DB, o) }
	if l := a.Audit(); l != nil {
		src.Audit = l
	}
	opts := ui.Options{Logger: a.Logger.With("component", "ui"), AllowAnonymous: a.NoAuth()}
	if a.Chaos != nil {
		src.Chaos = a.Chaos
	}
	if a.Scaling != nil {
		src.Scaling = a.Scaling
	}
	if a.Rollouts != nil {
		src.Rollouts = a.Rollouts
	}
	if a.Chaos != nil || a.Scaling != nil || a.Rollouts != nil {
		opts.Extra = nil
		for _, x := range ui.DefaultExtra {
			if x.Name == "Chaos" && a.Chaos != nil {
				x.Path = "/chaos"
			}
			if x.Name == "Scaling" && a.Scaling != nil {
				x.Path = "/scaling"
			}
			if x.Name == "Rollouts" && a.Rollouts != nil {
				x.Path = "/rollouts"
			}
			opts.Extra = append(opts.Extra, x)
		}
	}
	// Until the authentication middleware sets a principal on every
	// request, requests without one act as in the no-auth mode.
	ui.New(src, opts).Register(a.Mux)
	return nil
}
