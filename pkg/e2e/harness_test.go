package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/testutil"
)

// --- binaries -----------------------------------------------------------------

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// programs are built once per test binary run and shared by the scenarios.
var programs = map[string]string{
	"sred":         "./cmd/sred",
	"srectl":       "./cmd/srectl",
	"demo-service": "./examples/demo-service",
}

// TestMain runs the tests, or, with E2E_HELPER=record, acts as the
// actuator of an exec runbook step: it appends its arguments as one JSON
// line to $E2E_RECORD (healing_test.go counts the calls).
func TestMain(m *testing.M) {
	if os.Getenv("E2E_HELPER") == "record" {
		os.Exit(record(os.Getenv("E2E_RECORD"), os.Args[1:]))
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func record(path string, args []string) int {
	line, err := json.Marshal(args)
	if err != nil {
		return 3
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	fmt.Println("recorded")
	return 0
}

// binaries builds sred, srectl and the demo service with `go build` into a
// temporary directory (once) and returns it.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "sre-e2e-bin-")
		if buildErr != nil {
			return
		}
		root := testutil.RepoRoot(t)
		goBin := os.Getenv("GO")
		if goBin == "" {
			goBin = "go"
		}
		names := make([]string, 0, len(programs))
		for name := range programs {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			cmd := exec.Command(goBin, "build", "-o", filepath.Join(binDir, name), programs[name])
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", programs[name], err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatalf("build the programs under test: %v", buildErr)
	}
	return binDir
}

// --- step timeline --------------------------------------------------------------

// steps records when each scenario step was observed, for the assertions
// and for the report printed at the end (and on failure).
type steps struct {
	mu    sync.Mutex
	start time.Time
	list  []step
}

type step struct {
	At     time.Time
	Name   string
	Detail string
}

func newSteps() *steps { return &steps{start: time.Now()} }

func (s *steps) mark(name, detail string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.list = append(s.list, step{At: now, Name: name, Detail: detail})
	return now
}

func (s *steps) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	prev := s.start
	for _, st := range s.list {
		fmt.Fprintf(&b, "  %s  +%6.1fs (%+6.1fs)  %-40s %s\n", st.At.UTC().Format("15:04:05.000"),
			st.At.Sub(s.start).Seconds(), st.At.Sub(prev).Seconds(), st.Name, st.Detail)
		prev = st.At
	}
	return b.String()
}

// waitFor polls check every 500ms until it reports done, and fails the test
// naming the step and the last observation when timeout passes first. It
// marks the step when done and returns the time it was observed.
func (s *stack) waitFor(name string, timeout time.Duration, check func(ctx context.Context) (done bool, observed string, err error)) time.Time {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	var lastErr error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		done, observed, err := check(ctx)
		cancel()
		if err == nil && done {
			return s.steps.mark(name, observed)
		}
		var broken violation
		if errors.As(err, &broken) {
			s.failed = name
			s.t.Fatalf("while waiting for step %q: %v", name, err)
		}
		if observed != "" {
			last = observed
		}
		lastErr = err
		if time.Now().After(deadline) {
			s.failed = name
			s.t.Fatalf("step %q not reached within %s; last observed: %s; last error: %v", name, timeout, last, lastErr)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// violation is an error a waitFor check returns when what it observed
// breaks the scenario (not merely "not yet"): waitFor fails at once.
type violation struct{ error }

func violationf(format string, args ...any) error { return violation{fmt.Errorf(format, args...)} }

// --- webhook sink -----------------------------------------------------------------

// sink is the escalation target: an HTTP server that receives sred's signed
// webhook notifications and keeps them.
type sink struct {
	srv    *httptest.Server
	secret string

	mu   sync.Mutex
	msgs []received
	bad  []string
}

type received struct {
	At  time.Time
	Msg notify.Message
}

func newSink(t *testing.T, secret string) *sink {
	s := &sink{secret: secret}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) URL() string { return s.srv.URL + "/notify" }

func (s *sink) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		s.reject(w, fmt.Sprintf("read body: %v", err))
		return
	}
	ts := r.Header.Get(notify.TimestampHeader)
	if got, want := r.Header.Get(notify.SignatureHeader), notify.Sign(s.secret, ts, body); got != want {
		s.reject(w, fmt.Sprintf("bad signature %q (timestamp %q)", got, ts))
		return
	}
	var p notify.WebhookPayload
	if err := json.Unmarshal(body, &p); err != nil || p.Message == nil {
		s.reject(w, fmt.Sprintf("decode payload: %v: %s", err, body))
		return
	}
	s.mu.Lock()
	s.msgs = append(s.msgs, received{At: time.Now(), Msg: *p.Message})
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (s *sink) reject(w http.ResponseWriter, why string) {
	s.mu.Lock()
	s.bad = append(s.bad, why)
	s.mu.Unlock()
	http.Error(w, why, http.StatusBadRequest)
}

func (s *sink) messages() ([]received, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...), append([]string(nil), s.bad...)
}

// key identifies one notification: a repeat of a key is a duplicate.
func (r received) key() string {
	m := r.Msg
	return fmt.Sprintf("%s/%s/level%d/%s/%s/%s", m.IncidentID, m.Event, m.Level, m.Channel, m.User, m.To)
}

// --- the stack ----------------------------------------------------------------------

// scenario says how many replicas run.
type scenario struct {
	// Alertmanagers > 1 form an HA cluster.
	Alertmanagers int
	// Sreds > 1 share one PostgreSQL schema; 1 uses SQLite.
	Sreds int
}

// stack is every process of a scenario.
type stack struct {
	t      *testing.T
	steps  *steps
	failed string

	demo  *testutil.Process
	prom  *testutil.Process
	ams   []*testutil.Process
	sreds []*testutil.Process
	sink  *sink
	api   promv1.API
}

const (
	webhookToken = "e2e-webhook-token"
	sinkSecret   = "e2e-sink-secret"
	ackSecret    = "e2e-ack-secret"
)

func render(t *testing.T, name string, data any) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := template.New(name).Option("missingkey=error").Parse(string(b))
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, data); err != nil {
		t.Fatalf("render %s: %v", name, err)
	}
	return out.String()
}

