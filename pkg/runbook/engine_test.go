package runbook

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/store"
	sretest "github.com/rootuip/sre/pkg/testutil"
)

// argvRunbook runs the test binary as a program that writes its argv to out.
func argvRunbook(name, pattern, out string) string {
	return fmt.Sprintf(`
name: %s
matchers: ['alertname="Hostile"']
labels:
  service: '%s'
steps:
  - name: echo
    exec:
      command: [%q, "--", "{{ .Labels.service }}", "plain {{ .Labels.service }}"]
      env:
        RUNBOOK_HELPER: argv
        RUNBOOK_OUT: %q
`, name, pattern, helperCmd(), out)
}

// Hostile label values pass as single inert arguments when the allow-list
// admits them, and never reach a shell: the command substitutions they hold
// do not run. With a strict allow-list the step is refused before any process starts.
func TestExecHostileLabels(t *testing.T) {
	hostile := []string{
		"; rm -rf /",
		"$(touch MARKER)",
		"`touch MARKER`",
		"a\nb; touch MARKER",
		"x' && touch MARKER && echo '",
		"|| touch MARKER",
		strings.Repeat("A", 200) + "$(touch MARKER)",
	}
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		dir := t.TempDir()
		t.Chdir(dir) // a shell would create MARKER here
		for i, v := range hostile {
			out := filepath.Join(dir, fmt.Sprintf("argv-%d.json", i))
			rec := &recorder{}
			permissive := mustParse(t, argvRunbook("permissive", `(?s).*`, out))
			e := newEngine(t, db, testConfig(), rec, permissive)
			stop := startEngine(t, e)
			inc := newIncident(fmt.Sprintf("INC-P-%d", i), map[string]string{"alertname": "Hostile", "service": v})
			trigger(t, db, e, inc, incident.ChangeCreated)
			run := waitRun(t, e, inc.ID, RunSucceeded, RunFailed)
			require.Equal(t, RunSucceeded, run.Status, run.Reason)
			b, err := os.ReadFile(out)
			require.NoError(t, err)
			var argv []string
			require.NoError(t, json.Unmarshal(b, &argv))
			require.Equal(t, []string{"--", v, "plain " + v}, argv, "each value is one inert argument")
			_, err = os.Stat(filepath.Join(dir, "MARKER"))
			require.True(t, os.IsNotExist(err), "no shell ran the value")
			stop()
		}

		// The allow-list of the example runbooks refuses every hostile value.
		for i, v := range append(hostile, strings.Repeat("a", 300)) {
			out := filepath.Join(dir, fmt.Sprintf("strict-%d.json", i))
			rec := &recorder{}
			strict := mustParse(t, argvRunbook("strict", `[a-z][a-z0-9-]{0,40}`, out))
			e := newEngine(t, db, testConfig(), rec, strict)
			stop := startEngine(t, e)
			inc := newIncident(fmt.Sprintf("INC-S-%d", i), map[string]string{"alertname": "Hostile", "service": v})
			trigger(t, db, e, inc, incident.ChangeCreated)
			run := waitRun(t, e, inc.ID, RunSucceeded, RunFailed)
			require.Equal(t, RunFailed, run.Status)
			require.Contains(t, run.Reason, `step echo failed: command[2]: label "service" `)
			_, err := os.Stat(out)
			require.True(t, os.IsNotExist(err), "the program never started")
			stop()
		}
	})
}

func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	// The step's deadline passes once its process has started the
	// grandchild (not after a fixed time, which a loaded machine may reach
	// before the helper has even started): the context ends with the cause
	// a deadline gives it.
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	pids := filepath.Join(t.TempDir(), "pids")
	done := make(chan stepResult, 1)
	go func() {
		done <- runExec(ctx, []string{helperCmd()}, map[string]string{"RUNBOOK_HELPER": "pidfile", "RUNBOOK_OUT": pids}, "", 4096)
	}()
	var parent, pid int
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(pids)
		_, err := fmt.Sscan(string(b), &parent, &pid)
		return err == nil
	}, 60*time.Second, 10*time.Millisecond, "the step's process never started its grandchild")
	cancel(context.DeadlineExceeded)
	res := <-done
	require.Equal(t, StepFailed, res.Status)
	require.Contains(t, res.Error, "killed: context deadline exceeded")
	require.NotNil(t, res.ExitCode)
	require.Equal(t, -1, *res.ExitCode, "killed by a signal")
	// The grandchild (/bin/sleep 60) died with the group.
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		return err != nil || strings.Contains(string(b), ") Z ")
	}, 30*time.Second, 20*time.Millisecond, "grandchild %d still alive", pid)
}

func TestExecOutputAndExitCode(t *testing.T) {
	res := runExec(context.Background(), []string{"/bin/echo", "-n", strings.Repeat("x", 100)}, nil, "", 10)
	require.Equal(t, StepOK, res.Status)
	require.Equal(t, "xxxxxxxxxx", res.Output)
	require.Equal(t, int64(90), res.Dropped)
	res.keepOutput(10)
	require.Equal(t, "xxxxxxxxxx\n[... 90 bytes truncated]", res.Output, "cut once, with the real count")
	require.Equal(t, 0, *res.ExitCode)

	res = runExec(context.Background(), []string{"/bin/false"}, nil, "", 10)
	require.Equal(t, StepFailed, res.Status)
	require.Equal(t, 1, *res.ExitCode)
	require.Equal(t, "/bin/false: exit status 1", res.Error)

	res = runExec(context.Background(), []string{"/nonexistent/prog"}, nil, "", 10)
	require.Equal(t, StepFailed, res.Status)
	require.Equal(t, "start /nonexistent/prog: fork/exec /nonexistent/prog: no such file or directory", res.Error)
}

