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

func init() {
	config.RegisterValidator("runbooks", func(c *config.Config) error {
		_, err := runbook.Load(c.Runbooks, c.BaseDir)
		return err
	})
	register(module{
		Name:       "40-runbook",
		Migrations: runbook.Migrations,
		Setup:      setupRunbook,
	})
}

// runbookEscalator finds the escalation engine when a run escalates.
type runbookEscalator struct{ a *App }

func (r runbookEscalator) EscalateNow(ctx context.Context, id, reason string) error {
	e := r.a.EscalationEngine()
	if e == nil {
		return errors.New("escalation is not set up")
	}
	return e.EscalateNow(ctx, id, reason)
}

// NotifyResponders sends a notify step's message through the escalation
// engine: to the incident's responders on its policy's channels, or to the
// channels the step names. The notification sender delivers it.
func (r runbookEscalator) NotifyResponders(ctx context.Context, n runbook.Notification) (string, error) {
	e := r.a.EscalationEngine()
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

func (p *promQuerier) set(cfg config.PrometheusConfig) error {
	if cfg.URL == "" {
		p.api.Store(nil)
		return nil
	}
	hc, err := commoncfg.NewClientFromConfig(cfg.HTTPClientConfig, "runbook_prometheus")
	if err != nil {
		return fmt.Errorf("runbooks: prometheus client: %w", err)
	}
	c, err := api.NewClient(api.Config{Address: cfg.URL, Client: hc})
	if err != nil {
		return fmt.Errorf("runbooks: prometheus client: %w", err)
	}
	q := v1.NewAPI(c)
	p.api.Store(&q)
	return nil
}

func (p *promQuerier) Query(ctx context.Context, q string, ts time.Time, opts ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	a := p.api.Load()
	if a == nil {
		return nil, nil, nil, errors.New("no Prometheus is configured (set prometheus.url)")
	}
	return (*a).Query(ctx, q, ts, opts...)
}

func setupRunbook(_ context.Context, a *App) error {
	cfg := a.Config()
	set, err := runbook.Load(cfg.Runbooks, cfg.BaseDir)
	if err != nil {
		return fmt.Errorf("runbooks: %w", err)
	}
	prom := &promQuerier{}
	if err := prom.set(cfg.Prometheus); err != nil {
		return err
	}
	logger := a.Logger.With("component", "runbook")
	engine, err := runbook.New(runbook.Options{
		DB:         a.DB,
		Incidents:  runbook.IncidentService{Service: a.Incidents},
		Escalator:  runbookEscalator{a},
		Notifier:   runbookEscalator{a},
		Prometheus: prom,
		Kubernetes: runbook.NewKubernetesClient,
		Bus:        a.Bus,
		Logger:     logger,
		Registerer: a.Registry,
	}, runbookConfig(cfg), set)
	if err != nil {
		return err
	}
	logger.Info("Runbooks loaded", "count", len(set.List()), "dry_run", cfg.Runbooks.DryRun)
	a.AddHook(engine)
	a.AddActor(Actor{Name: "runbook-worker", Execute: engine.Run})
	engine.Register(a.Mux)
	a.console().Runbooks = engine
	a.OnReload(func(_ context.Context, cfg *config.Config) error {
		set, err := runbook.Load(cfg.Runbooks, cfg.BaseDir)
		if err != nil {
			return fmt.Errorf("runbooks: %w", err)
		}
		if err := prom.set(cfg.Prometheus); err != nil {
			return err
		}
		// A changed kubernetes section makes the engine build a new client.
		return engine.Update(runbookConfig(cfg), set)
	})
	return nil
}

// runbookConfig is the runbooks section with its kubeconfig path resolved
// against the directory of sred.yml.
func runbookConfig(cfg *config.Config) runbook.Config {
	rc := cfg.Runbooks
	rc.Kubernetes.Kubeconfig = cfg.ResolvePath(rc.Kubernetes.Kubeconfig)
	return rc
}
