package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/rootuip/sre/pkg/config"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/yamlerr"
)

// A Subsystem is one part of sred: a package of its own, wired by one file
// of pkg/app that defines it as a Spec (its only implementation).
// Subsystems lists sred's own, in the order they are built;
// Options.Subsystems adds more after them.
type Subsystem interface {
	describe() (name string, sections []string, migrations []store.Migration)
	load(cfg *config.Config) (any, error)
	build(ctx context.Context, a *App, loaded any) (apply func(context.Context, any), err error)
}

// Spec defines a subsystem whose loaded configuration is a C.
type Spec[C any] struct {
	// Name names the subsystem in errors and logs.
	Name string
	// Sections are the top-level sections of sred.yml it owns (Load
	// decodes them); a section that no subsystem owns is a config error.
	Sections []string
	// Migrations are the subsystem's store migrations.
	Migrations []store.Migration
	// Load decodes the subsystem's sections (cfg.Decode) strictly,
	// validates them and prepares whatever can fail (files read, parsed,
	// clients built), changing nothing that runs: `srectl check config`
	// runs it too. nil means the subsystem has no configuration.
	Load func(cfg *config.Config) (C, error)
	// Build builds the subsystem from its first loaded configuration and
	// the dependencies it takes from a (a.DB, a.Incidents, a.Escalation,
	// ...): it adds routes to a.Mux, actors (a.AddActor), incident hooks
	// (a.AddHook) and collectors (a.Registry). It returns the function that
	// installs the configuration of each later reload, which cannot fail
	// (nil when there is nothing to reload).
	Build func(ctx context.Context, a *App, c C) (apply func(ctx context.Context, c C), err error)
}

func (s Spec[C]) describe() (string, []string, []store.Migration) {
	return s.Name, s.Sections, s.Migrations
}

func nameOf(s Subsystem) string {
	n, _, _ := s.describe()
	return n
}

func (s Spec[C]) load(cfg *config.Config) (any, error) {
	var c C
	if s.Load == nil {
		return c, nil
	}
	return s.Load(cfg)
}

func (s Spec[C]) build(ctx context.Context, a *App, loaded any) (func(context.Context, any), error) {
	c, _ := loaded.(C)
	if s.Build == nil {
		return nil, nil
	}
	apply, err := s.Build(ctx, a, c)
	if err != nil || apply == nil {
		return nil, err
	}
	return func(ctx context.Context, loaded any) {
		c, _ := loaded.(C)
		apply(ctx, c)
	}, nil
}

// Of returns the configuration of this subsystem in cfg (its zero value
// when cfg was loaded without it).
func (s Spec[C]) Of(cfg *Config) C {
	c, _ := cfg.loaded[s.Name].(C)
	return c
}

// Config is sred.yml as the subsystems loaded it: the core sections
// (config.Config) and what each subsystem's Load returned (Spec.Of).
type Config struct {
	*config.Config
	loaded map[string]any
}

// Subsystems returns sred's own subsystems in the order they are built:
// a subsystem's Build may use what the ones before it set on the App.
func Subsystems() []Subsystem {
	return []Subsystem{
		Auth,         // users, roles, audit log: a.access (Handler's middleware)
		Core,         // incidents, the webhook receiver: a.Incidents, a.Receiver
		Correlation,  // service graph and correlation rules (after Core: a.Incidents)
		Escalation,   // on-call, notifications, escalation: a.Escalation
		Reconcile,    // Alertmanager reconciliation, silences, Watchdog
		Runbooks,     // runbook automation
		HealthChecks, // health checks exported as blackbox_exporter's probe_* metrics
		Budget,       // error budgets, the deploy gate, SLA reports
		Changes,      // change records, DORA measures (after Budget and Core: the gate, incident hooks)
		Analysis,     // rollout analysis for Argo Rollouts, Flagger and the stage runner (after Budget: the gate)
		Recovery,     // recovering SLO incidents: all-clear (reads a.Budgets)
		Collector,    // incident statistics on /metrics
		Noise,        // the alert noise report (after Core: a.Incidents)
		Retention,    // data retention: batched compaction of expired rows
		Stream,       // live event stream
		StatusPage,   // public status page (after Budget: reads a.Budgets)
		Chaos,        // chaos experiments (after Core and Escalation: a.Incidents, a.Escalation)
		Scaling,      // auto-scaling policies (after Runbooks and Auth: the actuator, the audit log)
		Rollouts,     // the rollout stage runner (after Runbooks, Budget and Changes: actuators, the gate, change records)
		UI,           // console pages (last: reads what the others set)
	}
}

// LoadConfig loads and checks sred.yml at path as sred does, with its own
// subsystems and extra ones: every subsystem's Load runs, nothing is
// built. `srectl check config` and offline srectl commands use it.
func LoadConfig(path string, extra ...Subsystem) (*Config, error) {
	return loadConfig(path, append(Subsystems(), extra...))
}

// loadConfig loads sred.yml; its errors name no Go type (yamlerr): they
// reach people at start, on reload and in `srectl check config`.
func loadConfig(path string, subs []Subsystem) (*Config, error) {
	cfg, err := loadConfigRaw(path, subs)
	return cfg, yamlerr.Rewrite(err)
}

func loadConfigRaw(path string, subs []Subsystem) (*Config, error) {
	var sections []string
	for _, s := range subs {
		_, secs, _ := s.describe()
		sections = append(sections, secs...)
	}
	cfg, err := config.LoadFile(path, sections...)
	if err != nil {
		return nil, err
	}
	out := &Config{Config: cfg, loaded: make(map[string]any, len(subs))}
	for _, s := range subs {
		v, err := s.load(cfg)
		if err != nil {
			// A problem positioned in the file (config.Decode) reads
			// "load config sred.yml:4:9: msg", as those of the core
			// sections do; so does one of the subsystem's own checks
			// after decoding ("escalation: policies[0] (p):
			// levels[1].users[0]: unknown user \"nobody\"") where the file has the node it
			// names (config.Locate); any other "load config sred.yml: msg".
			if !strings.HasPrefix(err.Error(), path+":") {
				_, secs, _ := s.describe()
				err = cfg.Locate(err, secs...)
			}
			if strings.HasPrefix(err.Error(), path+":") {
				return nil, fmt.Errorf("load config %w", err)
			}
			return nil, fmt.Errorf("load config %s: %w", path, err)
		}
		out.loaded[nameOf(s)] = v
	}
	return out, nil
}
