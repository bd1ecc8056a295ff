package incident

import "github.com/rootuip/sre/pkg/store"

// Migrations create the incident tables. Timestamps are BIGINT unix
// milliseconds (UTC), identical and sortable on both backends; label and
// annotation sets are JSON text.
var Migrations = []store.Migration{
	{
		ID: "incident/0001_init",
		SQLite: `
CREATE TABLE incidents (
	id               TEXT PRIMARY KEY,
	title            TEXT NOT NULL,
	service          TEXT NOT NULL,
	severity         TEXT NOT NULL,
	status           TEXT NOT NULL,
	labels           TEXT NOT NULL,
	group_key        TEXT NOT NULL DEFAULT '',
	receiver         TEXT NOT NULL DEFAULT '',
	runbook_urls     TEXT NOT NULL DEFAULT '[]',
	assignee         TEXT NOT NULL DEFAULT '',
	impact           TEXT NOT NULL DEFAULT '',
	flapping         INTEGER NOT NULL DEFAULT 0,
	reopen_count     INTEGER NOT NULL DEFAULT 0,
	mitigated_by     TEXT NOT NULL DEFAULT '',
	detected_at      BIGINT NOT NULL,
	created_at       BIGINT NOT NULL,
	acknowledged_at  BIGINT,
	investigating_at BIGINT,
	resolved_at      BIGINT,
	recovered_at     BIGINT,
	postmortem_at    BIGINT,
	updated_at       BIGINT NOT NULL
);
CREATE INDEX incidents_status ON incidents (status, created_at);
CREATE INDEX incidents_service ON incidents (service, created_at);
CREATE INDEX incidents_created ON incidents (created_at);
CREATE INDEX incidents_group ON incidents (group_key);

-- One row per year: the last sequence number handed out. Incrementing it
-- with an upsert locks the row until commit, so IDs are gap-free and unique
-- across replicas.
CREATE TABLE incident_seq (
	year INTEGER PRIMARY KEY,
	last INTEGER NOT NULL
);

-- One row per Alertmanager group (groupKey). Deliveries for a group take
-- this row's lock first, so concurrent and duplicate deliveries of one group
-- are applied one after the other, on every replica.
CREATE TABLE alert_groups (
	group_key   TEXT PRIMARY KEY,
	incident_id TEXT REFERENCES incidents (id)
);

-- One row per alert episode (fingerprint, startsAt) within a group.
-- incident_id is NULL for a resolve that arrived with no incident to attach to.
CREATE TABLE incident_alerts (
	group_key     TEXT NOT NULL,
	fingerprint   TEXT NOT NULL,
	starts_at     BIGINT NOT NULL,
	incident_id   TEXT REFERENCES incidents (id),
	status        TEXT NOT NULL,
	ends_at       BIGINT,
	labels        TEXT NOT NULL,
	annotations   TEXT NOT NULL,
	generator_url TEXT NOT NULL DEFAULT '',
	first_seen_at BIGINT NOT NULL,
	updated_at    BIGINT NOT NULL,
	PRIMARY KEY (group_key, fingerprint, starts_at)
) WITHOUT ROWID;
CREATE INDEX incident_alerts_incident ON incident_alerts (incident_id);

CREATE TABLE incident_timeline (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	incident_id TEXT NOT NULL REFERENCES incidents (id),
	at          BIGINT NOT NULL,
	kind        TEXT NOT NULL,
	actor       TEXT NOT NULL,
	message     TEXT NOT NULL,
	data        TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX incident_timeline_incident ON incident_timeline (incident_id, id);
`,
		Postgres: `
CREATE TABLE incidents (
	id               TEXT PRIMARY KEY,
	title            TEXT NOT NULL,
	service          TEXT NOT NULL,
	severity         TEXT NOT NULL,
	status           TEXT NOT NULL,
	labels           TEXT NOT NULL,
	group_key        TEXT NOT NULL DEFAULT '',
	receiver         TEXT NOT NULL DEFAULT '',
	runbook_urls     TEXT NOT NULL DEFAULT '[]',
	assignee         TEXT NOT NULL DEFAULT '',
	impact           TEXT NOT NULL DEFAULT '',
	flapping         INTEGER NOT NULL DEFAULT 0,
	reopen_count     INTEGER NOT NULL DEFAULT 0,
	mitigated_by     TEXT NOT NULL DEFAULT '',
	detected_at      BIGINT NOT NULL,
	created_at       BIGINT NOT NULL,
	acknowledged_at  BIGINT,
	investigating_at BIGINT,
	resolved_at      BIGINT,
	recovered_at     BIGINT,
	postmortem_at    BIGINT,
	updated_at       BIGINT NOT NULL
);
CREATE INDEX incidents_status ON incidents (status, created_at);
CREATE INDEX incidents_service ON incidents (service, created_at);
CREATE INDEX incidents_created ON incidents (created_at);
CREATE INDEX incidents_group ON incidents (group_key);
CREATE TABLE incident_seq (
	year INTEGER PRIMARY KEY,
	last INTEGER NOT NULL
);
CREATE TABLE alert_groups (
	group_key   TEXT PRIMARY KEY,
	incident_id TEXT REFERENCES incidents (id)
);
CREATE TABLE incident_alerts (
	group_key     TEXT NOT NULL,
	fingerprint   TEXT NOT NULL,
	starts_at     BIGINT NOT NULL,
	incident_id   TEXT REFERENCES incidents (id),
	status        TEXT NOT NULL,
	ends_at       BIGINT,
	labels        TEXT NOT NULL,
	annotations   TEXT NOT NULL,
	generator_url TEXT NOT NULL DEFAULT '',
	first_seen_at BIGINT NOT NULL,
	updated_at    BIGINT NOT NULL,
	PRIMARY KEY (group_key, fingerprint, starts_at)
);
CREATE INDEX incident_alerts_incident ON incident_alerts (incident_id);
CREATE TABLE incident_timeline (
	id          BIGSERIAL PRIMARY KEY,
	incident_id TEXT NOT NULL REFERENCES incidents (id),
	at          BIGINT NOT NULL,
	kind        TEXT NOT NULL,
	actor       TEXT NOT NULL,
	message     TEXT NOT NULL,
	data        TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX incident_timeline_incident ON incident_timeline (incident_id, id);
`,
	},
	{
		// snoozed_until: end of the snooze in progress (NULL: not snoozed).
		// last_delivery_at: last Alertmanager delivery of the group, for
		// auto_resolve_after (0: none recorded).
		ID: "incident/0003_snooze_quiet",
		SQLite: `
ALTER TABLE incidents ADD COLUMN snoozed_until BIGINT;
CREATE INDEX incidents_snoozed ON incidents (snoozed_until);
ALTER TABLE alert_groups ADD COLUMN last_delivery_at BIGINT NOT NULL DEFAULT 0;
`,
	},
	{
		// root_service: the likely root cause among the incident's services.
		// incident_links: every alert group placed on an incident, the one
		// that opened it and those correlation attached to it; correlation
		// looks for open incidents through it.
		ID: "incident/0004_correlation",
		SQLite: `
ALTER TABLE incidents ADD COLUMN root_service TEXT NOT NULL DEFAULT '';
UPDATE incidents SET root_service = service;
CREATE TABLE incident_links (
	incident_id TEXT NOT NULL REFERENCES incidents (id),
	group_key   TEXT NOT NULL,
	service     TEXT NOT NULL,
	labels      TEXT NOT NULL,
	reason      TEXT NOT NULL,
	explanation TEXT NOT NULL DEFAULT '',
	attached_at BIGINT NOT NULL,
	PRIMARY KEY (incident_id, group_key)
);
CREATE INDEX incident_links_attached ON incident_links (attached_at);
CREATE INDEX incident_links_group ON incident_links (group_key);
INSERT INTO incident_links (incident_id, group_key, service, labels, reason, attached_at)
	SELECT id, group_key, service, labels, 'opened', created_at FROM incidents
	WHERE status IN ('triggered', 'acknowledged', 'investigating');
`,
	},
	{
		// recovering_since: when every short burn-rate window of the
		// incident's SLO fell back under its threshold (NULL: not recovering).
		ID: "incident/0005_recovering",
		SQLite: `
ALTER TABLE incidents ADD COLUMN recovering_since BIGINT;
`,
	},
	{
		// merged_into: the incident this one was merged into (Merge).
		ID:     "incident/0006_merged_into",
		SQLite: `ALTER TABLE incidents ADD COLUMN merged_into TEXT NOT NULL DEFAULT '';`,
	},
	{
		// incident_link_services: per incident, the services of its links,
		// each with the latest attachment (an upper bound: deleted links
		// leave it). Correlation finds the open incidents a service joined
		// within the window through it, then the earliest link of the
		// service through incident_links_service, which also lists an
		// incident's services (correlation.go, relatedLinksAnyQuery).
		ID: "incident/0007_link_services",
		SQLite: `
CREATE INDEX incident_links_service ON incident_links (incident_id, service, attached_at);
CREATE TABLE incident_link_services (
	incident_id TEXT NOT NULL,
	service     TEXT NOT NULL,
	last_at     BIGINT NOT NULL,
	PRIMARY KEY (incident_id, service)
);
CREATE INDEX incident_link_services_service ON incident_link_services (service, last_at);
INSERT INTO incident_link_services (incident_id, service, last_at)
	SELECT incident_id, service, MAX(attached_at) FROM incident_links GROUP BY incident_id, service;
`,
	},
	{
		// incident_links_group (group_key) serves no query: a link is
		// looked up by its incident, or by its incident and group (the
		// primary key). Every delivery of a new group inserts a link, and
		// each index is one more B-tree insert.
		ID:     "incident/0008_drop_links_group",
		SQLite: `DROP INDEX IF EXISTS incident_links_group;`,
	},
	{
		// SQLite: incident_alerts becomes a rowid table (it was WITHOUT
		// ROWID), its primary key a separate index. A WITHOUT ROWID table
		// keeps whole rows (labels and annotations, about 400 bytes) in
		// the B-tree of its key, about ten to a page: every delivery of a
		// new group filled a page, and a page of an index B-tree splits by
		// rebalancing it with its siblings; its secondary index repeated
		// the whole key (group, fingerprint, start) in every entry. As a
		// rowid table, new rows go to the table's last page (SQLite's
		// quick balance for appends), the key index holds only the key,
		// and incident_alerts_incident the incident and the rowid.
		// Dropping the table drops incident_alerts_ends (retention's index
		// of resolved episodes by end): it is made again here, and
		// retention's migration makes it only if it is missing.
		// PostgreSQL's tables are heaps already: nothing to do there.
		ID: "incident/0009_alerts_rowid",
		SQLite: `
CREATE TABLE incident_alerts_rowid (
	group_key     TEXT NOT NULL,
	fingerprint   TEXT NOT NULL,
	starts_at     BIGINT NOT NULL,
	incident_id   TEXT REFERENCES incidents (id),
	status        TEXT NOT NULL,
	ends_at       BIGINT,
	labels        TEXT NOT NULL,
	annotations   TEXT NOT NULL,
	generator_url TEXT NOT NULL DEFAULT '',
	first_seen_at BIGINT NOT NULL,
	updated_at    BIGINT NOT NULL,
	PRIMARY KEY (group_key, fingerprint, starts_at)
);
INSERT INTO incident_alerts_rowid (group_key, fingerprint, starts_at, incident_id, status, ends_at,
		labels, annotations, generator_url, first_seen_at, updated_at)
	SELECT group_key, fingerprint, starts_at, incident_id, status, ends_at,
		labels, annotations, generator_url, first_seen_at, updated_at
	FROM incident_alerts ORDER BY updated_at;
DROP TABLE incident_alerts;
ALTER TABLE incident_alerts_rowid RENAME TO incident_alerts;
CREATE INDEX incident_alerts_incident ON incident_alerts (incident_id);
CREATE INDEX incident_alerts_ends ON incident_alerts (ends_at) WHERE status = 'resolved';
`,
		Postgres: `SELECT 1;`,
	},
	{
		// incidents_group (group_key) serves no query: an incident is
		// found from its group through alert_groups (the group's row
		// names its incident), and the quiet-incident sweep joins
		// alert_groups to the open incidents by their primary key. Every
		// new incident inserted an entry into it.
		ID:     "incident/0010_drop_incidents_group",
		SQLite: `DROP INDEX IF EXISTS incidents_group;`,
	},
	{
		// incident_links.firing: 1 while the link's group has a firing
		// alert on the link's incident. Correlation finds an open
		// incident through a related service's groups still firing on it,
		// however long ago they were placed (relatedLinksAnyQuery), through
		// incident_links_firing, which holds only the firing links: one
		// probe per incident and service (a loose index scan), however
		// many groups fire.
		ID: "incident/0011_link_firing",
		SQLite: `
ALTER TABLE incident_links ADD COLUMN firing INTEGER NOT NULL DEFAULT 0;
UPDATE incident_links SET firing = 1 WHERE EXISTS (SELECT 1 FROM incident_alerts a
	WHERE a.group_key = incident_links.group_key AND a.incident_id = incident_links.incident_id AND a.status = 'firing');
CREATE INDEX incident_links_firing ON incident_links (service, incident_id, attached_at) WHERE firing = 1;
`,
	},
	{
		// incident_alerts_incident also holds the fingerprint: a resolve
		// finds the copies other groups hold of the episode on its
		// incident (Alertmanager's group_by changed while it fired) by an
		// index probe, not a scan of the incident's alerts (resolveAlerts).
		// Every query by incident alone still uses it, as before.
		ID: "incident/0012_alerts_incident_fingerprint",
		SQLite: `
DROP INDEX incident_alerts_incident;
CREATE INDEX incident_alerts_incident ON incident_alerts (incident_id, fingerprint);
`,
	},
	{
		// peak_severity: the highest severity the incident has had (the
		// one it paged with); severity follows the alerts still firing.
		// The metrics by severity count incidents under it. Existing
		// incidents get the highest of their severity and of those their
		// timeline's severity changes went from or to (as an import of an
		// export without a peak reads them).
		ID: "incident/0013_peak_severity",
		SQLite: `
ALTER TABLE incidents ADD COLUMN peak_severity TEXT NOT NULL DEFAULT '';
UPDATE incidents SET peak_severity = severity;
UPDATE incidents SET peak_severity = COALESCE((SELECT v FROM (
		SELECT incidents.severity AS v
		UNION ALL SELECT CASE WHEN json_valid(t.data) THEN json_extract(t.data, '$.from') END FROM incident_timeline t
			WHERE t.incident_id = incidents.id AND t.kind = 'severity'
		UNION ALL SELECT CASE WHEN json_valid(t.data) THEN json_extract(t.data, '$.to') END FROM incident_timeline t
			WHERE t.incident_id = incidents.id AND t.kind = 'severity') sevs
	WHERE v IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW')
	ORDER BY CASE v WHEN 'CRITICAL' THEN 0 WHEN 'HIGH' THEN 1 WHEN 'MEDIUM' THEN 2 ELSE 3 END LIMIT 1), severity)
WHERE id IN (SELECT incident_id FROM incident_timeline WHERE kind = 'severity');
`,
		Postgres: `
ALTER TABLE incidents ADD COLUMN peak_severity TEXT NOT NULL DEFAULT '';
UPDATE incidents SET peak_severity = severity;
UPDATE incidents SET peak_severity = COALESCE((SELECT v FROM (
		SELECT incidents.severity AS v
		UNION ALL SELECT substring(t.data from '"from":\s*"([A-Z]+)"') FROM incident_timeline t
			WHERE t.incident_id = incidents.id AND t.kind = 'severity'
		UNION ALL SELECT substring(t.data from '"to":\s*"([A-Z]+)"') FROM incident_timeline t
			WHERE t.incident_id = incidents.id AND t.kind = 'severity') sevs
	WHERE v IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW')
	ORDER BY CASE v WHEN 'CRITICAL' THEN 0 WHEN 'HIGH' THEN 1 WHEN 'MEDIUM' THEN 2 ELSE 3 END LIMIT 1), severity)
WHERE id IN (SELECT incident_id FROM incident_timeline WHERE kind = 'severity');
`,
	},
	{
		// An open incident opened by hand gets the link Create now writes
		// (manualLink): its service, firing while it is open, so that
		// correlation places the alert groups of that service on it. Those
		// opened before had none (or, from 0004, one not firing).
		ID: "incident/0014_manual_links",
		SQLite: `
INSERT INTO incident_links (incident_id, group_key, service, labels, reason, attached_at, firing)
	SELECT id, group_key, service, labels, 'opened', created_at, 1 FROM incidents
	WHERE group_key LIKE 'manual:%' AND status IN ('triggered', 'acknowledged', 'investigating')
	ON CONFLICT (incident_id, group_key) DO UPDATE SET firing = 1;
INSERT INTO incident_link_services (incident_id, service, last_at)
	SELECT id, service, created_at FROM incidents
	WHERE group_key LIKE 'manual:%' AND status IN ('triggered', 'acknowledged', 'investigating')
	ON CONFLICT (incident_id, service) DO NOTHING;
`,
	},
	{
		// The status page reads the latest public status updates of the
		// incidents it shows (PublicStatusUpdates): through this index,
		// the incidents' status updates alone (at most MaxStatusUpdates
		// each), newest first, not their whole timelines. Only status
		// updates are in it: alerts and notes add nothing to it. kind is
		// one of its columns so that SQLite, without statistics, prefers
		// it to incident_timeline_incident (TestPublicUpdatesQueryPlan).
		ID: "incident/0015_timeline_status_updates",
		SQLite: `
CREATE INDEX incident_timeline_status_updates ON incident_timeline (incident_id, kind, at, id) WHERE kind = 'status_update';
`,
	},
	{
		// A merge (room, boundMerged) and an import (importMerged) count
		// the incidents already merged into the target through this
		// index, not by a scan of every incident. Only merged incidents
		// are in it: a new incident adds nothing to it. The queries
		// repeat its WHERE (mergedIndexed) so that SQLite, which does
		// not derive it from merged_into = $1, uses it
		// (TestMergedIntoIndex).
		ID: "incident/0016_incidents_merged_into",
		SQLite: `
CREATE INDEX incidents_merged_into ON incidents (merged_into) WHERE merged_into <> '';
`,
	},
	{
		// The bounds on what people add to an incident (room: notes,
		// status updates, impact, assignment, snooze and action item
		// changes) count its entries of those kinds through this index,
		// not its whole timeline through incident_timeline_incident:
		// sred's own entries (alerts, escalations, runbooks), thousands
		// in a long incident, are not in it. The counting query repeats
		// its WHERE (boundedKindsIndexed) so that SQLite uses it
		// (TestBoundedCountIndex).
		ID: "incident/0017_timeline_bounded_kinds",
		SQLite: `
CREATE INDEX incident_timeline_bounded ON incident_timeline (incident_id, kind)
	WHERE kind IN ('note', 'status_update', 'impact', 'assignment', 'snooze', 'action_item');
`,
	},
}
