package change_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/change"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

type answer struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

func call(t *testing.T, srv *httptest.Server, method, path, body string) (int, answer) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var a answer
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&a))
	return resp.StatusCode, a
}

func decode[T any](t *testing.T, a answer) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(a.Data, &v), "%s", a.Data)
	return v
}

func serve(t *testing.T, e *env) *httptest.Server {
	mux := http.NewServeMux()
	e.changes.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return string(b)
}

// Flagger's event webhook, with the payloads Flagger posts
// (CanaryWebhookPayload: name, namespace, phase, checksum and the event in
// metadata): Progressing opens a change once, Succeeded finishes it at the
// event's time, Failed records a rollback, other phases record nothing.
func TestFlaggerEvents(t *testing.T) {
	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, change.DefaultConfig)
		e.clk.Set(time.Date(2026, 12, 2, 12, 30, 0, 0, time.UTC))
		srv := serve(t, e)
		started := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

		code, a := call(t, srv, http.MethodPost, "/api/v1/changes/flagger", fixture(t, "flagger-progressing.json"))
		require.Equal(t, http.StatusCreated, code, a.Error)
		res := decode[change.NotificationResult](t, a)
		require.Equal(t, "recorded", res.Action)
		c := res.Change
		require.Equal(t, change.InProgress, c.Outcome)
		require.Equal(t, "checkout", c.Service)
		require.Equal(t, "flagger:shop/checkout", c.Ref)
		require.Equal(t, change.SourceFlagger, c.Source)
		require.Equal(t, "6d5f8c7b9", c.Version)
		require.Equal(t, "flagger", c.Actor)
		require.True(t, started.Equal(c.StartedAt), c.StartedAt)
		require.Equal(t, "New revision detected! Scaling up checkout.shop", c.Description)

		for _, f := range []string{"flagger-progressing-again.json", "flagger-waiting.json"} {
			code, a = call(t, srv, http.MethodPost, "/api/v1/changes/flagger", fixture(t, f))
			require.Equal(t, http.StatusOK, code, a.Error)
			require.Equal(t, "ignored", decode[change.NotificationResult](t, a).Action, f)
		}

		code, a = call(t, srv, http.MethodPost, "/api/v1/changes/flagger", fixture(t, "flagger-succeeded.json"))
		require.Equal(t, http.StatusOK, code, a.Error)
		res = decode[change.NotificationResult](t, a)
		require.Equal(t, "finished", res.Action)
		require.Equal(t, c.ID, res.Change.ID)
		require.Equal(t, change.Succeeded, res.Change.Outcome)
		require.True(t, started.Add(10*time.Minute).Equal(*res.Change.FinishedAt), res.Change.FinishedAt)

		// A failed canary whose start sred did not see: recorded rolled back.
		code, a = call(t, srv, http.MethodPost, "/api/v1/changes/flagger?service=shop-checkout", fixture(t, "flagger-failed.json"))
		require.Equal(t, http.StatusCreated, code, a.Error)
		res = decode[change.NotificationResult](t, a)
		require.Equal(t, change.RolledBack, res.Change.Outcome)
		require.Equal(t, "shop-checkout", res.Change.Service)
		require.True(t, res.Change.Failed)

		code, a = call(t, srv, http.MethodPost, "/api/v1/changes/flagger", `{"phase": "Progressing"}`)
		require.Equal(t, http.StatusBadRequest, code)
		require.Equal(t, "a Flagger event needs name and namespace", a.Error)
		code, a = call(t, srv, http.MethodPost, "/api/v1/changes/flagger", `{"name": "a\u0000b", "namespace": "shop", "phase": "Succeeded"}`)
		require.Equal(t, http.StatusBadRequest, code)
		require.Equal(t, "name: NUL byte at offset 1", a.Error)
		code, a = call(t, srv, http.MethodPost, "/api/v1/changes/flagger", `{"name": `)
		require.Equal(t, http.StatusBadRequest, code)
		require.Contains(t, a.Error, "invalid JSON body")
	})
}

