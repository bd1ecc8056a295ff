package rulegen_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/util/teststorage"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/rulegen"
	"github.com/rootuip/sre/pkg/slo"
)

// BenchmarkGenerate1000 compiles 1,000 SLOs: 250 services with the 4 SLOs
// of examples/slos/api.yml, each service reading its own series (job label),
// so that every SLO has its own selectors as in real specs.
func BenchmarkGenerate1000(b *testing.B) {
	base, err := os.ReadFile("examples/slos/api.yml")
	require.NoError(b, err)
	var specs []*slo.Spec
	for i := range 250 {
		svc := fmt.Sprintf("svc-%03d", i)
		text := strings.ReplaceAll(string(base), `job="api"`, `job="`+svc+`"`)
		text = strings.Replace(text, "service: api", "service: "+svc, 1)
		s, err := slo.Parse([]byte(text), svc+".yml")
		require.NoError(b, err)
		specs = append(specs, s...)
	}
	b.ResetTimer()
	// Generate: in parallel, each expression shape parsed once.
	b.Run("Generate", func(b *testing.B) {
		for b.Loop() {
			files, err := rulegen.Generate(specs)
			if err != nil || len(files) != 250 {
				b.Fatal(err)
			}
		}
	})
	// GenerateSLO one SLO after the other: every expression parsed.
	b.Run("GenerateSLO", func(b *testing.B) {
		for b.Loop() {
			for _, s := range specs {
				for i := range s.SLOs {
					if _, err := rulegen.GenerateSLO(s, &s.SLOs[i]); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
	})
}

// BenchmarkEvaluate evaluates the error ratios of a 3d SLO over all its
// windows with Prometheus' rule engine, once as generated (sums over the 5m
// rate recordings) and once in the naive form (rate over the raw series for
// every window), over 3 days of 1m samples of 200 raw series.
func BenchmarkEvaluate(b *testing.B) {
	const (
		instances = 100
		days      = 3
	)
	st := teststorage.New(b)
	ctx := context.Background()
	end := int64(days * 24 * 60)
	app := st.Appender(ctx)
	rec := func(name string) labels.Labels {
		return labels.FromStrings("__name__", name, "service", "api", "slo", "availability")
	}
	for m := int64(0); m <= end; m++ {
		ts := m * 60000
		for i := range instances {
			inst := fmt.Sprintf("i%d", i)
			_, err := app.Append(0, labels.FromStrings("__name__", "http_requests_total", "job", "api", "instance", inst, "code", "200"), ts, float64(m*1000))
			require.NoError(b, err)
			_, err = app.Append(0, labels.FromStrings("__name__", "http_requests_total", "job", "api", "instance", inst, "code", "500"), ts, float64(m))
			require.NoError(b, err)
		}
		_, err := app.Append(0, rec(rulegen.TotalEventsRate5m), ts, instances*1001/60.0)
		require.NoError(b, err)
		_, err = app.Append(0, rec(rulegen.ErrorEventsRate5m), ts, instances/60.0)
		require.NoError(b, err)
	}
	require.NoError(b, app.Commit())

	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e9, Timeout: time.Minute, Logger: promslog.NewNopLogger()})
	opts := &rules.ManagerOptions{
		QueryFunc:    rules.EngineQueryFunc(engine, st),
		AppendableV2: st,
		Queryable:    st,
		Context:      ctx,
		Logger:       promslog.NewNopLogger(),
	}
	o := &slo.SLO{Objective: 99.9, Period: model.Duration(days * 24 * time.Hour)}
	windows := append(rulegen.Windows(o), o.PeriodDuration())
	build := func(naive bool) *rules.Group {
		var rs []rules.Rule
		for _, w := range windows {
			r := model.Duration(w).String()
			expr := fmt.Sprintf(`sum_over_time(slo:sli_error_events:rate5m{service="api",slo="availability"}[%s]) / (sum_over_time(slo:sli_total_events:rate5m{service="api",slo="availability"}[%s]) > 0)`, r, r)
			if naive {
				expr = fmt.Sprintf(`sum(rate(http_requests_total{job="api",code=~"5.."}[%s])) / (sum(rate(http_requests_total{job="api"}[%s])) > 0)`, r, r)
			}
			e, err := slo.Parser.ParseExpr(expr)
			require.NoError(b, err)
			rs = append(rs, rules.NewRecordingRule("bench:ratio_rate"+r, e, labels.EmptyLabels()))
		}
		return rules.NewGroup(rules.GroupOptions{Name: "bench", Interval: time.Minute, Rules: rs, Opts: opts})
	}
	for _, c := range []struct {
		name  string
		naive bool
	}{{"generated", false}, {"naive", true}} {
		b.Run(c.name, func(b *testing.B) {
			g := build(c.naive)
			at := time.UnixMilli(end * 60000)
			for b.Loop() {
				g.Eval(ctx, at)
			}
			for _, r := range g.Rules() {
				require.NoError(b, r.LastError())
			}
		})
	}
}
