package slo_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/slo"
)

// Thresholds left out of budgetPolicy take the defaults (green 50,
// yellow 20, exhausted 0); thresholds written in the file are kept, even 0.
func TestBudgetPolicyPartialDefaults(t *testing.T) {
	const head = `apiVersion: sre.rootuip.io/v1
kind: ServiceLevelObjectives
service: api
slos:
  - name: availability
    objective: 99.9
    sli:
      events:
        errorSelector: http_requests_total{job="api",code=~"5.."}
        totalSelector: http_requests_total{job="api"}
`
	for _, tc := range []struct {
		name, policy string
		want         slo.BudgetPolicy
		err          string
	}{
		{"unset", "", slo.DefaultBudgetPolicy, ""},
		{"empty", "    budgetPolicy: {}\n", slo.DefaultBudgetPolicy, ""},
		{"green only", "    budgetPolicy: {green: 60}\n", slo.BudgetPolicy{Green: 60, Yellow: 20, Exhausted: 0}, ""},
		{"yellow only", "    budgetPolicy: {yellow: 30}\n", slo.BudgetPolicy{Green: 50, Yellow: 30, Exhausted: 0}, ""},
		{"exhausted only", "    budgetPolicy: {exhausted: 5}\n", slo.BudgetPolicy{Green: 50, Yellow: 20, Exhausted: 5}, ""},
		{"green and yellow", "    budgetPolicy: {green: 70, yellow: 40}\n", slo.BudgetPolicy{Green: 70, Yellow: 40, Exhausted: 0}, ""},
		{"explicit zero yellow", "    budgetPolicy: {green: 60, yellow: 0}\n", slo.BudgetPolicy{}, "api.yml:11:19: slos[0].budgetPolicy: thresholds must satisfy 100 >= green > yellow > exhausted >= 0 (got green 60, yellow 0, exhausted 0)"},
		{"green below default yellow", "    budgetPolicy: {green: 10}\n", slo.BudgetPolicy{}, "api.yml:11:19: slos[0].budgetPolicy: thresholds must satisfy 100 >= green > yellow > exhausted >= 0 (got green 10, yellow 20, exhausted 0)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			specs, err := slo.Parse([]byte(head+tc.policy), "api.yml")
			if tc.err != "" {
				require.EqualError(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, specs[0].SLOs[0].BudgetPolicy)
		})
	}
}