// The Argo Rollouts notification template of examples/changes, rendered
// as the notifications engine does (Go text/template over the rollout),
// posts bodies the endpoint records: an update opens a change with the
// commit from the rollout's annotations, completion finishes it with its
// lead time, an abort records a rollback; annotations the rollout lacks
// render as "<no value>" and count as absent.
func TestArgoRolloutsNotifications(t *testing.T) {
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "examples", "changes", "argo-rollouts-notifications.yaml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &cm))
	var tmpl struct {
		Webhook map[string]struct {
			Method string `yaml:"method"`
			Path   string `yaml:"path"`
			Body   string `yaml:"body"`
		} `yaml:"webhook"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(cm.Data["template.sred-change"]), &tmpl))
	hook := tmpl.Webhook["sred"]
	require.Equal(t, http.MethodPost, hook.Method)
	require.Equal(t, "/api/v1/changes/argo-rollouts", hook.Path)
	body := template.Must(template.New("body").Parse(hook.Body))
	render := func(t *testing.T, name string) string {
		t.Helper()
		var rollout map[string]any
		require.NoError(t, json.Unmarshal([]byte(fixture(t, name)), &rollout))
		var out bytes.Buffer
		require.NoError(t, body.Execute(&out, map[string]any{"rollout": rollout}))
		return out.String()
	}

	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, change.DefaultConfig)
		e.clk.Set(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
		srv := serve(t, e)

		code, a := call(t, srv, hook.Method, hook.Path, render(t, "argo-rollout-progressing.json"))
		require.Equal(t, http.StatusCreated, code, a.Error)
		c := decode[change.NotificationResult](t, a).Change
		require.Equal(t, change.InProgress, c.Outcome)
		require.Equal(t, "checkout", c.Service)
		require.Equal(t, "argo-rollouts:shop/checkout", c.Ref)
		require.Equal(t, "7", c.Version)
		require.Equal(t, "3f2c1ab", c.Commit)
		require.Equal(t, time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), *c.CommitTime)

		e.clk.Advance(15 * time.Minute)
		code, a = call(t, srv, hook.Method, hook.Path, render(t, "argo-rollout-healthy.json"))
		require.Equal(t, http.StatusOK, code, a.Error)
		res := decode[change.NotificationResult](t, a)
		require.Equal(t, "finished", res.Action)
		require.Equal(t, change.Succeeded, res.Change.Outcome)
		require.InDelta(t, (27*time.Hour + 15*time.Minute).Seconds(), *res.Change.LeadTime, 1e-9)

		code, a = call(t, srv, hook.Method, hook.Path, render(t, "argo-rollout-aborted.json"))
		require.Equal(t, http.StatusCreated, code, a.Error)
		c = decode[change.NotificationResult](t, a).Change
		require.Equal(t, change.RolledBack, c.Outcome)
		require.Equal(t, "payments", c.Service)
		require.Equal(t, "12", c.Version)
		require.Empty(t, c.Commit)
		require.Nil(t, c.CommitTime)

		code, a = call(t, srv, hook.Method, hook.Path, `{"rollout": "x", "namespace": "y", "phase": "Unknown"}`)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "ignored", decode[change.NotificationResult](t, a).Action)
	})
}

// POST /api/v1/changes refuses what it cannot record, naming the field;
// GET /api/v1/changes filters and pages; finish is idempotent.
func TestChangesAPI(t *testing.T) {
	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, change.DefaultConfig)
		srv := serve(t, e)
		for _, tc := range []struct{ body, err string }{
			{`{"kind": "deploy"}`, "bad request: service is required"},
			{`{"service": "a", "kind": "rollout"}`, `bad request: unknown change kind "rollout" (want deploy, config or infra)`},
			{`{"service": "a", "outcome": "done"}`, `bad request: unknown outcome "done" (want in_progress, succeeded, failed, rolled_back or refused)`},
			{`{"service": "a", "outcome": "refused"}`, "outcome refused is the deploy gate's answer, not one to record"},
			{`{"service": "a", "commit_time": "2026-12-01T13:00:00Z", "started_at": "2026-12-01T12:00:00Z"}`,
				"bad request: commit_time 2026-12-01T13:00:00Z is after the change started (2026-12-01T12:00:00Z)"},
			{`{"service": "a", "commit_time": "0001-01-01T00:00:00Z"}`,
				"bad request: commit_time 0001-01-01T00:00:00Z is no commit time (the Unix epoch or before, as a tool renders a time it does not have): leave it out when it is not known"},
			{`{"service": "a", "commit_time": "1970-01-01T01:00:00+01:00"}`,
				"bad request: commit_time 1970-01-01T00:00:00Z is no commit time (the Unix epoch or before, as a tool renders a time it does not have): leave it out when it is not known"},
			{`{"service": "a", "colour": "red"}`, `invalid JSON body: json: unknown field "colour"`},
			{`{"service": "` + strings.Repeat("x", 201) + `"}`, `bad request: service: invalid service name ` + limits.Quote(strings.Repeat("x", 201)) + ` (` + limits.NameRule + `)`},
			{`{"service": "a", "commit": "a\u0000"}`, "commit: NUL byte at offset 1"},
			{`{"service": "a", "started_at": "2100-01-01T00:00:00Z"}`, "started_at 2100-01-01T00:00:00Z is in the future"},
			{`{"service": "a", "finished_at": "2100-01-01T00:00:00Z"}`, "finished_at 2100-01-01T00:00:00Z is in the future"},
			{`{"service": "a", "started_at": "0001-01-01T00:00:00Z"}`,
				"started_at 0001-01-01T00:00:00Z is no time (the Unix epoch or before, as a tool renders a time it does not have): leave it out for now"},
			{`{"service": "a", "started_at": "1970-01-01T00:00:00Z", "finished_at": "1970-01-01T00:00:00Z"}`,
				"started_at 1970-01-01T00:00:00Z is no time (the Unix epoch or before, as a tool renders a time it does not have): leave it out for now"},
			{`{"service": "a", "finished_at": "0001-01-01T00:00:00Z"}`,
				"finished_at 0001-01-01T00:00:00Z is no time (the Unix epoch or before, as a tool renders a time it does not have): leave it out for now"},
		} {
			code, a := call(t, srv, http.MethodPost, "/api/v1/changes", tc.body)
			require.Equal(t, http.StatusBadRequest, code, tc.body)
			require.Equal(t, tc.err, a.Error, tc.body)
		}

		for i, svc := range []string{"api", "web", "api"} {
			code, a := call(t, srv, http.MethodPost, "/api/v1/changes", `{"service": "`+svc+`", "outcome": "in_progress", "kind": "`+[]string{"deploy", "config", "infra"}[i]+`"}`)
			require.Equal(t, http.StatusCreated, code, a.Error)
			c := decode[change.Change](t, a)
			require.Equal(t, "skipped", c.Gate.Decision)
			require.Equal(t, "no deploy gate configured", c.Gate.Reason)
		}
		// A retry with the key of a recorded change records nothing.
		code, a := call(t, srv, http.MethodPost, "/api/v1/changes", `{"service": "batch", "key": "ci-job-4711", "commit": "aaa"}`)
		require.Equal(t, http.StatusCreated, code, a.Error)
		first := decode[change.Change](t, a)
		require.Equal(t, "ci-job-4711", first.Key)
		code, a = call(t, srv, http.MethodPost, "/api/v1/changes", `{"service": "batch", "key": "ci-job-4711", "commit": "bbb"}`)
		require.Equal(t, http.StatusOK, code, a.Error)
		again := decode[change.Change](t, a)
		require.Equal(t, first.ID, again.ID)
		require.Equal(t, "aaa", again.Commit)
		code, a = call(t, srv, http.MethodGet, "/api/v1/changes?service=batch", "")
		require.Equal(t, http.StatusOK, code)
		require.Len(t, decode[change.List](t, a).Changes, 1)
		// The key of another service's or kind's change is not a retry:
		// 422 naming the change, not a 200 that records nothing.
		for _, body := range []string{`{"service": "stream", "key": "ci-job-4711", "commit": "ccc"}`, `{"service": "batch", "kind": "config", "key": "ci-job-4711"}`} {
			code, a = call(t, srv, http.MethodPost, "/api/v1/changes", body)
			require.Equal(t, http.StatusUnprocessableEntity, code, body)
			require.Contains(t, a.Error, fmt.Sprintf(`idempotency key already used: key "ci-job-4711" is change %d, a deploy of batch`, first.ID), body)
		}
		code, a = call(t, srv, http.MethodGet, "/api/v1/changes?service=stream", "")
		require.Equal(t, http.StatusOK, code)
		require.Empty(t, decode[change.List](t, a).Changes)

		code, a = call(t, srv, http.MethodGet, "/api/v1/changes?service=api", "")
		require.Equal(t, http.StatusOK, code)
		l := decode[change.List](t, a)
		require.Len(t, l.Changes, 2)
		require.Equal(t, int64(3), l.Changes[0].ID)
		code, a = call(t, srv, http.MethodGet, "/api/v1/changes?limit=3", "")
		require.Equal(t, http.StatusOK, code)
		l = decode[change.List](t, a)
		require.Len(t, l.Changes, 3)
		require.Equal(t, "2", l.Next)
		code, a = call(t, srv, http.MethodGet, "/api/v1/changes?limit=3&before="+l.Next, "")
		require.Equal(t, http.StatusOK, code)
		l = decode[change.List](t, a)
		require.Len(t, l.Changes, 1)
		require.Equal(t, int64(1), l.Changes[0].ID)
		require.Empty(t, l.Next)
		code, a = call(t, srv, http.MethodGet, "/api/v1/changes?kind=config", "")
		require.Equal(t, http.StatusOK, code)
		require.Len(t, decode[change.List](t, a).Changes, 1)
		code, a = call(t, srv, http.MethodGet, "/api/v1/changes?colour=red", "")
		require.Equal(t, http.StatusBadRequest, code)
		require.Equal(t, `unknown parameter "colour" (want service, kind, outcome, since, until, before, limit)`, a.Error)

		code, a = call(t, srv, http.MethodPost, "/api/v1/changes/2/finish", `{"outcome": "rolled_back"}`)
		require.Equal(t, http.StatusOK, code, a.Error)
		require.True(t, decode[change.Change](t, a).Failed)
		code, a = call(t, srv, http.MethodPost, "/api/v1/changes/2/finish", `{"outcome": "rolled_back"}`)
		require.Equal(t, http.StatusOK, code, a.Error)
		code, a = call(t, srv, http.MethodPost, "/api/v1/changes/2/finish", `{"outcome": "succeeded"}`)
		require.Equal(t, http.StatusConflict, code)
		require.Equal(t, "change already finished: change 2 is rolled_back", a.Error)
		code, a = call(t, srv, http.MethodPost, "/api/v1/changes/2/finish", `{"outcome": "in_progress"}`)
		require.Equal(t, http.StatusBadRequest, code)
		require.Equal(t, `bad request: outcome must be succeeded, failed or rolled_back, got "in_progress"`, a.Error)
		code, a = call(t, srv, http.MethodGet, "/api/v1/changes/99", "")
		require.Equal(t, http.StatusNotFound, code)
		require.Equal(t, "change not found: 99", a.Error)
		code, a = call(t, srv, http.MethodGet, "/api/v1/changes/x", "")
		require.Equal(t, http.StatusBadRequest, code)
		require.Equal(t, `change id must be a positive integer, got "x"`, a.Error)
	})
}

// The Argo CD notification template of examples/changes, rendered over an
// Application as the notifications engine does, posts a body that
// POST /api/v1/changes records (not gated here: no gate configured); the
// same notification again records nothing.
func TestArgoCDNotification(t *testing.T) {
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "examples", "changes", "argocd-notifications.yaml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &cm))
	var tmpl struct {
		Webhook map[string]struct {
			Method string `yaml:"method"`
			Path   string `yaml:"path"`
			Body   string `yaml:"body"`
		} `yaml:"webhook"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(cm.Data["template.sred-change"]), &tmpl))
	hook := tmpl.Webhook["sred"]
	var app map[string]any
	require.NoError(t, json.Unmarshal([]byte(fixture(t, "argocd-application.json")), &app))
	var body bytes.Buffer
	require.NoError(t, template.Must(template.New("body").Parse(hook.Body)).Execute(&body, map[string]any{"app": app}))

	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, change.DefaultConfig)
		e.clk.Set(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
		srv := serve(t, e)
		code, a := call(t, srv, hook.Method, hook.Path, body.String())
		require.Equal(t, http.StatusCreated, code, a.Error)
		c := decode[change.Change](t, a)
		require.Equal(t, "checkout", c.Service)
		require.Equal(t, "argocd", c.Source)
		require.Equal(t, change.Succeeded, c.Outcome)
		require.Equal(t, "9c1e2d3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d", c.Commit)
		require.Equal(t, time.Date(2026, 12, 2, 11, 52, 30, 0, time.UTC), *c.FinishedAt)
		code, a = call(t, srv, hook.Method, hook.Path, body.String())
		require.Equal(t, http.StatusOK, code, a.Error)
		require.Equal(t, c.ID, decode[change.Change](t, a).ID)
	})
}

// Flux's events as a generic Provider posts them: a successful
// reconciliation of a revision is one succeeded change (repeated events of
// the revision record nothing), a failed upgrade a failed change named by
// the object's service annotation, progress events nothing.
func TestFluxEvents(t *testing.T) {
	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, change.DefaultConfig)
		e.clk.Set(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
		srv := serve(t, e)

		code, a := call(t, srv, http.MethodPost, "/api/v1/changes/flux", fixture(t, "flux-progressing.json"))
		require.Equal(t, http.StatusOK, code, a.Error)
		require.Equal(t, "ignored", decode[change.NotificationResult](t, a).Action)

		code, a = call(t, srv, http.MethodPost, "/api/v1/changes/flux", fixture(t, "flux-succeeded.json"))
		require.Equal(t, http.StatusCreated, code, a.Error)
		c := decode[change.NotificationResult](t, a).Change
		require.Equal(t, "checkout", c.Service)
		require.Equal(t, change.Succeeded, c.Outcome)
		require.Equal(t, "flux", c.Source)
		require.Equal(t, "07a684d59d1bc9a58e0c0d07ed480812b2b9a29e", c.Commit)
		require.Equal(t, "main@sha1:07a684d59d1bc9a58e0c0d07ed480812b2b9a29e", c.Version)
		require.Equal(t, time.Date(2026, 12, 2, 11, 56, 0, 0, time.UTC), *c.FinishedAt)

		code, a = call(t, srv, http.MethodPost, "/api/v1/changes/flux", fixture(t, "flux-succeeded.json"))
		require.Equal(t, http.StatusOK, code, a.Error)
		res := decode[change.NotificationResult](t, a)
		require.Equal(t, "ignored", res.Action)
		require.Equal(t, c.ID, res.Change.ID)

		code, a = call(t, srv, http.MethodPost, "/api/v1/changes/flux", fixture(t, "flux-failed.json"))
		require.Equal(t, http.StatusCreated, code, a.Error)
		c = decode[change.NotificationResult](t, a).Change
		require.Equal(t, "payments-api", c.Service)
		require.Equal(t, change.Failed, c.Outcome)
		require.True(t, c.Failed)
		require.Equal(t, "1.4.0", c.Commit)

		code, a = call(t, srv, http.MethodPost, "/api/v1/changes/flux", `{"severity": "info", "reason": "ReconciliationSucceeded"}`)
		require.Equal(t, http.StatusBadRequest, code)
		require.Equal(t, "a Flux event needs involvedObject kind, name and namespace", a.Error)

		// Kubernetes allows a name of 253 bytes and a namespace of 63: the
		// event's key (kind, namespace, name, revision) is longer than the
		// other fields' 200 bytes, and is recorded.
		long := strings.Replace(strings.Replace(fixture(t, "flux-succeeded.json"), `"name": "checkout"`, `"name": "`+strings.Repeat("n", 253)+`"`, 1),
			`"namespace": "flux-system"`, `"namespace": "`+strings.Repeat("s", 63)+`"`, 1)
		code, a = call(t, srv, http.MethodPost, "/api/v1/changes/flux?service=checkout", long)
		require.Equal(t, http.StatusCreated, code, a.Error)
		require.Equal(t, "checkout", decode[change.NotificationResult](t, a).Change.Service)
	})
}

