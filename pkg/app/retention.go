package app

import (
	"context"
	"sync/atomic"

	"github.com/rootuip/sre/pkg/config"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/retention"
	"github.com/rootuip/sre/pkg/store"
)

// Retention is data retention: the `retention` section and the background
// compaction that deletes expired rows in small batches
// (sre_store_rows, sre_store_deleted_rows_total). It prunes every jobs
// queue, the notification outbox included, so the escalation worker and
// the notification sender do not prune themselves; the stream's replay
// ring takes its size and age from the same section (setupStream).
var Retention = Spec[retention.Config]{
	Name:       "retention",
	Sections:   []string{"retention"},
	Migrations: retention.Migrations,
	Load:       LoadRetention,
	Build: func(_ context.Context, a *App, c retention.Config) (func(context.Context, retention.Config), error) {
		o := retention.Options{Logger: a.Logger.With("component", "retention"), Registerer: a.Registry}
		if a.DB.Dialect == store.SQLite && a.Incidents != nil {
			// Batches join the group commit of webhook deliveries
			// rather than compete with it for SQLite's one write lock.
			o.Write = a.Incidents.Write
		}
		comp, err := retention.New(a.DB, o)
		if err != nil {
			return nil, err
		}
		a.Compactor = comp
		var cur atomic.Pointer[retention.Config]
		cur.Store(&c)
		a.AddActor(Actor{Name: "retention", Execute: func(ctx context.Context) error {
			return comp.Run(ctx, func() retention.Config { return *cur.Load() })
		}})
		return func(_ context.Context, c retention.Config) { cur.Store(&c) }, nil
	},
}

// LoadRetention decodes the retention section; an unset
// notification_outbox takes notifications.retention (whose default is 7d).
func LoadRetention(cfg *config.Config) (retention.Config, error) {
	var c retention.Config
	if err := cfg.Decode("retention", &c); err != nil {
		return c, err
	}
	if c.NotificationOutbox == nil {
		var n notify.Config
		if err := cfg.Decode("notifications", &n); err != nil {
			return c, err
		}
		keep := n.Retention
		c.NotificationOutbox = &keep
	}
	return c, nil
}
