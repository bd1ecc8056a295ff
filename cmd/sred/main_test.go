package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/testutil"
)

// goBuild compiles the command pkg (a directory relative to cmd/sred)
// into a new temporary directory as name.
func goBuild(name, pkg string) (string, error) {
	dir, err := os.MkdirTemp("", name+"-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, name)
	out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}

// buildSred compiles cmd/sred once per test binary.
var buildSred = sync.OnceValues(func() (string, error) { return goBuild("sred", ".") })

// storageArgs are the flags of a fresh, empty store of backend: "sqlite"
// (a temporary directory) or "postgres" (a schema of its own).
func storageArgs(t *testing.T, backend string) []string {
	t.Helper()
	switch backend {
	case "sqlite":
		return []string{"--storage.path=" + t.TempDir()}
	case "postgres":
		return []string{"--storage.postgres-url=" + testutil.PostgresSchemaURL(t)}
	}
	t.Fatalf("unknown backend %q", backend)
	return nil
}

// replicaSet is one sred configuration on one PostgreSQL schema: each
// start is one more replica of the same deployment.
type replicaSet struct {
	args []string
	url  string // the PostgreSQL schema's URL
}

// newReplicaSet writes config as dir/sred.yml and takes a PostgreSQL
// schema of its own for the replicas.
func newReplicaSet(t *testing.T, dir, config string) *replicaSet {
	t.Helper()
	cfg := filepath.Join(dir, "sred.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(config), 0o644))
	url := testutil.PostgresSchemaURL(t)
	return &replicaSet{args: []string{"--config.file=" + cfg, "--storage.postgres-url=" + url}, url: url}
}

// start starts one replica (sred built once per test binary) and waits
// until it is ready.
func (r *replicaSet) start(t *testing.T) *sred {
	t.Helper()
	return start(t, r.args...)
}

// pagingConfig is a sred.yml whose api policy pages alice at once on the
// webhook channel (hookURL/sred) for critical incidents; notifications
// goes into the notifications section before the webhook, extra after
// everything.
func pagingConfig(hookURL, notifications, extra string) string {
	return `global:
  incident_id_prefix: INC
escalation:
  severities:
    CRITICAL: {channels: [webhook]}
  policies:
    - name: api
      matchers: ['service="api"']
      levels:
        - {after: 0m, users: [alice]}
oncall:
  users:
    - {name: alice, email: alice@example.com}
notifications:
` + notifications + `  webhook:
    url: ` + hookURL + `/sred
    secret: test-secret
` + extra
}

type sred struct {
	cmd    *exec.Cmd
	url    string
	out    *bytes.Buffer
	mu     *sync.Mutex
	client *http.Client
	// user and password, when set, are sent as basic auth by do.
	user, password string
	// exited is closed when the process has exited and Wait returned.
	exited chan struct{}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (s *sred) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// start runs sred as a real process and waits until /-/ready answers 200.
func start(t *testing.T, args ...string) *sred {
	t.Helper()
	return startWith(t, &sred{url: "http://", client: http.DefaultClient}, args...)
}

// startWith starts sred like start; s carries the scheme ("http://" or
// "https://"), the client and the credentials used to reach it.
func startWith(t *testing.T, s *sred, args ...string) *sred {
	t.Helper()
	bin, err := buildSred()
	require.NoError(t, err)
	port := testutil.FreePort(t)
	s.url = fmt.Sprintf("%s127.0.0.1:%d", s.url, port)
	s.out, s.mu = &bytes.Buffer{}, &sync.Mutex{}
	pre := []string{fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port)}
	if s.user == "" && !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--web.config.file") }) {
		pre = append(pre, "--web.no-auth") // the explicit trial mode
	}
	s.cmd = exec.Command(bin, append(pre, args...)...)
	s.cmd.Stdout = lockedWriter{s.mu, s.out}
	s.cmd.Stderr = lockedWriter{s.mu, s.out}
	require.NoError(t, s.cmd.Start())
	exited := make(chan struct{})
	s.exited = exited
	go func() { _ = s.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("sred output:\n%s", s.output())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("sred exited during start:\n%s", s.output())
		default:
		}
		req, err := http.NewRequest(http.MethodGet, s.url+"/-/ready", nil)
		require.NoError(t, err)
		if s.user != "" {
			req.SetBasicAuth(s.user, s.password)
		}
		if resp, err := s.client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		require.True(t, time.Now().Before(deadline), "sred not ready after 30s:\n%s", s.output())
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *sred) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGKILL))
	// The goroutine of startWith runs Wait: wait for it to return, never
	// reading ProcessState while it writes it.
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("sred did not exit after SIGKILL")
	}
}

