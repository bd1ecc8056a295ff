package collector

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
)

// Names of the aggregates kept in collector_histograms and collector_totals.
const (
	aggDetection   = "detection"
	aggAcknowledge = "acknowledge"
	aggResolve     = "resolve"
	aggRecover     = "recover"
	aggCreated     = "created"
	aggPostmortem  = "postmortem"
	aggAutomated   = "automated"
)

// histogramAggs are the aggregates exported as histograms.
var histogramAggs = []string{aggDetection, aggAcknowledge, aggResolve, aggRecover}

// rollup folds incidents into the aggregate tables. It reads the incidents
// updated after its stored watermark (updated_at, id), and also every
// incident updated within the last lag, so that a transaction that committed
// after a later one is still seen; collector_observed makes reading an
// incident again harmless.
type rollup struct {
	db      *store.DB
	lag     time.Duration
	batch   int
	buckets []float64 // seconds, ascending, without +Inf
	now     func() time.Time
}

type incidentRow struct {
	id, service, severity, mitigatedBy                  string
	detected, created, updated                          int64
	acknowledged, resolved, recovered, postmortem       sql.NullInt64
	seen                                                bool
	obsAck, obsResolve, obsRecover, obsPM, obsAutomated bool
}

// pending reports whether the row holds something not yet counted.
func (r *incidentRow) pending() bool {
	return !r.seen ||
		(r.acknowledged.Valid && !r.obsAck) ||
		(r.resolved.Valid && !r.obsResolve) ||
		(r.recovered.Valid && !r.obsRecover) ||
		(r.postmortem.Valid && !r.obsPM) ||
		(r.mitigatedBy == "automation" && !r.obsAutomated)
}

