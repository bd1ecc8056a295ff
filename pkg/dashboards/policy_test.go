package dashboards

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/promqltest"
)

// The policy state panels show the rank of the state sred exported as 1
// (the worst of an SLO's groups, the worst of each group in the table),
// whatever the remaining budget: an SLO with its own budgetPolicy is red at
// 40% remaining where the default policy would say yellow.
func TestPolicyStateQueries(t *testing.T) {
	var load strings.Builder
	load.WriteString("load 1m\n")
	series := func(labels, current string) {
		for _, s := range policyStates {
			v := 0
			if string(s.state) == current {
				v = 1
			}
			fmt.Fprintf(&load, "  %s{instance=\"a\", %s, state=%q} %dx5\n", budgetPolicyState, labels, s.state, v)
		}
	}
	// api/availability: own policy, red at 40% remaining. (An empty group
	// label is no label in Prometheus.)
	series(`service="api", slo="availability", group=""`, "red")
	// checkout/orders: two customers, green and exhausted.
	series(`service="checkout", slo="orders", group="customer=\"acme\""`, "green")
	series(`service="checkout", slo="orders", group="customer=\"globex\""`, "exhausted")
	// ingest/freshness: no data yet.
	series(`service="ingest", slo="freshness", group=""`, "unknown")
	load.WriteString("  slo:error_budget_remaining:ratio{service=\"api\", slo=\"availability\"} 0.4x5\n")

	stat := func(service, slo string) string {
		return strings.NewReplacer("$service", service, "$slo", slo).
			Replace(policyState(`service="$service", slo="$slo", `, ""))
	}
	script := load.String() + `
eval instant at 4m ` + stat("api", "availability") + `
  {} 3

eval instant at 4m ` + stat("checkout", "orders") + `
  {} 4

eval instant at 4m ` + stat("ingest", "freshness") + `
  {} 0

eval instant at 4m ` + policyState("", "service, slo, group") + `
  {service="api", slo="availability"} 3
  {service="checkout", slo="orders", group="customer=\"acme\""} 1
  {service="checkout", slo="orders", group="customer=\"globex\""} 4
  {service="ingest", slo="freshness"} 0
`
	promqltest.RunTest(t, script, promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery))
}
