package runbook

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/kube"
	"github.com/rootuip/sre/pkg/store"
	sretest "github.com/rootuip/sre/pkg/testutil"
)

func TestHTTPStep(t *testing.T) {
	var (
		mu   sync.Mutex
		got  []string
		code atomic.Int32
	)
	code.Store(204)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, fmt.Sprintf("%s %s %s %s %s", r.Method, r.URL.Path, r.Header.Get("X-Requested-By"), r.Header.Get("Content-Type"), b))
		mu.Unlock()
		w.WriteHeader(int(code.Load()))
		fmt.Fprint(w, "cache cleared")
	}))
	defer srv.Close()
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		got = nil
		cfg := testConfig()
		cfg.HTTPEndpoints = map[string]HTTPEndpoint{"cache": {URL: srv.URL + "/base"}}
		rb := mustParse(t, `
name: clear-cache
matchers: ['alertname="X"']
labels: {service: '[a-z]+'}
steps:
  - name: clear
    http:
      endpoint: cache
      path: /cache/clear
      headers: {X-Requested-By: 'run {{ .RunID }}'}
      body: '{"service": "{{ .Labels.service }}"}'
      expect_status: [204]
`)
		rec := &recorder{}
		e := newEngine(t, db, cfg, rec, rb)
		startEngine(t, e)
		trigger(t, db, e, newIncident("INC-1", map[string]string{"alertname": "X", "service": "api"}), incident.ChangeCreated)
		run := waitRun(t, e, "INC-1", RunSucceeded, RunFailed)
		require.Equal(t, RunSucceeded, run.Status, run.Reason)
		a := stepAudit(t, run, "clear")
		require.Equal(t, 204, *a.ExitCode)
		require.Equal(t, srv.URL+"/base/cache/clear", a.Input["url"])
		require.Equal(t, []string{fmt.Sprintf(`POST /base/cache/clear run %d application/json {"service": "api"}`, run.ID)}, got)

		code.Store(500)
		trigger(t, db, e, newIncident("INC-2", map[string]string{"alertname": "X", "service": "api"}), incident.ChangeCreated)
		run = waitRun(t, e, "INC-2", RunSucceeded, RunFailed)
		require.Equal(t, RunFailed, run.Status)
		require.Equal(t, "step clear failed: POST "+srv.URL+"/base/cache/clear: unexpected status 500", run.Reason)
		require.Equal(t, "cache cleared", stepAudit(t, run, "clear").Output)
		code.Store(204)
	})
}

// Kubernetes steps run against client-go's fake clientset: no API server
// can run in these tests.
func TestKubernetesSteps(t *testing.T) {
	replicas := func(n int32) *int32 { return &n }
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "prod"},
		Spec:       appsv1.DeploymentSpec{Replicas: replicas(3)},
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "api-7d9f-abcde", Namespace: "prod"}}
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		kc := fake.NewClientset(deploy.DeepCopy(), pod.DeepCopy())
		rb := mustParse(t, `
name: kube
matchers: ['alertname="X"']
labels: {namespace: '[a-z]+', pod: '[a-z0-9-]+'}
steps:
  - name: scale-up
    kubernetes: {action: scale, namespace: '{{ .Labels.namespace }}', deployment: api, by: 2, max: 6}
  - name: scale-up-again
    kubernetes: {action: scale, namespace: '{{ .Labels.namespace }}', deployment: api, by: 2, max: 6}
  - name: scale-to-min
    kubernetes: {action: scale, namespace: '{{ .Labels.namespace }}', deployment: api, replicas: 1, min: 2}
  - name: restart
    kubernetes: {action: rollout_restart, namespace: '{{ .Labels.namespace }}', deployment: api}
  - name: delete-pod
    kubernetes: {action: delete_pod, namespace: '{{ .Labels.namespace }}', pod: '{{ .Labels.pod }}'}
  - name: missing
    on_failure: continue
    kubernetes: {action: rollout_restart, namespace: '{{ .Labels.namespace }}', deployment: nope}
`)
		rec := &recorder{}
		cfg := testConfig()
		set, err := NewSet(cfg, rb)
		require.NoError(t, err)
		e, err := New(Options{DB: db, Incidents: rec, Registerer: prometheus.NewRegistry(),
			Kubernetes: func(KubernetesConfig) (Kubernetes, error) { return &kube.Deployments{Client: kc}, nil }}, cfg, set)
		require.NoError(t, err)
		startEngine(t, e)
		trigger(t, db, e, newIncident("INC-1", map[string]string{"alertname": "X", "namespace": "prod", "pod": "api-7d9f-abcde"}), incident.ChangeCreated)
		run := waitRun(t, e, "INC-1", RunSucceeded, RunFailed)
		require.Equal(t, RunSucceeded, run.Status, run.Reason)
		require.Equal(t, "deployment prod/api scaled from 3 to 5 replicas", stepAudit(t, run, "scale-up").Output)
		require.Equal(t, "deployment prod/api scaled from 5 to 6 replicas", stepAudit(t, run, "scale-up-again").Output, "bounded by max")
		require.Equal(t, "deployment prod/api scaled from 6 to 2 replicas", stepAudit(t, run, "scale-to-min").Output, "bounded by min")
		require.Equal(t, StepFailed, stepAudit(t, run, "missing").Status)
		require.Equal(t, `rollout restart deployment prod/nope: deployments.apps "nope" not found`, stepAudit(t, run, "missing").Error)

		d, err := kc.AppsV1().Deployments("prod").Get(context.Background(), "api", metav1.GetOptions{})
		require.NoError(t, err)
		require.Equal(t, int32(2), *d.Spec.Replicas)
		restarted := d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"]
		_, err = time.Parse(time.RFC3339, restarted)
		require.NoError(t, err, "restartedAt annotation %q", restarted)
		_, err = kc.CoreV1().Pods("prod").Get(context.Background(), "api-7d9f-abcde", metav1.GetOptions{})
		require.True(t, apierrors.IsNotFound(err), "pod deleted: %v", err)
	})
}

