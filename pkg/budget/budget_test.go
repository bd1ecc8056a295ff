package budget_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/app"
	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/budget/budgettest"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	sreincident "github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/rulegen"
	"github.com/rootuip/sre/pkg/sla"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// The test data: every service serves exactly 10 requests per second (600 a
// minute) for the whole time; errors only happen in the incidents below.
const (
	reqPerMinute = 600.0
	objective    = 99.9
	errBudget    = 0.001
	period       = 30 * 24 * time.Hour
)

// totalPeriod is the number of requests in a 30d period: 10/s x 30d.
var totalPeriod = reqPerMinute / 60 * period.Seconds()

type incident struct {
	start, end time.Time // errors in the minutes ending in (start, end]
	perMinute  float64
}

func (i incident) errors() float64 { return i.perMinute * i.end.Sub(i.start).Minutes() }

type target struct {
	service, customer string
	incidents         []incident
}

const specs = `
apiVersion: sre.rootuip.io/v1
kind: ServiceLevelObjectives
service: %[1]s
slos:
  - name: availability
    objective: 99.9
    period: 30d
%[2]s    sli:
      events:
        errorSelector: http_requests_total{job="%[1]s",code=~"5.."}
        totalSelector: http_requests_total{job="%[1]s"}
`

func loadSpecs(t *testing.T) []*slo.Spec {
	t.Helper()
	var all []*slo.Spec
	for _, s := range []struct{ name, extra string }{
		{"api", "    groupBy: [customer]\n"},
		{"checkout", ""},
		{"payments", ""},
		// search has its own thresholds: green above 80%, red below 40%.
		{"search", "    budgetPolicy: {green: 80, yellow: 40}\n"},
		{"web", ""},
	} {
		sp, err := slo.Parse([]byte(fmt.Sprintf(specs, s.name, s.extra)), s.name+".yml")
		require.NoError(t, err)
		all = append(all, sp...)
	}
	return all
}

var targets []target

// TestWithPrometheus runs the tests that need the real Prometheus: it is
// started once (the backfill takes a while).
func TestWithPrometheus(t *testing.T) {
	srv, end := startProm(t)
	t.Run("budgets", func(t *testing.T) { testBudgetsFromRealPrometheus(t, srv, end) })
	t.Run("budget alert", func(t *testing.T) { testBudgetAlertGenerated(t, srv, end) })
	t.Run("gate", func(t *testing.T) { testGate(t, srv, end) })
	t.Run("poller", func(t *testing.T) { testPollerRecordsStateChanges(t, srv, end) })
	t.Run("exhaustion opens an incident", func(t *testing.T) { testExhaustionOpensIncident(t, srv, end) })
}

