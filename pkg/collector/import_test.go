package collector

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	sretest "github.com/rootuip/sre/pkg/testutil"
)

// importLine is an export line of a resolved incident of service svc,
// created at created, detected 30s before, acknowledged after ack, resolved
// after ttr, and last updated at updated.
func importLine(t *testing.T, id, svc string, created time.Time, ack, ttr time.Duration, updated time.Time) []byte {
	t.Helper()
	acked, resolved := created.Add(ack), created.Add(ttr)
	b, err := json.Marshal(incident.ExportRecord{Incident: incident.Incident{
		ID: id, Title: "imported " + id, Service: svc, Severity: incident.SeverityHigh, Status: incident.StatusResolved,
		DetectedAt: created.Add(-30 * time.Second), CreatedAt: created, AcknowledgedAt: &acked, ResolvedAt: &resolved,
		UpdatedAt: updated,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestImportedIncidentsCounted: incidents imported into a store whose
// rollup has passed their updated_at (an export of last month's incidents
// imported into a running sred) are counted in every store figure, once,
// however often the rollup runs and the export is imported.
func TestImportedIncidentsCounted(t *testing.T) {
	sretest.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		c := newCollector(t, db, Options{Clock: clock.NewManual(now)})
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = svc.Close() })
		svc.AddImportHook(RecountFrom)

		// An incident of this store, updated now: the watermark moves to now.
		upsert(t, db, row{id: "INC-NOW", service: "api", severity: "HIGH", status: "resolved",
			detected: -time.Minute, created: 0, ack: d(time.Minute), resolved: d(5 * time.Minute), updated: now})
		if n, sum := histogram(t, c, MetricTimeToResolve, "api", "HIGH"); n != 1 || sum != 300 {
			t.Fatalf("before the import: count %d sum %g, want 1 and 300", n, sum)
		}

		// Two incidents of 30 and 20 days ago, updated then.
		old := now.Add(-30 * 24 * time.Hour)
		older := now.Add(-20 * 24 * time.Hour)
		export := append(importLine(t, "OLD-2026-0001", "api", old, 2*time.Minute, 10*time.Minute, old.Add(10*time.Minute)),
			importLine(t, "OLD-2026-0002", "api", older, 3*time.Minute, 20*time.Minute, older.Add(20*time.Minute))...)
		res, err := svc.Import(ctx, bytes.NewReader(export))
		if err != nil {
			t.Fatal(err)
		}
		if res.Imported != 2 {
			t.Fatalf("imported %d, want 2", res.Imported)
		}
		check := func(when string) {
			t.Helper()
			for _, tc := range []struct {
				metric string
				count  uint64
				sum    float64
			}{
				{MetricTimeToResolve, 3, 300 + 600 + 1200},
				{MetricTimeToAcknowledge, 3, 60 + 120 + 180},
				{MetricDetection, 3, 60 + 30 + 30},
			} {
				if n, sum := histogram(t, c, tc.metric, "api", "HIGH"); n != tc.count || sum != tc.sum {
					t.Errorf("%s: %s: count %d sum %g, want %d and %g", when, tc.metric, n, sum, tc.count, tc.sum)
				}
			}
			if got := serviceValues(t, c, MetricIncidentsStored); got["api"] != 3 {
				t.Errorf("%s: %s{api} = %v, want 3", when, MetricIncidentsStored, got["api"])
			}
			// MTBF from the first detection (30 days ago, 30s before its
			// creation) to the last (INC-NOW, 1m before t0 = now).
			first, last := old.Add(-30*time.Second), now.Add(-time.Minute)
			if got, want := serviceValues(t, c, MetricMTBF)["api"], last.Sub(first).Seconds()/2; got != want {
				t.Errorf("%s: %s{api} = %g, want %g", when, MetricMTBF, got, want)
			}
		}
		check("after the import")
		check("after another rollup")

		// Importing the export again adds nothing and counts nothing again.
		res, err = svc.Import(ctx, bytes.NewReader(export))
		if err != nil {
			t.Fatal(err)
		}
		if res.Imported != 0 || res.Skipped != 2 {
			t.Fatalf("second import: imported %d skipped %d, want 0 and 2", res.Imported, res.Skipped)
		}
		check("after importing again")

		// An import of one more old incident counts it alone: the two
		// imported before and INC-NOW are read again, not counted again.
		oldest := now.Add(-40 * 24 * time.Hour)
		if _, err := svc.Import(ctx, bytes.NewReader(importLine(t, "OLD-2026-0003", "web", oldest, time.Minute, time.Hour, oldest.Add(time.Hour)))); err != nil {
			t.Fatal(err)
		}
		if n, sum := histogram(t, c, MetricTimeToResolve, "web", "HIGH"); n != 1 || sum != 3600 {
			t.Errorf("third import: web resolve count %d sum %g, want 1 and 3600", n, sum)
		}
		check("after a third import")
	})
}

// TestRecountFromStopsRollupInFlight: a rollup that read the watermark
// before an import moved it back does not move it forward past the
// imported incidents when it stores its progress.
func TestRecountFromStopsRollupInFlight(t *testing.T) {
	sretest.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		c := newCollector(t, db, Options{Clock: clock.NewManual(now)})
		upsert(t, db, row{id: "INC-NOW", service: "api", severity: "HIGH", status: "triggered", updated: now})
		if err := c.rollup.run(ctx); err != nil {
			t.Fatal(err)
		}
		read := func() cursor {
			t.Helper()
			var w cursor
			if err := db.QueryRowContext(ctx, `SELECT watermark, watermark_id, rewinds FROM collector_state WHERE name = 'incidents'`).
				Scan(&w.updated, &w.id, &w.rewinds); err != nil {
				t.Fatal(err)
			}
			return w
		}
		before := read()
		if before.updated != now.UnixMilli() || before.id != "INC-NOW" {
			t.Fatalf("watermark after the rollup: %+v, want INC-NOW at now", before)
		}
		back := now.Add(-30 * 24 * time.Hour)
		if err := db.InTx(ctx, func(tx *sql.Tx) error { return RecountFrom(ctx, tx, back) }); err != nil {
			t.Fatal(err)
		}
		if w := read(); w.updated != back.UnixMilli() || w.id != "" || w.rewinds != before.rewinds+1 {
			t.Fatalf("watermark after RecountFrom: %+v, want %d, \"\" and rewinds %d", w, back.UnixMilli(), before.rewinds+1)
		}
		// The rollup that read the watermark before stores its progress.
		if err := storeWatermark(ctx, db, cursor{updated: now.UnixMilli() + 1, id: "INC-NOW", rewinds: before.rewinds}); err != nil {
			t.Fatal(err)
		}
		if w := read(); w.updated != back.UnixMilli() {
			t.Errorf("a rollup begun before RecountFrom moved the watermark to %d, want it left at %d", w.updated, back.UnixMilli())
		}
		// RecountFrom never moves the watermark forward.
		if err := db.InTx(ctx, func(tx *sql.Tx) error { return RecountFrom(ctx, tx, now) }); err != nil {
			t.Fatal(err)
		}
		if w := read(); w.updated != back.UnixMilli() {
			t.Errorf("RecountFrom(now) moved the watermark to %d, want it left at %d", w.updated, back.UnixMilli())
		}
	})
}