func hostPort(u string) string { return strings.TrimPrefix(u, "http://") }

// startStack builds the programs and starts, in order: the webhook sink, the
// demo service, the Alertmanager(s), the sred replica(s) and Prometheus with
// the rules srectl generated from testdata/slos.
func startStack(t *testing.T, sc scenario) *stack {
	bin := binaries(t)
	s := &stack{t: t, steps: newSteps()}
	s.sink = newSink(t, sinkSecret)

	// Rules: srectl generate, checked by the pinned promtool.
	rulesDir := t.TempDir()
	out, err := exec.Command(filepath.Join(bin, "srectl"), "generate", "--quiet", "-i", filepath.Join("testdata", "slos"), "-o", rulesDir).CombinedOutput()
	if err != nil {
		t.Fatalf("srectl generate: %v\n%s", err, out)
	}
	ruleFiles, err := filepath.Glob(filepath.Join(rulesDir, "*.yml"))
	if err != nil || len(ruleFiles) == 0 {
		t.Fatalf("srectl generate wrote no rule files to %s (%v): %s", rulesDir, err, out)
	}
	if out, err := exec.Command(testutil.Tool(t, "promtool"), append([]string{"check", "rules"}, ruleFiles...)...).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules on the generated rules: %v\n%s", err, out)
	}
	promFiles := map[string]string{}
	for _, f := range ruleFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		promFiles["rules/"+filepath.Base(f)] = string(b)
	}
	s.steps.mark("rules generated", fmt.Sprintf("%d rule file(s), promtool check rules passed", len(ruleFiles)))

	// Demo service.
	demoPort := testutil.FreePort(t)
	demoURL := "http://127.0.0.1:" + strconv.Itoa(demoPort)
	s.demo = testutil.StartProcess(t, "demo-service", filepath.Join(bin, "demo-service"),
		[]string{"--web.listen-address=127.0.0.1:" + strconv.Itoa(demoPort), "--traffic.rps=20"}, t.TempDir(), demoURL, "/-/ready")

	// sred addresses are chosen first: Alertmanager needs them.
	sredAddrs := make([]string, sc.Sreds)
	for i := range sredAddrs {
		sredAddrs[i] = "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	}

	// Alertmanager(s).
	amConfig := render(t, "alertmanager.yml.tmpl", map[string]any{"Sreds": sredAddrs, "WebhookToken": webhookToken})
	if sc.Alertmanagers == 1 {
		s.ams = append(s.ams, testutil.StartAlertmanager(t, testutil.AlertmanagerOptions{Config: amConfig}))
	} else {
		ports := make([]int, sc.Alertmanagers)
		for i := range ports {
			ports[i] = testutil.FreePort(t)
		}
		for i, p := range ports {
			var peers []string
			for j, q := range ports {
				if j != i {
					peers = append(peers, "127.0.0.1:"+strconv.Itoa(q))
				}
			}
			s.ams = append(s.ams, testutil.StartAlertmanager(t, testutil.AlertmanagerOptions{Config: amConfig, ClusterPort: p, Peers: peers}))
		}
	}

	// sred replica(s).
	var pgURL string
	if sc.Sreds > 1 {
		pgURL = testutil.PostgresSchemaURL(t)
	}
	runbooks, err := filepath.Abs(filepath.Join("testdata", "runbooks"))
	if err != nil {
		t.Fatal(err)
	}
	for i, addr := range sredAddrs {
		dir := t.TempDir()
		cfg := render(t, "sred.yml.tmpl", map[string]any{
			"Self":         addr,
			"WebhookToken": webhookToken,
			"Alertmanager": s.ams[i%len(s.ams)].URL,
			"Sink":         s.sink.URL(),
			"SinkSecret":   sinkSecret,
			"AckSecret":    ackSecret,
			"Runbooks":     runbooks,
			"Demo":         demoURL,
		})
		if err := os.WriteFile(filepath.Join(dir, "sred.yml"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{
			"--config.file=" + filepath.Join(dir, "sred.yml"),
			"--web.listen-address=" + addr,
			"--log.level=info",
			"--web.no-auth", // local trial mode: the harness acts as anyone
		}
		if pgURL != "" {
			args = append(args, "--storage.postgres-url="+pgURL)
		} else {
			args = append(args, "--storage.path="+filepath.Join(dir, "data"))
		}
		s.sreds = append(s.sreds, testutil.StartProcess(t, fmt.Sprintf("sred-%d", i), filepath.Join(bin, "sred"), args, dir, "http://"+addr, "/-/ready"))
	}

	// Prometheus: scrapes the demo and sred, evaluates the generated rules,
	// sends alerts to every Alertmanager.
	amAddrs := make([]string, len(s.ams))
	for i, am := range s.ams {
		amAddrs[i] = hostPort(am.URL)
	}
	promConfig := render(t, "prometheus.yml.tmpl", map[string]any{"Alertmanagers": amAddrs, "Demo": hostPort(demoURL), "Sreds": sredAddrs})
	s.prom = testutil.StartPrometheus(t, testutil.PrometheusOptions{Config: promConfig, Files: promFiles})
	client, err := api.NewClient(api.Config{Address: s.prom.URL})
	if err != nil {
		t.Fatal(err)
	}
	s.api = promv1.NewAPI(client)
	s.steps.mark("stack started", fmt.Sprintf("demo, %d alertmanager(s), %d sred(s), prometheus", len(s.ams), len(s.sreds)))

	// Registered last, so it runs first at cleanup, while every process is
	// still up to be asked what it saw.
	t.Cleanup(func() {
		if t.Failed() {
			at := "after the last step reached"
			if s.failed != "" {
				at = fmt.Sprintf("waiting for step %q", s.failed)
			}
			t.Logf("=== end-to-end report (failed %s) ===\n%s", at, s.report())
		} else {
			t.Logf("=== steps ===\n%s", s.steps)
		}
	})
	return s
}

// --- clients ------------------------------------------------------------------------

var httpClient = &http.Client{Timeout: 10 * time.Second}

func do(ctx context.Context, method, u string, body io.Reader) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return b, resp.StatusCode, err
}

// sredGet decodes the data of a sred API answer ({"status":"success","data":...}).
func sredGet(ctx context.Context, base, path string, v any) error {
	b, code, err := do(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("GET %s: %d: not a JSON envelope: %.300s", path, code, b)
	}
	if code != http.StatusOK || env.Status != "success" {
		return fmt.Errorf("GET %s: %d: %s", path, code, env.Error)
	}
	return json.Unmarshal(env.Data, v)
}

func (s *stack) incidents(ctx context.Context, sred *testutil.Process) ([]incident.Incident, error) {
	var page incident.Page
	if err := sredGet(ctx, sred.URL, "/api/v1/incidents?limit=100&alerts=true", &page); err != nil {
		return nil, err
	}
	return page.Incidents, nil
}

func (s *stack) incident(ctx context.Context, id string) (*incident.Incident, error) {
	return s.incidentOn(ctx, s.sreds[0], id)
}

func (s *stack) incidentOn(ctx context.Context, sred *testutil.Process, id string) (*incident.Incident, error) {
	var inc incident.Incident
	if err := sredGet(ctx, sred.URL, "/api/v1/incidents/"+url.PathEscape(id), &inc); err != nil {
		return nil, err
	}
	return &inc, nil
}

// ackClaims checks that u is an acknowledge link of one of the sred
// replicas (<external_url>/ack/<token>) and returns the token's verified claims.
func (s *stack) ackClaims(u string) (notify.AckClaims, error) {
	for _, sred := range s.sreds {
		if tok, ok := strings.CutPrefix(u, sred.URL+"/ack/"); ok {
			c, err := notify.VerifyAck(ackSecret, tok, time.Now())
			if err != nil {
				return c, fmt.Errorf("acknowledge link %q: %w", u, err)
			}
			return c, nil
		}
	}
	return notify.AckClaims{}, fmt.Errorf("acknowledge link %q is not <sred external_url>/ack/<token>", u)
}

// run is the part of a runbook run the test reads (GET /api/v1/runbooks/runs).
type run struct {
	ID         int64      `json:"id"`
	IncidentID string     `json:"incident_id"`
	Runbook    string     `json:"runbook"`
	Status     string     `json:"status"`
	Reason     string     `json:"reason"`
	Owner      string     `json:"owner"`
	FinishedAt *time.Time `json:"finished_at"`
}

func (s *stack) runs(ctx context.Context, id string) ([]run, error) {
	var rs []run
	err := sredGet(ctx, s.sreds[0].URL, "/api/v1/runbooks/runs?incident="+url.QueryEscape(id), &rs)
	return rs, err
}

// demoState is GET /admin/state of the demo service.
type demoState struct {
	ErrorRate      float64 `json:"error_rate"`
	LatencySeconds float64 `json:"latency_seconds"`
}

func (s *stack) demoState(ctx context.Context) (demoState, error) {
	var st demoState
	b, code, err := do(ctx, http.MethodGet, s.demo.URL+"/admin/state", nil)
	if err != nil {
		return st, err
	}
	if code != http.StatusOK {
		return st, fmt.Errorf("GET /admin/state: %d %s", code, b)
	}
	return st, json.Unmarshal(b, &st)
}

// query runs an instant PromQL query and returns its vector.
func (s *stack) query(ctx context.Context, q string) (model.Vector, error) {
	v, _, _, err := s.api.Query(ctx, q, time.Now())
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", q, err)
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("query %s: got %s, want a vector", q, v.Type())
	}
	return vec, nil
}

