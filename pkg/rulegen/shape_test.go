package rulegen_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/rulegen"
	"github.com/rootuip/sre/pkg/slo"
)

// TestShapesSwapOnlyWhatParsesAlike: Generate parses an expression of a
// given shape once (the SLI's own selectors and queries swapped for a
// placeholder), so an SLI text that parses alone but not inside the
// generated expression must not hide behind the shape of another SLO's
// text. Each variant is generated after an SLO of the same shape that
// compiles, and must fail or pass exactly as GenerateSLO, which parses
// every expression, says.
func TestShapesSwapOnlyWhatParsesAlike(t *testing.T) {
	spec := func(service, sli string) *slo.Spec {
		t.Helper()
		specs, err := slo.Parse([]byte(fmt.Sprintf("apiVersion: sre.rootuip.io/v1\nkind: ServiceLevelObjectives\nservice: %s\nslos:\n  - name: a\n    objective: 99.9\n    sli:\n%s", service, sli)), service+".yml")
		require.NoError(t, err)
		return specs[0]
	}
	const (
		queries   = "      events:\n        errorQuery: |-\n          %s\n        totalQuery: sum(rate(x{job=\"%[2]s\"}[{{.window}}]))\n"
		selectors = "      events:\n        errorSelector: x{job=\"%[2]s\",code=\"500\"}\n        totalSelector: x{job=\"%[2]s\"}\n"
		raw       = "      raw:\n        errorRatioQuery: sum(rate(x{job=\"%[2]s\",code=\"500\"}[{{.window}}])) / sum(rate(x{job=\"%[2]s\"}[{{.window}}]))\n"
		boolSLI   = "      bool:\n        selector: up{job=\"%[2]s\"}\n"
	)
	for _, c := range []struct {
		name string
		sli  string
		// query is the first argument of queries.
		query string
		// edit changes the variant's SLI after validation, as a caller of
		// Generate may.
		edit func(s *slo.SLI)
		ok   bool
	}{
		{name: "other selectors", sli: selectors, ok: true},
		{name: "other queries", sli: queries, query: `sum by (code) (rate(x{job="b",code=~"5.."}[{{.window}}]))`, ok: true},
		{name: "other raw query", sli: raw, ok: true},
		{name: "other bool selector", sli: boolSLI, ok: true},
		{name: "query ending in a comment", sli: queries, query: `sum(rate(x{job="b",code="500"}[{{.window}}])) # 5xx`},
		{name: "selector with offset", sli: selectors, edit: func(s *slo.SLI) { s.Events.ErrorSelector = `x{job="b",code="500"} offset 5m` }},
		{name: "selector with @", sli: selectors, edit: func(s *slo.SLI) { s.Events.TotalSelector = `x{job="b"} @ 100` }},
		{name: "not a selector", sli: selectors, edit: func(s *slo.SLI) { s.Events.ErrorSelector = `sum(x{job="b"})` }},
		{name: "bool selector with offset", sli: boolSLI, edit: func(s *slo.SLI) { s.Bool.Selector = `up{job="b"} offset 1m` }},
		{name: "scalar raw query", sli: raw, edit: func(s *slo.SLI) { s.Raw.ErrorRatioQuery = `scalar(sum(rate(x{job="b"}[{{.window}}])))` }},
		{name: "scalar query", sli: queries, query: `sum(rate(x{job="b",code="500"}[{{.window}}]))`, edit: func(s *slo.SLI) {
			s.Events.ErrorQuery = `scalar(sum(rate(x{job="b",code="500"}[{{.window}}])))`
		}},
		{name: "invalid query", sli: queries, query: `sum(rate(x{job="b",code="500"}[{{.window}}]))`, edit: func(s *slo.SLI) {
			s.Events.ErrorQuery = `sum(rate(x{job="b",code=~"("}[{{.window}}]))`
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			query := c.query
			if query == "" {
				query = `sum(rate(x{job="b",code="500"}[{{.window}}]))`
			}
			first := spec("first", fmt.Sprintf(c.sli, `sum(rate(x{job="a",code="500"}[{{.window}}]))`, "a"))
			variant := spec("variant", fmt.Sprintf(c.sli, query, "b"))
			if c.edit != nil {
				c.edit(&variant.SLOs[0].SLI)
			}
			_, errAlone := rulegen.GenerateSLO(variant, &variant.SLOs[0])
			files, err := rulegen.Generate([]*slo.Spec{first, variant})
			if !c.ok {
				require.Error(t, errAlone, "GenerateSLO, parsing every expression")
				require.Error(t, err, "Generate after an SLO of the same shape")
				return
			}
			require.NoError(t, errAlone)
			require.NoError(t, err)
			want, err := rulegen.GenerateSLO(variant, &variant.SLOs[0])
			require.NoError(t, err)
			require.Equal(t, want, files[1].Groups[0])
		})
	}
}
