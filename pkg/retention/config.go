package retention

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/store"
)

// Defaults of the retention section.
const (
	DefaultInterval           = 10 * time.Minute
	DefaultBatchSize          = 100
	DefaultFinishedJobs       = 7 * 24 * time.Hour
	DefaultNotificationOutbox = 7 * 24 * time.Hour
	// DefaultGateDecisions is one SLO period as the examples set it (30d):
	// the decisions taken while the budget in force was spent stay.
	DefaultGateDecisions = 30 * 24 * time.Hour
	// DefaultAuditLog keeps the audit log a little over a year, the span
	// a yearly access review looks back over.
	DefaultAuditLog = 400 * 24 * time.Hour
	// DefaultChaosRuns keeps chaos runs (with their reports) as long as
	// the audit log: a year of game days and the one before to compare.
	DefaultChaosRuns          = 400 * 24 * time.Hour
	DefaultStreamReplay       = 15 * time.Minute
	DefaultStreamReplayEvents = 10000
)

// Config is the `retention` section of sred.yml: how long each kind of
// data is kept. A duration of 0 keeps that kind forever; otherwise it must
// be at least 1h.
type Config struct {
	// ResolvedIncidents deletes incidents resolved (or post-mortem done)
	// longer ago than this, with their alerts, timeline, links and action
	// items. Default 0: keep.
	ResolvedIncidents model.Duration `yaml:"resolved_incidents,omitempty"`
	// AlertPayloads deletes the alert episodes (labels, annotations,
	// generator URL) resolved longer ago than this whose incident is
	// closed; the incident and its timeline stay. Default 0: keep.
	AlertPayloads model.Duration `yaml:"alert_payloads,omitempty"`
	// NotificationOutbox deletes delivered, failed and cancelled
	// notifications (jobs of queue notify) that finished longer ago.
	// Unset: notifications.retention (default 7d).
	NotificationOutbox *model.Duration `yaml:"notification_outbox,omitempty"`
	// FinishedJobs deletes the finished jobs of the other queues
	// (escalation, runbook, recovery, rollouts). Default 7d.
	FinishedJobs model.Duration `yaml:"finished_jobs,omitempty"`
	// RunbookOutputs clears the output text of runbook steps of runs that
	// finished longer ago; the audit rows stay. Default 0: keep.
	RunbookOutputs model.Duration `yaml:"runbook_outputs,omitempty"`
	// GateDecisions deletes the deploy gate's recorded decisions
	// (gate_decisions: one row per GET /api/v1/gate and Flagger
	// pre-rollout hook, which a viewer may call) taken longer ago.
	// Default 30d.
	GateDecisions model.Duration `yaml:"gate_decisions,omitempty"`
	// AuditLog deletes the audit log's entries (audit_log: one row per
	// write action served) recorded longer ago. Default 400d.
	AuditLog model.Duration `yaml:"audit_log,omitempty"`
	// ChaosRuns deletes the chaos runs (chaos_runs, with their steps,
	// approvals and fault journal) that finished longer ago, refused ones
	// included. A run whose faults are not all reverted is kept. Default
	// 400d.
	ChaosRuns model.Duration `yaml:"chaos_runs,omitempty"`
	// StreamReplay is the age limit of the WebSocket stream's replay ring
	// (in memory only; nothing of the stream is stored). Default 15m.
	StreamReplay model.Duration `yaml:"stream_replay,omitempty"`
	// StreamReplayEvents is the size of that ring. Default 10000.
	StreamReplayEvents int `yaml:"stream_replay_events,omitempty"`
	// Interval between compaction runs (default 10m).
	Interval model.Duration `yaml:"interval,omitempty"`
	// BatchSize is the number of rows (incidents, for resolved_incidents)
	// deleted per transaction (default 100).
	BatchSize int `yaml:"batch_size,omitempty"`
}

// Default returns the configuration of an absent section.
func Default() Config {
	return Config{
		FinishedJobs:       model.Duration(DefaultFinishedJobs),
		GateDecisions:      model.Duration(DefaultGateDecisions),
		AuditLog:           model.Duration(DefaultAuditLog),
		ChaosRuns:          model.Duration(DefaultChaosRuns),
		StreamReplay:       model.Duration(DefaultStreamReplay),
		StreamReplayEvents: DefaultStreamReplayEvents,
		Interval:           model.Duration(DefaultInterval),
		BatchSize:          DefaultBatchSize,
	}
}

// UnmarshalYAML implements yaml.Unmarshaler: defaults and validation.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = Default()
	type plain Config
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	return c.Validate()
}

// Validate checks the durations and sizes.
func (c *Config) Validate() error {
	keeps := []struct {
		name string
		d    model.Duration
	}{
		{"resolved_incidents", c.ResolvedIncidents},
		{"alert_payloads", c.AlertPayloads},
		{"finished_jobs", c.FinishedJobs},
		{"runbook_outputs", c.RunbookOutputs},
		{"gate_decisions", c.GateDecisions},
		{"audit_log", c.AuditLog},
		{"chaos_runs", c.ChaosRuns},
	}
	if c.NotificationOutbox != nil {
		keeps = append(keeps, struct {
			name string
			d    model.Duration
		}{"notification_outbox", *c.NotificationOutbox})
	}
	for _, k := range keeps {
		if k.d < 0 {
			return fmt.Errorf("retention: %s must not be negative, got %s", k.name, k.d)
		}
		if k.d > 0 && time.Duration(k.d) < time.Hour {
			return fmt.Errorf("retention: %s must be 0 (keep) or at least 1h, got %s", k.name, k.d)
		}
	}
	if c.StreamReplay < model.Duration(time.Second) {
		return fmt.Errorf("retention: stream_replay must be at least 1s, got %s", c.StreamReplay)
	}
	if c.StreamReplayEvents < 1 || c.StreamReplayEvents > 1000000 {
		return fmt.Errorf("retention: stream_replay_events must be between 1 and 1000000, got %d", c.StreamReplayEvents)
	}
	if c.Interval <= 0 {
		return errors.New("retention: interval must be positive")
	}
	if c.BatchSize <= 0 || c.BatchSize > 10000 {
		return fmt.Errorf("retention: batch_size must be between 1 and 10000, got %d", c.BatchSize)
	}
	return nil
}

// Outbox is the retention of the notification outbox in force: the
// section's notification_outbox, else the default (7d).
func (c Config) Outbox() time.Duration {
	if c.NotificationOutbox != nil {
		return time.Duration(*c.NotificationOutbox)
	}
	return DefaultNotificationOutbox
}

// Migrations add the indexes the compaction's batches walk: resolved
// incidents by resolution time, groups by incident (a batch deletes the
// groups of its incidents), resolved alert episodes by end, and runbook
// steps that still have an output by time. They follow the incident and
// runbook migrations (pkg/app lists them after those subsystems).
// incident_alerts_ends is also made by the incident migration that
// rebuilt incident_alerts (incident/0009_alerts_rowid, which dropped it
// with the table), before this one on a new store: made here only if
// missing.
var Migrations = []store.Migration{{
	ID: "retention/0001_indexes",
	SQLite: `
CREATE INDEX incidents_resolved ON incidents (resolved_at);
CREATE INDEX alert_groups_incident ON alert_groups (incident_id);
CREATE INDEX IF NOT EXISTS incident_alerts_ends ON incident_alerts (ends_at) WHERE status = 'resolved';
CREATE INDEX runbook_audit_output ON runbook_audit (at) WHERE output <> '';`,
}}