// A poll that sees a budget exhausted (payments, -50%) opens one CRITICAL
// incident for it, and for no other SLO; polling again opens no other.
func testExhaustionOpensIncident(t *testing.T, srv *budgettest.Server, end time.Time) {
	testutil.Backends(t, [][]store.Migration{sreincident.Migrations, budget.Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		incs, err := sreincident.NewService(db, sreincident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		s := budget.New(budget.Options{DB: db, Registerer: prometheus.NewRegistry(), Incidents: incs, Clock: clock.NewManual(end)})
		prom, err := budget.NewProm(srv.URL, commoncfg.DefaultHTTPClientConfig, 10*time.Second)
		require.NoError(t, err)
		require.NoError(t, s.Update(budget.DefaultConfig, loadSpecs(t), prom, nil))
		for poll := range 2 {
			require.NoError(t, s.Poll(ctx))
			page, err := incs.List(ctx, sreincident.Filter{})
			require.NoError(t, err)
			require.Len(t, page.Incidents, 1)
			inc := page.Incidents[0]
			require.Equal(t, "payments", inc.Service)
			require.Equal(t, sreincident.SeverityCritical, inc.Severity)
			require.Equal(t, budget.AlertExhausted, inc.Labels["alertname"])
			require.Equal(t, "availability", inc.Labels["slo"])
			// Its errors are ten days old: the first poll opens the
			// incident, the next sees it no longer burning and resolves it.
			want := sreincident.StatusTriggered
			if poll == 1 {
				want = sreincident.StatusResolved
			}
			require.Equal(t, want, inc.Status)
		}
	})
}

func startProm(t *testing.T) (*budgettest.Server, time.Time) {
	t.Helper()
	{
		end := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
		old := func(perMinute float64) incident {
			s := end.Add(-10 * 24 * time.Hour)
			return incident{s, s.Add(72 * time.Minute), perMinute}
		}
		targets = []target{
			{"web", "", []incident{old(72)}},       // 5184 errors: 20% of the budget
			{"search", "", []incident{old(144)}},   // 10368: 40%
			{"payments", "", []incident{old(540)}}, // 38880: 150%
			// checkout: 19728 + 3600 in a recent incident: 90%.
			{"checkout", "", []incident{old(274), {end.Add(-50 * time.Minute), end.Add(-40 * time.Minute), 360}}},
			{"api", "acme", []incident{old(108)}},   // 7776: 30%
			{"api", "globex", []incident{old(306)}}, // 22032: 85%
		}
		var series []budgettest.Series
		start := end.Add(-period - 2*time.Hour)
		for _, tg := range targets {
			tg := tg
			errInc := func(ts time.Time) float64 {
				for _, in := range tg.incidents {
					if ts.After(in.start) && !ts.After(in.end) {
						return in.perMinute
					}
				}
				return 0
			}
			lbl := func(code string) map[string]string {
				l := map[string]string{"job": tg.service, "code": code}
				if tg.customer != "" {
					l["customer"] = tg.customer
				}
				return l
			}
			series = append(series,
				budgettest.Series{Metric: "http_requests_total", Labels: lbl("200"), Start: start, Initial: 1e6,
					Inc: func(ts time.Time) float64 { return reqPerMinute - errInc(ts) }},
				budgettest.Series{Metric: "http_requests_total", Labels: lbl("500"), Start: start, Initial: 1e6, Inc: errInc},
			)
		}
		return budgettest.Start(t, budgettest.Options{Specs: loadSpecs(t), Series: series, End: end}), end
	}
}

// expectedRemaining is 1 - (errors / requests over the period) / budget.
func expectedRemaining(service, customer string) float64 {
	for _, tg := range targets {
		if tg.service == service && tg.customer == customer {
			e := 0.0
			for _, in := range tg.incidents {
				e += in.errors()
			}
			return 1 - e/totalPeriod/errBudget
		}
	}
	panic("no target " + service + "/" + customer)
}

func newService(t *testing.T, url string, db *store.DB, now time.Time, gate budget.GateConfig, reg prometheus.Registerer, bus *events.Bus) *budget.Service {
	t.Helper()
	s := budget.New(budget.Options{DB: db, Bus: bus, Registerer: reg, Clock: clock.NewManual(now)})
	cfg := budget.DefaultConfig
	cfg.Gate = gate
	prom, err := budget.NewProm(url, commoncfg.DefaultHTTPClientConfig, 10*time.Second)
	require.NoError(t, err)
	require.NoError(t, s.Update(cfg, loadSpecs(t), prom, nil))
	return s
}

func near(t *testing.T, want float64, got *float64, what string) {
	t.Helper()
	require.NotNil(t, got, what)
	require.InDelta(t, want, *got, 1e-9*math.Max(1, math.Abs(want)), what)
}

func testBudgetsFromRealPrometheus(t *testing.T, srv *budgettest.Server, end time.Time) {
	s := newService(t, srv.URL, nil, end, budget.DefaultGateConfig, nil, nil)
	sts, err := s.Statuses(context.Background(), end)
	require.NoError(t, err)

	byKey := map[string]budget.Status{}
	for _, st := range sts {
		byKey[st.Service+"/"+st.Group["customer"]] = st
	}
	require.Len(t, byKey, 6)
	for _, tc := range []struct {
		service, customer string
		state             slo.BudgetState
	}{
		{"web", "", slo.BudgetGreen},          // 80% remaining
		{"search", "", slo.BudgetYellow},      // 60%: green needs > 80% for search
		{"checkout", "", slo.BudgetRed},       // 10%
		{"payments", "", slo.BudgetExhausted}, // -50%
		{"api", "acme", slo.BudgetGreen},      // 70%
		{"api", "globex", slo.BudgetRed},      // 15%
	} {
		t.Run(tc.service+tc.customer, func(t *testing.T) {
			st, ok := byKey[tc.service+"/"+tc.customer]
			require.True(t, ok)
			rem := expectedRemaining(tc.service, tc.customer)
			near(t, rem, st.Budget.RemainingRatio, "remaining ratio")
			near(t, 1-rem, st.Budget.ConsumedRatio, "consumed ratio")
			near(t, 1-(1-rem)*errBudget, st.SLIAchieved, "SLI achieved")
			require.InDelta(t, errBudget*period.Minutes(), st.Budget.TotalMinutes, 1e-9)
			near(t, rem*errBudget*period.Minutes(), st.Budget.RemainingMinutes, "remaining minutes")
			near(t, totalPeriod, st.Budget.TotalEvents, "total events")
			near(t, (1-rem)*errBudget*totalPeriod, st.Budget.BadEvents, "bad events")
			near(t, errBudget*totalPeriod, st.Budget.AllowedBadEvents, "allowed bad events")
			require.Equal(t, tc.state, st.State)
			require.Equal(t, "30d", st.Period)
			require.Equal(t, 0.999, st.Objective)
		})
	}

	// Burn rates of checkout: the recent incident put 3600 errors in
	// (end-50m, end-40m]; a window W that covers it burns
	// (3600 / (10/s x W)) / budget; 5m and 30m windows do not see it.
	ck := byKey["checkout/"]
	want := map[string]float64{"5m": 0, "30m": 0}
	for _, w := range []time.Duration{time.Hour, 2 * time.Hour, 6 * time.Hour, 24 * time.Hour, 72 * time.Hour} {
		want[rulegen.WindowName(w)] = 3600 / (10 * w.Seconds()) / errBudget
	}
	require.Len(t, ck.BurnRates, len(want))
	for _, b := range ck.BurnRates {
		near(t, want[b.Window], b.Rate, "burn rate "+b.Window)
	}
	// Forecast at the 1h burn (100x): 10% of the budget lasts 0.1 x 30d / 100.
	require.Equal(t, "1h", ck.Forecast.Window)
	near(t, 0.1*period.Seconds()/100, ck.Forecast.SecondsLeft, "forecast")
	require.Equal(t, end.Add(2592*time.Second), *ck.Forecast.ExhaustedAt)
	// web burns nothing now: no exhaustion forecast.
	require.Nil(t, byKey["web/"].Forecast.ExhaustedAt)
	require.Equal(t, "not burning over 1h", byKey["web/"].Forecast.Message)
	// payments is overspent.
	require.Equal(t, "budget exhausted", byKey["payments/"].Forecast.Message)
}

// The 80%-consumed alert is generated: evaluated at the data's end, it
// fires exactly for the SLOs with more than 80% consumed.
func testBudgetAlertGenerated(t *testing.T, srv *budgettest.Server, end time.Time) {
	var exprs []string
	for _, g := range srv.Groups {
		for _, r := range g.Rules {
			if r.Alert == rulegen.AlertBudget {
				require.Equal(t, rulegen.BurnTierBudget, r.Labels[rulegen.LabelBurnTier])
				exprs = append(exprs, r.Expr)
			}
		}
	}
	require.Len(t, exprs, 5, "one budget alert per SLO")
	s := newService(t, srv.URL, nil, end, budget.DefaultGateConfig, nil, nil)
	_ = s
	prom, err := budget.NewProm(srv.URL, commoncfg.DefaultHTTPClientConfig, 10*time.Second)
	require.NoError(t, err)
	var firing []string
	for _, e := range exprs {
		vec, err := prom.Instant(context.Background(), e, end)
		require.NoError(t, err)
		for _, smp := range vec {
			firing = append(firing, string(smp.Metric["service"])+"/"+string(smp.Metric["customer"]))
		}
	}
	require.ElementsMatch(t, []string{"api/globex", "checkout/", "payments/"}, firing)
	// Prometheus loaded the generated rule files.
	resp, err := http.Get(srv.URL + "/api/v1/rules?type=alert")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, 5, strings.Count(string(b), `"name":"`+rulegen.AlertBudget+`"`))
}

