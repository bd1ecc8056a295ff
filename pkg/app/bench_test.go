package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/receiver"
	"github.com/rootuip/sre/pkg/store"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// The benchmarks of this file run the whole sred in-process, as cmd/sred
// builds it (New with every module, its mux behind a real HTTP server on
// 127.0.0.1, all its goroutines running), with the configuration below: an
// escalation policy paging through the webhook channel, acknowledge links,
// silences on acknowledge against a real Alertmanager, and a runbook with
// an http step for every alert of the benchmark. Notifications and runbook
// calls go to a real HTTP sink on 127.0.0.1.
const benchConfig = `global:
  external_url: http://sred.example.com
  incident_id_prefix: INC
webhook:
  bearer_token: bench-token
incidents:
  auto_resolve: true
alertmanager:
  url: {{AM}}
  reconcile_interval: 1m
  silence_on_ack: true
  silence_on_snooze: true
oncall:
  users:
    - {name: alice, email: alice@example.com}
    - {name: bob, email: bob@example.com}
escalation:
  severities:
    CRITICAL: {channels: [webhook]}
    HIGH: {channels: [webhook]}
    MEDIUM: {channels: [webhook]}
    LOW: {channels: [webhook]}
  policies:
    - name: bench
      matchers: ['alertname="HighErrorRate"']
      levels:
        - {after: 0s, users: [alice], channels: [webhook]}
        - {after: 10m, users: [bob], channels: [webhook]}
notifications:
  ack_secret: bench-ack-secret
  webhook:
    url: {{SINK}}/notify
    secret: bench-sink-secret
runbooks:
  files: [{{RUNBOOKS}}/*.yml]
  rate_limit: {per_hour: 0, per_target_per_hour: 0}
  http_endpoints:
    sink:
      url: {{SINK}}
`

const benchRunbook = `name: mitigate-errors
description: Ask the service to shed load.
matchers:
  - alertname="HighErrorRate"
severities: [CRITICAL]
labels:
  service: 'svc-[0-9]{1,8}'
target: '{{ .Labels.service }}'
steps:
  - name: shed-load
    http:
      endpoint: sink
      method: POST
      path: /shed
      expect_status: [200]
`

// benchSink answers every notification and runbook call with 200 and
// counts them.
type benchSink struct {
	srv   *httptest.Server
	calls atomic.Int64
}

func newBenchSink(b *testing.B) *benchSink {
	s := &benchSink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		s.calls.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	b.Cleanup(s.srv.Close)
	return s
}

// startAlertmanager starts the real Alertmanager sred talks to (silences,
// reconciliation), once per benchmark and shared by its sub-benchmarks.
func startAlertmanager(b *testing.B) *tu.Process {
	return tu.StartAlertmanager(b, tu.AlertmanagerOptions{Config: "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n"})
}

// startBench builds sred on backend ("sqlite" or "postgres"), calls
// prepare (when not nil) with the migrated store before any goroutine
// runs, then serves its mux and runs its actors until the benchmark ends.
func startBench(b *testing.B, am *tu.Process, backend string, prepare func(a *App)) (*App, *httptest.Server, *benchSink) {
	b.Helper()
	sink := newBenchSink(b)
	dir := b.TempDir()
	rbDir := filepath.Join(dir, "runbooks")
	require.NoError(b, os.MkdirAll(rbDir, 0o755))
	require.NoError(b, os.WriteFile(filepath.Join(rbDir, "mitigate-errors.yml"), []byte(benchRunbook), 0o644))
	cfg := strings.NewReplacer("{{AM}}", am.URL, "{{SINK}}", sink.srv.URL, "{{RUNBOOKS}}", rbDir).Replace(benchConfig)
	cfgFile := filepath.Join(dir, "sred.yml")
	require.NoError(b, os.WriteFile(cfgFile, []byte(cfg), 0o644))
	o := Options{ConfigFile: cfgFile, StoragePath: filepath.Join(dir, "data")}
	if backend == "postgres" {
		o.PostgresURL = tu.PostgresSchemaURL(b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, o)
	if err != nil {
		cancel()
		b.Fatalf("start sred: %v", err)
	}
	if prepare != nil {
		prepare(a)
	}
	srv := httptest.NewServer(a.Mux)
	var wg sync.WaitGroup
	for _, act := range a.Actors() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := act.Execute(ctx); err != nil && ctx.Err() == nil {
				b.Errorf("actor %s: %v", act.Name, err)
			}
		}()
	}
	b.Cleanup(func() {
		cancel()
		wg.Wait()
		srv.Close()
		a.Close()
	})
	return a, srv, sink
}

