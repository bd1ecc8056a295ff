package dashboards

import (
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// sliEvents are the generator's event rates: one series per SLO (and
// group), and a service's SLOs often count the same requests.
var sliEvents = []string{sliTotalEvents, sliErrorEvents}

// sumsAcrossSLOs names the sums in expr of an SLI event rate that neither
// keep slo in their grouping nor select one SLO: such a sum adds the same
// requests once per SLO of the service.
func sumsAcrossSLOs(expr parser.Expr) []string {
	var out []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		agg, ok := n.(*parser.AggregateExpr)
		if !ok || agg.Op != parser.SUM || agg.Without || slices.Contains(agg.Grouping, "slo") {
			return nil
		}
		parser.Inspect(agg.Expr, func(n parser.Node, _ []parser.Node) error {
			vs, ok := n.(*parser.VectorSelector)
			if !ok || !slices.Contains(sliEvents, vs.Name) {
				return nil
			}
			for _, m := range vs.LabelMatchers {
				if m.Name == "slo" && m.Type == labels.MatchEqual {
					return nil
				}
			}
			out = append(out, agg.String())
			return nil
		})
		return nil
	})
	return out
}

// No panel sums the SLI event rates of several SLOs: the availability,
// latency and success-rate SLOs of one service count the same requests, and
// their sum by service read as three times the service's request rate.
func TestSLIEventsNotSummedAcrossSLOs(t *testing.T) {
	for _, tg := range committedTargets(t) {
		expr := parse(t, tg)
		if expr == nil {
			continue
		}
		for _, s := range sumsAcrossSLOs(expr) {
			t.Errorf("%s: panel %q sums SLI events of several SLOs (group by slo, or select one): %s", tg.dashboard, tg.panel, s)
		}
	}
}

// The check itself: what it accepts and what it reports.
func TestSumsAcrossSLOs(t *testing.T) {
	for _, tc := range []struct {
		expr string
		bad  bool
	}{
		{`sum by (service) (slo:sli_total_events:rate5m)`, true},
		{`sum(slo:sli_error_events:rate5m{service="api"})`, true},
		{`sum by (service, slo) (slo:sli_total_events:rate5m)`, false},
		{`sum(slo:sli_total_events:rate5m{service="api", slo="availability"})`, false},
		{`max by (service) (slo:sli_total_events:rate5m)`, false},
		{`sum by (service) (sre_incidents_open)`, false},
	} {
		expr, err := promql.ParseExpr(tc.expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := sumsAcrossSLOs(expr); (len(got) > 0) != tc.bad {
			t.Errorf("sumsAcrossSLOs(%s) = %q, want reported: %v", tc.expr, got, tc.bad)
		}
	}
}
