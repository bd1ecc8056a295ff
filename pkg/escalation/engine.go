package escalation

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/oncall"
	"github.com/rootuip/sre/pkg/store"
)

// Queue is the jobs queue of escalation timers.
const Queue = "escalation"

// The kinds of escalation timers.
const (
	// KindStep pages a level.
	KindStep jobs.Kind = "step"
	// KindAckTimeout re-escalates an acknowledged incident still open.
	KindAckTimeout jobs.Kind = "ack_timeout"
	// KindHandoff re-checks who is on call when a shift hands off.
	KindHandoff jobs.Kind = "handoff"
	// KindReminder reminds the acknowledger that the incident is still open.
	KindReminder jobs.Kind = "reminder"
)

// Kinds are the kinds of the escalation queue.
var Kinds = []jobs.Kind{KindStep, KindAckTimeout, KindHandoff, KindReminder}

// Migrations create the escalation tables. The jobs, oncall and notify
// migrations must be applied too.
var Migrations = []store.Migration{{
	ID: "escalation/0001_init",
	SQLite: `CREATE TABLE escalation_state (
	incident_id TEXT PRIMARY KEY,
	policy      TEXT NOT NULL,
	frozen      TEXT NOT NULL,
	snapshot    TEXT NOT NULL,
	epoch       INTEGER NOT NULL,
	state       TEXT NOT NULL,
	level       INTEGER NOT NULL DEFAULT -1,
	started_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL
);
CREATE TABLE escalation_pages (
	incident_id TEXT NOT NULL,
	epoch       INTEGER NOT NULL,
	user_name   TEXT NOT NULL,
	level       INTEGER NOT NULL,
	paged_at    BIGINT NOT NULL,
	PRIMARY KEY (incident_id, epoch, user_name, level)
);
CREATE TABLE escalation_maintenance (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	name       TEXT NOT NULL,
	matchers   TEXT NOT NULL,
	starts_at  BIGINT NOT NULL,
	ends_at    BIGINT NOT NULL,
	created_by TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL
);`,
	Postgres: `CREATE TABLE escalation_state (
	incident_id TEXT PRIMARY KEY,
	policy      TEXT NOT NULL,
	frozen      TEXT NOT NULL,
	snapshot    TEXT NOT NULL,
	epoch       INTEGER NOT NULL,
	state       TEXT NOT NULL,
	level       INTEGER NOT NULL DEFAULT -1,
	started_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL
);
CREATE TABLE escalation_pages (
	incident_id TEXT NOT NULL,
	epoch       INTEGER NOT NULL,
	user_name   TEXT NOT NULL,
	level       INTEGER NOT NULL,
	paged_at    BIGINT NOT NULL,
	PRIMARY KEY (incident_id, epoch, user_name, level)
);
CREATE TABLE escalation_maintenance (
	id         BIGSERIAL PRIMARY KEY,
	name       TEXT NOT NULL,
	matchers   TEXT NOT NULL,
	starts_at  BIGINT NOT NULL,
	ends_at    BIGINT NOT NULL,
	created_by TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL
);`,
}, {
	// acked_by: who acknowledged the escalation's current epoch (empty
	// while it is not acknowledged), told when the severity rises.
	ID:     "escalation/0002_acked_by",
	SQLite: `ALTER TABLE escalation_state ADD COLUMN acked_by TEXT NOT NULL DEFAULT '';`,
}, {
	// cycle: the round of a repeating policy (repeat) its level is in,
	// which escalate now continues.
	ID:       "escalation/0003_cycle",
	SQLite:   `ALTER TABLE escalation_state ADD COLUMN cycle INTEGER NOT NULL DEFAULT 0;`,
	Postgres: `ALTER TABLE escalation_state ADD COLUMN cycle INTEGER NOT NULL DEFAULT 0;`,
}}

