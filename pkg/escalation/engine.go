package escalation

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

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
}}

// Escalation states.
const (
	StateActive       = "active"
	StateAcknowledged = "acknowledged"
	StateResolved     = "resolved"
	StateNoPolicy     = "no_policy"
)

// Frozen is the policy as it was when the incident triggered: later config
// reloads do not change a running escalation.
type Frozen struct {
	Policy   string        `json:"policy"`
	Severity string        `json:"severity"`
	Levels   []FrozenLevel `json:"levels"`
	// RepeatAfter is the wait after the last level before the chain repeats.
	Repeat      int           `json:"repeat"`
	RepeatAfter time.Duration `json:"repeat_after"`
	AckTimeout  time.Duration `json:"ack_timeout"`
	// AckReminder and ReminderChannels: reminders to the acknowledger.
	AckReminder      time.Duration `json:"ack_reminder,omitempty"`
	ReminderChannels []string      `json:"reminder_channels,omitempty"`
}

// FrozenLevel is one level with its effective offset and channels.
type FrozenLevel struct {
	Offset    time.Duration `json:"offset"`
	Users     []string      `json:"users,omitempty"`
	Schedules []string      `json:"schedules,omitempty"`
	Teams     []string      `json:"teams,omitempty"`
	Channels  []string      `json:"channels"`
}

// Freeze computes the effective chain of p for an incident of severity sev.
func (c *Config) Freeze(p *Policy, sev incident.Severity) *Frozen {
	rule := c.Severities[sev]
	if rule == nil {
		rule = c.Severities[incident.SeverityMedium]
	}
	f := &Frozen{Policy: p.Name, Severity: string(sev), Repeat: p.Repeat, AckTimeout: time.Duration(c.AckTimeout)}
	if p.AckTimeout != nil {
		f.AckTimeout = time.Duration(*p.AckTimeout)
	}
	f.AckReminder = time.Duration(c.AckReminder)
	if p.AckReminder != nil {
		f.AckReminder = time.Duration(*p.AckReminder)
	}
	if f.AckReminder > 0 {
		f.ReminderChannels = slices.Clone(c.AckReminderChannels)
	}
	for i, l := range p.Levels {
		off := time.Duration(l.After)
		if rule.EscalateAfter > 0 && i > 0 {
			off = time.Duration(l.After) - time.Duration(p.Levels[1].After) + time.Duration(p.Levels[0].After) + time.Duration(rule.EscalateAfter)
		}
		chs := l.Channels
		if len(chs) == 0 {
			chs = rule.Channels
		}
		f.Levels = append(f.Levels, FrozenLevel{Offset: off, Users: l.Users, Schedules: l.Schedules, Teams: l.Teams, Channels: slices.Clone(chs)})
	}
	f.RepeatAfter = time.Duration(p.RepeatAfter)
	if f.RepeatAfter == 0 {
		if len(f.Levels) > 1 {
			f.RepeatAfter = f.Levels[1].Offset - f.Levels[0].Offset
		} else {
			f.RepeatAfter = 15 * time.Minute
		}
	}
	return f
}

// snapshot is what messages need to know about the incident.
type snapshot struct {
	ID       string            `json:"id"`
	Title    string            `json:"title"`
	Service  string            `json:"service"`
	Severity string            `json:"severity"`
	Labels   map[string]string `json:"labels"`
	Impact   string            `json:"impact,omitempty"`
	Started  time.Time         `json:"started"`
}

