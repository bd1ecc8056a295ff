package collector

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	sretest "github.com/rootuip/sre/pkg/testutil"
)

var migrations = [][]store.Migration{incident.Migrations, Migrations}

// memoryStore opens an in-memory SQLite store with the incident and
// collector migrations applied, closed when t ends.
func memoryStore(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.OpenSQLiteMemory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background(), migrations...); err != nil {
		t.Fatal(err)
	}
	return db
}

// t0 is the creation time of the first test incident.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// row is one stored incident, times as offsets from t0 (nil: not set).
type row struct {
	id, service, severity, status, mitigatedBy string
	detected, created                          time.Duration
	ack, resolved, recovered, postmortem       *time.Duration
	updated                                    time.Time
}

func d(v time.Duration) *time.Duration { return &v }

func at(off *time.Duration) sql.NullInt64 {
	if off == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t0.Add(*off).UnixMilli(), Valid: true}
}

func upsert(t testing.TB, db *store.DB, r row) {
	t.Helper()
	if r.updated.IsZero() {
		r.updated = time.Now()
	}
	_, err := db.Exec(`INSERT INTO incidents (id, title, service, severity, status, labels, mitigated_by,
		detected_at, created_at, acknowledged_at, resolved_at, recovered_at, postmortem_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, '{}', $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (id) DO UPDATE SET service = excluded.service, severity = excluded.severity,
			status = excluded.status, mitigated_by = excluded.mitigated_by,
			acknowledged_at = excluded.acknowledged_at, resolved_at = excluded.resolved_at,
			recovered_at = excluded.recovered_at, postmortem_at = excluded.postmortem_at,
			updated_at = excluded.updated_at`,
		r.id, "test "+r.id, r.service, r.severity, r.status, r.mitigatedBy,
		t0.Add(r.detected).UnixMilli(), t0.Add(r.created).UnixMilli(),
		at(r.ack), at(r.resolved), at(r.recovered), at(r.postmortem), r.updated.UnixMilli())
	if err != nil {
		t.Fatalf("store incident %s: %v", r.id, err)
	}
}

// The three CRITICAL incidents of the api service, with times chosen so
// that the figures are easy to check by hand:
//
//	INC-1: detected -60s, created 0, ack +2m,  resolved +10m, recovered +11m, post-mortem done
//	INC-2: detected -30s, created 1h, ack +5m, resolved +15m, recovered +14m30s
//	INC-3: detected -2m,  created 5h, ack +10m, resolved +30m (no recovery yet)
//
// MTTA = (120+300+600)/3 = 340s, MTTR = (600+900+1800)/3 = 1100s,
// detection = 60+30+120 = 210s in all, time to recover = 720s and 900s.
// MTBF(api) = (detected INC-3 - detected INC-1) / 2 = (5h-2m - (-1m)) / 2 = 8970s.
func knownIncidents() []row {
	h := time.Hour
	return []row{
		{id: "INC-1", service: "api", severity: "CRITICAL", status: "postmortem_done", mitigatedBy: "automation",
			detected: -time.Minute, created: 0, ack: d(2 * time.Minute), resolved: d(10 * time.Minute),
			recovered: d(11 * time.Minute), postmortem: d(2 * h)},
		{id: "INC-2", service: "api", severity: "CRITICAL", status: "resolved",
			detected: h - 30*time.Second, created: h, ack: d(h + 5*time.Minute), resolved: d(h + 15*time.Minute),
			recovered: d(h + 14*time.Minute + 30*time.Second)},
		{id: "INC-3", service: "api", severity: "CRITICAL", status: "resolved",
			detected: 5*h - 2*time.Minute, created: 5 * h, ack: d(5*h + 10*time.Minute), resolved: d(5*h + 30*time.Minute)},
		{id: "INC-4", service: "db", severity: "HIGH", status: "triggered",
			detected: 6*h - 10*time.Second, created: 6 * h},
	}
}

