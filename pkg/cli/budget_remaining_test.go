package cli

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/budget"
)

// TestBudgetTableRemaining: srectl budget prints the remaining budget down
// to -100% and the budgets spent below, and the COVERED column says over
// how much of the period ("12m of 30d", not "0.0%"); the demo's young SLO
// printed "-198961.0%".
func TestBudgetTableRemaining(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		name      string
		remaining *float64
		want      string
	}{
		{"no data", nil, "-"},
		{"half", f(0.5), "50.0%"},
		{"spent twice over", f(-1), "-100.0%"},
		{"demo", f(-1988.61), "< -100% (1,990x the budget spent)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			st := budget.Status{Service: "api", SLO: "availability", Period: "30d", Coverage: f(12.0 / (30 * 24 * 60)),
				Budget: budget.Budget{RemainingRatio: tc.remaining}}
			require.NoError(t, budgetTable(&out, []budget.Status{st}))
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			require.Len(t, lines, 2)
			cols := regexp.MustCompile(`\s{2,}`).Split(lines[1], -1)
			require.Equal(t, "12m of 30d", cols[5], "COVERED")
			require.Equal(t, tc.want, cols[7], "REMAINING")
		})
	}
}

// TestBudgetTableBurn: the BURN column prints the burn rate as a plain
// number: the demo's outage of a 99.99% SLO burns at 10000x, which read
// "1e+04x/1h".
func TestBudgetTableBurn(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		burn *float64
		want string
	}{
		{nil, "-"},
		{f(0.4), "0.4x/1h"},
		{f(14.4), "14.4x/1h"},
		{f(2110.4), "2110x/1h"},
		{f(10000), "10000x/1h"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			var out bytes.Buffer
			st := budget.Status{Service: "api", SLO: "availability", Period: "30d", State: budget.StateUnknown,
				Forecast: budget.Forecast{Window: "1h", BurnRate: tc.burn}}
			require.NoError(t, budgetTable(&out, []budget.Status{st}))
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			require.Len(t, lines, 2)
			cols := regexp.MustCompile(`\s{2,}`).Split(lines[1], -1)
			require.Equal(t, tc.want, cols[10], "BURN")
		})
	}
}
