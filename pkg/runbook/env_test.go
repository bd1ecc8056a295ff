package runbook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	sretest "github.com/rootuip/sre/pkg/testutil"
)

// TestExecEnvSecrets: an exec step's env and env_files values reach the
// program, and none of them is shown: the audit log (on both stores), the
// timeline and the event stream have the variables' names only.
func TestExecEnvSecrets(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		dir := t.TempDir()
		out := filepath.Join(dir, "env.json")
		require.NoError(t, os.WriteFile(filepath.Join(dir, "token"), []byte("file-s3cret\n"), 0o600))
		rb, err := Parse(fmt.Appendf(nil, `
name: secrets
matchers: ['alertname="X"']
labels: {service: '[a-z]+'}
steps:
  - name: call
    exec:
      command: [%q]
      env: {RUNBOOK_HELPER: env, RUNBOOK_OUT: %q, API_TOKEN: inline-s3cret, SERVICE: '{{ .Labels.service }}'}
      env_files: {FILE_TOKEN: token}
`, helperCmd(), out), filepath.Join(dir, "secrets.yml"))
		require.NoError(t, err)
		cfg := testConfig()
		set, err := NewSet(cfg, rb)
		require.NoError(t, err)
		rec := &recorder{}
		bus := events.NewBus(256, nil)
		evs, cancel := bus.Subscribe()
		defer cancel()
		e, err := New(Options{DB: db, Incidents: rec, Escalator: rec, Notifier: rec, Bus: bus, Registerer: prometheus.NewRegistry()}, cfg, set)
		require.NoError(t, err)
		startEngine(t, e)
		inc := newIncident("INC-SECRET-1", map[string]string{"alertname": "X", "service": "web"})
		trigger(t, db, e, inc, incident.ChangeCreated)
		run := waitRun(t, e, inc.ID, RunSucceeded, RunFailed)
		require.Equal(t, RunSucceeded, run.Status, run.Reason)

		b, err := os.ReadFile(out)
		require.NoError(t, err)
		var env []string
		require.NoError(t, json.Unmarshal(b, &env))
		require.Subset(t, env, []string{"API_TOKEN=inline-s3cret", "FILE_TOKEN=file-s3cret", "SERVICE=web"}, "the program gets the values")

		a := stepAudit(t, run, "call")
		require.Equal(t, map[string]any{"API_TOKEN": SecretShown, "FILE_TOKEN": SecretShown, "SERVICE": SecretShown,
			"RUNBOOK_HELPER": SecretShown, "RUNBOOK_OUT": SecretShown}, a.Input["env"], "names only")
		shown, err := json.Marshal(run.Audit)
		require.NoError(t, err)
		require.NotContains(t, string(shown), "s3cret", "audit log")
		tl, _, _, _, _ := rec.snapshot()
		shown, err = json.Marshal(tl)
		require.NoError(t, err)
		require.Contains(t, string(shown), `"FILE_TOKEN":"\u003csecret\u003e"`, "names shown")
		require.NotContains(t, string(shown), "s3cret", "timeline")
		steps := 0
		for len(evs) > 0 {
			ev := <-evs
			if ev.Type == "runbook.step" {
				steps++
			}
			shown, err = json.Marshal(ev)
			require.NoError(t, err)
			require.NotContains(t, string(shown), "s3cret", "event stream")
		}
		require.Equal(t, 1, steps, "the step's event was read")
	})
}