// A redelivered alert (the same incident changed again) never starts a second run.
func TestTriggerIdempotent(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		rec := &recorder{}
		rb := mustParse(t, `
name: once
matchers: ['alertname="X"']
states: [triggered, acknowledged]
steps: [{name: hello, exec: {command: [/bin/echo, hello]}}]
`)
		e := newEngine(t, db, testConfig(), rec, rb)
		inc := newIncident("INC-1", map[string]string{"alertname": "X"})
		for range 3 {
			trigger(t, db, e, inc, incident.ChangeCreated)
			trigger(t, db, e, inc, incident.ChangeUpdated)
		}
		inc.Status = incident.StatusAcknowledged
		trigger(t, db, e, inc, incident.ChangeAcknowledged)
		// Hook and worker concurrently, as on several replicas.
		startEngine(t, e)
		trigger(t, db, e, inc, incident.ChangeUpdated)
		run := waitRun(t, e, "INC-1", RunSucceeded)
		trigger(t, db, e, inc, incident.ChangeUpdated)
		runs, err := e.ListRuns(context.Background(), RunFilter{IncidentID: "INC-1"})
		require.NoError(t, err)
		require.Len(t, runs, 1)
		require.Equal(t, "hello\n", stepAudit(t, run, "hello").Output)

		// A non-matching incident gets no run.
		trigger(t, db, e, newIncident("INC-2", map[string]string{"alertname": "Y"}), incident.ChangeCreated)
		runs, err = e.ListRuns(context.Background(), RunFilter{IncidentID: "INC-2"})
		require.NoError(t, err)
		require.Empty(t, runs)
	})
}

// TestChangeWakesWorkerOnlyForNewRun: the hook wakes the worker when it
// records a pending run, and not for a change that schedules nothing (no
// runbook matches, or the incident already has its run): under a storm every
// delivery is a change, and each wake-up was a worker cycle of its own.
func TestChangeWakesWorkerOnlyForNewRun(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		rb := mustParse(t, `
name: once
matchers: ['alertname="X"']
steps: [{name: hello, exec: {command: [/bin/echo, hello]}}]
`)
		e := newEngine(t, db, testConfig(), &recorder{}, rb)
		woken := func() bool {
			select {
			case <-e.wake:
				return true
			default:
				return false
			}
		}
		trigger(t, db, e, newIncident("INC-1", map[string]string{"alertname": "Y"}), incident.ChangeCreated)
		require.False(t, woken(), "no runbook matches: nothing to claim")
		inc := newIncident("INC-2", map[string]string{"alertname": "X"})
		trigger(t, db, e, inc, incident.ChangeCreated)
		require.True(t, woken(), "a pending run was recorded")
		trigger(t, db, e, inc, incident.ChangeUpdated)
		require.False(t, woken(), "the incident already has its run")
		runs, err := e.ListRuns(context.Background(), RunFilter{IncidentID: "INC-2"})
		require.NoError(t, err)
		require.Len(t, runs, 1)
		require.Equal(t, RunPending, runs[0].Status)
	})
}

func stepAudit(t *testing.T, run *Run, step string) AuditEntry {
	t.Helper()
	for _, a := range run.Audit {
		if a.Event == "step" && a.StepName == step {
			return a
		}
	}
	t.Fatalf("no audit entry for step %s in %+v", step, run.Audit)
	return AuditEntry{}
}

func TestRateLimits(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		rec := &recorder{}
		rb := mustParse(t, `
name: limited
matchers: ['alertname="X"']
labels: {service: '[a-z]+'}
target: '{{ .Labels.service }}'
rate_limit: {per_hour: 3, per_target_per_hour: 2}
steps: [{name: hello, exec: {command: [/bin/true]}}]
`)
		e := newEngine(t, db, testConfig(), rec, rb)
		startEngine(t, e)
		want := map[string]string{
			"INC-1": RunSucceeded, "INC-2": RunSucceeded, "INC-3": RunRateLimited, // target a: 2 per hour
			"INC-4": RunSucceeded, "INC-5": RunRateLimited, // runbook: 3 per hour
		}
		for i, svc := range []string{"a", "a", "a", "b", "c"} {
			id := fmt.Sprintf("INC-%d", i+1)
			trigger(t, db, e, newIncident(id, map[string]string{"alertname": "X", "service": svc}), incident.ChangeCreated)
			run := waitRun(t, e, id, RunSucceeded, RunRateLimited)
			require.Equal(t, want[id], run.Status, id)
		}
		run := waitRun(t, e, "INC-3", RunRateLimited)
		require.Equal(t, "rate limit: target a already had 2 runs in the last hour (limit 2)", run.Reason)
		run = waitRun(t, e, "INC-5", RunRateLimited)
		require.Equal(t, "rate limit: runbook limited already started 3 times in the last hour (limit 3)", run.Reason)
	})
}

// A runbook's rate_limit sets the fields it names; a field it leaves out is
// the global one: a runbook that bounds its runs per target keeps the
// global bound on its runs per hour, and per_hour: 0 written out lifts it.
func TestRateLimitFieldsLeftOutAreGlobal(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		cfg := testConfig()
		cfg.RateLimit = RateLimit{PerHour: 1}
		rb := func(name, limit string) *Runbook {
			return mustParse(t, fmt.Sprintf(`
name: %s
matchers: ['alertname="%s"']
labels: {service: '[a-z]+'}
target: '%s/{{ .Labels.service }}'
rate_limit: %s
steps: [{name: hello, exec: {command: [/bin/true]}}]
`, name, name, name, limit))
		}
		e := newEngine(t, db, cfg, &recorder{}, rb("per-target-only", "{per_target_per_hour: 5}"), rb("unbounded", "{per_hour: 0, per_target_per_hour: 5}"))
		startEngine(t, e)
		for _, tc := range []struct {
			id, alert, service, status, reason string
		}{
			{"INC-1", "per-target-only", "a", RunSucceeded, ""},
			{"INC-2", "per-target-only", "b", RunRateLimited, "rate limit: runbook per-target-only already started 1 times in the last hour (limit 1)"},
			{"INC-3", "unbounded", "a", RunSucceeded, ""},
			{"INC-4", "unbounded", "b", RunSucceeded, ""},
		} {
			trigger(t, db, e, newIncident(tc.id, map[string]string{"alertname": tc.alert, "service": tc.service}), incident.ChangeCreated)
			run := waitRun(t, e, tc.id, RunSucceeded, RunRateLimited)
			require.Equal(t, tc.status, run.Status, tc.id)
			require.Equal(t, tc.reason, run.Reason, tc.id)
		}
	})
}

