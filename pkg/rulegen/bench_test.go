package rulegen_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/util/teststorage"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/rulegen"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/testutil"
)

// exampleSpec is the spec of the public API, as users write it, relative
// to the repository root.
const exampleSpec = "examples/slos/api.yml"

func readExample(b *testing.B) []byte {
	text, err := os.ReadFile(filepath.Join(testutil.RepoRoot(b), exampleSpec))
	require.NoError(b, err)
	return text
}

// BenchmarkGenerate1000 compiles 1,000 SLOs: 250 services with the 4 SLOs
// of examples/slos/api.yml, each service reading its own series (job label),
// so that every SLO has its own selectors as in real specs.
func BenchmarkGenerate1000(b *testing.B) {
	base := readExample(b)
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

// Data of BenchmarkEvaluate: evalInstances instances of the API scraped
// every minute for the SLO's period (30d) and an hour more, each exporting
// http_requests_total{code="200"} and {code="500"}: 1,000 requests a minute
// per instance; errors at a baseline of 0.002% (a fifth of the 99.99%
// objective's budget) swinging ±50% over each day, and an outage at 0.5%
// (burn rate 50) in the last 2 hours, so that both page tiers and both
// ticket tiers fire, each well clear of its threshold.
const (
	evalInstances = 25
	evalStep      = time.Minute
)

func errorFraction(t, end time.Duration) float64 {
	if t > end-2*time.Hour {
		return 0.005
	}
	return 0.00002 * (1 + 0.5*math.Sin(2*math.Pi*t.Hours()/24))
}

// BenchmarkEvaluate is the cost of evaluating, in Prometheus' rule engine,
// the rule group `srectl generate` writes for the availability SLO of
// examples/slos/api.yml (30d period; all its recording and alerting rules),
// against the naive form of the same group, where every window reads the
// raw series (sum(rate(http_requests_total{...}[w]))) instead of summing
// the 5m rate recordings.
//
// The generated form's 5m recordings are what its own first two rules
// recorded over the period, every minute, from the raw series (computed
// with a range query, as `promtool tsdb create-blocks-from rules` would);
// in the timed loop both groups evaluate all their rules, the 5m recordings
// from the raw series included. Before timing, one evaluation of each form
// must give the same error ratios and burn rates (within 2%: the sums of
// 5m rates weigh the first and last 5 minutes of a window less) and the
// same alert states.
func BenchmarkEvaluate(b *testing.B) {
	specs, err := slo.Parse(readExample(b), exampleSpec)
	require.NoError(b, err)
	files, err := rulegen.Generate(specs)
	require.NoError(b, err)
	require.Len(b, files, 1)
	var generated rulefmt.RuleGroup
	for _, g := range files[0].Groups {
		if g.Name == rulegen.GroupName("api", "availability") {
			generated = g
		}
	}
	require.NotEmpty(b, generated.Rules, "no group for api/availability in %s", exampleSpec)
	naive, err := naiveForm(generated)
	require.NoError(b, err)

	var o *slo.SLO
	for i := range specs[0].SLOs {
		if specs[0].SLOs[i].Name == "availability" {
			o = &specs[0].SLOs[i]
		}
	}
	period := o.PeriodDuration()
	span := period + time.Hour
	st := teststorage.New(b)
	ctx := context.Background()
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e9, Timeout: 5 * time.Minute, Logger: promslog.NewNopLogger()})
	fill(b, engine, st, generated, span)
	at := time.UnixMilli(span.Milliseconds())

	dir := b.TempDir()
	var paths []string
	for i, g := range []rulefmt.RuleGroup{generated, naive} {
		f := &rulegen.File{Name: "api.yml", Service: "api", Groups: []rulefmt.RuleGroup{g}}
		out, err := f.Marshal()
		require.NoError(b, err)
		p := filepath.Join(dir, fmt.Sprintf("%d-%s", i, f.Name))
		require.NoError(b, os.WriteFile(p, out, 0o644))
		paths = append(paths, p)
	}
	mgr := rules.NewManager(&rules.ManagerOptions{
		QueryFunc:    rules.EngineQueryFunc(engine, st),
		NotifyFunc:   func(context.Context, string, ...*rules.Alert) {},
		AppendableV2: st,
		Queryable:    st,
		Context:      ctx,
		Logger:       promslog.NewNopLogger(),
		Parser:       slo.Parser,
	})
	groups := make([]*rules.Group, 2)
	for i, p := range paths {
		loaded, errs := mgr.LoadGroups(evalStep, labels.EmptyLabels(), "", nil, false, p)
		require.Empty(b, errs)
		require.Len(b, loaded, 1)
		for _, g := range loaded {
			groups[i] = g
		}
	}

	// One evaluation of each form, then the same answers from both.
	for _, g := range groups {
		g.Eval(ctx, at)
		for _, r := range g.Rules() {
			require.NoError(b, r.LastError(), "rule %s", r.Name())
		}
	}
	compareForms(b, engine, st, generated, groups, at)

	for i, name := range []string{"generated", "naive"} {
		b.Run(name, func(b *testing.B) {
			g := groups[i]
			for b.Loop() {
				g.Eval(ctx, at)
			}
			for _, r := range g.Rules() {
				require.NoError(b, r.LastError(), "rule %s", r.Name())
			}
			b.ReportMetric(float64(len(g.Rules())), "rules")
		})
	}
}

