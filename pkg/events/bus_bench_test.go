package events

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkBusFanOut publishes b.N events to a bus with N subscribers, each
// draining its channel in its own goroutine (as the live stream's clients do),
// and waits until every event was either delivered or dropped.
//
// Two publishers are measured:
//   - lossless: the publisher sends bursts of 128 events (half a subscriber
//     buffer) and waits for the subscribers to catch up before the next
//     burst, so nothing is dropped. ns/op is the wall time per event fully
//     delivered to every subscriber; p50/p99 are the publish-to-receive
//     latencies in microseconds.
//   - saturated: the publisher never waits. ns/op is the cost of one Publish
//     call under overload and drop_% the share of deliveries the bus dropped
//     to keep the publisher from blocking.
//
// Both report deliveries/s, the events received by subscribers per second.
func BenchmarkBusFanOut(b *testing.B) {
	for _, mode := range []string{"lossless", "saturated"} {
		for _, subs := range []int{1, 10, 100, 1000} {
			b.Run(fmt.Sprintf("mode=%s/subscribers=%d", mode, subs), func(b *testing.B) {
				benchFanOut(b, subs, mode == "lossless")
			})
		}
	}
}

func benchFanOut(b *testing.B, subs int, lossless bool) {
	var dropped atomic.Int64
	bus := NewBus(256, func() { dropped.Add(1) })
	var received atomic.Int64
	lat := make([][]time.Duration, subs)
	var wg sync.WaitGroup
	cancels := make([]func(), subs)
	for i := range subs {
		ch, cancel := bus.Subscribe()
		cancels[i] = cancel
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := make([]time.Duration, 0, 1024)
			for ev := range ch {
				// Sample latencies (every 16th event) to keep the clock
				// reads from dominating the consumer.
				if ev.Data["seq"].(int)%16 == 0 {
					l = append(l, time.Since(ev.Time))
				}
				received.Add(1)
			}
			lat[i] = l
		}()
	}
	data := make([]map[string]any, 64)
	for i := range data {
		data[i] = map[string]any{"seq": i}
	}

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	const burst = 128
	for i := range b.N {
		if lossless && i%burst == 0 && i > 0 {
			target := int64(i) * int64(subs)
			for received.Load()+dropped.Load() < target {
				runtime.Gosched()
			}
		}
		bus.Publish(Event{
			Type:       "incident.updated",
			Time:       time.Now(),
			Service:    "api",
			IncidentID: "INC-2026-0001",
			Data:       data[i%len(data)],
		})
	}
	want := int64(b.N) * int64(subs)
	for received.Load()+dropped.Load() < want {
		time.Sleep(50 * time.Microsecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	for _, c := range cancels {
		c()
	}
	wg.Wait()

	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	b.ReportMetric(float64(received.Load())/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(100*float64(dropped.Load())/float64(want), "drop_%")
	if lossless && len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50_µs")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99_µs")
	}
}

// BenchmarkBusSubscribeChurn measures Subscribe plus cancel while events are
// being published to 100 other subscribers: the cost of a live-stream client
// connecting and leaving.
func BenchmarkBusSubscribeChurn(b *testing.B) {
	bus := NewBus(256, nil)
	var wg sync.WaitGroup
	var cancels []func()
	for range 100 {
		ch, cancel := bus.Subscribe()
		cancels = append(cancels, cancel)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range ch {
			}
		}()
	}
	stop := make(chan struct{})
	var pubWG sync.WaitGroup
	pubWG.Add(1)
	go func() {
		defer pubWG.Done()
		for {
			select {
			case <-stop:
				return
			default:
				bus.Publish(Event{Type: "incident.updated"})
			}
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		_, cancel := bus.Subscribe()
		cancel()
	}
	b.StopTimer()
	close(stop)
	pubWG.Wait()
	for _, c := range cancels {
		c()
	}
	wg.Wait()
}