func TestDesiredReplicas(t *testing.T) {
	i := func(n int32) *int32 { return &n }
	for _, tc := range []struct {
		step    KubernetesStep
		current int32
		want    int32
	}{
		{KubernetesStep{By: i(2), Max: i(10)}, 3, 5},
		{KubernetesStep{By: i(2), Max: i(4)}, 3, 4},
		{KubernetesStep{By: i(-5), Min: i(1)}, 3, 1},
		{KubernetesStep{By: i(-5)}, 3, 0},
		{KubernetesStep{Replicas: i(5), Max: i(4)}, 1, 4},
		{KubernetesStep{Replicas: i(0), Min: i(2)}, 3, 2},
	} {
		require.Equal(t, tc.want, desiredReplicas(&tc.step, tc.current), "%+v from %d", tc.step, tc.current)
	}
}

// PromQL verification against a real Prometheus scraping a target whose
// value the test flips: the verify step passes once the flipped value is
// scraped, the incident is marked mitigated by automation and resolved. When
// verification never passes, the incident escalates.
func TestPromQLVerify(t *testing.T) {
	reg := prometheus.NewRegistry()
	healthy := prometheus.NewGauge(prometheus.GaugeOpts{Name: "demo_healthy", Help: "1 when healthy."})
	reg.MustRegister(healthy)
	target := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer target.Close()
	prom := sretest.StartPrometheus(t, sretest.PrometheusOptions{Config: fmt.Sprintf(`
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: demo
    static_configs: [{targets: [%q]}]
`, target.Listener.Addr().String())})
	client, err := api.NewClient(api.Config{Address: prom.URL})
	require.NoError(t, err)
	promAPI := v1.NewAPI(client)

	sretest.Backends(t, withIncidents(), func(t *testing.T, db *store.DB) {
		healthy.Set(0)
		require.Eventually(t, func() bool {
			v, _, _, err := promAPI.Query(context.Background(), "demo_healthy == 0", time.Now())
			return err == nil && resultSize(v) == 1
		}, 30*time.Second, 100*time.Millisecond, "Prometheus scrapes the target")
		rb := mustParse(t, `
name: verify
matchers: ['alertname="X"']
resolve_on_verify: true
labels: {job: '[a-z]+'}
steps:
  - name: check
    verify: true
    timeout: 30s
    promql: {query: 'demo_healthy{job="{{ .Labels.job }}"} == 1', interval: 200ms}
`)
		never := mustParse(t, `
name: never
matchers: ['alertname="Y"']
steps:
  - name: check
    verify: true
    timeout: 1s
    promql: {query: 'demo_healthy == 42', interval: 200ms}
`)
		rec := &recorder{}
		cfg := testConfig()
		set, err := NewSet(cfg, rb, never)
		require.NoError(t, err)
		var e *Engine
		svc := newService(t, db, func() []incident.Hook { return []incident.Hook{e} })
		polls := &countingQuerier{Querier: promAPI}
		e, err = New(Options{DB: db, Incidents: IncidentService{svc}, Escalator: rec, Prometheus: polls, Registerer: prometheus.NewRegistry()}, cfg, set)
		require.NoError(t, err)
		startEngine(t, e)
		id := ingest(t, svc, map[string]string{"alertname": "X", "job": "demo"})
		waitRun(t, e, id, RunRunning)
		// The step polled Prometheus, which has the value 0, three times.
		require.Eventually(t, func() bool { return polls.empty.Load() >= 3 }, 60*time.Second, 10*time.Millisecond)
		runs, err := e.ListRuns(context.Background(), RunFilter{IncidentID: id})
		require.NoError(t, err)
		require.Equal(t, RunRunning, runs[0].Status, "not verified while the value is 0")
		healthy.Set(1)
		run := waitRun(t, e, id, RunSucceeded, RunFailed)
		require.Equal(t, RunSucceeded, run.Status, run.Reason)
		require.True(t, run.Verified)
		require.Contains(t, stepAudit(t, run, "check").Output, `demo_healthy{instance="`+target.Listener.Addr().String()+`", job="demo"} => 1`)
		var inc *incident.Incident
		require.Eventually(t, func() bool {
			inc, err = svc.Get(context.Background(), id)
			require.NoError(t, err)
			return inc.Status == incident.StatusResolved
		}, 30*time.Second, 10*time.Millisecond, "resolved after the run ends")
		require.Equal(t, "automation", inc.MitigatedBy)
		tl, err := svc.Timeline(context.Background(), id)
		require.NoError(t, err)
		var kinds []string
		for _, en := range tl {
			kinds = append(kinds, en.Kind+" "+en.Actor)
		}
		require.Contains(t, kinds, "mitigated automation")
		require.Contains(t, kinds, "runbook_step runbook:verify")
		require.Equal(t, "runbook:verify", tl[len(tl)-1].Actor, "resolved by the runbook: %+v", tl[len(tl)-1])
		_, _, _, escalated, _ := rec.snapshot()
		require.Empty(t, escalated)

		id2 := ingest(t, svc, map[string]string{"alertname": "Y"})
		run = waitRun(t, e, id2, RunFailed)
		e.Wait()
		require.Equal(t, "step check failed: step timed out after 1s", run.Reason)
		require.Equal(t, StepTimeout, stepAudit(t, run, "check").Status)
		_, _, _, escalated, _ = rec.snapshot()
		require.Equal(t, []string{id2 + ": runbook never step check failed: step timed out after 1s"}, escalated)
		inc, err = svc.Get(context.Background(), id2)
		require.NoError(t, err)
		require.Empty(t, inc.MitigatedBy)
		require.Equal(t, incident.StatusTriggered, inc.Status)
	})
}

