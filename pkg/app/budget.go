package app

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/config"
	"github.com/rootuip/sre/pkg/secretfile"
	"github.com/rootuip/sre/pkg/sla"
	"github.com/rootuip/sre/pkg/slo"
)

// Budget is error budgets, the budget poller, the deploy gate and SLA
// reports: it owns the slos and sla sections (SLA contracts name SLOs).
var Budget = Spec[*BudgetConfig]{
	Name:       "budget",
	Sections:   []string{"slos", "sla"},
	Migrations: budget.Migrations,
	Load:       LoadBudget,
	Build:      buildBudget,
}

// BudgetConfig is what the budget subsystem runs with.
type BudgetConfig struct {
	// SLOs is the slos section, its override token files resolved against
	// the directory of sred.yml.
	SLOs budget.Config
	// SLA is the sla section.
	SLA sla.Config
	// Specs are the SLO specs named by slos.spec_files.
	Specs []*slo.Spec
	// prom queries the `prometheus` section's server (nil when none).
	prom *budget.Prom
	// warnings are the contracts stricter than their SLOs (logged when
	// applied, printed by srectl check config).
	warnings []string
}

// ConfigWarnings returns what the slos and sla sections hold that is not
// an error but most likely not meant (see sla.Config.Warnings).
func (c *BudgetConfig) ConfigWarnings() []string { return c.warnings }

// LoadBudget decodes the slos and sla sections, loads the SLO specs and
// checks that every SLA contract names an SLO that exists.
func LoadBudget(cfg *config.Config) (*BudgetConfig, error) {
	c := &BudgetConfig{}
	if err := cfg.Decode("slos", &c.SLOs); err != nil {
		return nil, err
	}
	if err := cfg.Decode("sla", &c.SLA); err != nil {
		return nil, err
	}
	files := c.SLOs.Gate.OverrideTokenFiles
	c.SLOs.Gate.OverrideTokenFiles = nil
	for _, f := range files {
		f = cfg.ResolvePath(f)
		// Checked now, so that a missing or short token file fails the load
		// or reload; the budget service reads it again at each gate request
		// with a token, so a rotated token needs no reload.
		t, err := secretfile.Read(f)
		if err != nil {
			return nil, fmt.Errorf("slos: gate: override token file: %w", err)
		}
		if len(t) < budget.MinOverrideTokenLen {
			return nil, fmt.Errorf("slos: gate: override token in %s must be at least %d characters", f, budget.MinOverrideTokenLen)
		}
		c.SLOs.Gate.OverrideTokenFiles = append(c.SLOs.Gate.OverrideTokenFiles, f)
	}
	specs, err := budget.LoadSpecs(c.SLOs, cfg.ResolvePath)
	if err != nil {
		return nil, err
	}
	c.Specs = specs
	lookup := sla.Lookup(budget.Objectives(specs))
	if err := c.SLA.Check(lookup); err != nil {
		return nil, err
	}
	c.warnings = c.SLA.Warnings(lookup)
	if cfg.Prometheus.URL != "" {
		c.prom, err = budget.NewProm(cfg.Prometheus.URL, cfg.Prometheus.HTTPClientConfig, time.Duration(c.SLOs.QueryTimeout))
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// buildBudget serves GET /api/v1/slos, GET /api/v1/slos/{service}/{slo},
// GET /api/v1/gate and GET /api/v1/sla/report/{customer}. The collectors
// (sre_slo_error_budget_remaining_ratio, sre_slo_burn_rate, ...) re-export
// what the generated recording rules hold, as of the last poll.
func buildBudget(_ context.Context, a *App, c *BudgetConfig) (func(context.Context, *BudgetConfig), error) {
	logger := a.Logger.With("component", "budget")
	opts := budget.Options{Logger: logger, DB: a.DB, Bus: a.Bus, Registerer: a.Registry}
	// A refused override token is a write of the audit log, though the
	// gate is a GET: who tried a token, from where, answered what.
	opts.OnOverrideRefused = func(r *http.Request, code int) {
		if a.access == nil {
			return
		}
		a.access.audit.Recorder(func(err error) {
			a.access.errors.Inc()
			a.Logger.Error("Record audit entry", "err", err)
		})(r, auth.Principal{}, "GET /api/v1/gate", code)
	}
	if a.Incidents != nil {
		opts.Incidents = a.Incidents // an exhausted budget opens a CRITICAL incident
	}
	svc := budget.New(opts)
	reporter := sla.NewReporter(nil)
	apply := func(c *BudgetConfig) error {
		for _, w := range c.warnings {
			logger.Warn("SLA config", "warning", w)
		}
		var q sla.Querier
		if c.prom != nil {
			q = c.prom
		}
		if err := svc.Update(c.SLOs, c.Specs, c.prom, nil); err != nil {
			return err
		}
		return reporter.Update(c.SLA, q, sla.Lookup(budget.Objectives(c.Specs)))
	}
	if err := apply(c); err != nil {
		return nil, err
	}
	svc.Register(a.Mux)
	reporter.Register(a.Mux)
	a.Budgets = svc
	a.AddActor(Actor{Name: "budget-poller", Execute: svc.Run})
	return func(_ context.Context, c *BudgetConfig) {
		if err := apply(c); err != nil {
			// LoadBudget checked the contracts: this does not happen.
			logger.Error("Apply budget configuration", "err", err)
		}
	}, nil
}
