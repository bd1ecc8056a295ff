package ui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/scaling"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/ui"
)

// replayed serves a real backtest (scaling.Backtest over a day of
// samples) to the scaling page.
type replayed struct {
	p       *scaling.Policy
	samples []scaling.Sample
	from    time.Time
}

func (r replayed) Statuses(context.Context) ([]scaling.PolicyStatus, error) {
	return []scaling.PolicyStatus{{Policy: r.p, State: scaling.State{Instances: 3}}}, nil
}

func (r replayed) Decisions(context.Context, string, time.Time, int) ([]scaling.Record, error) {
	return nil, nil
}

func (r replayed) Backtest(_ context.Context, name, _, _ string) (scaling.BacktestResult, int, error) {
	return scaling.Backtest(r.p, r.samples, r.from, r.from.Add(2*time.Hour), r.p.InitialInstances), http.StatusOK, nil
}

// TestScalingPage graphs a backtest as server-rendered SVG: the metric
// with its thresholds, the instances with their bounds, and the decisions.
func TestScalingPage(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		p, err := scaling.Parse([]byte(`service: api
target: {action: {exec: {command: [scale, "{{ .Vars.replicas }}"]}}}
min_instances: 2
max_instances: 6
metric: {type: cpu}
interval: 1m
scale_up: {threshold: 80, cooldown: 5m, stabilization: 2m}
scale_down: {threshold: 30, cooldown: 5m, stabilization: 5m}
`), "api.yml")
		require.NoError(t, err)
		from := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
		var samples []scaling.Sample
		for i := -10; i <= 120; i++ {
			v := 50.0
			if i >= 20 && i < 60 {
				v = 92
			} else if i >= 80 {
				v = 12
			}
			samples = append(samples, scaling.Sample{Time: from.Add(time.Duration(i) * time.Minute), Value: v})
		}
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		mux := http.NewServeMux()
		ui.New(ui.Sources{Incidents: svc, Scaling: replayed{p: p, samples: samples, from: from}},
			ui.Options{Extra: []ui.NavItem{{Name: "Scaling", Path: "/scaling"}}}).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()

		code, body := get(t, srv.URL+"/scaling?policy=api&from=2h")
		require.Equal(t, http.StatusOK, code, body)
		require.Equal(t, 2, strings.Count(body, `<svg class="chart"`))
		require.Equal(t, 2, strings.Count(body, `<polyline class="series"`))
		for _, want := range []string{"Metric of api", "Instances of api", ">scale up</text>", ">scale down</text>", ">max</text>",
			"cpu 92 &gt; 80 for 2m0s: 2 -&gt; 3", "held: up", "time above 80: 40m0s", `href="/scaling"`} {
			require.Contains(t, body, want)
		}

		code, body = get(t, srv.URL+"/scaling")
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, `<option value="api" selected>`)

		// One burst above the threshold, long enough for one scale-up: a
		// count of one is singular ("1 action", not "1 actions").
		var burst []scaling.Sample
		for i := -10; i <= 120; i++ {
			v := 50.0
			if i >= 20 && i < 24 {
				v = 92
			}
			burst = append(burst, scaling.Sample{Time: from.Add(time.Duration(i) * time.Minute), Value: v})
		}
		one := http.NewServeMux()
		ui.New(ui.Sources{Incidents: svc, Scaling: replayed{p: p, samples: burst, from: from}},
			ui.Options{Extra: []ui.NavItem{{Name: "Scaling", Path: "/scaling"}}}).Register(one)
		srvOne := httptest.NewServer(one)
		defer srvOne.Close()
		code, body = get(t, srvOne.URL+"/scaling?policy=api&from=2h")
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, "<p>1 action (1 up, 0 down)")
		require.Contains(t, body, "would take 1 action (0 fewer)")
	})
}

// failedAction is replayed with one stored action that failed on a
// program that is not there.
type failedAction struct{ replayed }

const missingScaler = "/nonexistent/sred-test/bin/scale"

func (failedAction) Decisions(context.Context, string, time.Time, int) ([]scaling.Record, error) {
	return []scaling.Record{{ID: 1, Decision: scaling.Decision{Policy: "api", Service: "api", Direction: "up", From: 2, To: 3},
		Result: scaling.ResultFailed, Detail: "start " + missingScaler + ": fork/exec " + missingScaler + ": no such file or directory"}}, nil
}

// TestScalingPagePathsShownToAdminsOnly: a failed scaling action is shown
// to a viewer with the program's base name only, to an admin whole.
func TestScalingPagePathsShownToAdminsOnly(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		p, err := scaling.Parse([]byte("service: api\ntarget: {action: {exec: {command: [scale, \"{{ .Vars.replicas }}\"]}}}\nmin_instances: 2\nmax_instances: 6\nmetric: {type: cpu}\nscale_up: {threshold: 80}\nscale_down: {threshold: 30}\n"), "api.yml")
		require.NoError(t, err)
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		src := failedAction{replayed{p: p, from: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}}
		requirePathsShownToAdminsOnly(t, ui.Sources{Incidents: svc, Scaling: src}, []string{"/scaling"},
			"fork/exec "+missingScaler, "fork/exec scale: no such file or directory", "/nonexistent/")
	})
}