// job is the payload of an escalation timer.
type job struct {
	Incident string `json:"incident"`
	Epoch    int    `json:"epoch"`
	Cycle    int    `json:"cycle,omitempty"`
	Level    int    `json:"level"`
	Schedule string `json:"schedule,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// User is who acknowledged (reminder).
	User string `json:"user,omitempty"`
	// Count numbers the reminders of one acknowledgement.
	Count int `json:"count,omitempty"`
	// AckAt is when the reminded acknowledgement was made (reminder).
	AckAt time.Time `json:"ack_at,omitzero"`
}

// Options configure an Engine.
type Options struct {
	Clock    jobs.Clock
	Logger   *slog.Logger
	Timeline incident.TimelineWriter
	// Registerer for the engine's metrics (may be nil).
	Registerer prometheus.Registerer
	// HandoffHorizon bounds the look-ahead for the next shift handoff.
	HandoffHorizon time.Duration
}

// Engine runs escalations. It is an incident.Hook (IncidentChanged) and the
// handler of the escalation jobs queue (Handle).
type Engine struct {
	db       *store.DB
	dir      *oncall.Directory
	clock    jobs.Clock
	logger   *slog.Logger
	timeline incident.TimelineWriter
	horizon  time.Duration

	mu          sync.RWMutex
	cfg         *Config
	ncfg        *notify.Config
	externalURL string

	steps *prometheus.CounterVec
}

// NewEngine returns an engine. dir resolves users, teams and schedules.
func NewEngine(db *store.DB, cfg *Config, dir *oncall.Directory, ncfg *notify.Config, externalURL string, o Options) *Engine {
	if o.Clock == nil {
		o.Clock = jobs.SystemClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HandoffHorizon == 0 {
		o.HandoffHorizon = 7 * 24 * time.Hour
	}
	e := &Engine{db: db, dir: dir, clock: o.Clock, logger: o.Logger, timeline: o.Timeline, horizon: o.HandoffHorizon}
	e.SetConfig(cfg, ncfg, externalURL)
	e.steps = promauto.With(o.Registerer).NewCounterVec(prometheus.CounterOpts{
		Namespace: "sre",
		Name:      "escalation_steps_total",
		Help:      "Escalation steps fired, by severity and outcome (paged, suppressed, no_targets, handoff, reescalated, reminded, no_policy).",
	}, []string{"severity", "outcome"})
	return e
}

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
	if e.timeline == nil {
		return nil
	}
	if err := e.timeline.AddTimeline(ctx, tx, incident.TimelineEntry{IncidentID: id, Time: t, Kind: "escalation", Actor: "sred", Message: msg, Data: data}); err != nil {
		return fmt.Errorf("escalation timeline of %s: %w", id, err)
	}
	return nil
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
	case incident.ChangeAcknowledged:
		return e.acknowledge(ctx, tx, inc.ID, ch.Actor, now)
	case incident.ChangeInvestigating:
		// Work has started: the acknowledgement timeout starts again.
		return e.acknowledge(ctx, tx, inc.ID, ch.Actor, now)
	case incident.ChangeResolved:
		return e.resolve(ctx, tx, inc.ID, ch.Actor, now)
	}
	return nil
}

type stateRow struct {
	policy  string
	frozen  Frozen
	snap    snapshot
	epoch   int
	state   string
	level   int
	started time.Time
}

func (e *Engine) load(ctx context.Context, tx *sql.Tx, id string) (*stateRow, error) {
	q := `SELECT policy, frozen, snapshot, epoch, state, level, started_at FROM escalation_state WHERE incident_id = $1`
	if e.db.Dialect == store.Postgres {
		q += ` FOR UPDATE`
	}
	var (
		r            stateRow
		frozen, snap string
		started      int64
	)
	err := tx.QueryRowContext(ctx, q, id).Scan(&r.policy, &frozen, &snap, &r.epoch, &r.state, &r.level, &started)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load escalation of %s: %w", id, err)
	}
	if err := json.Unmarshal([]byte(frozen), &r.frozen); err != nil {
		return nil, fmt.Errorf("escalation of %s: frozen policy: %w", id, err)
	}
	if err := json.Unmarshal([]byte(snap), &r.snap); err != nil {
		return nil, fmt.Errorf("escalation of %s: snapshot: %w", id, err)
	}
	r.started = jobs.FromMillis(started)
	return &r, nil
}

func (e *Engine) setState(ctx context.Context, tx *sql.Tx, id, state string, level int, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE escalation_state SET state = $1, level = $2, updated_at = $3 WHERE incident_id = $4`,
		state, level, jobs.Millis(now), id)
	if err != nil {
		return fmt.Errorf("update escalation of %s: %w", id, err)
	}
	return nil
}

