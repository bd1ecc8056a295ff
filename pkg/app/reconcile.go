package app

import (
	"context"
	"fmt"
	"time"

	"github.com/rootuip/sre/pkg/config"
	"github.com/rootuip/sre/pkg/reconcile"
)

// Reconcile is reconciliation with Alertmanager: the poller that catches
// lost resolves, silences on acknowledge, and the Watchdog. Its section,
// alertmanager, is a core section (the receiver reads it too).
var Reconcile = Spec[reconcileConfig]{
	Name:       "reconcile",
	Migrations: reconcile.Migrations,
	Load:       loadReconcile,
	Build:      buildReconcile,
}

// reconcileConfig is what Reconcile runs with.
type reconcileConfig struct {
	am       reconcile.Alertmanager
	silences reconcile.SilenceOptions
	watchdog reconcile.WatchdogOptions
	webhook  reconcile.WebhookOptions
}

func loadReconcile(cfg *config.Config) (reconcileConfig, error) {
	c, err := alertmanagerClient(cfg)
	if err != nil {
		return reconcileConfig{}, err
	}
	return reconcileConfig{am: c, silences: silenceOptions(cfg), watchdog: watchdogOptions(cfg), webhook: watchdogWebhookOptions(cfg)}, nil
}

// alertmanagerClient builds the API v2 client of the `alertmanager` section
// (nil when no URL is configured).
func alertmanagerClient(cfg *config.Config) (reconcile.Alertmanager, error) {
	if cfg.Alertmanager.URL == "" {
		return nil, nil
	}
	c, err := reconcile.NewClient(cfg.Alertmanager.URL, cfg.Alertmanager.HTTPClientConfig, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("alertmanager: %w", err)
	}
	return c, nil
}

func silenceOptions(cfg *config.Config) reconcile.SilenceOptions {
	o := reconcile.DefaultSilenceOptions()
	o.Enabled = cfg.Alertmanager.SilenceOnAck
	o.OnSnooze = cfg.Alertmanager.SilenceOnSnooze
	o.ExpireOnResolve = cfg.Alertmanager.ExpireSilencesOnResolve
	o.ExternalURL = cfg.Global.ExternalURL
	return o
}

func watchdogOptions(cfg *config.Config) reconcile.WatchdogOptions {
	return reconcile.WatchdogOptions{
		Alertname: cfg.Alertmanager.Watchdog.Alertname,
		Timeout:   time.Duration(cfg.Alertmanager.Watchdog.Timeout),
	}
}

// watchdogWebhookOptions are the main webhook's token (its file read at
// each delivery) and body limit.
func watchdogWebhookOptions(cfg *config.Config) reconcile.WebhookOptions {
	return reconcile.WebhookOptions{BearerToken: cfg.Webhook.Token(), MaxBodyBytes: cfg.Webhook.MaxBodyBytes}
}

func buildReconcile(_ context.Context, a *App, c reconcileConfig) (func(context.Context, reconcileConfig), error) {
	logger := a.Logger.With("component", "reconcile")
	m := reconcile.NewMetrics(a.Registry)
	am := &reconcile.Swappable{}
	am.Set(c.am)
	wd := reconcile.NewWatchdog(a.DB, a.Incidents, c.watchdog, logger.With("part", "watchdog"), m)
	sil := reconcile.NewSilencer(a.DB, am, a.Incidents, c.silences, logger.With("part", "silences"), m)
	rec := reconcile.NewReconciler(am, a.Incidents, wd, reconcile.Options{RestartGrace: reconcile.DefaultRestartGrace}, logger, m)
	wh := reconcile.NewWatchdogHandler(wd, c.webhook)
	a.AddHook(sil)
	// The heartbeat is recognised in every delivery of the main webhook
	// (and on its own endpoint), and never becomes an incident.
	if a.Receiver != nil {
		a.Receiver.SetHeartbeats(wd)
	}
	a.Mux.Handle("POST "+reconcile.WatchdogPath, wh)
	a.Mux.Handle("GET "+reconcile.SilencesPath, reconcile.SilencesHandler{S: sil})

	a.AddActor(Actor{Name: "alertmanager-reconciler", Execute: func(ctx context.Context) error {
		for {
			cfg := a.Config()
			interval := time.Duration(cfg.Alertmanager.ReconcileInterval)
			if cfg.Alertmanager.URL != "" && interval > 0 {
				if _, err := rec.Reconcile(ctx); err != nil && ctx.Err() == nil {
					logger.Warn("Reconcile with Alertmanager", "err", err)
				}
			} else {
				interval = 30 * time.Second // look again after a reload
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(interval):
			}
		}
	}})
	a.AddActor(Actor{Name: "alertmanager-silencer", Execute: func(ctx context.Context) error {
		return sil.Run(ctx, 2*time.Second)
	}})
	a.AddActor(Actor{Name: "watchdog", Execute: func(ctx context.Context) error {
		for {
			every := wd.Options().Timeout / 10
			every = min(max(every, time.Second), 30*time.Second)
			if _, err := wd.Check(ctx); err != nil && ctx.Err() == nil {
				logger.Error("Watchdog check", "err", err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(every):
			}
		}
	}})
	return func(_ context.Context, c reconcileConfig) {
		am.Set(c.am)
		sil.SetOptions(c.silences)
		wd.SetOptions(c.watchdog)
		wh.SetOptions(c.webhook)
	}, nil
}
