package app

import (
	"context"
	"sync/atomic"

	"github.com/rootuip/sre/pkg/config"
	"github.com/rootuip/sre/pkg/retention"
)

// Retention is data retention: the `retention` section and the background
// compaction that deletes expired rows in small batches
// (sre_store_rows, sre_store_deleted_rows_total).
var Retention = Spec[retention.Config]{
	Name:     "retention",
	Sections: []string{"retention"},
	Load: func(cfg *config.Config) (retention.Config, error) {
		var c retention.Config
		err := cfg.Decode("retention", &c)
		return c, err
	},
	Build: func(_ context.Context, a *App, c retention.Config) (func(context.Context, retention.Config), error) {
		comp, err := retention.New(a.DB, a.Logger.With("component", "retention"), a.Registry)
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
