package rollout

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	commoncfg "github.com/prometheus/common/config"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/analysis"
	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/store"
	sretest "github.com/rootuip/sre/pkg/testutil"
)

// missingProg is a program that is not there: an action running it fails
// with its path in the error.
const missingProg = "/nonexistent/sred-test/bin/set-weight"

const missingProgDef = `
name: api-canary
service: api
environment: staging
analysis: {spec: api, canary: {track: canary}, baseline: {track: stable}}
canary:
  stages:
    - {weight: 10, duration: 5m}
    - {weight: 100}
  set_weight: {exec: {command: [` + missingProg + `, '{{ .Vars.weight }}']}}
`

// getAs returns a GET of the service's API routes as a principal of the
// role, which must answer 200: its body.
func getAs(t *testing.T, svc *Service) func(role auth.Role, path string) string {
	mux := http.NewServeMux()
	svc.Routes(mux, false)
	return func(role auth.Role, path string) string {
		t.Helper()
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", path, nil)
		mux.ServeHTTP(rec, r.WithContext(auth.NewContext(r.Context(), auth.Principal{Name: "u", Role: role})))
		b, err := io.ReadAll(rec.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, rec.Code, string(b))
		return string(b)
	}
}

// TestRolloutPathsShownToAdminsOnly: a rollout whose action failed on a
// program that is not there is read by a viewer and a responder with the
// program's base name only, in its events' messages and
// details (the action's argv); an admin reads it whole.
func TestRolloutPathsShownToAdminsOnly(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, missingProgDef)
		ro := h.start("api-canary", "v2")
		h.run()
		require.Contains(t, fmt.Sprint(h.get(ro.ID).Events), missingProg, "the store keeps the whole path")
		get := getAs(t, h.svc)
		path := fmt.Sprintf("/api/v1/rollouts/%d", ro.ID)
		require.Contains(t, get(auth.RoleAdmin, path), missingProg)
		for _, role := range []auth.Role{auth.RoleViewer, auth.RoleResponder} {
			body := get(role, path)
			require.NotContains(t, body, "/nonexistent/", role.String())
			require.True(t, strings.Contains(body, "fork/exec set-weight: no such file or directory"), "as %s: %s", role, body)
			require.Contains(t, body, `"argv":["set-weight","10"]`, role.String())
		}
	})
}

// gateAnalysisDef is a canary whose stages the analysis "paths" judges.
const gateAnalysisDef = `
name: api-canary
service: api
environment: staging
analysis: {spec: paths, canary: {track: canary}, baseline: {track: stable}}
canary:
  stages:
    - {weight: 10, duration: 5m}
    - {weight: 100}
  set_weight:
    http: {endpoint: proxy, method: PUT, path: '/weight', body: '{"canary": {{ .Vars.weight }}}'}
`

const pathsAnalysis = `apiVersion: sre.rootuip.io/v1
kind: RolloutAnalysis
name: paths
service: api
interval: 2m
queries:
  requests: sum(increase(http_requests_total{ {{.Selector}} }[{{.Interval}}]))
  errors: sum(increase(http_requests_total{ {{.Selector}},code=~"5.." }[{{.Interval}}]))
`

const pathsSLO = `apiVersion: sre.rootuip.io/v1
kind: ServiceLevelObjectives
service: api
slos:
  - name: availability
    objective: 99.9
    sli:
      events:
        errorSelector: http_requests_total{job="api",code=~"5.."}
        totalSelector: http_requests_total{job="api"}
`

