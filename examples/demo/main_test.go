package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	amconfig "github.com/prometheus/alertmanager/config"
	"github.com/prometheus/alertmanager/dispatch"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/rulegen"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/testutil"
)

// The inhibit rules committed in examples/alertmanager.yml are the ones
// `srectl generate --inhibit-rules` writes for examples/slos.
func TestAlertmanagerExampleHasGeneratedInhibitRules(t *testing.T) {
	root := testutil.RepoRoot(t)
	specs, err := slo.LoadFiles(filepath.Join(root, "examples", "slos"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := rulegen.MarshalInhibitRules(rulegen.InhibitRules(specs))
	if err != nil {
		t.Fatal(err)
	}
	var want, got struct {
		InhibitRules []rulegen.InhibitRule `yaml:"inhibit_rules"`
	}
	if err := yaml.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	ex, err := os.ReadFile(filepath.Join(root, "examples", "alertmanager.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(ex, &got); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got.InhibitRules) != fmt.Sprint(want.InhibitRules) || len(want.InhibitRules) == 0 {
		t.Fatalf("examples/alertmanager.yml inhibit_rules = %v, the generator writes %v:\n%s", got.InhibitRules, want.InhibitRules, b)
	}
}

// The configurations the demo writes are accepted by the pinned
// Alertmanager's and Prometheus' own checkers (promtool, amtool has none:
// Alertmanager itself starts in TestDemo).
func TestDemoConfigs(t *testing.T) {
	root := testutil.RepoRoot(t)
	o := testOptions(t, root)
	if err := os.MkdirAll(filepath.Join(o.dataDir, "sred"), 0o755); err != nil {
		t.Fatal(err)
	}
	promCfg := filepath.Join(o.dataDir, "prometheus.yml")
	if err := writePrometheusConfig(o, promCfg); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(testutil.Tool(t, "promtool"), "check", "config", promCfg).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	b, err := os.ReadFile(promCfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{o.demoAddr, o.sredAddr, o.alertmanagerAddr, o.prometheusAddr, "watchdog.rules.yml", "job_name: api"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("prometheus.yml lacks %q:\n%s", want, b)
		}
	}
	if err := writeSredConfig(o, filepath.Join(o.dataDir, "sred")); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command("go", "run", filepath.Join(root, "cmd", "srectl"), "check", "config", filepath.Join(o.dataDir, "sred", "sred.yml")).CombinedOutput()
	if err != nil {
		t.Fatalf("srectl check config of the demo's sred.yml: %v\n%s", err, out)
	}
}

func testOptions(t *testing.T, root string) options {
	port := func() string { return "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t)) }
	return options{
		examples:         filepath.Join(root, "examples"),
		rules:            filepath.Join(root, "rules"),
		dataDir:          t.TempDir(),
		demoAddr:         port(),
		prometheusAddr:   port(),
		alertmanagerAddr: port(),
		sredAddr:         port(),
		readyTimeout:     60 * time.Second,
		logger:           promslog.NewNopLogger(),
	}
}

// TestDemo runs `demo up` on free ports with the real programs, checks that
// Prometheus scrapes the demo and loaded the rules and the Watchdog, that
// Alertmanager runs with the inhibit rules, then breaks the demo and waits
// for sred to open the incident of the availability SLO, CRITICAL (its
// page tier), one incident per SLO.
func TestDemo(t *testing.T) {
	root := testutil.RepoRoot(t)
	bin := t.TempDir()
	for name, pkg := range map[string]string{"sred": "./cmd/sred", "demo-service": "./examples/demo-service"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, name), pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	o := testOptions(t, root)
	o.sred = filepath.Join(bin, "sred")
	o.demoService = filepath.Join(bin, "demo-service")
	o.prometheus = testutil.Tool(t, "prometheus")
	o.alertmanager = testutil.Tool(t, "alertmanager")
	ctx := context.Background()
	s, err := start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			for _, p := range s.procs {
				t.Logf("--- %s ---\n%s", p.name, tailFile(p.log, 30))
			}
		}
	})

	prom := "http://" + o.prometheusAddr
	waitFor(t, "Prometheus scrapes the demo as job api", 60*time.Second, func() (bool, string) {
		var r struct {
			Data struct {
				ActiveTargets []struct {
					Labels map[string]string `json:"labels"`
					Health string            `json:"health"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		if err := getJSON(prom+"/api/v1/targets", &r); err != nil {
			return false, err.Error()
		}
		up := map[string]string{}
		for _, tg := range r.Data.ActiveTargets {
			up[tg.Labels["job"]] = tg.Health
		}
		return up["api"] == "up" && up["sred"] == "up", fmt.Sprint(up)
	})
	var rules struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name string `json:"name"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := getJSON(prom+"/api/v1/rules?type=alert", &rules); err != nil {
		t.Fatal(err)
	}
	names := map[string]int{}
	for _, g := range rules.Data.Groups {
		for _, r := range g.Rules {
			names[r.Name]++
		}
	}
	if names["Watchdog"] != 1 || names["SLOBurnRatePage"] == 0 || names["SLOErrorBudgetConsumed"] == 0 {
		t.Fatalf("Prometheus alerting rules: %v", names)
	}
	var amStatus struct {
		Config struct {
			Original string `json:"original"`
		} `json:"config"`
	}
	if err := getJSON("http://"+o.alertmanagerAddr+"/api/v2/status", &amStatus); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"inhibit_rules", "burn_tier=~\".+\"", "- slo"} {
		if !strings.Contains(amStatus.Config.Original, want) {
			t.Fatalf("Alertmanager's configuration lacks %q:\n%s", want, amStatus.Config.Original)
		}
	}
	// Alertmanager shows webhook URLs as <secret>: the file it loaded names sred.
	amFile, err := os.ReadFile(filepath.Join(o.dataDir, "alertmanager", "alertmanager.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "http://" + o.sredAddr + "/api/v1/webhook/alertmanager"; !strings.Contains(string(amFile), want) {
		t.Fatalf("Alertmanager's configuration file lacks %q:\n%s", want, amFile)
	}

	if code := runMain([]string{"break", "--demo.listen-address=" + o.demoAddr}, io.Discard, io.Discard); code != 0 {
		t.Fatalf("demo break exited %d", code)
	}
	sred := "http://" + o.sredAddr
	waitFor(t, "sred opens a CRITICAL incident for api/availability", 6*time.Minute, func() (bool, string) {
		var r struct {
			Data struct {
				Incidents []struct {
					ID       string            `json:"id"`
					Severity string            `json:"severity"`
					Status   string            `json:"status"`
					Labels   map[string]string `json:"labels"`
				} `json:"incidents"`
			} `json:"data"`
		}
		if err := getJSON(sred+"/api/v1/incidents?limit=100", &r); err != nil {
			return false, err.Error()
		}
		perSLO := map[string]int{}
		found := false
		for _, inc := range r.Data.Incidents {
			if inc.Labels["slo"] == "" {
				t.Fatalf("incident %s has no slo label (not grouped by SLO): %v", inc.ID, inc.Labels)
			}
			perSLO[inc.Labels["service"]+"/"+inc.Labels["slo"]]++
			if inc.Labels["service"] == "api" && inc.Labels["slo"] == "availability" && inc.Severity == "CRITICAL" {
				found = true
			}
		}
		for k, n := range perSLO {
			if n > 1 {
				t.Fatalf("%d incidents for %s, want one per SLO: %+v", n, k, r.Data.Incidents)
			}
		}
		return found, fmt.Sprintf("%+v", r.Data.Incidents)
	})
	if code := runMain([]string{"heal", "--demo.listen-address=" + o.demoAddr}, io.Discard, io.Discard); code != 0 {
		t.Fatalf("demo heal exited %d", code)
	}
	var st struct {
		ErrorRate float64 `json:"error_rate"`
	}
	if err := getJSON("http://"+o.demoAddr+"/admin/state", &st); err != nil || st.ErrorRate != 0 {
		t.Fatalf("demo state after heal: %+v %v", st, err)
	}
}

func getJSON(u string, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %.300s", u, resp.Status, b)
	}
	return json.Unmarshal(b, v)
}

// waitFor polls check every 500ms until it reports done; timeout is only a
// safety net.
func waitFor(t *testing.T, what string, timeout time.Duration, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last observed: %s", what, timeout, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// examples/alertmanager.yml routes the burn-rate tiers of one SLO into one
// group (one incident), and the budget alert into its own group notified in
// business hours only (it never pages at night on its own).
func TestAlertmanagerExampleRoutesBySLO(t *testing.T) {
	cfg, err := amconfig.LoadFile(filepath.Join(testutil.RepoRoot(t), "examples", "alertmanager.yml"))
	if err != nil {
		t.Fatal(err)
	}
	root := dispatch.NewRoute(cfg.Route, nil)
	route := func(ls model.LabelSet) *dispatch.Route {
		rs := root.Match(ls)
		if len(rs) != 1 {
			t.Fatalf("%v matches %d routes, want 1", ls, len(rs))
		}
		return rs[0]
	}
	tier := func(tier, severity string) model.LabelSet {
		alertname := map[string]string{"page": "SLOBurnRatePage", "ticket": "SLOBurnRateTicket", "warning": "SLOErrorBudgetConsumed"}[severity]
		return model.LabelSet{"alertname": model.LabelValue(alertname), "service": "api", "slo": "availability", "burn_tier": model.LabelValue(tier), "severity": model.LabelValue(severity)}
	}
	page, slow, ticket, budget := route(tier("page_fast", "page")), route(tier("page_slow", "page")), route(tier("ticket_fast", "ticket")), route(tier("budget", "warning"))
	if page != slow || page != ticket {
		t.Errorf("the page and ticket tiers of one SLO take different routes: %v, %v, %v", page.Key(), slow.Key(), ticket.Key())
	}
	if got := fmt.Sprint(page.RouteOpts.GroupBy); got != "map[service:{} slo:{}]" {
		t.Errorf("SLO route groups by %s, want service and slo", got)
	}
	if len(page.RouteOpts.ActiveTimeIntervals) != 0 {
		t.Errorf("the page route is active only in %v", page.RouteOpts.ActiveTimeIntervals)
	}
	if budget == page || fmt.Sprint(budget.RouteOpts.ActiveTimeIntervals) != "[business-hours]" {
		t.Errorf("the budget alert takes route %s active in %v, want its own route active in business hours", budget.Key(), budget.RouteOpts.ActiveTimeIntervals)
	}
	other := route(model.LabelSet{"alertname": "DiskSpaceLow", "service": "api"})
	if other == page || other == budget {
		t.Errorf("an alert without slo takes an SLO route")
	}
}
