package app

import (
	"context"
	"errors"

	"github.com/rootuip/sre/pkg/config"
	"github.com/rootuip/sre/pkg/probe"
)

// HealthChecks runs the health checks of the `health_checks` section
// (HTTP, TCP, PromQL) at their intervals and exports them on /metrics
// under blackbox_exporter's names (docs/healing.md).
var HealthChecks = Spec[*HealthCheckConfig]{
	Name:     "health_checks",
	Sections: []string{"health_checks"},
	Load:     LoadHealthChecks,
	Build:    buildHealthChecks,
}

// HealthCheckConfig is what the health check subsystem runs with.
type HealthCheckConfig struct {
	Config     probe.Config
	prometheus *promQuerier
}

// LoadHealthChecks decodes the health_checks section; PromQL checks need
// the prometheus section.
func LoadHealthChecks(cfg *config.Config) (*HealthCheckConfig, error) {
	c := &HealthCheckConfig{prometheus: &promQuerier{}}
	if err := cfg.Decode("health_checks", &c.Config); err != nil {
		return nil, err
	}
	if c.Config.HasPromQL() && cfg.Prometheus.URL == "" {
		return nil, errors.New("health_checks: promql checks need prometheus.url")
	}
	api, err := prometheusAPI(cfg.Prometheus)
	if err != nil {
		return nil, err
	}
	c.prometheus.api.Store(api)
	return c, nil
}

func buildHealthChecks(_ context.Context, a *App, c *HealthCheckConfig) (func(context.Context, *HealthCheckConfig), error) {
	prom := &promQuerier{}
	prom.api.Store(c.prometheus.api.Load())
	p := probe.New(c.Config, probe.Options{Prometheus: prom, Logger: a.Logger.With("component", "health_checks")})
	if err := a.Registry.Register(p); err != nil {
		return nil, err
	}
	a.AddActor(Actor{Name: "health-checks", Execute: p.Run})
	return func(_ context.Context, c *HealthCheckConfig) {
		prom.api.Store(c.prometheus.api.Load())
		p.SetConfig(c.Config)
	}, nil
}
