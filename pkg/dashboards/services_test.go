package dashboards

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// The engineering dashboard's service variable lists every service it has
// figures of, not only those with SLOs: its selector matches a series of a
// service with only incidents, with only chaos experiments, and with only
// SLOs, and leaves out the zero series without a service.
func TestEngineeringServiceVariable(t *testing.T) {
	var selector string
	for _, tg := range committedTargets(t) {
		if tg.dashboard == "engineering.json" && tg.panel == "variable service" {
			selector = tg.expr
		}
	}
	if selector == "" {
		t.Fatal("engineering.json has no service variable")
	}
	expr, err := promql.ParseExpr(selector)
	vs, ok := expr.(*parser.VectorSelector)
	if err != nil || !ok {
		t.Fatalf("service variable %q is not a series selector (%v)", selector, err)
	}
	matchers := vs.LabelMatchers
	matches := func(ls labels.Labels) bool {
		for _, m := range matchers {
			if !m.Matches(ls.Get(m.Name)) {
				return false
			}
		}
		return true
	}
	for _, tc := range []struct {
		series labels.Labels
		listed bool
	}{
		{labels.FromStrings(labels.MetricName, sloInfo, "service", "checkout", "slo", "availability"), true},
		{labels.FromStrings(labels.MetricName, "sre_incidents_stored_total", "service", "billing", "severity", "HIGH"), true},
		{labels.FromStrings(labels.MetricName, "sre_chaos_resilience_score", "service", "search", "experiment", "pod-kill"), true},
		{labels.FromStrings(labels.MetricName, "sre_incidents_stored_total", "severity", "HIGH"), false},
	} {
		if got := matches(tc.series); got != tc.listed {
			t.Errorf("service variable %q matches %s: %v, want %v", selector, tc.series, got, tc.listed)
		}
	}
}
