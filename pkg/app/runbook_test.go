package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/dashboards"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/receiver"
	"github.com/rootuip/sre/pkg/runbook"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// hookSink is the webhook notification channel: a real HTTP server that
// checks each delivery's signature and keeps the messages.
type hookSink struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	msgs   []notify.Message
}

func (h *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	if got, want := r.Header.Get(notify.SignatureHeader), notify.Sign(h.secret, r.Header.Get(notify.TimestampHeader), b); got != want {
		h.t.Errorf("webhook signature %q, want %q", got, want)
	}
	var p notify.WebhookPayload
	if err := json.Unmarshal(b, &p); err != nil || p.Message == nil {
		h.t.Errorf("webhook payload %s: %v", b, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.msgs = append(h.msgs, *p.Message)
	h.mu.Unlock()
}

// find returns the messages of an incident as "event user-or-mentions: subject | body".
func (h *hookSink) find(incidentID string) []notify.Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []notify.Message
	for _, m := range h.msgs {
		if m.IncidentID == incidentID {
			out = append(out, m)
		}
	}
	return out
}

// amCapture forwards requests to the app's mux and keeps the bodies
// Alertmanager delivered to the webhook, with when sred answered.
type amCapture struct {
	next     http.Handler
	mu       sync.Mutex
	bodies   [][]byte
	answered []time.Time
}

func (c *amCapture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == receiver.Path {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		c.next.ServeHTTP(w, r)
		c.mu.Lock()
		c.bodies = append(c.bodies, b)
		c.answered = append(c.answered, time.Now())
		c.mu.Unlock()
		return
	}
	c.next.ServeHTTP(w, r)
}

func (c *amCapture) delivery(i int) ([]byte, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i >= len(c.bodies) {
		return nil, time.Time{}, false
	}
	return c.bodies[i], c.answered[i], true
}

// apiGet decodes the data of a sred API answer.
func apiGet(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", url, env.Error)
	require.NoError(t, json.Unmarshal(env.Data, out))
}

const apiRestartRunbook = `
name: api-restart
description: Restart the API, tell the responders, verify.
matchers: ['alertname="ApiDown"']
labels: {service: '[a-z][a-z0-9-]{0,30}'}
target: 'api/{{ .Labels.service }}'
resolve_on_verify: true
steps:
  - name: restart
    exec: {command: [/bin/echo, restarting, '{{ .Labels.service }}']}
  - name: tell
    notify: {message: 'Restarting {{ .Labels.service }} for {{ .IncidentID }}'}
  - name: settle
    wait: {duration: 2s}
  - name: verify
    verify: true
    promql: {query: 'vector(1) > 0', interval: 100ms}
`

const cacheFlushRunbook = `
name: cache-flush
matchers: ['alertname="CacheDown"']
steps:
  - name: ask
    approval: {message: 'flush the cache?'}
  - name: flush
    exec: {command: [/bin/echo, flushed]}
  - name: verify
    verify: true
    timeout: 1s
    promql: {query: 'vector(0) > 0', interval: 200ms}
`

// TestRunbookModule runs the wired app on both backends: a real
// Alertmanager delivers its webhook to the real mux, the incident service
// opens incidents, the runbook module's hook records a run and its worker
// executes it after the webhook answered. Steps land on the incident's
// timeline; the notify step reaches the responders through the escalation
// engine and the notification sender (a real webhook channel); verification
// against a real Prometheus marks the incident mitigated by automation and
// resolves it; a failed verification escalates through the escalation engine.
func TestRunbookModule(t *testing.T) {
	prom := tu.StartPrometheus(t, tu.PrometheusOptions{Config: "global: {scrape_interval: 15s}\n"})
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{StoragePath: filepath.Join(dir, "data")}
			if backend == "postgres" {
				opts = Options{PostgresURL: tu.PostgresSchemaURL(t)}
			}
			testRunbookModule(t, dir, opts, prom.URL)
		})
	}
}

