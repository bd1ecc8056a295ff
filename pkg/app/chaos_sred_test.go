package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/chaos"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/receiver"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// chaosRig is a real sred (a built binary) with a real Prometheus, the demo
// service behind one of sred's TCP fault proxies, and a webhook sink for pages.
type chaosRig struct {
	t       *testing.T
	dir     string
	bin     string
	cfg     string
	storage []string
	proxy   string // host:port of the fault proxy in front of the demo service
	demo    *tu.Process
	sink    *arrivals
}

// newChaosRig writes sred.yml with one experiment (faults is its YAML list,
// extra more top-level YAML of it) and builds sred; storage are the
// storage flags.
func newChaosRig(t *testing.T, storage []string, lease string, faults string, extra ...string) *chaosRig {
	t.Helper()
	root := tu.RepoRoot(t)
	dir := t.TempDir()
	r := &chaosRig{t: t, dir: dir, bin: filepath.Join(dir, "sred"), storage: storage, sink: &arrivals{}}
	build := exec.Command("go", "build", "-o", r.bin, "./cmd/sred")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build sred: %s", out)
	demoBin := filepath.Join(dir, "demo-service")
	out, err = exec.Command("go", "build", "-o", demoBin, filepath.Join(root, "examples", "demo-service")).CombinedOutput()
	require.NoError(t, err, "build demo-service: %s", out)
	port := tu.FreePort(t)
	r.demo = tu.StartProcess(t, "demo-service", demoBin, []string{"--web.listen-address=127.0.0.1:" + strconv.Itoa(port), "--traffic.rps=0"},
		t.TempDir(), "http://127.0.0.1:"+strconv.Itoa(port), "/-/ready")
	prom := tu.StartPrometheus(t, tu.PrometheusOptions{Config: "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"})
	hooks := httptest.NewServer(r.sink)
	t.Cleanup(hooks.Close)
	r.proxy = "127.0.0.1:" + strconv.Itoa(tu.FreePort(t))

	require.NoError(t, os.MkdirAll(filepath.Join(dir, "chaos"), 0o755))
	// Beside the experiment: a relative pidFile is read from its file's directory.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "chaos", "demo.pid"), []byte(strconv.Itoa(r.demo.PID())), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "chaos", "api.yml"), []byte(`apiVersion: chaos.sre.rootuip.io/v1
kind: Experiment
name: api-latency
hypothesis:
  description: the API holds
  steadyState: [{name: always, promql: 'vector(1)'}]
target: {service: api, environment: staging, instances: 1, totalInstances: 4}
faults:
`+faults+`
duration: 30m
abort: {interval: 1s, burnRate: false}
expectAlerts: true
`+strings.Join(extra, "")), 0o644))
	r.cfg = filepath.Join(dir, "sred.yml")
	require.NoError(t, os.WriteFile(r.cfg, []byte(fmt.Sprintf(`
prometheus: {url: %s}
escalation:
  policies:
    - name: everyone
      levels: [{after: 0s, users: [alice], channels: [webhook]}]
oncall:
  users: [{name: alice, email: alice@example.com}]
notifications:
  min_backoff: 1s
  webhook: {url: %s, secret: s3cret}
chaos:
  experiment_files: [chaos]
  lease: %s
  proxies:
    - {name: backend, kind: tcp, listen: %s, upstream: %s}
`, prom.URL, hooks.URL, lease, r.proxy, strings.TrimPrefix(r.demo.URL, "http://"))), 0o644))
	return r
}

func (r *chaosRig) start(name string) *tu.Process {
	port := tu.FreePort(r.t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	return tu.StartProcess(r.t, name, r.bin, append([]string{"--config.file=" + r.cfg, "--web.no-auth",
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port)}, r.storage...), r.dir, url, "/-/ready")
}

// post sends a JSON body and returns the status and the response body.
func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// eventually waits for cond on real processes (generous: 90s).
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startRun starts the experiment and waits until its faults are injected.
func startRun(t *testing.T, sred *tu.Process) chaos.RunInfo {
	t.Helper()
	code, body := post(t, sred.URL+"/api/v1/chaos/experiments/api-latency/run", "")
	require.Equal(t, http.StatusAccepted, code, body)
	var resp struct{ Data chaos.RunInfo }
	require.NoError(t, json.Unmarshal([]byte(body), &resp))
	var run chaos.RunInfo
	eventually(t, func() bool {
		run = chaos.RunInfo{}
		c, env := getJSON(t, sred.URL+"/api/v1/chaos/runs/"+resp.Data.ID, nil, &run)
		require.Equal(t, http.StatusOK, c, env.Error)
		require.Equal(t, chaos.StatusRunning, run.Status, "run ended early: %s", run.Reason)
		n := len(run.Steps)
		return n > 0 && run.Steps[n-1].Name == "monitor"
	}, "the run never reached its monitor step")
	return run
}

func alert(service, severity, fingerprint string) string {
	labels := fmt.Sprintf(`{"alertname":"Slow","service":%q,"environment":"staging","severity":%q}`, service, severity)
	return fmt.Sprintf(`{"version":"4","groupKey":"{}:{alertname=\"Slow\",service=\"%s\"}","status":"firing","receiver":"sred",
"groupLabels":{"alertname":"Slow","service":%q},"commonLabels":%s,"commonAnnotations":{},"externalURL":"http://alertmanager:9093",
"alerts":[{"status":"firing","labels":%s,"annotations":{},"startsAt":%q,"endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":%q}]}`,
		service, service, labels, labels, time.Now().UTC().Add(-time.Minute).Format(time.RFC3339), fingerprint)
}

// TestChaosExpectedAlerts: while an experiment with expectAlerts runs, an
// alert of its target opens an incident that pages nobody and whose
// timeline says it is expected, while another service still pages; the
// window ends with the run.
func TestChaosExpectedAlerts(t *testing.T) {
	r := newChaosRig(t, []string{"--storage.path=" + filepath.Join(t.TempDir(), "data")}, "30s",
		"  - {name: slow, type: latency, proxy: backend, latency: 200ms}")
	sred := r.start("sred")
	run := startRun(t, sred)

	var windows []struct {
		ID       int64    `json:"id"`
		Name     string   `json:"name"`
		Matchers []string `json:"matchers"`
	}
	code, env := getJSON(t, sred.URL+"/api/v1/escalation/maintenance", nil, &windows)
	require.Equal(t, http.StatusOK, code, env.Error)
	require.Len(t, windows, 1)
	require.Equal(t, chaos.ExpectedNote(run.ID), windows[0].Name)
	require.Equal(t, []string{`service="api"`, `environment=~"staging|"`}, windows[0].Matchers)

	code, body := post(t, sred.URL+receiver.Path, alert("api", "high", "a1"))
	require.Equal(t, http.StatusOK, code, body)
	code, body = post(t, sred.URL+receiver.Path, alert("web", "high", "b2"))
	require.Equal(t, http.StatusOK, code, body)

	incidentOf := func(service string) string {
		var page struct {
			Incidents []struct {
				ID      string `json:"id"`
				Service string `json:"service"`
			} `json:"incidents"`
		}
		code, env := getJSON(t, sred.URL+"/api/v1/incidents", nil, &page)
		require.Equal(t, http.StatusOK, code, env.Error)
		for _, i := range page.Incidents {
			if i.Service == service {
				return i.ID
			}
		}
		return ""
	}
	timeline := func(id string) string {
		resp, err := http.Get(sred.URL + "/api/v1/incidents/" + id + "/timeline")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	var apiInc, webInc string
	eventually(t, func() bool {
		apiInc, webInc = incidentOf("api"), incidentOf("web")
		return apiInc != "" && webInc != ""
	},
		"the alerts opened no incidents")
	// The control: the other service pages alice.
	eventually(t, func() bool { return len(r.sink.pages("alice")) == 1 }, "the incident of service web was not paged")
	// The target's incident: escalation decides not to page (noted in the
	// same transaction as the decision) and the runner notes it expected.
	eventually(t, func() bool {
		tl := timeline(apiInc)
		return strings.Contains(tl, fmt.Sprintf(`Maintenance window \"%s\"`, chaos.ExpectedNote(run.ID))) &&
			strings.Contains(tl, chaos.ExpectedNote(run.ID)+" (experiment api-latency on staging/api): not paged while the run lasts.")
	}, "the incident of the target was not noted as expected:\n"+timeline(apiInc))
	r.sink.mu.Lock()
	for _, m := range r.sink.msgs {
		require.NotEqual(t, apiInc, m.IncidentID, "an expected incident paged: %+v", m)
		if m.Event == notify.EventTrigger {
			require.Equal(t, webInc, m.IncidentID)
		}
	}
	r.sink.mu.Unlock()

	// The window ends with the run.
	code, body = post(t, sred.URL+"/api/v1/chaos/runs/"+run.ID+"/stop", "")
	require.Equal(t, http.StatusAccepted, code, body)
	eventually(t, func() bool {
		var x chaos.RunInfo
		getJSON(t, sred.URL+"/api/v1/chaos/runs/"+run.ID, nil, &x)
		return x.Status == chaos.StatusAborted && x.Steps[len(x.Steps)-1].Finished != nil
	}, "the stopped run did not finish")
	eventually(t, func() bool {
		windows = nil
		getJSON(t, sred.URL+"/api/v1/escalation/maintenance", nil, &windows)
		return len(windows) == 0
	}, "the maintenance window of the run outlived it")
}

