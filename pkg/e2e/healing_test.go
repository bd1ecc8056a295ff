package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/testutil"
)

// memoryAlert is the shipped rule the demo service's memory gauge fires.
const memoryAlert = "ServiceMemoryUsageHigh"

// healingFor replaces the `for` of every shipped healing rule in the test:
// the expressions, labels and annotations are the shipped ones.
const healingFor = "2s"

// Step timeouts of the healing scenario.
const (
	timeoutHealingUp    = 90 * time.Second
	timeoutNodeRules    = 2 * time.Minute
	timeoutMemoryFires  = 2 * time.Minute
	timeoutHealingRun   = time.Minute
	timeoutHealResolved = 2 * time.Minute
)

// TestHealing is the auto-healing loop with real processes: the demo
// service's memory gauge crosses 90% -> the shipped ServiceMemoryUsageHigh
// fires in Prometheus -> Alertmanager -> sred opens an incident and runs the
// restart runbook once (an exec argv actuator that records its calls, then
// the demo's restart) -> the alert and the incident resolve. The leak comes
// back twice: the second time the runbook restarts again, the third time
// its max_runs (2 an hour) is reached, the run ends escalated and a human
// is paged at once instead. node_exporter runs beside it, and the shipped
// node rules are evaluated on this machine's metrics; sred's health checks
// reach Prometheus under blackbox_exporter's names.
func TestHealing(t *testing.T) {
	t.Parallel()
	bin := binaries(t)
	s := &stack{t: t, steps: newSteps()}
	s.sink = newSink(t, sinkSecret)
	ctx := context.Background()

	// node_exporter, with the collectors the rules read.
	nodeAddr := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	testutil.StartProcess(t, "node_exporter", testutil.Tool(t, "node_exporter"), []string{
		"--web.listen-address=" + nodeAddr, "--collector.disable-defaults",
		"--collector.filesystem", "--collector.meminfo", "--log.level=warn",
	}, t.TempDir(), "http://"+nodeAddr, "/metrics")

	// The demo service: its gauges carry service="demo".
	demoAddr := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	s.demo = testutil.StartProcess(t, "demo-service", filepath.Join(bin, "demo-service"),
		[]string{"--web.listen-address=" + demoAddr, "--service.name=demo", "--traffic.rps=2"}, t.TempDir(), "http://"+demoAddr, "/-/ready")

	sredAddr := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	amConfig := render(t, "alertmanager.yml.tmpl", map[string]any{"Sreds": []string{sredAddr}, "WebhookToken": webhookToken})
	s.ams = append(s.ams, testutil.StartAlertmanager(t, testutil.AlertmanagerOptions{Config: amConfig}))

	// The runbook, with this test binary as its recording actuator.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	runbooks := t.TempDir()
	recordFile := filepath.Join(t.TempDir(), "restarts.jsonl")
	rb := render(t, "healing/restart-demo.yml.tmpl", map[string]any{"Recorder": self, "Record": recordFile})
	if err := os.WriteFile(filepath.Join(runbooks, "restart-demo.yml"), []byte(rb), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := render(t, "healing/sred.yml.tmpl", map[string]any{
		"Self": sredAddr, "WebhookToken": webhookToken, "Alertmanager": s.ams[0].URL, "Sink": s.sink.URL(),
		"SinkSecret": sinkSecret, "AckSecret": ackSecret, "Runbooks": runbooks, "Demo": s.demo.URL, "DemoAddr": demoAddr,
	})
	if err := os.WriteFile(filepath.Join(dir, "sred.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s.sreds = append(s.sreds, testutil.StartProcess(t, "sred", filepath.Join(bin, "sred"), []string{
		"--config.file=" + filepath.Join(dir, "sred.yml"), "--web.listen-address=" + sredAddr,
		"--storage.path=" + filepath.Join(dir, "data"), "--log.level=info", "--web.no-auth",
	}, dir, "http://"+sredAddr, "/-/ready"))

	// Prometheus with the shipped healing rules.
	rules := shippedHealingRules(t)
	s.prom = testutil.StartPrometheus(t, testutil.PrometheusOptions{
		Config: render(t, "healing/prometheus.yml.tmpl", map[string]any{
			"Alertmanager": hostPort(s.ams[0].URL), "Demo": demoAddr, "Node": nodeAddr, "Sred": sredAddr,
		}),
		Files: map[string]string{"rules/healing.rules.yml": rules},
	})
	client, err := api.NewClient(api.Config{Address: s.prom.URL})
	if err != nil {
		t.Fatal(err)
	}
	s.api = promv1.NewAPI(client)
	s.steps.mark("stack started", "node_exporter, demo, alertmanager, sred, prometheus")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("=== healing report (failed at %q) ===\n%s\n--- restarts recorded ---\n%s", s.failed, s.report(), readFile(recordFile))
		} else {
			t.Logf("=== steps ===\n%s", s.steps)
		}
	})

	// 1. Everything is scraped, and sred's health checks of the demo reach
	// Prometheus as blackbox_exporter's would: probe_success 1, labelled
	// with the probed target as instance (honor_labels).
	s.waitFor("targets up, probes succeed", timeoutHealingUp, func(ctx context.Context) (bool, string, error) {
		up, err := s.query(ctx, `up{job=~"demo|node|sred"} == 1`)
		if err != nil {
			return false, "", err
		}
		probes, err := s.query(ctx, `probe_success{job="sred",service="demo"} == 1`)
		if err != nil {
			return false, "", err
		}
		var instances []string
		for _, p := range probes {
			instances = append(instances, string(p.Metric["instance"]))
		}
		slices.Sort(instances)
		want := []string{demoAddr, s.demo.URL + "/-/healthy"}
		slices.Sort(want)
		return len(up) == 3 && slices.Equal(instances, want), fmt.Sprintf("%d/3 targets up, probes ok on %v", len(up), instances), nil
	})
	if code, err := s.query(ctx, `probe_http_status_code{probe="demo-healthy"}`); err != nil || len(code) != 1 || code[0].Value != 200 {
		t.Errorf("probe_http_status_code of demo-healthy = %v (%v), want 200", code, err)
	}

	// 2. The node rules evaluate on this machine's node_exporter: every
	// shipped rule is healthy in Prometheus, and the quantity each compares
	// with its threshold (memory used, each filesystem's use, the 4-hour
	// prediction) has series for this machine. The thresholds themselves
	// are promtool's unit tests (examples/rules/tests).
	nodeRules := []string{"NodeMemoryUsageHigh", "DiskSpaceLow", "DiskWillFillIn4Hours"}
	s.waitFor("node rules evaluate on node_exporter", timeoutNodeRules, func(ctx context.Context) (bool, string, error) {
		res, err := s.api.Rules(ctx, nil)
		if err != nil {
			return false, "", err
		}
		exprs := map[string]string{}
		var obs []string
		for _, g := range res.Groups {
			for _, r := range g.Rules {
				ar, ok := r.(promv1.AlertingRule)
				if !ok {
					continue
				}
				if ar.Health == promv1.RuleHealthBad {
					return false, "", violationf("rule %s: %s", ar.Name, ar.LastError)
				}
				if ar.Health != promv1.RuleHealthGood {
					obs = append(obs, ar.Name+" "+string(ar.Health))
				}
				exprs[ar.Name] = ar.Query
			}
		}
		if len(obs) > 0 {
			return false, strings.Join(obs, ", "), nil
		}
		for _, name := range nodeRules {
			for _, q := range thresholdOperands(t, exprs[name]) {
				vec, err := s.query(ctx, q)
				if err != nil {
					return false, "", err
				}
				obs = append(obs, fmt.Sprintf("%s: %d series", name, len(vec)))
				if len(vec) == 0 {
					return false, strings.Join(obs, "; ") + " (of " + q + ")", nil
				}
			}
		}
		return true, strings.Join(obs, "; "), nil
	})

	// 3. The leak, three times.
	var ids []string
	for cycle := 1; cycle <= 3; cycle++ {
		if b, code, err := do(ctx, http.MethodPost, s.demo.URL+"/admin/memory?ratio=0.95", nil); err != nil || code != http.StatusOK {
			t.Fatalf("cycle %d: set memory: %d %s %v", cycle, code, b, err)
		}
		s.steps.mark(fmt.Sprintf("leak %d", cycle), "POST /admin/memory?ratio=0.95")
		s.waitFor(fmt.Sprintf("%s fires (%d)", memoryAlert, cycle), timeoutMemoryFires, func(ctx context.Context) (bool, string, error) {
			as, err := s.promAlerts(ctx, memoryAlert)
			if err != nil {
				return false, "", err
			}
			for _, a := range as {
				if a.State == promv1.AlertStateFiring && a.Labels["service"] == "demo" && a.Labels["severity"] == "high" {
					return true, fmt.Sprintf("%s value %s", a.Labels, a.Value), nil
				}
			}
			return false, fmt.Sprintf("alerts %v", as), nil
		})
		var inc incident.Incident
		s.waitFor(fmt.Sprintf("incident %d opened", cycle), timeoutDeliver, func(ctx context.Context) (bool, string, error) {
			incs, err := s.incidents(ctx, s.sreds[0])
			if err != nil {
				return false, "", err
			}
			var mine []incident.Incident
			for _, i := range incs {
				if i.Labels["alertname"] == memoryAlert {
					mine = append(mine, i)
				}
			}
			if len(mine) > cycle {
				return false, "", violationf("%d incidents for %d leaks", len(mine), cycle)
			}
			if len(mine) < cycle {
				return false, fmt.Sprintf("%d incident(s)", len(mine)), nil
			}
			inc = mine[0] // newest first
			return true, fmt.Sprintf("%s %s %s", inc.ID, inc.Status, inc.Severity), nil
		})
		if inc.Service != "demo" || inc.Severity != incident.SeverityHigh {
			t.Errorf("incident %s: service %q severity %s, want demo, HIGH", inc.ID, inc.Service, inc.Severity)
		}
		ids = append(ids, inc.ID)
		want := "succeeded"
		if cycle == 3 {
			want = "escalated"
		}
		var r run
		s.waitFor(fmt.Sprintf("runbook run %d %s", cycle, want), timeoutHealingRun, func(ctx context.Context) (bool, string, error) {
			rs, err := s.runs(ctx, inc.ID)
			if err != nil {
				return false, "", err
			}
			if len(rs) != 1 {
				return false, fmt.Sprintf("%d runs", len(rs)), nil
			}
			r = rs[0]
			if r.Status == want {
				return true, fmt.Sprintf("run %d %s %s", r.ID, r.Status, r.Reason), nil
			}
			if r.Status != "pending" && r.Status != "running" {
				return false, "", violationf("run %d ended %s (%s), want %s", r.ID, r.Status, r.Reason, want)
			}
			return false, r.Status, nil
		})
		calls := recorded(t, recordFile)
		restarts := demoRestarts(t, s)
		wantCalls := min(cycle, 2)
		if len(calls) != wantCalls || restarts != wantCalls {
			t.Fatalf("after leak %d: %d recorded actuator call(s) %v and %d demo restart(s), want %d", cycle, len(calls), calls, restarts, wantCalls)
		}
		if cycle < 3 {
			if got := calls[cycle-1]; !slices.Equal(got, []string{"restart", "demo", inc.ID}) {
				t.Errorf("actuator call %d: argv %q, want [restart demo %s]", cycle, got, inc.ID)
			}
			s.waitFor(fmt.Sprintf("incident %d resolved", cycle), timeoutHealResolved, func(ctx context.Context) (bool, string, error) {
				got, err := s.incident(ctx, inc.ID)
				if err != nil {
					return false, "", err
				}
				return got.Status == incident.StatusResolved, string(got.Status), nil
			})
			continue
		}
		if !strings.HasPrefix(r.Reason, "max_runs: runbook restart-demo already ran 2 times on service/demo in the last 1h") {
			t.Errorf("escalated run: reason %q", r.Reason)
		}
		// The escalation pages level 0 at once, instead of after its 10m.
		s.waitFor("a human is paged", timeoutNotify, func(context.Context) (bool, string, error) {
			msgs, bad := s.sink.messages()
			if len(bad) > 0 {
				return false, "", violationf("sink rejected a notification: %s", bad[0])
			}
			for _, m := range msgs {
				if m.Msg.IncidentID == inc.ID && m.Msg.Event == notify.EventTrigger {
					return true, fmt.Sprintf("%s: %q", m.key(), m.Msg.Subject), nil
				}
			}
			return false, fmt.Sprintf("%d message(s), none for %s", len(msgs), inc.ID), nil
		})
		tl, err := s.timeline(ctx, s.sreds[0], inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(tl, func(e incident.TimelineEntry) bool {
			return strings.Contains(e.Message, "escalates the incident: max_runs")
		}) {
			t.Errorf("timeline of %s has no escalation by the runbook: %+v", inc.ID, tl)
		}
	}

	// The incidents automation healed paged nobody: level 0 waits 10m.
	msgs, _ := s.sink.messages()
	for _, m := range msgs {
		if (m.Msg.IncidentID == ids[0] || m.Msg.IncidentID == ids[1]) && m.Msg.Event == notify.EventTrigger {
			t.Errorf("%s was paged (%s) although the runbook healed it", m.Msg.IncidentID, m.key())
		}
	}
	// sred's own counters agree, through Prometheus.
	s.waitFor("runbook results in Prometheus", timeoutMTTR, func(ctx context.Context) (bool, string, error) {
		vec, err := s.query(ctx, `sre_runbook_executions_total{job="sred",runbook="restart-demo"}`)
		if err != nil {
			return false, "", err
		}
		got := map[string]float64{}
		for _, v := range vec {
			got[string(v.Metric["result"])] = float64(v.Value)
		}
		return got["succeeded"] == 2 && got["escalated"] == 1, fmt.Sprint(got), nil
	})
}

