package scaling

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/targetlock"
	sretest "github.com/rootuip/sre/pkg/testutil"
)

// TestQuerySourceDownLoggedOnce: while Prometheus does not answer, every
// evaluation of every policy fails its query; the controller warns once
// when the source goes down and logs once when it is back, and counts
// each failed query in sre_scaling_query_failures_total.
func TestQuerySourceDownLoggedOnce(t *testing.T) {
	prom := sretest.StartPrometheus(t, sretest.PrometheusOptions{Config: "global: {}\n"})
	target, err := url.Parse(prom.URL)
	if err != nil {
		t.Fatal(err)
	}
	// Prometheus behind a switch: down answers 503 as a proxy in front
	// of a stopped Prometheus would.
	var down atomic.Bool
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "Prometheus is down", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	client, err := api.NewClient(api.Config{Address: front.URL})
	if err != nil {
		t.Fatal(err)
	}
	var policies []*Policy
	for _, name := range []string{"api", "web", "worker"} {
		p, err := Parse([]byte(`service: `+name+`
target: {action: {http: {endpoint: demo, path: /scale}}}
min_instances: 1
max_instances: 4
metric: {type: promql, query: vector(50)}
interval: 1s
scale_up: {threshold: 80}
scale_down: {threshold: 30}
`), name+".yml")
		if err != nil {
			t.Fatal(err)
		}
		policies = append(policies, p)
	}
	sretest.Backends(t, [][]store.Migration{Migrations, targetlock.Migrations}, func(t *testing.T, db *store.DB) {
		logs := &sretest.SyncBuffer{}
		reg := prometheus.NewRegistry()
		clk := clock.NewManual(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
		c := New(Options{DB: db, Prometheus: v1.NewAPI(client), Bus: events.NewBus(16, nil), Clock: clk, Registerer: reg,
			Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
		c.SetConfig(DefaultConfig, policies)
		failures := func() float64 {
			return testutil.ToFloat64(c.m.queryErrs)
		}
		evaluate := func(seconds int) (records int) {
			for range seconds {
				records += len(c.EvaluateDue(context.Background()))
				clk.Advance(time.Second)
			}
			return records
		}

		if n := evaluate(2); n != 2*len(policies) {
			t.Fatalf("%d decisions with Prometheus up, want %d", n, 2*len(policies))
		}
		down.Store(true)
		if n := evaluate(5); n != 0 {
			t.Fatalf("%d decisions with Prometheus down", n)
		}
		if got := failures(); got != float64(5*len(policies)) {
			t.Fatalf("sre_scaling_query_failures_total = %g, want %d", got, 5*len(policies))
		}
		if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
			t.Fatalf("%d warnings over 5 failing rounds of %d policies, want 1:\n%s", n, len(policies), logs.String())
		}
		if n := strings.Count(logs.String(), "Scaling queries fail"); n != 1 {
			t.Fatalf("the warning does not say the queries fail:\n%s", logs.String())
		}
		down.Store(false)
		if n := evaluate(3); n != 3*len(policies) {
			t.Fatalf("%d decisions once Prometheus is back, want %d", n, 3*len(policies))
		}
		if n := strings.Count(logs.String(), "Scaling queries answer again"); n != 1 {
			t.Fatalf("want one line saying the queries answer again:\n%s", logs.String())
		}
		if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
			t.Fatalf("%d warnings, want 1:\n%s", n, logs.String())
		}
		if got := failures(); got != float64(5*len(policies)) {
			t.Fatalf("sre_scaling_query_failures_total = %g after recovery, want %d", got, 5*len(policies))
		}
	})
}