// Flagger posts every event of a canary with the canary's phase (a
// suspended or erroring canary keeps posting Succeeded or Failed each
// interval until its next revision) and retries; notifications are
// redelivered. A final phase repeated for the version the rollout's last
// change already ended with records nothing, so deployments are not
// counted twice; a new version is recorded.
func TestNotificationReplays(t *testing.T) {
	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, change.DefaultConfig)
		e.clk.Set(time.Date(2026, 12, 2, 12, 30, 0, 0, time.UTC))
		srv := serve(t, e)
		post := func(path, body string) (int, change.NotificationResult) {
			t.Helper()
			code, a := call(t, srv, http.MethodPost, path, body)
			require.Less(t, code, 300, a.Error)
			return code, decode[change.NotificationResult](t, a)
		}

		_, res := post("/api/v1/changes/flagger", fixture(t, "flagger-progressing.json"))
		require.Equal(t, "recorded", res.Action)
		id := res.Change.ID
		_, res = post("/api/v1/changes/flagger", fixture(t, "flagger-succeeded.json"))
		require.Equal(t, "finished", res.Action)
		suspended := `{"name": "checkout", "namespace": "shop", "phase": "Succeeded", "checksum": "6d5f8c7b9",
			"metadata": {"eventMessage": "skipping canary run as object is suspended", "eventType": "Normal", "timestamp": "1796213700000"}}`
		for _, body := range []string{fixture(t, "flagger-succeeded.json"), suspended} {
			code, res := post("/api/v1/changes/flagger", body)
			require.Equal(t, http.StatusOK, code)
			require.Equal(t, "ignored", res.Action)
			require.Equal(t, id, res.Change.ID)
		}
		for range 2 {
			_, res = post("/api/v1/changes/flagger", fixture(t, "flagger-failed.json"))
		}
		require.Equal(t, "ignored", res.Action)
		// The next revision of the canary is a new change.
		code, res := post("/api/v1/changes/flagger", strings.Replace(fixture(t, "flagger-succeeded.json"), "6d5f8c7b9", "7e6a9d8c0", 1))
		require.Equal(t, http.StatusCreated, code)
		require.Equal(t, "recorded", res.Action)

		healthy := `{"rollout": "checkout", "namespace": "shop", "phase": "Healthy", "aborted": "", "revision": "7"}`
		_, res = post("/api/v1/changes/argo-rollouts", healthy)
		require.Equal(t, "recorded", res.Action)
		_, res = post("/api/v1/changes/argo-rollouts", healthy)
		require.Equal(t, "ignored", res.Action)
		_, res = post("/api/v1/changes/argo-rollouts", strings.Replace(healthy, `"7"`, `"8"`, 1))
		require.Equal(t, "recorded", res.Action)

		require.NoError(t, promtest.GatherAndCompare(e.reg, strings.NewReader(`
# HELP sre_deployments_total Changes finished, by kind (deploy, config, infra) and result: succeeded, failed, rolled_back, refused (the deploy gate denied it; it did not ship).
# TYPE sre_deployments_total counter
sre_deployments_total{kind="config",result="failed",service="checkout"} 0
sre_deployments_total{kind="deploy",result="failed",service="checkout"} 0
sre_deployments_total{kind="infra",result="failed",service="checkout"} 0
sre_deployments_total{kind="config",result="refused",service="checkout"} 0
sre_deployments_total{kind="deploy",result="refused",service="checkout"} 0
sre_deployments_total{kind="infra",result="refused",service="checkout"} 0
sre_deployments_total{kind="config",result="rolled_back",service="checkout"} 0
sre_deployments_total{kind="deploy",result="rolled_back",service="checkout"} 1
sre_deployments_total{kind="infra",result="rolled_back",service="checkout"} 0
sre_deployments_total{kind="config",result="succeeded",service="checkout"} 0
sre_deployments_total{kind="deploy",result="succeeded",service="checkout"} 4
sre_deployments_total{kind="infra",result="succeeded",service="checkout"} 0
`), "sre_deployments_total"))
	})
}

// A commit time after the rollout started (the committer's clock ahead)
// is no lead time. POST /api/v1/changes refuses it; the notification
// endpoints, whose senders redeliver a refused notification, record the
// change without it and say so, in the answer and the log.
func TestNotificationCommitTimeAhead(t *testing.T) {
	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, change.DefaultConfig)
		e.clk.Set(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
		var logs testutil.SyncBuffer
		e.changes = change.New(change.Options{DB: db, Clock: e.clk, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		srv := serve(t, e)
		const warning = "commit_time 2026-12-02T12:10:00Z is after the change started (2026-12-02T12:00:00Z): recorded without commit_time, no lead time"
		for _, path := range []string{"/api/v1/changes/argo-rollouts", "/api/v1/changes/flagger"} {
			body := `{"rollout": "pay", "namespace": "shop", "phase": "Progressing", "revision": "3", "commit": "abc", "commit_time": "2026-12-02T12:10:00Z"}`
			if path == "/api/v1/changes/flagger" {
				body = `{"name": "pay", "namespace": "shop", "phase": "Progressing", "checksum": "x", "metadata": {"commit": "abc", "commit_time": "2026-12-02T12:10:00Z"}}`
			}
			code, a := call(t, srv, http.MethodPost, path, body)
			require.Equal(t, http.StatusCreated, code, a.Error)
			res := decode[change.NotificationResult](t, a)
			require.Equal(t, "recorded", res.Action, path)
			require.Equal(t, []string{warning}, res.Warnings, path)
			c := res.Change
			require.Equal(t, "abc", c.Commit, path)
			require.Nil(t, c.CommitTime, path)
			stored, err := e.changes.Get(context.Background(), c.ID)
			require.NoError(t, err)
			require.Nil(t, stored.CommitTime, path)
		}
		require.Equal(t, 2, strings.Count(logs.String(), "level=WARN msg=\"Commit time after the change started: recorded without a lead time\""), logs.String())
		require.Contains(t, logs.String(), "ref=argo-rollouts:shop/pay service=pay commit=abc commit_time=2026-12-02T12:10:00.000Z started_at=2026-12-02T12:00:00.000Z")
		// A commit time before the start is kept, with no warning.
		code, a := call(t, srv, http.MethodPost, "/api/v1/changes/argo-rollouts",
			`{"rollout": "web", "namespace": "shop", "phase": "Progressing", "revision": "4", "commit": "def", "commit_time": "2026-12-02T11:10:00Z"}`)
		require.Equal(t, http.StatusCreated, code, a.Error)
		res := decode[change.NotificationResult](t, a)
		require.Empty(t, res.Warnings)
		require.NotNil(t, res.Change.CommitTime)
		// The same commit time on POST /api/v1/changes is refused.
		code, a = call(t, srv, http.MethodPost, "/api/v1/changes",
			`{"service": "pay", "commit": "abc", "commit_time": "2026-12-02T12:10:00Z", "started_at": "2026-12-02T12:00:00Z"}`)
		require.Equal(t, http.StatusBadRequest, code)
		require.Equal(t, "bad request: commit_time 2026-12-02T12:10:00Z is after the change started (2026-12-02T12:00:00Z)", a.Error)
	})
}

// A commit_time that is not RFC 3339 is no lead time: the Argo Rollouts and
// Flagger notifications are recorded without it (their senders redeliver a
// refused one), the answer names the field and the value in warnings, and
// the warning is logged; POST /api/v1/changes refuses it.
func TestNotificationCommitTimeNotRFC3339(t *testing.T) {
	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, change.DefaultConfig)
		e.clk.Set(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
		var logs testutil.SyncBuffer
		e.changes = change.New(change.Options{DB: db, Clock: e.clk, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		srv := serve(t, e)
		long := strings.Repeat("9", 100)
		for _, tc := range []struct {
			path, body, warning string
		}{
			{"/api/v1/changes/argo-rollouts", `{"rollout": "pay", "namespace": "shop", "phase": "Progressing", "revision": "3", "commit": "abc", "commit_time": "yesterday"}`,
				`commit_time "yesterday" is not RFC 3339: recorded without commit_time, no lead time`},
			{"/api/v1/changes/flagger", `{"name": "pay", "namespace": "shop", "phase": "Progressing", "checksum": "x", "metadata": {"commit": "abc", "commit_time": "1796212800"}}`,
				`commit_time "1796212800" is not RFC 3339: recorded without commit_time, no lead time`},
			{"/api/v1/changes/argo-rollouts", `{"rollout": "web", "namespace": "shop", "phase": "Healthy", "revision": "4", "commit": "def", "commit_time": "` + long + `"}`,
				`commit_time "` + long[:64] + `..." is not RFC 3339: recorded without commit_time, no lead time`},
			// Go's zero time, as a template renders a time it does not
			// have: a lead time of two thousand years.
			{"/api/v1/changes/argo-rollouts", `{"rollout": "cart", "namespace": "shop", "phase": "Healthy", "revision": "5", "commit": "0ab", "commit_time": "0001-01-01T00:00:00Z"}`,
				`commit_time 0001-01-01T00:00:00Z is no commit time (the Unix epoch or before, as a tool renders a time it does not have): recorded without commit_time, no lead time`},
		} {
			code, a := call(t, srv, http.MethodPost, tc.path, tc.body)
			require.Equal(t, http.StatusCreated, code, a.Error)
			res := decode[change.NotificationResult](t, a)
			require.Equal(t, "recorded", res.Action, tc.path)
			require.Equal(t, []string{tc.warning}, res.Warnings, tc.path)
			require.NotEmpty(t, res.Change.Commit, tc.path)
			require.Nil(t, res.Change.CommitTime, tc.path)
			stored, err := e.changes.Get(context.Background(), res.Change.ID)
			require.NoError(t, err)
			require.Nil(t, stored.CommitTime, tc.path)
			require.Equal(t, res.Change.Commit, stored.Commit, tc.path)
		}
		require.Equal(t, 3, strings.Count(logs.String(), `level=WARN msg="Commit time not RFC 3339: recorded without a lead time"`), logs.String())
		require.Contains(t, logs.String(), `level=WARN msg="Commit time unset: recorded without a lead time" ref=argo-rollouts:shop/cart service=cart commit=0ab commit_time=0001-01-01T00:00:00.000Z`)
		require.Contains(t, logs.String(), "ref=flagger:shop/pay service=pay commit=abc commit_time=1796212800")
		// The same commit time on POST /api/v1/changes is refused.
		code, a := call(t, srv, http.MethodPost, "/api/v1/changes", `{"service": "pay", "commit": "abc", "commit_time": "yesterday"}`)
		require.Equal(t, http.StatusBadRequest, code)
		require.Contains(t, a.Error, "commit_time")
	})
}