type envelope struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

func get(t *testing.T, h http.Handler, url string, hdr map[string]string) (int, envelope) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var env envelope
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &env), rec.Body.String())
	return rec.Code, env
}

const token = "emergency-token-0123456789"

func testGate(t *testing.T, srv *budgettest.Server, end time.Time) {
	testutil.Backends(t, [][]store.Migration{budget.Migrations}, func(t *testing.T, db *store.DB) {
		gate := budget.DefaultGateConfig
		gate.OverrideTokens = []commoncfg.Secret{token}
		reg := prometheus.NewRegistry()
		s := newService(t, srv.URL, db, end, gate, reg, nil)
		mux := http.NewServeMux()
		s.Register(mux)

		for _, tc := range []struct {
			query   string
			allowed bool
			state   slo.BudgetState
			slo     string
		}{
			{"service=web", true, slo.BudgetGreen, "availability"},
			{"service=search", true, slo.BudgetYellow, "availability"},
			{"service=checkout", false, slo.BudgetRed, "availability"},
			{"service=checkout&change=critical", true, slo.BudgetRed, "availability"},
			{"service=payments&change=critical", false, slo.BudgetExhausted, "availability"},
			{"service=api", false, slo.BudgetRed, "availability"}, // globex is red
			{"service=api&change=critical", true, slo.BudgetRed, "availability"},
		} {
			code, env := get(t, mux, "/api/v1/gate?"+tc.query, nil)
			require.Equal(t, http.StatusOK, code, tc.query)
			var d budget.Decision
			require.NoError(t, json.Unmarshal(env.Data, &d))
			require.Equal(t, tc.allowed, d.Allowed, tc.query+": "+d.Reason)
			require.Equal(t, tc.state, d.State, tc.query)
			require.False(t, d.Override)
		}
		_, env := get(t, mux, "/api/v1/gate?service=api", nil)
		var d budget.Decision
		require.NoError(t, json.Unmarshal(env.Data, &d))
		require.Equal(t, `normal change denied: error budget of SLO availability{customer="globex"} is red (15.00% remaining): freeze non-critical changes`, d.Reason)

		// Emergency override: allowed and recorded with its reason.
		code, env := get(t, mux, "/api/v1/gate?service=payments&reason=hotfix+for+outage&actor=alice", map[string]string{budget.OverrideHeader: token})
		require.Equal(t, http.StatusOK, code)
		require.NoError(t, json.Unmarshal(env.Data, &d))
		require.True(t, d.Allowed)
		require.True(t, d.Override)
		require.Equal(t, "allow", d.Answer)
		require.True(t, strings.HasPrefix(d.Reason, "emergency override: normal change denied"), d.Reason)

		code, env = get(t, mux, "/api/v1/gate?service=payments&reason=x", map[string]string{budget.OverrideHeader: "wrong-token-0123456789"})
		require.Equal(t, http.StatusForbidden, code)
		require.Equal(t, "invalid emergency override token", env.Error)
		code, env = get(t, mux, "/api/v1/gate?service=payments", map[string]string{budget.OverrideHeader: token})
		require.Equal(t, http.StatusBadRequest, code)
		require.Equal(t, "bad request: an emergency override needs a reason", env.Error)
		code, env = get(t, mux, "/api/v1/gate?service=nope", nil)
		require.Equal(t, http.StatusNotFound, code)
		require.Equal(t, `service "nope" has no SLO: not found`, env.Error)
		code, env = get(t, mux, "/api/v1/gate?service=web&change=yolo", nil)
		require.Equal(t, http.StatusBadRequest, code)
		require.Equal(t, `bad request: change must be "normal" or "critical", got "yolo"`, env.Error)

		recs, err := budget.ListDecisions(context.Background(), db, "payments", 10)
		require.NoError(t, err)
		require.Len(t, recs, 2)
		require.True(t, recs[0].Override)
		require.True(t, recs[0].Allowed)
		require.Equal(t, "hotfix for outage", recs[0].OverrideReason)
		require.Equal(t, "alice", recs[0].Actor)
		require.False(t, recs[1].Allowed)
		require.Equal(t, 1.0, counterValue(t, reg, "sre_gate_decisions_total", map[string]string{"decision": "allow", "change": "normal", "override": "true"}))
	})
}

