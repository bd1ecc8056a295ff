package app

import (
	"context"

	"github.com/rootuip/sre/pkg/change"
	"github.com/rootuip/sre/pkg/config"
)

// Changes is change records and the DORA measures (docs/changes.md): it
// owns the changes section. Built after Budget (the deploy gate gates
// changes and counts them for its yellow quota) and Core (incidents link
// to changes).
var Changes = Spec[change.Config]{
	Name:       "changes",
	Sections:   []string{"changes"},
	Migrations: change.Migrations,
	Load: func(cfg *config.Config) (change.Config, error) {
		c := change.DefaultConfig
		err := cfg.Decode("changes", &c)
		return c, err
	},
	Build: buildChanges,
}

// buildChanges serves /api/v1/changes, links incidents to the changes
// before them (an incident hook), exports the DORA measures and gives the
// deploy gate its yellow quota.
func buildChanges(_ context.Context, a *App, c change.Config) (func(context.Context, change.Config), error) {
	opts := change.Options{DB: a.DB, Logger: a.Logger.With("component", "changes"), Registerer: a.Registry, Bus: a.Bus}
	if a.Budgets != nil {
		opts.Gate = a.Budgets
	}
	svc := change.New(opts)
	apply := func(c change.Config) {
		svc.SetConfig(c)
		if a.Budgets != nil {
			a.Budgets.SetChangeQuota(svc, c.YellowMaxChangesPerDay)
		}
	}
	apply(c)
	if a.Incidents != nil {
		a.AddHook(svc.Hook(a.Incidents))
		// Incident exports carry their change links (and the changes).
		a.Incidents.AddExportPart("changes", change.ExportPart{Dialect: a.DB.Dialect})
	}
	svc.Register(a.Mux)
	a.Changes = svc
	return func(_ context.Context, c change.Config) { apply(c) }, nil
}