// promAlerts returns Prometheus' alerts named name.
func (s *stack) promAlerts(ctx context.Context, name string) ([]promv1.Alert, error) {
	res, err := s.api.Alerts(ctx)
	if err != nil {
		return nil, err
	}
	var out []promv1.Alert
	for _, a := range res.Alerts {
		if string(a.Labels[model.AlertNameLabel]) == name {
			out = append(out, a)
		}
	}
	return out, nil
}

// amAlert is the part of an Alertmanager v2 alert the test reads.
type amAlert struct {
	Labels   map[string]string `json:"labels"`
	StartsAt time.Time         `json:"startsAt"`
	EndsAt   time.Time         `json:"endsAt"`
	Status   struct {
		State string `json:"state"`
	} `json:"status"`
	Receivers []struct {
		Name string `json:"name"`
	} `json:"receivers"`
}

func amAlerts(ctx context.Context, am *testutil.Process, alertname string) ([]amAlert, error) {
	q := url.Values{"filter": {fmt.Sprintf("alertname=%q", alertname)}}
	b, code, err := do(ctx, http.MethodGet, am.URL+"/api/v2/alerts?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /api/v2/alerts: %d %s", code, b)
	}
	var out []amAlert
	return out, json.Unmarshal(b, &out)
}

// amStatus is the part of Alertmanager's GET /api/v2/status the test reads.
type amStatus struct {
	Cluster struct {
		Name   string `json:"name"`
		Status string `json:"status"`
		Peers  []struct {
			Name    string `json:"name"`
			Address string `json:"address"`
		} `json:"peers"`
	} `json:"cluster"`
}

