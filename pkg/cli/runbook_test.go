package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/app"
	"github.com/rootuip/sre/pkg/receiver"
	"github.com/rootuip/sre/pkg/runbook"
	"github.com/rootuip/sre/pkg/testutil"
)

const gatedRunbook = `name: gated
description: Waits for a responder, then acts.
matchers: ['alertname="Gated"']
labels: {service: '[a-z]+'}
target: '{{ .Labels.service }}'
steps:
  - name: ask
    approval: {message: 'restart {{ .Labels.service }}?'}
  - name: act
    exec: {command: [/bin/echo, restarted]}
`

const heldRunbook = `name: held
matchers: ['alertname="Held"']
require_approval: true
approval_timeout: 10m
steps:
  - name: act
    exec: {command: [/bin/true]}
`

// alertmanagerPayload is a webhook notification as Alertmanager sends it.
func alertmanagerPayload(alertname, service string) string {
	return fmt.Sprintf(`{"version":"4","groupKey":"{}:{alertname=\"%[1]s\"}","truncatedAlerts":0,"status":"firing","receiver":"sred",
"groupLabels":{"alertname":"%[1]s"},"commonLabels":{"alertname":"%[1]s","service":"%[2]s","severity":"warning"},"commonAnnotations":{},
"externalURL":"http://alertmanager:9093","alerts":[{"status":"firing","labels":{"alertname":"%[1]s","service":"%[2]s","severity":"warning"},
"annotations":{"summary":"%[1]s"},"startsAt":"%[3]s","endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"%[4]x"}]}`,
		alertname, service, time.Now().UTC().Add(-time.Minute).Format(time.RFC3339), alertname)
}

// TestRunbookCommands runs srectl runbook against the whole sred (the app's
// mux on a real HTTP server) on both backends.
func TestRunbookCommands(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			dir := t.TempDir()
			opts := app.Options{StoragePath: filepath.Join(dir, "data")}
			if backend == "postgres" {
				opts = app.Options{PostgresURL: testutil.PostgresSchemaURL(t)}
			}
			testRunbookCommands(t, dir, opts)
		})
	}
}

