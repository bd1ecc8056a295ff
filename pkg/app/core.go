package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rootuip/sre/pkg/config"
	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/receiver"
	"github.com/rootuip/sre/pkg/web"
)

func init() {
	register(module{Name: "00-core", Migrations: incident.Migrations, Setup: setupCore})
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
		TitleTemplate:        ic.TitleTemplate,
		StatusUpdateTemplate: ic.StatusUpdateTemplate,
		ExternalURL:          cfg.Global.ExternalURL,
	}
}

// ReceiverOptions derives the webhook handler's options from a config.
func ReceiverOptions(cfg *config.Config) (receiver.Options, error) {
	token, err := cfg.Webhook.Token()
	if err != nil {
		return receiver.Options{}, err
	}
	return receiver.Options{BearerToken: token, MaxBodyBytes: cfg.Webhook.MaxBodyBytes}, nil
}

// setupCore builds the incident service, the webhook receiver and the
// incidents API.
func setupCore(_ context.Context, a *App) error {
	cfg := a.Config()
	svc, err := incident.NewService(a.DB, IncidentOptions(cfg), a.Hooks, a.Bus, a.Logger.With("component", "incident"), a.Registry)
	if err != nil {
		return err
	}
	a.Incidents = svc
	ropts, err := ReceiverOptions(cfg)
	if err != nil {
		return err
	}
	h := receiver.NewHandler(svc, ropts, a.Logger.With("component", "receiver"), a.Registry)
	a.Receiver = h
	a.Mux.Handle("POST "+receiver.Path, h)
	(&web.IncidentsAPI{Service: svc}).Register(a.Mux)
	a.AddActor(Actor{Name: "incident-timers", Execute: func(ctx context.Context) error {
		return runIncidentTimers(ctx, a, time.Second*5)
	}})
	a.OnReload(func(_ context.Context, cfg *config.Config) error {
		ropts, err := ReceiverOptions(cfg)
		if err != nil {
			return err
		}
		if err := svc.SetOptions(IncidentOptions(cfg)); err != nil {
			return fmt.Errorf("incidents: %w", err)
		}
		h.SetOptions(ropts)
		return nil
	})
	return nil
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
}

// wakeSnoozed notifies responders of an incident whose snooze ended: the
// escalation engine pages its next level at once.
func (a *App) wakeSnoozed(ctx context.Context, inc *incident.Incident) (string, error) {
	eng := a.EscalationEngine()
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
