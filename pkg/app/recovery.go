package app

import (
	"context"

	"github.com/rootuip/sre/pkg/recovery"
)

// Recovery marks the open incidents of SLOs recovering once every short
// burn-rate window is back under its threshold (escalation stops, the
// all-clear goes out). It reads the burn rates through a.Budgets and has
// no section of its own: the prometheus and slos sections say where and
// what to check (nothing is checked without Prometheus).
var Recovery = Spec[struct{}]{
	Name:  "recovery",
	Build: buildRecovery,
}

func buildRecovery(_ context.Context, a *App, _ struct{}) (func(context.Context, struct{}), error) {
	if a.Budgets == nil || a.Incidents == nil {
		return nil, nil
	}
	known := func(service, sloName string) bool {
		for _, o := range a.Budgets.Objectives() {
			if o.Service == service && o.SLO.Name == sloName {
				return true
			}
		}
		return false
	}
	c := recovery.New(a.DB, a.Budgets, a.Incidents, known, recovery.Options{
		Logger: a.Logger.With("component", "recovery"), Registerer: a.Registry,
	})
	a.AddHook(c)
	a.AddActor(Actor{Name: "recovery-checker", Execute: c.Run})
	return nil, nil
}
