package collector

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rootuip/sre/pkg/clock"
)

// versionedAutomation counts its reads; its ratios and version are set by
// the test.
type versionedAutomation struct {
	mu       sync.Mutex
	version  string
	coverage float64
	verErr   error
	reads    int
}

func (v *versionedAutomation) set(version string, coverage float64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.version, v.coverage = version, coverage
}

func (v *versionedAutomation) AutomationVersion(context.Context) (string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.version, v.verErr
}

func (v *versionedAutomation) AutomationRatios(context.Context) (float64, float64, bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.reads++
	return v.coverage, 1 - v.coverage, true, nil
}

func (v *versionedAutomation) readCount() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.reads
}

// A versioned source is read again only when its version changes or the
// ratios are older than AutomationMaxAge on the collector's clock; the
// background rollup reads it, once its clock reaches the next round and not
// before, so that scrapes find the ratios current; a failing version check fails the
// part and exports nothing.
func TestAutomationVersionedCache(t *testing.T) {
	db := memoryStore(t)
	src := &versionedAutomation{}
	src.set("v1", 0.5)
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c := newCollector(t, db, Options{Automation: src, AutomationMaxAge: time.Hour, RollupInterval: time.Minute, Clock: clk})
	coverage := func() float64 {
		t.Helper()
		return testutil.ToFloat64(onlyCollector{c, MetricAutomationCoverage})
	}

	for _, step := range []struct {
		name    string
		change  func()
		want    float64
		wantRds int
	}{
		{"first scrape reads", func() {}, 0.5, 1},
		{"same version: served from the last read", func() { src.set("v1", 0.9) }, 0.5, 1},
		{"new version: read again", func() { src.set("v2", 0.9) }, 0.9, 2},
		{"same version again", func() {}, 0.9, 2},
	} {
		step.change()
		if got := coverage(); got != step.want || src.readCount() != step.wantRds {
			t.Fatalf("%s: coverage %g after %d reads, want %g after %d", step.name, got, src.readCount(), step.want, step.wantRds)
		}
	}

	// Older than the max age (on the collector's clock): read again even
	// with the same version.
	aged := newCollector(t, db, Options{Automation: src, AutomationMaxAge: time.Minute, Clock: clk})
	before := src.readCount()
	testutil.CollectAndCount(aged, MetricAutomationCoverage)
	clk.Advance(59 * time.Second)
	testutil.CollectAndCount(aged, MetricAutomationCoverage)
	if got := src.readCount() - before; got != 1 {
		t.Errorf("%d reads for two scrapes 59s apart with a 1m max age, want 1", got)
	}
	clk.Advance(time.Second)
	testutil.CollectAndCount(aged, MetricAutomationCoverage)
	if got := src.readCount() - before; got != 2 {
		t.Errorf("%d reads for three scrapes over 1m with a 1m max age, want 2", got)
	}

	// The background loop reads a new version without any scrape, when
	// its clock reaches the next round.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	waitRound := func() {
		t.Helper()
		// A guard against a hang, not a timing.
		wctx, stop := context.WithTimeout(context.Background(), time.Minute)
		defer stop()
		if err := clk.WaitWaiters(wctx, 1); err != nil {
			t.Fatalf("Run did not wait on its clock: %v", err)
		}
	}
	// The first round runs at once, then Run waits for the clock.
	waitRound()
	src.set("v3", 0.25)
	before = src.readCount()
	clk.Advance(59 * time.Second)
	if n, _ := clk.Waiters(); n != 1 || src.readCount() != before {
		t.Fatalf("the background loop ran before its interval: %d timers pending, %d reads", n, src.readCount()-before)
	}
	clk.Advance(time.Second)
	// The second round re-reads the ratios, then waits for the clock again.
	waitRound()
	cancel()
	<-done
	if src.readCount() == before {
		t.Fatal("the background loop did not read the new version")
	}
	reads := src.readCount()
	if got := coverage(); got != 0.25 || src.readCount() != reads {
		t.Errorf("after the background read: coverage %g, %d more reads in the scrape; want 0.25 and none", got, src.readCount()-reads)
	}

	// A failing version check fails the part.
	src.mu.Lock()
	src.verErr = errors.New("store down")
	src.mu.Unlock()
	if n := testutil.CollectAndCount(c, MetricAutomationCoverage, MetricToil); n != 0 {
		t.Errorf("%d automation samples while the version check fails", n)
	}
	want := "# HELP sre_collector_scrape_success 1 if a part of the store collector succeeded in this scrape, 0 if it failed (it then exports nothing, never zeros).\n" +
		"# TYPE sre_collector_scrape_success gauge\n" +
		"sre_collector_scrape_success{collector=\"aggregates\"} 1\nsre_collector_scrape_success{collector=\"automation\"} 0\n" +
		"sre_collector_scrape_success{collector=\"open\"} 1\nsre_collector_scrape_success{collector=\"rollup\"} 1\n"
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), MetricScrapeSuccess); err != nil {
		t.Error(err)
	}
}

// onlyCollector exposes one family of a collector, for testutil.ToFloat64.
type onlyCollector struct {
	c    prometheus.Collector
	name string
}

func (o onlyCollector) Describe(ch chan<- *prometheus.Desc) { o.c.Describe(ch) }

func (o onlyCollector) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric)
	go func() { o.c.Collect(all); close(all) }()
	for m := range all {
		if strings.Contains(m.Desc().String(), `fqName: "`+o.name+`"`) {
			ch <- m
		}
	}
}
