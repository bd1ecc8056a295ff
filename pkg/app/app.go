// Package app wires the sred process explicitly: New loads sred.yml (every
// subsystem loads and checks its own sections), opens the store, applies
// every subsystem's migrations, then builds the subsystems in the order of
// Subsystems, each with the dependencies the ones before it made. Their
// routes share one mux; their goroutines (Actors) run in the oklog/run
// group of cmd/sred; reloads are all-or-nothing (Reload).
//
// A subsystem is its own package plus one file pkg/app/<name>.go defining a
// Spec; see docs/architecture.md.
package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rootuip/sre/pkg/analysis"
	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/change"
	"github.com/rootuip/sre/pkg/chaos"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/config"
	"github.com/rootuip/sre/pkg/correlation"
	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/loglimit"
	"github.com/rootuip/sre/pkg/oncall"
	"github.com/rootuip/sre/pkg/receiver"
	"github.com/rootuip/sre/pkg/retention"
	"github.com/rootuip/sre/pkg/rollout"
	"github.com/rootuip/sre/pkg/runbook"
	"github.com/rootuip/sre/pkg/scaling"
	"github.com/rootuip/sre/pkg/status"
	"github.com/rootuip/sre/pkg/store"
)

// Actor is a long-running goroutine of the process, as in oklog/run:
// Execute runs until ctx is cancelled or it fails.
type Actor struct {
	Name    string
	Execute func(ctx context.Context) error
}

// App is the running process.
type App struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry
	DB       *store.DB
	Bus      *events.Bus
	Mux      *http.ServeMux

	// Incidents is the core incident service (set by Core).
	Incidents *incident.Service
	// Receiver is the Alertmanager webhook handler (set by Core).
	Receiver *receiver.Handler
	// Escalation is the escalation engine (set by Escalation).
	Escalation *escalation.Engine
	// OnCall is the on-call directory (set by Escalation).
	OnCall *oncall.Directory
	// Runbooks is the runbook engine (set by Runbooks).
	Runbooks *runbook.Engine
	// Compactor deletes expired rows (set by Retention).
	Compactor *retention.Compactor
	// Budgets is the error budget service (set by Budget).
	Budgets *budget.Service
	// Changes records deployments and infrastructure changes (set by
	// Changes): the stage runner records its rollouts with Record/Finish.
	Changes *change.Service
	// Analysis serves rollout analyses (set by Analysis): Spec(name) and
	// Evaluator().Evaluate judge a canary for the stage runner.
	Analysis *analysis.Service
	// Chaos is the chaos experiment service (set by Chaos).
	Chaos *chaos.Service
	// Rollouts is the stage runner of progressive deliveries.
	Rollouts *rollout.Service
	// Scaling is the scaling controller (set by Scaling).
	Scaling *scaling.Controller
	// Status is the public status page (set by StatusPage).
	Status *status.Service
	// Graph returns the service dependency graph in force (set by
	// Correlation; it changes on reload).
	Graph func() *correlation.Graph

	mu       sync.RWMutex
	cfg      *Config
	hooks    []incident.Hook
	actors   []Actor
	stops    []func(context.Context) error
	subs     []Subsystem
	appliers []func(context.Context, any)

	opts     Options
	reloadCh chan chan error
	ready    atomic.Bool
	metrics  *appMetrics
	access   *access
	handler  http.Handler
	refusals *refusals
	// readyLog bounds the log lines of failing readiness probes, which
	// anyone may send.
	readyLog *loglimit.Limiter
}