// TestRolloutGateAndAnalysisPathsShownToAdminsOnly: the events the deploy
// gate and the analysis write in a rollout (actors "gate" and "analysis")
// hold Prometheus' error when it cannot be queried, here the path of a
// credentials file that cannot be read: the gate failing open says so, the
// stage's analysis is inconclusive on the error and the rollout pauses. A
// viewer and a responder read the file's base name in their messages and
// details, Prometheus' URL whole; an admin reads the path whole.
func TestRolloutGateAndAnalysisPathsShownToAdminsOnly(t *testing.T) {
	sretest.Backends(t, append(migrations(), budget.Migrations), func(t *testing.T, db *store.DB) {
		dir := t.TempDir()
		creds := filepath.Join(dir, "prom-token")
		require.NoError(t, os.WriteFile(creds, []byte("prom-secret\n"), 0o600))
		hc := commoncfg.DefaultHTTPClientConfig
		hc.Authorization = &commoncfg.Authorization{Type: "Bearer", CredentialsFile: creds}
		promURL := "http://127.0.0.1:" + strconv.Itoa(sretest.FreePort(t)) + "/prom"
		prom, err := budget.NewProm(promURL, hc, 10*time.Second)
		require.NoError(t, err)
		require.NoError(t, os.Remove(creds))

		specs, err := slo.Parse([]byte(pathsSLO), "api.yml")
		require.NoError(t, err)
		budgets := budget.New(budget.Options{DB: db, Registerer: prometheus.NewRegistry()})
		cfg := budget.DefaultConfig
		cfg.Gate.OnPrometheusError = budget.FailAllow
		require.NoError(t, budgets.Update(cfg, specs, prom, nil))
		spec, err := analysis.Parse([]byte(pathsAnalysis), "paths.yml")
		require.NoError(t, err)

		h := newHarness(t, db, gateAnalysisDef)
		h.svc = New(Options{DB: db, Registerer: prometheus.NewRegistry(), Bus: h.bus, Clock: h.clock, Actuator: h.act,
			Gate: BudgetGate{Budgets: budgets}, Recorder: h.rec,
			Analyzer: SpecAnalyzer{Evaluator: analysis.NewEvaluator(prom, nil), Spec: func(name string) (*analysis.Spec, bool) { return spec, name == spec.Name }}})
		require.NoError(t, h.svc.ApplyConfig(h.cfg, h.defs))
		ro := h.start("api-canary", "v2")
		h.run()
		h.clock.Advance(5 * time.Minute)
		h.run()
		ro = h.get(ro.ID)
		require.Equal(t, StatePaused, ro.State, "%v", kinds(ro))
		require.Contains(t, kinds(ro), "gate:allow")
		require.Contains(t, kinds(ro), "analysis:"+VerdictInconclusive)
		for _, e := range ro.Events {
			if e.Actor == "gate" || e.Actor == "analysis" {
				require.Contains(t, e.Message, creds, "the store keeps the whole path: %s event", e.Actor)
			}
		}

		get := getAs(t, h.svc)
		// The list shows the rollouts without their events.
		for _, path := range []string{fmt.Sprintf("/api/v1/rollouts/%d", ro.ID), "/api/v1/rollouts"} {
			require.Contains(t, get(auth.RoleAdmin, path), creds, path)
			for _, role := range []auth.Role{auth.RoleViewer, auth.RoleResponder} {
				body := get(role, path)
				require.NotContains(t, body, dir, "as %s: %s", role, path)
				require.Contains(t, body, `open prom-token: no such file or directory`, "as %s: %s", role, path)
				require.Contains(t, body, promURL, "as %s: %s", role, path)
			}
		}
		for _, role := range []auth.Role{auth.RoleViewer, auth.RoleResponder} {
			body := get(role, fmt.Sprintf("/api/v1/rollouts/%d", ro.ID))
			require.Contains(t, body, `"actor":"gate","message":"deploy gate allowed: cannot read error budgets, gate fails open (allow)`, role.String())
			require.Contains(t, body, `"actor":"analysis","message":"stage weight-10 analysis: inconclusive: analysis error: Prometheus at `+promURL, role.String())
		}
	})
}

// TestDefinitionsAnalysisNames: the analysis of a definition in GET
// /api/v1/rollouts/definitions has the snake_case names of its YAML and
// of the rest of the API (spec, canary, baseline), not Go's field names.
func TestDefinitionsAnalysisNames(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, missingProgDef)
		var resp struct {
			Data []struct {
				Name     string          `json:"name"`
				Analysis json.RawMessage `json:"analysis"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(getAs(t, h.svc)(auth.RoleViewer, "/api/v1/rollouts/definitions")), &resp))
		require.Len(t, resp.Data, 1)
		require.Equal(t, "api-canary", resp.Data[0].Name)
		require.JSONEq(t, `{"spec":"api","canary":{"track":"canary"},"baseline":{"track":"stable"}}`, string(resp.Data[0].Analysis))
	})
}