// Options configure an Engine.
type Options struct {
	Clock    clock.Clock
	Logger   *slog.Logger
	Timeline incident.TimelineWriter
	// Registerer for the engine's metrics (may be nil).
	Registerer prometheus.Registerer
	// HandoffHorizon bounds the look-ahead for the next shift handoff
	// (default, and for any value not above 0: 7 days). A step reads who
	// is on call and the next handoff over it at once.
	HandoffHorizon time.Duration
	// Write runs the transaction of an action asked from outside a
	// transaction (EscalateNow). Give it incident.Service.Write, as the
	// escalation worker's jobs.Options.Write: on SQLite the action then
	// joins the single writer's next batch instead of taking the write
	// lock itself. Nil: a transaction of its own (db.InTx).
	Write func(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error
}

// Engine runs escalations. It is an incident.Hook (IncidentChanged) and the
// handler of the escalation jobs queue (Handle).
type Engine struct {
	db       *store.DB
	dir      *oncall.Directory
	clock    clock.Clock
	logger   *slog.Logger
	timeline incident.TimelineWriter
	horizon  time.Duration
	write    func(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error

	mu          sync.RWMutex
	cfg         *Config
	ncfg        *notify.Config
	externalURL string

	steps *prometheus.CounterVec
}

// NewEngine returns an engine. dir resolves users, teams and schedules.
func NewEngine(db *store.DB, cfg *Config, dir *oncall.Directory, ncfg *notify.Config, externalURL string, o Options) *Engine {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HandoffHorizon <= 0 {
		o.HandoffHorizon = 7 * 24 * time.Hour
	}
	if o.Write == nil {
		o.Write = func(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
			return db.InTx(ctx, func(tx *sql.Tx) error { return fn(ctx, tx) })
		}
	}
	e := &Engine{db: db, dir: dir, clock: o.Clock, logger: o.Logger, timeline: o.Timeline, horizon: o.HandoffHorizon, write: runAgainIfRetryable(o.Write)}
	e.SetConfig(cfg, ncfg, externalURL)
	e.steps = promauto.With(o.Registerer).NewCounterVec(prometheus.CounterOpts{
		Namespace: "sre",
		Name:      "escalation_steps_total",
		Help:      "Escalation steps by outcome: paged, no_targets (a level with nobody to page), suppressed (maintenance), handoff (re-paged after an on-call handoff), reminded, reescalated, no_policy (an incident no policy matches: nobody is paged).",
	}, []string{"severity", "outcome"})
	// Every severity's outcomes are exported at zero from the start
	// (docs/metrics.md), as Alertmanager exports its notification counters.
	for _, sev := range incident.Severities {
		for _, outcome := range stepOutcomes {
			e.steps.WithLabelValues(string(sev), outcome)
		}
	}
	return e
}

// runAgainIfRetryable returns write that runs fn again from the start
// when PostgreSQL rolled its transaction back to break a deadlock or on a
// serialization failure (store.RunAgain), as incident.Service.mutate
// does for a status change: an action asked from outside a transaction
// (Acknowledge, EscalateNow, NotifyResponders, RecheckHandoffs) is not
// refused for it. fn must start over on each run (it is given a fresh
// transaction; what it keeps outside it, it resets).
func runAgainIfRetryable(write func(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error) func(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return func(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
		return store.RunAgain(ctx, func() error { return write(ctx, fn) })
	}
}

// stepOutcomes are the outcomes sre_escalation_steps_total counts.
var stepOutcomes = []string{"paged", "no_targets", "suppressed", "handoff", "reminded", "reescalated", "no_policy"}

// SetConfig swaps the configuration (on reload). Running escalations keep
// their frozen policy.
func (e *Engine) SetConfig(cfg *Config, ncfg *notify.Config, externalURL string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cfg, e.ncfg, e.externalURL = cfg, ncfg, strings.TrimRight(externalURL, "/")
}

func (e *Engine) config() (*Config, *notify.Config, string) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.cfg, e.ncfg, e.externalURL
}

func (e *Engine) note(ctx context.Context, tx *sql.Tx, id string, t time.Time, msg string, data map[string]any) error {
	return e.noteTo(ctx, tx, nil, id, t, msg, data)
}

// timelineBatcher is a TimelineWriter that can add an entry's write to a
// batch (incident.Service).
type timelineBatcher interface {
	AddTimelineTo(b *store.Batch, e incident.TimelineEntry) error
}

// noteTo is note with the entry's write added to b when b is not nil and
// the timeline can batch it.
func (e *Engine) noteTo(ctx context.Context, tx *sql.Tx, b *store.Batch, id string, t time.Time, msg string, data map[string]any) error {
	if e.timeline == nil {
		return nil
	}
	entry := incident.TimelineEntry{IncidentID: id, Time: t, Kind: "escalation", Actor: "sred", Message: msg, Data: data}
	var err error
	if tb, ok := e.timeline.(timelineBatcher); ok && b != nil {
		err = tb.AddTimelineTo(b, entry)
	} else {
		err = e.timeline.AddTimeline(ctx, tx, entry)
	}
	if err != nil {
		return fmt.Errorf("escalation timeline of %s: %w", id, err)
	}
	return nil
}

// IncidentChangedIn implements incident.BatchHook: a new incident's
// escalation starts in the statement that writes the incident (its state,
// its first step's job and its timeline entry: on PostgreSQL three round
// trips less for every delivery that opens an incident).
func (e *Engine) IncidentChangedIn(ctx context.Context, ch incident.Change, w *incident.Writes) (bool, error) {
	if ch.Kind != incident.ChangeCreated || ch.Incident == nil {
		return false, nil
	}
	now := ch.Time
	if now.IsZero() {
		now = e.clock.Now()
	}
	return true, e.startIn(ctx, nil, w, ch.Incident, now)
}

// IncidentChanged implements incident.Hook: it runs inside the incident's
// transaction and only writes rows (state, timers, outbox).
func (e *Engine) IncidentChanged(ctx context.Context, tx *sql.Tx, ch incident.Change) error {
	inc := ch.Incident
	if inc == nil {
		return nil
	}
	now := ch.Time
	if now.IsZero() {
		now = e.clock.Now()
	}
	switch ch.Kind {
	case incident.ChangeCreated, incident.ChangeReopened:
		return e.start(ctx, tx, inc, now)
	case incident.ChangeFlapping:
		// Damped: a group firing and resolving over and over pages no
		// more, but one that then stays firing is an outage. The
		// escalation restarts after the hold; a resolve before cancels it.
		if ch.Hold > 0 {
			return e.startAfter(ctx, tx, nil, inc, now, ch.Hold)
		}
	case incident.ChangeAcknowledged:
		return e.acknowledge(ctx, tx, inc.ID, ch.Actor, now)
	case incident.ChangeInvestigating:
		// Work has started: the acknowledgement timeout starts again.
		return e.acknowledge(ctx, tx, inc.ID, ch.Actor, now)
	case incident.ChangeResolved:
		return e.resolve(ctx, tx, inc.ID, ch.Actor, now)
	case incident.ChangeRecovering:
		return e.recovering(ctx, tx, inc.ID, now)
	case incident.ChangeBurningAgain:
		// The outage is back: the escalation starts over.
		return e.start(ctx, tx, inc, now)
	case incident.ChangeSeverityRaised:
		// Worse than it was: an escalation still paging starts over with
		// the policy of the new severity; an acknowledged one only takes
		// that policy for later (severityRaised).
		return e.severityRaised(ctx, tx, inc, now)
	}
	return nil
}