func newCollector(t testing.TB, db *store.DB, opts Options) *Collector {
	t.Helper()
	c, err := New(db, opts, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const wantKnown = `
# HELP sre_incident_time_to_resolve_seconds Time to resolve (MTTR): creation to first resolution.
# TYPE sre_incident_time_to_resolve_seconds histogram
sre_incident_time_to_resolve_seconds_bucket{service="",severity="HIGH",le="10"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="HIGH",le="30"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="HIGH",le="60"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="HIGH",le="120"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="HIGH",le="300"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="HIGH",le="600"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="HIGH",le="900"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="HIGH",le="1800"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="HIGH",le="3600"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="HIGH",le="7200"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="HIGH",le="14400"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="HIGH",le="28800"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="HIGH",le="86400"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="HIGH",le="259200"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="HIGH",le="604800"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="HIGH",le="+Inf"} 0
sre_incident_time_to_resolve_seconds_sum{service="",severity="HIGH"} 0
sre_incident_time_to_resolve_seconds_count{service="",severity="HIGH"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="LOW",le="10"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="LOW",le="30"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="LOW",le="60"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="LOW",le="120"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="LOW",le="300"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="LOW",le="600"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="LOW",le="900"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="LOW",le="1800"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="LOW",le="3600"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="LOW",le="7200"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="LOW",le="14400"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="LOW",le="28800"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="LOW",le="86400"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="LOW",le="259200"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="LOW",le="604800"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="LOW",le="+Inf"} 0
sre_incident_time_to_resolve_seconds_sum{service="",severity="LOW"} 0
sre_incident_time_to_resolve_seconds_count{service="",severity="LOW"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="MEDIUM",le="10"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="MEDIUM",le="30"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="MEDIUM",le="60"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="MEDIUM",le="120"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="MEDIUM",le="300"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="MEDIUM",le="600"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="MEDIUM",le="900"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="MEDIUM",le="1800"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="MEDIUM",le="3600"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="MEDIUM",le="7200"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="MEDIUM",le="14400"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="MEDIUM",le="28800"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="MEDIUM",le="86400"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="MEDIUM",le="259200"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="MEDIUM",le="604800"} 0
sre_incident_time_to_resolve_seconds_bucket{service="",severity="MEDIUM",le="+Inf"} 0
sre_incident_time_to_resolve_seconds_sum{service="",severity="MEDIUM"} 0
sre_incident_time_to_resolve_seconds_count{service="",severity="MEDIUM"} 0
sre_incident_time_to_resolve_seconds_bucket{service="api",severity="CRITICAL",le="10"} 0
sre_incident_time_to_resolve_seconds_bucket{service="api",severity="CRITICAL",le="30"} 0
sre_incident_time_to_resolve_seconds_bucket{service="api",severity="CRITICAL",le="60"} 0
sre_incident_time_to_resolve_seconds_bucket{service="api",severity="CRITICAL",le="120"} 0
sre_incident_time_to_resolve_seconds_bucket{service="api",severity="CRITICAL",le="300"} 0
sre_incident_time_to_resolve_seconds_bucket{service="api",severity="CRITICAL",le="600"} 1
sre_incident_time_to_resolve_seconds_bucket{service="api",severity="CRITICAL",le="900"} 2
sre_incident_time_to_resolve_seconds_bucket{service="api",severity="CRITICAL",le="1800"} 3
sre_incident_time_to_resolve_seconds_bucket{service="api",severity="CRITICAL",le="3600"} 3
sre_incident_time_to_resolve_seconds_bucket{service="api",severity="CRITICAL",le="7200"} 3
sre_incident_time_to_resolve_seconds_bucket{service="api",severity="CRITICAL",le="14400"} 3
sre_incident_time_to_resolve_seconds_bucket{service="api",severity="CRITICAL",le="28800"} 3
sre_incident_time_to_resolve_seconds_bucket{service="api",severity="CRITICAL",le="86400"} 3
sre_incident_time_to_resolve_seconds_bucket{service="api",severity="CRITICAL",le="259200"} 3
sre_incident_time_to_resolve_seconds_bucket{service="api",severity="CRITICAL",le="604800"} 3
sre_incident_time_to_resolve_seconds_bucket{service="api",severity="CRITICAL",le="+Inf"} 3
sre_incident_time_to_resolve_seconds_sum{service="api",severity="CRITICAL"} 3300
sre_incident_time_to_resolve_seconds_count{service="api",severity="CRITICAL"} 3
# HELP sre_incidents_open Incidents open now (triggered, acknowledged or investigating), by their highest severity.
# TYPE sre_incidents_open gauge
sre_incidents_open{service="",severity="CRITICAL"} 0
sre_incidents_open{service="",severity="LOW"} 0
sre_incidents_open{service="",severity="MEDIUM"} 0
sre_incidents_open{service="db",severity="HIGH"} 1
# HELP sre_incidents_stored_total Incidents ever created, counted from the store.
# TYPE sre_incidents_stored_total counter
sre_incidents_stored_total{service="",severity="LOW"} 0
sre_incidents_stored_total{service="",severity="MEDIUM"} 0
sre_incidents_stored_total{service="api",severity="CRITICAL"} 3
sre_incidents_stored_total{service="db",severity="HIGH"} 1
# HELP sre_incident_mtbf_seconds Mean time between failures: (last detection - first detection) / (incidents - 1); services with two incidents or more.
# TYPE sre_incident_mtbf_seconds gauge
sre_incident_mtbf_seconds{service="api"} 8970
# HELP sre_incident_postmortem_completion_ratio For CRITICAL and HIGH (SEV1/2, by the incident's highest severity): completed post-mortems / resolved incidents.
# TYPE sre_incident_postmortem_completion_ratio gauge
sre_incident_postmortem_completion_ratio{severity="CRITICAL"} 0.3333333333333333
# HELP sre_incident_postmortems_completed_total Incidents whose post-mortem was completed.
# TYPE sre_incident_postmortems_completed_total counter
sre_incident_postmortems_completed_total{service="",severity="HIGH"} 0
sre_incident_postmortems_completed_total{service="",severity="LOW"} 0
sre_incident_postmortems_completed_total{service="",severity="MEDIUM"} 0
sre_incident_postmortems_completed_total{service="api",severity="CRITICAL"} 1
# HELP sre_incidents_automated_total Incidents mitigated by runbook automation (mitigated_by = automation).
# TYPE sre_incidents_automated_total counter
sre_incidents_automated_total{service="",severity="HIGH"} 0
sre_incidents_automated_total{service="",severity="LOW"} 0
sre_incidents_automated_total{service="",severity="MEDIUM"} 0
sre_incidents_automated_total{service="api",severity="CRITICAL"} 1
# HELP sre_automation_coverage_ratio Share of incidents mitigated by automation.
# TYPE sre_automation_coverage_ratio gauge
sre_automation_coverage_ratio 0.25
# HELP sre_toil_ratio Share of resolved incidents resolved by hand (no automation mitigated them).
# TYPE sre_toil_ratio gauge
sre_toil_ratio 0.75
`

// histogram returns count and sum of one series of a histogram family.
func histogram(t *testing.T, c prometheus.Collector, name, service, severity string) (uint64, float64) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			ls := map[string]string{}
			for _, l := range m.GetLabel() {
				ls[l.GetName()] = l.GetValue()
			}
			if ls["service"] == service && ls["severity"] == severity {
				return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
			}
		}
	}
	return 0, 0
}

