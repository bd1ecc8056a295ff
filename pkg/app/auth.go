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

// authConfig is the loaded `auth` section: the users file read and checked.
type authConfig struct {
	auth.Config
	users        *auth.UsersFile
	webhookToken bool
}

// Auth is who may do what: the users and API tokens of auth.users_file
// (plus the basic_auth_users of --web.config.file), the role of every route
// (auth.Routes) enforced by the middleware in Handler, and the audit log of
// every write (GET /api/v1/audit).
var Auth = Spec[authConfig]{
	Name:       "auth",
	Sections:   []string{"auth"},
	Migrations: audit.Migrations,
	Load: func(cfg *config.Config) (authConfig, error) {
		var c authConfig
		if err := cfg.Decode("auth", &c.Config); err != nil {
			return c, err
		}
		c.SetDirectory(cfg.BaseDir)
		c.webhookToken = cfg.Webhook.BearerToken != "" || cfg.Webhook.BearerTokenFile != ""
		if c.UsersFile == "" {
			return c, nil
		}
		u, err := auth.LoadUsersFile(c.UsersFile)
		c.users = u
		return c, err
	},
	Build: setupAuth,
}

// access is the state of the Auth subsystem.
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

// Audit returns the audit log (nil before the Auth subsystem is built).
func (a *App) Audit() *audit.Log {
	if a.access == nil {
		return nil
	}
	return a.access.audit
}

// users returns the users and tokens of c with the basic_auth_users of
// --web.config.file (admins).
func (a *App) users(c authConfig) (*auth.UsersFile, error) {
	return c.users.WithUsers(a.opts.WebConfigUsers, auth.RoleAdmin)
}

// warnBcryptTokens warns about the tokens given as bcrypt hashes.
func (a *App) warnBcryptTokens(u *auth.UsersFile) {
	if names := u.BcryptTokens(); len(names) > 0 {
		a.Logger.Warn("API tokens given as bcrypt hashes: every unknown bearer token a client sends is compared with each of them; give their SHA-256 instead (sha256: in the users file, see docs/security.md)", "tokens", names)
	}
}

// setupAuth decides the authentication mode (fixed until restart) and
// mounts the audit log's API.
func setupAuth(_ context.Context, a *App, c authConfig) (func(context.Context, authConfig), error) {
	users, err := a.users(c)
	if err != nil {
		return nil, err
	}
	a.warnBcryptTokens(users)
	a.access = &access{
		authn:  auth.NewAuthenticator(users, auth.Limits{Registerer: a.Registry}),
		noAuth: a.opts.NoAuth || (c.users == nil && len(a.opts.WebConfigUsers) == 0),
		audit:  audit.New(a.DB, nil),
		errors: promauto.With(a.Registry).NewCounter(prometheus.CounterOpts{
			Name: "sre_audit_record_failures_total",
			Help: "Write actions done but not recorded in the audit log (the store refused the entry).",
		}),
	}
	a.access.webhookToken.Store(c.webhookToken)
	enabled := promauto.With(a.Registry).NewGauge(prometheus.GaugeOpts{
		Name: "sre_auth_enabled",
		Help: "1 when requests are authenticated (users file or web config users), 0 in the no-auth mode where anyone who reaches the port is admin.",
	})
	if a.access.noAuth {
		a.Logger.Warn("Authentication is OFF (no-auth mode): anyone who can reach the port may act as admin: resolve incidents, approve runbook runs, flip the kill switch, reload. Use only for local trials; configure auth.users_file for anything else.")
	} else {
		enabled.Set(1)
	}
	a.access.audit.Register(a.Mux)
	return func(_ context.Context, c authConfig) {
		next, err := a.users(c)
		if err != nil {
			// A user in both files: keep the users in force.
			a.Logger.Error("Reload users", "err", err)
			return
		}
		a.warnBcryptTokens(next)
		// The mode stays what it was at start: a users file that is now
		// empty lets nobody in, it does not turn authentication off. The
		// live streams of users and tokens removed, changed or whose role
		// changed (lowered or raised) end here.
		a.access.authn.SetUsers(next)
		a.access.webhookToken.Store(c.webhookToken)
	}, nil
}

// secure wraps h with the auth middleware: authentication, the role of
// each route (auth.Routes), cross-origin protection, JSON content type and
// the audit log of every write.
func (a *App) secure(h http.Handler) http.Handler {
	if a.access == nil {
		// The Auth subsystem was not built (an App built by hand in a test).
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