func testRunbookModule(t *testing.T, dir string, opts Options, promURL string) {
	sink := &hookSink{t: t, secret: "s3cret"}
	hooks := httptest.NewServer(sink)
	defer hooks.Close()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "runbooks"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "runbooks", "api-restart.yml"), []byte(apiRestartRunbook), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "runbooks", "cache-flush.yml"), []byte(cacheFlushRunbook), 0o644))
	opts.ConfigFile = filepath.Join(dir, "sred.yml")
	require.NoError(t, os.WriteFile(opts.ConfigFile, []byte(fmt.Sprintf(`
global: {external_url: "http://sred.example:8095"}
prometheus: {url: %s}
escalation:
  policies:
    - name: api
      levels:
        - {after: 0m, users: [alice], channels: [webhook]}
        - {after: 1h, users: [bob], channels: [webhook]}
oncall:
  users:
    - {name: alice, email: alice@example.com}
    - {name: bob, email: bob@example.com}
notifications:
  min_backoff: 1s
  webhook: {url: %s, secret: s3cret}
runbooks:
  files: [runbooks/*.yml]
  poll_interval: 50ms
  lease_duration: 5s
`, promURL, hooks.URL)), 0o644))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := New(ctx, opts)
	require.NoError(t, err)
	defer a.Close()
	var wg sync.WaitGroup
	for _, act := range a.Actors() {
		wg.Add(1)
		go func() { defer wg.Done(); _ = act.Execute(ctx) }()
	}
	defer func() { cancel(); wg.Wait() }()
	capture := &amCapture{next: a.Mux}
	srv := httptest.NewServer(capture)
	defer srv.Close()

	am := tu.StartAlertmanager(t, tu.AlertmanagerOptions{Config: fmt.Sprintf(`
route:
  receiver: sred
  group_by: [alertname, service]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: sred
    webhook_configs: [{url: %q, send_resolved: true}]
`, srv.URL+receiver.Path)})
	postAlert := func(name string) {
		t.Helper()
		start := time.Now().UTC().Add(-time.Minute)
		b, _ := json.Marshal([]map[string]any{{
			"labels":      map[string]string{"alertname": name, "service": "api", "severity": "high"},
			"annotations": map[string]string{"summary": name + " on api"},
			"startsAt":    start, "endsAt": start.Add(time.Hour)}})
		resp, err := http.Post(am.URL+"/api/v2/alerts", "application/json", bytes.NewReader(b))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}

	// ApiDown: Alertmanager delivers, sred answers at once, the run executes later.
	postAlert("ApiDown")
	var body []byte
	var answered time.Time
	require.Eventually(t, func() bool {
		var ok bool
		body, answered, ok = capture.delivery(0)
		return ok
	}, 20*time.Second, 20*time.Millisecond, "Alertmanager delivered the webhook")
	var page incident.Page
	apiGet(t, srv.URL+"/api/v1/incidents", &page)
	require.Len(t, page.Incidents, 1)
	apiID := page.Incidents[0].ID

	// A redelivery of the same notification does not start a second run.
	resp, err := http.Post(srv.URL+receiver.Path, "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	run := waitAppRun(t, srv.URL, apiID, runbook.RunSucceeded, runbook.RunFailed)
	require.Equal(t, runbook.RunSucceeded, run.Status, run.Reason)
	require.True(t, answered.Before(*run.FinishedAt), "the webhook did not wait for the run")
	require.True(t, run.Verified)
	require.Equal(t, "api/api", run.Target)
	var runs []runbook.Run
	apiGet(t, srv.URL+"/api/v1/runbooks/runs?incident="+apiID, &runs)
	require.Len(t, runs, 1, "one run per incident and runbook")

	var inc *incident.Incident
	require.Eventually(t, func() bool {
		inc, err = a.Incidents.Get(ctx, apiID)
		require.NoError(t, err)
		return inc.Status == incident.StatusResolved
	}, 60*time.Second, 20*time.Millisecond, "resolved once the run ends")
	require.Equal(t, "automation", inc.MitigatedBy)

	tl, err := a.Incidents.Timeline(ctx, apiID)
	require.NoError(t, err)
	var got []string
	for _, e := range tl {
		if strings.HasPrefix(e.Kind, "runbook") || e.Kind == "mitigated" {
			msg := e.Message
			if i := strings.Index(msg, " in "); e.Kind == "runbook_step" && i > 0 {
				msg = msg[:i] // drop the duration
			}
			got = append(got, e.Kind+" "+e.Actor+": "+msg)
		}
	}
	id := run.ID
	require.Equal(t, []string{
		fmt.Sprintf("runbook_run runbook:api-restart: runbook api-restart scheduled (run %d, target api/api)", id),
		fmt.Sprintf("runbook_run runbook:api-restart: runbook api-restart run %d started on api/api", id),
		"runbook_step runbook:api-restart: step restart (exec) ok",
		"runbook_notify runbook:api-restart: Restarting api for " + apiID,
		"runbook_step runbook:api-restart: step tell (notify) ok",
		"runbook_step runbook:api-restart: step settle (wait) ok",
		"runbook_step runbook:api-restart: step verify (promql) ok",
		"mitigated automation: mitigated by automation",
		fmt.Sprintf("runbook_run runbook:api-restart: runbook api-restart run %d succeeded", id),
	}, got)
	var resolved *incident.TimelineEntry
	for i := range tl {
		if tl[i].Kind == "status" && strings.Contains(tl[i].Message, "resolved") {
			resolved = &tl[i]
		}
	}
	require.NotNil(t, resolved, "timeline: %+v", tl)
	require.Equal(t, "runbook:api-restart", resolved.Actor)

	// The notify step went to alice (level 0) through the webhook channel.
	var notice *notify.Message
	require.Eventually(t, func() bool {
		for _, m := range sink.find(apiID) {
			if m.Event == "update" {
				notice = &m
				return true
			}
		}
		return false
	}, 20*time.Second, 50*time.Millisecond, "the notify step's message reached the webhook channel")
	require.Equal(t, "Restarting api for "+apiID, notice.Body)
	require.Equal(t, fmt.Sprintf("[HIGH] Incident %s: %s (runbook api-restart)", apiID, inc.Title), notice.Subject)
	require.Equal(t, "http://sred.example:8095/incidents/"+apiID, notice.URL)
	require.Equal(t, "sent to alice via webhook", stepAuditOf(t, run, "tell").Output)

	// CacheDown: the run waits for approval; level 0 pages alice meanwhile.
	postAlert("CacheDown")
	var cacheID string
	require.Eventually(t, func() bool {
		var p incident.Page
		apiGet(t, srv.URL+"/api/v1/incidents", &p)
		for _, i := range p.Incidents {
			if i.ID != apiID {
				cacheID = i.ID
			}
		}
		return cacheID != ""
	}, 20*time.Second, 50*time.Millisecond)
	run = waitAppRun(t, srv.URL, cacheID, runbook.RunWaitingApproval)
	require.Eventually(t, func() bool {
		return slices.ContainsFunc(sink.find(cacheID), func(m notify.Message) bool { return m.Level == 0 && m.Event == notify.EventTrigger })
	}, 20*time.Second, 50*time.Millisecond, "level 0 paged")
	resp, err = http.Post(fmt.Sprintf("%s/api/v1/runbooks/runs/%d/approve", srv.URL, run.ID), "application/json",
		strings.NewReader(`{"by": "alice", "comment": "go"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	run = waitAppRun(t, srv.URL, cacheID, runbook.RunSucceeded, runbook.RunFailed)
	require.Equal(t, runbook.RunFailed, run.Status)
	require.Equal(t, "step verify failed: step timed out after 1s", run.Reason)
	require.Equal(t, "approved by alice", stepAuditOf(t, run, "ask").Output)

	// The failed verification escalated: level 1 (bob) is paged now, not in an hour.
	var escalated notify.Message
	require.Eventually(t, func() bool {
		for _, m := range sink.find(cacheID) {
			if m.Level == 1 {
				escalated = m
				return true
			}
		}
		return false
	}, 20*time.Second, 50*time.Millisecond, "level 1 paged")
	require.Contains(t, escalated.Body, "Actions: Escalated now (runbook cache-flush step verify failed: step timed out after 1s): level 1: paging bob\n",
		"the page says why bob is paged now")
	tl, err = a.Incidents.Timeline(ctx, cacheID)
	require.NoError(t, err)
	var msgs []string
	for _, e := range tl {
		msgs = append(msgs, e.Message)
	}
	require.Contains(t, msgs, `Escalated now (runbook cache-flush step verify failed: step timed out after 1s): level 1 (policy "api"): paging bob via webhook`)
	require.Contains(t, msgs, fmt.Sprintf("runbook cache-flush run %d escalates the incident: runbook cache-flush step verify failed: step timed out after 1s", run.ID))
	inc, err = a.Incidents.Get(ctx, cacheID)
	require.NoError(t, err)
	require.Empty(t, inc.MitigatedBy)
	require.Equal(t, incident.StatusTriggered, inc.Status)

	// Metrics on the app's registry.
	resp, err = http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(metrics), `sre_runbook_executions_total{result="succeeded",runbook="api-restart"} 1`)
	require.Contains(t, string(metrics), `sre_runbook_executions_total{result="failed",runbook="cache-flush"} 1`)
}

func waitAppRun(t *testing.T, base, incidentID string, statuses ...string) *runbook.Run {
	t.Helper()
	var last []runbook.Run
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		apiGet(t, base+"/api/v1/runbooks/runs?incident="+incidentID, &last)
		if len(last) > 0 && slices.Contains(statuses, last[0].Status) {
			var full runbook.Run
			apiGet(t, fmt.Sprintf("%s/api/v1/runbooks/runs/%d", base, last[0].ID), &full)
			return &full
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("run of %s did not reach %v: %+v", incidentID, statuses, last)
	return nil
}

func stepAuditOf(t *testing.T, run *runbook.Run, step string) runbook.AuditEntry {
	t.Helper()
	for _, a := range run.Audit {
		if a.Event == "step" && a.StepName == step {
			return a
		}
	}
	t.Fatalf("no audit entry for step %s: %+v", step, run.Audit)
	return runbook.AuditEntry{}
}

// TestAutomationMetrics runs the wired sred on both backends: incidents
// arrive through the Alertmanager webhook, a runbook verifies its fix on
// one (mitigated by automation and resolved), another runbook fails on a
// second incident that a responder then resolves by hand, a third incident
// is resolved by hand without any runbook, a fourth only gets a dry-run and
// a fifth stays open. /metrics must export the coverage, run and toil
// ratios the test computes from those outcomes.
func TestAutomationMetrics(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testAutomationMetrics(t, backend) })
	}
}

func testAutomationMetrics(t *testing.T, backend string) {
	rbDir := t.TempDir()
	for name, src := range map[string]string{
		"fix.yml": `
name: fix
matchers: ['alertname="Fixable"']
resolve_on_verify: true
steps:
  - {name: act, exec: {command: [/bin/echo, fixing]}}
  - {name: check, verify: true, exec: {command: [/bin/true]}}
`,
		"try.yml": `
name: try
matchers: ['alertname="Unfixable"']
steps:
  - {name: act, exec: {command: [/bin/false]}}
`,
		"rehearse.yml": `
name: rehearse
matchers: ['alertname="Rehearsed"']
dry_run: true
steps:
  - {name: act, exec: {command: [/bin/echo, rehearsal]}}
  - {name: check, verify: true, exec: {command: [/bin/true]}}
`,
	} {
		require.NoError(t, os.WriteFile(filepath.Join(rbDir, name), []byte(src), 0o644))
	}
	a, srv := runApp(t, backend, fmt.Sprintf("runbooks:\n  files: [%q]\n  poll_interval: 50ms\n  lease_duration: 5s\n",
		filepath.Join(rbDir, "*.yml")), nil)
	ctx := context.Background()

	post := func(path string, body any) {
		t.Helper()
		b, err := json.Marshal(body)
		require.NoError(t, err)
		resp, err := http.Post(srv.URL+path, "application/json", bytes.NewReader(b))
		require.NoError(t, err)
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Less(t, resp.StatusCode, 300, "POST %s: %s", path, out)
	}
	n := 0
	open := func(alertname string) string {
		t.Helper()
		n++
		key := fmt.Sprintf(`{}:{alertname=%q}`, alertname)
		lbl := map[string]string{"alertname": alertname, "service": "api", "severity": "high"}
		post(receiver.Path, map[string]any{
			"version": "4", "groupKey": key, "status": "firing", "receiver": "sred",
			"groupLabels": map[string]string{"alertname": alertname}, "commonLabels": lbl,
			"alerts": []map[string]any{{
				"status": "firing", "labels": lbl, "annotations": map[string]string{"summary": alertname},
				"startsAt": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano), "endsAt": "0001-01-01T00:00:00Z",
				"fingerprint": fmt.Sprintf("%016x", n),
			}},
		})
		var page incident.Page
		apiGet(t, srv.URL+"/api/v1/incidents?limit=100", &page)
		for _, inc := range page.Incidents {
			if inc.GroupKey == key {
				return inc.ID
			}
		}
		t.Fatalf("no incident for %s", key)
		return ""
	}
	resolveByHand := func(id string) {
		post("/api/v1/incidents/"+id+"/resolve", map[string]string{"actor": "alice", "note": "fixed by hand"})
	}

	// What happens to each incident, and what each counts for.
	type outcome struct{ ran, mitigated, resolved, byHand bool }
	outcomes := map[string]outcome{}

	fixed := open("Fixable")
	run := waitAppRun(t, srv.URL, fixed, runbook.RunSucceeded, runbook.RunFailed)
	require.Equal(t, runbook.RunSucceeded, run.Status, run.Reason)
	require.True(t, run.Verified)
	waitFor(t, func() bool {
		inc, err := a.Incidents.Get(ctx, fixed)
		require.NoError(t, err)
		return inc.Status == incident.StatusResolved && inc.MitigatedBy == "automation"
	}, "the verified run mitigates and resolves its incident")
	outcomes[fixed] = outcome{ran: true, mitigated: true, resolved: true}

	failed := open("Unfixable")
	run = waitAppRun(t, srv.URL, failed, runbook.RunSucceeded, runbook.RunFailed)
	require.Equal(t, runbook.RunFailed, run.Status)
	resolveByHand(failed)
	outcomes[failed] = outcome{ran: true, resolved: true, byHand: true}

	manual := open("Manual")
	resolveByHand(manual)
	outcomes[manual] = outcome{resolved: true, byHand: true}

	rehearsed := open("Rehearsed")
	run = waitAppRun(t, srv.URL, rehearsed, runbook.RunSucceeded, runbook.RunFailed)
	require.True(t, run.DryRun)
	require.Equal(t, runbook.RunSucceeded, run.Status)
	outcomes[rehearsed] = outcome{} // a dry-run neither runs nor mitigates

	outcomes[open("StillOpen")] = outcome{}

	var total, ran, mitigated, resolved, byHand float64
	for _, o := range outcomes {
		total++
		for _, c := range []struct {
			yes bool
			n   *float64
		}{{o.ran, &ran}, {o.mitigated, &mitigated}, {o.resolved, &resolved}, {o.byHand, &byHand}} {
			if c.yes {
				*c.n++
			}
		}
	}
	require.Equal(t, 5.0, total)
	mfs, body := scrape(t, srv.URL)
	for name, want := range map[string]float64{
		"sre_automation_coverage_ratio": mitigated / total,
		"sre_automation_run_ratio":      ran / total,
		"sre_toil_ratio":                byHand / resolved,
	} {
		got, ok := metricValue(mfs, name, nil)
		require.True(t, ok, "%s missing from /metrics:\n%s", name, body)
		require.InDelta(t, want, got, 1e-12, name)
		require.Equal(t, dto.MetricType_GAUGE, mfs[name].GetType(), name)
	}
	f, err := os.Open(filepath.Join(tu.RepoRoot(t), "docs", "metrics.md"))
	require.NoError(t, err)
	defer f.Close()
	cat, err := dashboards.ParseCatalogue(f)
	require.NoError(t, err)
	require.Equal(t, "gauge", cat["sre_automation_run_ratio"], "docs/metrics.md catalogues the run ratio")
}
