package app

import (
	"context"
	"time"

	"github.com/rootuip/sre/pkg/analysis"
	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/config"
)

// Analysis is rollout analysis (docs/rollouts.md): it owns the analysis
// section, serves the Argo Rollouts web metric provider and the Flagger
// webhooks, and sets a.Analysis for the stage runner.
var Analysis = Spec[*AnalysisConfig]{
	Name:     "analysis",
	Sections: []string{"analysis"},
	Load:     LoadAnalysis,
	Build:    buildAnalysis,
}

// AnalysisConfig is what the analysis subsystem runs with.
type AnalysisConfig struct {
	Analysis analysis.Config
	Specs    []*analysis.Spec
	// prom queries the prometheus section's server (nil when none).
	prom *budget.Prom
}

// LoadAnalysis decodes the analysis section and loads the spec files.
func LoadAnalysis(cfg *config.Config) (*AnalysisConfig, error) {
	c := &AnalysisConfig{Analysis: analysis.DefaultConfig}
	if err := cfg.Decode("analysis", &c.Analysis); err != nil {
		return nil, err
	}
	specs, err := analysis.LoadSpecs(c.Analysis, cfg.ResolvePath)
	if err != nil {
		return nil, err
	}
	c.Specs = specs
	if cfg.Prometheus.URL != "" {
		c.prom, err = budget.NewProm(cfg.Prometheus.URL, cfg.Prometheus.HTTPClientConfig, time.Duration(c.Analysis.QueryTimeout))
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// buildAnalysis serves /api/v1/analysis/... and counts runs
// (sre_analysis_runs_total, sre_analysis_check_results_total).
func buildAnalysis(_ context.Context, a *App, c *AnalysisConfig) (func(context.Context, *AnalysisConfig), error) {
	ev := analysis.NewEvaluator(nil, analysis.NewMetrics(a.Registry))
	opts := analysis.Options{Evaluator: ev, Logger: a.Logger.With("component", "analysis"), RunLimit: c.Analysis.RunLimit}
	if a.Budgets != nil {
		opts.Gate = a.Budgets
	}
	svc := analysis.NewService(opts)
	apply := func(c *AnalysisConfig) {
		if c.prom != nil {
			ev.SetQuerier(c.prom)
		} else {
			ev.SetQuerier(nil)
		}
		svc.SetSpecs(c.Specs)
		svc.SetRunLimit(c.Analysis.RunLimit)
	}
	apply(c)
	svc.Register(a.Mux)
	a.Analysis = svc
	return func(_ context.Context, c *AnalysisConfig) { apply(c) }, nil
}
