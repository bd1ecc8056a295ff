package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/rollout"
	"github.com/rootuip/sre/pkg/runbook"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/targetlock"
	"github.com/rootuip/sre/pkg/testutil"
)

// noDataAnalyzer fails every analysis on no data only: a canary
// Prometheus has not scraped yet.
type noDataAnalyzer struct{}

func (noDataAnalyzer) Analyze(context.Context, rollout.AnalysisRequest) (rollout.Verdict, error) {
	return rollout.Verdict{Result: rollout.VerdictFail, Reason: "health fail: no data", NoData: true}, nil
}

type allowGate struct{}

func (allowGate) Ask(context.Context, string, string, string) (rollout.GateAnswer, error) {
	return rollout.GateAnswer{Allowed: true, State: "green", Reason: "budget green"}, nil
}

// TestRolloutStatusText: srectl rollout status of a rollout held at its
// stage, waiting for data after its analysis failed on no data only, and
// rolled back when none came, as sred's rollout API answers.
func TestRolloutStatusText(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{jobs.Migrations, targetlock.Migrations, rollout.Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
		clk := clock.NewManual(t0)
		proxy := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		defer proxy.Close()
		rcfg := runbook.DefaultConfig
		rcfg.HTTPEndpoints = map[string]runbook.HTTPEndpoint{"proxy": {URL: proxy.URL}}
		act, err := runbook.NewActuator(rcfg, nil, clk)
		require.NoError(t, err)
		def, err := rollout.Parse([]byte(`
name: api-canary
service: api
environment: staging
analysis: {spec: api, canary: {track: canary}, baseline: {track: stable}}
canary:
  stages:
    - {weight: 10, duration: 5m}
    - {weight: 100}
  set_weight:
    http: {endpoint: proxy, method: PUT, path: '/weight', body: '{"canary": {{ .Vars.weight }}}'}
`), "api-canary.yml")
		require.NoError(t, err)
		svc := rollout.New(rollout.Options{DB: db, Registerer: prometheus.NewRegistry(), Clock: clk, Actuator: act,
			Gate: allowGate{}, Analyzer: noDataAnalyzer{}})
		require.NoError(t, svc.ApplyConfig(rollout.DefaultConfig, []*rollout.Definition{def}))
		ro, err := svc.Start(ctx, rollout.StartRequest{Name: "api-canary", Version: "v2", Stable: "v1", Actor: "alice"})
		require.NoError(t, err)
		mux := http.NewServeMux()
		svc.Routes(mux, true)
		srv := httptest.NewServer(mux)
		defer srv.Close()

		status := func() string {
			t.Helper()
			var stdout, stderr bytes.Buffer
			code := Main([]string{"rollout", "status", fmt.Sprint(ro.ID), "--sred.url=" + srv.URL}, &stdout, &stderr)
			require.Equal(t, 0, code, stderr.String())
			return stdout.String()
		}
		header := "Rollout 1 of api (canary): api-canary v1 -> v2, running, stage weight-10, weight 10%\n"
		stages := "STAGE        WEIGHT  DURATION  ANALYSIS  \n" +
			"weight-10 <  10%     5m0s      true      \n" +
			"weight-100   100%    0s        false     \n\n"
		held := "10:00:00  started   running  alice     rollout of api v2 (stable v1) started by alice\n" +
			"10:00:00  gate      allow    gate      deploy gate allowed: budget green\n" +
			"10:00:00  stage     entered  system    stage weight-10 entered\n" +
			"10:00:00  action    ok       system    stage action (http) ok\n" +
			"10:00:00  stage     holding  system    stage weight-10: weight 10% held for 5m0s, until 2026-12-03T10:05:00Z\n"
		noData := "10:05:00  analysis  fail     analysis  stage weight-10 analysis: fail: health fail: no data\n" +
			"10:05:00  stage     no_data  analysis  stage weight-10: no data yet, no check failed on measured data: analysed again every 10s, rolled back if there is still no data at 2026-12-03T10:10:00Z\n"
		for _, step := range []struct {
			name    string
			advance time.Duration
			want    string
		}{
			{"held", 0, header + "Stage ends: 2026-12-03T10:05:00Z\n" + stages +
				"TIME      EVENT    STATUS   ACTOR   MESSAGE\n" +
				"10:00:00  started  running  alice   rollout of api v2 (stable v1) started by alice\n" +
				"10:00:00  gate     allow    gate    deploy gate allowed: budget green\n" +
				"10:00:00  stage    entered  system  stage weight-10 entered\n" +
				"10:00:00  action   ok       system  stage action (http) ok\n" +
				"10:00:00  stage    holding  system  stage weight-10: weight 10% held for 5m0s, until 2026-12-03T10:05:00Z\n"},
			// The hold ended, the analysis failed on no data only: the
			// stage waits, and its due is the next analysis.
			{"waiting for data", 5 * time.Minute, header + "Waiting for data since 2026-12-03T10:05:00Z; next analysis: 2026-12-03T10:05:10Z\n" + stages +
				"TIME      EVENT     STATUS   ACTOR     MESSAGE\n" + held + noData},
			// The history records the wait once; the next analysis moves.
			{"still waiting", 10 * time.Second, header + "Waiting for data since 2026-12-03T10:05:00Z; next analysis: 2026-12-03T10:05:20Z\n" + stages +
				"TIME      EVENT     STATUS   ACTOR     MESSAGE\n" + held + noData},
		} {
			clk.Advance(step.advance)
			_, err := svc.RunDue(ctx)
			require.NoError(t, err)
			require.Equal(t, step.want, status(), step.name)
		}
		// Still no data at the deadline: rolled back, no wait shown.
		clk.Advance(5 * time.Minute)
		_, err = svc.RunDue(ctx)
		require.NoError(t, err)
		out := status()
		require.Contains(t, out, "Rollout 1 of api (canary): api-canary v1 -> v2, rolled_back, stage weight-10, weight 0%\n"+
			"Reason: stage weight-10 analysis failed on no data: still none 5m0s after the stage's hold (rollouts.no_data_wait): health fail: no data\n"+
			"STAGE ")
		require.NotContains(t, out, "Waiting for data")
		require.NotContains(t, out, "Stage ends")
	})
}

// TestRolloutValidate: srectl rollout validate counts the stages of each
// definition, "1 stage" for one.
func TestRolloutValidate(t *testing.T) {
	dir := t.TempDir()
	one := filepath.Join(dir, "one.yml")
	require.NoError(t, os.WriteFile(one, []byte(`name: all-at-once
service: api
environment: staging
canary:
  stages: [{weight: 100}]
  set_weight: {exec: {command: [set-weight, '{{ .Vars.weight }}']}}
`), 0o600))
	two := filepath.Join(dir, "two.yml")
	require.NoError(t, os.WriteFile(two, []byte(`name: half-then-all
service: api
environment: staging
canary:
  stages: [{weight: 50, duration: 10m}, {weight: 100}]
  set_weight: {exec: {command: [set-weight, '{{ .Vars.weight }}']}}
`), 0o600))
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, Main([]string{"rollout", "validate", one, two}, &stdout, &stderr), "%s\n%s", stdout.String(), stderr.String())
	require.Equal(t, one+": rollout all-at-once is valid (canary of api in staging, 1 stage)\n"+
		two+": rollout half-then-all is valid (canary of api in staging, 2 stages)\n", stdout.String())
}