// One execution at a time per target, across two engines (replicas) sharing
// the database: the second run waits for the first to release the target.
func TestTargetLock(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		rb := `
name: locked
matchers: ['alertname="X"']
target: the-target
steps: [{name: hold, exec: {command: [/bin/sleep, "0.6"]}}]
`
		rec := &recorder{}
		e1 := newEngine(t, db, testConfig(), rec, mustParse(t, rb))
		e2 := newEngine(t, db, testConfig(), rec, mustParse(t, rb))
		require.NotEqual(t, e1.Owner(), e2.Owner())
		trigger(t, db, e1, newIncident("INC-1", map[string]string{"alertname": "X"}), incident.ChangeCreated)
		trigger(t, db, e1, newIncident("INC-2", map[string]string{"alertname": "X"}), incident.ChangeCreated)
		startEngine(t, e1)
		startEngine(t, e2)
		r1 := waitRun(t, e1, "INC-1", RunSucceeded)
		r2 := waitRun(t, e1, "INC-2", RunSucceeded)
		first, second := r1, r2
		if r2.StartedAt.Before(*r1.StartedAt) {
			first, second = r2, r1
		}
		require.False(t, second.StartedAt.Before(*first.FinishedAt), "runs on one target overlapped: %v-%v and %v", first.StartedAt, first.FinishedAt, second.StartedAt)
		locks, err := e1.Locks(context.Background())
		require.NoError(t, err)
		require.Empty(t, locks, "locks are released")
	})
}

func TestLockAcquire(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.UnixMilli(1_700_000_000_000)
		ok, err := acquireLock(ctx, db, "t", 1, "a", now, time.Minute)
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = acquireLock(ctx, db, "t", 2, "b", now.Add(30*time.Second), time.Minute)
		require.NoError(t, err)
		require.False(t, ok, "held")
		ok, err = acquireLock(ctx, db, "t", 1, "a", now.Add(30*time.Second), time.Minute)
		require.NoError(t, err)
		require.True(t, ok, "renewed by its holder")
		ok, err = acquireLock(ctx, db, "t", 2, "b", now.Add(89*time.Second), time.Minute)
		require.NoError(t, err)
		require.False(t, ok, "renewal extended the lease")
		ok, err = acquireLock(ctx, db, "t", 2, "b", now.Add(91*time.Second), time.Minute)
		require.NoError(t, err)
		require.True(t, ok, "expired lease is taken over")
		require.NoError(t, releaseLock(ctx, db, "t", 1), "a stale holder's release is a no-op")
		locks, err := listLocks(ctx, db)
		require.NoError(t, err)
		require.Equal(t, int64(2), locks[0].RunID)
	})
}

func TestApproval(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		rec := &recorder{}
		out := filepath.Join(t.TempDir(), "argv.json")
		rb := mustParse(t, fmt.Sprintf(`
name: gated
matchers: ['alertname="X"']
steps:
  - name: ask
    approval: {message: 'restart api?'}
  - name: act
    exec:
      command: [%q, approved]
      env: {RUNBOOK_HELPER: argv, RUNBOOK_OUT: %q}
`, helperCmd(), out))
		e := newEngine(t, db, testConfig(), rec, rb)
		stop := startEngine(t, e)
		trigger(t, db, e, newIncident("INC-1", map[string]string{"alertname": "X"}), incident.ChangeCreated)
		run := waitRun(t, e, "INC-1", RunWaitingApproval)
		require.Equal(t, 0, run.CurrentStep)
		waitCycles(t, e, 3)
		_, err := os.Stat(out)
		require.True(t, os.IsNotExist(err), "nothing runs before approval")
		_, err = e.Approve(context.Background(), run.ID, "", "")
		require.EqualError(t, err, "approve: the approver's name is required")
		_, err = e.Approve(context.Background(), run.ID, "alice", "go ahead")
		require.NoError(t, err)
		run = waitRun(t, e, "INC-1", RunSucceeded)
		require.Equal(t, "approved by alice", stepAudit(t, run, "ask").Output)
		require.FileExists(t, out)
		_, err = e.Approve(context.Background(), run.ID, "bob", "")
		require.ErrorIs(t, err, ErrConflict)

		// Approval required by severity: the run waits before its first step,
		// and fails when nobody approves in time. The first engine stops
		// first: it shares the queue and would claim the second runbook's run.
		stop()
		cfg := testConfig()
		cfg.ApprovalSeverities = []incident.Severity{incident.SeverityCritical}
		rb2 := mustParse(t, `
name: critical-gate
matchers: ['alertname="Y"']
steps: [{name: act, exec: {command: [/bin/true]}}]
`)
		e2 := newEngine(t, db, cfg, rec, rb2)
		inc := newIncident("INC-2", map[string]string{"alertname": "Y"})
		inc.Severity = incident.SeverityCritical
		trigger(t, db, e2, inc, incident.ChangeCreated)
		require.NoError(t, e2.Cycle(context.Background()))
		run = waitRun(t, e2, "INC-2", RunWaitingApproval)
		require.Equal(t, -1, run.CurrentStep, "the gate comes before step 1")
		_, err = e2.Cancel(context.Background(), run.ID, "carol", "not now")
		require.NoError(t, err)
		require.NoError(t, e2.Cycle(context.Background()))
		run = waitRun(t, e2, "INC-2", RunCancelled)
		require.Equal(t, "not now", run.Reason)
		e2.Wait()
	})
}