// Flagger's first event of a revision ("New revision detected! Scaling
// up") carries the checksum of the revision before it; the next ones the
// new checksum. The open change ships the version of the latest event (as
// when a revision replaces another mid-rollout), so it ends as the
// revision's one change and a repeated Succeeded records nothing.
func TestNotificationNewRevision(t *testing.T) {
	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, change.DefaultConfig)
		e.clk.Set(time.Date(2026, 12, 2, 12, 30, 0, 0, time.UTC))
		srv := serve(t, e)
		post := func(path, body string) change.NotificationResult {
			t.Helper()
			code, a := call(t, srv, http.MethodPost, path, body)
			require.Less(t, code, 300, a.Error)
			return decode[change.NotificationResult](t, a)
		}
		ev := func(phase, checksum, msg string) string {
			return `{"name": "checkout", "namespace": "shop", "phase": "` + phase + `", "checksum": "` + checksum + `",
				"metadata": {"eventMessage": "` + msg + `", "eventType": "Normal", "timestamp": "1796213400000"}}`
		}
		// Revision A shipped.
		post("/api/v1/changes/flagger", ev("Progressing", "aaaa", "New revision detected! Scaling up checkout.shop"))
		post("/api/v1/changes/flagger", ev("Succeeded", "aaaa", "Promotion completed! Scaling down checkout.shop"))
		// Revision B: its first event still says aaaa.
		res := post("/api/v1/changes/flagger", ev("Progressing", "aaaa", "New revision detected! Scaling up checkout.shop"))
		require.Equal(t, "recorded", res.Action)
		id := res.Change.ID
		res = post("/api/v1/changes/flagger", ev("Progressing", "bbbb", "Advance checkout.shop canary weight 10"))
		require.Equal(t, "ignored", res.Action)
		require.Equal(t, "bbbb", res.Change.Version)
		res = post("/api/v1/changes/flagger", ev("Succeeded", "bbbb", "Promotion completed! Scaling down checkout.shop"))
		require.Equal(t, "finished", res.Action)
		require.Equal(t, id, res.Change.ID)
		require.Equal(t, "bbbb", res.Change.Version)
		res = post("/api/v1/changes/flagger", ev("Succeeded", "bbbb", "Promotion completed! Scaling down checkout.shop"))
		require.Equal(t, "ignored", res.Action)

		// Argo Rollouts: revision 8 replaces 7 mid-rollout, with its commit.
		post("/api/v1/changes/argo-rollouts", `{"rollout": "pay", "namespace": "shop", "phase": "Progressing", "revision": "7", "commit": "c7", "commit_time": "2026-12-02T11:00:00Z"}`)
		post("/api/v1/changes/argo-rollouts", `{"rollout": "pay", "namespace": "shop", "phase": "Progressing", "revision": "8", "commit": "c8", "commit_time": "2026-12-02T12:00:00Z"}`)
		e.clk.Advance(10 * time.Minute)
		res = post("/api/v1/changes/argo-rollouts", `{"rollout": "pay", "namespace": "shop", "phase": "Healthy", "revision": "8", "commit": "c8", "commit_time": "2026-12-02T12:00:00Z"}`)
		require.Equal(t, "finished", res.Action)
		require.Equal(t, "8", res.Change.Version)
		require.Equal(t, "c8", res.Change.Commit)
		require.InDelta(t, (40 * time.Minute).Seconds(), *res.Change.LeadTime, 1e-9)

		require.NoError(t, promtest.GatherAndCompare(e.reg, strings.NewReader(`
# HELP sre_deployments_total Changes finished, by kind (deploy, config, infra) and result: succeeded, failed, rolled_back, refused (the deploy gate denied it; it did not ship).
# TYPE sre_deployments_total counter
sre_deployments_total{kind="config",result="failed",service="checkout"} 0
sre_deployments_total{kind="deploy",result="failed",service="checkout"} 0
sre_deployments_total{kind="infra",result="failed",service="checkout"} 0
sre_deployments_total{kind="config",result="refused",service="checkout"} 0
sre_deployments_total{kind="deploy",result="refused",service="checkout"} 0
sre_deployments_total{kind="infra",result="refused",service="checkout"} 0
sre_deployments_total{kind="config",result="rolled_back",service="checkout"} 0
sre_deployments_total{kind="deploy",result="rolled_back",service="checkout"} 0
sre_deployments_total{kind="infra",result="rolled_back",service="checkout"} 0
sre_deployments_total{kind="config",result="succeeded",service="checkout"} 0
sre_deployments_total{kind="deploy",result="succeeded",service="checkout"} 2
sre_deployments_total{kind="infra",result="succeeded",service="checkout"} 0
sre_deployments_total{kind="config",result="failed",service="pay"} 0
sre_deployments_total{kind="deploy",result="failed",service="pay"} 0
sre_deployments_total{kind="infra",result="failed",service="pay"} 0
sre_deployments_total{kind="config",result="refused",service="pay"} 0
sre_deployments_total{kind="deploy",result="refused",service="pay"} 0
sre_deployments_total{kind="infra",result="refused",service="pay"} 0
sre_deployments_total{kind="config",result="rolled_back",service="pay"} 0
sre_deployments_total{kind="deploy",result="rolled_back",service="pay"} 0
sre_deployments_total{kind="infra",result="rolled_back",service="pay"} 0
sre_deployments_total{kind="config",result="succeeded",service="pay"} 0
sre_deployments_total{kind="deploy",result="succeeded",service="pay"} 1
sre_deployments_total{kind="infra",result="succeeded",service="pay"} 0
`), "sre_deployments_total"))
	})
}

// A deploy that failed is then rolled back: finishing a failed change as
// rolled_back is allowed (no other final outcome changes), records when
// it was rolled back, and the change counts once in the DORA measures:
// one failed change, one rollback, one time to restore, and no counter
// goes down. Argo Rollouts' Degraded then aborted is the same change.
func TestFailedThenRolledBack(t *testing.T) {
	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, change.DefaultConfig)
		srv := serve(t, e)

		code, a := call(t, srv, http.MethodPost, "/api/v1/changes", `{"service": "pay", "outcome": "failed", "commit": "c1"}`)
		require.Equal(t, http.StatusCreated, code, a.Error)
		failed := decode[change.Change](t, a)
		require.True(t, t0.Equal(*failed.FinishedAt))
		// The failure pages: an incident linked to the change, resolved
		// before the rollback is recorded.
		e.clk.Advance(5 * time.Minute)
		inc := e.open(t, "pay")
		e.clk.Advance(20 * time.Minute)
		_, err := e.incidents.Resolve(ctx, inc.ID, "alice", "rolled back")
		require.NoError(t, err)
		e.clk.Advance(5 * time.Minute)
		metrics := func() string {
			t.Helper()
			code, a := call(t, srv, http.MethodGet, "/api/v1/changes?service=pay", "")
			require.Equal(t, http.StatusOK, code)
			require.Len(t, decode[change.List](t, a).Changes, 1)
			return `
# HELP sre_change_failure_ratio Change failure rate: failed changes / changes that shipped, among those finished within changes.dora_window (7d by default); 0 without changes in the window.
# TYPE sre_change_failure_ratio gauge
sre_change_failure_ratio{service="pay"} 1
# HELP sre_change_failures_total Changes that failed: failed, rolled back, or linked to an incident that opened within changes.incident_link_window after them.
# TYPE sre_change_failures_total counter
sre_change_failures_total{service="pay"} 1
# HELP sre_deployments_total Changes finished, by kind (deploy, config, infra) and result: succeeded, failed, rolled_back, refused (the deploy gate denied it; it did not ship).
# TYPE sre_deployments_total counter
sre_deployments_total{kind="config",result="failed",service="pay"} 0
sre_deployments_total{kind="deploy",result="failed",service="pay"} 1
sre_deployments_total{kind="infra",result="failed",service="pay"} 0
sre_deployments_total{kind="config",result="refused",service="pay"} 0
sre_deployments_total{kind="deploy",result="refused",service="pay"} 0
sre_deployments_total{kind="infra",result="refused",service="pay"} 0
sre_deployments_total{kind="config",result="rolled_back",service="pay"} 0
sre_deployments_total{kind="deploy",result="rolled_back",service="pay"} 0
sre_deployments_total{kind="infra",result="rolled_back",service="pay"} 0
sre_deployments_total{kind="config",result="succeeded",service="pay"} 0
sre_deployments_total{kind="deploy",result="succeeded",service="pay"} 0
sre_deployments_total{kind="infra",result="succeeded",service="pay"} 0
`
		}
		before := metrics()
		require.NoError(t, promtest.GatherAndCompare(e.reg, strings.NewReader(before+`# HELP sre_rollbacks_total Changes rolled back: the rolled_back result, and the changes that failed and were rolled back later (those stay under result="failed" of sre_deployments_total, the outcome they finished with, so that no counter goes down).
# TYPE sre_rollbacks_total counter
sre_rollbacks_total{service="pay"} 0
`), change.MetricFailureRatio, change.MetricFailures, change.MetricDeployments, change.MetricRollbacks))

		path := fmt.Sprintf("/api/v1/changes/%d/finish", failed.ID)
		code, a = call(t, srv, http.MethodPost, path, `{"outcome": "rolled_back"}`)
		require.Equal(t, http.StatusOK, code, a.Error)
		c := decode[change.Change](t, a)
		require.Equal(t, failed.ID, c.ID)
		require.Equal(t, change.RolledBack, c.Outcome)
		require.True(t, c.Failed)
		require.True(t, t0.Equal(*c.FinishedAt), c.FinishedAt)
		require.NotNil(t, c.RolledBackAt)
		require.True(t, t0.Add(30*time.Minute).Equal(*c.RolledBackAt), c.RolledBackAt)
		got, err := e.changes.Get(ctx, c.ID)
		require.NoError(t, err)
		require.Equal(t, change.RolledBack, got.Outcome)
		require.True(t, t0.Add(30*time.Minute).Equal(*got.RolledBackAt), got.RolledBackAt)
		require.Len(t, got.Incidents, 1)

		// Again: a no-op; any other outcome after it: 409.
		e.clk.Advance(time.Minute)
		code, a = call(t, srv, http.MethodPost, path, `{"outcome": "rolled_back"}`)
		require.Equal(t, http.StatusOK, code, a.Error)
		require.True(t, t0.Add(30*time.Minute).Equal(*decode[change.Change](t, a).RolledBackAt))
		for _, o := range []string{"failed", "succeeded"} {
			code, a = call(t, srv, http.MethodPost, path, `{"outcome": "`+o+`"}`)
			require.Equal(t, http.StatusConflict, code, o)
			require.Equal(t, fmt.Sprintf("change already finished: change %d is rolled_back", c.ID), a.Error)
		}

		// Counted once: the failed count stays, the rollback counts, the
		// restore time is the incident's alone.
		require.NoError(t, promtest.GatherAndCompare(e.reg, strings.NewReader(metrics()+`# HELP sre_rollbacks_total Changes rolled back: the rolled_back result, and the changes that failed and were rolled back later (those stay under result="failed" of sre_deployments_total, the outcome they finished with, so that no counter goes down).
# TYPE sre_rollbacks_total counter
sre_rollbacks_total{service="pay"} 1
`), change.MetricFailureRatio, change.MetricFailures, change.MetricDeployments, change.MetricRollbacks))
		ms, err := e.changes.Metrics(ctx)
		require.NoError(t, err)
		var pay change.ServiceMetrics
		for _, m := range ms {
			if m.Service == "pay" {
				pay = m
			}
		}
		require.Equal(t, 1, pay.Rollbacks)
		require.Equal(t, map[change.Outcome]int{change.Failed: 1}, pay.Results)
		require.Equal(t, uint64(1), pay.RestoreTime.Count)
		require.InDelta(t, (20 * time.Minute).Seconds(), pay.RestoreTime.Sum, 1e-9)

		// Argo Rollouts: the rollout of revision 5 Degraded (failed), then
		// aborted (rolled back): one change, rolled back; a repeat records
		// nothing.
		post := func(body string) (int, change.NotificationResult) {
			t.Helper()
			code, a := call(t, srv, http.MethodPost, "/api/v1/changes/argo-rollouts", body)
			require.Less(t, code, 300, a.Error)
			return code, decode[change.NotificationResult](t, a)
		}
		post(`{"rollout": "cart", "namespace": "shop", "phase": "Progressing", "revision": "5"}`)
		_, res := post(`{"rollout": "cart", "namespace": "shop", "phase": "Degraded", "revision": "5"}`)
		require.Equal(t, change.Failed, res.Change.Outcome)
		id := res.Change.ID
		e.clk.Advance(10 * time.Minute)
		code, res = post(`{"rollout": "cart", "namespace": "shop", "phase": "Degraded", "aborted": "true", "revision": "5"}`)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "finished", res.Action)
		require.Equal(t, id, res.Change.ID)
		require.Equal(t, change.RolledBack, res.Change.Outcome)
		require.NotNil(t, res.Change.RolledBackAt)
		_, res = post(`{"rollout": "cart", "namespace": "shop", "phase": "Degraded", "aborted": "true", "revision": "5"}`)
		require.Equal(t, "ignored", res.Action)
		code, a = call(t, srv, http.MethodGet, "/api/v1/changes?service=cart", "")
		require.Equal(t, http.StatusOK, code)
		require.Len(t, decode[change.List](t, a).Changes, 1)

		// Only a failed change may be rolled back later.
		code, a = call(t, srv, http.MethodPost, "/api/v1/changes", `{"service": "web"}`)
		require.Equal(t, http.StatusCreated, code, a.Error)
		ok := decode[change.Change](t, a)
		code, a = call(t, srv, http.MethodPost, fmt.Sprintf("/api/v1/changes/%d/finish", ok.ID), `{"outcome": "rolled_back"}`)
		require.Equal(t, http.StatusConflict, code)
		require.Equal(t, fmt.Sprintf("change already finished: change %d is succeeded", ok.ID), a.Error)
	})
}

