package app

import (
	"context"

	"github.com/rootuip/sre/pkg/ui"
)

func init() {
	register(module{Name: "90-ui", Setup: setupUI})
}

// setupUI mounts the incident pages that every message links to
// (<external_url>/incidents/<id>).
func setupUI(_ context.Context, a *App) error {
	ui.New(a.Incidents, a.Logger.With("component", "ui")).Register(a.Mux)
	return nil
}
