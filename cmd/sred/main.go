// Command sred is the ROOTUIP SRE daemon: it receives Alertmanager webhook
// deliveries, keeps durable incidents, and runs the subsystems (escalation,
// notifications, on-call, runbooks, budgets) plugged into pkg/app.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/oklog/run"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/rootuip/sre/pkg/app"
	"github.com/rootuip/sre/pkg/chaos"
	"github.com/rootuip/sre/pkg/chaos/drivers/chaosmesh"
	"github.com/rootuip/sre/pkg/connlimit"
	"github.com/rootuip/sre/pkg/kube"
	"github.com/rootuip/sre/pkg/kube/hpa"
	"github.com/rootuip/sre/pkg/runbook"
	"github.com/rootuip/sre/pkg/scaling"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/suggest"
)

func main() {
	os.Exit(runMain(os.Args[1:]))
}

func runMain(args []string) int {
	a := kingpin.New("sred", "ROOTUIP SRE daemon: turns Alertmanager alerts into durable incidents.")
	configFile := a.Flag("config.file", "sred configuration file.").Default("sred.yml").String()
	storagePath := a.Flag("storage.path", "Directory of the embedded SQLite database (used unless --storage.postgres-url is set).").Default("data/").String()
	postgresURL := a.Flag("storage.postgres-url", "PostgreSQL connection URL for running several replicas against one database (HA mode).").
		Envar("SRED_POSTGRES_URL").String()
	postgresMaxConns := a.Flag("storage.postgres-max-connections", "Maximum number of open connections of this replica's main PostgreSQL pool (at least 2; two more serve the incident ID allocation, and two the event relay between replicas). Transactions beyond it wait for a free connection, inside sred rather than inside PostgreSQL; the wait is go_sql_wait_duration_seconds_total{db_name=\"main\"} on /metrics.").
		Default(strconv.Itoa(store.DefaultPostgresMaxConns)).Int()
	webConfig := kingpinflag.AddFlags(a, ":8095")
	eventRelay := a.Flag("events.relay", "On PostgreSQL, relay this replica's events to the other replicas of the database and theirs to this replica's event stream (LISTEN/NOTIFY on two connections of its own), so that every replica streams the same events. --no-events.relay: each replica streams only its own events (two replicas on two shared cores took 5% more deliveries a second without the relay, docs/events.md).").Default("true").Bool()
	streamAddress := a.Flag("web.stream-address", "Also serve the WebSocket event stream (GET /api/v1/stream, and nothing else) on this address, e.g. :8096, with the TLS and authentication of the web listener; browsers may connect from the console's origins (the same host on a port of --web.listen-address, or global.external_url) and no other site. Empty: only on the web listener.").String()
	maxConns := a.Flag("web.max-connections", "Maximum number of open HTTP connections per listener; beyond it a new connection is answered 503 and closed. Lowered at start to fit the file descriptor limit.").
		Default("4096").Int()
	statusAddress := a.Flag("web.status-address", "Also serve the public status page (/status, /status.json, /status/feed.atom, and nothing else) on this address, e.g. :8097, with the TLS of the web listener, so that it can face the internet while the console does not.").String()
	noAuth := a.Flag("web.no-auth", "Serve without authentication: anyone who reaches the port acts as admin. For local trials only; sred refuses to start without users (auth.users_file) unless this is set.").Bool()
	gcPercent := a.Flag("runtime.gogc", "Garbage collection target percentage, as GOGC (a negative value turns collection off); ignored when the GOGC environment variable is set. sred trades some memory for CPU by default (docs/sred.md, Flags).").
		Default(strconv.Itoa(defaultGCPercent)).Int()
	promslogConfig := &promslog.Config{}
	promslogflag.AddFlags(a, promslogConfig)
	a.Version(version.Print("sred"))
	a.HelpFlag.Short('h')
	if _, err := a.Parse(args); err != nil {
		fmt.Fprintf(os.Stderr, "sred: %v%s\n", err, suggest.FlagHint(a, args))
		return 2
	}
	logger := promslog.New(promslogConfig)
	if *maxConns < 1 {
		fmt.Fprintf(os.Stderr, "sred: --web.max-connections must be at least 1, got %d\n", *maxConns)
		return 2
	}
	if *postgresMaxConns < 2 {
		fmt.Fprintf(os.Stderr, "sred: --storage.postgres-max-connections must be at least 2 (a sweep holds one connection while its work takes another), got %d\n", *postgresMaxConns)
		return 2
	}
	logger.Info("Starting sred", "version", version.Info())
	setGCPercent(*gcPercent, logger)
	logger.Info("Build context", "build_context", version.BuildContext())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	webUsers, servedWebConfig, cleanup, err := splitWebConfig(*webConfig.WebConfigFile)
	if err != nil {
		logger.Error("Start sred", "err", err)
		return 1
	}
	defer cleanup()
	*webConfig.WebConfigFile = servedWebConfig
	opts := app.Options{ConfigFile: *configFile, StoragePath: *storagePath, PostgresURL: *postgresURL, PostgresMaxConns: *postgresMaxConns, Logger: logger,
		NoAuth: *noAuth, NoEventRelay: !*eventRelay, WebConfigUsers: webUsers, Kubernetes: kubernetesClients}
	sred, err := app.New(ctx, opts)
	if err != nil {
		logger.Error("Start sred", "err", err)
		return 1
	}
	defer sred.Close()
	if sred.NoAuth() && !*noAuth {
		logger.Error("Start sred", "err", "no users configured: list users and API tokens in the file named by auth.users_file in the configuration file, or start with --web.no-auth for a local trial")
		return 1
	}
	if *postgresURL != "" {
		logger.Info("Storage ready", "backend", "postgres")
	} else {
		logger.Info("Storage ready", "backend", "sqlite", "path", *storagePath)
	}

	nofile := raiseNoFile(logger)
	listeners := 1
	if *streamAddress != "" {
		listeners = 2
	}
	conns := connectionCap(*maxConns, listeners, nofile, logger)
	logger.Info("Connection limits", "max_connections_per_listener", conns, "nofile", nofile)

	// Every listener is opened before any subsystem starts: an address in
	// use (another sred, a leftover demo) is then the one error reported,
	// not the last after the subsystems' own failures as they are stopped.
	webListeners, err := listen(webConfig, logger)
	if err != nil {
		logger.Error("Start sred", "err", fmt.Errorf("web server: %w%s", err, inUseHint(err, "--web.listen-address; make run SRED_PORT=8096")))
		return 1
	}
	type extraListener struct {
		name, metric string
		flags        *web.FlagConfig
		listeners    []net.Listener
		h            http.Handler
	}
	var extra []extraListener
	for _, l := range []struct {
		name, metric, addr string
		h                  http.Handler
	}{{"stream", "stream", *streamAddress, sred.StreamHandler(*webConfig.WebListenAddresses...)}, {"status page", "status", *statusAddress, sred.StatusHandler()}} {
		if l.addr == "" {
			continue
		}
		addrs, systemd := []string{l.addr}, false
		cfg := &web.FlagConfig{WebListenAddresses: &addrs, WebSystemdSocket: &systemd, WebConfigFile: webConfig.WebConfigFile}
		ls, err := listen(cfg, logger)
		if err != nil {
			closeAll(webListeners)
			for _, e := range extra {
				closeAll(e.listeners)
			}
			logger.Error("Start sred", "err", fmt.Errorf("%s server: %w%s", l.name, err, inUseHint(err, "--web."+l.metric+"-address")))
			return 1
		}
		extra = append(extra, extraListener{name: l.name, metric: l.metric, flags: cfg, listeners: ls, h: l.h})
	}

	var g run.Group
	{
		// Termination.
		term := make(chan os.Signal, 1)
		signal.Notify(term, os.Interrupt, syscall.SIGTERM)
		done := make(chan struct{})
		g.Add(func() error {
			select {
			case s := <-term:
				logger.Info("Received signal, exiting gracefully", "signal", s.String())
			case <-done:
			}
			return nil
		}, func(error) { close(done) })
	}
	{
		// SIGHUP reloads the configuration.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		hctx, hcancel := context.WithCancel(ctx)
		g.Add(func() error {
			for {
				select {
				case <-hup:
					_ = sred.RequestReload(hctx) // the result is logged and exported as metrics
				case <-hctx.Done():
					return nil
				}
			}
		}, func(error) { hcancel() })
	}
	for _, act := range sred.Actors() {
		actx, acancel := context.WithCancel(ctx)
		g.Add(func() error {
			if err := act.Execute(actx); err != nil {
				return fmt.Errorf("%s: %w", act.Name, err)
			}
			return nil
		}, func(error) { acancel() })
	}
	{
		// Timeouts bound what a slow or idle client holds: headers in
		// 10 s, a whole request body in 1 min, an answer in 2 min, idle
		// keep-alive connections 2 min; --web.max-connections bounds
		// how many it holds. The live event streams (GET /api/v1/events,
		// /api/v1/stream) clear their write deadline.
		srv := &http.Server{Handler: sred.Handler(), ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: time.Minute, WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
		lim := connlimit.New(conns, "web", sred.Registry)
		g.Add(func() error {
			if err := serve(srv, webListeners, webConfig, lim, logger); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("web server: %w", err)
			}
			return nil
		}, func(error) {
			sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer scancel()
			shutdownStreams(sctx, sred, logger)
			_ = srv.Shutdown(sctx)
		})
	}
	// Listeners of their own for the WebSocket stream and the public
	// status page: same web configuration file (TLS), same authentication
	// (the app's middleware), only their routes.
	for _, l := range extra {
		srv := &http.Server{Handler: l.h, ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: time.Minute, WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
		lim := connlimit.New(conns, l.metric, sred.Registry)
		g.Add(func() error {
			if err := serve(srv, l.listeners, l.flags, lim, logger); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("%s server: %w", l.name, err)
			}
			return nil
		}, func(error) {
			sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer scancel()
			shutdownStreams(sctx, sred, logger)
			_ = srv.Shutdown(sctx)
		})
	}
	if err := g.Run(); err != nil {
		logger.Error("sred stopped", "err", err)
		return 1
	}
	logger.Info("See you next time!")
	return 0
}

