package app

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rootuip/sre/pkg/config"
	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/oncall"
)

func init() {
	config.RegisterValidator("escalation", func(c *config.Config) error {
		_, err := c.Escalation.CheckRefs(&c.OnCall, &c.Notifications)
		return err
	})
	register(module{
		Name:       "10-escalation",
		Migrations: slices.Concat(jobs.Migrations, oncall.Migrations, notify.Migrations, escalation.Migrations),
		Setup:      setupEscalation,
	})
}

// engines holds the escalation engine of each App (set by the escalation
// module's setup).
var engines sync.Map // *App -> *escalation.Engine

// EscalationEngine returns the escalation engine, for modules set up after
// "10-escalation" that escalate on their own, e.g. a runbook whose
// verification failed: a.EscalationEngine().EscalateNow(ctx, id, reason).
// It is nil before the escalation module's setup.
func (a *App) EscalationEngine() *escalation.Engine {
	if e, ok := engines.Load(a); ok {
		return e.(*escalation.Engine)
	}
	return nil
}

// checkEscalation validates the cross-section references of the escalation,
// on-call and notification sections and logs their warnings.
func (a *App) checkEscalation(cfg *config.Config) error {
	cfg.Notifications.SetBaseDir(cfg.BaseDir)
	warnings, err := cfg.Escalation.CheckRefs(&cfg.OnCall, &cfg.Notifications)
	if err != nil {
		return fmt.Errorf("escalation: %w", err)
	}
	for _, w := range warnings {
		a.Logger.Warn("escalation config", "warning", w)
	}
	for sched, gaps := range cfg.OnCall.GapWarnings(time.Now()) {
		var total time.Duration
		for _, g := range gaps {
			total += g.End.Sub(g.Start)
		}
		a.Logger.Warn("on-call coverage gap", "schedule", sched, "gaps", len(gaps), "uncovered", total.String(),
			"first_gap_start", gaps[0].Start, "horizon", cfg.OnCall.GapHorizon.String())
	}
	return nil
}

func setupEscalation(_ context.Context, a *App) error {
	cfg := a.Config()
	if err := a.checkEscalation(cfg); err != nil {
		return err
	}
	logger := a.Logger.With("component", "escalation")
	dir := oncall.NewDirectory(a.DB, &cfg.OnCall)
	engine := escalation.NewEngine(a.DB, &cfg.Escalation, dir, &cfg.Notifications, cfg.Global.ExternalURL, escalation.Options{
		Logger: logger, Timeline: a.Incidents, Registerer: a.Registry,
	})
	engines.Store(a, engine)
	// A runtime override or swap re-plans the handoffs of running escalations.
	dir.OnChange(engine.SchedulesChanged)
	a.AddHook(engine)
	worker := jobs.NewWorker(a.DB, escalation.Queue, engine.Handle, nil, logger, a.Registry)
	sender := notify.NewSender(a.DB, &cfg.Notifications, nil, a.Incidents, a.Logger.With("component", "notify"), a.Registry)
	// A fired step wakes the sender: its messages go out at once, not on the
	// sender's next tick.
	worker.AfterRun = sender.Poke
	a.AddActor(Actor{Name: "escalation-worker", Execute: worker.Run})
	a.AddActor(Actor{Name: "notification-sender", Execute: sender.Run})
	a.Registry.MustRegister(oncall.NewCollector(dir, nil))
	oncall.NewAPI(dir, nil, a.Logger.With("component", "oncall")).Register(a.Mux)
	a.console().OnCall = dir
	(&escalation.API{Engine: engine, Acks: a.Incidents}).Register(a.Mux)
	a.OnReload(func(ctx context.Context, cfg *config.Config) error {
		if err := a.checkEscalation(cfg); err != nil {
			return err
		}
		dir.SetConfig(&cfg.OnCall)
		engine.SetConfig(&cfg.Escalation, &cfg.Notifications, cfg.Global.ExternalURL)
		sender.SetConfig(&cfg.Notifications)
		// Rotations may have changed: re-plan the handoffs of running escalations.
		var schedules []string
		for _, s := range cfg.OnCall.Schedules {
			schedules = append(schedules, s.Name)
		}
		if err := engine.RecheckHandoffs(ctx, schedules); err != nil {
			logger.Warn("re-plan shift handoffs after reload", "err", err)
		}
		return nil
	})
	return nil
}