// TestGlobalDryRunStopsRunsInFlight: runbooks.dry_run turned on by a
// reload stops every step that has not started, of runs created before it:
// a queued run, and a run waiting for approval (running, between steps),
// which does not execute its next step after the approval. The run is
// recorded as a dry-run from that step on, because of the global setting.
func TestGlobalDryRunStopsRunsInFlight(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		dir := t.TempDir()
		file := func(name string) string { return filepath.Join(dir, name) }
		queued := mustParse(t, fmt.Sprintf(`
name: queued
matchers: ['alertname="Q"']
steps:
  - {name: act, exec: {command: [%q, x], env: {RUNBOOK_HELPER: argv, RUNBOOK_OUT: %q}}}
`, helperCmd(), file("queued")))
		gated := mustParse(t, fmt.Sprintf(`
name: gated
matchers: ['alertname="A"']
steps:
  - {name: first, exec: {command: [%q, x], env: {RUNBOOK_HELPER: argv, RUNBOOK_OUT: %q}}}
  - {name: ask, approval: {message: 'go on?'}}
  - {name: act, exec: {command: [%q, x], env: {RUNBOOK_HELPER: argv, RUNBOOK_OUT: %q}}}
`, helperCmd(), file("first"), helperCmd(), file("act")))
		rec := &recorder{}
		e := newEngine(t, db, testConfig(), rec, queued, gated)
		setDryRun := func(on bool) {
			cfg, set := e.config()
			cfg.DryRun = on
			require.NoError(t, e.Update(cfg, set))
		}
		requireDryBecauseOfGlobal := func(run *Run, step string) {
			t.Helper()
			require.Equal(t, RunSucceeded, run.Status, run.Reason)
			require.True(t, run.DryRun)
			require.Contains(t, run.Reason, "runbooks.dry_run was turned on after the run was created")
			a := stepAudit(t, run, step)
			require.Equal(t, StepDryRun, a.Status)
			require.Contains(t, a.Output, "runbooks.dry_run")
			require.True(t, slices.ContainsFunc(run.Audit, func(a AuditEntry) bool {
				return a.Event == "run_dry_run" && a.StepName == step && a.Input["reason"] == "runbooks.dry_run"
			}), "%+v", run.Audit)
		}

		// Queued: created before the reload, started after it.
		trigger(t, db, e, newIncident("INC-Q", map[string]string{"alertname": "Q"}), incident.ChangeCreated)
		setDryRun(true)
		startEngine(t, e)
		requireDryBecauseOfGlobal(waitRun(t, e, "INC-Q", RunSucceeded, RunFailed), "act")
		require.NoFileExists(t, file("queued"))

		// Waiting for approval, its first step executed: approved after the
		// reload, it does not execute the next one.
		setDryRun(false)
		trigger(t, db, e, newIncident("INC-A", map[string]string{"alertname": "A"}), incident.ChangeCreated)
		run := waitRun(t, e, "INC-A", RunWaitingApproval)
		require.False(t, run.DryRun)
		require.FileExists(t, file("first"))
		setDryRun(true)
		_, err := e.Approve(context.Background(), run.ID, "alice", "")
		require.NoError(t, err)
		run = waitRun(t, e, "INC-A", RunSucceeded, RunFailed)
		requireDryBecauseOfGlobal(run, "act")
		require.Equal(t, StepOK, stepAudit(t, run, "first").Status)
		require.NoFileExists(t, file("act"))
	})
}

// A run nobody approves fails when the runbook's approval_timeout ends,
// before any step runs, whether approval is required by the runbook, by the
// incident's severity, or asked by an approval step.
func TestApprovalTimeout(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		out := filepath.Join(t.TempDir(), "argv.json")
		act := fmt.Sprintf(`
  - name: act
    exec:
      command: [%q, acted]
      env: {RUNBOOK_HELPER: argv, RUNBOOK_OUT: %q}`, helperCmd(), out)
		gated := mustParse(t, `
name: gated
matchers: ['alertname="X"']
require_approval: true
approval_timeout: 300ms
steps:`+act)
		bySeverity := mustParse(t, `
name: by-severity
matchers: ['alertname="Y"']
approval_timeout: 400ms
steps:`+act)
		asked := mustParse(t, `
name: asked
matchers: ['alertname="Z"']
approval_timeout: 500ms
steps:
  - name: ask
    approval: {message: 'go?'}`+act)
		rec := &recorder{}
		cfg := testConfig()
		cfg.ApprovalSeverities = []incident.Severity{incident.SeverityCritical}
		e := newEngine(t, db, cfg, rec, gated, bySeverity, asked)
		startEngine(t, e)
		for _, tc := range []struct {
			id, alert    string
			sev          incident.Severity
			reason, step string
		}{
			{"INC-1", "X", incident.SeverityHigh, "approval gate: step timed out after 300ms", "approval-gate"},
			{"INC-2", "Y", incident.SeverityCritical, "approval gate: step timed out after 400ms", "approval-gate"},
			{"INC-3", "Z", incident.SeverityHigh, "step ask failed: step timed out after 500ms", "ask"},
		} {
			inc := newIncident(tc.id, map[string]string{"alertname": tc.alert})
			inc.Severity = tc.sev
			trigger(t, db, e, inc, incident.ChangeCreated)
			// The wait is shorter than a loaded machine's polls: it shows in
			// the audit, not by catching the run in waiting_approval.
			run := waitRun(t, e, tc.id, RunSucceeded, RunFailed)
			require.Equal(t, RunFailed, run.Status)
			require.True(t, slices.ContainsFunc(run.Audit, func(a AuditEntry) bool {
				return a.Event == "approval_requested" && a.Status == RunWaitingApproval
			}), "the run waited for approval")
			require.Equal(t, tc.reason, run.Reason)
			require.Equal(t, StepTimeout, stepAudit(t, run, tc.step).Status)
			_, err := os.Stat(out)
			require.True(t, os.IsNotExist(err), "nothing ran without approval")
		}
	})
}

func TestDryRun(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		for _, global := range []bool{true, false} {
			rec := &recorder{}
			out := filepath.Join(t.TempDir(), "argv.json")
			cfg := testConfig()
			cfg.DryRun = global
			rb := mustParse(t, fmt.Sprintf(`
name: dry
matchers: ['alertname="X"']
dry_run: %v
labels: {service: '[a-z]+'}
steps:
  - name: act
    exec:
      command: [%q, '{{ .Labels.service }}']
      env: {RUNBOOK_HELPER: argv, RUNBOOK_OUT: %q}
  - name: ask
    approval: {}
  - name: verify
    verify: true
    promql: {query: 'up == 1'}
`, !global, helperCmd(), out))
			reg := prometheus.NewRegistry()
			set, err := NewSet(cfg, rb)
			require.NoError(t, err)
			e, err := New(Options{DB: db, Incidents: rec, Registerer: reg}, cfg, set)
			require.NoError(t, err)
			stop := startEngine(t, e)
			id := fmt.Sprintf("INC-%v", global)
			trigger(t, db, e, newIncident(id, map[string]string{"alertname": "X", "service": "api"}), incident.ChangeCreated)
			run := waitRun(t, e, id, RunSucceeded, RunFailed)
			require.Equal(t, RunSucceeded, run.Status)
			require.True(t, run.DryRun)
			require.Equal(t, "dry-run: nothing was executed", run.Reason)
			a := stepAudit(t, run, "act")
			require.Equal(t, StepDryRun, a.Status)
			require.Equal(t, []any{helperCmd(), "api"}, a.Input["argv"], "the audit shows what would have run")
			_, err = os.Stat(out)
			require.True(t, os.IsNotExist(err), "nothing was executed")
			_, mitigated, _, _, _ := rec.snapshot()
			require.Empty(t, mitigated, "a dry-run never mitigates")
			require.Eventually(t, func() bool {
				return testutil.ToFloat64(e.metrics.executions.WithLabelValues("dry", "dry_run")) == 1
			}, 30*time.Second, 10*time.Millisecond)
			stop()
		}
	})
}

