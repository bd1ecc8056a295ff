package collector

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootuip/sre/pkg/store"
	sretest "github.com/rootuip/sre/pkg/testutil"
)

const benchIncidents = 100_000

// benchBackends runs fn against a SQLite and a PostgreSQL store holding
// benchIncidents incidents over 20 services, 1% of them open.
func benchBackends(b *testing.B, fn func(b *testing.B, db *store.DB)) {
	open := map[string]func(b *testing.B) *store.DB{
		"sqlite": func(b *testing.B) *store.DB {
			db, err := store.OpenSQLite(context.Background(), b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			return db
		},
		"postgres": func(b *testing.B) *store.DB {
			db, err := store.OpenPostgres(context.Background(), sretest.PostgresSchemaURL(b), store.PostgresOptions{})
			if err != nil {
				b.Fatal(err)
			}
			return db
		},
	}
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			db := open[name](b)
			b.Cleanup(func() { db.Close() })
			if err := db.Migrate(context.Background(), migrations...); err != nil {
				b.Fatal(err)
			}
			fill(b, db, benchIncidents)
			fn(b, db)
		})
	}
}

// fill stores n incidents with multi-row inserts.
func fill(b *testing.B, db *store.DB, n int) { fillTB(b, db, n) }

func fillTB(b testing.TB, db *store.DB, n int) {
	b.Helper()
	sev := []string{"CRITICAL", "HIGH", "MEDIUM", "LOW"}
	now := time.Now().Add(-time.Hour).UnixMilli()
	const per = 500
	for start := 0; start < n; start += per {
		var sb strings.Builder
		sb.WriteString(`INSERT INTO incidents (id, title, service, severity, status, labels, mitigated_by,
			detected_at, created_at, acknowledged_at, resolved_at, recovered_at, postmortem_at, updated_at) VALUES `)
		var args []any
		for i := start; i < min(start+per, n); i++ {
			if i > start {
				sb.WriteString(",")
			}
			k := len(args)
			fmt.Fprintf(&sb, "($%d,$%d,$%d,$%d,$%d,'{}',$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d)",
				k+1, k+2, k+3, k+4, k+5, k+6, k+7, k+8, k+9, k+10, k+11, k+12, k+13)
			created := t0.Add(time.Duration(i) * 7 * time.Minute).UnixMilli()
			status, mitigated := "resolved", ""
			var ack, res, rec, pm any = created + int64(i%900)*1000, created + int64(i%3600)*1000 + 60000, created + int64(i%3000)*1000 + 90000, nil
			if i%100 == 0 {
				status, ack, res, rec = "triggered", nil, nil, nil
			} else if i%3 == 0 {
				status, pm = "postmortem_done", created+86400000
			}
			if i%5 == 0 {
				mitigated = "automation"
			}
			args = append(args, fmt.Sprintf("INC-%07d", i), "incident", fmt.Sprintf("service-%02d", i%20), sev[i%4], status,
				mitigated, created-int64(i%600)*1000, created, ack, res, rec, pm, now-int64(n-i))
		}
		if _, err := db.Exec(sb.String(), args...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScrape is the steady state: 100,000 stored incidents already
// rolled up, a scrape reading the aggregates and the open incidents.
func BenchmarkScrape(b *testing.B) {
	benchBackends(b, func(b *testing.B, db *store.DB) {
		c := newCollector(b, db, Options{})
		reg := prometheus.NewRegistry()
		reg.MustRegister(c)
		if _, err := reg.Gather(); err != nil { // initial rollup
			b.Fatal(err)
		}
		b.ResetTimer()
		for b.Loop() {
			if _, err := reg.Gather(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkScrapeWithChanges: each scrape follows 10 incidents changing
// (acknowledged and resolved), as during an incident storm.
func BenchmarkScrapeWithChanges(b *testing.B) {
	benchBackends(b, func(b *testing.B, db *store.DB) {
		c := newCollector(b, db, Options{})
		reg := prometheus.NewRegistry()
		reg.MustRegister(c)
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
		i := 0
		b.ResetTimer()
		for b.Loop() {
			b.StopTimer()
			for range 10 {
				id := fmt.Sprintf("INC-%07d", (i%(benchIncidents/100))*100) // the open ones
				i++
				if _, err := db.Exec(`UPDATE incidents SET status = 'resolved', acknowledged_at = created_at + 60000,
					resolved_at = created_at + 600000, updated_at = $2 WHERE id = $1`, id, time.Now().UnixMilli()); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
			if _, err := reg.Gather(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkInitialRollup is the one-time cost of rolling up 100,000
// incidents stored before the collector ran (an upgrade). Run it with
// -benchtime 1x.
func BenchmarkInitialRollup(b *testing.B) {
	benchBackends(b, func(b *testing.B, db *store.DB) {
		ctx := context.Background()
		for b.Loop() {
			b.StopTimer()
			for _, stmt := range []string{`DELETE FROM collector_observed`, `DELETE FROM collector_histograms`,
				`DELETE FROM collector_totals`, `DELETE FROM collector_services`,
				`UPDATE collector_state SET watermark = 0`} {
				if _, err := db.ExecContext(ctx, stmt); err != nil {
					b.Fatal(err)
				}
			}
			c := newCollector(b, db, Options{})
			b.StartTimer()
			if err := c.rollup.run(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
