package ui

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/budget"
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