func (s *sred) do(t *testing.T, method, path string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(body))
	require.NoError(t, err)
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json") // the API refuses other types
	}
	if s.user != "" {
		req.SetBasicAuth(s.user, s.password)
	}
	resp, err := s.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func payload(t *testing.T, name string) []byte {
	b, err := os.ReadFile(filepath.Join("..", "..", "pkg", "receiver", "testdata", name))
	require.NoError(t, err)
	return b
}

func writeConfig(t *testing.T, path, prefix string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf("global:\n  incident_id_prefix: %s\n", prefix)), 0o644))
}

// incidentIDs lists the incident IDs sred knows.
func incidentIDs(t *testing.T, s *sred) []string {
	t.Helper()
	code, body := s.do(t, http.MethodGet, "/api/v1/incidents", nil)
	require.Equal(t, http.StatusOK, code, body)
	var resp struct {
		Data struct {
			Incidents []struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			} `json:"incidents"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &resp))
	var ids []string
	for _, inc := range resp.Data.Incidents {
		ids = append(ids, inc.ID+" "+inc.Status)
	}
	return ids
}

// TestKillAfterAck posts a delivery, SIGKILLs sred right after the 2xx,
// restarts it on the same storage and finds everything it acknowledged.
func TestKillAfterAck(t *testing.T) {
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "sred.yml")
			writeConfig(t, cfg, "INC")
			args := append([]string{"--config.file=" + cfg}, storageArgs(t, name)...)
			s := start(t, args...)
			code, body := s.do(t, http.MethodPost, "/api/v1/webhook/alertmanager", payload(t, "am-firing.json"))
			require.Equal(t, http.StatusOK, code, body)
			code, body = s.do(t, http.MethodPost, "/api/v1/incidents/"+strings.Split(incidentIDs(t, s)[0], " ")[0]+"/ack", []byte(`{"actor":"alice"}`))
			require.Equal(t, http.StatusOK, code, body)
			code, body = s.do(t, http.MethodPost, "/api/v1/webhook/alertmanager", payload(t, "am-resolved.json"))
			require.Equal(t, http.StatusOK, code, body)
			s.kill(t)

			s2 := start(t, args...)
			ids := incidentIDs(t, s2)
			require.Len(t, ids, 1)
			require.Regexp(t, `^INC-\d{4}-0001 resolved$`, ids[0])
			id := strings.Split(ids[0], " ")[0]
			code, body = s2.do(t, http.MethodGet, "/api/v1/incidents/"+id+"/timeline", nil)
			require.Equal(t, http.StatusOK, code)
			for _, want := range []string{"acknowledged by alice", "resolved automatically: all alerts resolved"} {
				require.Contains(t, body, want)
			}
			// The redelivery Alertmanager would make after the crash is a duplicate.
			code, body = s2.do(t, http.MethodPost, "/api/v1/webhook/alertmanager", payload(t, "am-resolved.json"))
			require.Equal(t, http.StatusOK, code, body)
			require.Contains(t, body, `"duplicate":true`)
		})
	}
}

func metric(t *testing.T, s *sred, name string) string {
	t.Helper()
	_, body := s.do(t, http.MethodGet, "/metrics", nil)
	for _, line := range strings.Split(body, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			return f[1]
		}
	}
	t.Fatalf("metric %s not found", name)
	return ""
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sred.yml")
	writeConfig(t, cfg, "INC")
	s := start(t, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"))
	require.Equal(t, "1", metric(t, s, "sre_config_last_reload_successful"))

	// A good config applies: new incidents use the new prefix.
	writeConfig(t, cfg, "OPS")
	code, body := s.do(t, http.MethodPost, "/-/reload", nil)
	require.Equal(t, http.StatusOK, code, body)
	code, body = s.do(t, http.MethodPost, "/api/v1/webhook/alertmanager", payload(t, "am-firing.json"))
	require.Equal(t, http.StatusOK, code, body)
	require.Regexp(t, `"created":\["OPS-\d{4}-0001"\]`, body)

	// A bad config is rejected; the running one stays.
	require.NoError(t, os.WriteFile(cfg, []byte("global:\n  incident_id_prefx: X\n"), 0o644))
	code, body = s.do(t, http.MethodPost, "/-/reload", nil)
	require.Equal(t, http.StatusInternalServerError, code)
	require.Contains(t, body, `unknown field "incident_id_prefx"`)
	require.NotContains(t, body, "config.plain", "reload errors name no Go type")
	require.Equal(t, "0", metric(t, s, "sre_config_last_reload_successful"))
	require.Contains(t, s.output(), `msg="Reload configuration"`)
	var m map[string]any
	require.NoError(t, json.Unmarshal(payload(t, "am-firing.json"), &m))
	m["groupKey"] = "other-group"
	b, _ := json.Marshal(m)
	code, body = s.do(t, http.MethodPost, "/api/v1/webhook/alertmanager", b)
	require.Equal(t, http.StatusOK, code, body)
	require.Regexp(t, `"created":\["OPS-\d{4}-0002"\]`, body)

	// SIGHUP reloads too.
	writeConfig(t, cfg, "SEV")
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return metric(t, s, "sre_config_last_reload_successful") == "1" }, 60*time.Second, 50*time.Millisecond)
	m["groupKey"] = "third-group"
	b, _ = json.Marshal(m)
	code, body = s.do(t, http.MethodPost, "/api/v1/webhook/alertmanager", b)
	require.Equal(t, http.StatusOK, code, body)
	require.Regexp(t, `"created":\["SEV-\d{4}-0003"\]`, body)
}

func TestFlags(t *testing.T) {
	bin, err := buildSred()
	require.NoError(t, err)
	out, err := exec.Command(bin, "--version").CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), "sred, version")
	out, err = exec.Command(bin, "--help").CombinedOutput()
	require.NoError(t, err, string(out))
	for _, flag := range []string{"--config.file", "--web.listen-address", "--web.config.file", "--log.level", "--log.format",
		"--storage.path", "--storage.postgres-url", "SRED_POSTGRES_URL", "--storage.postgres-max-connections"} {
		require.Contains(t, string(out), flag)
	}
	out, err = exec.Command(bin, "--config.file=/nonexistent/sred.yml", "--storage.path="+t.TempDir()).CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "no such file or directory")
}

// TestMistypedFlag: sred given a mistyped flag (the first command a user
// types, often by hand) names the flag it knows, as srectl does, and exits
// 2 before it opens anything; it said "unknown long flag" alone.
func TestMistypedFlag(t *testing.T) {
	bin, err := buildSred()
	require.NoError(t, err)
	for args, want := range map[string]string{
		"--web.listen-adress=127.0.0.1:8096": "sred: unknown long flag '--web.listen-adress' (did you mean --web.listen-address?)\n",
		"--config-file=examples/sred.yml":    "sred: unknown long flag '--config-file' (did you mean --config.file?)\n",
		"--port=8096":                        "sred: unknown long flag '--port' (sred --help lists the flags)\n",
	} {
		cmd := exec.Command(bin, args)
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		require.Error(t, err, args)
		require.Equal(t, 2, cmd.ProcessState.ExitCode(), args)
		require.Equal(t, want, string(out), args)
		entries, err := os.ReadDir(cmd.Dir)
		require.NoError(t, err)
		require.Empty(t, entries, "nothing written in the working directory")
	}
}

// TestPostgresPoolFlag starts sred on PostgreSQL with a pool of its own
// size: /metrics shows the main pool and the ID allocation's side pool at
// the sizes set, and a pool too small to work is refused at start with the
// reason.
func TestPostgresPoolFlag(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "sred.yml")
	writeConfig(t, cfg, "INC")
	url := testutil.PostgresSchemaURL(t)
	s := start(t, "--config.file="+cfg, "--storage.postgres-url="+url, "--storage.postgres-max-connections=3")
	_, body := s.do(t, http.MethodGet, "/metrics", nil)
	require.Equal(t, 3.0, metricValue(body, `go_sql_max_open_connections{db_name="main"}`), body)
	require.Equal(t, 2.0, metricValue(body, `go_sql_max_open_connections{db_name="side"}`), body)
	require.Contains(t, body, `go_sql_wait_duration_seconds_total{db_name="main"}`)

	bin, err := buildSred()
	require.NoError(t, err)
	out, err := exec.Command(bin, "--web.no-auth", "--web.listen-address=127.0.0.1:0", "--config.file="+cfg,
		"--storage.postgres-url="+url, "--storage.postgres-max-connections=1").CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "--storage.postgres-max-connections must be at least 2 (a sweep holds one connection while its work takes another), got 1")
}

// TestAlertmanagerToSred points the pinned Alertmanager at a running sred:
// alerts posted to Alertmanager become an incident, and resolve it.
func TestAlertmanagerToSred(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sred.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("webhook:\n  bearer_token: s3cret\n"), 0o600))
	s := start(t, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"))
	am := testutil.StartAlertmanager(t, testutil.AlertmanagerOptions{Config: fmt.Sprintf(`
route:
  receiver: sred
  group_by: [alertname, service]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: sred
    webhook_configs:
      - url: %s/api/v1/webhook/alertmanager
        send_resolved: true
        http_config:
          authorization:
            credentials: s3cret
`, s.url)})
	// startsAt must be identical in both posts: compute it once.
	startsAt := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	post := func(ends time.Time) {
		body := fmt.Sprintf(`[{"labels":{"alertname":"DiskFull","service":"db","severity":"warning","instance":"db-0"},
			"annotations":{"summary":"Disk almost full"},"startsAt":%q,"endsAt":%q}]`,
			startsAt.Format(time.RFC3339), ends.UTC().Format(time.RFC3339))
		resp, err := http.Post(am.URL+"/api/v2/alerts", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	post(time.Now().Add(time.Hour))
	require.Eventually(t, func() bool {
		ids := incidentIDs(t, s)
		return len(ids) == 1 && strings.HasSuffix(ids[0], " triggered")
	}, 30*time.Second, 100*time.Millisecond)
	id := strings.Split(incidentIDs(t, s)[0], " ")[0]
	code, body := s.do(t, http.MethodGet, "/api/v1/incidents/"+id, nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"title":"Disk almost full"`)
	require.Contains(t, body, `"severity":"MEDIUM"`)
	require.Contains(t, body, `"service":"db"`)

	post(time.Now().Add(-time.Second))
	require.Eventually(t, func() bool {
		ids := incidentIDs(t, s)
		return len(ids) == 1 && strings.HasSuffix(ids[0], " resolved")
	}, 30*time.Second, 100*time.Millisecond)
	_, metrics := s.do(t, http.MethodGet, "/metrics", nil)
	require.NotContains(t, metrics, `sre_webhook_requests_total{code="401"}`, "Alertmanager sent the bearer token")
}