type cursor struct {
	updated int64
	id      string
	// rewinds is collector_state.rewinds when the cursor was read from
	// it: the watermark moves forward only while it is unchanged.
	rewinds int64
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// pageQuery reads a page of incidents, each under its highest severity
// (incident.PeakSeverityExpr).
var pageQuery = `
SELECT i.id, i.service, ` + incident.PeakSeverityExpr("i") + `, i.mitigated_by, i.detected_at, i.created_at, i.updated_at,
	i.acknowledged_at, i.resolved_at, i.recovered_at, i.postmortem_at,
	o.incident_id IS NOT NULL, COALESCE(o.acknowledged, 0), COALESCE(o.resolved, 0),
	COALESCE(o.recovered, 0), COALESCE(o.postmortem, 0), COALESCE(o.automated, 0)
FROM incidents i LEFT JOIN collector_observed o ON o.incident_id = i.id
WHERE (i.updated_at, i.id) > ($1, $2)
ORDER BY i.updated_at, i.id
LIMIT $3`

func (ru *rollup) page(ctx context.Context, q queryer, c cursor) ([]incidentRow, error) {
	rows, err := q.QueryContext(ctx, pageQuery, c.updated, c.id, ru.batch)
	if err != nil {
		return nil, fmt.Errorf("read incidents: %w", err)
	}
	defer rows.Close()
	var out []incidentRow
	for rows.Next() {
		var r incidentRow
		var ack, res, rec, pm, auto int64
		if err := rows.Scan(&r.id, &r.service, &r.severity, &r.mitigatedBy, &r.detected, &r.created, &r.updated,
			&r.acknowledged, &r.resolved, &r.recovered, &r.postmortem,
			&r.seen, &ack, &res, &rec, &pm, &auto); err != nil {
			return nil, fmt.Errorf("read incidents: %w", err)
		}
		r.obsAck, r.obsResolve, r.obsRecover, r.obsPM, r.obsAutomated = ack != 0, res != 0, rec != 0, pm != 0, auto != 0
		// An alert that starts after its incident was created (a clock
		// ahead, a startsAt in the year 9999) was detected at the creation:
		// the service's last detection (which never moves back) and MTBF
		// stay out of the future.
		r.detected = min(r.detected, r.created)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read incidents: %w", err)
	}
	return out, nil
}

func (c cursor) after(o cursor) bool {
	return c.updated > o.updated || (c.updated == o.updated && c.id > o.id)
}

// run brings the aggregates up to date. It reads pages of incidents
// without writing; only a page holding something new is read again and
// applied in a write transaction that holds the collector_state row, so
// concurrent rollups on several replicas count every incident once. The
// watermark advances with each applied page, so a pass cut short (scrape
// timeout) keeps its progress.
func (ru *rollup) run(ctx context.Context) error {
	var stored cursor
	if err := ru.db.QueryRowContext(ctx, `SELECT watermark, watermark_id, rewinds FROM collector_state WHERE name = 'incidents'`).
		Scan(&stored.updated, &stored.id, &stored.rewinds); err != nil {
		return fmt.Errorf("read rollup watermark: %w", err)
	}
	rewinds := stored.rewinds
	c := stored
	if recent := ru.now().Add(-ru.lag).UnixMilli(); recent <= stored.updated {
		c = cursor{updated: recent - 1, rewinds: rewinds}
	}
	seen := stored
	for {
		rows, err := ru.page(ctx, ru.db, c)
		if err != nil {
			return err
		}
		dirty := false
		for i := range rows {
			if rows[i].pending() {
				dirty = true
				break
			}
		}
		if dirty {
			rows, err = ru.apply(ctx, c, rewinds)
			if err != nil {
				return err
			}
		}
		if len(rows) == 0 {
			break
		}
		last := rows[len(rows)-1]
		c = cursor{updated: last.updated, id: last.id, rewinds: rewinds}
		if dirty {
			stored = c // apply moved the stored watermark
		}
		if c.after(seen) {
			seen = c
		}
		if len(rows) < ru.batch {
			break
		}
	}
	if seen.after(stored) {
		if err := storeWatermark(ctx, ru.db, seen); err != nil {
			return err
		}
	}
	return nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// storeWatermark moves the watermark forward (never back), unless it was
// moved back (RecountFrom) since c.rewinds was read: the rollup then reads
// again from there at its next pass.
func storeWatermark(ctx context.Context, db execer, c cursor) error {
	if _, err := db.ExecContext(ctx, `UPDATE collector_state SET watermark = $1, watermark_id = $2
		WHERE name = 'incidents' AND rewinds = $3 AND (watermark < $1 OR (watermark = $1 AND watermark_id < $2))`,
		c.updated, c.id, c.rewinds); err != nil {
		return fmt.Errorf("store rollup watermark: %w", err)
	}
	return nil
}

// RecountFrom makes the rollup read again every incident updated at or
// after updated, in the transaction tx that stores incidents with such an
// old updated_at (an import): it moves the watermark back there (never
// forward) and stops rollups already reading from moving it past them.
// The incidents counted already are not counted again (collector_observed).
// It takes the rollup's lock (the collector_state row) until tx ends: call
// it last in the transaction.
func RecountFrom(ctx context.Context, tx *sql.Tx, updated time.Time) error {
	ms := updated.UnixMilli()
	if _, err := tx.ExecContext(ctx, `UPDATE collector_state SET rewinds = rewinds + 1,
		watermark = CASE WHEN watermark >= $1 THEN $1 ELSE watermark END,
		watermark_id = CASE WHEN watermark >= $1 THEN '' ELSE watermark_id END
		WHERE name = 'incidents'`, ms); err != nil {
		return fmt.Errorf("move the rollup watermark back: %w", err)
	}
	return nil
}

type histKey struct {
	agg, service, severity string
	le                     int64
}

// compare orders histogram keys by aggregate, service, severity and bucket.
func (k histKey) compare(o histKey) int {
	return cmp.Or(
		totalKey{k.agg, k.service, k.severity}.compare(totalKey{o.agg, o.service, o.severity}),
		cmp.Compare(k.le, o.le))
}

type totalKey struct{ agg, service, severity string }

// compare orders total keys by aggregate, service and severity.
func (k totalKey) compare(o totalKey) int {
	return cmp.Or(
		strings.Compare(k.agg, o.agg),
		strings.Compare(k.service, o.service),
		strings.Compare(k.severity, o.severity))
}

// total is a count and a sum; createdMS is the time (unix ms) just before
// the earliest event counted in it, the created timestamp of the series.
type total struct{ n, sumMS, createdMS int64 }

type serviceAgg struct{ n, first, last int64 }

// apply re-reads the page at c inside a write transaction and counts what
// is new in it. It returns the rows it read.
func (ru *rollup) apply(ctx context.Context, c cursor, rewinds int64) ([]incidentRow, error) {
	var rows []incidentRow
	err := ru.db.InTx(ctx, func(tx *sql.Tx) error {
		// Take the rollup lock first: what other replicas counted is then
		// committed and visible to the read below.
		if _, err := tx.ExecContext(ctx, `UPDATE collector_state SET watermark_id = watermark_id WHERE name = 'incidents'`); err != nil {
			return fmt.Errorf("lock rollup: %w", err)
		}
		var err error
		rows, err = ru.page(ctx, tx, c)
		if err != nil {
			return err
		}
		hist := map[histKey]int64{}
		totals := map[totalKey]total{}
		services := map[string]serviceAgg{}
		var observed []incidentRow
		// count adds an event that happened at (unix ms) to an aggregate.
		count := func(agg string, r *incidentRow, at int64) *total {
			k := totalKey{agg, r.service, r.severity}
			t, ok := totals[k]
			if !ok || at-1 < t.createdMS {
				t.createdMS = at - 1
			}
			t.n++
			totals[k] = t
			return &t
		}
		observe := func(agg string, r *incidentRow, at, ms int64) {
			ms = max(ms, 0)
			hist[histKey{agg, r.service, r.severity, ru.bucketOf(ms)}]++
			t := count(agg, r, at)
			t.sumMS += ms
			totals[totalKey{agg, r.service, r.severity}] = *t
		}
		for i := range rows {
			r := &rows[i]
			if !r.pending() {
				continue
			}
			if !r.seen {
				count(aggCreated, r, r.created)
				observe(aggDetection, r, r.created, r.created-r.detected)
				s, ok := services[r.service]
				if !ok {
					s = serviceAgg{first: r.detected, last: r.detected}
				}
				s.n++
				s.first, s.last = min(s.first, r.detected), max(s.last, r.detected)
				services[r.service] = s
			}
			if r.acknowledged.Valid && !r.obsAck {
				observe(aggAcknowledge, r, r.acknowledged.Int64, r.acknowledged.Int64-r.created)
				r.obsAck = true
			}
			if r.resolved.Valid && !r.obsResolve {
				observe(aggResolve, r, r.resolved.Int64, r.resolved.Int64-r.created)
				r.obsResolve = true
			}
			if r.recovered.Valid && !r.obsRecover {
				observe(aggRecover, r, r.recovered.Int64, r.recovered.Int64-r.detected)
				r.obsRecover = true
			}
			if r.postmortem.Valid && !r.obsPM {
				count(aggPostmortem, r, r.postmortem.Int64)
				r.obsPM = true
			}
			if r.mitigatedBy == "automation" && !r.obsAutomated {
				count(aggAutomated, r, r.updated) // the mitigation's time is not stored; it is at or before the update
				r.obsAutomated = true
			}
			observed = append(observed, *r)
		}
		if err := writeObserved(ctx, tx, observed); err != nil {
			return err
		}
		if err := writeHistograms(ctx, tx, hist); err != nil {
			return err
		}
		if err := writeTotals(ctx, tx, totals); err != nil {
			return err
		}
		if err := writeServices(ctx, tx, services); err != nil {
			return err
		}
		if len(rows) > 0 {
			last := rows[len(rows)-1]
			return storeWatermark(ctx, tx, cursor{updated: last.updated, id: last.id, rewinds: rewinds})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// bucketOf returns the upper bound (ms) of the bucket holding ms, -1 for +Inf.
func (ru *rollup) bucketOf(ms int64) int64 {
	for _, b := range ru.buckets {
		le := int64(b * 1000)
		if ms <= le {
			return le
		}
	}
	return -1
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// multiRowUpsert runs an INSERT of n-column rows in chunks, so thousands of
// rows cost a few statements instead of one round trip each.
func multiRowUpsert(ctx context.Context, tx *sql.Tx, head, tail string, cols int, rows [][]any) error {
	const perStmt = 200
	for start := 0; start < len(rows); start += perStmt {
		end := min(start+perStmt, len(rows))
		var sb strings.Builder
		sb.WriteString(head)
		args := make([]any, 0, (end-start)*cols)
		for i, r := range rows[start:end] {
			if i > 0 {
				sb.WriteString(",")
			}
			sb.WriteString("(")
			for j := range cols {
				if j > 0 {
					sb.WriteString(",")
				}
				fmt.Fprintf(&sb, "$%d", len(args)+j+1)
			}
			sb.WriteString(")")
			args = append(args, r...)
		}
		sb.WriteString(tail)
		if _, err := tx.ExecContext(ctx, sb.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

func writeObserved(ctx context.Context, tx *sql.Tx, rows []incidentRow) error {
	vals := make([][]any, 0, len(rows))
	for _, r := range rows {
		vals = append(vals, []any{r.id, b2i(r.obsAck), b2i(r.obsResolve), b2i(r.obsRecover), b2i(r.obsPM), b2i(r.obsAutomated)})
	}
	err := multiRowUpsert(ctx, tx,
		`INSERT INTO collector_observed (incident_id, acknowledged, resolved, recovered, postmortem, automated) VALUES `,
		` ON CONFLICT (incident_id) DO UPDATE SET acknowledged = excluded.acknowledged, resolved = excluded.resolved,
			recovered = excluded.recovered, postmortem = excluded.postmortem, automated = excluded.automated`,
		6, vals)
	if err != nil {
		return fmt.Errorf("record observed incidents: %w", err)
	}
	return nil
}

func writeHistograms(ctx context.Context, tx *sql.Tx, hist map[histKey]int64) error {
	// A stable order keeps lock acquisition consistent across replicas.
	keys := slices.SortedFunc(maps.Keys(hist), histKey.compare)
	vals := make([][]any, 0, len(keys))
	for _, k := range keys {
		vals = append(vals, []any{k.agg, k.service, k.severity, k.le, hist[k]})
	}
	err := multiRowUpsert(ctx, tx,
		`INSERT INTO collector_histograms (metric, service, severity, le_ms, n) VALUES `,
		` ON CONFLICT (metric, service, severity, le_ms) DO UPDATE SET n = collector_histograms.n + excluded.n`,
		5, vals)
	if err != nil {
		return fmt.Errorf("update histogram rollup: %w", err)
	}
	return nil
}

func writeTotals(ctx context.Context, tx *sql.Tx, totals map[totalKey]total) error {
	keys := slices.SortedFunc(maps.Keys(totals), totalKey.compare)
	vals := make([][]any, 0, len(keys))
	for _, k := range keys {
		vals = append(vals, []any{k.agg, k.service, k.severity, totals[k].n, totals[k].sumMS, totals[k].createdMS})
	}
	// created_ms is set once, by the first rollup that counts in a series:
	// it is the series' created timestamp, which must never move.
	err := multiRowUpsert(ctx, tx,
		`INSERT INTO collector_totals (metric, service, severity, n, sum_ms, created_ms) VALUES `,
		` ON CONFLICT (metric, service, severity) DO UPDATE SET n = collector_totals.n + excluded.n,
			sum_ms = collector_totals.sum_ms + excluded.sum_ms`,
		6, vals)
	if err != nil {
		return fmt.Errorf("update totals rollup: %w", err)
	}
	return nil
}

func writeServices(ctx context.Context, tx *sql.Tx, services map[string]serviceAgg) error {
	names := slices.Sorted(maps.Keys(services))
	vals := make([][]any, 0, len(names))
	for _, s := range names {
		a := services[s]
		vals = append(vals, []any{s, a.n, a.first, a.last})
	}
	err := multiRowUpsert(ctx, tx,
		`INSERT INTO collector_services (service, incidents, first_detected, last_detected) VALUES `,
		` ON CONFLICT (service) DO UPDATE SET incidents = collector_services.incidents + excluded.incidents,
			first_detected = CASE WHEN excluded.first_detected < collector_services.first_detected
				THEN excluded.first_detected ELSE collector_services.first_detected END,
			last_detected = CASE WHEN excluded.last_detected > collector_services.last_detected
				THEN excluded.last_detected ELSE collector_services.last_detected END`,
		4, vals)
	if err != nil {
		return fmt.Errorf("update service rollup: %w", err)
	}
	return nil
}
