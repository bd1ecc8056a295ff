// Package app wires the sred process: it opens the store, applies every
// module's migrations, builds the subsystems from the configuration, mounts
// their HTTP routes on one mux and runs their goroutines in an oklog/run group.
//
// Subsystems plug in as modules: each file pkg/app/<subsystem>.go calls
// register() from init() with its migrations and a setup function, so adding
// a subsystem does not touch the core.
package app

import (
	"context"
	"log/slog"
	"net/http"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootuip/sre/pkg/config"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
)

// Actor is a long-running goroutine of the process, as in oklog/run:
// Execute runs until ctx is cancelled or it fails.
type Actor struct {
	Name    string
	Execute func(ctx context.Context) error
}

// module is one subsystem.
type module struct {
	// Name orders setup (core first, by convention "00-core", "10-escalation", ...).
	Name       string
	Migrations []store.Migration
	// Setup builds the subsystem from a.Config(): it may add hooks
	// (a.AddHook), routes (a.Mux), actors (a.AddActor), reload subscribers
	// (a.OnReload) and collectors (a.Registry).
	Setup func(ctx context.Context, a *App) error
}

var (
	modulesMu sync.Mutex
	modules   []module
)

func register(m module) {
	modulesMu.Lock()
	defer modulesMu.Unlock()
	modules = append(modules, m)
	sort.SliceStable(modules, func(i, j int) bool { return modules[i].Name < modules[j].Name })
}

// App is the running process.
type App struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry
	DB       *store.DB
	Bus      *events.Bus
	Mux      *http.ServeMux

	// Incidents is the core incident service (set by the core module).
	Incidents *incident.Service

	mu        sync.RWMutex
	cfg       *config.Config
	hooks     []incident.Hook
	actors    []Actor
	reloaders []func(ctx context.Context, cfg *config.Config) error
}

// Config returns the configuration in force.
func (a *App) Config() *config.Config {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.cfg
}

// AddHook registers an incident hook (called inside the incident's transaction).
func (a *App) AddHook(h incident.Hook) { a.hooks = append(a.hooks, h) }

// Hooks returns the registered hooks.
func (a *App) Hooks() []incident.Hook { return a.hooks }

// AddActor adds a goroutine to the process's run group.
func (a *App) AddActor(act Actor) { a.actors = append(a.actors, act) }

// OnReload registers a function called with each new valid configuration.
// If any subscriber fails, the reload is reported as failed.
func (a *App) OnReload(f func(ctx context.Context, cfg *config.Config) error) {
	a.reloaders = append(a.reloaders, f)
}