func TestKillSwitch(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		rec := &recorder{}
		pids := filepath.Join(t.TempDir(), "pids")
		rb := mustParse(t, fmt.Sprintf(`
name: long
matchers: ['alertname="X"']
steps:
  - name: spawn
    timeout: 1m
    exec:
      command: [%q]
      env: {RUNBOOK_HELPER: pidfile, RUNBOOK_OUT: %q}
`, helperCmd(), pids))
		e := newEngine(t, db, testConfig(), rec, rb)
		startEngine(t, e)
		trigger(t, db, e, newIncident("INC-1", map[string]string{"alertname": "X"}), incident.ChangeCreated)
		waitRun(t, e, "INC-1", RunRunning)
		require.Eventually(t, func() bool { b, _ := os.ReadFile(pids); return len(b) > 0 }, 60*time.Second, 10*time.Millisecond,
			"the step's process started")
		_, err := e.SetKillSwitch(context.Background(), true, "alice", "bad automation")
		require.NoError(t, err)
		run := waitRun(t, e, "INC-1", RunCancelled)
		require.Equal(t, "kill switch engaged", run.Reason)
		require.Equal(t, -1, *stepAudit(t, run, "spawn").ExitCode, "the process was killed")

		// While engaged, new runs are skipped, not queued.
		trigger(t, db, e, newIncident("INC-2", map[string]string{"alertname": "X"}), incident.ChangeCreated)
		run = waitRun(t, e, "INC-2", RunSkipped)
		require.Equal(t, "kill switch engaged by alice: bad automation", run.Reason)

		// The switch is persisted: a new engine (a restart) sees it.
		e2 := newEngine(t, db, testConfig(), rec, rb)
		ks, err := e2.KillSwitch(context.Background())
		require.NoError(t, err)
		require.True(t, ks.Enabled)
		require.Equal(t, "alice", ks.By)
		_, err = e.SetKillSwitch(context.Background(), false, "alice", "fixed")
		require.NoError(t, err)
		trigger(t, db, e, newIncident("INC-3", map[string]string{"alertname": "X"}), incident.ChangeCreated)
		waitRun(t, e, "INC-3", RunRunning)
	})
}

// Resolving the incident through the incident service cancels its runs in
// the same transaction, unless the runbook continues on resolve.
func TestCancelOnResolve(t *testing.T) {
	sretest.Backends(t, withIncidents(), func(t *testing.T, db *store.DB) {
		rec := &recorder{}
		src := `
name: %s
matchers: ['alertname="X"']
continue_on_resolve: %v
steps: [{name: hold, exec: {command: [/bin/sleep, "%s"]}}]
`
		cancelled := mustParse(t, fmt.Sprintf(src, "cancelled", false, "30"))
		kept := mustParse(t, fmt.Sprintf(src, "kept", true, "0.5"))
		cfg := testConfig()
		set, err := NewSet(cfg, cancelled, kept)
		require.NoError(t, err)
		var e *Engine
		svc := newService(t, db, func() []incident.Hook { return []incident.Hook{e} })
		e, err = New(Options{DB: db, Incidents: IncidentService{svc}, Escalator: rec, Registerer: prometheus.NewRegistry()}, cfg, set)
		require.NoError(t, err)
		startEngine(t, e)
		id := ingest(t, svc, map[string]string{"alertname": "X"})
		require.Eventually(t, func() bool {
			runs, err := e.ListRuns(context.Background(), RunFilter{IncidentID: id, Status: RunRunning})
			require.NoError(t, err)
			return len(runs) == 2
		}, 60*time.Second, 20*time.Millisecond)
		_, err = svc.Resolve(context.Background(), id, "alice", "fixed by hand")
		require.NoError(t, err)
		var got map[string]*Run
		require.Eventually(t, func() bool {
			runs, err := e.ListRuns(context.Background(), RunFilter{IncidentID: id})
			require.NoError(t, err)
			got = map[string]*Run{}
			for _, r := range runs {
				got[r.Runbook] = r
			}
			return got["cancelled"].Status == RunCancelled && got["kept"].Status == RunSucceeded
		}, 20*time.Second, 20*time.Millisecond)
		require.Equal(t, "incident resolved", got["cancelled"].Reason)
		e.Wait()
		tl, err := svc.Timeline(context.Background(), id)
		require.NoError(t, err)
		var msgs []string
		for _, en := range tl {
			msgs = append(msgs, en.Message)
		}
		require.Contains(t, msgs, fmt.Sprintf("runbook cancelled run %d cancelled: incident resolved", got["cancelled"].ID))
		require.Contains(t, msgs, fmt.Sprintf("runbook kept run %d succeeded", got["kept"].ID))
	})
}

func TestMaxRunTimeEscalates(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		rec := &recorder{}
		rb := mustParse(t, `
name: slow
matchers: ['alertname="X"']
max_run_time: 300ms
steps: [{name: hold, exec: {command: [/bin/sleep, "30"]}}]
`)
		e := newEngine(t, db, testConfig(), rec, rb)
		startEngine(t, e)
		trigger(t, db, e, newIncident("INC-1", map[string]string{"alertname": "X"}), incident.ChangeCreated)
		run := waitRun(t, e, "INC-1", RunFailed)
		require.Equal(t, "run exceeded its maximum run time of 300ms", run.Reason)
		_, _, _, escalated, _ := rec.snapshot()
		require.Equal(t, []string{"INC-1: runbook slow did not finish within 300ms"}, escalated)
	})
}

