package app

import (
	"context"
	"fmt"
	"time"

	"github.com/rootuip/sre/pkg/config"
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