func TestKnownIncidents(t *testing.T) {
	sretest.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		for _, r := range knownIncidents() {
			upsert(t, db, r)
		}
		c := newCollector(t, db, Options{})
		names := []string{MetricTimeToResolve, MetricIncidentsOpen, MetricIncidentsStored, MetricMTBF,
			MetricPostmortemRatio, MetricPostmortemsCompleted, MetricAutomated, MetricAutomationCoverage, MetricToil}
		if err := testutil.CollectAndCompare(c, strings.NewReader(wantKnown), names...); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			metric, service, severity string
			count                     uint64
			sum                       float64
		}{
			{MetricTimeToAcknowledge, "api", "CRITICAL", 3, 120 + 300 + 600},
			{MetricTimeToResolve, "api", "CRITICAL", 3, 600 + 900 + 1800},
			{MetricDetection, "api", "CRITICAL", 3, 60 + 30 + 120},
			{MetricDetection, "db", "HIGH", 1, 10},
			{MetricTimeToRecover, "api", "CRITICAL", 2, 720 + 900},
			{MetricTimeToAcknowledge, "db", "HIGH", 0, 0},
		} {
			n, sum := histogram(t, c, tc.metric, tc.service, tc.severity)
			if n != tc.count || sum != tc.sum {
				t.Errorf("%s{%s,%s}: count %d sum %g, want %d and %g", tc.metric, tc.service, tc.severity, n, sum, tc.count, tc.sum)
			}
		}
		// Mean time to resolve, as the dashboards compute it.
		if n, sum := histogram(t, c, MetricTimeToResolve, "api", "CRITICAL"); sum/float64(n) != 1100 {
			t.Errorf("MTTR = %g, want 1100", sum/float64(n))
		}

		// Scraping again counts nothing twice.
		if err := testutil.CollectAndCompare(c, strings.NewReader(wantKnown), names...); err != nil {
			t.Fatalf("second scrape: %v", err)
		}

		// INC-4 is acknowledged after 4m and resolved after 20m: it leaves
		// the open gauge and enters the histograms once.
		upsert(t, db, row{id: "INC-4", service: "db", severity: "HIGH", status: "resolved",
			detected: 6*time.Hour - 10*time.Second, created: 6 * time.Hour,
			ack: d(6*time.Hour + 4*time.Minute), resolved: d(6*time.Hour + 20*time.Minute)})
		for range 2 {
			if n, sum := histogram(t, c, MetricTimeToAcknowledge, "db", "HIGH"); n != 1 || sum != 240 {
				t.Errorf("MTTA db after ack: count %d sum %g, want 1 and 240", n, sum)
			}
			if n, sum := histogram(t, c, MetricTimeToResolve, "db", "HIGH"); n != 1 || sum != 1200 {
				t.Errorf("MTTR db after resolve: count %d sum %g, want 1 and 1200", n, sum)
			}
		}
		if got := serviceValues(t, c, MetricIncidentsOpen); len(got) != 0 {
			t.Errorf("open incident series after resolution: %v, want none but the zeros", got)
		}
		if got := testutil.CollectAndCount(c, MetricIncidentsOpen); got != len(incident.Severities) {
			t.Errorf("open incident series after resolution: %d, want a zero per severity", got)
		}
		// The HIGH incident has no post-mortem: 0 of 1.
		want := `
# HELP sre_incident_postmortem_completion_ratio For CRITICAL and HIGH (SEV1/2, by the incident's highest severity): completed post-mortems / resolved incidents.
# TYPE sre_incident_postmortem_completion_ratio gauge
sre_incident_postmortem_completion_ratio{severity="CRITICAL"} 0.3333333333333333
sre_incident_postmortem_completion_ratio{severity="HIGH"} 0
`
		if err := testutil.CollectAndCompare(c, strings.NewReader(want), MetricPostmortemRatio); err != nil {
			t.Fatal(err)
		}
	})
}