// groupKeys lists the group keys of every incident sred knows, paging through
// the API.
func groupKeys(t *testing.T, s *sred) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	for offset := 0; ; offset += 1000 {
		code, body := s.do(t, http.MethodGet, fmt.Sprintf("/api/v1/incidents?limit=1000&offset=%d", offset), nil)
		require.Equal(t, http.StatusOK, code, body)
		var resp struct {
			Data struct {
				Total     int `json:"total"`
				Incidents []struct {
					GroupKey string `json:"group_key"`
				} `json:"incidents"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &resp))
		for _, inc := range resp.Data.Incidents {
			keys[inc.GroupKey] = true
		}
		if offset+len(resp.Data.Incidents) >= resp.Data.Total || len(resp.Data.Incidents) == 0 {
			return keys
		}
	}
}

// TestKillUnderLoad: 8 senders post deliveries of distinct groups
// concurrently; sred is SIGKILLed mid-stream; after a restart on the same
// storage, every group whose delivery got a 2xx is there.
func TestKillUnderLoad(t *testing.T) {
	var tmpl map[string]any
	require.NoError(t, json.Unmarshal(payload(t, "am-firing.json"), &tmpl))
	tmpl["groupKey"] = "GROUPKEY"
	b, err := json.Marshal(tmpl)
	require.NoError(t, err)
	template := string(b)

	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "sred.yml")
			writeConfig(t, cfg, "INC")
			args := append([]string{"--config.file=" + cfg}, storageArgs(t, name)...)
			s := start(t, args...)

			const senders = 8
			var (
				mu    sync.Mutex
				acked = map[string]bool{}
				wg    sync.WaitGroup
			)
			client := &http.Client{Timeout: 10 * time.Second}
			for w := 0; w < senders; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						key := fmt.Sprintf("load-%d-%d", w, i)
						resp, err := client.Post(s.url+"/api/v1/webhook/alertmanager", "application/json",
							strings.NewReader(strings.Replace(template, "GROUPKEY", key, 1)))
						if err != nil {
							return // sred was killed
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode/100 == 2 {
							mu.Lock()
							acked[key] = true
							mu.Unlock()
						}
					}
				}()
			}
			// Kill once a good number of deliveries were acknowledged, while
			// the senders are still posting.
			require.Eventually(t, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(acked) >= 300
			}, 60*time.Second, 5*time.Millisecond)
			s.kill(t)
			wg.Wait()
			mu.Lock()
			n := len(acked)
			mu.Unlock()
			t.Logf("%d deliveries acknowledged before SIGKILL", n)

			s2 := start(t, args...)
			stored := groupKeys(t, s2)
			var lost []string
			for key := range acked {
				if !stored[key] {
					lost = append(lost, key)
				}
			}
			require.Empty(t, lost, "acknowledged groups lost after SIGKILL")
			require.GreaterOrEqual(t, len(stored), n)
		})
	}
}

// TestStartConfigError: sred refuses to start on a bad sred.yml, users
// file or web config file and says why in the file's terms, at the
// file:line:col of each problem (no "line N:" without the file, no Go type
// names), and a referenced secret file that does not exist is an error at
// start, not a silent gap later.
func TestStartConfigError(t *testing.T) {
	bin, err := buildSred()
	require.NoError(t, err)
	for _, tc := range []struct {
		name, config string
		files        map[string]string // other files in the directory of sred.yml
		args         []string
		want         []string
	}{
		{"unknown core field", "global:\n  incident_id_prefx: X\n", nil, nil, []string{`sred.yml:2:3: unknown field \"incident_id_prefx\" in global (did you mean \"incident_id_prefix\"?)`}},
		{"wrong type in a subsystem section", "escalation:\n  ack_timeout: [30m]\n", nil, nil, []string{`sred.yml:2:16: cannot use a list here: want a string`}},
		{"unknown field in a subsystem section", "notifications:\n  max_attempt: 3\n", nil, nil, []string{`sred.yml:2:3: unknown field \"max_attempt\" in notifications (did you mean \"max_attempts\"?)`}},
		{"bad duration in a subsystem section", "retention:\n  audit_log: forever\n", nil, nil, []string{`sred.yml:2:14: not a valid duration string: \"forever\"`}},
		{"syntax in a subsystem section", "runbooks:\n  dirs: [x]\n   timeout: 5m\n", nil, nil, []string{`sred.yml:3:4: invalid YAML`}},
		{"users file", "auth:\n  users_file: users.yml\n", map[string]string{"users.yml": "users:\n  bob:\n    role: admin\n    pasword: x\n"}, nil,
			[]string{`users.yml:4:5: unknown field \"pasword\"`}},
		{"web config file", "", map[string]string{"web.yml": "tls_server_confg:\n  cert_file: a\n"}, []string{"--web.config.file=web.yml"},
			[]string{`web config file web.yml:1:1: unknown field \"tls_server_confg\"`}},
		{"web config users", "", map[string]string{"web.yml": "basic_auth_users:\n  - alice\n"}, []string{"--web.config.file=web.yml"},
			[]string{`web config file web.yml:2:3: cannot use a list here: want a mapping`}},
		{"missing secret file", "notifications:\n  ack_secret_file: missing-ack.key\n", nil, nil, []string{"notifications.ack_secret_file", "missing-ack.key", "does not exist"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "sred.yml")
			require.NoError(t, os.WriteFile(cfg, []byte(tc.config), 0o600))
			for name, content := range tc.files {
				require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
			}
			args := append([]string{"--web.listen-address=127.0.0.1:0", "--config.file=" + cfg, "--storage.path=" + filepath.Join(dir, "data")}, tc.args...)
			if tc.args == nil {
				args = append(args, "--web.no-auth")
			}
			cmd := exec.Command(bin, args...)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			require.Error(t, err, string(out))
			for _, w := range tc.want {
				require.Contains(t, string(out), w)
			}
			require.NotRegexp(t, `\b(config|escalation|notify|web|auth)\.(plain|Config|User)\b|\[\]string|: line \d+:`, string(out), "no Go type names, no line without its file")
		})
	}
}

