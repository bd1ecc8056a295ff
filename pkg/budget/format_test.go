package budget

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/slo"
)

// TestRemainingText: the remaining budget people read is its percentage
// down to -100%, "exhausted" with the budgets spent below, and the data's
// coverage while it does not cover the period; never "-716172.42%".
func TestRemainingText(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	twelveMinutes := 12.0 / (30 * 24 * 60)
	for _, tc := range []struct {
		name      string
		remaining *float64
		coverage  *float64
		percent   string
		text      string
	}{
		{"no data", nil, nil, "unknown", "unknown remaining"},
		{"untouched", f(1), f(1), "100.00%", "100.00% remaining"},
		{"half", f(0.5), nil, "50.00%", "50.00% remaining"},
		{"spent twice over", f(-1), f(1), "-100.00%", "-100.00% remaining"},
		{"two and a half budgets", f(-1.5), f(1), "< -100% (2.5x the budget spent)", "< -100% remaining, 2.5x the budget spent"},
		{"demo gate", f(-7161.7242), f(twelveMinutes), "< -100% (7,163x the budget spent)", "< -100% remaining, 7,163x the budget spent, over 12m of 30d"},
		{"demo srectl", f(-1989.61), f(twelveMinutes), "< -100% (1,991x the budget spent)", "< -100% remaining, 1,991x the budget spent, over 12m of 30d"},
		{"millions", f(-1234566), nil, "< -100% (1,234,567x the budget spent)", "< -100% remaining, 1,234,567x the budget spent"},
		{"young and green", f(0.98), f(2.0 / (30 * 24)), "98.00%", "98.00% remaining, over 2h of 30d"},
		{"first seconds", f(0.5), f(30.0 / (30 * 24 * 3600)), "50.00%", "50.00% remaining, over 30s of 30d"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.percent, RemainingPercent(tc.remaining, 2))
			st := Status{Period: "30d", Coverage: tc.coverage, Budget: Budget{RemainingRatio: tc.remaining}}
			require.Equal(t, tc.text, st.RemainingText(2))
		})
	}
}

// TestGateReasonOfYoungSLO: the demo's gate, minutes after start with
// seconds of errors, said "-716172.42% remaining"; it says the budgets
// spent and over how much of the period, and keeps the raw ratio.
func TestGateReasonOfYoungSLO(t *testing.T) {
	rem, cov := -7161.7242, 12.0/(30*24*60)
	st := Status{Service: "api", SLO: "availability", Period: "30d", Coverage: &cov, State: slo.BudgetExhausted,
		Budget: Budget{RemainingRatio: &rem}}
	d := decide(DefaultConfig.Gate, GateRequest{Service: "api", Change: ChangeNormal}, []Status{st})
	require.Equal(t, "normal change denied: error budget of SLO availability is exhausted (< -100% remaining, 7,163x the budget spent, over 12m of 30d): emergency changes only", d.Reason)
	require.Equal(t, rem, *d.Remaining, "the answer's ratio stays raw")
	require.Equal(t, "error budget of api/availability is exhausted (< -100% remaining, 7,163x the budget spent, over 12m of 30d)", stateMessage(st, ""))
}

// TestExhaustedSummaryOfYoungSLO: the alert sred raises for an exhausted
// budget, whose summary titles the incident it opens and shows on the
// incident page, said "(-831465.70% remaining)" in the demo; it words the
// budget as the gate and the console do.
func TestExhaustedSummaryOfYoungSLO(t *testing.T) {
	rem, cov := -8313.657, 12.0/(30*24*60)
	for _, tc := range []struct {
		name string
		st   Status
		want string
	}{
		{"young SLO", Status{Service: "api", SLO: "availability", Period: "30d", Coverage: &cov, Budget: Budget{RemainingRatio: &rem}},
			"Error budget of api/availability exhausted (< -100% remaining, 8,315x the budget spent, over 12m of 30d)"},
		{"no data", Status{Service: "api", SLO: "availability", Period: "30d"},
			"Error budget of api/availability exhausted (unknown remaining)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := exhaustedNotification(incident.DefaultOptions(), tc.st, time.Unix(0, 0), "firing", time.Time{})
			require.Equal(t, tc.want, n.CommonAnnotations["summary"])
			require.Equal(t, tc.want, n.Alerts[0].Annotations["summary"])
		})
	}
}

// TestBurnFactor: a burn rate reads as a plain number, as the generated
// alerts' summaries print it: "10000x", not "1e+04x"; "2110x", not
// "2.11e+03x" (%.3g) or "2.11kx" (humanize).
func TestBurnFactor(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		burn   float64
		factor string
	}{
		{0, "0"},
		{0.4, "0.4"},
		{0.0012345, "0.00123"},
		{1, "1"},
		{6.0312, "6.03"},
		{14.4, "14.4"},
		{99.94, "99.9"},
		{99.96, "100"},
		{100, "100"},
		{144.4, "144"},
		{2110.4, "2110"},
		{10000, "10000"},
		{1234567.8, "1234568"},
	} {
		t.Run(tc.factor, func(t *testing.T) {
			require.Equal(t, tc.factor, BurnFactor(tc.burn))
			w := WindowBurn{Tier: "page_fast", Short: 5 * time.Minute, Threshold: 14.4, Burn: f(tc.burn)}
			op := ">="
			if tc.burn < 14.4 {
				op = "<"
			}
			require.Equal(t, "page_fast 5m "+tc.factor+"x "+op+" 14.4x", w.String())
		})
	}
}
