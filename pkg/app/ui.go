package app

import (
	"context"

	"github.com/rootuip/sre/pkg/ui"
)

// UI is the incident pages that every message links to.
var UI = Spec[struct{}]{
	Name: "ui",
	Build: func(ctx context.Context, a *App, _ struct{}) (func(context.Context, struct{}), error) {
		return nil, setupUI(ctx, a)
	},
}

// setupUI mounts the incident pages that every message links to
// (<external_url>/incidents/<id>).
func setupUI(_ context.Context, a *App) error {
	ui.New(a.Incidents, a.Logger.With("component", "ui")).Register(a.Mux)
	return nil
}