// Flagger posts Succeeded for a canary it only initialised (no new
// revision) or that is suspended, as for one it promoted. Without a change
// in progress, only a promotion ("Promotion completed!", also with
// skipAnalysis) is a deployment; the others record nothing.
func TestFlaggerSucceededWithoutPromotion(t *testing.T) {
	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, change.DefaultConfig)
		e.clk.Set(time.Date(2026, 12, 2, 12, 30, 0, 0, time.UTC))
		srv := serve(t, e)
		ev := func(name, msg string) string {
			meta := `"eventType": "Normal", "timestamp": "1796213400000"`
			if msg != "" {
				meta = `"eventMessage": "` + msg + `", ` + meta
			}
			return `{"name": "` + name + `", "namespace": "shop", "phase": "Succeeded", "checksum": "5f7c9d", "metadata": {` + meta + `}}`
		}
		for _, tc := range []struct{ name, msg, reason string }{
			{"checkout", "Initialization done! checkout.shop",
				`no change of flagger:shop/checkout in progress and the event ("Initialization done! checkout.shop") is not a promotion: not a deployment`},
			{"cart", "skipping canary run as object is suspended",
				`no change of flagger:shop/cart in progress and the event ("skipping canary run as object is suspended") is not a promotion: not a deployment`},
			{"search", "", `no change of flagger:shop/search in progress and the event ("") is not a promotion: not a deployment`},
		} {
			code, a := call(t, srv, http.MethodPost, "/api/v1/changes/flagger", ev(tc.name, tc.msg))
			require.Equal(t, http.StatusOK, code, a.Error)
			res := decode[change.NotificationResult](t, a)
			require.Equal(t, "ignored", res.Action, tc.name)
			require.Equal(t, tc.reason, res.Reason)
			require.Nil(t, res.Change)
		}
		code, a := call(t, srv, http.MethodGet, "/api/v1/changes", "")
		require.Equal(t, http.StatusOK, code)
		require.Empty(t, decode[change.List](t, a).Changes)

		// A promotion whose start sred did not see is a deployment, as is
		// one with skipAnalysis (no Progressing event at all).
		for _, tc := range []struct{ name, msg string }{
			{"checkout", "Promotion completed! Scaling down checkout.shop"},
			{"cart", "Promotion completed! Canary analysis was skipped for cart.shop"},
		} {
			code, a = call(t, srv, http.MethodPost, "/api/v1/changes/flagger", ev(tc.name, tc.msg))
			require.Equal(t, http.StatusCreated, code, a.Error)
			res := decode[change.NotificationResult](t, a)
			require.Equal(t, "recorded", res.Action)
			require.Equal(t, change.Succeeded, res.Change.Outcome)
			require.Equal(t, tc.name, res.Change.Service)
		}
		// Once a revision is in progress, its Succeeded finishes it.
		_, a = call(t, srv, http.MethodPost, "/api/v1/changes/flagger", strings.Replace(strings.Replace(ev("search", "New revision detected! Scaling up search.shop"),
			`"Succeeded"`, `"Progressing"`, 1), "5f7c9d", "6a8d0e", 1))
		require.Equal(t, "recorded", decode[change.NotificationResult](t, a).Action)
		_, a = call(t, srv, http.MethodPost, "/api/v1/changes/flagger", strings.Replace(ev("search", "Promotion completed! Scaling down search.shop"), "5f7c9d", "6a8d0e", 1))
		require.Equal(t, "finished", decode[change.NotificationResult](t, a).Action)

		require.NoError(t, promtest.GatherAndCompare(e.reg, strings.NewReader(`
# HELP sre_deployments_total Changes finished, by kind (deploy, config, infra) and result: succeeded, failed, rolled_back, refused (the deploy gate denied it; it did not ship).
# TYPE sre_deployments_total counter
sre_deployments_total{kind="config",result="failed",service="cart"} 0
sre_deployments_total{kind="deploy",result="failed",service="cart"} 0
sre_deployments_total{kind="infra",result="failed",service="cart"} 0
sre_deployments_total{kind="config",result="refused",service="cart"} 0
sre_deployments_total{kind="deploy",result="refused",service="cart"} 0
sre_deployments_total{kind="infra",result="refused",service="cart"} 0
sre_deployments_total{kind="config",result="rolled_back",service="cart"} 0
sre_deployments_total{kind="deploy",result="rolled_back",service="cart"} 0
sre_deployments_total{kind="infra",result="rolled_back",service="cart"} 0
sre_deployments_total{kind="config",result="succeeded",service="cart"} 0
sre_deployments_total{kind="deploy",result="succeeded",service="cart"} 1
sre_deployments_total{kind="infra",result="succeeded",service="cart"} 0
sre_deployments_total{kind="config",result="failed",service="checkout"} 0
sre_deployments_total{kind="deploy",result="failed",service="checkout"} 0
sre_deployments_total{kind="infra",result="failed",service="checkout"} 0
sre_deployments_total{kind="config",result="refused",service="checkout"} 0
sre_deployments_total{kind="deploy",result="refused",service="checkout"} 0
sre_deployments_total{kind="infra",result="refused",service="checkout"} 0
sre_deployments_total{kind="config",result="rolled_back",service="checkout"} 0
sre_deployments_total{kind="deploy",result="rolled_back",service="checkout"} 0
sre_deployments_total{kind="infra",result="rolled_back",service="checkout"} 0
sre_deployments_total{kind="config",result="succeeded",service="checkout"} 0
sre_deployments_total{kind="deploy",result="succeeded",service="checkout"} 1
sre_deployments_total{kind="infra",result="succeeded",service="checkout"} 0
sre_deployments_total{kind="config",result="failed",service="search"} 0
sre_deployments_total{kind="deploy",result="failed",service="search"} 0
sre_deployments_total{kind="infra",result="failed",service="search"} 0
sre_deployments_total{kind="config",result="refused",service="search"} 0
sre_deployments_total{kind="deploy",result="refused",service="search"} 0
sre_deployments_total{kind="infra",result="refused",service="search"} 0
sre_deployments_total{kind="config",result="rolled_back",service="search"} 0
sre_deployments_total{kind="deploy",result="rolled_back",service="search"} 0
sre_deployments_total{kind="infra",result="rolled_back",service="search"} 0
sre_deployments_total{kind="config",result="succeeded",service="search"} 0
sre_deployments_total{kind="deploy",result="succeeded",service="search"} 1
sre_deployments_total{kind="infra",result="succeeded",service="search"} 0
`), "sre_deployments_total"))
	})
}

