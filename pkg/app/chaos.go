package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/chaos"
	"github.com/rootuip/sre/pkg/chaos/drivers/httpfault"
	"github.com/rootuip/sre/pkg/chaos/drivers/process"
	"github.com/rootuip/sre/pkg/chaos/drivers/stress"
	"github.com/rootuip/sre/pkg/chaos/drivers/toxiproxy"
	"github.com/rootuip/sre/pkg/config"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/targetlock"
)

// Chaos is chaos experiments (docs/chaos.md): it owns the chaos section.
var Chaos = Spec[*ChaosConfig]{
	Name:       "chaos",
	Sections:   []string{"chaos"},
	Migrations: append(append([]store.Migration(nil), targetlock.Migrations...), chaos.Migrations...),
	Load:       LoadChaos,
	Build:      buildChaos,
}

// ChaosConfig is what the chaos subsystem runs with.
type ChaosConfig struct {
	Chaos       chaos.Config
	Experiments []*chaos.Experiment
	// budget is the slos section as the budget subsystem loads it: the
	// SLOs of the targets and the Prometheus client.
	budget *BudgetConfig
	// kubeconfig is the chaos.kubernetes kubeconfig path, resolved.
	kubeconfig string
}

// LoadChaos decodes the chaos section and loads the experiment files.
func LoadChaos(cfg *config.Config) (*ChaosConfig, error) {
	c := &ChaosConfig{Chaos: chaos.DefaultConfig}
	if err := cfg.Decode("chaos", &c.Chaos); err != nil {
		return nil, err
	}
	exps, err := chaos.LoadExperiments(c.Chaos, cfg.ResolvePath)
	if err != nil {
		return nil, err
	}
	c.Experiments = exps
	if c.budget, err = LoadBudget(cfg); err != nil {
		return nil, err
	}
	if k := c.Chaos.Kubernetes; k != nil && k.Kubeconfig != "" {
		c.kubeconfig = cfg.ResolvePath(k.Kubeconfig)
		if _, err := os.Stat(c.kubeconfig); err != nil {
			return nil, fmt.Errorf("chaos: kubernetes: kubeconfig: %w", err)
		}
	}
	return c, nil
}

// buildChaos starts the fault proxies and serves /api/v1/chaos/...; its
// actor rolls back the faults of dead runners and, at shutdown, stops the
// experiments of this process. Proxies and the Kubernetes cluster are
// taken at start; a reload changes the experiments, safety limits and SLOs.
func buildChaos(_ context.Context, a *App, c *ChaosConfig) (func(context.Context, *ChaosConfig), error) {
	logger := a.Logger.With("component", "chaos")
	tox, err := toxiproxy.New(c.Chaos.Proxies)
	if err != nil {
		return nil, err
	}
	hf, err := httpfault.New(c.Chaos.Proxies)
	if err != nil {
		tox.Close()
		return nil, err
	}
	// A proxy whose address is taken (another sred on this host) does not
	// stop sred: it is bound at the first run that needs it.
	for name, err := range tox.Unbound() {
		logger.Warn("Fault proxy not listening yet; bound at the first run that uses it", "proxy", name, "err", err)
	}
	for name, err := range hf.Unbound() {
		logger.Warn("Fault proxy not listening yet; bound at the first run that uses it", "proxy", name, "err", err)
	}
	drivers := map[string]chaos.Driver{
		chaos.DriverToxiproxy: tox,
		chaos.DriverHTTPProxy: hf,
		chaos.DriverProcess:   process.Driver{},
		chaos.DriverStress:    &stress.Driver{MaxRuntime: time.Duration(c.Chaos.Safety.MaxDuration) + time.Duration(c.Chaos.Lease)},
	}
	if k := c.Chaos.Kubernetes; k != nil {
		mesh := a.opts.Kubernetes.ChaosMesh
		if mesh == nil {
			tox.Close()
			hf.Close()
			return nil, errors.New("chaos: kubernetes is set, but this process has no Kubernetes client (app.Options.Kubernetes)")
		}
		d, err := mesh(c.kubeconfig, k.Context, time.Duration(c.Chaos.Safety.MaxDuration))
		if err != nil {
			tox.Close()
			hf.Close()
			return nil, fmt.Errorf("chaos: kubernetes: %w", err)
		}
		drivers[chaos.DriverChaosMesh] = d
	}
	// A budget service of its own (no poller, no metrics): what the chaos
	// runner reads of the target's SLOs, from the same specs and Prometheus.
	budgets := budget.New(budget.Options{Logger: logger, DB: a.DB})
	opts := chaos.Options{DB: a.DB, Logger: logger, Registerer: a.Registry, Bus: a.Bus,
		Budgets: chaos.BudgetReader{Service: budgets}, Incidents: chaos.IncidentReader{Service: a.Incidents}, Drivers: drivers,
		NoAuth: a.NoAuth()}
	if a.Escalation != nil {
		opts.Alerts = chaos.EscalationWindows{Engine: a.Escalation}
	}
	if c.budget.prom != nil {
		opts.Prom = c.budget.prom
	}
	svc := chaos.New(opts)
	apply := func(c *ChaosConfig) error {
		if err := budgets.Update(c.budget.SLOs, c.budget.Specs, c.budget.prom, nil); err != nil {
			return err
		}
		return svc.ApplyConfig(c.Chaos, c.Experiments)
	}
	if err := apply(c); err != nil {
		tox.Close()
		hf.Close()
		return nil, err
	}
	svc.Routes(a.Mux)
	a.Chaos = svc
	a.AddActor(Actor{Name: "chaos", Execute: func(ctx context.Context) error {
		defer hf.Close()
		defer tox.Close()
		return svc.Run(ctx)
	}})
	return func(_ context.Context, c *ChaosConfig) {
		if err := apply(c); err != nil {
			logger.Error("Apply chaos configuration", "err", err)
		}
	}, nil
}