// shippedHealingRules returns examples/rules/healing.rules.yml with every
// `for` set to healingFor, checked by promtool.
func shippedHealingRules(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "examples", "rules", "healing.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	n := 0
	var walk func(*yaml.Node)
	walk = func(x *yaml.Node) {
		if x.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(x.Content); i += 2 {
				if x.Content[i].Value == "for" {
					x.Content[i+1].Value = healingFor
					n++
				}
			}
		}
		for _, c := range x.Content {
			walk(c)
		}
	}
	walk(&doc)
	if n == 0 {
		t.Fatal("healing.rules.yml: no rule has a for")
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "healing.rules.yml")
	if err := os.WriteFile(f, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if o, err := exec.Command(testutil.Tool(t, "promtool"), "check", "rules", f).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules on the shortened healing rules: %v\n%s", err, o)
	}
	return string(out)
}

// thresholdOperands returns the left operands of expr's comparisons with
// a number (the quantity a rule compares with its threshold).
func thresholdOperands(t *testing.T, expr string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Fatalf("parse %s: %v", expr, err)
	}
	var out []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if b, ok := n.(*parser.BinaryExpr); ok && b.Op.IsComparisonOperator() {
			if _, ok := b.RHS.(*parser.NumberLiteral); ok {
				out = append(out, b.LHS.String())
			}
		}
		return nil
	})
	if len(out) == 0 {
		t.Fatalf("%s compares nothing with a threshold", expr)
	}
	return out
}

// recorded returns the argument lists the recording actuator was called with.
func recorded(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var args []string
		if err := json.Unmarshal(sc.Bytes(), &args); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, args)
	}
	return out
}

// demoRestarts is the demo service's count of POST /admin/restart.
func demoRestarts(t *testing.T, s *stack) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, code, err := do(ctx, http.MethodGet, s.demo.URL+"/admin/resources", nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /admin/resources: %d %s %v", code, b, err)
	}
	var res struct {
		Restarts int `json:"restarts"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	return res.Restarts
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
