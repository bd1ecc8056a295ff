package app

import (
	"context"
	"fmt"
	"slices"

	"github.com/rootuip/sre/pkg/config"
	"github.com/rootuip/sre/pkg/rollout"
	"github.com/rootuip/sre/pkg/runbook"
	"github.com/rootuip/sre/pkg/targetlock"
)

// Rollouts is the stage runner of progressive deliveries without
// Kubernetes (docs/rollout-runner.md): it owns the rollouts section.
var Rollouts = Spec[*RolloutConfig]{
	Name:       "rollouts",
	Sections:   []string{"rollouts"},
	Migrations: slices.Concat(targetlock.Migrations, rollout.Migrations),
	Load:       LoadRollouts,
	Build:      buildRollouts,
}

// RolloutConfig is what the rollout runner runs with.
type RolloutConfig struct {
	Config      rollout.Config
	Definitions []*rollout.Definition
}

// LoadRollouts decodes the rollouts section and loads the definitions.
func LoadRollouts(cfg *config.Config) (*RolloutConfig, error) {
	c := &RolloutConfig{Config: rollout.DefaultConfig}
	if err := cfg.Decode("rollouts", &c.Config); err != nil {
		return nil, err
	}
	defs, err := rollout.Load(c.Config.Files, cfg.ResolvePath)
	if err != nil {
		return nil, err
	}
	c.Definitions = defs
	// Actions call only the endpoints the runbooks section declares.
	var rb runbook.Config
	if err := cfg.Decode("runbooks", &rb); err != nil {
		return nil, err
	}
	// Stages are judged by the analysis section's specs.
	ac, err := LoadAnalysis(cfg)
	if err != nil {
		return nil, err
	}
	specs := map[string]bool{}
	for _, sp := range ac.Specs {
		specs[sp.Name] = true
	}
	for _, d := range defs {
		if d.Analysis != nil && !specs[d.Analysis.Spec] {
			return nil, fmt.Errorf("rollouts: %w", d.Locate(fmt.Errorf("rollout %q: analysis.spec: spec %q is not loaded (analysis.spec_files)", d.Name, d.Analysis.Spec)))
		}
		for _, ep := range d.Endpoints() {
			if _, ok := rb.HTTPEndpoints[ep]; !ok {
				return nil, fmt.Errorf("rollouts: %w", d.Locate(fmt.Errorf("rollout %q: http endpoint %q is not in runbooks.http_endpoints", d.Name, ep)))
			}
		}
	}
	return c, nil
}

// buildRollouts serves /api/v1/rollouts/... and runs the stage runner,
// with the runbook engine's actuators and the deploy gate.
func buildRollouts(_ context.Context, a *App, c *RolloutConfig) (func(context.Context, *RolloutConfig), error) {
	logger := a.Logger.With("component", "rollout")
	opts := rollout.Options{DB: a.DB, Logger: logger, Registerer: a.Registry, Bus: a.Bus, Gate: rollout.BudgetGate{Budgets: a.Budgets}}
	if a.Runbooks != nil {
		opts.Actuator = a.Runbooks.Actuator()
	}
	if a.Analysis != nil {
		opts.Analyzer = rollout.SpecAnalyzer{Spec: a.Analysis.Spec, Evaluator: a.Analysis.Evaluator()}
	}
	if a.Changes != nil {
		opts.Recorder = rollout.ChangeRecorder{Changes: a.Changes}
	}
	svc := rollout.New(opts)
	if err := svc.ApplyConfig(c.Config, c.Definitions); err != nil {
		return nil, err
	}
	svc.Routes(a.Mux, a.NoAuth())
	a.Rollouts = svc
	a.AddActor(Actor{Name: "rollouts", Execute: svc.Run})
	return func(_ context.Context, c *RolloutConfig) {
		if err := svc.ApplyConfig(c.Config, c.Definitions); err != nil {
			logger.Error("Apply rollouts configuration", "err", err)
		}
	}, nil
}
