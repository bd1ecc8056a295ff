// Package budgettest starts a real Prometheus holding known data and the
// recording rules that package rulegen generates for a set of SLO specs, so
// that budget and SLA tests can check figures computed by hand.
//
// The raw series are written as OpenMetrics and imported with
// `promtool tsdb create-blocks-from openmetrics`; the recording rules are
// then backfilled with `promtool tsdb create-blocks-from rules` against the
// running Prometheus, one dependency level at a time (a rule reading another
// rule's output needs that output on disk first), and the final Prometheus
// loads the generated rule files.
package budgettest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/rootuip/sre/pkg/rulegen"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/testutil"
)

// Step is the spacing of raw samples and of rule evaluations.
const Step = time.Minute

// Series is one raw counter with a sample every Step from Start to the end
// of the data (inclusive).
type Series struct {
	Metric string
	Labels map[string]string
	Start  time.Time
	// Initial is the value at Start. Keep it large: a counter starting near 0
	// limits rate()'s extrapolation and would blur the figures.
	Initial float64
	// Inc returns the increase over the minute ending at t.
	Inc func(t time.Time) float64
}

// Options describe the Prometheus to start.
type Options struct {
	Specs  []*slo.Spec
	Series []Series
	// End is the time of the last raw sample and of the last rule evaluation;
	// it must be on a minute.
	End time.Time
	// Recent is how far back from End the rules that read other rules are
	// backfilled (the 5m rate recordings cover all the data). Default 2h.
	Recent time.Duration
	// Args are extra Prometheus flags (e.g. --web.enable-admin-api).
	Args []string
}

// Server is the running Prometheus.
type Server struct {
	*testutil.Process
	// RuleFiles are the generated rule files (name -> content) it loaded.
	RuleFiles map[string]string
	// Groups are the generated rule groups.
	Groups []rulefmt.RuleGroup
}

// Start builds the data directory and starts Prometheus.
func Start(t *testing.T, o Options) *Server {
	t.Helper()
	if o.End.Truncate(time.Minute) != o.End {
		t.Fatalf("budgettest: End %s is not on a minute", o.End)
	}
	if o.Recent == 0 {
		o.Recent = 2 * time.Hour
	}
	promtool := testutil.Tool(t, "promtool")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")

	// Raw data.
	om := filepath.Join(dir, "data.om")
	start := writeOpenMetrics(t, om, o.Series, o.End)
	run(t, promtool, "tsdb", "create-blocks-from", "--quiet", "--max-block-duration=486h", "openmetrics", om, data)
	if err := os.Remove(om); err != nil {
		t.Fatal(err)
	}

	// Generated rules, split by dependency level.
	files, err := rulegen.Generate(o.Specs)
	if err != nil {
		t.Fatalf("generate rules: %v", err)
	}
	srv := &Server{RuleFiles: map[string]string{}}
	var recs []rulefmt.Rule
	var ruleFiles []string
	for _, f := range files {
		b, err := f.Marshal()
		if err != nil {
			t.Fatalf("marshal rules: %v", err)
		}
		srv.RuleFiles["rules/"+f.Name] = string(b)
		ruleFiles = append(ruleFiles, "rules/"+f.Name)
		srv.Groups = append(srv.Groups, f.Groups...)
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					recs = append(recs, r)
				}
			}
		}
	}
	levels := levelsOf(t, recs)

	args := append([]string{"--storage.tsdb.retention.time=1000d"}, o.Args...)
	prom := testutil.StartPrometheus(t, testutil.PrometheusOptions{Config: "global: {}\n", DataDir: data, Args: args})
	backfill := func(name string, rules []rulefmt.Rule, from time.Time) {
		if len(rules) == 0 {
			return
		}
		rf := name + ".yml"
		writeRules(t, filepath.Join(dir, rf), rules)
		out := filepath.Join(dir, name)
		// 162h blocks keep each range query under Prometheus' 11000 points.
		// promtool runs in dir and is given the rule file's name only: the
		// timestamps of a group's evaluations are offset within the
		// interval by a hash of the group's name and file path, so a path
		// in the test's random temporary directory gave every run other
		// timestamps, and the figures read at End could differ between
		// runs.
		runIn(t, dir, promtool, "tsdb", "create-blocks-from", "--quiet", "--max-block-duration=162h", "rules",
			"--url="+prom.URL, "--output-dir="+out, "--eval-interval="+Step.String(),
			"--start="+strconv.FormatInt(from.Unix(), 10), "--end="+strconv.FormatInt(o.End.Unix(), 10), rf)
		moveBlocks(t, out, data)
	}
	for i, lvl := range levels {
		// The 5m rate recordings are read over whole periods: backfill them
		// over all the data. Everything else is read at or near End.
		var full, recent []rulefmt.Rule
		for _, r := range lvl {
			if r.Record == rulegen.ErrorEventsRate5m || r.Record == rulegen.TotalEventsRate5m {
				full = append(full, r)
			} else {
				recent = append(recent, r)
			}
		}
		backfill(fmt.Sprintf("level%d-full", i), full, start.Add(5*time.Minute))
		backfill(fmt.Sprintf("level%d-recent", i), recent, o.End.Add(-o.Recent))
		prom.Stop()
		pf := testutil.PrometheusOptions{Config: "global: {}\n", DataDir: data, Args: args}
		if i == len(levels)-1 {
			pf.Config = "global: {}\nrule_files:\n"
			for _, f := range ruleFiles {
				pf.Config += "  - " + f + "\n"
			}
			pf.Files = srv.RuleFiles
		}
		prom = testutil.StartPrometheus(t, pf)
	}
	srv.Process = prom
	return srv
}

