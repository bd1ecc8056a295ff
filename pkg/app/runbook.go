package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/config"
	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/runbook"
)

// Runbooks is runbook automation: it owns the runbooks section, parsed
// (with every runbook file it names) once per load.
var Runbooks = Spec[*RunbookConfig]{
	Name:       "runbooks",
	Sections:   []string{"runbooks"},
	Migrations: runbook.Migrations,
	Load:       LoadRunbooks,
	Build:      buildRunbooks,
}

// RunbookConfig is what the runbook subsystem runs with.
type RunbookConfig struct {
	// Config is the runbooks section, its kubeconfig path resolved against
	// the directory of sred.yml.
	Config runbook.Config
	// Set holds the runbooks it names, parsed and checked.
	Set *runbook.Set
	// Prometheus queries the `prometheus` section's server (nil API when
	// none is configured).
	prometheus *v1.API
}

// LoadRunbooks decodes the runbooks section and parses its runbooks.
func LoadRunbooks(cfg *config.Config) (*RunbookConfig, error) {
	c := &RunbookConfig{}
	if err := cfg.Decode("runbooks", &c.Config); err != nil {
		return nil, err
	}
	set, err := runbook.Load(c.Config, cfg.BaseDir)
	if err != nil {
		return nil, fmt.Errorf("runbooks: %w", err)
	}
	c.Set = set
	c.Config.Kubernetes.Kubeconfig = cfg.ResolvePath(c.Config.Kubernetes.Kubeconfig)
	if err := runbook.CheckHTTPEndpoints(c.Config); err != nil {
		return nil, err
	}
	if c.prometheus, err = prometheusAPI(cfg.Prometheus); err != nil {
		return nil, err
	}
	return c, nil
}

// runbookEscalator finds the escalation engine when a run escalates.
type runbookEscalator struct{ a *App }

func (r runbookEscalator) EscalateNow(ctx context.Context, id, reason string) error {
	e := r.a.Escalation
	if e == nil {
		return errors.New("escalation is not set up")
	}
	return e.EscalateNow(ctx, id, reason)
}

// NotifyResponders sends a notify step's message through the escalation
// engine: to the incident's responders on its policy's channels, or to the
// channels the step names. The notification sender delivers it.
func (r runbookEscalator) NotifyResponders(ctx context.Context, n runbook.Notification) (string, error) {
	e := r.a.Escalation
	if e == nil {
		return "", errors.New("escalation is not set up")
	}
	got, err := e.NotifyResponders(ctx, escalation.Notice{IncidentID: n.IncidentID, Key: fmt.Sprintf("runbook/%d/%s", n.RunID, n.Step),
		From: "runbook " + n.Runbook, Message: n.Message, Channels: n.Channels})
	if err != nil {
		return "", err
	}
	out := "sent via " + strings.Join(got.Channels, ", ")
	if len(got.Users) > 0 {
		out = "sent to " + strings.Join(got.Users, ", ") + " via " + strings.Join(got.Channels, ", ")
	}
	if len(got.Skipped) > 0 {
		out += " (not configured or no contact: " + strings.Join(got.Skipped, ", ") + ")"
	}
	return out, nil
}

// promQuerier queries the Prometheus of the `prometheus` section, swapped on reload.
type promQuerier struct{ api atomic.Pointer[v1.API] }

// prometheusAPI builds the client of the `prometheus` section (nil when no
// URL is configured).
func prometheusAPI(cfg config.PrometheusConfig) (*v1.API, error) {
	if cfg.URL == "" {
		return nil, nil
	}
	hc, err := commoncfg.NewClientFromConfig(cfg.HTTPClientConfig, "runbook_prometheus")
	if err != nil {
		return nil, fmt.Errorf("runbooks: prometheus client: %w", err)
	}
	c, err := api.NewClient(api.Config{Address: cfg.URL, Client: hc})
	if err != nil {
		return nil, fmt.Errorf("runbooks: prometheus client: %w", err)
	}
	q := v1.NewAPI(c)
	return &q, nil
}

func (p *promQuerier) Query(ctx context.Context, q string, ts time.Time, opts ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	a := p.api.Load()
	if a == nil {
		return nil, nil, nil, errors.New("no Prometheus is configured (set prometheus.url)")
	}
	return (*a).Query(ctx, q, ts, opts...)
}

func buildRunbooks(_ context.Context, a *App, c *RunbookConfig) (func(context.Context, *RunbookConfig), error) {
	prom := &promQuerier{}
	prom.api.Store(c.prometheus)
	logger := a.Logger.With("component", "runbook")
	engine, err := runbook.New(runbook.Options{
		DB:         a.DB,
		Incidents:  runbook.IncidentService{Service: a.Incidents},
		Escalator:  runbookEscalator{a},
		Notifier:   runbookEscalator{a},
		Prometheus: prom,
		Kubernetes: a.opts.Kubernetes.Runbook,
		Bus:        a.Bus,
		Logger:     logger,
		Registerer: a.Registry,
	}, c.Config, c.Set)
	if err != nil {
		return nil, err
	}
	logger.Info("Runbooks loaded", "count", len(c.Set.List()), "dry_run", c.Config.DryRun)
	a.AddHook(engine)
	a.AddActor(Actor{Name: "runbook-worker", Execute: engine.Run})
	engine.Register(a.Mux)
	a.Runbooks = engine
	return func(_ context.Context, c *RunbookConfig) {
		prom.api.Store(c.prometheus)
		// A changed kubernetes section makes the engine build a new client.
		if err := engine.Update(c.Config, c.Set); err != nil {
			// LoadRunbooks built the same HTTP clients: this does not happen.
			logger.Error("Apply runbooks configuration", "err", err)
		}
	}, nil
}