// benchIncidents is how many incidents the /metrics benchmark stores.
const benchIncidents = 100_000

// storeIncidents writes n incidents with multi-row INSERTs in one
// transaction, the way they
// would have accumulated over about 18 months: 20 services, the four
// severities, 1% still open, a third with their post-mortem done.
func storeIncidents(b *testing.B, db *store.DB, n int) {
	b.Helper()
	sev := []string{"CRITICAL", "HIGH", "MEDIUM", "LOW"}
	now := time.Now()
	t0 := now.Add(-time.Duration(n) * 7 * time.Minute)
	// Rows per INSERT (13 parameters a row). SQLite looks $N parameters up
	// by name, a linear search each: a statement of a few thousand costs
	// more than many short statements in one transaction.
	per := 500
	if db.Dialect == store.SQLite {
		per = 20
	}
	tx, err := db.Begin()
	require.NoError(b, err)
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
			args = append(args, fmt.Sprintf("INC-B%07d", i), "incident", fmt.Sprintf("service-%02d", i%20), sev[i%4], status,
				mitigated, created-int64(i%600)*1000, created, ack, res, rec, pm, created+int64(i%3600)*1000+60000)
		}
		if _, err := tx.Exec(sb.String(), args...); err != nil {
			_ = tx.Rollback()
			b.Fatalf("store incidents %d-%d: %v", start, min(start+per, n)-1, err)
		}
	}
	require.NoError(b, tx.Commit())
}

// BenchmarkMetricsScrape times GET /metrics of sred over real HTTP with
// 100,000 stored incidents: the whole registry (incident metrics rolled up
// from the store, escalation, notification, runbook, reconciliation, Go
// and process collectors) in the text exposition format, as Prometheus
// scrapes it. The first scrape, which rolls the stored incidents up, is
// not timed; every timed scrape reads the rolled-up aggregates.
func BenchmarkMetricsScrape(b *testing.B) {
	am := startAlertmanager(b)
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			var stored time.Duration
			_, srv, _ := startBench(b, am, backend, func(a *App) {
				began := time.Now()
				storeIncidents(b, a.DB, benchIncidents)
				stored = time.Since(began)
			})
			client := &http.Client{}
			scrape := func() []byte {
				req, err := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
				require.NoError(b, err)
				req.Header.Set("Accept", "text/plain;version=0.0.4")
				resp, err := client.Do(req)
				require.NoError(b, err)
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.NoError(b, err)
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
				}
				return body
			}
			// Once the stored incidents are rolled up (by the first scrapes
			// and the background rollup), a scrape counts every resolved
			// incident once.
			resolvedIn := func(body []byte) (uint64, int) {
				parser := expfmt.NewTextParser(model.UTF8Validation)
				mfs, err := parser.TextToMetricFamilies(bytes.NewReader(body))
				require.NoError(b, err)
				var n uint64
				for _, m := range mfs["sre_incident_time_to_resolve_seconds"].GetMetric() {
					n += m.GetHistogram().GetSampleCount()
				}
				return n, len(mfs)
			}
			const want = uint64(benchIncidents - benchIncidents/100)
			var body []byte
			var families int
			began := time.Now()
			for {
				body = scrape()
				var got uint64
				if got, families = resolvedIn(body); got == want {
					break
				}
				if time.Since(began) > 5*time.Minute {
					b.Fatalf("after %s, /metrics counts %d resolved incidents in sre_incident_time_to_resolve_seconds, want %d", time.Since(began), got, want)
				}
				time.Sleep(500 * time.Millisecond)
			}
			b.Logf("%s: %d incidents stored in %s, rolled up in %s", backend, benchIncidents, stored.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))

			b.ResetTimer()
			for b.Loop() {
				body = scrape()
			}
			b.ReportMetric(float64(len(body)), "bytes/scrape")
			b.ReportMetric(float64(families), "families")
		})
	}
}