func counterValue(t *testing.T, g prometheus.Gatherer, name string, lbl map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.Metric {
			for k, v := range lbl {
				if labelValue(m, k) != v {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	t.Fatalf("no %s%v", name, lbl)
	return 0
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func testPollerRecordsStateChanges(t *testing.T, srv *budgettest.Server, end time.Time) {
	testutil.Backends(t, [][]store.Migration{budget.Migrations}, func(t *testing.T, db *store.DB) {
		reg := prometheus.NewRegistry()
		bus := events.NewBus(1000, nil)
		evs, cancel := bus.Subscribe()
		defer cancel()
		clk := clock.NewManual(end.Add(-time.Hour))
		s := budget.New(budget.Options{DB: db, Bus: bus, Registerer: reg, Clock: clk})
		prom, err := budget.NewProm(srv.URL, commoncfg.DefaultHTTPClientConfig, 10*time.Second)
		require.NoError(t, err)
		require.NoError(t, s.Update(budget.DefaultConfig, loadSpecs(t), prom, nil))

		// An hour before the end, checkout had not had its recent incident:
		// 19728 errors, 1 - 19728/25920 = 23.89% remaining: yellow.
		require.NoError(t, s.Poll(context.Background()))
		first, err := budget.ListEvents(context.Background(), db, "checkout", "", 10)
		require.NoError(t, err)
		require.Len(t, first, 1)
		require.Equal(t, budget.StateUnknown, first[0].From)
		require.Equal(t, slo.BudgetYellow, first[0].To)
		near(t, 1-19728/totalPeriod/errBudget, first[0].Remaining, "remaining before the incident")

		// Polling again at the same time changes nothing.
		require.NoError(t, s.Poll(context.Background()))
		again, err := budget.ListEvents(context.Background(), db, "checkout", "", 10)
		require.NoError(t, err)
		require.Len(t, again, 1)

		drain(evs)
		clk.Set(end)
		require.NoError(t, s.Poll(context.Background()))
		later, err := budget.ListEvents(context.Background(), db, "checkout", "availability", 10)
		require.NoError(t, err)
		require.Len(t, later, 2)
		require.Equal(t, slo.BudgetYellow, later[0].From)
		require.Equal(t, slo.BudgetRed, later[0].To)
		require.Equal(t, "error budget of checkout/availability went from yellow to red (10.00% remaining): freeze non-critical changes", later[0].Message)

		var changed []events.Event
		for _, ev := range drain(evs) {
			if ev.Type == budget.EventStateChanged {
				changed = append(changed, ev)
			}
		}
		require.Len(t, changed, 1, "only checkout changed state")
		require.Equal(t, "checkout", changed[0].Service)
		require.Equal(t, "red", changed[0].Data["to"])

		// Metrics re-export the last poll.
		require.InDelta(t, expectedRemaining("checkout", ""), counterValue(t, reg, "sre_slo_error_budget_remaining_ratio", map[string]string{"service": "checkout"}), 1e-9)
		require.InDelta(t, 100, counterValue(t, reg, "sre_slo_burn_rate", map[string]string{"service": "checkout", "window": "1h"}), 1e-9)
		require.Equal(t, 1.0, counterValue(t, reg, "sre_slo_budget_policy_state", map[string]string{"service": "checkout", "state": "red"}))
		require.Equal(t, 0.0, counterValue(t, reg, "sre_slo_budget_policy_state", map[string]string{"service": "checkout", "state": "yellow"}))
		require.Equal(t, 1.0, counterValue(t, reg, "sre_slo_budget_state_changes_total", map[string]string{"service": "checkout", "state": "red"}))
		require.Equal(t, 1.0, counterValue(t, reg, "sre_slo_budget_policy_state", map[string]string{"service": "api", "group": `customer="globex"`, "state": "red"}))
		require.Equal(t, 1.0, counterValue(t, reg, "sre_slo_budget_poll_success", nil))

		// The detail answers the budget, its history and the timeline.
		mux := http.NewServeMux()
		s.Register(mux)
		code, env := get(t, mux, "/api/v1/slos/checkout/availability", nil)
		require.Equal(t, http.StatusOK, code, env.Error)
		var d budget.Detail
		require.NoError(t, json.Unmarshal(env.Data, &d))
		require.Len(t, d.Statuses, 1)
		require.Len(t, d.Events, 2)
		require.Equal(t, []string{"5m", "30m", "1h", "2h", "6h", "1d", "3d"}, d.Windows)
		require.Len(t, d.History, 2)
		last := d.History[0].Points[len(d.History[0].Points)-1]
		require.Equal(t, float64(end.Unix()), last[0])
		require.InDelta(t, expectedRemaining("checkout", ""), last[1], 1e-9)
		code, env = get(t, mux, "/api/v1/slos/checkout/nope", nil)
		require.Equal(t, http.StatusNotFound, code)
		require.Equal(t, `SLO "nope" of service "checkout": not found`, env.Error)
	})
}

func drain(ch <-chan events.Event) []events.Event {
	var out []events.Event
	for {
		select {
		case ev := <-ch:
			out = append(out, ev)
		default:
			return out
		}
	}
}

// Prometheus down or failing: the API says 503 with the reason, the gate
// fails closed or open as configured, nothing panics.
func TestPrometheusUnavailable(t *testing.T) {
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = io.WriteString(w, `{"status":"error","errorType":"execution","error":"query processing would load too many samples into memory"}`)
	}))
	defer failing.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer broken.Close()
	down := fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t))

	for _, tc := range []struct {
		name, url, wantErr string
	}{
		{"down", down, "connection refused"},
		{"failing", failing.URL, "execution: query processing would load too many samples into memory"},
		{"broken", broken.URL, "server error: 500"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, mode := range []string{budget.FailDeny, budget.FailAllow} {
				gate := budget.DefaultGateConfig
				gate.OnPrometheusError = mode
				reg := prometheus.NewRegistry()
				s := newService(t, tc.url, nil, time.Now(), gate, reg, nil)
				mux := http.NewServeMux()
				s.Register(mux)

				code, env := get(t, mux, "/api/v1/slos", nil)
				require.Equal(t, http.StatusServiceUnavailable, code)
				require.Equal(t, "unavailable", env.ErrorType)
				require.Contains(t, env.Error, "Prometheus at "+tc.url+" unavailable")
				require.Contains(t, env.Error, tc.wantErr)
				code, _ = get(t, mux, "/api/v1/slos/web/availability", nil)
				require.Equal(t, http.StatusServiceUnavailable, code)

				code, env = get(t, mux, "/api/v1/gate?service=web", nil)
				require.Equal(t, http.StatusOK, code)
				var d budget.Decision
				require.NoError(t, json.Unmarshal(env.Data, &d))
				require.Equal(t, mode == budget.FailAllow, d.Allowed)
				require.Contains(t, d.PrometheusError, tc.wantErr)
				require.Contains(t, d.Reason, "cannot read error budgets, gate fails")

				require.Error(t, s.Poll(context.Background()))
				require.Equal(t, 0.0, counterValue(t, reg, "sre_slo_budget_poll_success", nil))
			}
		})
	}

	// No Prometheus configured at all.
	s := budget.New(budget.Options{})
	require.NoError(t, s.Update(budget.DefaultConfig, loadSpecs(t), nil, nil))
	mux := http.NewServeMux()
	s.Register(mux)
	code, env := get(t, mux, "/api/v1/slos", nil)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "no Prometheus configured (set prometheus.url in sred.yml)", env.Error)
}

