package app

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"time"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/collector"
	"github.com/rootuip/sre/pkg/runbook"
	"github.com/rootuip/sre/pkg/store"
)

// Collector is the incident statistics collector and its background rollup.
var Collector = Spec[struct{}]{
	Name:       "collector",
	Migrations: collector.Migrations,
	Build: func(ctx context.Context, a *App, _ struct{}) (func(context.Context, struct{}), error) {
		return nil, setupCollector(ctx, a)
	},
}

// AutomationWindow is the range of incidents (by creation) over which
// automation coverage and toil are exported.
const AutomationWindow = 30 * 24 * time.Hour

// runbookAutomation reads automation coverage and toil from the runbook
// engine's records over the incidents created in the last AutomationWindow
// before the time of clock (the wall clock when nil).
type runbookAutomation struct {
	db    *store.DB
	clock clock.Clock
}

func (r runbookAutomation) AutomationRatios(ctx context.Context) (coverage, toil float64, ok bool, err error) {
	coverage, _, toil, ok, err = r.AutomationRunRatios(ctx)
	return coverage, toil, ok, err
}

// AutomationRunRatios adds the share of incidents where a runbook ran
// (collector.AutomationRuns), exported as sre_automation_run_ratio.
func (r runbookAutomation) AutomationRunRatios(ctx context.Context) (coverage, run, toil float64, ok bool, err error) {
	now := clock.OrReal(r.clock).Now()
	c, err := runbook.AutomationCoverage(ctx, r.db, now.Add(-AutomationWindow), now.Add(time.Minute))
	if err != nil {
		return 0, 0, 0, false, err
	}
	if c.Incidents == 0 {
		return 0, 0, 0, false, nil
	}
	toil = c.ToilRatio()
	if c.Resolved == 0 {
		// 0/0: no incident of the window resolved yet, so no toil to
		// measure; a 0 would read as "no work done by hand" (on target).
		toil = math.NaN()
	}
	return c.MitigatedRatio(), c.RunRatio(), toil, true, nil
}

// AutomationVersion changes whenever an incident changes or a runbook run
// is recorded, from two index lookups: the collector re-reads the ratios
// (a query over every incident of the window) only then, or once a minute
// (collector.AutomationVersioner). A run that starts or is verified without
// its incident changing, and incidents leaving the window, show up within
// that minute.
func (r runbookAutomation) AutomationVersion(ctx context.Context) (string, error) {
	var updated, run sql.NullInt64
	if err := r.db.QueryRowContext(ctx, `SELECT (SELECT MAX(updated_at) FROM incidents), (SELECT MAX(id) FROM runbook_runs)`).
		Scan(&updated, &run); err != nil {
		return "", fmt.Errorf("read automation version: %w", err)
	}
	return fmt.Sprintf("%d/%d", updated.Int64, run.Int64), nil
}

// newCollector builds the incident statistics collector as sred runs it.
func newCollector(a *App) (*collector.Collector, error) {
	return collector.New(a.DB, collector.Options{
		Automation: runbookAutomation{db: a.DB, clock: a.opts.Clock},
		Services: func() ([]string, int) {
			c := a.Config().Incidents
			return c.MetricServices, c.MaxMetricServices
		},
		Clock: a.opts.Clock,
	}, a.Logger.With("component", "collector"))
}

// setupCollector registers the incident statistics collector and a
// background rollup, every collector.DefaultRollupInterval on
// Options.Clock, that keeps scrapes short after bursts of changes and keeps
// the automation ratios current.
func setupCollector(_ context.Context, a *App) error {
	c, err := newCollector(a)
	if err != nil {
		return err
	}
	if err := a.Registry.Register(c); err != nil {
		return err
	}
	// Imported incidents carry their old updated_at: the rollup reads
	// again from the oldest, in the import's transaction.
	a.Incidents.AddImportHook(collector.RecountFrom)
	a.AddActor(Actor{Name: "collector-rollup", Execute: func(ctx context.Context) error {
		return c.Run(ctx)
	}})
	return nil
}