// A reopened incident keeps its first resolution in the histogram: a
// histogram is a set of counters and never goes back.
func TestReopenObservesOnce(t *testing.T) {
	sretest.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		r := row{id: "INC-9", service: "web", severity: "MEDIUM", status: "resolved",
			created: 0, resolved: d(5 * time.Minute)}
		upsert(t, db, r)
		c := newCollector(t, db, Options{})
		if n, sum := histogram(t, c, MetricTimeToResolve, "web", "MEDIUM"); n != 1 || sum != 300 {
			t.Fatalf("first resolution: count %d sum %g", n, sum)
		}
		r.status, r.resolved = "triggered", nil
		upsert(t, db, r)
		if got := serviceValues(t, c, MetricIncidentsOpen); len(got) != 1 || got["web"] != 1 {
			t.Errorf("open series after reopen: %v, want web 1", got)
		}
		r.status, r.resolved = "resolved", d(time.Hour)
		upsert(t, db, r)
		if n, sum := histogram(t, c, MetricTimeToResolve, "web", "MEDIUM"); n != 1 || sum != 300 {
			t.Errorf("after reopen and second resolution: count %d sum %g, want 1 and 300", n, sum)
		}
	})
}

// The rollup pages through the incidents; small pages and many incidents
// give the same figures as one pass.
func TestPagedRollup(t *testing.T) {
	sretest.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		base := time.Now().Add(-time.Hour)
		var wantSum float64
		for i := range 25 {
			ttr := time.Duration(i+1) * time.Minute
			wantSum += ttr.Seconds()
			upsert(t, db, row{id: fmt.Sprintf("INC-%03d", i), service: "api", severity: "LOW", status: "resolved",
				created: time.Duration(i) * time.Hour, resolved: d(time.Duration(i)*time.Hour + ttr),
				updated: base.Add(time.Duration(i%5) * time.Second)}) // many equal updated_at values
		}
		c := newCollector(t, db, Options{Batch: 4})
		if n, sum := histogram(t, c, MetricTimeToResolve, "api", "LOW"); n != 25 || sum != wantSum {
			t.Errorf("count %d sum %g, want 25 and %g", n, sum, wantSum)
		}
	})
}