func TestNotifyAndWait(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		rb := mustParse(t, `
name: talk
matchers: ['alertname="X"']
labels: {service: '[a-z]+'}
steps:
  - name: say
    notify: {message: 'restarting {{ .Labels.service }} for {{ .IncidentID }}', channels: [chat]}
  - name: pause
    wait: {duration: 50ms}
`)
		rec := &recorder{}
		e := newEngine(t, db, testConfig(), rec, rb)
		stopFirst := startEngine(t, e)
		trigger(t, db, e, newIncident("INC-1", map[string]string{"alertname": "X", "service": "api"}), incident.ChangeCreated)
		run := waitRun(t, e, "INC-1", RunSucceeded, RunFailed)
		require.Equal(t, RunSucceeded, run.Status, run.Reason)
		tl, _, _, _, notified := rec.snapshot()
		require.Equal(t, []string{fmt.Sprintf("INC-1 run %d step say [slack]: restarting api for INC-1", run.ID)}, notified)
		require.Equal(t, "sent to alice via webhook", stepAudit(t, run, "say").Output)
		var kinds []string
		for _, e := range tl {
			kinds = append(kinds, e.Kind+": "+e.Message)
		}
		require.Contains(t, kinds, "runbook_notify: restarting api for INC-1")
		require.Equal(t, "waited 50ms", stepAudit(t, run, "pause").Output)

		rec.mu.Lock()
		rec.failNotify = true
		rec.mu.Unlock()
		trigger(t, db, e, newIncident("INC-2", map[string]string{"alertname": "X", "service": "api"}), incident.ChangeCreated)
		run = waitRun(t, e, "INC-2", RunSucceeded, RunFailed)
		require.Equal(t, RunFailed, run.Status)
		require.Equal(t, "step say failed: notify: notifier down", run.Reason)

		// Without a notifier the message is not lost silently: the step fails.
		stopFirst()
		set, err := NewSet(testConfig(), rb)
		require.NoError(t, err)
		bare, err := New(Options{DB: db, Incidents: rec, Registerer: prometheus.NewRegistry()}, testConfig(), set)
		require.NoError(t, err)
		stop := startEngine(t, bare)
		trigger(t, db, bare, newIncident("INC-3", map[string]string{"alertname": "X", "service": "api"}), incident.ChangeCreated)
		run = waitRun(t, bare, "INC-3", RunSucceeded, RunFailed)
		require.Equal(t, "step say failed: no notifier is configured: the message is on the timeline and the event stream only", run.Reason)
		stop()
	})
}