// Config returns the configuration in force.
func (a *App) Config() *Config {
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

// AddShutdown registers f, which Shutdown calls: it ends what would
// otherwise hold the web server's shutdown or be cut by the end of the
// process (the live event streams).
func (a *App) AddShutdown(f func(context.Context) error) { a.stops = append(a.stops, f) }

// Shutdown ends the live event streams (package stream's Shutdown): the
// SSE streams end with a last comment, the WebSocket connections get a
// close frame 1001 (going away), new streams are refused 503. It calls
// the functions of AddShutdown at once and returns when all have returned
// or ctx ends. Call it before http.Server.Shutdown, which would otherwise
// wait for the SSE streams until its deadline and leave the WebSocket
// connections (hijacked) to drop when the process exits.
func (a *App) Shutdown(ctx context.Context) error {
	errs := make([]error, len(a.stops))
	var wg sync.WaitGroup
	for i, f := range a.stops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// EscalationEngine returns the escalation engine (nil when the Escalation
// subsystem is not built), for subsystems that escalate on their own.
func (a *App) EscalationEngine() *escalation.Engine { return a.Escalation }

// Options say how to start the process.
type Options struct {
	// ConfigFile is the path of sred.yml.
	ConfigFile string
	// StoragePath is the SQLite directory (used when PostgresURL is empty).
	StoragePath string
	// PostgresURL selects PostgreSQL (HA mode) when not empty.
	PostgresURL string
	// PostgresMaxConns bounds the replica's main pool of PostgreSQL
	// connections (0: store.DefaultPostgresMaxConns).
	PostgresMaxConns int
	Logger           *slog.Logger
	// Registry receives every metric; a new one (with Go, process and build
	// info collectors) is created when nil.
	Registry *prometheus.Registry
	// NoAuth is the explicit no-auth mode (cmd/sred's --web.no-auth).
	// Without it, and with no users (auth.users_file) nor WebConfigUsers,
	// the app also runs without authentication (tests build it so);
	// cmd/sred refuses that combination.
	NoAuth bool
	// NoEventRelay turns the event relay between PostgreSQL replicas off
	// (cmd/sred's --no-events.relay): each replica streams only its own
	// events.
	NoEventRelay bool
	// WebConfigUsers are the basic_auth_users of --web.config.file (name ->
	// bcrypt hash): they are admins.
	WebConfigUsers map[string]string
	// Subsystems are built after sred's own (Subsystems), in this order.
	Subsystems []Subsystem
	// Kubernetes builds the clients of the subsystems that act on a
	// cluster; cmd/sred passes pkg/kube's (client-go), which this package
	// does not link. Without them kubernetes runbook steps fail, and a chaos
	// section naming a cluster is refused.
	Kubernetes Kubernetes
	// Clock times the app's background rounds that take it (the incident
	// statistics rollup, every collector.DefaultRollupInterval); the wall
	// clock when nil. Tests pass a clock.Manual and move it to run a round.
	Clock clock.Timer

	// onRelayListen, if not nil, is called each time the event relay's
	// LISTEN connection is established (tests wait on it).
	onRelayListen func()
}

// Kubernetes builds Kubernetes clients from the settings in force.
type Kubernetes struct {
	// Runbook is the client of runbook kubernetes steps.
	Runbook func(runbook.KubernetesConfig) (runbook.Kubernetes, error)
	// ChaosMesh is the Chaos Mesh driver of chaos experiments on the cluster
	// of kubeconfig and context (in-cluster when kubeconfig is empty).
	ChaosMesh func(kubeconfig, context string, maxDuration time.Duration) (chaos.Driver, error)
	// HPA reads the status of the HPAs of scaling policies Kubernetes
	// scales, on the cluster of kubeconfig and context.
	HPA func(kubeconfig, context string) (scaling.HPAReader, error)
}

type appMetrics struct {
	reloadSuccess   prometheus.Gauge
	reloadTimestamp prometheus.Gauge
	busDrops        prometheus.Counter
	httpDuration    *prometheus.HistogramVec
}

// New loads the configuration (every subsystem loads and checks its
// sections), opens the store, applies every subsystem's migrations and
// builds the subsystems in order. Close releases the store.
func New(ctx context.Context, o Options) (*App, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	subs := append(Subsystems(), o.Subsystems...)
	if err := checkSubsystems(subs); err != nil {
		return nil, err
	}
	cfg, err := loadConfig(o.ConfigFile, subs)
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
		db, err = store.OpenPostgres(ctx, o.PostgresURL, store.PostgresOptions{MaxConns: o.PostgresMaxConns})
	} else {
		db, err = store.OpenSQLiteExclusive(ctx, o.StoragePath)
	}
	if err != nil {
		return nil, err
	}
	// The pools' connections in use and the time spent waiting for one
	// (go_sql_*{db_name="main"}, and "side" for PostgreSQL's ID
	// allocation): what --storage.postgres-max-connections is tuned by.
	pools := []prometheus.Collector{collectors.NewDBStatsCollector(db.DB, "main")}
	if db.Dialect == store.Postgres {
		pools = append(pools, collectors.NewDBStatsCollector(db.Side(), "side"))
	}
	for _, c := range pools {
		if err := reg.Register(c); err != nil {
			db.Close()
			return nil, fmt.Errorf("register the storage pool's metrics: %w", err)
		}
	}
	a := &App{
		Logger:   o.Logger,
		Registry: reg,
		DB:       db,
		Mux:      http.NewServeMux(),
		cfg:      cfg,
		subs:     subs,
		opts:     o,
		reloadCh: make(chan chan error),
	}
	a.metrics = &appMetrics{
		reloadSuccess: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "sre_config_last_reload_successful",
			Help: "Whether the last configuration reload succeeded.",
		}),
		reloadTimestamp: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "sre_config_last_reload_success_timestamp_seconds",
			Help: "Time of the last successful configuration reload.",
		}),
		busDrops: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "sre_event_bus_dropped_total",
			Help: "Live-stream events dropped because a subscriber was too slow.",
		}),
		httpDuration: promauto.With(reg).NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricHTTPRequestDuration,
			Help:    "Latency of every HTTP request sred served (API, webhook, UI, /metrics).",
			Buckets: prometheus.DefBuckets,
		}, []string{"handler", "method", "code"}),
	}
	a.Bus = events.NewBus(1024, a.metrics.busDrops.Inc)
	a.refusals = newRefusals(reg, o.Clock, o.Logger.With("component", "http"))
	a.readyLog = loglimit.New(o.Clock, readyLogEvery, 1)
	// Migrations of shared packages (targetlock: chaos, rollouts, scaling)
	// are listed by each subsystem that uses them and applied once.
	var sets [][]store.Migration
	seen := map[string]bool{}
	for _, s := range subs {
		_, _, ms := s.describe()
		var own []store.Migration
		for _, m := range ms {
			if !seen[m.ID] {
				seen[m.ID] = true
				own = append(own, m)
			}
		}
		if len(own) > 0 {
			sets = append(sets, own)
		}
	}
	if err := db.Migrate(ctx, sets...); err != nil {
		db.Close()
		return nil, err
	}
	for _, s := range subs {
		apply, err := s.build(ctx, a, cfg.loaded[nameOf(s)])
		if err != nil {
			a.Close() //nolint:errcheck // the setup error is the one to report
			return nil, fmt.Errorf("set up %s: %w", nameOf(s), err)
		}
		a.appliers = append(a.appliers, apply)
	}
	a.Mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, "sred is Healthy.")
	})
	a.Mux.HandleFunc("GET /-/ready", a.serveReady)
	a.Mux.HandleFunc("POST /-/reload", a.serveReload)
	// A collector that fails (a store read timing out) leaves its series out
	// and is logged; it does not turn the whole scrape into a 500, which
	// would drop every other series and set up to 0.
	a.Mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg,
		ErrorHandling: promhttp.ContinueOnError, ErrorLog: gatherLog{a.Logger}}))
	mountPprof(a.Mux)
	a.handler = a.instrument()
	a.metrics.reloadSuccess.Set(1)
	a.metrics.reloadTimestamp.SetToCurrentTime()
	a.ready.Store(true)
	return a, nil
}

