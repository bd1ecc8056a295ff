package budget_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/budget/budgettest"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/dashboards"
	"github.com/rootuip/sre/pkg/sla"
	"github.com/rootuip/sre/pkg/slo"
)

// TestYoungSLOAgrees: an SLO whose data is two hours old (of a 30-day
// period), with a 10-minute burst of 50% errors. The budget, the deploy
// gate, the SLA report and the dashboards' achieved-SLI query all report
// over the data that exists and agree; the budget says how much of the
// period that is, and counts the events that happened, not the burst
// extrapolated over the month.
func TestYoungSLOAgrees(t *testing.T) {
	end := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	start := end.Add(-2 * time.Hour)
	burst := func(ts time.Time) bool {
		return ts.After(end.Add(-40*time.Minute)) && !ts.After(end.Add(-30*time.Minute))
	}
	specs, err := slo.Parse([]byte(fmt.Sprintf(specs, "young", "")), "young.yml")
	require.NoError(t, err)
	srv := budgettest.Start(t, budgettest.Options{Specs: specs, End: end, Series: []budgettest.Series{
		{Metric: "http_requests_total", Labels: map[string]string{"job": "young", "code": "200"}, Start: start, Initial: 1e6,
			Inc: func(ts time.Time) float64 {
				if burst(ts) {
					return reqPerMinute / 2
				}
				return reqPerMinute
			}},
		{Metric: "http_requests_total", Labels: map[string]string{"job": "young", "code": "500"}, Start: start, Initial: 1e6,
			Inc: func(ts time.Time) float64 {
				if burst(ts) {
					return reqPerMinute / 2
				}
				return 0
			}},
	}})
	ctx := context.Background()
	// What happened: 2h of 600 requests a minute, 3000 of them errors.
	const total, bad = 2 * 60 * reqPerMinute, 10 * reqPerMinute / 2
	wantSLI := 1 - bad/total

	prom, err := budget.NewProm(srv.URL, commoncfg.DefaultHTTPClientConfig, 30*time.Second)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	s := budget.New(budget.Options{Clock: clock.NewManual(end), Registerer: reg})
	require.NoError(t, s.Update(budget.DefaultConfig, specs, prom, nil))
	sts, err := s.Statuses(ctx, end)
	require.NoError(t, err)
	require.Len(t, sts, 1)
	st := sts[0]
	require.NotNil(t, st.SLIAchieved)
	require.InDelta(t, wantSLI, *st.SLIAchieved, 0.005, "budget: achieved SLI over the data that exists")
	require.NotNil(t, st.Coverage)
	require.InDelta(t, (2*time.Hour).Seconds()/period.Seconds(), *st.Coverage, (10*time.Minute).Seconds()/period.Seconds(), "coverage: 2h of 30d")
	require.NotNil(t, st.Budget.TotalEvents)
	require.InDelta(t, total, *st.Budget.TotalEvents, total*0.05, "the requests that happened, not 30 days of them")
	require.InDelta(t, bad, *st.Budget.BadEvents, bad*0.05, "the errors that happened")
	require.InDelta(t, errBudget*total, *st.Budget.AllowedBadEvents, errBudget*total*0.05)
	remaining := 1 - (1-wantSLI)/errBudget
	require.InDelta(t, remaining, *st.Budget.RemainingRatio, 5, "remaining over the covered data (%.1f budgets overspent)", -remaining)
	// The minutes are those of the covered two hours: the burst's five
	// outage-equivalent minutes consumed, not the error ratio times 30 days.
	covered := *st.Coverage * period.Minutes()
	require.InDelta(t, errBudget*covered, st.Budget.TotalMinutes, 1e-9, "total minutes: the budget of the covered time")
	require.NotNil(t, st.Budget.ConsumedMinutes)
	require.InDelta(t, 5, *st.Budget.ConsumedMinutes, 0.5, "consumed minutes: the burst's outage equivalent")
	require.InDelta(t, st.Budget.TotalMinutes-*st.Budget.ConsumedMinutes, *st.Budget.RemainingMinutes, 1e-9, "remaining minutes")

	// The gate decides on the same figure.
	dec, err := s.Gate(ctx, budget.GateRequest{Service: "young"})
	require.NoError(t, err)
	require.False(t, dec.Allowed)
	require.NotNil(t, dec.Remaining)
	require.InDelta(t, *st.Budget.RemainingRatio, *dec.Remaining, 1e-9, "gate and budget")
	// Its reason, through the API, says the budgets spent over the covered
	// two hours, not "-4067.00%"; the answer's ratio stays raw.
	mux := http.NewServeMux()
	s.Register(mux)
	api := httptest.NewServer(mux)
	defer api.Close()
	resp, err := http.Get(api.URL + "/api/v1/gate?service=young")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var env struct {
		Data budget.Decision `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
	answer := env.Data
	require.Regexp(t, `^normal change denied: error budget of SLO availability is exhausted \(< -100% remaining, 4[0-9]x the budget spent, over (1h5[0-9]m|2h[0-9]*m?) of 30d\): emergency changes only$`, answer.Reason)
	require.NotNil(t, answer.Remaining)
	require.InDelta(t, *st.Budget.RemainingRatio, *answer.Remaining, 1e-9, "the API's ratio is the raw one")

	// The SLA report over the 30-day period ending at the same time.
	cu := &sla.Customer{ID: "ACME-001", Name: "Acme", Services: []sla.Service{{Service: "young", Availability: &sla.Target{SLO: "availability", Target: 99.9}}}}
	rep, err := sla.Compute(ctx, prom, sla.Lookup(budget.Objectives(specs)), cu, sla.Range{Label: "30d", Start: end.Add(-period), End: end})
	require.NoError(t, err)
	got := rep.Services["young"].Availability.AchievedRatio
	require.NotNil(t, got)
	require.InDelta(t, *st.SLIAchieved, *got, 0.005, "SLA report and budget")
	cov := rep.Services["young"].Availability.Coverage
	require.NotNil(t, cov, "the SLA report says how much of its range the data covers")
	require.InDelta(t, *st.Coverage, *cov, (2*time.Minute).Seconds()/period.Seconds(), "SLA report coverage and budget coverage")

	// The SLO detail dashboard: its achieved-ratio panel's query, as
	// generated into dashboards/, evaluated by the same Prometheus.
	dash := strings.NewReplacer("$service", "young", "$slo", "availability")
	vec, err := prom.Instant(ctx, dash.Replace(dashboards.AchievedQuery), end)
	require.NoError(t, err)
	require.Len(t, vec, 1)
	require.InDelta(t, *st.SLIAchieved, float64(vec[0].Value), 1e-9, "dashboard and budget")
	// Its data-coverage panel shows sred's gauge, which sred's poll sets
	// to the budget's coverage.
	expr, err := slo.Parser.ParseExpr(dash.Replace(dashboards.CoverageQuery))
	require.NoError(t, err)
	var selected []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			selected = append(selected, vs.String())
		}
		return nil
	})
	require.Equal(t, []string{`sre_slo_data_coverage_ratio{service="young",slo="availability"}`}, selected)
	require.NoError(t, s.Poll(ctx))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var gauge *float64
	for _, mf := range mfs {
		if mf.GetName() != "sre_slo_data_coverage_ratio" {
			continue
		}
		for _, m := range mf.GetMetric() {
			ls := map[string]string{}
			for _, l := range m.GetLabel() {
				ls[l.GetName()] = l.GetValue()
			}
			if ls["service"] == "young" && ls["slo"] == "availability" {
				gauge = ptr(m.GetGauge().GetValue())
			}
		}
	}
	require.NotNil(t, gauge, "sred exports sre_slo_data_coverage_ratio for the young SLO")
	require.InDelta(t, *st.Coverage, *gauge, 1e-9, "dashboard coverage and budget coverage")
	require.InDelta(t, *cov, *gauge, (2*time.Minute).Seconds()/period.Seconds(), "dashboard coverage and SLA report coverage")
}

func ptr[T any](v T) *T { return &v }
