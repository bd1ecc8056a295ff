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