// checkSubsystems rejects two subsystems with one name or one section.
func checkSubsystems(subs []Subsystem) error {
	names := map[string]bool{}
	owners := map[string]string{}
	for _, c := range config.CoreSections {
		owners[c] = "core config"
	}
	for _, s := range subs {
		name, sections, _ := s.describe()
		if name == "" || names[name] {
			return fmt.Errorf("subsystem names must be unique and not empty, got %q twice or empty", name)
		}
		names[name] = true
		for _, sec := range sections {
			if o, ok := owners[sec]; ok {
				return fmt.Errorf("subsystem %s: section %q already belongs to %s", name, sec, o)
			}
			owners[sec] = name
		}
	}
	return nil
}

// Close stops the incident service's writer and closes the store.
func (a *App) Close() error {
	if a.Incidents != nil {
		a.Incidents.Close() //nolint:errcheck // never fails
	}
	return a.DB.Close()
}

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

// reload is all-or-nothing: the new file is loaded and every subsystem's
// Load checks its sections and prepares its new state; only when all of them
// succeeded does each subsystem install its new state (which cannot fail).
// A failed reload changes nothing and says why.
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
	cfg, err := loadConfig(a.opts.ConfigFile, a.subs)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.cfg = cfg
	a.mu.Unlock()
	for i, s := range a.subs {
		if apply := a.appliers[i]; apply != nil {
			apply(ctx, cfg.loaded[nameOf(s)])
		}
	}
	return nil
}

