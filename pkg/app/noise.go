package app

import (
	"context"
	"time"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/noise"
)

// Noise is the alert noise report (GET /api/v1/reports/noise): pages per
// alert rule and service, with suggestions. It has no configuration.
var Noise = Spec[struct{}]{
	Name: "noise",
	Build: func(_ context.Context, a *App, _ struct{}) (func(context.Context, struct{}), error) {
		// The incident service's clock, read at each call: tests set it
		// after the app is built.
		clk := clock.Func(func() time.Time { return a.Incidents.Clock.Now() })
		(&noise.API{DB: a.DB, Clock: clk}).Register(a.Mux)
		if err := a.Registry.Register(&noise.Collector{DB: a.DB, Clock: clk, Logger: a.Logger.With("component", "noise")}); err != nil {
			return nil, err
		}
		return nil, nil
	},
}