func run(t *testing.T, bin string, args ...string) {
	t.Helper()
	runIn(t, "", bin, args...)
}

// runIn runs bin with args in directory dir ("" for the current one).
func runIn(t *testing.T, dir, bin string, args ...string) {
	t.Helper()
	began := time.Now()
	defer func() {
		t.Logf("%s %s: %s", filepath.Base(bin), strings.Join(args[:4], " "), time.Since(began).Round(time.Millisecond))
	}()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args[:3], " "), err, out)
	}
}

func writeOpenMetrics(t *testing.T, path string, series []Series, end time.Time) time.Time {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	first := end
	byMetric := map[string][]Series{}
	var names []string
	for _, s := range series {
		if _, ok := byMetric[s.Metric]; !ok {
			names = append(names, s.Metric)
		}
		byMetric[s.Metric] = append(byMetric[s.Metric], s)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "# TYPE %s unknown\n", name)
		for _, s := range byMetric[name] {
			if s.Start.Before(first) {
				first = s.Start
			}
			lbl := labelString(s.Labels)
			v := s.Initial
			for ts := s.Start; !ts.After(end); ts = ts.Add(Step) {
				if ts != s.Start {
					v += s.Inc(ts)
				}
				fmt.Fprintf(w, "%s%s %s %d\n", name, lbl, strconv.FormatFloat(v, 'f', -1, 64), ts.Unix())
			}
		}
	}
	fmt.Fprintln(w, "# EOF")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return first
}

func labelString(l map[string]string) string {
	if len(l) == 0 {
		return ""
	}
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.Quote(l[k])
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// levelsOf orders recording rules so that each level only reads raw series
// and the outputs of earlier levels.
func levelsOf(t *testing.T, recs []rulefmt.Rule) [][]rulefmt.Rule {
	t.Helper()
	recorded := map[string]bool{}
	for _, r := range recs {
		recorded[r.Record] = true
	}
	deps := make([]map[string]bool, len(recs))
	for i, r := range recs {
		e, err := parser.NewParser(parser.Options{}).ParseExpr(r.Expr)
		if err != nil {
			t.Fatalf("parse %s: %v", r.Record, err)
		}
		deps[i] = map[string]bool{}
		parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok && recorded[vs.Name] {
				deps[i][vs.Name] = true
			}
			return nil
		})
	}
	done := map[string]bool{}
	left := map[int]bool{}
	for i := range recs {
		left[i] = true
	}
	var levels [][]rulefmt.Rule
	for len(left) > 0 {
		var lvl []rulefmt.Rule
		var names []string
		for i := range recs {
			if !left[i] {
				continue
			}
			ready := true
			for d := range deps[i] {
				if !done[d] {
					ready = false
				}
			}
			if ready {
				lvl = append(lvl, recs[i])
				names = append(names, recs[i].Record)
				delete(left, i)
			}
		}
		if len(lvl) == 0 {
			t.Fatal("recording rules depend on each other in a cycle")
		}
		for _, n := range names {
			done[n] = true
		}
		levels = append(levels, lvl)
	}
	return levels
}

func writeRules(t *testing.T, path string, rules []rulefmt.Rule) {
	t.Helper()
	var b strings.Builder
	b.WriteString("groups:\n  - name: backfill\n    rules:\n")
	for _, r := range rules {
		fmt.Fprintf(&b, "      - record: %s\n        expr: %s\n", r.Record, strconv.Quote(r.Expr))
		if len(r.Labels) > 0 {
			b.WriteString("        labels:\n")
			keys := make([]string, 0, len(r.Labels))
			for k := range r.Labels {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(&b, "          %s: %s\n", k, strconv.Quote(r.Labels[k]))
			}
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func moveBlocks(t *testing.T, from, to string) {
	t.Helper()
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatalf("read backfilled blocks: %v", err)
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if err := os.Rename(filepath.Join(from, e.Name()), filepath.Join(to, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}