func (a *App) serveReload(w http.ResponseWriter, r *http.Request) {
	if err := a.RequestReload(r.Context()); err != nil {
		http.Error(w, fmt.Sprintf("failed to reload config: %s", err), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// NotReadyError is why sred is not ready: Reason is the short, fixed text
// /-/ready answers ("starting", "store unavailable", "store cannot
// write"); Err, the full cause (which may name the store's host, file or
// SQL), goes to sred's log only: the probe needs no credentials.
type NotReadyError struct {
	Reason string
	Err    error
}

func (e *NotReadyError) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *NotReadyError) Unwrap() error { return e.Err }

// Ready reports whether migrations are done and the store answers; its
// error is a *NotReadyError.
func (a *App) Ready(ctx context.Context) error {
	if !a.ready.Load() {
		return &NotReadyError{Reason: "starting"}
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.DB.PingContext(pctx); err != nil {
		return &NotReadyError{Reason: "store unavailable", Err: err}
	}
	// A store that answers but cannot write (full disk, read-only
	// database) is not ready: deliveries would fail. On SQLite the probe
	// goes through the incident service's single writer, behind the
	// writes queued before it.
	now := time.Now()
	var err error
	if a.Incidents != nil {
		err = a.Incidents.Write(pctx, func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, store.ProbeWriteSQL, now.UnixMilli())
			return err
		})
	} else {
		err = a.DB.ProbeWrite(pctx, now)
	}
	if err != nil {
		return &NotReadyError{Reason: "store cannot write", Err: err}
	}
	return nil
}

// readyLogEvery is how often a failing readiness probe is logged: the
// first failure at once, then at most once per interval.
const readyLogEvery = 10 * time.Second

// serveReady answers 200, or 503 with the short reason only (as
// Prometheus's /-/ready answers a short text): the probe needs no
// credentials, and the store's error can name its host, a file path or
// SQL. The full error is logged.
func (a *App) serveReady(w http.ResponseWriter, r *http.Request) {
	if err := a.Ready(r.Context()); err != nil {
		reason := "not ready"
		var nr *NotReadyError
		if errors.As(err, &nr) {
			reason = nr.Reason
		}
		if ok, held := a.readyLog.Allow("ready"); ok {
			a.Logger.Warn("Not ready", "reason", reason, "err", err, "not_logged_before", held)
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "sred is not ready: "+reason, http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
	fmt.Fprintln(w, "sred is Ready.")
}

// gatherLog logs the errors of /metrics' collectors.
type gatherLog struct{ l *slog.Logger }

func (g gatherLog) Println(v ...any) { g.l.Warn("Serve /metrics", "err", fmt.Sprint(v...)) }