// TestNotificationsRefuseAmbiguousKeys: the Flagger, Argo Rollouts and
// Flux notifications are read leniently (fields those tools add are
// ignored), but a key given twice, where a proxy in front of sred may
// have read the first and encoding/json keeps the last (or merges two
// maps), or a key naming a field only without regard to case ("NAME",
// which encoding/json takes for "name"), is answered 400 naming the key,
// as the rest of the API answers it; nothing is recorded. A value of the
// wrong type is named by its path, and an empty body says so.
func TestNotificationsRefuseAmbiguousKeys(t *testing.T) {
	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, change.DefaultConfig)
		e.clk.Set(time.Date(2026, 12, 2, 12, 30, 0, 0, time.UTC))
		srv := serve(t, e)
		for _, tc := range []struct{ path, body, err string }{
			{"/api/v1/changes/flagger", `{"name": "checkout", "namespace": "shop", "name": "payments", "phase": "Progressing"}`,
				`invalid JSON body: the JSON body: key "name" given twice`},
			{"/api/v1/changes/flagger", `{"name": "checkout", "namespace": "shop", "phase": "Progressing", "metadata": {"service": "checkout"}, "metadata": {"service": "payments"}}`,
				`invalid JSON body: the JSON body: key "metadata" given twice`},
			{"/api/v1/changes/flagger", `{"name": "checkout", "namespace": "shop", "phase": "Progressing", "metadata": {"service": "checkout", "service": "payments"}}`,
				`invalid JSON body: metadata: key "service" given twice`},
			{"/api/v1/changes/flagger", `{"NAME": "checkout", "namespace": "shop", "phase": "Progressing"}`,
				`invalid JSON body: the JSON body: unknown field "NAME": the field is "name" (field names are case-sensitive)`},
			{"/api/v1/changes/flagger", `{"name": "checkout", "namespace": "shop", "phase": "Progressing", "metadata": {"service": 1}}`,
				`invalid JSON body: metadata.service: want a string, got a number`},
			{"/api/v1/changes/flagger", ``, `invalid JSON body: empty body: want a JSON object`},
			{"/api/v1/changes/argo-rollouts", `{"rollout": "checkout", "namespace": "shop", "phase": "Progressing", "service": "checkout", "service": "payments"}`,
				`invalid JSON body: the JSON body: key "service" given twice`},
			{"/api/v1/changes/argo-rollouts", `{"Rollout": "checkout", "namespace": "shop", "phase": "Progressing"}`,
				`invalid JSON body: the JSON body: unknown field "Rollout": the field is "rollout" (field names are case-sensitive)`},
			{"/api/v1/changes/flux", strings.Replace(fixture(t, "flux-succeeded.json"), `"name": "checkout",`, `"name": "checkout", "name": "payments",`, 1),
				`invalid JSON body: involvedObject: key "name" given twice`},
			{"/api/v1/changes/flux", strings.Replace(fixture(t, "flux-succeeded.json"), `"involvedObject"`, `"InvolvedObject"`, 1),
				`invalid JSON body: the JSON body: unknown field "InvolvedObject": the field is "involvedObject" (field names are case-sensitive)`},
		} {
			code, a := call(t, srv, http.MethodPost, tc.path, tc.body)
			require.Equal(t, http.StatusBadRequest, code, "%s %s: %s", tc.path, tc.body, a.Error)
			require.Equal(t, tc.err, a.Error, "%s %s", tc.path, tc.body)
		}
		code, a := call(t, srv, http.MethodGet, "/api/v1/changes", "")
		require.Equal(t, http.StatusOK, code, a.Error)
		require.Empty(t, decode[change.List](t, a).Changes, "refused notifications record nothing")

		// Fields the tools add are ignored, as before.
		code, a = call(t, srv, http.MethodPost, "/api/v1/changes/flagger",
			`{"name": "checkout", "namespace": "shop", "phase": "Progressing", "checksum": "abc", "addedLater": {"x": 1}}`)
		require.Equal(t, http.StatusCreated, code, a.Error)
		require.Equal(t, "checkout", decode[change.NotificationResult](t, a).Change.Service)
	})
}

// TestNotificationsCutEchoedValues: a notification the tools' hooks ignore
// names what it ignored (a phase, a Flux reason, a Flagger event message, a
// canary's name) cut at 64 bytes ending with "…", never a value of
// thousands of bytes whole, and records nothing.
func TestNotificationsCutEchoedValues(t *testing.T) {
	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, change.DefaultConfig)
		e.clk.Set(time.Date(2026, 12, 2, 12, 30, 0, 0, time.UTC))
		srv := serve(t, e)
		long := strings.Repeat("q", 5000)
		cut := strings.Repeat("q", 61) + "…"
		flux := strings.Replace(fixture(t, "flux-succeeded.json"), `"reason": "ReconciliationSucceeded"`, `"reason": "`+long+`"`, 1)
		require.Contains(t, flux, long, "the Flux fixture's reason is replaced")
		flux = strings.Replace(flux, `"revision"`, `"not-revision"`, 1)
		for _, tc := range []struct{ path, body, reason string }{
			{"/api/v1/changes/flagger", `{"name": "checkout", "namespace": "shop", "phase": "` + long + `"}`,
				`phase "` + cut + `" records nothing`},
			{"/api/v1/changes/argo-rollouts", `{"rollout": "checkout", "namespace": "shop", "phase": "` + long + `"}`,
				`phase "` + cut + `" records nothing`},
			{"/api/v1/changes/flux", flux,
				`event ` + cut + ` without a revision or outcome records nothing`},
			{"/api/v1/changes/flagger", `{"name": "` + strings.Repeat("q", 253) + `", "namespace": "shop", "phase": "Succeeded", "metadata": {"service": "checkout", "eventMessage": "` + long + `"}}`,
				`no change of flagger:shop/` + strings.Repeat("q", 48) + `… in progress and the event ("` + cut + `") is not a promotion: not a deployment`},
		} {
			code, a := call(t, srv, http.MethodPost, tc.path, tc.body)
			require.Equal(t, http.StatusOK, code, "%s: %.200s", tc.path, a.Error)
			res := decode[change.NotificationResult](t, a)
			require.Equal(t, "ignored", res.Action, tc.path)
			require.Equal(t, tc.reason, res.Reason, tc.path)
		}
		code, a := call(t, srv, http.MethodGet, "/api/v1/changes", "")
		require.Equal(t, http.StatusOK, code, a.Error)
		require.Empty(t, decode[change.List](t, a).Changes, "ignored notifications record nothing")
	})
}

// A notification's time outside the years 1 to 9999 (Flagger's timestamp
// in Unix milliseconds, -99999999999999999; Flux's RFC 3339 year 0000) is
// not the change's: it is recorded at the time it arrived, with a warning.
// Before, it was stored: the answer was a 500 (year -3166904 cannot be
// written as JSON) after the change was recorded, and so was every list of
// changes holding it.
func TestNotificationTimeOutOfRange(t *testing.T) {
	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, change.DefaultConfig)
		now := time.Date(2026, 12, 2, 12, 30, 0, 0, time.UTC)
		e.clk.Set(now)
		srv := serve(t, e)
		for _, tc := range []struct{ path, body, warning string }{
			{"/api/v1/changes/flagger", `{"name": "a", "namespace": "shop", "phase": "Failed", "metadata": {"timestamp": "-99999999999999999"}}`,
				"metadata.timestamp: time -3166904-02-24T14:13:20.001Z is outside the years 1 to 9999 UTC: recorded at the time the notification arrived"},
			{"/api/v1/changes/flagger", `{"name": "b", "namespace": "shop", "phase": "Progressing", "metadata": {"timestamp": "-62135596800001"}}`,
				"metadata.timestamp: time 0000-12-31T23:59:59.999Z is outside the years 1 to 9999 UTC: recorded at the time the notification arrived"},
			{"/api/v1/changes/flagger", `{"name": "c", "namespace": "shop", "phase": "Progressing", "metadata": {"timestamp": "yesterday"}}`,
				`metadata.timestamp "yesterday" is not Unix milliseconds: recorded at the time the notification arrived`},
			{"/api/v1/changes/flux", `{"involvedObject": {"kind": "Kustomization", "name": "n", "namespace": "x"}, "severity": "info", "reason": "ReconciliationSucceeded",
				"timestamp": "0000-01-01T00:00:00Z", "metadata": {"revision": "main@sha1:abc"}}`,
				"timestamp: time 0000-01-01T00:00:00Z is outside the years 1 to 9999 UTC: recorded at the time the notification arrived"},
		} {
			code, a := call(t, srv, http.MethodPost, tc.path, tc.body)
			require.Equal(t, http.StatusCreated, code, a.Error)
			res := decode[change.NotificationResult](t, a)
			require.Equal(t, []string{tc.warning}, res.Warnings)
			require.True(t, now.Equal(res.Change.StartedAt), res.Change.StartedAt)
		}
		code, a := call(t, srv, http.MethodGet, "/api/v1/changes", "")
		require.Equal(t, http.StatusOK, code, a.Error)
		require.Len(t, decode[change.List](t, a).Changes, 4)
	})
}

// The notification routes take ?service= alone, once, and the list its
// parameters once each: a misspelt ?servce=checkout recorded the change
// under the rollout's name, and ?service=a&service=b read as a alone.
// Refused with a 400 naming the parameter, nothing recorded.
func TestChangeParamsRefused(t *testing.T) {
	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, change.DefaultConfig)
		e.clk.Set(time.Date(2026, 12, 2, 12, 30, 0, 0, time.UTC))
		srv := serve(t, e)
		argo := `{"rollout": "checkout", "namespace": "shop", "phase": "Progressing", "revision": "7"}`
		flux := `{"involvedObject": {"kind": "Kustomization", "name": "n", "namespace": "x"}, "severity": "info", "reason": "ReconciliationSucceeded", "metadata": {"revision": "main@sha1:abc"}}`
		for _, tc := range []struct{ method, path, body, err string }{
			{http.MethodPost, "/api/v1/changes/flagger?servce=checkout", fixture(t, "flagger-progressing.json"), `unknown parameter "servce" (want service)`},
			{http.MethodPost, "/api/v1/changes/argo-rollouts?service=a&service=b", argo, `parameter "service" given 2 times: give it once`},
			{http.MethodPost, "/api/v1/changes/flux?service=x&token=y", flux, `unknown parameter "token" (want service)`},
			{http.MethodGet, "/api/v1/changes?service=a&service=b", "", `parameter "service" given 2 times: give it once`},
		} {
			code, a := call(t, srv, tc.method, tc.path, tc.body)
			require.Equal(t, http.StatusBadRequest, code, tc.path)
			require.Equal(t, tc.err, a.Error, tc.path)
		}
		code, a := call(t, srv, http.MethodGet, "/api/v1/changes", "")
		require.Equal(t, http.StatusOK, code, a.Error)
		require.Empty(t, decode[change.List](t, a).Changes)
	})
}