// procState is the state letter of a process in /proc (T: stopped).
func procState(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	s := string(b)
	return strings.Fields(s[strings.LastIndex(s, ")")+1:])[0]
}

// answers reports whether the demo service answers through the fault proxy
// within the client's timeout.
func answers(proxy string, timeout time.Duration) bool {
	c := &http.Client{Timeout: timeout}
	resp, err := c.Get("http://" + proxy + "/-/healthy")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestChaosSIGKILLRollback kills sred with SIGKILL in the middle of an
// experiment that stopped the demo service (SIGSTOP) behind a proxy with
// added latency. The stopped service outlives sred; the restarted sred
// rolls every fault back once their lease expired: measured from outside,
// the service runs again and answers through the proxied port. On SQLite
// and on PostgreSQL.
func TestChaosSIGKILLRollback(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			storage := []string{"--storage.path=" + filepath.Join(t.TempDir(), "data")}
			if backend == "postgres" {
				storage = []string{"--storage.postgres-url=" + tu.PostgresSchemaURL(t)}
			}
			r := newChaosRig(t, storage, "3s", `  - {name: slow, type: latency, proxy: backend, latency: 300ms}
  - {name: freeze, type: process-stop, pidFile: demo.pid}`)
			sred := r.start("sred-1")
			require.True(t, answers(r.proxy, 10*time.Second), "the demo service answers through sred's proxy before the run")
			run := startRun(t, sred)
			require.Equal(t, "T", procState(t, r.demo.PID()), "the demo service is stopped by the experiment")
			require.False(t, answers(r.proxy, 2*time.Second), "a stopped service does not answer")

			sred.Kill()
			require.Equal(t, "T", procState(t, r.demo.PID()), "the fault outlives the killed sred")

			sred = r.start("sred-2")
			eventually(t, func() bool { return procState(t, r.demo.PID()) != "T" && answers(r.proxy, 5*time.Second) },
				"the restarted sred did not roll the faults back")
			var got chaos.RunInfo
			eventually(t, func() bool {
				got = chaos.RunInfo{}
				code, env := getJSON(t, sred.URL+"/api/v1/chaos/runs/"+run.ID, nil, &got)
				require.Equal(t, http.StatusOK, code, env.Error)
				return got.Status == chaos.StatusAborted
			}, "the run of the killed sred was not closed")
			require.Contains(t, got.Reason, "runner stopped renewing its lease")
			require.Len(t, got.Faults, 2)
			for _, f := range got.Faults {
				require.Equal(t, chaos.FaultReverted, f.Status, "fault %s: %s", f.Name, f.Error)
				require.NotNil(t, f.Reverted)
			}
		})
	}
}

