package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/collector"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// storeRuns records a verified runbook run for every incident mitigated by
// automation in storeIncidents (every fifth), as the runbook engine would.
func storeRuns(b *testing.B, a *App, n int) {
	b.Helper()
	const per = 1000
	for start := 0; start < n; start += per * 5 {
		var sb strings.Builder
		sb.WriteString(`INSERT INTO runbook_runs (incident_id, runbook, target, status, verified, created_at, started_at, finished_at) VALUES `)
		var args []any
		for i := start; i < min(start+per*5, n); i += 5 {
			if len(args) > 0 {
				sb.WriteString(",")
			}
			k := len(args)
			fmt.Fprintf(&sb, "($%d,'restart','api','succeeded',1,$%d,$%d,$%d)", k+1, k+2, k+3, k+4)
			at := time.Now().Add(-time.Duration(n-i) * 7 * time.Minute).UnixMilli()
			args = append(args, fmt.Sprintf("INC-B%07d", i), at, at+1000, at+60000)
		}
		_, err := a.DB.Exec(sb.String(), args...)
		require.NoError(b, err)
	}
}

// unversioned hides AutomationVersion: the collector then reads the ratios
// at every scrape, as it did before it cached them.
type unversioned struct{ collector.AutomationRuns }

// BenchmarkCollectorScrape gathers the incident statistics collector built
// exactly as setupCollector builds it (newCollector: the runbook engine's
// automation ratios over the last 30 days, cached by version) over 100,000
// stored incidents and 20,000 runbook runs, on both backends:
//
//   - cached: nothing changed since the last read of the ratios, the steady
//     state (sred's background rollup re-reads them after changes);
//   - changed: an incident changed since the last scrape and the background
//     rollup has not run yet, so the scrape re-reads the ratios;
//   - uncached: the same collector reading the ratios at every scrape, as
//     before they were cached.
//
// The first gather, which rolls the incidents up, is not timed.
func BenchmarkCollectorScrape(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			dir := b.TempDir()
			cfgFile := filepath.Join(dir, "sred.yml")
			require.NoError(b, os.WriteFile(cfgFile, []byte("{}\n"), 0o644))
			o := Options{ConfigFile: cfgFile, StoragePath: filepath.Join(dir, "data")}
			if backend == "postgres" {
				o.PostgresURL = tu.PostgresSchemaURL(b)
			}
			a, err := New(context.Background(), o)
			require.NoError(b, err)
			b.Cleanup(func() { a.Close() })
			storeIncidents(b, a.DB, benchIncidents)
			storeRuns(b, a, benchIncidents)

			gatherer := func(c prometheus.Collector) func() {
				reg := prometheus.NewPedanticRegistry()
				reg.MustRegister(c)
				return func() {
					mfs, err := reg.Gather()
					if err != nil {
						b.Fatal(err)
					}
					for _, mf := range mfs {
						if mf.GetName() == collector.MetricScrapeSuccess {
							for _, m := range mf.GetMetric() {
								if m.GetGauge().GetValue() != 1 {
									b.Fatalf("collector part failed: %v", m)
								}
							}
						}
					}
				}
			}
			c, err := newCollector(a)
			require.NoError(b, err)
			gather := gatherer(c)
			gather() // rolls the 100,000 incidents up
			// touch changes an incident after every stored change, as the
			// incident service does (storeIncidents dates the last changes
			// up to an hour ahead).
			var last int64
			require.NoError(b, a.DB.QueryRow(`SELECT MAX(updated_at) FROM incidents`).Scan(&last))
			touch := func(i int) {
				last++
				_, err := a.DB.Exec(`UPDATE incidents SET updated_at = $2 WHERE id = $1`,
					fmt.Sprintf("INC-B%07d", (i*7919)%benchIncidents), last)
				require.NoError(b, err)
			}

			b.Run("cached", func(b *testing.B) {
				for b.Loop() {
					gather()
				}
			})
			b.Run("changed", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					touch(i)
					b.StartTimer()
					gather()
				}
			})
			old, err := collector.New(a.DB, collector.Options{Automation: unversioned{runbookAutomation{db: a.DB}}},
				a.Logger.With("component", "collector"))
			require.NoError(b, err)
			gatherOld := gatherer(old)
			gatherOld()
			b.Run("uncached", func(b *testing.B) {
				for b.Loop() {
					gatherOld()
				}
			})
		})
	}
}
