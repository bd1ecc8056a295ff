package app

import (
	"context"
	"time"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/config"
	"github.com/rootuip/sre/pkg/sla"
	"github.com/rootuip/sre/pkg/slo"
)

func init() {
	register(module{Name: "50-budget", Migrations: budget.Migrations, Setup: setupBudget})
}

// budgetConfig loads what the budget and SLA subsystems need from a config:
// the SLO specs named by slos.spec_files and the Prometheus client.
func budgetConfig(cfg *config.Config) (budget.Config, []*slo.Spec, *budget.Prom, error) {
	bc := cfg.SLOs
	bc.Gate.OverrideTokenFiles = nil
	for _, f := range cfg.SLOs.Gate.OverrideTokenFiles {
		bc.Gate.OverrideTokenFiles = append(bc.Gate.OverrideTokenFiles, cfg.ResolvePath(f))
	}
	specs, err := budget.LoadSpecs(bc, cfg.ResolvePath)
	if err != nil {
		return bc, nil, nil, err
	}
	var prom *budget.Prom
	if cfg.Prometheus.URL != "" {
		prom, err = budget.NewProm(cfg.Prometheus.URL, cfg.Prometheus.HTTPClientConfig, time.Duration(bc.QueryTimeout))
		if err != nil {
			return bc, nil, nil, err
		}
	}
	return bc, specs, prom, nil
}

// setupBudget wires error budgets, the budget poller, the deploy gate and
// SLA reports: GET /api/v1/slos, GET /api/v1/slos/{service}/{slo},
// GET /api/v1/gate and GET /api/v1/sla/report/{customer}. The collectors
// (sre_slo_error_budget_remaining_ratio, sre_slo_burn_rate, ...) re-export
// what the generated recording rules hold, as of the last poll.
func setupBudget(_ context.Context, a *App) error {
	logger := a.Logger.With("component", "budget")
	svc := budget.New(budget.Options{Logger: logger, DB: a.DB, Bus: a.Bus, Registerer: a.Registry})
	reporter := sla.NewReporter(nil)
	apply := func(cfg *config.Config) error {
		bc, specs, prom, err := budgetConfig(cfg)
		if err != nil {
			return err
		}
		var q sla.Querier
		if prom != nil {
			q = prom
		}
		// Check everything before installing anything: a failed reload
		// leaves the running configuration in force.
		lookup := sla.Lookup(budget.Objectives(specs))
		if err := cfg.SLA.Check(lookup); err != nil {
			return err
		}
		if err := svc.Update(bc, specs, prom, nil); err != nil {
			return err
		}
		return reporter.Update(cfg.SLA, q, lookup)
	}
	if err := apply(a.Config()); err != nil {
		return err
	}
	a.OnReload(func(_ context.Context, cfg *config.Config) error { return apply(cfg) })
	svc.Register(a.Mux)
	reporter.Register(a.Mux)
	a.console().Budgets = svc
	a.AddActor(Actor{Name: "budget-poller", Execute: svc.Run})
	return nil
}