// TestExecEnvFiles: env_files are read when the step runs (a rotated file
// is used by the next run); a missing or empty file fails the step before
// the program starts; an action's env_files path must be absolute, and a
// runbook's names a literal file and a variable not also in env.
func TestExecEnvFiles(t *testing.T) {
	dir := t.TempDir()
	out, secret := filepath.Join(dir, "env.json"), filepath.Join(dir, "token")
	act, err := parseAction(t, fmt.Sprintf("exec: {command: [%q], env: {RUNBOOK_HELPER: env, RUNBOOK_OUT: %q}, env_files: {TOKEN: %q}}", helperCmd(), out, secret), nil)
	require.NoError(t, err)
	a, err := NewActuator(testConfig(), nil, clock.NewManual(time.Unix(0, 0)))
	require.NoError(t, err)
	readEnv := func() []string {
		b, err := os.ReadFile(out)
		require.NoError(t, err)
		var env []string
		require.NoError(t, json.Unmarshal(b, &env))
		return env
	}
	for _, v := range []string{"first", "rotated"} {
		require.NoError(t, os.WriteFile(secret, []byte(v+"\n"), 0o600))
		res := a.Actuate(context.Background(), act, nil)
		require.True(t, res.OK(), res.Error)
		require.Contains(t, readEnv(), "TOKEN="+v)
		require.Equal(t, map[string]string{"RUNBOOK_HELPER": SecretShown, "RUNBOOK_OUT": SecretShown, "TOKEN": SecretShown}, res.Input["env"])
	}

	require.NoError(t, os.Remove(out))
	for name, write := range map[string]func() error{
		"missing": func() error { return os.Remove(secret) },
		"empty":   func() error { return os.WriteFile(secret, []byte(" \n"), 0o600) },
	} {
		require.NoError(t, write(), name)
		res := a.Actuate(context.Background(), act, nil)
		require.Equal(t, StepFailed, res.Status, name)
		require.Contains(t, res.Error, "env_files.TOKEN: ", name)
		require.Nil(t, res.Code, "%s: nothing started", name)
		_, err := os.Stat(out)
		require.True(t, os.IsNotExist(err), "%s: the program never ran", name)
	}

	_, err = parseAction(t, "exec: {command: [/bin/true], env_files: {TOKEN: token}}", nil)
	require.ErrorContains(t, err, `action: env_files.TOKEN: the path "token" must be absolute`)
	for _, tc := range []struct{ files, env, err string }{
		{"{TOKEN: ''}", "{}", "env_files.TOKEN: want the path of the file that holds the value"},
		{"{TOKEN: '/run/{{ .Labels.service }}'}", "{}", `env_files.TOKEN: the path "/run/{{ .Labels.service }}" cannot be a template`},
		{"{TOKEN: /run/token}", "{TOKEN: x}", "env_files: TOKEN is also in env; set it in one of them"},
		{"{'A=B': /run/token}", "{}", `env_files: invalid environment variable name "A=B"`},
	} {
		_, err := Parse(fmt.Appendf(nil, "name: rb\nmatchers: ['alertname=\"X\"']\nlabels: {service: '[a-z]+'}\nsteps:\n  - name: a\n    exec: {command: [/bin/true], env: %s, env_files: %s}\n", tc.env, tc.files), "rb.yml")
		require.ErrorContains(t, err, tc.err)
	}
	rb, err := Parse([]byte("name: rb\nmatchers: ['alertname=\"X\"']\nsteps:\n  - name: a\n    exec: {command: [/bin/true], env_files: {A: token, B: /run/b}}\n"), "/etc/sred/runbooks/rb.yml")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"A": "/etc/sred/runbooks/token", "B": "/run/b"}, rb.Steps[0].Exec.EnvFiles, "relative to the runbook file")
}