// An http step keeps max_output_bytes of the response body and says how
// many bytes it cut (up to maxHTTPBodyCount beyond, then "more than");
// what it keeps is valid UTF-8 even when the cut splits a character.
func TestHTTPStepTruncation(t *testing.T) {
	huge := int64(maxHTTPBodyCount) + 1000
	bodies := map[string]func(w io.Writer){
		"/small":   func(w io.Writer) { fmt.Fprint(w, "short") },
		"/larger":  func(w io.Writer) { fmt.Fprint(w, strings.Repeat("0123456789", 100)) },
		"/utf8":    func(w io.Writer) { fmt.Fprint(w, strings.Repeat("é", 50)) },
		"/nul":     func(w io.Writer) { fmt.Fprint(w, "a\x00b") },
		"/endless": func(w io.Writer) { _, _ = io.CopyN(w, zeros{}, huge) },
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bodies[r.URL.Path](w)
	}))
	defer srv.Close()
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		cfg := testConfig()
		cfg.MaxOutputBytes = 15
		cfg.HTTPEndpoints = map[string]HTTPEndpoint{"srv": {URL: srv.URL}}
		rb := mustParse(t, `
name: bodies
matchers: ['alertname="X"']
steps:
  - {name: small, http: {endpoint: srv, method: GET, path: /small}}
  - {name: larger, http: {endpoint: srv, method: GET, path: /larger}}
  - {name: utf8, http: {endpoint: srv, method: GET, path: /utf8}}
  - {name: nul, http: {endpoint: srv, method: GET, path: /nul}}
  - {name: endless, http: {endpoint: srv, method: GET, path: /endless}}
`)
		e := newEngine(t, db, cfg, &recorder{}, rb)
		startEngine(t, e)
		trigger(t, db, e, newIncident("INC-1", map[string]string{"alertname": "X"}), incident.ChangeCreated)
		run := waitRun(t, e, "INC-1", RunSucceeded, RunFailed)
		require.Equal(t, RunSucceeded, run.Status, run.Reason)
		for step, want := range map[string]string{
			"small":   "short",
			"larger":  "012345678901234\n[... 985 bytes truncated]",
			"utf8":    "ééééééé\uFFFD\n[... 85 bytes truncated]",
			"nul":     "a\uFFFDb",
			"endless": "000000000000000\n[... more than " + fmt.Sprint(maxHTTPBodyCount) + " bytes truncated]",
		} {
			require.Equal(t, want, stepAudit(t, run, step).Output, step)
		}
	})
}

// zeros reads as an endless run of '0'.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '0'
	}
	return len(p), nil
}

// countingQuerier counts the queries that returned no sample.
type countingQuerier struct {
	Querier
	empty atomic.Int64
}

func (c *countingQuerier) Query(ctx context.Context, q string, ts time.Time, opts ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	v, w, i, err := c.Querier.Query(ctx, q, ts, opts...)
	if err == nil && resultSize(v) == 0 {
		c.empty.Add(1)
	}
	return v, w, i, err
}