// A run whose replica died (SIGKILL of the process and its step) is claimed
// by another replica once its job's lease expired, and resumed at the first
// step its journal does not record as finished: the finished first step is
// not run again. The step in progress when the replica died runs again when
// it is idempotent ("again"); when it is not ("once"), it is not repeated:
// the run ends interrupted at that step and the incident escalates to a
// human. A run waiting for approval ("approval") waits again on the next
// replica, and goes on once approved. On PostgreSQL (other replicas may be
// alive) the run waits for its lease, moved past with the engine's manual
// clock; on SQLite, which one process uses at a time, the next process
// takes it at once. The resuming engine writes through the real incident
// service's writer (group commit on SQLite).
func TestExpiredLeaseResumed(t *testing.T) {
	for _, variant := range []string{"again", "once", "approval"} {
		t.Run(variant, func(t *testing.T) {
			t.Run("sqlite", func(t *testing.T) {
				dir := t.TempDir()
				crashTest(t, "sqlite", dir, variant, func() *store.DB {
					db, err := store.OpenSQLite(context.Background(), dir)
					require.NoError(t, err)
					return db
				})
			})
			t.Run("postgres", func(t *testing.T) {
				url := sretest.PostgresSchemaURL(t)
				crashTest(t, "postgres", url, variant, func() *store.DB {
					db, err := store.OpenPostgres(context.Background(), url, store.PostgresOptions{})
					require.NoError(t, err)
					return db
				})
			})
		})
	}
}

// A run cancelled while its replica was dead ends cancelled when another
// replica claims it; its duration, from its start on the dead replica to
// that claim, is observed like that of a run that ends executing.
func TestClosedAtClaimObservesDuration(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		closedAtClaimTest(t, "sqlite", dir, func() *store.DB {
			db, err := store.OpenSQLite(context.Background(), dir)
			require.NoError(t, err)
			return db
		})
	})
	t.Run("postgres", func(t *testing.T) {
		url := sretest.PostgresSchemaURL(t)
		closedAtClaimTest(t, "postgres", url, func() *store.DB {
			db, err := store.OpenPostgres(context.Background(), url, store.PostgresOptions{})
			require.NoError(t, err)
			return db
		})
	})
}

// startEngineChild starts the engine of the helper process (RUNBOOK_HELPER
// engine) on the database in a process group of its own, to be killed
// with SIGKILL; it returns the files it marks its steps and count in, and
// its standard error.
func startEngineChild(t *testing.T, dialect, dsn, variant string) (cmd *exec.Cmd, marks, count string, stderr *strings.Builder) {
	t.Helper()
	tmp := t.TempDir()
	marks, count = filepath.Join(tmp, "marks"), filepath.Join(tmp, "count")
	cmd = exec.Command(helperCmd())
	cmd.Env = append(os.Environ(), "RUNBOOK_HELPER=engine", "RUNBOOK_DIALECT="+dialect, "RUNBOOK_DB="+dsn,
		"RUNBOOK_MARKS="+marks, "RUNBOOK_COUNT="+count, "RUNBOOK_VARIANT="+variant)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr = &strings.Builder{}
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	return cmd, marks, count, stderr
}

func closedAtClaimTest(t *testing.T, dialect, dsn string, open func() *store.DB) {
	cmd, marks, count, stderr := startEngineChild(t, dialect, dsn, "once")
	db := open()
	defer db.Close()
	ctx := context.Background()
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(count)
		return string(b) == "started\n"
	}, 60*time.Second, 20*time.Millisecond, "child: %s", stderr)
	require.NoError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL))
	_ = cmd.Wait()

	cfg := testConfig()
	clk := clock.NewManual(time.Now())
	set, err := NewSet(cfg, mustParse(t, crashRunbook("once", marks, count)))
	require.NoError(t, err)
	svc := newService(t, db, func() []incident.Hook { return nil })
	defer svc.Close()
	rec := &recorder{}
	e, err := New(Options{DB: db, Incidents: rec, Writer: svc, Escalator: rec, Notifier: rec, Registerer: prometheus.NewRegistry(), Clock: clk}, cfg, set)
	require.NoError(t, err)
	run := waitRun(t, e, "INC-1", RunRunning)
	_, err = e.Cancel(ctx, run.ID, "alice", "")
	require.NoError(t, err)
	clk.Advance(time.Duration(cfg.LeaseDuration) + time.Minute)
	startEngine(t, e)
	run = waitRun(t, e, "INC-1", RunCancelled)
	require.Equal(t, "cancelled by alice", run.Reason)
	require.NotNil(t, run.StartedAt)
	require.NotNil(t, run.FinishedAt)
	// The claiming cycle records the closed run after its transaction.
	var m dto.Metric
	require.Eventually(t, func() bool {
		m.Reset()
		require.NoError(t, e.metrics.duration.WithLabelValues("crashy").(prometheus.Metric).Write(&m))
		return m.GetHistogram().GetSampleCount() == 1
	}, 30*time.Second, 10*time.Millisecond, "the cancelled run's duration is observed")
	require.Equal(t, 1.0, testutil.ToFloat64(e.metrics.executions.WithLabelValues("crashy", RunCancelled)))
	require.InDelta(t, run.FinishedAt.Sub(*run.StartedAt).Seconds(), m.GetHistogram().GetSampleSum(), 0.002)
}

// crashRunbook is the runbook of the crash test's variant: a first step,
// then one the replica dies in (long, idempotent or not) or an approval
// step and a last step.
func crashRunbook(variant, marks, count string) string {
	head := fmt.Sprintf(`
name: crashy
matchers: ['alertname="X"']
steps:
  - name: first
    exec:
      command: [%q]
      env: {RUNBOOK_HELPER: mark, RUNBOOK_OUT: %q}
`, helperCmd(), marks)
	if variant == "approval" {
		return head + fmt.Sprintf(`  - name: ask
    approval: {message: 'go on?'}
  - name: last
    exec:
      command: [%q]
      env: {RUNBOOK_HELPER: mark, RUNBOOK_OUT: %q}
`, helperCmd(), count)
	}
	return head + fmt.Sprintf(`  - name: long
    idempotent: %t
    exec:
      command: [%q]
      env: {RUNBOOK_HELPER: count, RUNBOOK_OUT: %q}
`, variant == "again", helperCmd(), count)
}