// TestHTTPHeaderSecrets: an http step's headers reach the endpoint as
// rendered, and the values of the credential-like ones are not shown: the
// audit log (on both stores), the timeline and the event stream have
// SecretShown in their place, other headers as rendered.
func TestHTTPHeaderSecrets(t *testing.T) {
	var (
		mu  sync.Mutex
		got []http.Header
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Clone())
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	sent := map[string]string{
		"Authorization":       "Bearer s3cret-web",
		"Proxy-Authorization": "Basic s3cret-proxy",
		"Cookie":              "sid=s3cret-cookie",
		"X-Api-Key":           "s3cret-key",
		"X-Auth-Token":        "s3cret-token",
		"X-Client-Secret":     "s3cret-client",
		"X-Requested-By":      "sred web",
	}
	shownWant := map[string]any{}
	for k, v := range sent {
		shownWant["headers."+k] = SecretShown
		if k == "X-Requested-By" {
			shownWant["headers."+k] = v
		}
	}
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		mu.Lock()
		got = nil
		mu.Unlock()
		cfg := testConfig()
		cfg.HTTPEndpoints = map[string]HTTPEndpoint{"api": {URL: srv.URL}}
		rb := mustParse(t, `
name: header-secrets
matchers: ['alertname="X"']
labels: {service: '[a-z]+'}
steps:
  - name: call
    http:
      endpoint: api
      path: /restart
      headers:
        Authorization: 'Bearer s3cret-{{ .Labels.service }}'
        Proxy-Authorization: Basic s3cret-proxy
        Cookie: sid=s3cret-cookie
        X-Api-Key: s3cret-key
        X-Auth-Token: s3cret-token
        X-Client-Secret: s3cret-client
        X-Requested-By: 'sred {{ .Labels.service }}'
      expect_status: [204]
`)
		rec := &recorder{}
		bus := events.NewBus(256, nil)
		evs, cancel := bus.Subscribe()
		defer cancel()
		set, err := NewSet(cfg, rb)
		require.NoError(t, err)
		e, err := New(Options{DB: db, Incidents: rec, Escalator: rec, Notifier: rec, Bus: bus, Registerer: prometheus.NewRegistry()}, cfg, set)
		require.NoError(t, err)
		startEngine(t, e)
		inc := newIncident("INC-HEADERS-1", map[string]string{"alertname": "X", "service": "web"})
		trigger(t, db, e, inc, incident.ChangeCreated)
		run := waitRun(t, e, inc.ID, RunSucceeded, RunFailed)
		require.Equal(t, RunSucceeded, run.Status, run.Reason)

		mu.Lock()
		require.Len(t, got, 1)
		for k, v := range sent {
			require.Equal(t, v, got[0].Get(k), "the endpoint gets %s", k)
		}
		mu.Unlock()

		a := stepAudit(t, run, "call")
		for k, v := range shownWant {
			require.Equal(t, v, a.Input[k], k)
		}
		shown, err := json.Marshal(run.Audit)
		require.NoError(t, err)
		require.NotContains(t, string(shown), "s3cret", "audit log")
		tl, _, _, _, _ := rec.snapshot()
		shown, err = json.Marshal(tl)
		require.NoError(t, err)
		require.Contains(t, string(shown), `"headers.Authorization":"\u003csecret\u003e"`, "names shown")
		require.Contains(t, string(shown), `"headers.X-Requested-By":"sred web"`, "other headers shown")
		require.NotContains(t, string(shown), "s3cret", "timeline")
		steps := 0
		for len(evs) > 0 {
			ev := <-evs
			if ev.Type == "runbook.step" {
				steps++
			}
			shown, err = json.Marshal(ev)
			require.NoError(t, err)
			require.NotContains(t, string(shown), "s3cret", "event stream")
		}
		require.Equal(t, 1, steps, "the step's event was read")
	})
}

// TestSecretHeader: which header names carry credentials (any case).
func TestSecretHeader(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secret bool
	}{
		{"Authorization", true},
		{"proxy-authorization", true},
		{"Cookie", true},
		{"X-API-Key", true},
		{"X-Auth-Token", true},
		{"X-Vault-Token", true},
		{"X-Client-Secret", true},
		{"X-Password", true},
		{"Apikey", true},
		{"X-Requested-By", false},
		{"Content-Type", false},
		{"Accept", false},
	} {
		require.Equal(t, tc.secret, secretHeader(tc.name), tc.name)
	}
}
