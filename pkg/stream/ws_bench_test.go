package stream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/events"
)

// BenchmarkWSBurst publishes bursts of 10,000 events on the event bus of a
// hub serving real WebSocket clients over loopback TCP, and measures:
//
//   - ingest_ev/s: events published and numbered into the replay ring per
//     second (from the first Publish of the burst until the hub has
//     ingested the last event), the figure that must not depend on the
//     subscribers;
//   - drain_ms: from the first Publish until every reading client received
//     every event it subscribed to (or was dropped);
//   - deliveries/s, dropped_clients (sre_stream_dropped_clients_total) and
//     heap_MiB (live heap after the burst, after a GC).
//
// Subscribers: none; 1,000 each filtering one of 100 services (100 events a
// burst each), reading one event per message or (/batch) asking for
// batched messages (JSON arrays). Slow clients being dropped is
// TestStreamWebSocketSlowClientDropped.
func BenchmarkWSBurst(b *testing.B) {
	for _, c := range []struct {
		name              string
		subs, slow        int
		filtered, batched bool
	}{
		{"subscribers=0", 0, 0, false, false},
		{"subscribers=1000/filtered", 1000, 0, true, false},
		{"subscribers=1000/filtered/batch", 1000, 0, true, true},
	} {
		b.Run(c.name, func(b *testing.B) { benchWSBurst(b, c.subs, c.slow, c.filtered, c.batched) })
	}
}

const burst = 10000

func benchWSBurst(b *testing.B, subs, slow int, filtered, batched bool) {
	bus := events.NewBus(1024, nil)
	hub, reg, srv := serveBus(b, bus)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url := strings.Replace(srv.URL, "http://", "ws://", 1) + "/api/v1/stream"

	var received atomic.Int64
	var wg sync.WaitGroup
	conns := make([]*websocket.Conn, 0, subs)
	counts := make([]atomic.Int64, subs)
	ended := make([]atomic.Bool, subs)
	for i := range subs {
		c, _, err := websocket.Dial(ctx, url, nil)
		require.NoError(b, err)
		conns = append(conns, c)
		sub := `{"types":["incident."]}`
		if filtered {
			sub = fmt.Sprintf(`{"services":["svc-%d"],"batch":%t}`, i%100, batched)
		}
		require.NoError(b, c.Write(ctx, websocket.MessageText, []byte(sub)))
		_, _, err = c.Read(ctx)
		require.NoError(b, err)
		if i < slow {
			ended[i].Store(true) // subscribed, never reads again
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer ended[i].Store(true)
			for {
				_, msg, err := c.Read(ctx)
				if err != nil {
					return
				}
				k := int64(1)
				if batched {
					var evs []json.RawMessage
					if json.Unmarshal(msg, &evs) != nil {
						return
					}
					k = int64(len(evs))
				}
				counts[i].Add(k)
				received.Add(k)
			}
		}()
	}
	perClient := int64(burst)
	if filtered {
		perClient = burst / 100
	}
	data := make([]map[string]any, 64)
	for i := range data {
		data[i] = map[string]any{"title": "Checkout latency over SLO", "severity": "HIGH", "status": "triggered", "n": i}
	}

	var ingest, drain time.Duration
	b.ResetTimer()
	for n := range b.N {
		start := time.Now()
		for i := range burst {
			bus.Publish(events.Event{Type: "incident.updated", Service: fmt.Sprintf("svc-%d", i%100),
				IncidentID: "INC-2026-0042", Data: data[i%len(data)]})
		}
		for hub.Last() < uint64((n+1)*burst) {
			runtime.Gosched()
		}
		ingest += time.Since(start)
		// Every client got the burst, or its connection ended (dropped).
		want := int64(n+1) * perClient
		for i := range subs {
			for counts[i].Load() < want && !ended[i].Load() {
				time.Sleep(time.Millisecond)
			}
		}
		drain += time.Since(start)
	}
	b.StopTimer()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(b.N*burst)/ingest.Seconds(), "ingest_ev/s")
	b.ReportMetric(float64(drain.Milliseconds())/float64(b.N), "drain_ms")
	b.ReportMetric(float64(received.Load())/drain.Seconds(), "deliveries/s")
	b.ReportMetric(testutil.ToFloat64(counter(b, reg, "sre_stream_dropped_clients_total")), "dropped_clients")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap_MiB")
	for _, c := range conns {
		c.CloseNow()
	}
	cancel()
	wg.Wait()
}