// TestAddressInUse: an address in use (another sred, a leftover demo) is
// the error sred reports, before any subsystem starts: not the last line
// after their own failures as they are stopped.
func TestAddressInUse(t *testing.T) {
	bin, err := buildSred()
	require.NoError(t, err)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	free := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	root := testutil.RepoRoot(t)
	for _, tc := range []struct{ name, flag, hint string }{
		{"web", "--web.listen-address=" + taken.Addr().String(),
			"address already in use (another sred, `make run` or `make demo`? stop it, or move this one with --web.listen-address; make run SRED_PORT=8096)"},
		{"status page", "--web.status-address=" + taken.Addr().String(),
			"address already in use (another sred, `make run` or `make demo`? stop it, or move this one with --web.status-address)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--web.no-auth", "--config.file=" + filepath.Join(root, "examples", "sred.yml"),
				"--storage.path=" + filepath.Join(t.TempDir(), "data"), tc.flag}
			if tc.name != "web" {
				args = append(args, "--web.listen-address="+free)
			}
			out, err := exec.Command(bin, args...).CombinedOutput()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, string(out))
			require.Equal(t, 1, exit.ExitCode(), string(out))
			require.Contains(t, string(out), tc.hint, "what holds the address, and the flag that moves sred")
			require.Contains(t, string(out), "msg=\"Start sred\"")
			require.NotContains(t, string(out), "context canceled", "no subsystem started and stopped")
			require.NotContains(t, string(out), "sred stopped")
		})
	}
}
