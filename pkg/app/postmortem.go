package app

import (
	"context"

	"github.com/rootuip/sre/pkg/postmortem"
	"github.com/rootuip/sre/pkg/statusupdate"
)

func init() {
	register(module{Name: "31-postmortem", Migrations: postmortem.Migrations, Setup: setupPostmortem})
}

// setupPostmortem mounts the post-mortem, action-item and status-update
// routes. Completing a post-mortem is the core's
// POST /api/v1/incidents/{id}/postmortem/complete.
func setupPostmortem(_ context.Context, a *App) error {
	(&postmortem.API{Store: postmortem.NewStore(a.DB, a.Incidents, nil)}).Register(a.Mux)
	(&statusupdate.Handler{Service: a.Incidents}).Register(a.Mux)
	return nil
}
