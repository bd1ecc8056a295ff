package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/audit"
	"github.com/rootuip/sre/pkg/change"
	"github.com/rootuip/sre/pkg/rollout"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// weightLog is the admin API of a weighted proxy: it records the weights
// the rollout runner's http actions set.
type weightLog struct {
	mu      sync.Mutex
	weights []int
}

func (l *weightLog) handler(w http.ResponseWriter, r *http.Request) {
	var req struct{ Canary int }
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	l.mu.Lock()
	l.weights = append(l.weights, req.Canary)
	l.mu.Unlock()
	fmt.Fprintln(w, `{"ok": true}`)
}

func (l *weightLog) got() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.weights)
}

// TestRolloutSurvivesRestart runs a rollout through a real sred, stops
// that sred with the rollout half done and starts another on the same
// store (SQLite file, PostgreSQL schema): the new one knows the rollout and
// drives it on. Promote, pause and abort are in the audit log; a denied
// gate stops a rollout with its reason; the deployment is a change record.
func TestRolloutSurvivesRestart(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testRolloutSurvivesRestart(t, backend) })
	}
}

func testRolloutSurvivesRestart(t *testing.T, backend string) {
	weights := &weightLog{}
	proxy := httptest.NewServer(http.HandlerFunc(weights.handler))
	defer proxy.Close()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "stages"), 0o755))
	def := `name: %[1]s-canary
service: %[1]s
environment: staging
canary:
  stages: [{weight: 10, duration: 1h}, {weight: 50, duration: 1h}, {weight: 100}]
  set_weight: {http: {endpoint: canary-proxy, method: PUT, path: /admin/weight, body: '{"canary": {{ .Vars.weight }}}'}}
`
	for _, svc := range []string{"api", "checkout"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "stages", svc+".yml"), fmt.Appendf(nil, def, svc), 0o644))
	}
	slos, err := filepath.Abs(filepath.Join("..", "..", "examples", "slos", "api.yml"))
	require.NoError(t, err)
	cfgFile := filepath.Join(dir, "sred.yml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(`
slos:
  spec_files: [`+slos+`]
  # No Prometheus here: the gate answers with its fail mode.
  gate: {on_prometheus_error: allow}
runbooks:
  http_endpoints:
    canary-proxy: {url: `+proxy.URL+`}
rollouts:
  files: [stages]
`), 0o644))
	o := Options{ConfigFile: cfgFile, StoragePath: filepath.Join(dir, "data")}
	if backend == "postgres" {
		o.PostgresURL = tu.PostgresSchemaURL(t)
	}
	start := func() (*App, *httptest.Server, func()) {
		ctx, cancel := context.WithCancel(context.Background())
		a, err := New(ctx, o)
		require.NoError(t, err)
		srv := httptest.NewServer(a.Handler())
		var wg sync.WaitGroup
		for _, act := range a.Actors() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := act.Execute(ctx); err != nil && ctx.Err() == nil {
					t.Errorf("actor %s: %v", act.Name, err)
				}
			}()
		}
		var once sync.Once
		stop := func() {
			once.Do(func() {
				cancel()
				wg.Wait()
				srv.Close()
				a.Close()
			})
		}
		t.Cleanup(stop)
		return a, srv, stop
	}
	post := func(url, body string) (int, rollout.Rollout, string) {
		code, b := send(t, http.MethodPost, url, body)
		var env struct {
			Data  rollout.Rollout `json:"data"`
			Error string          `json:"error"`
		}
		require.NoError(t, json.Unmarshal(b, &env), "%s", b)
		return code, env.Data, env.Error
	}
	get := func(url string, id int64) rollout.Rollout {
		var ro rollout.Rollout
		code, env := getJSON(t, fmt.Sprintf("%s/api/v1/rollouts/%d", url, id), nil, &ro)
		require.Equal(t, http.StatusOK, code, env.Error)
		return ro
	}
	waitWeights := func(want ...int) {
		t.Helper()
		require.Eventually(t, func() bool { return slices.Equal(weights.got(), want) }, time.Minute, 10*time.Millisecond,
			"weights set: want %v", want)
	}

	_, srv, stop := start()
	// A service with no SLO cannot be answered for: denied, with the reason.
	code, _, msg := post(srv.URL+"/api/v1/rollouts", `{"name": "checkout-canary", "version": "v2", "stable": "v1"}`)
	require.Equal(t, http.StatusConflict, code)
	require.Contains(t, msg, `denied: deploy gate denied: the deploy gate did not answer: service "checkout" has no SLO`)

	code, ro, msg := post(srv.URL+"/api/v1/rollouts", `{"name": "api-canary", "version": "v2", "stable": "v1"}`)
	require.Equal(t, http.StatusAccepted, code, msg)
	require.Contains(t, ro.Events[1].Message, "deploy gate allowed: cannot read error budgets, gate fails open")
	waitWeights(10)
	code, ro, msg = post(fmt.Sprintf("%s/api/v1/rollouts/%d/pause", srv.URL, ro.ID), `{"reason": "hold for the launch"}`)
	require.Equal(t, http.StatusOK, code, msg)
	require.Equal(t, rollout.StatePaused, ro.State)
	stop()

	// Another sred on the same store: the rollout is there, half done.
	a, srv, _ := start()
	ro = get(srv.URL, ro.ID)
	require.Equal(t, rollout.StatePaused, ro.State)
	require.Equal(t, 10, ro.Weight)
	require.Equal(t, "anonymous", ro.Actor)
	code, ro, msg = post(fmt.Sprintf("%s/api/v1/rollouts/%d/promote", srv.URL, ro.ID), ``)
	require.Equal(t, http.StatusOK, code, msg)
	waitWeights(10, 50)
	require.Eventually(t, func() bool { return get(srv.URL, ro.ID).Due != nil }, time.Minute, 10*time.Millisecond)
	code, _, msg = post(fmt.Sprintf("%s/api/v1/rollouts/%d/abort", srv.URL, ro.ID), `{"reason": "enough"}`)
	require.Equal(t, http.StatusOK, code, msg)
	waitWeights(10, 50, 0)
	require.Eventually(t, func() bool { return get(srv.URL, ro.ID).State == rollout.StateAborted }, time.Minute, 10*time.Millisecond)

	// The manual commands of both sreds are in the audit log.
	var entries []audit.Entry
	code, env := getJSON(t, srv.URL+"/api/v1/audit", nil, &entries)
	require.Equal(t, http.StatusOK, code, env.Error)
	var routes []string
	for _, e := range entries {
		if e.Route != "" && e.Status < 300 && slices.Contains([]string{"pause", "promote", "abort"}, filepath.Base(e.Path)) {
			routes = append(routes, e.Route)
		}
	}
	require.Equal(t, []string{"POST /api/v1/rollouts/{id}/abort", "POST /api/v1/rollouts/{id}/promote", "POST /api/v1/rollouts/{id}/pause"}, routes)

	// The deployment is a change, rolled back; the denied one refused.
	var changes struct{ Changes []change.Change }
	code, env = getJSON(t, srv.URL+"/api/v1/changes", nil, &changes)
	require.Equal(t, http.StatusOK, code, env.Error)
	outcomes := map[string]change.Outcome{}
	for _, c := range changes.Changes {
		require.Equal(t, change.SourceRollout, c.Source)
		outcomes[c.Service] = c.Outcome
	}
	require.Equal(t, map[string]change.Outcome{"api": change.RolledBack, "checkout": change.Refused}, outcomes)

	// Counted once the runner finished the rollout's bookkeeping.
	require.Eventually(t, func() bool {
		mfs, _ := scrape(t, srv.URL)
		v, _ := metricValue(mfs, "sre_rollout_finished_total", map[string]string{"strategy": "canary", "result": "aborted"})
		return v == 1
	}, time.Minute, 10*time.Millisecond)
	mfs, _ := scrape(t, srv.URL)
	v, ok := metricValue(mfs, "sre_rollout_active", map[string]string{"state": "running"})
	require.True(t, ok)
	require.Equal(t, 0.0, v)
	require.NotNil(t, a.Rollouts)
}
