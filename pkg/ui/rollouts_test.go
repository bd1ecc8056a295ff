package ui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/rollout"
	"github.com/rootuip/sre/pkg/runbook"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/targetlock"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/ui"
)

// TestRolloutsPage lists the definitions and rollouts of a real stage
// runner, and one rollout's stages and history.
func TestRolloutsPage(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations, jobs.Migrations, targetlock.Migrations, rollout.Migrations}, func(t *testing.T, db *store.DB) {
		def, err := rollout.Parse([]byte(`name: api-canary
service: api
environment: staging
canary:
  stages: [{weight: 10, duration: 5m}, {weight: 100}]
  set_weight: {http: {endpoint: proxy, method: PUT, path: /w, body: '{"canary": {{ .Vars.weight }}}'}}
`), "api.yml")
		require.NoError(t, err)
		// No budgets here: the gate cannot answer, so the rollout is denied.
		runner := rollout.New(rollout.Options{DB: db, Gate: rollout.BudgetGate{}})
		require.NoError(t, runner.ApplyConfig(rollout.DefaultConfig, []*rollout.Definition{def}))
		ro, err := runner.Start(context.Background(), rollout.StartRequest{Name: "api-canary", Version: "v2", Stable: "v1", Actor: "alice"})
		require.NoError(t, err)
		require.Equal(t, rollout.StateDenied, ro.State)

		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		mux := http.NewServeMux()
		ui.New(ui.Sources{Incidents: svc, Rollouts: runner}, ui.Options{Extra: []ui.NavItem{{Name: "Rollouts", Path: "/rollouts"}}}).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()

		code, body := get(t, srv.URL+"/rollouts")
		require.Equal(t, http.StatusOK, code, body)
		for _, want := range []string{`href="/rollouts?id=1"`, "v1 &rarr; v2", "denied", "deploy gate denied: the deploy gate did not answer: the budgets subsystem is not set up",
			"staging/api", "weight-10, weight-100", `href="/rollouts"`} {
			require.Contains(t, body, want)
		}
		code, body = get(t, srv.URL+"/rollouts?id=1")
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, "Rollout 1: api v1 &rarr; v2")
		require.Contains(t, body, "rollout of api v2 (stable v1) started by alice")
		code, _ = get(t, srv.URL+"/rollouts?id=9")
		require.Equal(t, http.StatusNotFound, code)
	})
}

// allowGate is a deploy gate that lets every rollout go.
type allowGate struct{}

func (allowGate) Ask(context.Context, string, string, string) (rollout.GateAnswer, error) {
	return rollout.GateAnswer{Allowed: true, State: "green", Reason: "budget green"}, nil
}

// TestRolloutsPagePathsShownToAdminsOnly: a rollout whose action failed
// on a program that is not there is shown to a viewer with the program's
// base name only; an admin reads the whole path.
func TestRolloutsPagePathsShownToAdminsOnly(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations, jobs.Migrations, targetlock.Migrations, rollout.Migrations}, func(t *testing.T, db *store.DB) {
		const prog = "/nonexistent/sred-test/bin/set-weight"
		def, err := rollout.Parse([]byte(`name: api-canary
service: api
environment: staging
canary:
  stages: [{weight: 10, duration: 5m}, {weight: 100}]
  set_weight: {exec: {command: [`+prog+`, '{{ .Vars.weight }}']}}
`), "api.yml")
		require.NoError(t, err)
		act, err := runbook.NewActuator(runbook.DefaultConfig, nil, nil)
		require.NoError(t, err)
		runner := rollout.New(rollout.Options{DB: db, Gate: allowGate{}, Actuator: act})
		require.NoError(t, runner.ApplyConfig(rollout.DefaultConfig, []*rollout.Definition{def}))
		_, err = runner.Start(context.Background(), rollout.StartRequest{Name: "api-canary", Version: "v2", Stable: "v1", Actor: "alice"})
		require.NoError(t, err)
		_, err = runner.RunDue(context.Background())
		require.NoError(t, err)
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		requirePathsShownToAdminsOnly(t, ui.Sources{Incidents: svc, Rollouts: runner}, []string{"/rollouts?id=1"},
			"fork/exec "+prog, "fork/exec set-weight: no such file or directory", "/nonexistent/")
	})
}