// An Argo Rollouts notification's aborted is true or false (or their
// strings, "" and "<no value>" for false): another value is a 400 naming
// it, and nothing is recorded. Before, "yes", "True" or 1 read as false,
// and an aborted rollout was recorded by its phase (Degraded: failed)
// instead of as rolled back.
func TestArgoAbortedValues(t *testing.T) {
	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, change.DefaultConfig)
		e.clk.Set(time.Date(2026, 12, 2, 12, 30, 0, 0, time.UTC))
		srv := serve(t, e)
		for _, tc := range []struct{ aborted, err string }{
			{`"yes"`, `invalid JSON body: aborted: want true or false, got "yes"`},
			{`"True"`, `invalid JSON body: aborted: want true or false, got "True"`},
			{`1`, `invalid JSON body: aborted: want true or false, got 1`},
		} {
			code, a := call(t, srv, http.MethodPost, "/api/v1/changes/argo-rollouts",
				`{"rollout": "cart", "namespace": "shop", "phase": "Degraded", "aborted": `+tc.aborted+`, "revision": "5"}`)
			require.Equal(t, http.StatusBadRequest, code, tc.aborted)
			require.Equal(t, tc.err, a.Error)
		}
		code, a := call(t, srv, http.MethodGet, "/api/v1/changes", "")
		require.Equal(t, http.StatusOK, code, a.Error)
		require.Empty(t, decode[change.List](t, a).Changes)
		for _, aborted := range []string{`false`, `"false"`, `""`, `"<no value>"`, `null`} {
			code, a = call(t, srv, http.MethodPost, "/api/v1/changes/argo-rollouts",
				`{"rollout": "cart", "namespace": "shop", "phase": "Progressing", "aborted": `+aborted+`, "revision": "5"}`)
			require.Less(t, code, 300, "%s: %s", aborted, a.Error)
		}
		code, a = call(t, srv, http.MethodPost, "/api/v1/changes/argo-rollouts",
			`{"rollout": "cart", "namespace": "shop", "phase": "Degraded", "aborted": true, "revision": "5"}`)
		require.Equal(t, http.StatusOK, code, a.Error)
		require.Equal(t, change.RolledBack, decode[change.NotificationResult](t, a).Change.Outcome)
	})
}

// The since and until of GET /api/v1/changes are RFC 3339 or Unix seconds
// from 1970-01-02 to 9999, until after since: since=0 or since=-1 parse
// as Unix seconds (1970), and a reversed window answered an empty list as
// if nothing had changed. Refused with a 400 naming the value.
func TestChangeTimeParams(t *testing.T) {
	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, change.DefaultConfig)
		e.clk.Set(time.Date(2026, 12, 2, 12, 30, 0, 0, time.UTC))
		srv := serve(t, e)
		code, a := call(t, srv, http.MethodPost, "/api/v1/changes/argo-rollouts",
			`{"rollout": "cart", "namespace": "shop", "phase": "Progressing", "revision": "5"}`)
		require.Less(t, code, 300, a.Error)
		const want = ": want an RFC 3339 time or Unix seconds from 1970-01-02T00:00:00Z to 9999-12-31T23:59:59Z"
		for _, tc := range []struct {
			query string
			code  int
			err   string
			n     int
		}{
			{"since=0", 400, `since: "0" (1970-01-01T00:00:00Z) is before 1970-01-02T00:00:00Z` + want, 0},
			{"until=-1", 400, `until: "-1" (1969-12-31T23:59:59Z) is before 1970-01-02T00:00:00Z` + want, 0},
			{"since=1e400", 400, `since: "1e400" is after 9999-12-31T23:59:59Z` + want, 0},
			{"until=-Inf", 400, `until: -Inf is not a finite number`, 0},
			{"since=2026-12-03T00:00:00Z&until=2026-12-01T00:00:00Z", 400, `until 2026-12-01T00:00:00Z must be after since 2026-12-03T00:00:00Z`, 0},
			{"since=1764547200&until=1764547200", 400, `until 2025-12-01T00:00:00Z must be after since 2025-12-01T00:00:00Z`, 0},
			{"since=2026-12-01T00:00:00Z&until=2026-12-03T00:00:00Z", 200, "", 1},
			{"since=86400", 200, "", 1},
			{"since=", 200, "", 1},
		} {
			code, a := call(t, srv, http.MethodGet, "/api/v1/changes?"+tc.query, "")
			require.Equal(t, tc.code, code, "%s: %s", tc.query, a.Error)
			require.Equal(t, tc.err, a.Error, tc.query)
			if code == 200 {
				require.Len(t, decode[change.List](t, a).Changes, tc.n, tc.query)
			}
		}
	})
}

// TestChangeRecordedAfterTheFact: a change recorded as finished that says
// it started more than a day ago needs its finished_at (a CI replay, a
// history imported): recorded as finished now, it counted as a
// deployment of today in sre_deployment_frequency_per_day, with a lead
// time of weeks. With its finished_at it counts when it finished: out of
// the window here. A change that started a few hours ago and is recorded
// at the end of its job still finishes now.
func TestChangeRecordedAfterTheFact(t *testing.T) {
	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, change.DefaultConfig)
		srv := serve(t, e)
		ctx := context.Background()
		started := t0.Add(-21 * 24 * time.Hour)
		old := fmt.Sprintf(`{"service": "checkout", "commit": "3f2c1ab", "commit_time": %q, "started_at": %q`,
			started.Add(-time.Hour).Format(time.RFC3339), started.Format(time.RFC3339))
		for _, outcome := range []string{"", "succeeded", "failed", "rolled_back"} {
			body := old + `, "outcome": "` + outcome + `"}`
			code, a := call(t, srv, http.MethodPost, "/api/v1/changes", body)
			require.Equal(t, http.StatusBadRequest, code, body)
			require.Equal(t, "started_at 2026-11-10T12:00:00Z is more than 24 hours ago and finished_at is not given: "+
				"give the change's finished_at (recorded as finished now, it would count as a deployment of today, with a lead time to now)", a.Error)
		}
		cs, err := e.changes.List(ctx, change.Query{})
		require.NoError(t, err)
		require.Empty(t, cs)

		code, a := call(t, srv, http.MethodPost, "/api/v1/changes", old+fmt.Sprintf(`, "finished_at": %q}`, started.Add(10*time.Minute).Format(time.RFC3339)))
		require.Equal(t, http.StatusCreated, code, a.Error)
		c := decode[change.Change](t, a)
		require.Equal(t, started.Add(10*time.Minute), *c.FinishedAt)
		require.InDelta(t, (70 * time.Minute).Seconds(), *c.LeadTime, 1e-9)
		// A rollout that has been under way for weeks finishes later.
		code, a = call(t, srv, http.MethodPost, "/api/v1/changes", `{"service": "search", "outcome": "in_progress", "started_at": "2026-11-10T12:00:00Z"}`)
		require.Equal(t, http.StatusCreated, code, a.Error)
		// A CI job records its deploy of two hours at its end.
		code, a = call(t, srv, http.MethodPost, "/api/v1/changes", fmt.Sprintf(`{"service": "checkout", "started_at": %q}`, t0.Add(-2*time.Hour).Format(time.RFC3339)))
		require.Equal(t, http.StatusCreated, code, a.Error)
		require.Equal(t, t0, *decode[change.Change](t, a).FinishedAt)

		ms, err := e.changes.Metrics(ctx)
		require.NoError(t, err)
		for _, m := range ms {
			if m.Service == "checkout" {
				require.InDelta(t, 1.0/7, m.PerDay, 1e-9, "the deploy of today alone")
				require.Equal(t, 2, m.Results[change.Succeeded])
			}
		}
	})
}

// TestRetryWithoutKey: a request without a key that says when its change
// started is a retry of the change recorded before with the same service,
// kind, source, commit, version, description and started_at (a CI step
// retried after a timeout): it records nothing and answers that change
// (200), where it recorded a second deployment. Another commit, or
// another start, is another change; without a key nor started_at every
// request is a new change.
func TestRetryWithoutKey(t *testing.T) {
	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, change.DefaultConfig)
		srv := serve(t, e)
		ctx := context.Background()
		body := `{"service": "checkout", "commit": "3f2c1ab", "version": "v2.4.1", "source": "ci", "started_at": "2026-12-01T11:50:00Z"}`
		code, a := call(t, srv, http.MethodPost, "/api/v1/changes", body)
		require.Equal(t, http.StatusCreated, code, a.Error)
		first := decode[change.Change](t, a)
		e.clk.Advance(time.Minute)
		code, a = call(t, srv, http.MethodPost, "/api/v1/changes", body)
		require.Equal(t, http.StatusOK, code, a.Error)
		require.Equal(t, first.ID, decode[change.Change](t, a).ID)
		for _, other := range []string{
			`{"service": "checkout", "commit": "4a5b6c7", "version": "v2.4.2", "source": "ci", "started_at": "2026-12-01T11:50:00Z"}`,
			`{"service": "checkout", "commit": "3f2c1ab", "version": "v2.4.1", "source": "ci", "started_at": "2026-12-01T11:55:00Z"}`,
			`{"service": "checkout", "kind": "config", "commit": "3f2c1ab", "version": "v2.4.1", "source": "ci", "started_at": "2026-12-01T11:50:00Z"}`,
			`{"service": "search", "commit": "3f2c1ab", "version": "v2.4.1", "source": "ci", "started_at": "2026-12-01T11:50:00Z"}`,
			`{"service": "search", "commit": "3f2c1ab", "version": "v2.4.1", "source": "ci", "started_at": "2026-12-01T11:50:00Z", "outcome": "failed"}`,
			`{"service": "checkout", "commit": "3f2c1ab", "version": "v2.4.1", "source": "ci"}`,
			`{"service": "checkout", "commit": "3f2c1ab", "version": "v2.4.1", "source": "ci"}`,
		} {
			code, a = call(t, srv, http.MethodPost, "/api/v1/changes", other)
			require.Equal(t, http.StatusCreated, code, other)
		}
		cs, err := e.changes.List(ctx, change.Query{Service: "checkout"})
		require.NoError(t, err)
		require.Len(t, cs, 6)
		ms, err := e.changes.Metrics(ctx)
		require.NoError(t, err)
		require.Equal(t, "checkout", ms[0].Service)
		require.Equal(t, 6, ms[0].Results[change.Succeeded], "the retry is no second deployment")

		// A failed change rolled back since: its retry answers it.
		failed := `{"service": "batch", "outcome": "failed", "started_at": "2026-12-01T11:40:00Z"}`
		code, a = call(t, srv, http.MethodPost, "/api/v1/changes", failed)
		require.Equal(t, http.StatusCreated, code, a.Error)
		id := decode[change.Change](t, a).ID
		_, err = e.changes.Finish(ctx, id, change.RolledBack)
		require.NoError(t, err)
		code, a = call(t, srv, http.MethodPost, "/api/v1/changes", failed)
		require.Equal(t, http.StatusOK, code, a.Error)
		require.Equal(t, id, decode[change.Change](t, a).ID)
		// Recorded in progress, then as succeeded (instead of finished):
		// not a retry, the success is not lost behind a 200.
		code, a = call(t, srv, http.MethodPost, "/api/v1/changes", `{"service": "batch", "outcome": "in_progress", "started_at": "2026-12-01T11:45:00Z"}`)
		require.Equal(t, http.StatusCreated, code, a.Error)
		code, a = call(t, srv, http.MethodPost, "/api/v1/changes", `{"service": "batch", "started_at": "2026-12-01T11:45:00Z"}`)
		require.Equal(t, http.StatusCreated, code, a.Error)
		require.Equal(t, change.Succeeded, decode[change.Change](t, a).Outcome)
	})
}