// start freezes the policy onto the incident and schedules level 0.
func (e *Engine) start(ctx context.Context, tx *sql.Tx, inc *incident.Incident, now time.Time) error {
	cfg, _, _ := e.config()
	ls := LabelSet(inc)
	p := cfg.Select(ls)
	prev, err := e.load(ctx, tx, inc.ID)
	if err != nil {
		return err
	}
	epoch := 1
	if prev != nil {
		epoch = prev.epoch + 1
	}
	if _, err := jobs.CancelGroup(ctx, tx, now, Queue, inc.ID); err != nil {
		return err
	}
	snap := snapshot{ID: inc.ID, Title: inc.Title, Service: inc.Service, Severity: string(inc.Severity), Labels: inc.Labels, Impact: inc.Impact, Started: inc.DetectedAt}
	if snap.Started.IsZero() {
		snap.Started = inc.CreatedAt
	}
	var frozen *Frozen
	state, policyName := StateNoPolicy, ""
	if p != nil {
		frozen = cfg.Freeze(p, inc.Severity)
		state, policyName = StateActive, p.Name
	} else {
		frozen = &Frozen{Severity: string(inc.Severity)}
	}
	fb, err := json.Marshal(frozen)
	if err != nil {
		return fmt.Errorf("start escalation of %s: encode policy: %w", inc.ID, err)
	}
	sb, err := json.Marshal(snap)
	if err != nil {
		return fmt.Errorf("start escalation of %s: encode incident: %w", inc.ID, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO escalation_state (incident_id, policy, frozen, snapshot, epoch, state, level, started_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, -1, $7, $7)
ON CONFLICT (incident_id) DO UPDATE SET policy = excluded.policy, frozen = excluded.frozen, snapshot = excluded.snapshot,
	epoch = excluded.epoch, state = excluded.state, level = -1, started_at = excluded.started_at, updated_at = excluded.updated_at`,
		inc.ID, policyName, string(fb), string(sb), epoch, state, jobs.Millis(now)); err != nil {
		return fmt.Errorf("start escalation of %s: %w", inc.ID, err)
	}
	if p == nil {
		e.steps.WithLabelValues(string(inc.Severity), "no_policy").Inc()
		return e.note(ctx, tx, inc.ID, now, "No escalation policy matches this incident: nobody will be paged", nil)
	}
	if err := e.enqueueStep(ctx, tx, inc.ID, epoch, 0, 0, now.Add(frozen.Levels[0].Offset), now, ""); err != nil {
		return err
	}
	return e.note(ctx, tx, inc.ID, now, fmt.Sprintf("Escalation policy %q frozen onto the incident (%d levels, %s)", p.Name, len(frozen.Levels), describeOffsets(frozen)),
		map[string]any{"policy": p.Name, "epoch": epoch})
}

func describeOffsets(f *Frozen) string {
	var parts []string
	for i, l := range f.Levels {
		parts = append(parts, fmt.Sprintf("level %d at +%s", i, l.Offset))
	}
	return strings.Join(parts, ", ")
}

func (e *Engine) enqueueStep(ctx context.Context, tx *sql.Tx, id string, epoch, cycle, level int, at, now time.Time, reason string) error {
	key := fmt.Sprintf("%s/%d/step/%d/%d", id, epoch, cycle, level)
	if reason != "" {
		key = fmt.Sprintf("%s/%d/now/%d", id, epoch, jobs.Millis(now))
	}
	_, err := jobs.Enqueue(ctx, tx, now, jobs.New{Queue: Queue, Kind: KindStep, Key: key, Group: id, RunAt: at,
		Payload: job{Incident: id, Epoch: epoch, Cycle: cycle, Level: level, Reason: reason}})
	return err
}

func (e *Engine) acknowledge(ctx context.Context, tx *sql.Tx, id, actor string, now time.Time) error {
	st, err := e.load(ctx, tx, id)
	if err != nil || st == nil || st.state == StateNoPolicy || st.state == StateResolved {
		return err
	}
	if _, err := jobs.CancelGroup(ctx, tx, now, Queue, id); err != nil {
		return err
	}
	if err := e.setState(ctx, tx, id, StateAcknowledged, st.level, now); err != nil {
		return err
	}
	if err := e.pagerDutyEvent(ctx, tx, st, notify.EventAcknowledge, now); err != nil {
		return err
	}
	msg := fmt.Sprintf("Escalation stopped: acknowledged by %s", actor)
	if st.state == StateAcknowledged {
		msg = fmt.Sprintf("Acknowledgement renewed by %s", actor)
	}
	if st.frozen.AckTimeout > 0 {
		if _, err := jobs.Enqueue(ctx, tx, now, jobs.New{Queue: Queue, Kind: KindAckTimeout, Key: fmt.Sprintf("%s/%d/acktimeout/%d", id, st.epoch, jobs.Millis(now)), Group: id,
			RunAt: now.Add(st.frozen.AckTimeout), Payload: job{Incident: id, Epoch: st.epoch}}); err != nil {
			return err
		}
		msg += fmt.Sprintf("; re-escalates if not resolved within %s", st.frozen.AckTimeout)
	}
	if err := e.scheduleReminder(ctx, tx, st, actor, 1, now, now); err != nil {
		return err
	}
	if st.frozen.AckReminder > 0 && (st.frozen.AckTimeout == 0 || st.frozen.AckReminder < st.frozen.AckTimeout) {
		msg += fmt.Sprintf("; reminders every %s until resolved", st.frozen.AckReminder)
	}
	return e.note(ctx, tx, id, now, msg, map[string]any{"actor": actor})
}

func (e *Engine) resolve(ctx context.Context, tx *sql.Tx, id, actor string, now time.Time) error {
	st, err := e.load(ctx, tx, id)
	if err != nil || st == nil {
		return err
	}
	n, err := jobs.CancelGroup(ctx, tx, now, Queue, id)
	if err != nil {
		return err
	}
	if err := e.setState(ctx, tx, id, StateResolved, st.level, now); err != nil {
		return err
	}
	if err := e.pagerDutyEvent(ctx, tx, st, notify.EventResolve, now); err != nil {
		return err
	}
	if st.state == StateNoPolicy {
		return nil
	}
	return e.note(ctx, tx, id, now, fmt.Sprintf("Escalation ended: incident resolved (%d pending step(s) cancelled)", n), nil)
}

// pagerDutyEvent sends acknowledge/resolve to PagerDuty when a trigger was sent.
func (e *Engine) pagerDutyEvent(ctx context.Context, tx *sql.Tx, st *stateRow, event string, now time.Time) error {
	n, err := notify.Count(ctx, tx, st.snap.ID, notify.ChannelPagerDuty)
	if err != nil {
		return fmt.Errorf("pagerduty %s of %s: %w", event, st.snap.ID, err)
	}
	if n == 0 {
		return nil
	}
	m := &notify.Message{IncidentID: st.snap.ID, Channel: notify.ChannelPagerDuty, Event: event, Subject: st.snap.Title,
		Title: st.snap.Title, Service: st.snap.Service, Severity: st.snap.Severity, Time: now}
	_, err = notify.Enqueue(ctx, tx, now, fmt.Sprintf("esc/%s/%d/pagerduty/%s/%d", st.snap.ID, st.epoch, event, jobs.Millis(now)), m)
	return err
}

// Handle fires one escalation timer, inside the transaction that claimed it.
func (e *Engine) Handle(ctx context.Context, tx *sql.Tx, j jobs.Job) error {
	var p job
	if err := j.Decode(&p); err != nil {
		return err
	}
	st, err := e.load(ctx, tx, p.Incident)
	if err != nil {
		return err
	}
	if st == nil || st.epoch != p.Epoch {
		return nil // superseded by a newer trigger
	}
	now := e.clock.Now()
	switch j.Kind {
	case KindStep:
		if st.state != StateActive {
			return nil
		}
		return e.fireStep(ctx, tx, st, p, j.RunAt, now)
	case KindHandoff:
		if st.state != StateActive {
			return nil
		}
		return e.handoff(ctx, tx, st, p, now)
	case KindAckTimeout:
		if st.state != StateAcknowledged {
			return nil
		}
		return e.reescalate(ctx, tx, st, now)
	case KindReminder:
		if st.state != StateAcknowledged {
			return nil
		}
		return e.remind(ctx, tx, st, p, now)
	}
	return fmt.Errorf("unknown escalation job kind %q", j.Kind)
}

// activeWindow returns the maintenance window silencing the incident at t.
func (e *Engine) activeWindow(ctx context.Context, q querier, ls map[string]string, t time.Time) (*MaintenanceWindow, error) {
	cfg, _, _ := e.config()
	set := labelSetOf(ls)
	for _, w := range cfg.MaintenanceWindows {
		if w.Active(t) && w.Matches(set) {
			return w, nil
		}
	}
	stored, err := ListMaintenance(ctx, q, t, t.Add(time.Millisecond))
	if err != nil {
		return nil, err
	}
	for _, w := range stored {
		if w.Active(t) && w.Matches(set) {
			return w, nil
		}
	}
	return nil, nil
}

func (s *snapshot) labels() map[string]string {
	out := map[string]string{}
	for k, v := range s.Labels {
		out[k] = v
	}
	if s.Service != "" {
		out["service"] = s.Service
	}
	out["severity"] = s.Severity
	return out
}

// resolveTargets turns a level's targets into user names, in order, once each.
func (e *Engine) resolveTargets(ctx context.Context, tx *sql.Tx, l FrozenLevel, t time.Time) ([]string, []string, error) {
	oc := e.dir.Config()
	var users, notes []string
	add := func(u string) {
		if !slices.Contains(users, u) {
			users = append(users, u)
		}
	}
	for _, u := range l.Users {
		add(u)
	}
	for _, s := range l.Schedules {
		if oc.Schedule(s) == nil {
			// Removed by a reload since the policy was frozen.
			notes = append(notes, fmt.Sprintf("unknown schedule %s", s))
			continue
		}
		u, err := e.dir.OnCall(ctx, tx, s, t)
		if err != nil {
			return nil, nil, fmt.Errorf("who is on call for %s: %w", s, err)
		}
		if u == "" {
			notes = append(notes, fmt.Sprintf("schedule %s has nobody on call", s))
			continue
		}
		add(u)
	}
	for _, name := range l.Teams {
		team := oc.Team(name)
		if team == nil {
			notes = append(notes, fmt.Sprintf("unknown team %s", name))
			continue
		}
		for _, m := range team.Members {
			add(m)
		}
	}
	return users, notes, nil
}

func (e *Engine) fireStep(ctx context.Context, tx *sql.Tx, st *stateRow, p job, due, now time.Time) error {
	id := st.snap.ID
	if p.Level >= len(st.frozen.Levels) {
		return nil
	}
	w, err := e.activeWindow(ctx, tx, st.snap.labels(), now)
	if err != nil {
		return err
	}
	if w != nil {
		// Nobody is paged during the window; the step fires when it ends.
		e.steps.WithLabelValues(st.snap.Severity, "suppressed").Inc()
		if _, err := jobs.Enqueue(ctx, tx, now, jobs.New{Queue: Queue, Kind: KindStep, Key: fmt.Sprintf("%s/%d/step/%d/%d/after/%d", id, st.epoch, p.Cycle, p.Level, jobs.Millis(w.End)),
			Group: id, RunAt: w.End, Payload: p}); err != nil {
			return err
		}
		return e.note(ctx, tx, id, now, fmt.Sprintf("Maintenance window %q until %s: not paging level %d", w.Name, w.End.UTC().Format(time.RFC3339), p.Level),
			map[string]any{"maintenance_window": w.Name, "level": p.Level})
	}
	lvl := st.frozen.Levels[p.Level]
	users, problems, err := e.resolveTargets(ctx, tx, lvl, now)
	if err != nil {
		return err
	}
	var next time.Time
	var nextCycle, nextLevel int
	switch {
	case p.Level+1 < len(st.frozen.Levels):
		nextCycle, nextLevel = p.Cycle, p.Level+1
		next = due.Add(st.frozen.Levels[p.Level+1].Offset - lvl.Offset)
	case p.Cycle < st.frozen.Repeat:
		nextCycle, nextLevel = p.Cycle+1, 0
		next = due.Add(st.frozen.RepeatAfter)
	}
	if p.Reason != "" {
		// Escalate-now: the next level keeps the normal spacing from now.
		if !next.IsZero() {
			next = now.Add(next.Sub(due))
		}
	}
	outcome := "paged"
	if len(users) == 0 {
		outcome = "no_targets"
	}
	out, err := e.page(ctx, tx, st, p.Cycle, p.Level, users, lvl.Channels, now, next, "")
	if err != nil {
		return err
	}
	if err := e.setState(ctx, tx, id, StateActive, p.Level, now); err != nil {
		return err
	}
	e.steps.WithLabelValues(st.snap.Severity, outcome).Inc()
	msg := fmt.Sprintf("Escalation level %d (policy %q): ", p.Level, st.frozen.Policy)
	if p.Reason != "" {
		msg = fmt.Sprintf("Escalated now (%s): level %d (policy %q): ", p.Reason, p.Level, st.frozen.Policy)
	}
	if len(users) == 0 {
		msg += "nobody to page"
	} else {
		msg += "paging " + out.describe(users)
	}
	if len(problems) > 0 {
		msg += " (" + strings.Join(problems, "; ") + ")"
	}
	if !next.IsZero() {
		msg += fmt.Sprintf("; level %d at %s if not acknowledged", nextLevel, next.UTC().Format("15:04:05 UTC"))
		if err := e.enqueueStep(ctx, tx, id, st.epoch, nextCycle, nextLevel, next, now, ""); err != nil {
			return err
		}
	}
	data := map[string]any{"level": p.Level, "cycle": p.Cycle, "users": users, "policy": st.frozen.Policy}
	out.addTo(data)
	if err := e.note(ctx, tx, id, now, msg, data); err != nil {
		return err
	}
	// Watch the schedules paged at this level: a handoff before the
	// incident is acknowledged pages the new on-call person.
	for _, s := range lvl.Schedules {
		if err := e.scheduleHandoff(ctx, tx, st, s, p.Level, now); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) scheduleHandoff(ctx context.Context, tx *sql.Tx, st *stateRow, schedule string, level int, now time.Time) error {
	at, ok, err := e.dir.NextHandoff(ctx, tx, schedule, now, e.horizon)
	if err != nil || !ok {
		return err
	}
	_, err = jobs.Enqueue(ctx, tx, now, jobs.New{Queue: Queue, Kind: KindHandoff, Key: fmt.Sprintf("%s/%d/handoff/%s/%d", st.snap.ID, st.epoch, schedule, jobs.Millis(at)),
		Group: st.snap.ID, RunAt: at, Payload: job{Incident: st.snap.ID, Epoch: st.epoch, Level: level, Schedule: schedule}})
	return err
}

// SchedulesChanged re-plans the shift handoffs of the running escalations
// that paged one of schedules (their overrides or rotations changed): a
// handoff check is queued at now for each, which pages whoever is on call
// now if they were not paged yet, then plans the next handoff with the
// schedule as it is now. It runs inside the transaction of the change (an
// oncall.ChangeHook).
func (e *Engine) SchedulesChanged(ctx context.Context, tx *sql.Tx, schedules []string, now time.Time) error {
	rows, err := tx.QueryContext(ctx, `SELECT incident_id FROM escalation_state WHERE state = $1 ORDER BY incident_id`, StateActive)
	if err != nil {
		return fmt.Errorf("running escalations: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("running escalations: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("running escalations: %w", err)
	}
	for _, id := range ids {
		st, err := e.load(ctx, tx, id)
		if err != nil {
			return err
		}
		if st == nil || st.state != StateActive {
			continue
		}
		seen := map[string]bool{}
		for lvl := 0; lvl <= st.level && lvl < len(st.frozen.Levels); lvl++ {
			for _, s := range st.frozen.Levels[lvl].Schedules {
				if seen[s] || !slices.Contains(schedules, s) {
					continue
				}
				seen[s] = true
				if _, err := jobs.Enqueue(ctx, tx, now, jobs.New{Queue: Queue, Kind: KindHandoff, Key: fmt.Sprintf("%s/%d/handoff/%s/%d", id, st.epoch, s, jobs.Millis(now)),
					Group: id, RunAt: now, Payload: job{Incident: id, Epoch: st.epoch, Level: lvl, Schedule: s}}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// RecheckHandoffs runs SchedulesChanged in a transaction of its own, for a
// configuration reload that may have changed rotations.
func (e *Engine) RecheckHandoffs(ctx context.Context, schedules []string) error {
	return e.db.InTx(ctx, func(tx *sql.Tx) error { return e.SchedulesChanged(ctx, tx, schedules, e.clock.Now()) })
}

func (e *Engine) handoff(ctx context.Context, tx *sql.Tx, st *stateRow, p job, now time.Time) error {
	if p.Level >= len(st.frozen.Levels) || e.dir.Config().Schedule(p.Schedule) == nil {
		return nil // the schedule was removed by a reload: nothing to watch
	}
	u, err := e.dir.OnCall(ctx, tx, p.Schedule, now)
	if err != nil {
		return err
	}
	if u != "" {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM escalation_pages WHERE incident_id = $1 AND epoch = $2 AND user_name = $3`,
			st.snap.ID, st.epoch, u).Scan(&n); err != nil {
			return fmt.Errorf("handoff of %s: %w", st.snap.ID, err)
		}
		if n == 0 {
			out, err := e.page(ctx, tx, st, 0, p.Level, []string{u}, st.frozen.Levels[p.Level].Channels, now, time.Time{}, "handoff/"+p.Schedule)
			if err != nil {
				return err
			}
			e.steps.WithLabelValues(st.snap.Severity, "handoff").Inc()
			if err := e.note(ctx, tx, st.snap.ID, now, fmt.Sprintf("Shift handoff on schedule %s during an unacknowledged escalation: paging the new on-call %s", p.Schedule, out.describe([]string{u})),
				out.addTo(map[string]any{"schedule": p.Schedule, "user": u, "level": p.Level})); err != nil {
				return err
			}
		}
	}
	return e.scheduleHandoff(ctx, tx, st, p.Schedule, p.Level, now)
}

