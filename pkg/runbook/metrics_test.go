package runbook

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	sretest "github.com/rootuip/sre/pkg/testutil"
)

// TestMetrics drives one engine through every result it counts (lease_lost
// is in TestLeaseLost) and checks sre_runbook_executions_total exactly, the
// sample counts of the duration histograms and sre_runbook_steps_total, and
// the data an exec step leaves on the incident timeline.
func TestMetrics(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pids := filepath.Join(t.TempDir(), "pids")
		rbs := []*Runbook{
			mustParse(t, "name: ok\nmatchers: ['alertname=\"OK\"']\nsteps: [{name: hello, exec: {command: [/bin/echo, hello]}}]\n"),
			mustParse(t, "name: bad\nmatchers: ['alertname=\"BAD\"']\nsteps: [{name: fail, exec: {command: [/bin/false]}}]\n"),
			mustParse(t, "name: dry\nmatchers: ['alertname=\"DRY\"']\ndry_run: true\nsteps: [{name: act, exec: {command: [/bin/echo, dry]}}]\n"),
			mustParse(t, "name: limited\nmatchers: ['alertname=\"LIM\"']\nrate_limit: {per_hour: 1}\nsteps: [{name: act, exec: {command: [/bin/true]}}]\n"),
			mustParse(t, "name: rejects\nmatchers: ['alertname=\"REJ\"']\nlabels: {service: '[a-z]+'}\ntarget: '{{ .Labels.service }}'\nsteps: [{name: act, exec: {command: [/bin/true]}}]\n"),
			mustParse(t, fmt.Sprintf("name: held\nmatchers: ['alertname=\"HOLD\"']\nsteps: [{name: hold, exec: {command: [%q], env: {RUNBOOK_HELPER: pidfile, RUNBOOK_OUT: %q}}}, {name: settle, wait: {duration: 1s}}]\n", helperCmd(), pids)),
		}
		cfg := testConfig()
		cfg.MaxConcurrent = 10
		set, err := NewSet(cfg, rbs...)
		require.NoError(t, err)
		rec := &recorder{}
		reg := prometheus.NewRegistry()
		e, err := New(Options{DB: db, Incidents: rec, Registerer: reg}, cfg, set)
		require.NoError(t, err)
		open := func(id, alert string) {
			trigger(t, db, e, newIncident(id, map[string]string{"alertname": alert}), incident.ChangeCreated)
		}

		// succeeded, failed, dry_run, rate_limited, and rejected (the
		// target needs a service label the incident lacks).
		for id, alert := range map[string]string{"INC-OK": "OK", "INC-BAD": "BAD", "INC-DRY": "DRY", "INC-REJ": "REJ"} {
			open(id, alert)
		}
		open("INC-LIM-1", "LIM")
		open("INC-LIM-2", "LIM")
		require.NoError(t, e.Cycle(ctx))
		e.Wait()
		// cancelled: a pending run cancelled through the API.
		open("INC-HOLD-1", "HOLD")
		runs, err := e.ListRuns(ctx, RunFilter{IncidentID: "INC-HOLD-1"})
		require.NoError(t, err)
		_, err = e.Cancel(ctx, runs[0].ID, "alice", "")
		require.NoError(t, err)
		// skipped: pending while the kill switch is engaged.
		_, err = e.SetKillSwitch(ctx, true, "alice", "test")
		require.NoError(t, err)
		open("INC-OK-2", "OK")
		require.NoError(t, e.Cycle(ctx))
		_, err = e.SetKillSwitch(ctx, false, "alice", "done")
		require.NoError(t, err)
		// interrupted: sred stops during a step, and the run cannot resume
		// because its runbook is no longer loaded.
		stop := startEngine(t, e)
		open("INC-HOLD-2", "HOLD")
		waitRun(t, e, "INC-HOLD-2", RunRunning)
		// The step's process started: stopping now interrupts the step (a
		// failed exec step), not a run that had not reached it yet.
		require.Eventually(t, func() bool { b, _ := os.ReadFile(pids); return len(b) > 0 }, 60*time.Second, 10*time.Millisecond,
			"the held step's process started")
		stop()
		waitRun(t, e, "INC-HOLD-2", RunRunning)
		without, err := NewSet(cfg, rbs[:5]...)
		require.NoError(t, err)
		require.NoError(t, e.Update(cfg, without))
		require.NoError(t, e.Cycle(ctx))
		for id, status := range map[string]string{"INC-OK": RunSucceeded, "INC-BAD": RunFailed, "INC-DRY": RunSucceeded,
			"INC-REJ": RunRejected, "INC-LIM-1": RunSucceeded, "INC-LIM-2": RunRateLimited, "INC-HOLD-1": RunCancelled,
			"INC-OK-2": RunSkipped, "INC-HOLD-2": RunInterrupted} {
			waitRun(t, e, id, status)
		}

		// Every loaded runbook's results are exported from the start: at
		// zero but these.
		counted := map[string]string{
			`{result="cancelled",runbook="held"}`:       "1",
			`{result="dry_run",runbook="dry"}`:          "1",
			`{result="failed",runbook="bad"}`:           "1",
			`{result="interrupted",runbook="held"}`:     "1",
			`{result="rate_limited",runbook="limited"}`: "1",
			`{result="rejected",runbook="rejects"}`:     "1",
			`{result="skipped",runbook="ok"}`:           "1",
			`{result="succeeded",runbook="limited"}`:    "1",
			`{result="succeeded",runbook="ok"}`:         "1",
		}
		var executions []string
		for _, rb := range rbs {
			for _, result := range executionResults {
				series := fmt.Sprintf(`{result=%q,runbook=%q}`, result, rb.Name)
				v, ok := counted[series]
				if !ok {
					v = "0"
				}
				executions = append(executions, "sre_runbook_executions_total"+series+" "+v)
			}
		}
		sort.Strings(executions)
		require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP sre_runbook_executions_total Runbook runs by final result (succeeded, failed, cancelled, interrupted, lease_lost, rate_limited, escalated, skipped, rejected, dry_run).
# TYPE sre_runbook_executions_total counter
`+strings.Join(executions, "\n")+`
# HELP sre_runbook_steps_total Runbook steps by type and status (ok, failed, timeout, dry_run).
# TYPE sre_runbook_steps_total counter
sre_runbook_steps_total{runbook="bad",status="failed",type="exec"} 1
sre_runbook_steps_total{runbook="dry",status="dry_run",type="exec"} 1
sre_runbook_steps_total{runbook="held",status="failed",type="exec"} 1
sre_runbook_steps_total{runbook="limited",status="ok",type="exec"} 1
sre_runbook_steps_total{runbook="ok",status="ok",type="exec"} 1
`), "sre_runbook_executions_total", "sre_runbook_steps_total"))

		// Histograms: one observation per run that started (the held run
		// too, interrupted when claimed after its replica stopped), one per
		// step run.
		require.Equal(t, []string{
			`sre_runbook_execution_duration_seconds{runbook="bad"} 1`,
			`sre_runbook_execution_duration_seconds{runbook="dry"} 1`,
			`sre_runbook_execution_duration_seconds{runbook="held"} 1`,
			`sre_runbook_execution_duration_seconds{runbook="limited"} 1`,
			`sre_runbook_execution_duration_seconds{runbook="ok"} 1`,
			`sre_runbook_step_duration_seconds{runbook="bad",type="exec"} 1`,
			`sre_runbook_step_duration_seconds{runbook="dry",type="exec"} 1`,
			`sre_runbook_step_duration_seconds{runbook="held",type="exec"} 1`,
			`sre_runbook_step_duration_seconds{runbook="limited",type="exec"} 1`,
			`sre_runbook_step_duration_seconds{runbook="ok",type="exec"} 1`,
		}, histogramCounts(t, reg))
		require.Equal(t, 0.0, testutil.ToFloat64(e.metrics.active))
		require.Equal(t, 0.0, testutil.ToFloat64(e.metrics.killSwitch))

		// The exec step's timeline entry carries its exit code, output and duration.
		tl, _, _, _, _ := rec.snapshot()
		var step *incident.TimelineEntry
		for i := range tl {
			if tl[i].IncidentID == "INC-OK" && tl[i].Kind == "runbook_step" {
				step = &tl[i]
			}
		}
		require.NotNil(t, step, "timeline: %+v", tl)
		require.True(t, strings.HasPrefix(step.Message, "step hello (exec) ok in "), step.Message)
		require.Equal(t, "runbook:ok", step.Actor)
		require.Equal(t, 0, step.Data["exit_code"])
		require.Equal(t, "hello\n", step.Data["output"])
		require.Equal(t, "hello", step.Data["step"])
		require.Equal(t, "exec", step.Data["step_type"])
		require.Equal(t, StepOK, step.Data["status"])
		d, ok := step.Data["duration_seconds"].(float64)
		require.True(t, ok, "duration_seconds is %T", step.Data["duration_seconds"])
		require.Greater(t, d, 0.0)
		require.Less(t, d, 10.0)
		in, ok := step.Data["input"].(map[string]any)
		require.True(t, ok)
		require.Equal(t, []string{"/bin/echo", "hello"}, in["argv"])
		// A failed exec step records its exit code too.
		for _, en := range tl {
			if en.IncidentID == "INC-BAD" && en.Kind == "runbook_step" {
				require.Equal(t, 1, en.Data["exit_code"])
				require.Equal(t, "/bin/false: exit status 1", en.Data["error"])
			}
		}
	})
}

// histogramCounts lists "name{labels} sample_count" of the histograms in reg.
func histogramCounts(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if m.Histogram == nil {
				continue
			}
			var lbls []string
			for _, l := range m.GetLabel() {
				lbls = append(lbls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			out = append(out, fmt.Sprintf("%s{%s} %d", mf.GetName(), strings.Join(lbls, ","), m.GetHistogram().GetSampleCount()))
		}
	}
	sort.Strings(out)
	return out
}

// The rate limits count the runs started in the last hour: a run started
// 59 minutes ago counts, one started 61 minutes ago does not, both per
// runbook and per target.
func TestRateLimitWindow(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Now()
		past := func(incidentID, runbook, target string, age time.Duration) {
			t.Helper()
			at := ms(now.Add(-age))
			_, err := db.ExecContext(ctx, `INSERT INTO runbook_runs (incident_id, runbook, target, status, created_at, started_at, finished_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`, incidentID, runbook, target, RunSucceeded, at, at, at+1000)
			require.NoError(t, err)
		}
		past("OLD-1", "per-runbook-old", "t-old", 61*time.Minute)
		past("OLD-2", "per-runbook-recent", "t-recent", 59*time.Minute)
		past("OLD-3", "per-target", "svc-old", 61*time.Minute)
		past("OLD-4", "per-target", "svc-recent", 59*time.Minute)
		rbs := []*Runbook{
			mustParse(t, "name: per-runbook-old\nmatchers: ['alertname=\"A\"']\ntarget: fresh-a\nrate_limit: {per_hour: 1}\nsteps: [{name: act, exec: {command: [/bin/true]}}]\n"),
			mustParse(t, "name: per-runbook-recent\nmatchers: ['alertname=\"B\"']\ntarget: fresh-b\nrate_limit: {per_hour: 1}\nsteps: [{name: act, exec: {command: [/bin/true]}}]\n"),
			mustParse(t, "name: per-target\nmatchers: ['alertname=\"C\"']\nlabels: {service: '[a-z-]+'}\ntarget: '{{ .Labels.service }}'\nrate_limit: {per_target_per_hour: 1}\nsteps: [{name: act, exec: {command: [/bin/true]}}]\n"),
		}
		e := newEngine(t, db, testConfig(), &recorder{}, rbs...)
		startEngine(t, e)
		for _, tc := range []struct {
			id     string
			labels map[string]string
			status string
			reason string
		}{
			{"INC-1", map[string]string{"alertname": "A"}, RunSucceeded, ""},
			{"INC-2", map[string]string{"alertname": "B"}, RunRateLimited, "rate limit: runbook per-runbook-recent already started 1 times in the last hour (limit 1)"},
			{"INC-3", map[string]string{"alertname": "C", "service": "svc-old"}, RunSucceeded, ""},
			{"INC-4", map[string]string{"alertname": "C", "service": "svc-recent"}, RunRateLimited, "rate limit: target svc-recent already had 1 runs in the last hour (limit 1)"},
		} {
			trigger(t, db, e, newIncident(tc.id, tc.labels), incident.ChangeCreated)
			run := waitRun(t, e, tc.id, RunSucceeded, RunRateLimited, RunFailed)
			require.Equal(t, tc.status, run.Status, tc.id)
			require.Equal(t, tc.reason, run.Reason, tc.id)
		}
	})
}