// TestNotificationsRefuseNonKubernetesNames: the Flagger, Argo Rollouts
// and Flux notifications are about Kubernetes objects, recorded by
// namespace/name (the ref flagger:<namespace>/<name>, the key
// flux:<kind>/<namespace>/<name>:<revision>). A name or namespace no
// object has was recorded as it came: canary web/api of namespace shop and
// canary api of namespace shop/web were one, the second's Succeeded
// finishing the first's change; a Flux object named a:b took the key of
// another's revision; a newline or ../ went into the service. Each is a
// 400 naming the field, and nothing is recorded.
func TestNotificationsRefuseNonKubernetesNames(t *testing.T) {
	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, change.DefaultConfig)
		e.clk.Set(time.Date(2026, 12, 2, 12, 30, 0, 0, time.UTC))
		srv := serve(t, e)
		flux := func(kind, name, namespace string) string {
			return `{"involvedObject": {"kind": "` + kind + `", "name": "` + name + `", "namespace": "` + namespace + `"}, "severity": "info", "reason": "ReconciliationSucceeded", "metadata": {"revision": "main@sha1:abc"}}`
		}
		for _, tc := range []struct{ path, body, err string }{
			{"/api/v1/changes/flagger", `{"name": "web/api", "namespace": "shop", "phase": "Progressing", "checksum": "v1"}`,
				`flagger event: name "web/api" of the canary is not a Kubernetes name: `},
			{"/api/v1/changes/flagger", `{"name": "api", "namespace": "shop/web", "phase": "Succeeded", "checksum": "v1", "metadata": {"eventMessage": "Promotion completed! Scaling down api.shop"}}`,
				`flagger event: namespace "shop/web" of the canary is not a Kubernetes namespace: `},
			{"/api/v1/changes/flagger", `{"name": "x\ny", "namespace": "shop", "phase": "Progressing"}`,
				`flagger event: name "x\ny" of the canary is not a Kubernetes name: `},
			{"/api/v1/changes/flagger", `{"name": "` + strings.Repeat("n", 254) + `", "namespace": "shop", "phase": "Progressing"}`,
				`flagger event: name and namespace of the canary are Kubernetes names: at most 253 and 63 bytes`},
			{"/api/v1/changes/argo-rollouts", `{"rollout": "checkout/../payments", "namespace": "shop", "phase": "Progressing", "revision": "3"}`,
				`argo rollouts notification: rollout "checkout/../payments" of the rollout is not a Kubernetes name: `},
			{"/api/v1/changes/argo-rollouts", `{"rollout": "checkout", "namespace": "Shop", "phase": "Healthy", "revision": "3"}`,
				`argo rollouts notification: namespace "Shop" of the rollout is not a Kubernetes namespace: `},
			{"/api/v1/changes/flux", flux("Kustomization", "a:b", "x"),
				`flux event: involvedObject.name "a:b" of the involved object is not a Kubernetes name: `},
			{"/api/v1/changes/flux", flux("Kustomization/x", "n", "x"),
				`flux event: involvedObject.kind "Kustomization/x" is not a Kubernetes kind (a letter, then letters and digits, at most 63)`},
		} {
			code, a := call(t, srv, http.MethodPost, tc.path, tc.body)
			require.Equal(t, http.StatusBadRequest, code, "%s %s: %s", tc.path, tc.body, a.Data)
			require.True(t, strings.HasPrefix(a.Error, tc.err), "%s %s: %q, want %q…", tc.path, tc.body, a.Error, tc.err)
		}
		code, a := call(t, srv, http.MethodGet, "/api/v1/changes", "")
		require.Equal(t, http.StatusOK, code, a.Error)
		require.Empty(t, decode[change.List](t, a).Changes, "refused notifications record nothing")

		// The same notifications about Kubernetes objects are recorded.
		code, a = call(t, srv, http.MethodPost, "/api/v1/changes/flagger", `{"name": "web-api", "namespace": "shop", "phase": "Progressing", "checksum": "v1"}`)
		require.Equal(t, http.StatusCreated, code, a.Error)
		code, a = call(t, srv, http.MethodPost, "/api/v1/changes/argo-rollouts", `{"rollout": "checkout", "namespace": "shop", "phase": "Progressing", "revision": "3"}`)
		require.Equal(t, http.StatusCreated, code, a.Error)
		code, a = call(t, srv, http.MethodPost, "/api/v1/changes/flux", flux("HelmRelease", "payments.v2", "flux-system"))
		require.Equal(t, http.StatusCreated, code, a.Error)
	})
}

// TestChangeServiceNames: the service of a change is named as an SLO spec
// names one (limits.NameRule), wherever it comes from: the body of POST
// /api/v1/changes (srectl change record), ?service= of a notification,
// its service field or the name of the object it is about. Any other text
// (a newline, a quote) is a 400 naming the field and the value, and
// records nothing; it was recorded and exported as a label value.
func TestChangeServiceNames(t *testing.T) {
	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, change.DefaultConfig)
		srv := serve(t, e)
		rule := " (" + limits.NameRule + ")"
		long := strings.Repeat("a", 60) + "." + strings.Repeat("b", 10)
		for _, tc := range []struct{ path, body, err string }{
			{"/api/v1/changes", `{"service": "x\ny"}`, `bad request: service: invalid service name "x\ny"` + rule},
			{"/api/v1/changes", `{"service": "a\"b"}`, `bad request: service: invalid service name "a\"b"` + rule},
			{"/api/v1/changes", `{"service": "-api"}`, `bad request: service: invalid service name "-api"` + rule},
			{"/api/v1/changes", `{"service": "team/api"}`, `bad request: service: invalid service name "team/api"` + rule},
			{"/api/v1/changes/flagger?service=x%0Ay", `{"name": "api", "namespace": "shop", "phase": "Progressing"}`,
				`flagger event: ?service=: invalid service name "x\ny"` + rule},
			{"/api/v1/changes/flagger", `{"name": "api", "namespace": "shop", "phase": "Progressing", "metadata": {"service": "a b"}}`,
				`flagger event: metadata.service: invalid service name "a b"` + rule},
			{"/api/v1/changes/flagger", `{"name": "` + long + `", "namespace": "shop", "phase": "Progressing"}`,
				`flagger event: name: invalid service name ` + limits.Quote(long) + rule},
			{"/api/v1/changes/argo-rollouts", `{"rollout": "checkout", "namespace": "shop", "phase": "Progressing", "service": "check'out"}`,
				`argo rollouts notification: service: invalid service name "check'out"` + rule},
			{"/api/v1/changes/flux", `{"involvedObject": {"kind": "Kustomization", "name": "apps", "namespace": "flux-system"}, "severity": "info", "reason": "ReconciliationSucceeded", "metadata": {"revision": "main@sha1:abc", "service": "x\ty"}}`,
				`flux event: metadata.service: invalid service name "x\ty"` + rule},
		} {
			code, a := call(t, srv, http.MethodPost, tc.path, tc.body)
			require.Equal(t, http.StatusBadRequest, code, "%s %s: %s", tc.path, tc.body, a.Data)
			require.Equal(t, tc.err, a.Error, "%s %s", tc.path, tc.body)
		}
		code, a := call(t, srv, http.MethodGet, "/api/v1/changes", "")
		require.Equal(t, http.StatusOK, code, a.Error)
		require.Empty(t, decode[change.List](t, a).Changes, "refused changes record nothing")

		// The names an SLO spec takes are recorded, from each place.
		for _, tc := range []struct{ path, body, want string }{
			{"/api/v1/changes", `{"service": "Checkout_API.v2-eu"}`, "Checkout_API.v2-eu"},
			{"/api/v1/changes/flagger?service=web", `{"name": "api", "namespace": "shop", "phase": "Progressing"}`, "web"},
			{"/api/v1/changes/argo-rollouts", `{"rollout": "checkout", "namespace": "shop", "phase": "Progressing", "revision": "3"}`, "checkout"},
		} {
			code, a := call(t, srv, http.MethodPost, tc.path, tc.body)
			require.Equal(t, http.StatusCreated, code, "%s %s: %s", tc.path, tc.body, a.Error)
			got := decode[change.Change](t, a).Service
			if tc.path != "/api/v1/changes" {
				got = decode[change.NotificationResult](t, a).Change.Service
			}
			require.Equal(t, tc.want, got, tc.body)
		}
	})
}
