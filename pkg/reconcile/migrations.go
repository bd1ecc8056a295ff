package reconcile

import "github.com/rootuip/sre/pkg/store"

// Migrations create the tables of the silencer and the Watchdog. Times are
// BIGINT unix milliseconds.
var Migrations = []store.Migration{{
	ID: "reconcile/0001_init",
	SQLite: `
-- What the silencer must do for an incident: want = 1 silences its firing
-- alerts, want = 0 expires its silences. Hooks bump version inside the
-- incident's transaction; the worker marks done_version once Alertmanager
-- has been told, so a request survives restarts and is retried on failure.
-- lease_until keeps two replicas off the same request.
CREATE TABLE reconcile_silence_requests (
	incident_id  TEXT PRIMARY KEY,
	want         INTEGER NOT NULL,
	actor        TEXT NOT NULL,
	version      BIGINT NOT NULL,
	done_version BIGINT NOT NULL DEFAULT 0,
	lease_until  BIGINT NOT NULL DEFAULT 0,
	attempts     INTEGER NOT NULL DEFAULT 0,
	last_error   TEXT NOT NULL DEFAULT '',
	updated_at   BIGINT NOT NULL
);
CREATE INDEX reconcile_silence_requests_due ON reconcile_silence_requests (lease_until, updated_at);

-- Silences sred created in Alertmanager, one per alert of an incident.
CREATE TABLE reconcile_silences (
	silence_id  TEXT PRIMARY KEY,
	incident_id TEXT NOT NULL,
	fingerprint TEXT NOT NULL,
	matchers    TEXT NOT NULL,
	state       TEXT NOT NULL,
	created_by  TEXT NOT NULL,
	created_at  BIGINT NOT NULL,
	ends_at     BIGINT NOT NULL,
	expired_at  BIGINT
);
CREATE INDEX reconcile_silences_incident ON reconcile_silences (incident_id, state);

-- The Watchdog heartbeat: when it was last seen, and the outage in
-- progress (outage_starts is NULL while the pipeline is healthy).
CREATE TABLE reconcile_watchdog (
	alertname     TEXT PRIMARY KEY,
	last_seen     BIGINT NOT NULL,
	source        TEXT NOT NULL,
	outage_starts BIGINT,
	incident_id   TEXT NOT NULL DEFAULT ''
);
`,
}, {
	// until_ms: end of the silences wanted (a snooze's end; 0: the
	// configured duration from their creation). reason: ack or snooze.
	ID: "reconcile/0002_snooze",
	SQLite: `
ALTER TABLE reconcile_silence_requests ADD COLUMN until_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE reconcile_silence_requests ADD COLUMN reason TEXT NOT NULL DEFAULT 'ack';
`,
}}