// fill stores the raw counters from 0 to span every evalStep and, an hour
// at a time after the raw samples of that hour, the generated group's 5m
// rate recordings (its rules recording rulegen.ErrorEventsRate5m and
// TotalEventsRate5m) every evalStep from 5m to span-evalStep, evaluated
// from the raw series with their own expressions by a range query. Samples
// are appended in time order, as a running Prometheus appends them.
func fill(b *testing.B, engine *promql.Engine, st *teststorage.TestStorage, g rulefmt.RuleGroup, span time.Duration) {
	ctx := context.Background()
	var recs []rulefmt.Rule
	for _, r := range g.Rules {
		if r.Record == rulegen.ErrorEventsRate5m || r.Record == rulegen.TotalEventsRate5m {
			recs = append(recs, r)
		}
	}
	require.Len(b, recs, 2, "the generated group's 5m rate recordings")

	ok := make([]labels.Labels, evalInstances)
	bad := make([]labels.Labels, evalInstances)
	for i := range evalInstances {
		inst := fmt.Sprintf("10.0.0.%d:8080", i)
		ok[i] = labels.FromStrings("__name__", "http_requests_total", "job", "api", "instance", inst, "code", "200")
		bad[i] = labels.FromStrings("__name__", "http_requests_total", "job", "api", "instance", inst, "code", "500")
	}
	okCount := make([]float64, evalInstances)
	badCount := make([]float64, evalInstances)
	recorded := 5*time.Minute - evalStep // the last recording time
	for hour := time.Duration(0); hour <= span; hour += time.Hour {
		app := st.Appender(ctx)
		for t := hour; t < hour+time.Hour && t <= span; t += evalStep {
			frac := errorFraction(t, span)
			for i := range evalInstances {
				if t > 0 {
					// Instances differ a little in traffic.
					reqs := 1000 * (1 + float64(i%5)/10)
					badCount[i] += reqs * frac
					okCount[i] += reqs * (1 - frac)
				}
				_, err := app.Append(0, ok[i], t.Milliseconds(), okCount[i])
				require.NoError(b, err)
				_, err = app.Append(0, bad[i], t.Milliseconds(), badCount[i])
				require.NoError(b, err)
			}
		}
		require.NoError(b, app.Commit())

		from, to := recorded+evalStep, min(hour+time.Hour-evalStep, span-evalStep)
		if to < from {
			continue
		}
		app = st.Appender(ctx)
		for _, r := range recs {
			q, err := engine.NewRangeQuery(ctx, st, nil, r.Expr, time.UnixMilli(from.Milliseconds()), time.UnixMilli(to.Milliseconds()), evalStep)
			require.NoError(b, err)
			res := q.Exec(ctx)
			require.NoError(b, res.Err)
			m, err := res.Matrix()
			require.NoError(b, err)
			require.Len(b, m, 1, "%s: %s", r.Record, r.Expr)
			lb := labels.NewBuilder(m[0].Metric)
			lb.Set(labels.MetricName, r.Record)
			for k, v := range r.Labels {
				lb.Set(k, v)
			}
			ls := lb.Labels()
			for _, p := range m[0].Floats {
				_, err := app.Append(0, ls, p.T, p.F)
				require.NoError(b, err)
			}
			q.Close()
		}
		require.NoError(b, app.Commit())
		recorded = to
	}
}

// compareForms checks that the naive group recorded the same values as the
// generated one for every recording rule, and that the alerting rules of
// both are in the same state with the same number of alerts.
func compareForms(b *testing.B, engine *promql.Engine, st *teststorage.TestStorage, generated rulefmt.RuleGroup, groups []*rules.Group, at time.Time) {
	ctx := context.Background()
	value := func(name string) float64 {
		q, err := engine.NewInstantQuery(ctx, st, nil, fmt.Sprintf(`{__name__=%q, service="api", slo="availability"}`, name), at)
		require.NoError(b, err)
		defer q.Close()
		v, err := q.Exec(ctx).Vector()
		require.NoError(b, err)
		require.Len(b, v, 1, "series %s at %s", name, at)
		return v[0].F
	}
	compared := 0
	for _, r := range generated.Rules {
		if r.Record == "" {
			continue
		}
		want, got := value(r.Record), value(naiveName(r.Record))
		if math.Abs(got-want) > 0.02*math.Abs(want)+1e-12 {
			b.Errorf("%s: generated %g, naive %g: more than 2%% apart", r.Record, want, got)
		}
		compared++
	}
	states := func(g *rules.Group) (out []string) {
		for _, r := range g.Rules() {
			if ar, ok := r.(*rules.AlertingRule); ok {
				out = append(out, fmt.Sprintf("%s/%s/%d", ar.Labels().Get("burn_tier"), ar.State(), len(ar.ActiveAlerts())))
			}
		}
		return out
	}
	gen, nai := states(groups[0]), states(groups[1])
	require.Equal(b, gen, nai, "alert states of the generated and the naive form")
	for _, s := range gen {
		if strings.HasPrefix(s, "page") || strings.HasPrefix(s, "ticket") {
			require.NotContains(b, s, "inactive", "the data must fire every burn-rate tier (%v)", gen)
		}
	}
	b.Logf("%d recordings agree within 2%%; alerts (tier/state/count): %v", compared, gen)
}