// closeAll closes listeners opened before the servers that would own them.
func closeAll(ls []net.Listener) {
	for _, l := range ls {
		l.Close()
	}
}

// shutdownStreams ends the live event streams before a web server shuts
// down (app.App.Shutdown): the WebSocket clients get a close frame 1001
// (going away) and the SSE streams end, so that their clients reconnect
// to another replica at once and no idle stream holds the shutdown until
// its deadline. The first listener to shut down ends the streams of all;
// the others find them ended.
func shutdownStreams(ctx context.Context, sred *app.App, logger *slog.Logger) {
	if err := sred.Shutdown(ctx); err != nil {
		logger.Warn("End the event streams", "err", err)
	}
}

// kubernetesClients are the client-go clients of the subsystems that act on
// a cluster; only sred links them (pkg/kube).
var kubernetesClients = app.Kubernetes{
	Runbook: func(c runbook.KubernetesConfig) (runbook.Kubernetes, error) {
		return kube.NewDeployments(c.Kubeconfig, c.Context)
	},
	ChaosMesh: func(kubeconfig, context string, maxDuration time.Duration) (chaos.Driver, error) {
		dc, err := kube.Dynamic(kubeconfig, context)
		if err != nil {
			return nil, err
		}
		return &chaosmesh.Driver{Client: dc, MaxDuration: maxDuration, InjectTimeout: time.Minute}, nil
	},
	HPA: func(kubeconfig, context string) (scaling.HPAReader, error) {
		return hpa.New(kubeconfig, context)
	},
}