// scheduleReminder enqueues reminder n of the acknowledgement made by actor
// at ackAt, unless reminders are off or the ack timeout comes first.
func (e *Engine) scheduleReminder(ctx context.Context, tx *sql.Tx, st *stateRow, actor string, n int, ackAt, now time.Time) error {
	every := st.frozen.AckReminder
	if every <= 0 {
		return nil
	}
	at := ackAt.Add(time.Duration(n) * every)
	if st.frozen.AckTimeout > 0 && !at.Before(ackAt.Add(st.frozen.AckTimeout)) {
		return nil // the ack timeout re-escalates first
	}
	_, err := jobs.Enqueue(ctx, tx, now, jobs.New{Queue: Queue, Kind: KindReminder, Key: fmt.Sprintf("%s/%d/reminder/%d/%d", st.snap.ID, st.epoch, jobs.Millis(ackAt), n),
		Group: st.snap.ID, RunAt: at, Payload: job{Incident: st.snap.ID, Epoch: st.epoch, Level: st.level, User: actor, Count: n, AckAt: ackAt}})
	return err
}

// remind tells the acknowledger (or, when the acknowledgement came from
// outside the on-call directory, the users paged so far) that the incident
// is still open, then schedules the next reminder.
func (e *Engine) remind(ctx context.Context, tx *sql.Tx, st *stateRow, p job, now time.Time) error {
	users := []string{}
	if e.dir.Config().User(p.User) != nil {
		users = append(users, p.User)
	} else {
		rows, err := tx.QueryContext(ctx, `SELECT user_name, MIN(paged_at) FROM escalation_pages WHERE incident_id = $1 AND epoch = $2 GROUP BY user_name ORDER BY MIN(paged_at), user_name`,
			st.snap.ID, st.epoch)
		if err != nil {
			return fmt.Errorf("reminder of %s: %w", st.snap.ID, err)
		}
		for rows.Next() {
			var u string
			var at int64
			if err := rows.Scan(&u, &at); err != nil {
				rows.Close()
				return fmt.Errorf("reminder of %s: %w", st.snap.ID, err)
			}
			users = append(users, u)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reminder of %s: %w", st.snap.ID, err)
		}
	}
	ackAt := p.AckAt
	if ackAt.IsZero() {
		// Reminders enqueued before the ack time had its own field carried
		// it in Reason.
		var err error
		if ackAt, err = time.Parse(time.RFC3339Nano, p.Reason); err != nil {
			return fmt.Errorf("reminder of %s: acknowledgement time: %w", st.snap.ID, err)
		}
	}
	var next time.Time
	if err := e.scheduleReminder(ctx, tx, st, p.User, p.Count+1, ackAt, now); err != nil {
		return err
	}
	if at := ackAt.Add(time.Duration(p.Count+1) * st.frozen.AckReminder); st.frozen.AckTimeout == 0 || at.Before(ackAt.Add(st.frozen.AckTimeout)) {
		next = at
	}
	actions := fmt.Sprintf("Reminder %d: acknowledged by %s %s ago and still not resolved", p.Count, p.User, now.Sub(ackAt).Round(time.Second))
	out, err := e.send(ctx, tx, st, pageSpec{level: st.level, users: users, channels: st.frozen.ReminderChannels, now: now, next: next,
		tag: fmt.Sprintf("reminder/%d/%d", jobs.Millis(ackAt), p.Count), event: notify.EventReminder, status: string(incident.StatusAcknowledged), actions: actions, record: false})
	if err != nil {
		return err
	}
	e.steps.WithLabelValues(st.snap.Severity, "reminded").Inc()
	msg := fmt.Sprintf("Acknowledgement reminder %d: %s still open, reminding %s", p.Count, st.snap.ID, out.describe(users))
	if len(users) == 0 || len(out.channels) == 0 {
		msg = fmt.Sprintf("Acknowledgement reminder %d: nobody to remind (no user or no configured reminder channel)", p.Count)
	}
	return e.note(ctx, tx, st.snap.ID, now, msg, out.addTo(map[string]any{"reminder": p.Count, "users": users}))
}

