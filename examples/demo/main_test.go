package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
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
	b, err = os.ReadFile(filepath.Join(o.dataDir, "sred", "sred.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("url: http://"+o.demoAddr+"/-/healthy")) || !bytes.Contains(b, []byte("address: "+o.demoAddr)) ||
		bytes.Contains(b, []byte(exampleDemoAddr)) {
		t.Errorf("sred.yml: the health checks do not probe the demo at %s:\n%s", o.demoAddr, b)
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

// testAPISLOs replaces examples/slos/api.yml in TestDemo: the SLOs of api
// that an outage of the demo burns, with the objectives and SLIs of the
// shipped file but page windows a test can wait for. The shipped page
// tiers of a 99.99%/30d SLO have 5m and 30m short windows: the incident
// would turn recovering 30 minutes after the heal. Here the one page tier
// has the shortest short window there is (5m: every window is built on the
// 5m rates) and a 6m long one: the short windows fall back under their
// threshold about 5 minutes after the heal. The ticket tiers and the
// budget alert are off: on the few minutes of data a fresh Prometheus
// holds they would fire for the rest of their days-long windows.
const testAPISLOs = `apiVersion: sre.rootuip.io/v1
kind: ServiceLevelObjectives
service: api
labels:
  team: platform
slos:
  - name: availability
    objective: 99.99
    period: 30d
    sli:
      events:
        errorSelector: http_requests_total{job="api",code=~"5.."}
        totalSelector: http_requests_total{job="api"}
    alerting:
      page:
        for: 30s
        windows: [{name: page_fast, longWindow: 6m, shortWindow: 5m, burnRate: 14.4}]
      ticket: {disabled: true}
      budget: {disabled: true}
  - name: success-rate
    objective: 99.5
    period: 24h
    sli:
      events:
        errorSelector: http_requests_total{job="api",code=~"5..|429"}
        totalSelector: http_requests_total{job="api"}
    alerting:
      page:
        for: 30s
        windows: [{name: page_fast, longWindow: 6m, shortWindow: 5m, burnRate: 14.4}]
      ticket: {disabled: true}
      budget: {disabled: true}
  # The SLA of examples/sred.yml names it; the outage does not touch it.
  - name: latency
    objective: 95
    period: 7d
    sli:
      latency:
        histogram: http_request_duration_seconds{job="api"}
        threshold: 200ms
    alerting:
      page: {disabled: true}
      ticket: {disabled: true}
      budget: {disabled: true}
`

// testSLOs writes examples/slos with api.yml replaced by testAPISLOs and
// the rules generated from them; it returns both directories.
func testSLOs(t *testing.T, root string) (slos, rules string) {
	t.Helper()
	slos, rules = t.TempDir(), t.TempDir()
	if err := copyDir(filepath.Join(root, "examples", "slos"), slos); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(slos, "api.yml"), []byte(testAPISLOs), 0o644); err != nil {
		t.Fatal(err)
	}
	specs, err := slo.LoadFiles(slos)
	if err != nil {
		t.Fatal(err)
	}
	files, err := rulegen.Generate(specs)
	if err != nil {
		t.Fatal(err)
	}
	// A page alert resolves in the evaluation its short window falls back
	// under the threshold, which is also when sred finds the SLO
	// recovering. With the shipped Alertmanager configuration the resolve
	// reaches sred up to a group_interval (1m) later; the test shortens
	// that interval and makes the lag explicit instead: the page alerts
	// keep firing 90 seconds after their condition ends (sred checks
	// every 30 seconds), so that the recovering comes first.
	for _, f := range files {
		for gi := range f.Groups {
			for ri, r := range f.Groups[gi].Rules {
				if r.Alert == rulegen.AlertPage {
					f.Groups[gi].Rules[ri].KeepFiringFor = model.Duration(90 * time.Second)
				}
			}
		}
	}
	for _, f := range files {
		b, err := f.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(rules, f.Name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return slos, rules
}

// capture is a webhook channel receiver that records sred's messages.
type capture struct {
	*httptest.Server
	mu   sync.Mutex
	msgs []webhookMessage
}

type webhookMessage struct {
	IncidentID string `json:"incident_id"`
	Event      string `json:"event"`
	Subject    string `json:"subject"`
	Level      int    `json:"level"`
}

func newCapture(t *testing.T) *capture {
	c := &capture{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m webhookMessage
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.msgs = append(c.msgs, m)
		c.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *capture) events(id string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.msgs {
		if m.IncidentID == id {
			out = append(out, fmt.Sprintf("%s/%d", m.Event, m.Level))
		}
	}
	return out
}

// testEdits shortens the intervals of the demo's configurations and sends
// CRITICAL pages to the webhook channel too, at hook.
func testEdits(hook string) func(file string, doc *yaml.Node) error {
	return func(file string, doc *yaml.Node) error {
		switch file {
		case "prometheus.yml":
			for _, k := range []string{"scrape_interval", "evaluation_interval"} {
				if err := set(doc, scalar("5s"), "global", k); err != nil {
					return err
				}
			}
		case "alertmanager.yml":
			routes := lookup(doc, "route", "routes")
			if routes == nil {
				return fmt.Errorf("no route.routes")
			}
			for _, r := range routes.Content {
				if m := lookup(r, "matchers"); m != nil && len(m.Content) == 1 && m.Content[0].Value == `alertname="Watchdog"` {
					continue // the Watchdog's own timing
				}
				if err := set(r, scalar("5s"), "group_wait"); err != nil {
					return err
				}
				if err := set(r, scalar("10s"), "group_interval"); err != nil {
					return err
				}
			}
		case "sred.yml":
			if err := set(doc, scalar(hook), "notifications", "webhook", "url"); err != nil {
				return err
			}
			if err := set(doc, seq("sms", "phone", "push", "email", "webhook"), "escalation", "severities", "CRITICAL", "channels"); err != nil {
				return err
			}
			// sred's budget poll finds the budget of a few minutes of
			// data exhausted by the outage and adds its own
			// SLOErrorBudgetExhausted alert to the incident, which then
			// stays open until the budget recovers (weeks): the first
			// poll (no data yet) is the only one in this test, which
			// follows the alerts' lifecycle.
			if err := set(doc, scalar("24h"), "slos", "poll_interval"); err != nil {
				return err
			}
		}
		return nil
	}
}

type testIncident struct {
	ID              string            `json:"id"`
	Title           string            `json:"title"`
	Severity        string            `json:"severity"`
	Status          string            `json:"status"`
	Labels          map[string]string `json:"labels"`
	RecoveringSince *time.Time        `json:"recovering_since"`
	Alerts          []struct {
		Status string            `json:"status"`
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
}

// firing returns the service/slo/burn_tier of the incident's firing alerts.
func (inc testIncident) firing() []string {
	var out []string
	for _, a := range inc.Alerts {
		if a.Status == "firing" {
			out = append(out, a.Labels["service"]+"/"+a.Labels["slo"]+"/"+a.Labels["burn_tier"])
		}
	}
	sort.Strings(out)
	return out
}

// TestDemo runs `demo up` on free ports with the real programs, checks that
// Prometheus scrapes the demo and loaded the rules and the Watchdog, that
// Alertmanager runs with the inhibit rules, then breaks the demo and
// follows the outage to its end: one incident for it (the availability and
// success-rate SLOs of api both burn; their groups share the incident),
// CRITICAL while the page tier fires, "recovering" after the heal (the
// escalation stopped, the all-clear delivered on the webhook channel that
// got the page) while the page alerts still fire, resolved when they
// resolve. The SLOs are those of examples/slos with shorter page windows
// (testAPISLOs); every wait is on a condition, with a generous safety net.
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
	hook := newCapture(t)
	o := testOptions(t, root)
	o.slos, o.rules = testSLOs(t, root)
	o.edit = testEdits(hook.URL + "/sred")
	o.sred = filepath.Join(bin, "sred")
	o.demoService = filepath.Join(bin, "demo-service")
	o.prometheus = testutil.Tool(t, "prometheus")
	o.alertmanager = testutil.Tool(t, "alertmanager")
	// As make demo runs it: the data directory relative to the working
	// directory (the flag's default). The programs run inside it, and a
	// path given them relative would be resolved from there a second time.
	t.Chdir(t.TempDir())
	o.dataDir = defaultDataDir
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

	// Every address the banner prints answers: Prometheus' /alerts page
	// answered 500 ("Error opening React index.html": go install builds
	// Prometheus without its web UI).
	for _, u := range bannerURLs(o) {
		resp, err := http.Get(u.url)
		if err != nil {
			t.Fatalf("banner's %s %s: %v", u.name, u.url, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("banner's %s %s answers %d: %s", u.name, u.url, resp.StatusCode, body)
		}
	}

	sred := "http://" + o.sredAddr
	// incidents lists every incident with its alerts; every one must be
	// about an SLO (grouped by SLO) and there must be at most one.
	incidents := func() ([]testIncident, string) {
		var r struct {
			Data struct {
				Incidents []testIncident `json:"incidents"`
			} `json:"data"`
		}
		if err := getJSON(sred+"/api/v1/incidents?limit=100&alerts=true", &r); err != nil {
			return nil, err.Error()
		}
		for _, inc := range r.Data.Incidents {
			if inc.Labels["slo"] == "" {
				t.Fatalf("incident %s has no slo label (not grouped by SLO): %+v", inc.ID, inc)
			}
		}
		if len(r.Data.Incidents) > 1 {
			t.Fatalf("%d incidents for one outage, want one: %+v", len(r.Data.Incidents), r.Data.Incidents)
		}
		return r.Data.Incidents, fmt.Sprintf("%+v", r.Data.Incidents)
	}
	timeline := func(id string) string {
		var r struct {
			Data []struct {
				Message string `json:"message"`
			} `json:"data"`
		}
		if err := getJSON(sred+"/api/v1/incidents/"+id+"/timeline", &r); err != nil {
			t.Fatal(err)
		}
		var msgs []string
		for _, e := range r.Data {
			msgs = append(msgs, e.Message)
		}
		return strings.Join(msgs, "\n")
	}

	if code := runMain([]string{"break", "--demo.listen-address=" + o.demoAddr}, io.Discard, io.Discard); code != 0 {
		t.Fatalf("demo break exited %d", code)
	}
	var inc testIncident
	both := []string{"api/availability/page_fast", "api/success-rate/page_fast"}
	waitFor(t, "one CRITICAL incident with the page alerts of both SLOs of api", 8*time.Minute, func() (bool, string) {
		incs, last := incidents()
		if len(incs) != 1 {
			return false, last
		}
		inc = incs[0]
		// The young demo SLOs also exhaust their budgets: sred's
		// SLOErrorBudgetExhausted alerts (burn_tier exhausted, pkg/budget)
		// may join the same incident; they resolve once the burn stops.
		var pages []string
		for _, f := range inc.firing() {
			if !strings.HasSuffix(f, "/exhausted") {
				pages = append(pages, f)
			}
		}
		return inc.Severity == "CRITICAL" && fmt.Sprint(pages) == fmt.Sprint(both) && inc.RecoveringSince == nil, last
	})
	id := inc.ID
	if !strings.Contains(inc.Title, "api/") {
		t.Errorf("title %q does not name the SLO", inc.Title)
	}
	var paged string // event/level of the first page
	waitFor(t, "the page reaches the webhook channel", 2*time.Minute, func() (bool, string) {
		ev := hook.events(id)
		for _, e := range ev {
			if strings.HasPrefix(e, "trigger/") {
				paged = e
				return true, ""
			}
		}
		return false, fmt.Sprint(ev)
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
	waitFor(t, "the incident turns recovering", 10*time.Minute, func() (bool, string) {
		incs, last := incidents()
		if len(incs) != 1 {
			return false, last
		}
		inc = incs[0]
		if inc.Status == "resolved" && inc.RecoveringSince == nil {
			t.Fatalf("the incident resolved without turning recovering first: %s\n%s", last, timeline(inc.ID))
		}
		return inc.RecoveringSince != nil, last
	})
	// Recovering comes before the resolve: the page alerts still fire.
	if inc.ID != id || inc.Status == "resolved" || len(inc.firing()) == 0 || inc.Severity != "CRITICAL" {
		t.Fatalf("recovering incident: %+v, want %s open, CRITICAL, its page alerts still firing", inc, id)
	}
	waitFor(t, "the all-clear reaches the webhook channel", 2*time.Minute, func() (bool, string) {
		ev := hook.events(id)
		return slices.ContainsFunc(ev, func(e string) bool { return strings.HasPrefix(e, "all_clear/") }), fmt.Sprint(ev)
	})
	if tl := timeline(id); !strings.Contains(tl, "Escalation stopped: the SLO is recovering") || !strings.Contains(tl, "all-clear sent via") {
		t.Fatalf("timeline of %s lacks the stopped escalation and the all-clear:\n%s", id, tl)
	}

	waitFor(t, "the incident resolves when the page alerts resolve", 15*time.Minute, func() (bool, string) {
		incs, last := incidents()
		if len(incs) != 1 {
			return false, last
		}
		inc = incs[0]
		return inc.Status == "resolved", last
	})
	if inc.ID != id || len(inc.firing()) != 0 {
		t.Fatalf("resolved incident: %+v, want %s with no firing alert", inc, id)
	}
	// Nobody was paged after the all-clear, and no later escalation level
	// was paged at all.
	ev := hook.events(id)
	cleared := slices.IndexFunc(ev, func(e string) bool { return strings.HasPrefix(e, "all_clear/") })
	for i, e := range ev {
		if strings.HasPrefix(e, "trigger/") && (i > cleared || e != paged) {
			t.Fatalf("paged after the all-clear or at a later level (first page %s): %v", paged, ev)
		}
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
	// A page that starts firing while a ticket of its SLO fires (the
	// tickets have no for:, the pages do) joins the ticket's group, whose
	// new alerts Alertmanager sends only every group_interval: the
	// incident the ticket opened would page that much later (5m with
	// Alertmanager's default).
	if gi := time.Duration(page.RouteOpts.GroupInterval); gi > time.Minute {
		t.Errorf("the SLO route's group_interval is %s: a page joining its SLO's group reaches sred up to that late, want at most 1m", gi)
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

// demo break says what share of the demo's requests now fail.
func TestShare(t *testing.T) {
	for rate, want := range map[float64]string{1: "every one", 0.5: "50%", 0.125: "12.5%", 0.01: "1%", 0.07: "7%"} {
		if got := share(rate); got != want {
			t.Errorf("share(%g) = %q, want %q", rate, got, want)
		}
	}
}

// Every target of the Makefile that starts sred in the no-auth mode (anyone
// who reaches the port acts as admin) names a loopback listen address:
// sred's default, :8095, is every interface of the machine.
func TestMakeNoAuthListensOnLoopback(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "\t") || !strings.Contains(line, "--web.no-auth") {
			continue
		}
		n++
		addr := ""
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "--web.listen-address="); ok {
				addr = v
			}
		}
		if !strings.HasPrefix(addr, "127.0.0.1:") && !strings.HasPrefix(addr, "localhost:") && !strings.HasPrefix(addr, "[::1]:") {
			t.Errorf("Makefile:%d starts sred with --web.no-auth on %q, not a loopback address:\n%s", i+1, addr, line)
		}
	}
	if n == 0 {
		t.Fatal("no target of the Makefile starts sred with --web.no-auth (make run does)")
	}
}

// The Makefile's targets are absolute paths ($(BIN)/promtool); the
// relative names a reader types build the same files, and the absolute
// ones still do (make tools, make test). A tool's build first says what
// it builds, where, and that it waits for a build of it under way in
// another clone.
func TestMakeRelativeToolTargets(t *testing.T) {
	root := testutil.RepoRoot(t)
	for _, tc := range []struct {
		target string
		want   []string // in the commands make -n prints
	}{
		// A tool missing from the cache says what it builds and that it
		// waits for another clone's build: the flock alone waits without
		// a word for minutes.
		{"bin/promtool", []string{"building promtool v", "go install -tags remove_all_sd github.com/prometheus/prometheus/cmd/promtool@", "ln -sf "}},
		{"bin/prometheus", []string{"building prometheus v", "another clone is building it, waiting", "go install -tags remove_all_sd github.com/prometheus/prometheus/cmd/prometheus@", "ln -sf "}},
		{"bin/alertmanager", []string{"building alertmanager v", "github.com/prometheus/alertmanager/cmd/alertmanager@", "ln -sf "}},
		{"bin/node_exporter", []string{"building node_exporter v", "github.com/prometheus/node_exporter@", "ln -sf "}},
		{"bin/sred", []string{"go build -ldflags ", "-o ", "./cmd/sred"}},
		{"tools", []string{"/promtool@", "/prometheus@", "/alertmanager@", "node_exporter@"}},
	} {
		t.Run(tc.target, func(t *testing.T) {
			// An empty tool cache and bin directory: make -n prints every
			// step of a build from nothing.
			cache, bin := t.TempDir(), t.TempDir()
			cmd := exec.Command("make", "-n", "-C", root, tc.target, "TOOLS_CACHE="+cache, "BIN="+bin)
			// Not the flags of a make running this test (make test): its
			// jobserver and options are not this make's.
			for _, kv := range os.Environ() {
				if k, _, _ := strings.Cut(kv, "="); k != "MAKEFLAGS" && k != "MAKELEVEL" && k != "MFLAGS" {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("make -n %s: %v\n%s", tc.target, err, out)
			}
			for _, w := range append(tc.want, bin+"/") {
				if !strings.Contains(string(out), w) {
					t.Errorf("make -n %s does not print %q:\n%s", tc.target, w, out)
				}
			}
		})
	}
}

// TestMakeStampsVersion: sred and srectl built by make say which
// checkout they were built from (--version, sred's first log line), where
// before they printed "version  (branch: , revision: unknown)" when the Go
// toolchain records no VCS information (-buildvcs=false, a copy of the
// tree without .git).
func TestMakeStampsVersion(t *testing.T) {
	root := testutil.RepoRoot(t)
	git := func(args ...string) string {
		out, err := exec.Command("git", append([]string{"-C", root}, args...)...).Output()
		if err != nil {
			t.Fatalf("git %v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	describe, revision, branch := git("describe", "--tags", "--always", "--dirty"), git("rev-parse", "HEAD"), git("rev-parse", "--abbrev-ref", "HEAD")
	bin := t.TempDir()
	cmd := exec.Command("make", "-C", root, bin+"/srectl", "BIN="+bin)
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "MAKEFLAGS" && k != "MAKELEVEL" && k != "MFLAGS" && k != "GOFLAGS" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// No VCS stamping by the toolchain: the version comes from make.
	cmd.Env = append(cmd.Env, "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make %s/srectl: %v\n%s", bin, err, out)
	}
	out, err := exec.Command(filepath.Join(bin, "srectl"), "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("srectl --version: %v\n%s", err, out)
	}
	want := fmt.Sprintf("srectl, version %s (branch: %s, revision: %s)", describe, branch, revision)
	if !strings.Contains(string(out), want) {
		t.Errorf("srectl --version does not say %q:\n%s", want, out)
	}
}

// A port taken by another program is moved from make: SRED_PORT for
// make run (on the loopback interface still), DEMO_FLAGS for make demo.
// SRED_CONFIG runs a copy of examples/sred.yml (the README's, without the
// Watchdog).
func TestMakeMovesPorts(t *testing.T) {
	root := testutil.RepoRoot(t)
	for _, tc := range []struct {
		name string // no "=": it names the temporary directories given to make
		args []string
		want string // in the commands make -n prints
	}{
		{"run", []string{"run"}, "--web.listen-address=127.0.0.1:8095 "},
		{"run on another port", []string{"run", "SRED_PORT=8196"}, "--web.listen-address=127.0.0.1:8196 "},
		{"run on another storage directory", []string{"run", "SRED_DATA=data2"}, " --storage.path=data2 "},
		{"run another configuration", []string{"run", "SRED_CONFIG=examples/sred.local.yml"}, "/sred --config.file=examples/sred.local.yml "},
		{"demo on other ports", []string{"demo", "DEMO_FLAGS=--sred.listen-address=127.0.0.1:8196 --demo.listen-address=127.0.0.1:8180"},
			"/demo up --bin.dir=BIN --prometheus=BIN/prometheus --alertmanager=BIN/alertmanager --sred.listen-address=127.0.0.1:8196 --demo.listen-address=127.0.0.1:8180\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache, bin := t.TempDir(), t.TempDir()
			cmd := exec.Command("make", append([]string{"-n", "-C", root, "TOOLS_CACHE=" + cache, "BIN=" + bin}, tc.args...)...)
			// Not the flags of a make running this test (make test).
			for _, kv := range os.Environ() {
				if k, _, _ := strings.Cut(kv, "="); k != "MAKEFLAGS" && k != "MAKELEVEL" && k != "MFLAGS" {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("make -n %s: %v\n%s", tc.args, err, out)
			}
			if got := strings.ReplaceAll(string(out), bin, "BIN"); !strings.Contains(got, tc.want) {
				t.Errorf("make -n %s does not print %q:\n%s", tc.args, tc.want, out)
			}
		})
	}
}

// A second demo started while one runs (its ports taken) stops before it
// touches anything: the first one's data directory is not emptied under
// it, and the error names the address in use.
func TestStartRefusesPortsInUse(t *testing.T) {
	o := testOptions(t, testutil.RepoRoot(t))
	l, err := net.Listen("tcp", o.sredAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	marker := filepath.Join(o.dataDir, "sred", "data", "sred.db")
	if err := os.MkdirAll(filepath.Dir(marker), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(marker, []byte("the running demo's store"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = start(t.Context(), o)
	if err == nil || !strings.Contains(err.Error(), o.sredAddr+" is in use") {
		t.Fatalf("start with %s taken: %v, want an error naming it", o.sredAddr, err)
	}
	// A port taken by something else (make run holds sred's) is moved
	// with the flag of that program, which make demo passes in DEMO_FLAGS.
	if want := "make demo DEMO_FLAGS=--sred.listen-address=127.0.0.1:<port>"; !strings.Contains(err.Error(), want) {
		t.Errorf("start with %s taken: %v, want the way to move sred: %q", o.sredAddr, err, want)
	}
	if b, err := os.ReadFile(marker); err != nil || string(b) != "the running demo's store" {
		t.Fatalf("the data directory was emptied: %q, %v", b, err)
	}
}

// A program's binary missing stops the demo before it starts anything or
// empties its data directory, naming the binary and how to get it: it
// started the demo service, Alertmanager and sred, then stopped them with
// `prometheus: exec: "...": stat ...: no such file or directory`.
func TestStartNamesMissingBinary(t *testing.T) {
	o := testOptions(t, testutil.RepoRoot(t))
	bin := t.TempDir()
	for _, name := range []string{"demo-service", "alertmanager", "sred"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	o.demoService = filepath.Join(bin, "demo-service")
	o.alertmanager = filepath.Join(bin, "alertmanager")
	o.sred = filepath.Join(bin, "sred")
	o.prometheus = filepath.Join(bin, "prometheus")
	marker := filepath.Join(o.dataDir, "kept")
	if err := os.WriteFile(marker, []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	check := func(want string) {
		t.Helper()
		_, err := start(t.Context(), o)
		if err == nil || err.Error() != want {
			t.Fatalf("start: %v\nwant: %s", err, want)
		}
		if _, err := os.Stat(marker); err != nil {
			t.Fatalf("the data directory was emptied: %v", err)
		}
	}
	check("prometheus binary " + o.prometheus + ": no such file or directory (make bin/prometheus builds it, " +
		"or give --prometheus=PATH ($SRE_PROMETHEUS); make demo builds every program it runs)")
	if err := os.WriteFile(o.prometheus, []byte("not a program"), 0o644); err != nil {
		t.Fatal(err)
	}
	check("prometheus binary " + o.prometheus + " is not an executable file (make bin/prometheus builds it, " +
		"or give --prometheus=PATH ($SRE_PROMETHEUS))")
}
