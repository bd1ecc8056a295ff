package ui

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/slo"
)

// TestConsoleRemainingText: the console's budget left is the percentage
// it always showed down to -100%, the budgets spent below it, and the
// data's coverage while it does not cover the period; never "-716172.42%".
func TestConsoleRemainingText(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	twelveMinutes := 12.0 / (30 * 24 * 60)
	for _, tc := range []struct {
		name      string
		remaining *float64
		coverage  *float64
		want      string
	}{
		{"no data", nil, nil, "–"},
		{"covered", f(0.375), f(1), "37.5%"},
		{"spent twice over", f(-1), nil, "-100%"},
		{"demo", f(-7161.7242), f(twelveMinutes), "< -100% (7,163x the budget spent) over 12m of 30d"},
		{"young and green", f(0.98), f(2.0 / (30 * 24)), "98% over 2h of 30d"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := budget.Status{Period: "30d", Coverage: tc.coverage, Budget: budget.Budget{RemainingRatio: tc.remaining}}
			require.Equal(t, tc.want, remainingText(st))
		})
	}
}

// TestConsoleGateWords: the deploy gate's answer on the console words the
// budget policy as `srectl gate` and the gate's API do: a red budget
// freezes non-critical changes, an exhausted one lets emergency changes
// only (not "only critical changes ship", which the gate denies too).
func TestConsoleGateWords(t *testing.T) {
	for _, tc := range []struct {
		state slo.BudgetState
		want  string
	}{
		{slo.BudgetRed, "error budget of availability is red: freeze non-critical changes"},
		{slo.BudgetExhausted, "error budget of availability is exhausted: emergency changes only"},
	} {
		answer, reason := gateAnswer([]budget.Status{{Service: "api", SLO: "availability", State: tc.state}})
		require.Equal(t, "deny", answer, tc.state)
		require.Equal(t, tc.want, reason)
	}
}
