package dashboards

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/rootuip/sre/pkg/testutil"
)

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = []string{"instance", "job"}

var backquoted = regexp.MustCompile("`([a-zA-Z_][a-zA-Z0-9_]*)`")

// catalogueLabels reads the labels column of docs/metrics.md: the
// back-quoted names of each sre_ (and probe_) metric's labels, with the
// series of histograms and summaries (le for _bucket).
func catalogueLabels(t *testing.T, r io.Reader) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		text := sc.Text()
		if !strings.HasPrefix(text, "| `sre_") && !strings.HasPrefix(text, "| `probe_") {
			continue
		}
		cells := strings.Split(strings.Trim(text, "|"), "|")
		if len(cells) < 4 {
			continue // TestMetricNamesKnown reports it
		}
		name := strings.Trim(strings.TrimSpace(cells[0]), "`")
		var ls []string
		for _, m := range backquoted.FindAllStringSubmatch(cells[2], -1) {
			ls = append(ls, m[1])
		}
		ls = append(ls, targetLabels...)
		out[name] = ls
		switch strings.TrimSpace(cells[1]) {
		case "histogram":
			out[name+"_bucket"] = append(slices.Clone(ls), "le")
			out[name+"_sum"], out[name+"_count"] = ls, ls
		case "summary":
			out[name+"_sum"], out[name+"_count"] = ls, ls
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// labelProblems names the labels an expression reads of sred's metrics
// that the catalogue does not give them: in a selector's matchers, and in
// the by clause of an aggregation over one sre_ metric only. A panel
// filtering or grouping on a label its metric lacks shows nothing, or one
// unlabelled series, without any error.
func labelProblems(expr parser.Expr, known map[string][]string) []string {
	var out []string
	metricsUnder := func(n parser.Node) []string {
		var names []string
		parser.Inspect(n, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok && !slices.Contains(names, vs.Name) {
				names = append(names, vs.Name)
			}
			return nil
		})
		return names
	}
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			ls, ok := known[n.Name]
			if !ok {
				return nil
			}
			for _, m := range n.LabelMatchers {
				if m.Name != labels.MetricName && !slices.Contains(ls, m.Name) {
					out = append(out, n.Name+" has no label "+m.Name+" (matcher "+m.String()+")")
				}
			}
		case *parser.AggregateExpr:
			names := metricsUnder(n.Expr)
			if len(names) != 1 || n.Without {
				return nil
			}
			ls, ok := known[names[0]]
			if !ok {
				return nil
			}
			for _, g := range n.Grouping {
				if !slices.Contains(ls, g) {
					out = append(out, names[0]+" has no label "+g+" ("+n.Op.String()+" by)")
				}
			}
		}
		return nil
	})
	sort.Strings(out)
	return slices.Compact(out)
}

// Every label a panel filters or groups sred's metrics by is one
// docs/metrics.md gives the metric (pkg/app's scrape test checks the
// catalogue against a real /metrics), or a target label.
func TestMetricLabelsKnown(t *testing.T) {
	f, err := os.Open(filepath.Join(testutil.RepoRoot(t), "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	known := catalogueLabels(t, f)
	if len(known["sre_incidents_open"]) == 0 || !slices.Contains(known["sre_incident_detection_seconds_bucket"], "le") {
		t.Fatalf("catalogue labels not read: %v", known["sre_incidents_open"])
	}
	for _, tg := range committedTargets(t) {
		expr := parse(t, tg)
		if expr == nil {
			continue
		}
		for _, p := range labelProblems(expr, known) {
			t.Errorf("%s: panel %q: %s", tg.dashboard, tg.panel, p)
		}
	}
}

// The check finds a matcher and a grouping on labels the metric lacks,
// through functions and nested aggregations, and accepts target labels, le
// of a histogram's buckets and a by clause over two metrics.
func TestLabelProblems(t *testing.T) {
	known := catalogueLabels(t, strings.NewReader(
		"| `sre_webhook_deliveries_total` | counter | `outcome` | x |\n"+
			"| `sre_incident_time_to_resolve_seconds` | histogram | `service`, `severity` | x |\n"+
			"| `sre_jobs_pending` | gauge | `queue` (escalation, notify) | x |\n"))
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`sum by (outcome) (rate(sre_webhook_deliveries_total[5m]))`, nil},
		{`sum by (result) (rate(sre_webhook_deliveries_total{outcome="error"}[5m]))`,
			[]string{"sre_webhook_deliveries_total has no label result (sum by)"}},
		{`sum(rate(sre_webhook_deliveries_total{result="error"}[5m]))`,
			[]string{`sre_webhook_deliveries_total has no label result (matcher result="error")`}},
		{`histogram_quantile(0.5, sum by (severity, le) (max by (service, severity, le) (increase(sre_incident_time_to_resolve_seconds_bucket{service=~".*"}[1d]))))`, nil},
		{`sum by (queue) (max by (queue, instance) (sre_jobs_pending))`, nil},
		{`max by (slo) (sre_jobs_pending{slo="x"})`, []string{
			`sre_jobs_pending has no label slo (matcher slo="x")`, "sre_jobs_pending has no label slo (max by)"}},
		{`sum by (service) (sre_jobs_pending * on (queue) group_left (service) slo:info)`, nil},
		{`max by (anything) (slo:info{whatever="x"})`, nil},
	} {
		expr, err := promql.ParseExpr(tc.expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := labelProblems(expr, known); !slices.Equal(got, tc.want) {
			t.Errorf("labelProblems(%s) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}