// TestChaosApprovalAudited: a run of an experiment with approval: waits
// (nothing injected), the approval through the API lets it go on, and the
// approval is in the run's steps and in the audit log.
func TestChaosApprovalAudited(t *testing.T) {
	r := newChaosRig(t, []string{"--storage.path=" + filepath.Join(t.TempDir(), "data")}, "30s",
		"  - {name: freeze, type: process-stop, pidFile: demo.pid}\n", "approval: {role: responder, timeout: 10m}\n")
	sred := r.start("sred")
	code, body := post(t, sred.URL+"/api/v1/chaos/experiments/api-latency/run", "")
	require.Equal(t, http.StatusAccepted, code, body)
	var resp struct{ Data chaos.RunInfo }
	require.NoError(t, json.Unmarshal([]byte(body), &resp))
	id := resp.Data.ID
	require.Equal(t, chaos.StatusWaiting, resp.Data.Status)
	eventually(t, func() bool {
		var x chaos.RunInfo
		getJSON(t, sred.URL+"/api/v1/chaos/runs/"+id, nil, &x)
		return len(x.Steps) == 3 && x.Steps[2].Name == "approval" && x.Steps[2].Status == "running"
	}, "the run does not wait for its approval")
	require.NotEqual(t, "T", procState(t, r.demo.PID()), "nothing is injected before the approval")

	code, body = post(t, sred.URL+"/api/v1/chaos/runs/"+id+"/approve", `{"comment":"game day"}`)
	require.Equal(t, http.StatusOK, code, body)
	eventually(t, func() bool { return procState(t, r.demo.PID()) == "T" }, "the approved run did not inject its fault")
	var run chaos.RunInfo
	code, env := getJSON(t, sred.URL+"/api/v1/chaos/runs/"+id, nil, &run)
	require.Equal(t, http.StatusOK, code, env.Error)
	require.NotNil(t, run.Approval)
	require.Equal(t, "anonymous", run.Approval.By)
	require.Equal(t, "approved by anonymous (admin): game day", run.Steps[2].Detail)

	var audit []struct {
		Actor, Method, Route, Path string
		Status                     int
	}
	code, env = getJSON(t, sred.URL+"/api/v1/audit", nil, &audit)
	require.Equal(t, http.StatusOK, code, env.Error)
	found := false
	for _, e := range audit {
		if e.Route == "POST /api/v1/chaos/runs/{id}/approve" && e.Path == "/api/v1/chaos/runs/"+id+"/approve" && e.Status == http.StatusOK {
			found = true
		}
	}
	require.True(t, found, "the approval is not in the audit log: %+v", audit)

	code, body = post(t, sred.URL+"/api/v1/chaos/runs/"+id+"/stop", "")
	require.Equal(t, http.StatusAccepted, code, body)
	eventually(t, func() bool { return procState(t, r.demo.PID()) != "T" }, "the stopped run did not resume the process")
}
