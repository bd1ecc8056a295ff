package app

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/rootuip/sre/pkg/config"
	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/receiver"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/web"
)

// Core is the incident service, the Alertmanager webhook receiver and the
// incidents API. Its sections (global, webhook, incidents) are the core
// sections that package config decodes; Load derives the services' options.
// It also creates the one work queue (pkg/jobs) every later subsystem puts
// its jobs in.
var Core = Spec[coreConfig]{
	Name:       "core",
	Migrations: slices.Concat(incident.Migrations, jobs.Migrations, store.ProbeMigrations),
	Load:       loadCore,
	Build:      buildCore,
}

// coreConfig is what Core runs with.
type coreConfig struct {
	incidents incident.Options
	receiver  receiver.Options
}

func loadCore(cfg *config.Config) (coreConfig, error) {
	// The incidents section validated its templates, the only options the
	// incident service can refuse; config.Load checked that a token file
	// can be read.
	return coreConfig{incidents: IncidentOptions(cfg), receiver: ReceiverOptions(cfg)}, nil
}

// IncidentOptions derives the incident service's options from a config.
func IncidentOptions(cfg *config.Config) incident.Options {
	ic := cfg.Incidents
	return incident.Options{
		IDPrefix:             cfg.Global.IncidentIDPrefix,
		ServiceLabels:        ic.ServiceLabels,
		SeverityLabel:        ic.SeverityLabel,
		SeverityMap:          ic.SeverityMap,
		DefaultSeverity:      ic.DefaultSeverity,
		AutoResolve:          ic.AutoResolve,
		AutoResolveAfter:     time.Duration(ic.AutoResolveAfter),
		FlapWindow:           time.Duration(ic.FlapWindow),
		FlapThreshold:        ic.FlapThreshold,
		TitleTemplate:        ic.TitleTemplate,
		StatusUpdateTemplate: ic.StatusUpdateTemplate,
		ExternalURL:          cfg.Global.ExternalURL,
		WebhookLimits:        cfg.Webhook.Limits,
	}
}

// ReceiverOptions derives the webhook handler's options from a config. The
// bearer token file is read at each delivery, not here: a rotated token is
// in force without a reload.
func ReceiverOptions(cfg *config.Config) receiver.Options {
	return receiver.Options{BearerToken: cfg.Webhook.Token(), MaxBodyBytes: cfg.Webhook.MaxBodyBytes, Limits: cfg.Webhook.Limits}
}

// buildCore builds the incident service, the webhook receiver and the
// incidents API.
func buildCore(_ context.Context, a *App, c coreConfig) (func(context.Context, coreConfig), error) {
	svc, err := incident.NewService(a.DB, c.incidents, a.Hooks, a.Bus, a.Logger.With("component", "incident"), a.Registry)
	if err != nil {
		return nil, err
	}
	a.Incidents = svc
	h := receiver.NewHandler(svc, c.receiver, a.Logger.With("component", "receiver"), a.Registry)
	a.Receiver = h
	a.Mux.Handle("POST "+receiver.Path, h)
	(&web.IncidentsAPI{Service: svc}).Register(a.Mux)
	a.AddActor(Actor{Name: "incident-timers", Execute: func(ctx context.Context) error {
		return runIncidentTimers(ctx, a, time.Second*5)
	}})
	return func(_ context.Context, c coreConfig) {
		if err := svc.SetOptions(c.incidents); err != nil {
			// Load checked these options: this does not happen.
			a.Logger.Error("Apply incident options", "err", err)
		}
		h.SetOptions(c.receiver)
	}, nil
}

// runIncidentTimers runs the incident service's timed work every interval
// until ctx ends: it records the delivery times of duplicate deliveries,
// ends the snoozes that are over (notifying responders again through the
// escalation engine), and resolves incidents whose Alertmanager group went
// quiet for incidents.auto_resolve_after.
func runIncidentTimers(ctx context.Context, a *App, interval time.Duration) error {
	logger := a.Logger.With("component", "incident-timers")
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// Keep the delivery times noted since the last tick.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := a.Incidents.FlushDeliveries(fctx); err != nil {
				logger.Warn("Record delivery times", "err", err)
			}
			return nil
		case <-t.C:
		}
		a.incidentTimersDue(ctx, logger)
	}
}

// incidentTimersDue runs the incident service's timed work that is due at
// its clock's time, once (tests call it with a manual clock).
func (a *App) incidentTimersDue(ctx context.Context, logger *slog.Logger) {
	if err := a.Incidents.FlushDeliveries(ctx); err != nil && ctx.Err() == nil {
		logger.Warn("Record delivery times", "err", err)
	}
	if _, err := a.Incidents.WakeSnoozed(ctx, a.wakeSnoozed); err != nil && ctx.Err() == nil {
		logger.Warn("End snoozes", "err", err)
	}
	if _, err := a.Incidents.ResolveQuiet(ctx, 0); err != nil && ctx.Err() == nil {
		logger.Warn("Auto-resolve quiet incidents", "err", err)
	}
}

// wakeSnoozed notifies responders of an incident whose snooze ended: the
// escalation engine pages its next level at once.
func (a *App) wakeSnoozed(ctx context.Context, inc *incident.Incident) (string, error) {
	eng := a.Escalation
	if eng == nil {
		return "no escalation engine: nobody notified", nil
	}
	err := eng.EscalateNow(ctx, inc.ID, "snooze ended")
	if errors.Is(err, escalation.ErrNoEscalation) {
		return "no escalation policy applies: nobody notified", nil
	}
	if err != nil {
		return "", err
	}
	return "escalating now", nil
}