// Two replicas scraping the same store at once count each incident once.
func TestConcurrentReplicas(t *testing.T) {
	sretest.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		for i := range 200 {
			upsert(t, db, row{id: fmt.Sprintf("INC-%04d", i), service: fmt.Sprintf("svc%d", i%3), severity: "HIGH",
				status: "resolved", created: time.Duration(i) * time.Minute, ack: d(time.Duration(i)*time.Minute + time.Minute),
				resolved: d(time.Duration(i)*time.Minute + 2*time.Minute)})
		}
		a := newCollector(t, db, Options{Batch: 16})
		b := newCollector(t, db, Options{Batch: 16})
		var wg sync.WaitGroup
		for _, c := range []*Collector{a, b, a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				testutil.CollectAndCount(c)
			}()
		}
		wg.Wait()
		var total uint64
		for s := range 3 {
			n, _ := histogram(t, a, MetricTimeToAcknowledge, fmt.Sprintf("svc%d", s), "HIGH")
			total += n
		}
		if total != 200 {
			t.Errorf("acknowledgements counted %d times, want 200", total)
		}
	})
}

// A store that cannot be read reports failure and no incident figures
// (never zeros that look like a quiet week).
func TestStoreFailure(t *testing.T) {
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx, migrations...); err != nil {
		t.Fatal(err)
	}
	upsert(t, db, knownIncidents()[3])
	c := newCollector(t, db, Options{})
	db.Close()
	want := `
# HELP sre_collector_scrape_success 1 if a part of the store collector succeeded in this scrape, 0 if it failed (it then exports nothing, never zeros).
# TYPE sre_collector_scrape_success gauge
sre_collector_scrape_success{collector="aggregates"} 0
sre_collector_scrape_success{collector="automation"} 0
sre_collector_scrape_success{collector="open"} 0
sre_collector_scrape_success{collector="rollup"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), MetricScrapeSuccess); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c, MetricIncidentsOpen, MetricIncidentsStored); n != 0 {
		t.Errorf("%d incident series exported from a closed store, want 0", n)
	}
}

func TestOptionsValidation(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Buckets: []float64{10, 5}}, "collector buckets must be positive and ascending, got [10 5]"},
		{Options{Buckets: []float64{0, 5}}, "collector buckets must be positive and ascending, got [0 5]"},
		{Options{Lag: -time.Second}, "collector lag must not be negative, got -1s"},
	} {
		_, err := New(nil, tc.opts, slog.Default())
		if err == nil || err.Error() != tc.want {
			t.Errorf("New(%+v) = %v, want %q", tc.opts, err, tc.want)
		}
	}
}

type fixedAutomation struct{ coverage, toil float64 }

func (f fixedAutomation) AutomationRatios(context.Context) (float64, float64, bool, error) {
	return f.coverage, f.toil, true, nil
}

func TestAutomationSource(t *testing.T) {
	db := memoryStore(t)
	c := newCollector(t, db, Options{Automation: fixedAutomation{0.9, 0.15}})
	want := `
# HELP sre_automation_coverage_ratio Share of incidents mitigated by automation.
# TYPE sre_automation_coverage_ratio gauge
sre_automation_coverage_ratio 0.9
# HELP sre_toil_ratio Share of resolved incidents resolved by hand (no automation mitigated them).
# TYPE sre_toil_ratio gauge
sre_toil_ratio 0.15
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), MetricAutomationCoverage, MetricToil); err != nil {
		t.Fatal(err)
	}
}