// benchDelivery is a firing notification of group g with 10 alerts, the
// shape receiver's benchmark uses.
func benchDelivery(g int) []byte {
	start := time.Date(2026, 11, 27, 11, 0, 0, 0, time.UTC)
	svc := fmt.Sprintf("svc-%d", g)
	m := receiver.Message{
		Version: "4", Status: "firing", Receiver: "sred", ExternalURL: "http://alertmanager:9093",
		GroupKey:          fmt.Sprintf(`{}:{alertname="HighErrorRate", service=%q}`, svc),
		GroupLabels:       map[string]string{"alertname": "HighErrorRate", "service": svc},
		CommonLabels:      map[string]string{"alertname": "HighErrorRate", "service": svc, "severity": "critical"},
		CommonAnnotations: map[string]string{"summary": "error rate above 5%"},
	}
	for i := range 10 {
		m.Alerts = append(m.Alerts, receiver.Alert{
			Status:      "firing",
			Labels:      map[string]string{"alertname": "HighErrorRate", "service": svc, "severity": "critical", "instance": fmt.Sprintf("10.0.0.%d:8080", i)},
			Annotations: map[string]string{"summary": "error rate above 5%", "runbook_url": "https://runbooks.example.com/high-error-rate"},
			StartsAt:    start, GeneratorURL: "http://prometheus:9090/graph",
			Fingerprint: fmt.Sprintf("%08x%08x", g, i),
		})
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// BenchmarkAppWebhook drives sred's POST /api/v1/webhook/alertmanager over
// real HTTP with 16 concurrent senders of deliveries of 10 alerts each,
// with every hook sred registers (escalation, silences, runbooks) and all
// its goroutines running (escalation worker, notification sender, runbook
// runner, rollup), and reports deliveries/s and p50/p99 latency:
//
//   - new: every delivery opens an incident, whose hooks schedule the
//     escalation, start the runbook and record silences' state; the workers
//     then page level 0 and run the runbook's http step in the background;
//   - repeat: deliveries of 200 open groups again (repeat_interval, HA
//     peers): duplicates.
func BenchmarkAppWebhook(b *testing.B) {
	am := startAlertmanager(b)
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, mode := range []string{"new", "repeat"} {
			b.Run(backend+"/"+mode, func(b *testing.B) { benchAppWebhook(b, am, backend, mode) })
		}
	}
}

func benchAppWebhook(b *testing.B, am *tu.Process, backend, mode string) {
	a, srv, sink := startBench(b, am, backend, nil)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	url := srv.URL + receiver.Path
	deliver := func(body []byte) error {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer bench-token")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("delivery answered %d: %s", resp.StatusCode, out)
		}
		return nil
	}
	const groups = 200
	var payloads [][]byte
	if mode == "repeat" {
		for g := range groups {
			payloads = append(payloads, benchDelivery(g))
			require.NoError(b, deliver(payloads[g]))
		}
	} else {
		// Encoded before the clock starts: the client's work is not sred's.
		for i := range b.N {
			payloads = append(payloads, benchDelivery(1_000_000+i))
		}
	}
	var before int
	require.NoError(b, a.DB.QueryRow(`SELECT COUNT(*) FROM incidents`).Scan(&before))

	var next atomic.Int64
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	var failed atomic.Pointer[error]
	b.SetParallelism(8) // 16 concurrent senders on 2 cores
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			body := payloads[int(next.Add(1)-1)%len(payloads)]
			s := time.Now()
			if err := deliver(body); err != nil {
				failed.CompareAndSwap(nil, &err)
				return
			}
			local = append(local, time.Since(s))
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}

	// Every new delivery opened one incident and its hooks wrote their rows.
	var after, escalations, runs int
	require.NoError(b, a.DB.QueryRow(`SELECT COUNT(*) FROM incidents`).Scan(&after))
	require.NoError(b, a.DB.QueryRow(`SELECT COUNT(*) FROM escalation_state`).Scan(&escalations))
	require.NoError(b, a.DB.QueryRow(`SELECT COUNT(*) FROM runbook_runs`).Scan(&runs))
	wantNew := 0
	if mode == "new" {
		wantNew = len(lat)
	}
	require.Equal(b, wantNew, after-before, "incidents opened by the timed deliveries")
	require.Equal(b, after, escalations, "incidents with an escalation")
	require.Equal(b, after, runs, "incidents with a runbook run")

	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.Logf("%s/%s: %d deliveries; %d notification and runbook calls reached the sink so far", backend, mode, len(lat), sink.calls.Load())
}