func amClusterStatus(ctx context.Context, am *testutil.Process) (amStatus, error) {
	var st amStatus
	b, code, err := do(ctx, http.MethodGet, am.URL+"/api/v2/status", nil)
	if err != nil {
		return st, err
	}
	if code != http.StatusOK {
		return st, fmt.Errorf("GET /api/v2/status: %d %s", code, b)
	}
	return st, json.Unmarshal(b, &st)
}

func (s *stack) timeline(ctx context.Context, sred *testutil.Process, id string) ([]incident.TimelineEntry, error) {
	var tl []incident.TimelineEntry
	err := sredGet(ctx, sred.URL, "/api/v1/incidents/"+url.PathEscape(id)+"/timeline", &tl)
	return tl, err
}

// --- failure report -----------------------------------------------------------------

// report gathers what every component says, for a failed run.
func (s *stack) report() string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var b strings.Builder
	fmt.Fprintf(&b, "--- steps ---\n%s", s.steps)

	for _, sred := range s.sreds {
		fmt.Fprintf(&b, "--- %s incidents (%s) ---\n", sred.Name, sred.URL)
		incs, err := s.incidents(ctx, sred)
		if err != nil {
			fmt.Fprintf(&b, "  error: %v\n", err)
			continue
		}
		for _, inc := range incs {
			fmt.Fprintf(&b, "  %s %s %s %s created %s resolved %v labels %v\n", inc.ID, inc.Status, inc.Severity, inc.Service,
				inc.CreatedAt.UTC().Format(time.RFC3339Nano), inc.ResolvedAt, inc.Labels)
			tl, err := s.timeline(ctx, sred, inc.ID)
			if err != nil {
				fmt.Fprintf(&b, "    timeline error: %v\n", err)
			}
			for _, e := range tl {
				fmt.Fprintf(&b, "    %s %-16s %-22s %s\n", e.Time.UTC().Format("15:04:05.000"), e.Kind, e.Actor, e.Message)
			}
			rs, err := s.runs(ctx, inc.ID)
			if err != nil {
				fmt.Fprintf(&b, "    runbook runs error: %v\n", err)
			}
			for _, r := range rs {
				fmt.Fprintf(&b, "    run %d %s %s %s owner=%s\n", r.ID, r.Runbook, r.Status, r.Reason, r.Owner)
			}
		}
	}

	fmt.Fprintf(&b, "--- prometheus alerts ---\n")
	if res, err := s.api.Alerts(ctx); err != nil {
		fmt.Fprintf(&b, "  error: %v\n", err)
	} else {
		for _, a := range res.Alerts {
			fmt.Fprintf(&b, "  %s %s active since %s value %s\n", a.State, a.Labels, a.ActiveAt.UTC().Format(time.RFC3339), a.Value)
		}
	}
	for _, q := range []string{
		`slo:sli_error:ratio_rate5m{service="demo"}`,
		`slo:sli_error:ratio_rate30m{service="demo"}`,
		`slo:burn_rate:ratio_rate5m{service="demo"}`,
		`slo:burn_rate:ratio_rate30m{service="demo"}`,
		`up`,
		`demo_error_rate`,
		`demo_heals_total`,
		`{__name__=~"sre_incident_time_to_resolve_seconds_(count|sum)"}`,
	} {
		vec, err := s.query(ctx, q)
		fmt.Fprintf(&b, "  %s => %v %v\n", q, vec, errOrNil(err))
	}

	for i, am := range s.ams {
		st, err := amClusterStatus(ctx, am)
		fmt.Fprintf(&b, "--- alertmanager-%d cluster: %q, %d peer(s) %v ---\n", i, st.Cluster.Status, len(st.Cluster.Peers), errOrNil(err))
		fmt.Fprintf(&b, "--- alertmanager-%d alerts (%s) ---\n", i, am.URL)
		as, err := amAlerts(ctx, am, pageAlert)
		if err != nil {
			fmt.Fprintf(&b, "  error: %v\n", err)
		}
		for _, a := range as {
			fmt.Fprintf(&b, "  %s %v starts %s ends %s\n", a.Status.State, a.Labels, a.StartsAt.UTC().Format(time.RFC3339), a.EndsAt.UTC().Format(time.RFC3339))
		}
	}

	msgs, bad := s.sink.messages()
	fmt.Fprintf(&b, "--- webhook sink: %d notification(s), %d rejected ---\n", len(msgs), len(bad))
	for _, m := range msgs {
		fmt.Fprintf(&b, "  %s %s\n", m.At.UTC().Format("15:04:05.000"), m.key())
	}
	for _, why := range bad {
		fmt.Fprintf(&b, "  rejected: %s\n", why)
	}
	st, err := s.demoState(ctx)
	fmt.Fprintf(&b, "--- demo state ---\n  %+v %v\n", st, errOrNil(err))
	return b.String()
}

func errOrNil(err error) string {
	if err == nil {
		return ""
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return "error: " + ue.Err.Error()
	}
	return "error: " + err.Error()
}
