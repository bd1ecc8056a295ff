package cli

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/budget/budgettest"
	"github.com/rootuip/sre/pkg/change"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/sla"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

const cliSpecs = `
apiVersion: sre.rootuip.io/v1
kind: ServiceLevelObjectives
service: %[1]s
slos:
  - name: availability
    objective: 99
    period: 1d
    sli:
      events:
        errorSelector: http_requests_total{job="%[1]s",code=~"5.."}
        totalSelector: http_requests_total{job="%[1]s"}
`

// TestBudgetGateSLACommands runs srectl budget, gate and sla report against
// sred's handlers backed by a real Prometheus: "web" served 600 requests a
// minute without errors for a day, "checkout" failed 12 a minute (2%, twice
// its 1% budget: exhausted), "search" 3.6 a minute (0.6%: 40% of its budget
// left, yellow). srectl change runs against the same gate.
func TestBudgetGateSLACommands(t *testing.T) {
	end := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	var specs []*slo.Spec
	var series []budgettest.Series
	start := end.Add(-26 * time.Hour)
	for _, s := range []struct {
		name   string
		errors float64
	}{{"web", 0}, {"checkout", 12}, {"search", 3.6}} {
		sp, err := slo.Parse([]byte(fmt.Sprintf(cliSpecs, s.name)), s.name+".yml")
		require.NoError(t, err)
		specs = append(specs, sp...)
		e := s.errors
		series = append(series,
			budgettest.Series{Metric: "http_requests_total", Labels: map[string]string{"job": s.name, "code": "200"}, Start: start, Initial: 1e6,
				Inc: func(time.Time) float64 { return 600 - e }},
			budgettest.Series{Metric: "http_requests_total", Labels: map[string]string{"job": s.name, "code": "500"}, Start: start, Initial: 1e6,
				Inc: func(time.Time) float64 { return e }})
	}
	srv := budgettest.Start(t, budgettest.Options{Specs: specs, Series: series, End: end})

	db, err := store.OpenSQLite(t.Context(), t.TempDir())
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Migrate(t.Context(), budget.Migrations, change.Migrations))
	svc := budget.New(budget.Options{DB: db, Clock: clock.NewManual(end)})
	prom, err := budget.NewProm(srv.URL, commoncfg.DefaultHTTPClientConfig, 10*time.Second)
	require.NoError(t, err)
	cfg := budget.DefaultConfig
	cfg.Gate.OverrideTokens = []commoncfg.Secret{"override-token-0123456789"}
	require.NoError(t, svc.Update(cfg, specs, prom, nil))
	var slaCfg sla.Config
	require.NoError(t, yaml.Unmarshal([]byte(`
customers:
  - id: ACME-001
    name: Acme Corp
    period: 1d
    services:
      - {service: checkout, availability: {target: 99.9}}
      - {service: web, availability: {target: 99.9}}
    credits: [{below: 99.9, credit: 10}]
`), &slaCfg))
	rep := sla.NewReporter(clock.NewManual(end))
	require.NoError(t, rep.Update(slaCfg, prom, sla.Lookup(budget.Objectives(specs))))
	changes := change.New(change.Options{DB: db, Gate: svc, Clock: clock.NewManual(end)})
	svc.SetChangeQuota(changes, 2)
	mux := http.NewServeMux()
	svc.Register(mux)
	rep.Register(mux)
	changes.Register(mux)
	sred := httptest.NewServer(mux)
	defer sred.Close()
	down := fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t))
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("override-token-0123456789\n"), 0o600))

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{"budget table", []string{"budget"}, 0, []string{
			"SERVICE   SLO           GROUP  OBJECTIVE  PERIOD  COVERED  SLI        REMAINING  REMAINING MIN  STATE      BURN     EXHAUSTED IN\n" +
				"checkout  availability  -      99.000%    1d      100.0%   98.0000%   -100.0%    -14.4          exhausted  2x/5m    exhausted\n" +
				"search    availability  -      99.000%    1d      100.0%   99.4000%   40.0%      5.8            yellow     0.6x/5m  16h0m0s\n" +
				"web       availability  -      99.000%    1d      100.0%   100.0000%  100.0%     14.4           green      0x/5m    -\n",
		}, ""},
		{"gate allows", []string{"gate", "--service=web"}, 0, []string{"allow: normal change allowed: error budget of SLO availability is green (100.00% remaining): normal operations"}, ""},
		{"gate denies", []string{"gate", "--service=checkout", "--change=critical"}, 1, []string{"deny: critical change denied: error budget of SLO availability is exhausted (-100.00% remaining): emergency changes only"}, ""},
		{"gate override", []string{"gate", "--service=checkout", "--override-token-file=" + tokenFile, "--reason=rollback", "--actor=bob"}, 0, []string{"allow: emergency override: normal change denied"}, ""},
		{"gate override without reason", []string{"gate", "--service=checkout", "--override-token=x"}, 2, nil, "srectl: --reason is required with an override token"},
		{"gate bad token", []string{"gate", "--service=checkout", "--override-token=wrong", "--reason=x"}, 4, nil, "srectl: sred answered 403: invalid emergency override token"},
		{"gate unknown service", []string{"gate", "--service=nope"}, 4, nil, `srectl: sred answered 404: service "nope" has no SLO: not found`},
		{"gate sred down", []string{"gate", "--service=web", "--sred.url=" + down}, 3, nil, "srectl: reach sred:"},
		{"sla md", []string{"sla", "report", "--customer=ACME-001"}, 0, []string{
			"| checkout | availability (availability) | 99.9% | 98% | MISSED | service | 10% |",
			"| web | availability (availability) | 99.9% | 100% | MET | service |  |",
			"Service credit: 10%",
		}, ""},
		{"change allowed", []string{"change", "record", "--service=web", "--commit=3f2c1ab", "--commit-time=" + end.Add(-2*time.Hour).Format(time.RFC3339), "--actor=ci"}, 0,
			[]string{"change 1: succeeded deploy of web (gate allow: normal change allowed: error budget of SLO availability is green (100.00% remaining): normal operations)\n"}, ""},
		{"change refused", []string{"change", "record", "--service=checkout", "--kind=config"}, 1,
			[]string{"refused: change refused by the deploy gate (recorded as change 2): normal change denied: error budget of SLO availability is exhausted (-100.00% remaining): emergency changes only\n"}, ""},
		{"change override", []string{"change", "record", "--service=checkout", "--override-token-file=" + tokenFile, "--reason=rollback", "--actor=bob"}, 0,
			[]string{"change 3: succeeded deploy of checkout (gate allow: emergency override: normal change denied"}, ""},
		{"change no SLO", []string{"change", "record", "--service=batch", "--kind=infra", "--outcome=in_progress"}, 0,
			[]string{"change 4: in_progress infra of batch (gate skipped: service \"batch\" has no SLO: not gated)\n"}, ""},
		{"change finish", []string{"change", "finish", "4", "--outcome=rolled_back"}, 0, []string{"change 4: rolled_back infra of batch"}, ""},
		{"change retried", []string{"change", "record", "--service=batch", "--kind=infra", "--key=job-1", "--outcome=in_progress"}, 0, []string{"change 5: in_progress infra of batch"}, ""},
		{"change retried again", []string{"change", "record", "--service=batch", "--kind=infra", "--key=job-1", "--outcome=in_progress"}, 0, []string{"change 5: in_progress infra of batch"}, ""},
		{"change finish again", []string{"change", "finish", "4", "--outcome=succeeded"}, 4, nil, "srectl: sred answered 409: change already finished: change 4 is rolled_back"},
		{"change bad commit time", []string{"change", "record", "--service=web", "--commit-time=yesterday"}, 2, nil,
			`srectl: --commit-time must be RFC 3339 (2026-12-03T09:12:00Z), got "yesterday"`},
		{"change yellow 1", []string{"change", "record", "--service=search"}, 0, []string{"(0 of 2 changes a day used)"}, ""},
		{"change yellow 2", []string{"change", "record", "--service=search"}, 0, []string{"(1 of 2 changes a day used)"}, ""},
		{"change yellow quota", []string{"change", "record", "--service=search"}, 1,
			[]string{"refused: change refused by the deploy gate (recorded as change 8): normal change denied: error budget of SLO availability is yellow and service search had 2 changes in the last 24h, its quota while yellow (changes.yellow_max_changes_per_day: 2)"}, ""},
		{"change yellow critical", []string{"change", "record", "--service=search", "--change=critical"}, 0, []string{"change 9: succeeded deploy of search (gate allow: critical change allowed"}, ""},
		{"change after the fact", []string{"change", "record", "--service=ledger", "--started-at=" + end.Add(-21*24*time.Hour).Format(time.RFC3339)}, 4, nil,
			"srectl: sred answered 400: started_at " + end.Add(-21*24*time.Hour).Format(time.RFC3339) + " is more than 24 hours ago and finished_at is not given"},
		{"change after the fact finished", []string{"change", "record", "--service=ledger", "--started-at=" + end.Add(-21*24*time.Hour).Format(time.RFC3339),
			"--finished-at=" + end.Add(-21*24*time.Hour+10*time.Minute).Format(time.RFC3339)}, 0, []string{"change 10: succeeded deploy of ledger (gate skipped"}, ""},
		{"gate yellow quota", []string{"gate", "--service=search", "-o", "json"}, 1, []string{`"decision": "deny"`, `"yellow_quota": 2`, `"changes_last_24h": 3`}, ""},
		{"change list", []string{"change", "list", "--service=checkout"}, 0, []string{
			"ID  SERVICE   KIND    OUTCOME    FAILED  STARTED               VERSION  COMMIT  LEAD TIME  INCIDENTS\n" +
				"3   checkout  deploy  succeeded  false   " + end.Format(time.RFC3339) + "  -        -       -          -\n" +
				"2   checkout  config  refused    false   " + end.Format(time.RFC3339) + "  -        -       -          -\n"}, ""},
		{"change list json", []string{"change", "list", "--service=web", "-o", "json"}, 0, []string{`"lead_time_seconds": 7200`}, ""},
		{"sla csv", []string{"sla", "report", "--customer=ACME-001", "--format=csv"}, 0, []string{"ACME-001,1d,"}, ""},
		{"sla unknown", []string{"sla", "report", "--customer=NOPE"}, 4, nil, `srectl: sred answered 404: customer "NOPE": not found`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := tc.args
			if !strings.Contains(strings.Join(args, " "), "--sred.url") {
				args = append(args, "--sred.url="+sred.URL)
			}
			code := Main(args, &stdout, &stderr)
			require.Equal(t, tc.code, code, "stdout: %s\nstderr: %s", stdout.String(), stderr.String())
			for _, s := range tc.stdout {
				require.Contains(t, stdout.String(), s)
			}
			if tc.stderr != "" {
				require.True(t, strings.HasPrefix(stderr.String(), tc.stderr), stderr.String())
			}
		})
	}
	recs, err := budget.ListDecisions(t.Context(), db, "checkout", 10)
	require.NoError(t, err)
	require.True(t, recs[0].Override)
	require.Equal(t, "bob", recs[0].Actor)
	require.Equal(t, "rollback", recs[0].OverrideReason)
}