// readsRaw reports whether e reads a raw series rather than a recording.
func readsRaw(e parser.Expr) bool {
	raw := false
	parser.Inspect(e, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok && !strings.Contains(vs.Name, ":") {
			raw = true
		}
		return nil
	})
	return raw
}

func naiveName(record string) string { return "naive:" + strings.TrimPrefix(record, "slo:") }

// naiveForm rewrites a generated group into its naive raw-window form:
// every sum_over_time or avg_over_time of a 5m rate recording over a
// window w becomes that recording's own expression with its ranges set to
// w (for example sum_over_time(slo:sli_error_events:rate5m{...}[1h])
// becomes sum(rate(http_requests_total{...,code=~"5.."}[1h]))); the ratio
// of two such sums is the same. Records are renamed naive:..., alerts
// Naive..., so that both forms can be evaluated on the same storage.
func naiveForm(g rulefmt.RuleGroup) (rulefmt.RuleGroup, error) {
	base := map[string]string{}
	for _, r := range g.Rules {
		if r.Record == rulegen.ErrorEventsRate5m || r.Record == rulegen.TotalEventsRate5m {
			base[r.Record] = r.Expr
		}
	}
	var err error
	var rewrite func(e parser.Expr) parser.Expr
	rewrite = func(e parser.Expr) parser.Expr {
		switch n := e.(type) {
		case *parser.Call:
			if (n.Func.Name == "sum_over_time" || n.Func.Name == "avg_over_time") && len(n.Args) == 1 {
				if ms, ok := n.Args[0].(*parser.MatrixSelector); ok {
					vs := ms.VectorSelector.(*parser.VectorSelector)
					if src, ok := base[vs.Name]; ok {
						raw, perr := slo.Parser.ParseExpr(src)
						if perr != nil {
							err = perr
							return e
						}
						parser.Inspect(raw, func(node parser.Node, _ []parser.Node) error {
							if m, ok := node.(*parser.MatrixSelector); ok {
								m.Range = ms.Range
							}
							return nil
						})
						return &parser.ParenExpr{Expr: raw}
					}
				}
			}
			for i := range n.Args {
				n.Args[i] = rewrite(n.Args[i])
			}
		case *parser.BinaryExpr:
			lhs, rhs := rewrite(n.LHS), rewrite(n.RHS)
			if n.Op.IsSetOperator() && (readsRaw(lhs) != readsRaw(rhs)) {
				// The raw sums lack the recordings' labels (service,
				// slo, ...): a hand-written naive rule joins with on().
				n.VectorMatching = &parser.VectorMatching{Card: parser.CardManyToMany, On: true}
			}
			n.LHS, n.RHS = lhs, rhs
		case *parser.ParenExpr:
			n.Expr = rewrite(n.Expr)
		case *parser.AggregateExpr:
			n.Expr = rewrite(n.Expr)
		case *parser.UnaryExpr:
			n.Expr = rewrite(n.Expr)
		case *parser.MatrixSelector:
			n.VectorSelector = rewrite(n.VectorSelector)
		case *parser.VectorSelector:
			if strings.HasPrefix(n.Name, "slo:") {
				n.Name = naiveName(n.Name)
				for _, m := range n.LabelMatchers {
					if m.Name == labels.MetricName {
						*m = *labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, n.Name)
					}
				}
			}
		}
		return e
	}
	out := rulefmt.RuleGroup{Name: "naive:" + g.Name}
	for _, r := range g.Rules {
		e, perr := slo.Parser.ParseExpr(r.Expr)
		if perr != nil {
			return out, fmt.Errorf("rule %s%s: %w", r.Record, r.Alert, perr)
		}
		// The base recordings keep their expressions (only renamed).
		if _, isBase := base[r.Record]; !isBase {
			e = rewrite(e)
		}
		if err != nil {
			return out, err
		}
		nr := r
		nr.Expr = e.String()
		if r.Record != "" {
			nr.Record = naiveName(r.Record)
		} else {
			nr.Alert = "Naive" + r.Alert
		}
		out.Rules = append(out.Rules, nr)
	}
	return out, nil
}
