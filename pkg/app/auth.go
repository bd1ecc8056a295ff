package app

import (
	"context"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/rootuip/sre/pkg/audit"
	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/config"
)

func init() {
	register(module{Name: "01-auth", Migrations: audit.Migrations, Setup: setupAuth})
}

// access is who may do what: the users and tokens of auth.users_file (plus
// the basic_auth_users of --web.config.file) and the audit log.
type access struct {
	authn  *auth.Authenticator
	noAuth bool
	audit  *audit.Log
	errors prometheus.Counter
	// webhookToken is whether webhook.bearer_token(_file) is set.
	webhookToken atomic.Bool
}

// NoAuth reports whether sred runs without authentication (every request
// acts as auth.Anonymous, an admin).
func (a *App) NoAuth() bool { return a.access == nil || a.access.noAuth }

// Audit returns the audit log.
func (a *App) Audit() *audit.Log { return a.access.audit }

func loadUsers(cfg *config.Config) (*auth.UsersFile, error) {
	if cfg.Auth.UsersFile == "" {
		return nil, nil
	}
	return auth.LoadUsersFile(cfg.Auth.UsersFile)
}

// setupAuth loads the users file, decides the authentication mode (fixed
// until restart) and mounts the audit log's API.
func setupAuth(_ context.Context, a *App) error {
	users, err := loadUsers(a.Config())
	if err != nil {
		return err
	}
	authn := auth.NewAuthenticator(users)
	if len(a.opts.WebConfigUsers) > 0 {
		if err := authn.AddUsers(a.opts.WebConfigUsers, auth.RoleAdmin); err != nil {
			return err
		}
	}
	a.access = &access{
		authn:  authn,
		noAuth: a.opts.NoAuth || (users == nil && len(a.opts.WebConfigUsers) == 0),
		audit:  audit.New(a.DB, nil),
		errors: promauto.With(a.Registry).NewCounter(prometheus.CounterOpts{
			Name: "sre_audit_record_failures_total",
			Help: "Write actions that could not be recorded in the audit log.",
		}),
	}
	a.access.webhookToken.Store(webhookHasToken(a.Config()))
	enabled := promauto.With(a.Registry).NewGauge(prometheus.GaugeOpts{
		Name: "sre_auth_enabled",
		Help: "1 when requests are authenticated, 0 in the no-auth mode (anyone who reaches the port is admin).",
	})
	if a.access.noAuth {
		a.Logger.Warn("Authentication is OFF (no-auth mode): anyone who can reach the port may act as admin: resolve incidents, approve runbook runs, flip the kill switch, reload. Use only for local trials; configure auth.users_file for anything else.")
	} else {
		enabled.Set(1)
	}
	a.access.audit.Register(a.Mux)
	a.OnReload(func(_ context.Context, cfg *config.Config) error {
		users, err := loadUsers(cfg)
		if err != nil {
			return err
		}
		next := auth.NewAuthenticator(users)
		if len(a.opts.WebConfigUsers) > 0 {
			if err := next.AddUsers(a.opts.WebConfigUsers, auth.RoleAdmin); err != nil {
				return err
			}
		}
		// The mode stays what it was at start: a users file that is now
		// empty lets nobody in, it does not turn authentication off.
		a.access.authn.SetUsers(next.Users())
		a.access.webhookToken.Store(webhookHasToken(cfg))
		return nil
	})
	return nil
}

func webhookHasToken(cfg *config.Config) bool {
	return cfg.Webhook.BearerToken != "" || cfg.Webhook.BearerTokenFile != ""
}

// secure wraps h with the auth middleware: authentication, the role of
// each route (auth.Routes), cross-origin protection, JSON content type and
// the audit log of every write.
func (a *App) secure(h http.Handler) http.Handler {
	if a.access == nil {
		// setupAuth did not run (an App built by hand in a test).
		return h
	}
	return auth.Middleware(auth.Options{
		Authenticator: a.access.authn,
		NoAuth:        a.access.noAuth,
		Route:         func(r *http.Request) string { _, p := a.Mux.Handler(r); return p },
		OnWrite: a.access.audit.Recorder(func(err error) {
			a.access.errors.Inc()
			a.Logger.Error("Record audit entry", "err", err)
		}),
		WebhookToken: a.access.webhookToken.Load,
		Logger:       a.Logger.With("component", "auth"),
	}, h)
}