func (e *Engine) reescalate(ctx context.Context, tx *sql.Tx, st *stateRow, now time.Time) error {
	id := st.snap.ID
	epoch := st.epoch + 1
	if _, err := tx.ExecContext(ctx, `UPDATE escalation_state SET epoch = $1, state = $2, level = -1, started_at = $3, updated_at = $3 WHERE incident_id = $4`,
		epoch, StateActive, jobs.Millis(now), id); err != nil {
		return fmt.Errorf("re-escalate %s: %w", id, err)
	}
	e.steps.WithLabelValues(st.snap.Severity, "reescalated").Inc()
	if err := e.enqueueStep(ctx, tx, id, epoch, 0, 0, now.Add(st.frozen.Levels[0].Offset), now, ""); err != nil {
		return err
	}
	return e.note(ctx, tx, id, now, fmt.Sprintf("Acknowledgement timed out after %s without resolution: re-escalating from level 0", st.frozen.AckTimeout),
		map[string]any{"epoch": epoch})
}

// page writes the outbox messages for users at one level and records who
// was paged. It returns what was sent to whom.
func (e *Engine) page(ctx context.Context, tx *sql.Tx, st *stateRow, cycle, level int, users, channels []string, now, next time.Time, tag string) (*sentSet, error) {
	return e.send(ctx, tx, st, pageSpec{cycle: cycle, level: level, users: users, channels: channels, now: now, next: next, tag: tag,
		event: notify.EventTrigger, status: "triggered", actions: fmt.Sprintf("Escalation level %d: paging %s", level, strings.Join(users, ", ")), record: true})
}

