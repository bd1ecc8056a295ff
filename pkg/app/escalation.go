package app

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/rootuip/sre/pkg/config"
	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/oncall"
)

// Escalation is on-call, notifications and escalation: it owns the
// escalation, oncall and notifications sections, checked together (a
// policy names schedules and channels), and sets a.Escalation.
var Escalation = Spec[*EscalationConfig]{
	Name:       "escalation",
	Sections:   []string{"escalation", "oncall", "notifications"},
	Migrations: slices.Concat(oncall.Migrations, notify.Migrations, escalation.Migrations),
	Load:       LoadEscalation,
	Build:      buildEscalation,
}

// EscalationConfig is what the escalation subsystem runs with: its three
// sections, checked against each other.
type EscalationConfig struct {
	Escalation    escalation.Config
	OnCall        oncall.Config
	Notifications notify.Config
	ExternalURL   string
	// Warnings are the references that are not errors (logged when applied).
	Warnings []string
}

// ConfigWarnings returns the escalation section's references that are not
// errors (a channel no notification configures, a contact without an
// address), as sred logs them.
func (c *EscalationConfig) ConfigWarnings() []string {
	out := make([]string, len(c.Warnings))
	for i, w := range c.Warnings {
		out[i] = "escalation: " + w
	}
	return out
}

// escalationLanes is how many escalation jobs of different incidents run at
// once (jobs.Options.Concurrency): on SQLite they share the writer's
// batches, on PostgreSQL they are transactions of the pool beside the
// deliveries'.
const escalationLanes = 8

// LoadEscalation decodes and checks the escalation, oncall and
// notifications sections.
func LoadEscalation(cfg *config.Config) (*EscalationConfig, error) {
	c := &EscalationConfig{ExternalURL: cfg.Global.ExternalURL}
	if err := cfg.Decode("escalation", &c.Escalation); err != nil {
		return nil, err
	}
	if err := cfg.Decode("oncall", &c.OnCall); err != nil {
		return nil, err
	}
	if err := cfg.Decode("notifications", &c.Notifications); err != nil {
		return nil, err
	}
	c.Notifications.SetBaseDir(cfg.BaseDir)
	if err := cfg.CheckFiles(notificationFiles(&c.Notifications)...); err != nil {
		return nil, err
	}
	warnings, err := c.Escalation.CheckRefs(&c.OnCall, &c.Notifications)
	if err != nil {
		return nil, fmt.Errorf("escalation: %w", err)
	}
	c.Warnings = warnings
	return c, nil
}

// logEscalationWarnings logs the warnings of a loaded configuration, at
// the node of the file in force they name as `srectl check config` prints
// them ("sred.yml:8:38: escalation: policies[0] (api): ..."), and the gaps
// in on-call coverage.
func (a *App) logEscalationWarnings(c *EscalationConfig) {
	cfg := a.Config()
	for _, w := range c.ConfigWarnings() {
		a.Logger.Warn("escalation config", "warning", cfg.PlaceWarning(w))
	}
	for sched, gaps := range c.OnCall.GapWarnings(time.Now()) {
		var total time.Duration
		for _, g := range gaps {
			total += g.End.Sub(g.Start)
		}
		a.Logger.Warn("on-call coverage gap", "schedule", sched, "gaps", len(gaps), "uncovered", total.String(),
			"first_gap_start", gaps[0].Start, "horizon", c.OnCall.GapHorizon.String())
	}
}

func buildEscalation(_ context.Context, a *App, c *EscalationConfig) (func(context.Context, *EscalationConfig), error) {
	a.logEscalationWarnings(c)
	logger := a.Logger.With("component", "escalation")
	dir := oncall.NewDirectory(a.DB, &c.OnCall)
	engine := escalation.NewEngine(a.DB, &c.Escalation, dir, &c.Notifications, c.ExternalURL, escalation.Options{
		Logger: logger, Timeline: a.Incidents, Registerer: a.Registry,
		// EscalateNow (console, API, runbooks, ended snoozes) writes in
		// the incident service's writer too, like the worker below.
		Write: a.Incidents.Write,
	})
	a.Escalation = engine
	// A runtime override or swap re-plans the handoffs of running escalations.
	dir.OnChange(engine.SchedulesChanged)
	a.AddHook(engine)
	// Incident exports carry the escalation state; an import resumes it.
	a.Incidents.AddExportPart("escalation", escalation.ExportPart{Dialect: a.DB.Dialect})
	// The worker's claims and jobs run through the incident service's
	// writer: on SQLite they join the deliveries' batches instead of taking
	// the write lock themselves (the handlers write with the transaction
	// they are given, never through another Write).
	// The jobs of different incidents run side by side (escalationLanes):
	// one after another, a storm's first pages fell behind its new
	// incidents, each step waiting for a commit of its own.
	worker := jobs.NewWorker(a.DB, escalation.Queue, engine.Handle, jobs.Options{
		Logger: logger, Registerer: a.Registry, Kinds: escalation.Kinds, Write: a.Incidents.Write,
		Concurrency: escalationLanes,
	})
	sender := notify.NewSender(a.DB, &c.Notifications, nil, a.Incidents, a.Logger.With("component", "notify"), a.Registry)
	// A page withdrawn while being sent and delivered after its sender's
	// lease gets what follows a page (PagerDuty's events, the all-clear).
	sender.OnLateDelivery = engine.LateDelivery
	// A fired step wakes the sender: its messages go out at once, not on the
	// sender's next tick.
	worker.AfterRun = sender.Poke
	// The incident's timeline in the API and the console shows its pages
	// held back by a paused channel, from the sender's memory at read
	// time (nothing is written for them).
	a.Incidents.SetLiveTimeline(sender.QueuedTimeline)
	// The retention compaction (set up later, running before the actors
	// start) prunes both queues in batches, with the retention section's
	// finished_jobs and notification_outbox.
	a.AddActor(Actor{Name: "escalation-worker", Execute: func(ctx context.Context) error {
		worker.NoPrune = a.Compactor != nil
		return worker.Run(ctx)
	}})
	a.AddActor(Actor{Name: "notification-sender", Execute: func(ctx context.Context) error {
		sender.NoPrune = a.Compactor != nil
		return sender.Run(ctx)
	}})
	if err := a.Registry.Register(oncall.NewCollector(dir, nil)); err != nil {
		return nil, err
	}
	oncall.NewAPI(dir, nil, a.Logger.With("component", "oncall")).Register(a.Mux)
	a.OnCall = dir
	(&escalation.API{Engine: engine, Acks: a.Incidents, Pauses: sender}).Register(a.Mux)
	return func(ctx context.Context, c *EscalationConfig) {
		a.logEscalationWarnings(c)
		dir.SetConfig(&c.OnCall)
		engine.SetConfig(&c.Escalation, &c.Notifications, c.ExternalURL)
		sender.SetConfig(&c.Notifications)
		// Rotations may have changed: re-plan the handoffs of running escalations.
		var schedules []string
		for _, s := range c.OnCall.Schedules {
			schedules = append(schedules, s.Name)
		}
		if err := engine.RecheckHandoffs(ctx, schedules); err != nil {
			logger.Warn("re-plan shift handoffs after reload", "err", err)
		}
	}, nil
}
