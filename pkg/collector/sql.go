package collector

import "github.com/rootuip/sre/pkg/store"

// Migrations create the rollup tables of the collector and an index on
// incidents.updated_at (the incidents table belongs to pkg/incident; apply
// its migrations first).
//
// collector_observed remembers, per incident, which observations the rollup
// already counted, so each incident is counted once per metric however often
// it is read. collector_histograms and collector_totals hold the aggregates
// the scrape reads: their size depends on the number of services and
// severities, never on the number of incidents.
var Migrations = []store.Migration{
	{
		ID: "collector/0001_rollup",
		SQLite: `
CREATE INDEX collector_incidents_updated ON incidents (updated_at, id);

CREATE TABLE collector_observed (
	incident_id  TEXT PRIMARY KEY,
	acknowledged INTEGER NOT NULL DEFAULT 0,
	resolved     INTEGER NOT NULL DEFAULT 0,
	recovered    INTEGER NOT NULL DEFAULT 0,
	postmortem   INTEGER NOT NULL DEFAULT 0,
	automated    INTEGER NOT NULL DEFAULT 0
);

-- Non-cumulative bucket counts; le_ms is the bucket's upper bound in
-- milliseconds, -1 for +Inf.
CREATE TABLE collector_histograms (
	metric   TEXT NOT NULL,
	service  TEXT NOT NULL,
	severity TEXT NOT NULL,
	le_ms    BIGINT NOT NULL,
	n        BIGINT NOT NULL,
	PRIMARY KEY (metric, service, severity, le_ms)
);

-- Counts and sums (milliseconds) per metric, service and severity.
CREATE TABLE collector_totals (
	metric   TEXT NOT NULL,
	service  TEXT NOT NULL,
	severity TEXT NOT NULL,
	n        BIGINT NOT NULL,
	sum_ms   BIGINT NOT NULL,
	PRIMARY KEY (metric, service, severity)
);

-- Per service: incidents and the first and last detection, for MTBF.
CREATE TABLE collector_services (
	service        TEXT PRIMARY KEY,
	incidents      BIGINT NOT NULL,
	first_detected BIGINT NOT NULL,
	last_detected  BIGINT NOT NULL
);

-- The rollup's progress: the (updated_at, id) of the last incident it read.
-- Its row is also the lock that serialises rollups of several replicas.
CREATE TABLE collector_state (
	name         TEXT PRIMARY KEY,
	watermark    BIGINT NOT NULL,
	watermark_id TEXT NOT NULL
);
INSERT INTO collector_state (name, watermark, watermark_id) VALUES ('incidents', 0, '');
`,
	},
	{
		// The created timestamp (unix ms) of each counter and histogram
		// series, so that Prometheus sees the first increase of a new
		// series. Rows counted before this migration have none (-1): their
		// counters did not start at the first event counted after it.
		ID: "collector/0002_created",
		SQLite: `
ALTER TABLE collector_totals ADD COLUMN created_ms BIGINT NOT NULL DEFAULT -1;
`,
	},
	{
		// rewinds counts the moves of the watermark back (RecountFrom, on
		// an import of older incidents). A rollup moves the watermark
		// forward only if it has not changed since the rollup read it, so
		// a rollup that was reading while an import committed cannot move
		// the watermark past the imported incidents.
		ID: "collector/0003_rewinds",
		SQLite: `
ALTER TABLE collector_state ADD COLUMN rewinds BIGINT NOT NULL DEFAULT 0;
`,
	},
}