// The exposition of the real collector over real incidents passes
// promtool check metrics (naming, units, help, types).
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool := sretest.Tool(t, "promtool")
	sretest.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		for _, r := range knownIncidents() {
			upsert(t, db, r)
		}
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(newCollector(t, db, Options{}))
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				t.Fatal(err)
			}
		}
		if !strings.Contains(buf.String(), MetricTimeToResolve+"_bucket") {
			t.Fatalf("exposition lacks %s:\n%s", MetricTimeToResolve, buf.String())
		}
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = &buf
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("promtool check metrics: %v\n%s", err, out)
		}
	})
}

// createdTimestamps gathers c and returns the created timestamp of every
// counter and histogram series of the incident statistics, keyed
// "name{service,severity}" (zero time: the series has none).
func createdTimestamps(t *testing.T, c prometheus.Collector) map[string]time.Time {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]time.Time{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "sre_incident") {
			continue
		}
		for _, m := range mf.GetMetric() {
			ls := map[string]string{}
			for _, l := range m.GetLabel() {
				ls[l.GetName()] = l.GetValue()
			}
			if ls["service"] == "" {
				continue // the zero series of a severity without incidents (no event, no created timestamp)
			}
			key := fmt.Sprintf("%s{%s,%s}", mf.GetName(), ls["service"], ls["severity"])
			switch {
			case m.GetCounter() != nil:
				out[key] = time.Time{}
				if ct := m.GetCounter().GetCreatedTimestamp(); ct != nil {
					out[key] = ct.AsTime()
				}
			case m.GetHistogram() != nil:
				out[key] = time.Time{}
				if ct := m.GetHistogram().GetCreatedTimestamp(); ct != nil {
					out[key] = ct.AsTime()
				}
			}
		}
	}
	return out
}

// Every counter and histogram series carries the time just before the
// first event it counted as its created timestamp, so that Prometheus can
// store the 0 a new series starts from; it never moves afterwards, and
// series counted before the timestamps were stored have none.
func TestCreatedTimestamps(t *testing.T) {
	sretest.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		for _, r := range knownIncidents() {
			upsert(t, db, r)
		}
		c := newCollector(t, db, Options{})
		ms := time.Millisecond
		want := map[string]time.Time{
			// INC-1 is the first api incident: created at t0, acknowledged
			// 2m, resolved 10m, recovered 11m later, post-mortem after 2h.
			MetricIncidentsStored + "{api,CRITICAL}":      t0.Add(-ms),
			MetricDetection + "{api,CRITICAL}":            t0.Add(-ms),
			MetricTimeToAcknowledge + "{api,CRITICAL}":    t0.Add(2*time.Minute - ms),
			MetricTimeToResolve + "{api,CRITICAL}":        t0.Add(10*time.Minute - ms),
			MetricTimeToRecover + "{api,CRITICAL}":        t0.Add(11*time.Minute - ms),
			MetricPostmortemsCompleted + "{api,CRITICAL}": t0.Add(2*time.Hour - ms),
			MetricIncidentsStored + "{db,HIGH}":           t0.Add(6*time.Hour - ms),
			MetricDetection + "{db,HIGH}":                 t0.Add(6*time.Hour - ms),
		}
		got := createdTimestamps(t, c)
		automated := got[MetricAutomated+"{api,CRITICAL}"]
		delete(got, MetricAutomated+"{api,CRITICAL}")
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("created timestamps:\n got %v\nwant %v", got, want)
		}
		// The time of a mitigation is not stored: the update that recorded
		// it stands in (upsert stamps rows with the current time).
		if automated.IsZero() || time.Since(automated) > time.Minute {
			t.Errorf("created timestamp of %s = %v, want the recent update of INC-1", MetricAutomated, automated)
		}

		// An earlier incident counted later does not move them; a new
		// series gets its own.
		upsert(t, db, row{id: "INC-0", service: "api", severity: "CRITICAL", status: "resolved",
			detected: -2 * time.Hour, created: -2 * time.Hour, resolved: d(-time.Hour)})
		upsert(t, db, row{id: "INC-5", service: "web", severity: "LOW", status: "triggered",
			detected: 7 * time.Hour, created: 7 * time.Hour})
		want[MetricIncidentsStored+"{web,LOW}"] = t0.Add(7*time.Hour - ms)
		want[MetricDetection+"{web,LOW}"] = t0.Add(7*time.Hour - ms)
		got = createdTimestamps(t, c)
		delete(got, MetricAutomated+"{api,CRITICAL}")
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("created timestamps after more incidents:\n got %v\nwant %v", got, want)
		}

		// Rows counted before created timestamps were kept (-1) export none.
		if _, err := db.Exec(`UPDATE collector_totals SET created_ms = -1 WHERE service = 'web'`); err != nil {
			t.Fatal(err)
		}
		got = createdTimestamps(t, c)
		for _, k := range []string{MetricIncidentsStored + "{web,LOW}", MetricDetection + "{web,LOW}"} {
			if ct, ok := got[k]; !ok || !ct.IsZero() {
				t.Errorf("%s: created timestamp %v (present %v), want none", k, ct, ok)
			}
		}
	})
}