// The example configuration loads: its spec files and its SLA contracts
// name SLOs that exist.
func TestExampleConfig(t *testing.T) {
	loaded, err := app.LoadConfig(filepath.Join(testutil.RepoRoot(t), "examples", "sred.yml"))
	require.NoError(t, err)
	cfg := app.Budget.Of(loaded)
	specs, err := budget.LoadSpecs(cfg.SLOs, loaded.ResolvePath)
	require.NoError(t, err)
	require.NotEmpty(t, specs)
	require.NoError(t, cfg.SLA.Check(sla.Lookup(budget.Objectives(specs))))
	s := budget.New(budget.Options{})
	require.NoError(t, s.Update(cfg.SLOs, specs, nil, nil))
	// The override token files are resolved against the config's
	// directory: the example's token is accepted.
	token, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "examples", "secrets", "gate_override_token"))
	require.NoError(t, err)
	d, err := s.Gate(context.Background(), budget.GateRequest{Service: "api", OverrideToken: strings.TrimSpace(string(token)), OverrideReason: "test"})
	require.NoError(t, err)
	require.True(t, d.Override)
}

// sred loads every spec format srectl generates rules from: Sloth
// (prometheus/v1 and the Kubernetes object), OpenSLO and Pyrra files were
// refused as "unsupported version".
func TestLoadSpecsImportedFormats(t *testing.T) {
	root := testutil.RepoRoot(t)
	cfg := budget.DefaultConfig
	cfg.SpecFiles = []string{
		filepath.Join(root, "pkg", "slo", "sloth", "testdata", "sloth.yml"),
		filepath.Join(root, "pkg", "slo", "openslo", "testdata", "openslo.yml"),
		filepath.Join(root, "pkg", "slo", "pyrra", "testdata", "list.yml"),
	}
	specs, err := budget.LoadSpecs(cfg, func(p string) string { return p })
	require.NoError(t, err)
	require.Len(t, specs, 3)
	require.Equal(t, "sloth prometheus/v1", specs[0].Source)
	require.Equal(t, "openslo/v1", specs[1].Source)
	require.Equal(t, "pyrra.dev/v1alpha1 ServiceLevelObjective", specs[2].Source)
	require.Len(t, specs[2].SLOs, 2)
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, err string }{
		{"poll_interval: 0s", "slos: poll_interval must be at least 1s, got 0s"},
		{"query_timeout: 0s", "slos: query_timeout must be positive, got 0s"},
		{"history_range: 30d\nhistory_step: 1m", "slos: history_range / history_step must not exceed 11000 points (Prometheus' limit), got 30d / 1m"},
		{"gate: {on_prometheus_error: maybe}", `slos: gate: on_prometheus_error must be "deny" or "allow", got "maybe"`},
		{"gate: {on_no_data: x}", `slos: gate: on_no_data must be "deny" or "allow", got "x"`},
		{"gate: {override_tokens: [short]}", "slos: gate: override_tokens[0] must be at least 16 characters"},
		{"gate: {request_limit: {burst: 0}}", "slos: gate: request_limit: burst must be 1 to 100000, got 0"},
		{"gate: {request_limit: {burst: 100001}}", "slos: gate: request_limit: burst must be 1 to 100000, got 100001"},
		{"gate: {request_limit: {every: 0s}}", "slos: gate: request_limit: every must be positive and at most 1h, got 0s"},
		{"gate: {request_limit: {every: 2h}}", "slos: gate: request_limit: every must be positive and at most 1h, got 2h"},
		{"spec_file: [x]", "field spec_file not found in type budget.plain"},
	} {
		dec := yaml.NewDecoder(strings.NewReader(tc.yaml))
		dec.KnownFields(true)
		var c budget.Config
		err := dec.Decode(&c)
		require.Error(t, err, tc.yaml)
		require.Contains(t, err.Error(), tc.err)
	}
}

// TestRequestLimitConfig: slos.gate.request_limit defaults to 1,000
// requests in a row, then one per 50ms, and a key not given keeps its
// default.
func TestRequestLimitConfig(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want budget.RequestLimit
	}{
		{"{}", budget.RequestLimit{Burst: 1000, Every: model.Duration(50 * time.Millisecond)}},
		{"gate: {}", budget.RequestLimit{Burst: 1000, Every: model.Duration(50 * time.Millisecond)}},
		{"gate: {request_limit: {burst: 10}}", budget.RequestLimit{Burst: 10, Every: model.Duration(50 * time.Millisecond)}},
		{"gate: {request_limit: {every: 1s}}", budget.RequestLimit{Burst: 1000, Every: model.Duration(time.Second)}},
	} {
		dec := yaml.NewDecoder(strings.NewReader(tc.yaml))
		dec.KnownFields(true)
		var c budget.Config
		require.NoError(t, dec.Decode(&c), tc.yaml)
		require.Equal(t, tc.want, c.Gate.RequestLimit, tc.yaml)
	}
}
