package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/store"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// benchPayload is a firing notification of group g with 10 alerts.
func benchPayload(g int) []byte {
	start := time.Date(2026, 11, 27, 11, 0, 0, 0, time.UTC)
	m := Message{
		Version: "4", Status: "firing", Receiver: "sred", ExternalURL: "http://alertmanager:9093",
		GroupKey:          fmt.Sprintf(`{}:{alertname="HighErrorRate", service="svc-%d"}`, g),
		GroupLabels:       map[string]string{"alertname": "HighErrorRate", "service": fmt.Sprintf("svc-%d", g)},
		CommonLabels:      map[string]string{"alertname": "HighErrorRate", "service": fmt.Sprintf("svc-%d", g), "severity": "critical"},
		CommonAnnotations: map[string]string{"summary": "error rate above 5%"},
	}
	for i := 0; i < 10; i++ {
		m.Alerts = append(m.Alerts, Alert{
			Status:      "firing",
			Labels:      map[string]string{"alertname": "HighErrorRate", "service": fmt.Sprintf("svc-%d", g), "severity": "critical", "instance": fmt.Sprintf("10.0.0.%d:8080", i)},
			Annotations: map[string]string{"summary": "error rate above 5%", "runbook_url": "https://runbooks.example.com/high-error-rate"},
			StartsAt:    start, GeneratorURL: "http://prometheus:9090/graph",
			Fingerprint: fmt.Sprintf("%08x%08x", g, i),
		})
	}
	b, _ := json.Marshal(m)
	return b
}

// BenchmarkWebhook drives POST /api/v1/webhook/alertmanager over real HTTP
// with concurrent deliveries of 10 alerts each, durability on (SQLite WAL
// synchronous=FULL; PostgreSQL default synchronous_commit=on), and reports
// deliveries/s and p50/p99 latency.
//
//   - new: every delivery opens a new incident (10 alerts, 12 timeline entries).
//   - repeat: deliveries of 200 open groups again (repeat_interval, HA peers):
//     duplicates, answered after the group's lock and a read.
func BenchmarkWebhook(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, mode := range []string{"new", "repeat"} {
			b.Run(backend+"/"+mode, func(b *testing.B) {
				var db *store.DB
				var err error
				if backend == "sqlite" {
					db, err = store.OpenSQLite(context.Background(), b.TempDir())
				} else {
					db, err = store.OpenPostgres(context.Background(), tu.PostgresSchemaURL(b), store.PostgresOptions{})
				}
				require.NoError(b, err)
				defer db.Close()
				require.NoError(b, db.Migrate(context.Background(), migrations...))
				e := newBenchEnv(b, db)
				const groups = 200
				if mode == "repeat" {
					for g := 0; g < groups; g++ {
						e.deliver(b, benchPayload(g))
					}
				}
				// Payloads are encoded before the clock starts: the client's
				// work is not sred's.
				var payloads [][]byte
				if mode == "repeat" {
					for g := 0; g < groups; g++ {
						payloads = append(payloads, benchPayload(g))
					}
				} else {
					for i := 0; i < b.N; i++ {
						payloads = append(payloads, benchPayload(i+1_000_000))
					}
				}
				var next atomic.Int64
				var mu sync.Mutex
				lat := make([]time.Duration, 0, b.N)
				b.SetParallelism(8) // 16 concurrent senders on 2 cores
				b.ResetTimer()
				t0 := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					local := make([]time.Duration, 0, 1024)
					for pb.Next() {
						n := int(next.Add(1)) - 1
						body := payloads[n%len(payloads)]
						s := time.Now()
						e.deliver(b, body)
						local = append(local, time.Since(s))
					}
					mu.Lock()
					lat = append(lat, local...)
					mu.Unlock()
				})
				elapsed := time.Since(t0)
				b.StopTimer()
				sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
				pct := func(p float64) float64 {
					return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) / 1000
				}
				b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "deliveries/s")
				b.ReportMetric(pct(0.50), "p50-ms")
				b.ReportMetric(pct(0.99), "p99-ms")
			})
		}
	}
}

type benchEnv struct {
	url    string
	client *http.Client
}

func newBenchEnv(b *testing.B, db *store.DB) *benchEnv {
	e := newEnv(b, db, Options{})
	return &benchEnv{url: e.srv.URL + Path, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
}

func (e *benchEnv) deliver(b *testing.B, body []byte) {
	resp, err := e.client.Post(e.url, "application/json", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("delivery answered %d", resp.StatusCode)
	}
}