// The rollup's look-back is measured on Options.Clock, the clock the
// incidents' updated_at comes from: an incident whose transaction committed
// after a later one (updated_at older than the watermark, within Lag) is
// still counted when that clock is far from the wall clock, as it is under
// sred's manual test clock or a replayed store.
func TestRollupLookBackOnClock(t *testing.T) {
	sretest.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		now := time.Date(2020, 6, 1, 12, 0, 0, 0, time.UTC)
		c := newCollector(t, db, Options{Clock: clock.NewManual(now)})
		upsert(t, db, row{id: "INC-A", service: "api", severity: "LOW", status: "resolved",
			created: 0, resolved: d(time.Minute), updated: now})
		if n, _ := histogram(t, c, MetricTimeToResolve, "api", "LOW"); n != 1 {
			t.Fatalf("after INC-A: count %d, want 1", n)
		}
		// INC-B's transaction committed after INC-A's but carries an
		// earlier updated_at, one minute behind the watermark.
		upsert(t, db, row{id: "INC-B", service: "api", severity: "LOW", status: "resolved",
			created: 0, resolved: d(2 * time.Minute), updated: now.Add(-time.Minute)})
		if n, sum := histogram(t, c, MetricTimeToResolve, "api", "LOW"); n != 2 || sum != 180 {
			t.Errorf("after the late INC-B: count %d sum %g, want 2 and 180", n, sum)
		}
	})
}

// TestDetectionInTheFuture: an alert whose startsAt is after the incident's
// creation (a clock skewed ahead, or a hostile startsAt in the year 9999)
// counts as detected at the creation: the service's last detection and MTBF
// are not pushed into the future for good (collector_services never moves
// back), and its detection time is 0.
func TestDetectionInTheFuture(t *testing.T) {
	sretest.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		upsert(t, db, row{id: "INC-1", service: "web", severity: "HIGH", status: "triggered", detected: -time.Minute, created: 0})
		upsert(t, db, row{id: "INC-2", service: "web", severity: "HIGH", status: "triggered",
			detected: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC).Sub(t0), created: time.Hour})
		c := newCollector(t, db, Options{})
		want := fmt.Sprintf(`
# HELP sre_incident_last_detected_timestamp_seconds Unix time the last incident of the service was detected.
# TYPE sre_incident_last_detected_timestamp_seconds gauge
sre_incident_last_detected_timestamp_seconds{service="web"} %d
# HELP sre_incident_mtbf_seconds Mean time between failures: (last detection - first detection) / (incidents - 1); services with two incidents or more.
# TYPE sre_incident_mtbf_seconds gauge
sre_incident_mtbf_seconds{service="web"} 3660
`, t0.Add(time.Hour).Unix())
		if err := testutil.CollectAndCompare(c, strings.NewReader(want), MetricLastDetected, MetricMTBF); err != nil {
			t.Fatal(err)
		}
		if n, sum := histogram(t, c, MetricDetection, "web", "HIGH"); n != 2 || sum != 60 {
			t.Errorf("detection: count %d sum %g, want 2 and 60", n, sum)
		}
	})
}

// A toil of NaN (no incident resolved yet) exports the coverage alone.
func TestAutomationSourceToilUnknown(t *testing.T) {
	db := memoryStore(t)
	c := newCollector(t, db, Options{Automation: fixedAutomation{0.5, math.NaN()}})
	want := `
# HELP sre_automation_coverage_ratio Share of incidents mitigated by automation.
# TYPE sre_automation_coverage_ratio gauge
sre_automation_coverage_ratio 0.5
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), MetricAutomationCoverage, MetricToil); err != nil {
		t.Fatal(err)
	}
}
