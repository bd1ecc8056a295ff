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
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rootuip/sre/pkg/config"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/receiver"
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
	// Receiver is the Alertmanager webhook handler (set by the core module).
	Receiver *receiver.Handler

	mu        sync.RWMutex
	cfg       *config.Config
	hooks     []incident.Hook
	actors    []Actor
	reloaders []func(ctx context.Context, cfg *config.Config) error

	opts     Options
	reloadCh chan chan error
	ready    atomic.Bool
	metrics  *appMetrics
	access   *access
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

// Options say how to start the process.
type Options struct {
	// ConfigFile is the path of sred.yml.
	ConfigFile string
	// StoragePath is the SQLite directory (used when PostgresURL is empty).
	StoragePath string
	// PostgresURL selects PostgreSQL (HA mode) when not empty.
	PostgresURL string
	Logger      *slog.Logger
	// Registry receives every metric; a new one (with Go, process and build
	// info collectors) is created when nil.
	Registry *prometheus.Registry
	// NoAuth is the explicit no-auth mode (cmd/sred's --web.no-auth).
	// Without it, and with no users (auth.users_file) nor WebConfigUsers,
	// the app also runs without authentication (tests build it so);
	// cmd/sred refuses that combination.
	NoAuth bool
	// WebConfigUsers are the basic_auth_users of --web.config.file (name ->
	// bcrypt hash): they are admins.
	WebConfigUsers map[string]string
}

type appMetrics struct {
	reloadSuccess   prometheus.Gauge
	reloadTimestamp prometheus.Gauge
	busDrops        prometheus.Counter
}

// New loads the configuration, opens the store, applies every module's
// migrations and sets every module up. Close releases the store.
func New(ctx context.Context, o Options) (*App, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := config.LoadFile(o.ConfigFile)
	if err != nil {
		return nil, err
	}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
			versioncollector.NewCollector("sre"),
		)
	}
	var db *store.DB
	if o.PostgresURL != "" {
		db, err = store.OpenPostgres(ctx, o.PostgresURL)
	} else {
		db, err = store.OpenSQLite(ctx, o.StoragePath)
	}
	if err != nil {
		return nil, err
	}
	a := &App{
		Logger:   o.Logger,
		Registry: reg,
		DB:       db,
		Mux:      http.NewServeMux(),
		cfg:      cfg,
		opts:     o,
		reloadCh: make(chan chan error),
	}
	a.metrics = &appMetrics{
		reloadSuccess: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "sre_config_last_reload_successful",
			Help: "Whether the last configuration reload attempt was successful.",
		}),
		reloadTimestamp: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "sre_config_last_reload_success_timestamp_seconds",
			Help: "Timestamp of the last successful configuration reload.",
		}),
		busDrops: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "sre_event_bus_dropped_total",
			Help: "Events dropped because a live-stream subscriber was too slow.",
		}),
	}
	a.Bus = events.NewBus(1024, a.metrics.busDrops.Inc)
	modulesMu.Lock()
	mods := append([]module(nil), modules...)
	modulesMu.Unlock()
	var sets [][]store.Migration
	for _, m := range mods {
		if len(m.Migrations) > 0 {
			sets = append(sets, m.Migrations)
		}
	}
	if err := db.Migrate(ctx, sets...); err != nil {
		db.Close()
		return nil, err
	}
	for _, m := range mods {
		if m.Setup == nil {
			continue
		}
		if err := m.Setup(ctx, a); err != nil {
			db.Close()
			return nil, fmt.Errorf("set up %s: %w", m.Name, err)
		}
	}
	a.Mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, "sred is Healthy.")
	})
	a.Mux.HandleFunc("GET /-/ready", a.serveReady)
	a.Mux.HandleFunc("POST /-/reload", a.serveReload)
	a.Mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	a.metrics.reloadSuccess.Set(1)
	a.metrics.reloadTimestamp.SetToCurrentTime()
	a.ready.Store(true)
	return a, nil
}

// Close closes the store.
func (a *App) Close() error { return a.DB.Close() }

// Actors returns every goroutine of the process: the modules' actors and
// the reload loop (which serves POST /-/reload and Reload requests).
func (a *App) Actors() []Actor {
	out := append([]Actor(nil), a.actors...)
	return append(out, Actor{Name: "reload", Execute: a.reloadLoop})
}

func (a *App) reloadLoop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case errc := <-a.reloadCh:
			errc <- a.reload(ctx)
		}
	}
}

// RequestReload asks the reload loop to reload the configuration file and
// waits for the result. An invalid configuration is rejected and the one in
// force keeps running.
func (a *App) RequestReload(ctx context.Context) error {
	errc := make(chan error, 1)
	select {
	case a.reloadCh <- errc:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *App) reload(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			a.metrics.reloadSuccess.Set(0)
			a.Logger.Error("Reload configuration", "file", a.opts.ConfigFile, "err", err)
			return
		}
		a.metrics.reloadSuccess.Set(1)
		a.metrics.reloadTimestamp.SetToCurrentTime()
		a.Logger.Info("Configuration reloaded", "file", a.opts.ConfigFile)
	}()
	cfg, err := config.LoadFile(a.opts.ConfigFile)
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range a.reloaders {
		if err := f(ctx, cfg); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("apply configuration: %w", errors.Join(errs...))
	}
	a.mu.Lock()
	a.cfg = cfg
	a.mu.Unlock()
	return nil
}

func (a *App) serveReload(w http.ResponseWriter, r *http.Request) {
	if err := a.RequestReload(r.Context()); err != nil {
		http.Error(w, fmt.Sprintf("failed to reload config: %s", err), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// Ready reports whether migrations are done and the store answers.
func (a *App) Ready(ctx context.Context) error {
	if !a.ready.Load() {
		return errors.New("starting")
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := a.DB.PingContext(pctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

func (a *App) serveReady(w http.ResponseWriter, r *http.Request) {
	if err := a.Ready(r.Context()); err != nil {
		http.Error(w, "sred is not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
	fmt.Fprintln(w, "sred is Ready.")
}