// pageSpec describes one batch of messages of an escalation.
type pageSpec struct {
	cycle, level    int
	users, channels []string
	now, next       time.Time
	tag             string
	event, status   string
	actions         string
	// record writes the users to escalation_pages (pages, not reminders).
	record bool
}

// sentSet is what one page or reminder sent.
type sentSet struct {
	// channels has at least one message; skipped are not configured.
	channels, skipped []string
	// perUser lists the channels each user was reached on (chat and
	// webhook channels count for every user); noContact the channels a
	// user has no contact for.
	perUser, noContact map[string][]string
}

// describe says who was reached how: "bob, alice via sms, push; carol via
// sms (no push contact for carol)".
func (s *sentSet) describe(users []string) string {
	var groups []string
	var members [][]string
	for _, u := range users {
		via := strings.Join(s.perUser[u], ", ")
		i := slices.Index(groups, via)
		if i < 0 {
			groups, members = append(groups, via), append(members, nil)
			i = len(groups) - 1
		}
		members[i] = append(members[i], u)
	}
	var parts []string
	for i, via := range groups {
		if via == "" {
			parts = append(parts, strings.Join(members[i], ", ")+" (nothing sent)")
			continue
		}
		parts = append(parts, strings.Join(members[i], ", ")+" via "+via)
	}
	out := strings.Join(parts, "; ")
	var missing []string
	for _, u := range users {
		if chs := s.noContact[u]; len(chs) > 0 {
			missing = append(missing, fmt.Sprintf("no %s contact for %s", strings.Join(chs, ", "), u))
		}
	}
	if len(missing) > 0 {
		out += " (" + strings.Join(missing, "; ") + ")"
	}
	return out
}