func crashChild() int {
	ctx := context.Background()
	var (
		db  *store.DB
		err error
	)
	if os.Getenv("RUNBOOK_DIALECT") == "sqlite" {
		db, err = store.OpenSQLite(ctx, os.Getenv("RUNBOOK_DB"))
	} else {
		db, err = store.OpenPostgres(ctx, os.Getenv("RUNBOOK_DB"), store.PostgresOptions{})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	if err := db.Migrate(ctx, withIncidents()...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	rb, err := Parse([]byte(crashRunbook(os.Getenv("RUNBOOK_VARIANT"), os.Getenv("RUNBOOK_MARKS"), os.Getenv("RUNBOOK_COUNT"))), "crash.yml")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	cfg := testConfig()
	set, _ := NewSet(cfg, rb)
	e, err := New(Options{DB: db, Incidents: &recorder{}}, cfg, set)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		inc := newIncident("INC-1", map[string]string{"alertname": "X"})
		return e.IncidentChanged(ctx, tx, incident.Change{Kind: incident.ChangeCreated, Incident: inc, Groups: []incident.AlertGroup{openingGroup(inc)}})
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	_ = e.Run(ctx)
	return 0
}

func crashTest(t *testing.T, dialect, dsn, variant string, open func() *store.DB) {
	cmd, marks, count, stderr := startEngineChild(t, dialect, dsn, variant)
	db := open()
	defer db.Close()
	ctx := context.Background()
	if variant == "approval" {
		// Waiting, and its request for approval recorded.
		require.Eventually(t, func() bool {
			var n int
			err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM runbook_audit WHERE incident_id = 'INC-1' AND event = 'approval_requested'`).Scan(&n)
			return err == nil && n == 1
		}, 60*time.Second, 20*time.Millisecond, "child: %s", stderr)
	} else {
		require.Eventually(t, func() bool {
			b, _ := os.ReadFile(count)
			return string(b) == "started\n"
		}, 60*time.Second, 20*time.Millisecond, "child: %s", stderr)
	}
	// Crash: kill the engine and its step with SIGKILL, no chance to clean up.
	require.NoError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL))
	_ = cmd.Wait()

	rec := &recorder{}
	cfg := testConfig()
	clk := clock.NewManual(time.Now())
	set, err := NewSet(cfg, mustParse(t, crashRunbook(variant, marks, count)))
	require.NoError(t, err)
	svc := newService(t, db, func() []incident.Hook { return nil })
	defer svc.Close()
	e, err := New(Options{DB: db, Incidents: rec, Writer: svc, Escalator: rec, Notifier: rec, Registerer: prometheus.NewRegistry(), Clock: clk}, cfg, set)
	require.NoError(t, err)
	run := waitRun(t, e, "INC-1", RunRunning, RunWaitingApproval)
	require.Equal(t, 1, run.CurrentStep)
	dead := run.Owner
	if dialect == "postgres" {
		// While the dead replica's lease runs, no one takes the run.
		require.NoError(t, e.Recover(ctx))
		require.NoError(t, e.Cycle(ctx))
		e.activeMu.Lock()
		require.Empty(t, e.active, "the run was claimed before its lease expired")
		e.activeMu.Unlock()
		clk.Advance(time.Duration(cfg.LeaseDuration) + time.Second)
	}
	startEngine(t, e)
	want := map[string]string{"again": RunSucceeded, "once": RunInterrupted, "approval": RunSucceeded}[variant]
	if variant == "approval" {
		// The approval still waits, on this replica now.
		require.Eventually(t, func() bool {
			r, err := e.GetRun(ctx, run.ID)
			require.NoError(t, err)
			return r.Owner == e.Owner() && r.Status == RunWaitingApproval && r.Audit[len(r.Audit)-1].Event == "approval_requested"
		}, 30*time.Second, 10*time.Millisecond)
		waitCycles(t, e, 3)
		_, err := os.Stat(count)
		require.True(t, os.IsNotExist(err), "nothing runs before approval")
		_, err = e.Approve(ctx, run.ID, "alice", "")
		require.NoError(t, err)
	}
	waitRun(t, e, "INC-1", want)
	e.Wait() // the run's last audit row and timeline entry are written
	if variant == "once" {
		// A run closed when it is claimed is recorded by the claiming
		// cycle, not by a run goroutine that Wait waits for: its metric,
		// last audit row and escalation follow its stored status, the
		// escalation last.
		require.Eventually(t, func() bool {
			_, _, _, escalated, _ := rec.snapshot()
			return len(escalated) > 0
		}, 30*time.Second, 10*time.Millisecond, "the interrupted run escalates")
	}
	run = waitRun(t, e, "INC-1", want)
	require.Equal(t, e.Owner(), run.Owner)
	require.NotEqual(t, dead, run.Owner)
	// The run's duration counts from its start on the replica that died
	// (on PostgreSQL past that replica's lease), not from its resumption.
	require.NotNil(t, run.StartedAt)
	require.NotNil(t, run.FinishedAt)
	var m dto.Metric
	require.NoError(t, e.metrics.duration.WithLabelValues("crashy").(prometheus.Metric).Write(&m))
	require.Equal(t, uint64(1), m.GetHistogram().GetSampleCount())
	require.InDelta(t, run.FinishedAt.Sub(*run.StartedAt).Seconds(), m.GetHistogram().GetSampleSum(), 0.002,
		"sre_runbook_execution_duration_seconds of the resumed run")
	b, err := os.ReadFile(marks)
	require.NoError(t, err)
	require.Equal(t, "ran\n", string(b), "the finished step is not repeated")
	var events []string
	for _, a := range run.Audit {
		ev := a.Event
		if a.StepName != "" {
			ev += ":" + a.StepName + ":" + a.Status
		}
		events = append(events, ev)
	}
	_, _, _, escalated, _ := rec.snapshot()
	b, err = os.ReadFile(count)
	require.NoError(t, err)
	switch variant {
	case "again":
		require.Equal(t, "started\nstarted\n", string(b), "the idempotent step in progress runs again")
		require.Equal(t, []string{"run_pending", "run_started", "step:first:ok", "run_resumed", "step:long:ok", "run_finished"}, events)
		require.Empty(t, escalated)
	case "once":
		require.Equal(t, "started\n", string(b), "the step in progress is not idempotent: it does not run again")
		require.Equal(t, "its replica stopped during step 2 (long), which is not idempotent: not run again, a human decides", run.Reason)
		require.Equal(t, []string{"run_pending", "run_started", "step:first:ok", "run_resumed", "escalation", "run_finished"}, events)
		require.Equal(t, []string{"INC-1: runbook crashy run 1 was interrupted during step long, which is not idempotent: " +
			"check whether it took effect and finish the remediation by hand"}, escalated)
		require.Equal(t, 1.0, testutil.ToFloat64(e.metrics.executions.WithLabelValues("crashy", RunInterrupted)))
	case "approval":
		require.Equal(t, "ran\n", string(b), "the step after the approval runs once")
		require.Equal(t, []string{"run_pending", "run_started", "step:first:ok", "approval_requested:ask:waiting_approval", "run_resumed",
			"approval_requested:ask:waiting_approval", "step:ask:ok", "step:last:ok", "run_finished"}, events)
		require.Equal(t, "approved by alice", stepAudit(t, run, "ask").Output)
		require.Empty(t, escalated)
	}
	tl, _, _, _, _ := rec.snapshot()
	require.NotEmpty(t, tl)
	require.Contains(t, tl[len(tl)-1].Message, "runbook crashy run 1 "+want)
	js, err := jobs.List(ctx, db, jobs.Filter{Queue: Queue, AllGroups: true})
	require.NoError(t, err)
	require.Len(t, js, 1)
	require.Equal(t, jobs.StateDone, js[0].State)
	require.Equal(t, 2, js[0].Attempts)
	locks, err := e.Locks(ctx)
	require.NoError(t, err)
	require.Empty(t, locks)
}

// A graceful stop hands the run in progress back to the queue, due at once:
// the next replica resumes it at the step that was stopped.
func TestGracefulShutdownHandsBack(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		rec := &recorder{}
		count := filepath.Join(t.TempDir(), "count")
		rb := mustParse(t, fmt.Sprintf(`
name: hold
matchers: ['alertname="X"']
steps:
  - name: hold
    idempotent: true
    exec:
      command: [%q]
      env: {RUNBOOK_HELPER: count, RUNBOOK_OUT: %q}
`, helperCmd(), count))
		e := newEngine(t, db, testConfig(), rec, rb)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		trigger(t, db, e, newIncident("INC-1", map[string]string{"alertname": "X"}), incident.ChangeCreated)
		require.Eventually(t, func() bool {
			b, _ := os.ReadFile(count)
			return string(b) == "started\n"
		}, 60*time.Second, 10*time.Millisecond)
		cancel()
		require.NoError(t, <-done)
		run := waitRun(t, e, "INC-1", RunRunning)
		require.Equal(t, "run_released", run.Audit[len(run.Audit)-1].Event)
		require.Equal(t, "sred stopped during step 1", run.Audit[len(run.Audit)-1].Error)
		js, err := jobs.List(context.Background(), db, jobs.Filter{Queue: Queue, AllGroups: true})
		require.NoError(t, err)
		require.Len(t, js, 1)
		require.Equal(t, jobs.StatePending, js[0].State)

		e2 := newEngine(t, db, testConfig(), rec, rb)
		startEngine(t, e2)
		run = waitRun(t, e2, "INC-1", RunSucceeded)
		require.Equal(t, e2.Owner(), run.Owner)
		b, err := os.ReadFile(count)
		require.NoError(t, err)
		require.Equal(t, "started\nstarted\n", string(b))
	})
}

// A runbook that already ran max_runs times on a target within its window
// does not run again there: the run ends escalated and the incident is
// escalated to a human. Runs older than the window, and other targets, do
// not count.
func TestMaxRunsEscalates(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		old := ms(time.Now().Add(-11 * time.Minute))
		_, err := db.ExecContext(ctx, `INSERT INTO runbook_runs (incident_id, runbook, target, status, created_at, started_at, finished_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, "OLD-1", "restart", "a", RunSucceeded, old, old, old+1000)
		require.NoError(t, err)
		rec := &recorder{}
		rb := mustParse(t, `
name: restart
matchers: ['alertname="X"']
labels: {service: '[a-z]+'}
target: '{{ .Labels.service }}'
max_runs: 2
window: 10m
steps: [{name: restart, exec: {command: [/bin/true]}}]
`)
		e := newEngine(t, db, testConfig(), rec, rb)
		startEngine(t, e)
		want := map[string]string{"INC-1": RunSucceeded, "INC-2": RunSucceeded, "INC-3": RunEscalated, "INC-4": RunSucceeded}
		for i, svc := range []string{"a", "a", "a", "b"} {
			id := fmt.Sprintf("INC-%d", i+1)
			trigger(t, db, e, newIncident(id, map[string]string{"alertname": "X", "service": svc}), incident.ChangeCreated)
			run := waitRun(t, e, id, RunSucceeded, RunEscalated)
			require.Equal(t, want[id], run.Status, id)
		}
		run := waitRun(t, e, "INC-3", RunEscalated)
		const reason = "max_runs: runbook restart already ran 2 times on a in the last 10m (limit 2); a human takes over"
		require.Equal(t, reason, run.Reason)
		require.Nil(t, run.StartedAt, "an escalated run never starts")
		_, _, _, escalated, _ := rec.snapshot()
		require.Equal(t, []string{"INC-3: " + reason}, escalated)
	})
}

func TestMaxRunsValidation(t *testing.T) {
	for _, tc := range []struct{ src, err string }{
		{"max_runs: -1", `max_runs must not be negative`},
		{"window: 10m", `window is set without max_runs`},
	} {
		_, err := Parse([]byte("name: r\nmatchers: ['alertname=\"X\"']\n"+tc.src+"\nsteps: [{name: s, exec: {command: [/bin/true]}}]\n"), "r.yml")
		require.ErrorContains(t, err, tc.err)
	}
	rb := mustParse(t, "name: r\nmatchers: ['alertname=\"X\"']\nmax_runs: 3\nsteps: [{name: s, exec: {command: [/bin/true]}}]\n")
	require.Equal(t, time.Hour, time.Duration(rb.Window))
}