func testRunbookCommands(t *testing.T, dir string, opts app.Options) {
	rbDir := filepath.Join(dir, "runbooks")
	require.NoError(t, os.MkdirAll(rbDir, 0o755))
	gated, held := filepath.Join(rbDir, "gated.yml"), filepath.Join(rbDir, "held.yml")
	require.NoError(t, os.WriteFile(gated, []byte(gatedRunbook), 0o644))
	require.NoError(t, os.WriteFile(held, []byte(heldRunbook), 0o644))
	opts.ConfigFile = filepath.Join(dir, "sred.yml")
	require.NoError(t, os.WriteFile(opts.ConfigFile, []byte("runbooks:\n  files: [runbooks/*.yml]\n  poll_interval: 50ms\n  lease_duration: 5s\n"), 0o644))

	// validate works offline.
	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := Main(append([]string{"runbook"}, args...), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	code, out, errOut := run("validate", gated, held)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, gated+": runbook gated OK (2 steps)\n"+held+": runbook held OK (1 step)\n", out)
	code, out, errOut = run("validate", "--config.file", opts.ConfigFile)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, gated+": runbook gated OK (2 steps)\n"+held+": runbook held OK (1 step)\n", out)
	// A directory stands for its runbook files.
	only := t.TempDir()
	for _, f := range []string{gated, held} {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(only, filepath.Base(f)), b, 0o644))
	}
	code, out, errOut = run("validate", only)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, filepath.Join(only, "gated.yml")+": runbook gated OK (2 steps)\n"+filepath.Join(only, "held.yml")+": runbook held OK (1 step)\n", out)
	code, _, errOut = run("validate", t.TempDir())
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "no .yml or .yaml runbook file in the directory")
	bad := filepath.Join(dir, "bad.yml")
	require.NoError(t, os.WriteFile(bad, []byte(heldRunbook+"approval_timout: 5m\n"), 0o644))
	code, out, errOut = run("validate", gated, bad)
	require.Equal(t, 1, code)
	require.Empty(t, out)
	require.Equal(t, "srectl: "+bad+`:8:1: unknown field "approval_timout" in runbook (known fields: approval_timeout, continue_on_resolve, description, dry_run, labels, matchers, max_run_time, max_runs, name, rate_limit, require_approval, resolve_on_verify, severities, states, steps, target, urls, window)`+"\n", errOut)
	// The shell guard: a label templated into a shell's code is refused.
	shell := filepath.Join(dir, "shell.yml")
	require.NoError(t, os.WriteFile(shell, []byte("name: shell\nmatchers: ['alertname=\"X\"']\nlabels: {service: '[a-z]+'}\nsteps:\n"+
		"  - name: echo\n    exec:\n      command: [/bin/sh, -c, 'echo {{ .Labels.service }}']\n"), 0o644))
	code, out, errOut = run("validate", shell)
	require.Equal(t, 1, code)
	require.Empty(t, out)
	require.Equal(t, "srectl: "+shell+`:5:5: step "echo": exec.command runs the shell sh: command[2] cannot be a template (a label value would become code; pass it in env and quote it, "$NAME")`+"\n", errOut)
	code, _, errOut = run("validate")
	require.Equal(t, 2, code)
	require.Equal(t, "srectl: name runbook files or --config.file\n", errOut)

	// The rest goes through the API of a running sred.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := app.New(ctx, opts)
	require.NoError(t, err)
	defer a.Close()
	var wg sync.WaitGroup
	for _, act := range a.Actors() {
		wg.Add(1)
		go func() { defer wg.Done(); _ = act.Execute(ctx) }()
	}
	defer func() { cancel(); wg.Wait() }()
	// Through sred's handler, as sred serves it: no users, so the no-auth
	// mode's admin, who sees the runbooks' whole paths.
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	api := func(args ...string) (int, string, string) {
		return run(append([]string{"--sred.url=" + srv.URL, "--actor=alice"}, args...)...)
	}
	for _, p := range []string{alertmanagerPayload("Gated", "api"), alertmanagerPayload("Held", "db")} {
		resp, err := http.Post(srv.URL+receiver.Path, "application/json", strings.NewReader(p))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	var runs []runbook.Run
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, out, errOut := api("runs", "-o", "json")
		require.Equal(t, 0, code, errOut)
		require.NoError(t, json.Unmarshal([]byte(out), &runs))
		if len(runs) == 2 && runs[0].Status == runbook.RunWaitingApproval && runs[1].Status == runbook.RunWaitingApproval {
			break
		}
		require.True(t, time.Now().Before(deadline), "both runs wait for approval: %s", out)
	}
	require.Equal(t, "held", runs[0].Runbook)
	require.Equal(t, "gated", runs[1].Runbook)
	heldRun, gatedRun := runs[0], runs[1]

	code, out, errOut = api("list")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, ""+
		"NAME   STEPS  DRY-RUN  APPROVAL  FILE\n"+
		"gated  2      false    false     "+gated+"\n"+
		"held   1      false    true      "+held+"\n", out)

	code, out, errOut = api("runs")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, ""+
		"ID  INCIDENT       RUNBOOK  TARGET  STATUS            CREATED               REASON\n"+
		fmt.Sprintf("%-4d%-15s%-9s%-8s%-18s%-22s-\n", heldRun.ID, heldRun.IncidentID, "held", "held", "waiting_approval", heldRun.CreatedAt.Format(time.RFC3339))+
		fmt.Sprintf("%-4d%-15s%-9s%-8s%-18s%-22s-\n", gatedRun.ID, gatedRun.IncidentID, "gated", "api", "waiting_approval", gatedRun.CreatedAt.Format(time.RFC3339)), out)
	code, out, errOut = api("runs", "--runbook=gated", "--status=waiting_approval")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, 2, strings.Count(out, "\n"), out)
	require.Contains(t, out, "\n"+fmt.Sprint(gatedRun.ID)+"   "+gatedRun.IncidentID+"  gated")

	// show: the audit log so far, times as the JSON answer has them.
	code, out, errOut = api("show", fmt.Sprint(heldRun.ID), "-o", "json")
	require.Equal(t, 0, code, errOut)
	var full runbook.Run
	require.NoError(t, json.Unmarshal([]byte(out), &full))
	require.Len(t, full.Audit, 3)
	code, out, errOut = api("show", fmt.Sprint(heldRun.ID))
	require.Equal(t, 0, code, errOut)
	ts := func(i int) string { return full.Audit[i].Time.Format(time.RFC3339) }
	require.Equal(t, fmt.Sprintf("Run %d: runbook held for %s on held: waiting_approval\n", heldRun.ID, heldRun.IncidentID)+
		"TIME                  EVENT               STEP           STATUS            DURATION  EXIT  ERROR\n"+
		ts(0)+"  run_pending         -              pending           0s        -     -\n"+
		ts(1)+"  run_started         -              running           0s        -     -\n"+
		ts(2)+"  approval_requested  approval-gate  waiting_approval  0s        -     -\n", out)
	code, _, errOut = api("show", "999")
	require.Equal(t, 4, code)
	require.Equal(t, "srectl: sred answered 404: run 999: not found\n", errOut)

	// approve lets the gated run go on; a second approval is refused.
	code, out, errOut = api("approve", fmt.Sprint(gatedRun.ID), "-m", "go ahead")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, fmt.Sprintf("Run %d (gated for %s): approved\n", gatedRun.ID, gatedRun.IncidentID), out)
	require.Eventually(t, func() bool {
		code, out, _ := api("show", fmt.Sprint(gatedRun.ID))
		return code == 0 && strings.HasPrefix(out, fmt.Sprintf("Run %d: runbook gated for %s on api: succeeded\n", gatedRun.ID, gatedRun.IncidentID))
	}, 20*time.Second, 50*time.Millisecond)
	code, out, errOut = api("show", fmt.Sprint(gatedRun.ID), "-o", "json")
	require.Equal(t, 0, code, errOut)
	require.NoError(t, json.Unmarshal([]byte(out), &full))
	var steps []string
	for _, a := range full.Audit {
		if a.Event == "step" {
			steps = append(steps, a.StepName+" "+a.Status+" "+a.Output)
		}
	}
	require.Equal(t, []string{"ask ok approved by alice", "act ok restarted\n"}, steps)
	code, _, errOut = api("approve", fmt.Sprint(gatedRun.ID))
	require.Equal(t, 4, code)
	require.Equal(t, fmt.Sprintf("srectl: sred answered 409: run %d is succeeded, not waiting for approval: conflict\n", gatedRun.ID), errOut)

	// cancel stops the run waiting at the gate.
	code, out, errOut = api("cancel", fmt.Sprint(heldRun.ID), "-m", "not now")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, fmt.Sprintf("Run %d (held for %s): cancellation requested\n", heldRun.ID, heldRun.IncidentID), out)
	require.Eventually(t, func() bool {
		code, out, _ := api("show", fmt.Sprint(heldRun.ID))
		return code == 0 && strings.HasPrefix(out, fmt.Sprintf("Run %d: runbook held for %s on held: cancelled: not now\n", heldRun.ID, heldRun.IncidentID))
	}, 20*time.Second, 50*time.Millisecond)
	code, _, errOut = api("cancel", fmt.Sprint(heldRun.ID))
	require.Equal(t, 4, code)
	require.Equal(t, fmt.Sprintf("srectl: sred answered 409: run %d is cancelled: conflict\n", heldRun.ID), errOut)

	// kill-switch: show, engage, release.
	code, out, errOut = api("kill-switch")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "Kill switch released: runbook automation runs.\n", out)
	code, out, errOut = api("kill-switch", "on", "-m", "bad deploy")
	require.Equal(t, 0, code, errOut)
	var ks runbook.KillSwitch
	code, js, errOut := api("kill-switch", "-o", "json")
	require.Equal(t, 0, code, errOut)
	require.NoError(t, json.Unmarshal([]byte(js), &ks))
	require.True(t, ks.Enabled)
	require.Equal(t, "Kill switch ENGAGED by alice at "+ks.UpdatedAt.Format(time.RFC3339)+": bad deploy\n", out)
	code, out, errOut = api("kill-switch")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "Kill switch ENGAGED by alice at "+ks.UpdatedAt.Format(time.RFC3339)+": bad deploy\n", out)
	code, out, errOut = api("kill-switch", "off")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "Kill switch released: runbook automation runs.\n", out)
	code, _, errOut = api("kill-switch", "maybe")
	require.Equal(t, 2, code)
	require.Equal(t, "srectl: enum value must be one of on,off, got 'maybe'\n", errOut)

	// An unreachable sred exits 3.
	srv.Close()
	code, _, errOut = api("list")
	require.Equal(t, 3, code)
	require.True(t, strings.HasPrefix(errOut, "srectl: reach sred: Get \""+srv.URL+"/api/v1/runbooks\": "), errOut)
}