// addTo records the outcome in a timeline entry's data.
func (s *sentSet) addTo(data map[string]any) map[string]any {
	data["channels"] = s.channels
	data["sent"] = s.perUser
	if len(s.skipped) > 0 {
		data["unconfigured_channels"] = s.skipped
	}
	if len(s.noContact) > 0 {
		data["no_contact"] = s.noContact
	}
	return data
}

// send writes the outbox messages of one page or reminder.
func (e *Engine) send(ctx context.Context, tx *sql.Tx, st *stateRow, ps pageSpec) (*sentSet, error) {
	out := &sentSet{perUser: map[string][]string{}, noContact: map[string][]string{}}
	_, ncfg, ext := e.config()
	oc := e.dir.Config()
	id := st.snap.ID
	cycle, level, users, channels, now, next := ps.cycle, ps.level, ps.users, ps.channels, ps.now, ps.next
	base := fmt.Sprintf("esc/%s/%d/%d/%d", id, st.epoch, cycle, level)
	if ps.tag != "" {
		base += "/" + ps.tag
	}
	incURL := ""
	if ext != "" {
		incURL = ext + "/incidents/" + url.PathEscape(id)
	}
	for _, u := range users {
		if !ps.record {
			break
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO escalation_pages (incident_id, epoch, user_name, level, paged_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT DO NOTHING`, id, st.epoch, u, level, jobs.Millis(now)); err != nil {
			return nil, fmt.Errorf("record page of %s: %w", u, err)
		}
	}
	data := notify.TemplateData{ID: id, Title: st.snap.Title, Service: st.snap.Service, Severity: st.snap.Severity, Status: ps.status,
		Labels: st.snap.Labels, Started: st.snap.Started, Impact: st.snap.Impact, Level: level, Users: users, NextUpdate: next, URL: incURL,
		Actions: ps.actions}
	render := func(user string) (*notify.Message, error) {
		d := data
		if user != "" {
			u, err := e.ackURL(ncfg, ext, id, user, now)
			if err != nil {
				// The message goes out without its acknowledge link.
				e.logger.Warn("no acknowledge link in notification", "incident", id, "user", user, "err", err)
			}
			d.AckURL = u
		}
		subj, body, err := ncfg.Render(d)
		if err != nil {
			return nil, err
		}
		return &notify.Message{IncidentID: id, Event: ps.event, User: user, Subject: subj, Body: body, Title: st.snap.Title,
			Service: st.snap.Service, Severity: st.snap.Severity, Level: level, Labels: st.snap.Labels, URL: incURL, AckURL: d.AckURL, Time: now}, nil
	}
	for _, ch := range channels {
		if !ncfg.Configured(ch) {
			out.skipped = append(out.skipped, ch)
			continue
		}
		if notify.PerUser(ch) {
			reached := false
			for _, u := range users {
				m, err := render(u)
				if err != nil {
					return nil, err
				}
				m.Channel, m.To = ch, contact(oc.User(u), ch)
				if m.To == "" {
					out.noContact[u] = append(out.noContact[u], ch)
					continue
				}
				if _, err := notify.Enqueue(ctx, tx, now, base+"/"+ch+"/"+u, m); err != nil {
					return nil, err
				}
				out.perUser[u] = append(out.perUser[u], ch)
				reached = true
			}
			if reached {
				out.channels = append(out.channels, ch)
			}
			continue
		}
		if len(users) == 0 {
			continue
		}
		out.channels = append(out.channels, ch)
		for _, u := range users {
			out.perUser[u] = append(out.perUser[u], ch)
		}
		ackUser := users[0]
		m, err := render(ackUser)
		if err != nil {
			return nil, err
		}
		m.Channel, m.User = ch, ""
		for _, u := range users {
			if id := mention(oc.User(u), ch); id != "" {
				m.Mentions = append(m.Mentions, id)
			}
		}
		if _, err := notify.Enqueue(ctx, tx, now, base+"/"+ch, m); err != nil {
			return nil, err
		}
	}
	sort.Strings(out.skipped)
	return out, nil
}

// mention is how a chat channel names a user in a message.
func mention(u *oncall.User, ch string) string {
	if u == nil {
		return ""
	}
	switch ch {
	case notify.ChannelSlack:
		return u.Slack
	case notify.ChannelTeams:
		return u.Teams
	case notify.ChannelMattermost:
		return strings.TrimPrefix(u.Mattermost, "@")
	}
	return ""
}

func contact(u *oncall.User, ch string) string {
	if u == nil {
		return ""
	}
	switch ch {
	case notify.ChannelEmail:
		return u.Email
	case notify.ChannelSMS, notify.ChannelPhone:
		return u.Phone
	case notify.ChannelPush:
		return u.Push
	}
	return ""
}

// ackURL returns the acknowledge link of a notification to user: empty
// without an external URL or ack secret (links are off), an error when the
// secret cannot be read or the token not signed.
func (e *Engine) ackURL(ncfg *notify.Config, ext, id, user string, now time.Time) (string, error) {
	if ext == "" {
		return "", nil
	}
	key, err := ncfg.AckKey()
	if err != nil {
		return "", fmt.Errorf("acknowledge link: %w", err)
	}
	if key == "" {
		return "", nil
	}
	tok, err := notify.SignAck(key, notify.AckClaims{IncidentID: id, User: user, Expires: now.Add(time.Duration(ncfg.AckLinkTTL)).Unix()})
	if err != nil {
		return "", fmt.Errorf("acknowledge link: %w", err)
	}
	return ext + "/ack/" + tok, nil
}

// ErrNoEscalation is returned by EscalateNow for an incident without a
// running escalation (no policy matched, or resolved).
var ErrNoEscalation = errors.New("incident has no escalation to advance")

// EscalateNow pages the next level of an incident's escalation at once
// (for example when a runbook's verification failed), even if it was
// acknowledged. reason is written to the timeline.
func (e *Engine) EscalateNow(ctx context.Context, incidentID, reason string) error {
	if reason == "" {
		reason = "manual"
	}
	return e.db.InTx(ctx, func(tx *sql.Tx) error {
		now := e.clock.Now()
		st, err := e.load(ctx, tx, incidentID)
		if err != nil {
			return err
		}
		if st == nil || st.state == StateNoPolicy || st.state == StateResolved {
			return fmt.Errorf("escalate %s now: %w", incidentID, ErrNoEscalation)
		}
		if _, err := jobs.CancelGroup(ctx, tx, now, Queue, incidentID); err != nil {
			return err
		}
		level := min(st.level+1, len(st.frozen.Levels)-1)
		if err := e.setState(ctx, tx, incidentID, StateActive, st.level, now); err != nil {
			return err
		}
		return e.enqueueStep(ctx, tx, incidentID, st.epoch, 0, level, now, now, reason)
	})
}

// Acknowledge stops the escalation of an incident whose status is already
// acknowledged (a second acknowledgement after an ack timeout re-escalated
// it): the core refuses the repeated status change, so the acknowledge link
// handler calls this instead.
// It returns ErrNoEscalation when the incident has no running or
// acknowledged escalation (no policy matched, or it is resolved).
func (e *Engine) Acknowledge(ctx context.Context, incidentID, actor string) error {
	return e.db.InTx(ctx, func(tx *sql.Tx) error {
		st, err := e.load(ctx, tx, incidentID)
		if err != nil {
			return err
		}
		if st == nil || st.state == StateNoPolicy || st.state == StateResolved {
			return fmt.Errorf("acknowledge %s: %w", incidentID, ErrNoEscalation)
		}
		return e.acknowledge(ctx, tx, incidentID, actor, e.clock.Now())
	})
}

// Status is the escalation of one incident, for the API.
type Status struct {
	IncidentID string          `json:"incident_id"`
	Policy     string          `json:"policy,omitempty"`
	State      string          `json:"state"`
	Epoch      int             `json:"epoch"`
	Level      int             `json:"level"`
	StartedAt  time.Time       `json:"started_at"`
	Frozen     Frozen          `json:"frozen"`
	Pending    []PendingStep   `json:"pending"`
	Notices    []notify.Record `json:"notifications"`
}

// PendingStep is a timer not fired yet.
type PendingStep struct {
	Kind  string    `json:"kind"`
	Level int       `json:"level"`
	At    time.Time `json:"at"`
}

// Get returns the escalation status of an incident (nil if it has none).
func (e *Engine) Get(ctx context.Context, incidentID string) (*Status, error) {
	var st *stateRow
	err := e.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		st, err = e.load(ctx, tx, incidentID)
		return err
	})
	if err != nil || st == nil {
		return nil, err
	}
	out := &Status{IncidentID: incidentID, Policy: st.policy, State: st.state, Epoch: st.epoch, Level: st.level, StartedAt: st.started, Frozen: st.frozen, Pending: []PendingStep{}}
	pending, err := jobs.List(ctx, e.db, jobs.Filter{Queue: Queue, Group: incidentID, States: []string{jobs.StatePending}})
	if err != nil {
		return nil, fmt.Errorf("pending steps of %s: %w", incidentID, err)
	}
	for _, j := range pending {
		var p job
		if err := j.Decode(&p); err != nil {
			return nil, err
		}
		out.Pending = append(out.Pending, PendingStep{Kind: string(j.Kind), Level: p.Level, At: j.RunAt})
	}
	if out.Notices, err = notify.List(ctx, e.db, incidentID); err != nil {
		return nil, err
	}
	return out, nil
}
