package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync/atomic"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/config"
	"github.com/rootuip/sre/pkg/runbook"
	"github.com/rootuip/sre/pkg/scaling"
	"github.com/rootuip/sre/pkg/targetlock"
)

// Scaling is auto-scaling (docs/scaling.md): it owns the scaling section.
// Policies whose controller is sred are decided every interval and acted
// on through the runbook engine's actuator; those Kubernetes scales (the
// HPA or KEDA objects of `srectl scaling generate`) are only observed.
var Scaling = Spec[*ScalingConfig]{
	Name:       "scaling",
	Sections:   []string{"scaling"},
	Migrations: slices.Concat(targetlock.Migrations, scaling.Migrations),
	Load:       LoadScaling,
	Build:      buildScaling,
}

// ScalingConfig is what the scaling subsystem runs with.
type ScalingConfig struct {
	Config   scaling.Config
	Policies []*scaling.Policy
	// prometheus queries the `prometheus` section's server.
	prometheus *v1.API
	// kubeconfig is scaling.kubernetes.kubeconfig, resolved.
	kubeconfig string
}

// LoadScaling decodes the scaling section and loads its policies.
func LoadScaling(cfg *config.Config) (*ScalingConfig, error) {
	c := &ScalingConfig{Config: scaling.DefaultConfig}
	if err := cfg.Decode("scaling", &c.Config); err != nil {
		return nil, err
	}
	paths := make([]string, 0, len(c.Config.Policies))
	for _, p := range c.Config.Policies {
		paths = append(paths, cfg.ResolvePath(p))
	}
	ps, err := scaling.LoadPaths(paths...)
	if err != nil {
		return nil, fmt.Errorf("scaling: %w", err)
	}
	c.Policies = ps
	// Actions call only the endpoints the runbooks section declares.
	var rb runbook.Config
	if err := cfg.Decode("runbooks", &rb); err != nil {
		return nil, err
	}
	acting := false
	for _, p := range ps {
		if p.Target.Controller == scaling.ControllerSred {
			acting = true
		}
		if a := p.Target.Action; a != nil && a.Endpoint() != "" {
			if _, ok := rb.HTTPEndpoints[a.Endpoint()]; !ok {
				return nil, fmt.Errorf("scaling: %w", p.Locate(fmt.Errorf("policy %q: http endpoint %q is not in runbooks.http_endpoints", p.Name, a.Endpoint())))
			}
		}
	}
	if acting && cfg.Prometheus.URL == "" {
		return nil, errors.New("scaling: policies that sred scales need prometheus.url")
	}
	if c.prometheus, err = prometheusAPI(cfg.Prometheus); err != nil {
		return nil, err
	}
	if k := c.Config.Kubernetes; k != nil && k.Kubeconfig != "" {
		c.kubeconfig = cfg.ResolvePath(k.Kubeconfig)
		if _, err := os.Stat(c.kubeconfig); err != nil {
			return nil, fmt.Errorf("scaling: kubernetes: kubeconfig: %w", err)
		}
	}
	return c, nil
}

// rangeQuerier queries the Prometheus of the `prometheus` section, swapped on reload.
type rangeQuerier struct{ api atomic.Pointer[v1.API] }

func (p *rangeQuerier) QueryRange(ctx context.Context, q string, r v1.Range, opts ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	a := p.api.Load()
	if a == nil {
		return nil, nil, nil, errors.New("no Prometheus is configured (set prometheus.url)")
	}
	return (*a).QueryRange(ctx, q, r, opts...)
}

func buildScaling(_ context.Context, a *App, c *ScalingConfig) (func(context.Context, *ScalingConfig), error) {
	logger := a.Logger.With("component", "scaling")
	prom := &rangeQuerier{}
	prom.api.Store(c.prometheus)
	o := scaling.Options{DB: a.DB, Prometheus: prom, Bus: a.Bus, Logger: logger, Registerer: a.Registry, Owner: hostOwner()}
	if a.Runbooks != nil {
		o.Actuator, o.Owner = a.Runbooks.Actuator(), a.Runbooks.Owner()
	}
	if l := a.Audit(); l != nil {
		o.Audit = l
	}
	if k := c.Config.Kubernetes; k != nil {
		newHPA := a.opts.Kubernetes.HPA
		if newHPA == nil {
			return nil, errors.New("scaling: kubernetes is set, but this process has no Kubernetes client (app.Options.Kubernetes)")
		}
		h, err := newHPA(c.kubeconfig, k.Context)
		if err != nil {
			return nil, fmt.Errorf("scaling: kubernetes: %w", err)
		}
		o.HPA = h
	}
	ctl := scaling.New(o)
	ctl.SetConfig(c.Config, c.Policies)
	ctl.Register(a.Mux)
	a.Scaling = ctl
	a.AddActor(Actor{Name: "scaling", Execute: ctl.Run})
	logger.Info("Scaling policies loaded", "count", len(c.Policies), "dry_run", c.Config.DryRun)
	return func(_ context.Context, c *ScalingConfig) {
		prom.api.Store(c.prometheus)
		ctl.SetConfig(c.Config, c.Policies)
	}, nil
}

// hostOwner names this process in target locks.
func hostOwner() string {
	h, _ := os.Hostname()
	return fmt.Sprintf("%s/%d", h, os.Getpid())
}
