package analysis

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/util/jsonpath"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/slo"
)

func newServer(t *testing.T, ev *Evaluator, gate Gate, end time.Time) *httptest.Server {
	t.Helper()
	specs, err := LoadDir("../../examples/rollouts")
	if err != nil {
		t.Fatal(err)
	}
	specs = append(specs, parse(t, strings.Replace(analysisSpec, "name: api", "name: podinfo", 1)))
	// These tests run more analyses than a client may (analysis.run_limit,
	// TestRunLimit).
	svc := NewService(Options{Evaluator: ev, Gate: gate, Clock: clock.NewManual(end), RunLimit: RunLimit{Burst: 10000}})
	svc.SetSpecs(specs)
	mux := http.NewServeMux()
	svc.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// argoMetric is the part of an Argo Rollouts AnalysisTemplate metric the
// web provider reads (spec.metrics[].provider.web and the conditions).
type argoMetric struct {
	Method           string
	URL              string
	Headers          map[string]string
	JSONBody         any
	JSONPath         string
	SuccessCondition string
	FailureCondition string
}

// measureArgo does what Argo Rollouts' web metric provider does
// (metricproviders/webmetric and utils/evaluate of argoproj/argo-rollouts):
// the request with jsonBody and Content-Type: application/json, a non-2xx
// answer is an Error measurement, the body is decoded as JSON, jsonPath
// (client-go's, "{$}" by default) selects the result and the expr
// conditions decide: Failed if failureCondition holds, Successful if
// successCondition holds, Inconclusive if neither.
func measureArgo(t *testing.T, m argoMetric) (phase string, value string) {
	t.Helper()
	var body io.Reader
	if m.JSONBody != nil {
		b, err := json.Marshal(m.JSONBody)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(m.Method, m.URL, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range m.Headers {
		req.Header.Set(k, v)
	}
	if m.JSONBody != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return "Error", string(b)
	}
	var data any
	if err := json.Unmarshal(b, &data); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, b)
	}
	jp := jsonpath.New("metrics")
	if m.JSONPath == "" {
		m.JSONPath = "{$}"
	}
	if err := jp.Parse(m.JSONPath); err != nil {
		t.Fatal(err)
	}
	res, err := jp.FindResults(data)
	if err != nil || len(res) == 0 || len(res[0]) == 0 {
		t.Fatalf("jsonPath %s finds nothing in %s: %v", m.JSONPath, b, err)
	}
	val := res[0][0].Interface()
	vb, _ := json.Marshal(val)
	eval := func(cond string) bool {
		if cond == "" {
			return false
		}
		env := map[string]any{"result": val}
		prog, err := expr.Compile(cond, expr.Env(env))
		if err != nil {
			t.Fatalf("condition %s: %v", cond, err)
		}
		out, err := expr.Run(prog, env)
		if err != nil {
			t.Fatalf("condition %s: %v", cond, err)
		}
		return out.(bool)
	}
	ok, failed := eval(m.SuccessCondition), eval(m.FailureCondition)
	switch {
	case failed:
		return "Failed", string(vb)
	case ok:
		return "Successful", string(vb)
	}
	return "Inconclusive", string(vb)
}

func testArgoWebProvider(t *testing.T, ev *Evaluator, end time.Time) {
	srv := newServer(t, ev, nil, end)
	// As in examples/kubernetes/analysis-template.yml.
	post := func(track string) argoMetric {
		return argoMetric{
			Method: "POST", URL: srv.URL + "/api/v1/analysis/podinfo/run",
			JSONBody: map[string]any{
				"canary":   map[string]string{"job": "api", "track": track},
				"baseline": map[string]string{"job": "api", "track": "stable"},
			},
			JSONPath:         "{$.data}",
			SuccessCondition: `result.verdict == "pass"`,
			FailureCondition: `result.verdict == "fail"`,
		}
	}
	get := func(track string) argoMetric {
		q := url.Values{"canary": {"job=api,track=" + track}, "baseline": {"job=api,track=stable"}}
		return argoMetric{
			Method: "GET", URL: srv.URL + "/api/v1/analysis/podinfo/run?" + q.Encode(),
			JSONPath:         "{$.data.verdict}",
			SuccessCondition: `result == "pass"`,
			FailureCondition: `result == "fail"`,
		}
	}
	for _, tc := range []struct{ track, phase string }{
		{"good", "Successful"},
		{"bad", "Failed"},
		{"slow", "Failed"},
		{"idle", "Inconclusive"}, // no traffic: Argo pauses the rollout
	} {
		for _, m := range []argoMetric{post(tc.track), get(tc.track)} {
			phase, value := measureArgo(t, m)
			if phase != tc.phase {
				t.Errorf("%s %s: phase %s, want %s (value %s)", m.Method, tc.track, phase, tc.phase, value)
			}
		}
	}
	// A target without canary labels is an Error measurement (400), not a verdict.
	m := post("good")
	m.JSONBody = map[string]any{"baseline": map[string]string{"track": "stable"}}
	if phase, value := measureArgo(t, m); phase != "Error" || !strings.Contains(value, "canary labels are required") {
		t.Errorf("no canary: %s %s", phase, value)
	}
	// An unknown field in the body is refused (strict).
	m.JSONBody = map[string]any{"canary": map[string]string{"track": "good"}, "weight": 10}
	if phase, value := measureArgo(t, m); phase != "Error" || !strings.Contains(value, "unknown field") {
		t.Errorf("unknown field: %s %s", phase, value)
	}
	m = get("good")
	m.URL = srv.URL + "/api/v1/analysis/nope/run?canary=track%3Dgood"
	if phase, value := measureArgo(t, m); phase != "Error" || !strings.Contains(value, `no analysis named \"nope\"`) {
		t.Errorf("unknown analysis: %s %s", phase, value)
	}
}

// flaggerCall posts a webhook as Flagger's CallWebhook does and reports
// whether Flagger counts it a success (status <= 202).
func flaggerCall(t *testing.T, u string, metadata map[string]string) (bool, FlaggerAnswer, int) {
	t.Helper()
	// Flagger's CanaryWebhookPayload.
	payload := map[string]any{"name": "podinfo", "namespace": "test", "phase": "Progressing", "checksum": "85d557f47b", "metadata": metadata}
	b, _ := json.Marshal(payload)
	req, _ := http.NewRequest("POST", u, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Status    string        `json:"status"`
		ErrorType string        `json:"errorType"`
		Data      FlaggerAnswer `json:"data"`
		Error     string        `json:"error"`
	}
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("answer: %v: %s", err, body)
	}
	// Flagger logs the body in its events: a hook's refusal (403, 412)
	// is an error envelope, errorType refused, holding the answer.
	if (resp.StatusCode < 300) != (env.Status == "success") {
		t.Errorf("%d answered with status %q: %s", resp.StatusCode, env.Status, body)
	}
	if c := resp.StatusCode; (c == http.StatusForbidden || c == http.StatusPreconditionFailed) &&
		(env.ErrorType != "refused" || env.Error == "" || env.Error != env.Data.Message || env.Data.Hook == "") {
		t.Errorf("%d: want errorType refused, the answer's message as error and the answer as data: %s", c, body)
	}
	if env.Error != "" {
		env.Data.Message = env.Error
	}
	return resp.StatusCode <= 202, env.Data, resp.StatusCode
}

func testFlaggerWebhooks(t *testing.T, prom *budget.Prom, ev *Evaluator, end time.Time) {
	var specs []*slo.Spec
	for _, s := range [][2]string{{"api", "99"}, {"calm", "99"}} {
		sp, err := slo.Parse([]byte(strings.Replace(strings.Replace(sloSpec, "%[1]s", s[0], -1), "%[2]s", s[1], 1)), s[0]+".yml")
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, sp...)
	}
	gate := budget.New(budget.Options{Clock: clock.NewManual(end)})
	if err := gate.Update(budget.DefaultConfig, specs, prom, nil); err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, ev, gate, end)
	meta := func(track string) map[string]string {
		return map[string]string{"analysis": "podinfo", "canary": "job=api,track=" + track, "baseline": "job=api,track=stable"}
	}

	t.Run("pre-rollout gate", func(t *testing.T) {
		// calm has its whole budget; api has spent 150% of it (1.5% errors
		// against 1%): exhausted, every normal change is denied.
		ok, ans, _ := flaggerCall(t, srv.URL+FlaggerPreRollout, map[string]string{"service": "calm"})
		if !ok || ans.Decision == nil || !ans.Decision.Allowed {
			t.Errorf("calm: success %v, %+v", ok, ans)
		}
		ok, ans, code := flaggerCall(t, srv.URL+FlaggerPreRollout, map[string]string{"service": "api"})
		if ok || code != http.StatusForbidden || ans.Decision == nil || ans.Decision.State != slo.BudgetExhausted {
			t.Errorf("api: success %v code %d, %+v", ok, code, ans)
		}
		// The service defaults to the analysis' service (podinfo -> api).
		if ok, _, _ := flaggerCall(t, srv.URL+FlaggerPreRollout, map[string]string{"analysis": "podinfo"}); ok {
			t.Error("podinfo (service api) allowed")
		}
		_, ans, code = flaggerCall(t, srv.URL+FlaggerPreRollout, map[string]string{"service": "ghost"})
		if code != http.StatusNotFound || !strings.Contains(ans.Message, `service "ghost" has no SLO`) {
			t.Errorf("ghost: %d %q", code, ans.Message)
		}
	})

	t.Run("confirm-promotion and rollback", func(t *testing.T) {
		for _, tc := range []struct {
			track             string
			promote, rollback bool
		}{
			{"good", true, false},
			{"bad", false, true},   // 10% errors: rolled back at once
			{"idle", false, false}, // no traffic: held, neither promoted nor rolled back
			{"down", false, true},  // up 0: measured, rolled back
			// Not scraped yet: no series at all. The health check's
			// noData: fail makes the verdict fail, but there is nothing
			// measured against the canary: held, not rolled back.
			{"unscraped", false, false},
		} {
			ok, ans, _ := flaggerCall(t, srv.URL+FlaggerConfirmPromotion, meta(tc.track))
			if ok != tc.promote || ans.Result == nil {
				t.Errorf("%s: confirm-promotion success %v, want %v: %+v", tc.track, ok, tc.promote, ans)
			}
			ok, ans, code := flaggerCall(t, srv.URL+FlaggerRollback, meta(tc.track))
			if ok != tc.rollback || ans.Result == nil {
				t.Errorf("%s: rollback success %v, want %v: %+v", tc.track, ok, tc.rollback, ans)
			}
			if tc.track == "unscraped" {
				if ans.Result == nil || ans.Result.Verdict != Fail || code != http.StatusPreconditionFailed ||
					!strings.HasPrefix(ans.Message, "no data yet for health (the canary's series are not in Prometheus): no rollback") {
					t.Errorf("unscraped: rollback %d %q, want 412 saying there is no data yet", code, ans.Message)
				}
			}
		}
		_, ans, code := flaggerCall(t, srv.URL+FlaggerConfirmPromotion, map[string]string{"analysis": "podinfo"})
		if code != http.StatusBadRequest || !strings.Contains(ans.Message, "metadata.canary is required") {
			t.Errorf("no canary: %d %q", code, ans.Message)
		}
	})
}

func TestParseLabels(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]string
		err  string
	}{
		{"", map[string]string{}, ""},
		{"job=api, track=canary", map[string]string{"job": "api", "track": "canary"}, ""},
		{`pod="a,b",x=1`, map[string]string{"pod": "a,b", "x": "1"}, ""},
		{"job", nil, "want name=value pairs"},
		{"a=1,a=2", nil, "label a given twice"},
		{`a="x`, nil, "unterminated quoted value"},
		{`a="x\"`, nil, "unterminated quoted value"},
		{`a="say \"hi\"",b=2`, map[string]string{"a": `say "hi"`, "b": "2"}, ""},
		{`a="C:\\dir\\",b="\u00e9"`, map[string]string{"a": `C:\dir\`, "b": "é"}, ""},
		{`{job="api", track="canary"}`, map[string]string{"job": "api", "track": "canary"}, ""},
		{`{}`, map[string]string{}, ""},
		{`{job="api"`, nil, "want a closing } after the labels"},
		{`a="\q"`, nil, `label a: quoted value "\q" has an invalid escape`},
		{`track=~"canary"`, nil, `label track: value "~\"canary\"" holds a quote`},
		{`a=x"y`, nil, `label a: value "x\"y" holds a quote`},
	} {
		got, err := ParseLabels(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("%q: %v %v, want %v", tc.in, got, err, tc.want)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%q: %s=%q, want %q", tc.in, k, got[k], v)
			}
		}
	}
}

// infQuerier answers a healthy canary whose p99 latency is +Inf (a
// division by zero, a quantile of an empty side), and a finite baseline.
type infQuerier struct{}

func (infQuerier) Instant(_ context.Context, q string, at time.Time) (model.Vector, error) {
	v := 1000.0
	switch {
	case strings.Contains(q, "histogram_quantile") && strings.Contains(q, `track="canary"`):
		v = math.Inf(1)
	case strings.Contains(q, "histogram_quantile"):
		v = 0.1
	case strings.Contains(q, `code=~`):
		v = 0
	case strings.Contains(q, "up{"), strings.Contains(q, "slo:burn_rate"):
		v = 1
	}
	return model.Vector{{Metric: model.Metric{}, Value: model.SampleValue(v), Timestamp: model.TimeFromUnixNano(at.UnixNano())}}, nil
}

func (infQuerier) Range(context.Context, string, v1.Range) (model.Matrix, error) { return nil, nil }

// An infinite value (JSON has none) is left out of the answer, which the
// verdict still carries: the Flagger rollback hook rolls back a canary
// whose latency is +Inf against a finite baseline, and Argo Rollouts'
// measurement is Failed, not an Error.
func TestInfiniteValuesAnswer(t *testing.T) {
	end := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	srv := newServer(t, NewEvaluator(infQuerier{}, nil), nil, end)
	meta := map[string]string{"analysis": "podinfo", "canary": "job=api,track=canary", "baseline": "job=api,track=stable"}
	ok, ans, code := flaggerCall(t, srv.URL+FlaggerRollback, meta)
	if !ok || ans.Result == nil || ans.Result.Verdict != Fail {
		t.Fatalf("rollback: success %v (%d), want a rollback: %+v", ok, code, ans)
	}
	for _, c := range ans.Result.Checks {
		if c.Name == "latency" && (c.Verdict != Fail || c.Canary != nil || c.Value != nil || c.Baseline == nil || !strings.Contains(c.Reason, "+Inf")) {
			t.Errorf("latency check: %+v", c)
		}
	}
	phase, val := measureArgo(t, argoMetric{Method: "POST", URL: srv.URL + "/api/v1/analysis/podinfo/run",
		JSONBody:         map[string]any{"canary": map[string]string{"job": "api", "track": "canary"}, "baseline": map[string]string{"job": "api", "track": "stable"}},
		JSONPath:         "{$.data.verdict}",
		SuccessCondition: `result == "pass"`, FailureCondition: `result == "fail"`})
	if phase != "Failed" {
		t.Errorf("argo measurement %s (%s), want Failed", phase, val)
	}
}

// signedInfQuerier answers +Inf for the canary's latency and -Inf for the
// baseline's: their ratio is NaN, which no bound rejects.
type signedInfQuerier struct{ infQuerier }

func (q signedInfQuerier) Instant(ctx context.Context, query string, at time.Time) (model.Vector, error) {
	v, err := q.infQuerier.Instant(ctx, query, at)
	if strings.Contains(query, "histogram_quantile") && !strings.Contains(query, `track="canary"`) {
		v[0].Value = model.SampleValue(math.Inf(-1))
	}
	return v, err
}

// A check whose compared value is NaN is inconclusive: never promoted.
func TestNaNComparisonNotPromoted(t *testing.T) {
	end := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	srv := newServer(t, NewEvaluator(signedInfQuerier{}, nil), nil, end)
	meta := map[string]string{"analysis": "podinfo", "canary": "job=api,track=canary", "baseline": "job=api,track=stable"}
	ok, ans, code := flaggerCall(t, srv.URL+FlaggerConfirmPromotion, meta)
	if ok || ans.Result == nil || ans.Result.Verdict != Inconclusive {
		t.Fatalf("confirm-promotion: success %v (%d), want held as inconclusive: %+v", ok, code, ans)
	}
	if !strings.Contains(ans.Result.Reason, "latency inconclusive: canary/baseline (+Inf/-Inf) is not a number") {
		t.Errorf("reason %q", ans.Result.Reason)
	}
}

// The service of a run is the caller's (a viewer's): the run counters name
// at most MaxMetricServices services, the others count as "other", and a
// service longer than a Kubernetes name is refused.
func TestRunMetricsBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	end := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	srv := newServer(t, NewEvaluator(infQuerier{}, NewMetrics(reg)), nil, end)
	run := func(service string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + "/api/v1/analysis/podinfo/run?canary=job=api,track=stable&baseline=job=api,track=stable&service=" + url.QueryEscape(service))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for i := range MaxMetricServices + 20 {
		if code, body := run(fmt.Sprintf("svc-%d", i)); code != http.StatusOK {
			t.Fatalf("run %d: %d %s", i, code, body)
		}
	}
	if n := testutil.CollectAndCount(reg, "sre_analysis_runs_total"); n != MaxMetricServices+1 {
		t.Errorf("%d run series, want %d", n, MaxMetricServices+1)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	other := 0.0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if mf.GetName() == "sre_analysis_runs_total" && l.GetName() == "service" && l.GetValue() == OtherService {
					other += m.GetCounter().GetValue()
				}
			}
		}
	}
	if other != 20 {
		t.Errorf("%v runs counted as other, want 20", other)
	}
	if code, body := run(strings.Repeat("x", 254)); code != http.StatusBadRequest || !strings.Contains(body, "is longer than 63 bytes") {
		t.Errorf("long service: %d %s", code, body)
	}
}

// A run's service is at most as long as an SLO's service (63 bytes): a
// longer one, which no SLO can have, is refused naming the limit instead
// of ending with "no data" after querying Prometheus.
func TestRunServiceLimit(t *testing.T) {
	end := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		service string
		code    int
		want    string
	}{
		{"an SLO's longest", strings.Repeat("s", MaxServiceBytes), http.StatusOK, `"verdict"`},
		{"one byte over", strings.Repeat("s", MaxServiceBytes+1), http.StatusBadRequest, "is longer than 63 bytes, the longest service name an SLO may have"},
		{"a Kubernetes name's length", strings.Repeat("s", 253), http.StatusBadRequest, "is longer than 63 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := &recordingQuerier{}
			srv := newServer(t, NewEvaluator(q, nil), nil, end)
			body, _ := json.Marshal(RunRequest{Service: tc.service, Canary: map[string]string{"job": "api"}, Baseline: map[string]string{"job": "api"}})
			resp, err := http.Post(srv.URL+"/api/v1/analysis/podinfo/run", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.want) {
				t.Fatalf("%d %s, want %d with %q", resp.StatusCode, b, tc.code, tc.want)
			}
			if tc.code != http.StatusOK && len(q.queries) > 0 {
				t.Errorf("queried %q", q.queries)
			}
		})
	}
}

// A run's time before 1970-01-02 (time=0, time=-1: Unix seconds that
// parse) or more than MaxRunAhead after sred's clock is a 400 naming the
// value, not an analysis evaluated where no series has a sample; a time
// between them is run.
func TestRunTimeBounds(t *testing.T) {
	end := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	srv := newServer(t, NewEvaluator(infQuerier{}, nil), nil, end)
	base := srv.URL + "/api/v1/analysis/podinfo/run"
	for _, tc := range []struct {
		method, time string
		code         int
		err          string
	}{
		{"GET", "-1", 400, `time: "-1" (1969-12-31T23:59:59Z) is before 1970-01-02T00:00:00Z: want an RFC 3339 time or Unix seconds from 1970-01-02T00:00:00Z to 9999-12-31T23:59:59Z`},
		{"GET", "0", 400, `time: "0" (1970-01-01T00:00:00Z) is before 1970-01-02T00:00:00Z: want an RFC 3339 time or Unix seconds from 1970-01-02T00:00:00Z to 9999-12-31T23:59:59Z`},
		{"POST", "1970-01-01T12:00:00Z", 400, `time: "1970-01-01T12:00:00Z" is before 1970-01-02T00:00:00Z: want an RFC 3339 time or Unix seconds from 1970-01-02T00:00:00Z to 9999-12-31T23:59:59Z`},
		{"GET", "1e400", 400, `time: "1e400" is after 9999-12-31T23:59:59Z: want an RFC 3339 time or Unix seconds from 1970-01-02T00:00:00Z to 9999-12-31T23:59:59Z`},
		{"GET", "86400", 200, ""},
		{"POST", "2026-12-05T11:00:00Z", 200, ""},
		// Within MaxRunAhead of sred's clock (the caller's clock may run
		// ahead); later, Prometheus has no sample and each check's noData
		// policy would decide.
		{"GET", "2026-12-05T12:05:00Z", 200, ""},
		{"POST", "2026-12-05T12:05:01Z", 400, `time: "2026-12-05T12:05:01Z" is after sred's clock (2026-12-05T12:00:00Z) by more than 5m0s: a run in the future evaluates its checks on no data`},
		{"GET", "9999-12-31T23:59:59Z", 400, `time: "9999-12-31T23:59:59Z" is after sred's clock (2026-12-05T12:00:00Z) by more than 5m0s: a run in the future evaluates its checks on no data`},
		{"GET", "1796558400", 400, `time: "1796558400" is after sred's clock (2026-12-05T12:00:00Z) by more than 5m0s: a run in the future evaluates its checks on no data`},
	} {
		var resp *http.Response
		var err error
		if tc.method == "GET" {
			resp, err = http.Get(base + "?canary=job=api,track=canary&baseline=job=api,track=stable&time=" + url.QueryEscape(tc.time))
		} else {
			body, _ := json.Marshal(map[string]any{"canary": map[string]string{"job": "api", "track": "canary"}, "baseline": map[string]string{"job": "api", "track": "stable"}, "time": tc.time})
			resp, err = http.Post(base, "application/json", bytes.NewReader(body))
		}
		if err != nil {
			t.Fatal(err)
		}
		var env struct{ Error string }
		err = json.NewDecoder(resp.Body).Decode(&env)
		resp.Body.Close()
		if err != nil || resp.StatusCode != tc.code || env.Error != tc.err {
			t.Errorf("%s time=%s: %d %q (%v), want %d %q", tc.method, tc.time, resp.StatusCode, env.Error, err, tc.code, tc.err)
		}
	}
}

// The canary and baseline lists of GET .../run take PromQL's escapes in a
// quoted value (\" and \\, as strconv.Unquote reads them) and may be
// braced as a selector; before, a quoted value ended at its first quote,
// so "a\"b" was refused and a value could hold no quote at all. The value
// read is the value queried; a bad escape or a =~ matcher is a 400 naming
// it, before any query.
func TestRunLabelEscapes(t *testing.T) {
	spec := parse(t, `apiVersion: sre.rootuip.io/v1
kind: RolloutAnalysis
name: by-pod
service: api
minRequests: 1
rollbackTriggers:
  latencyIncrease: {enabled: false}
checks:
  - name: up
    type: threshold
    query: sum(up{ {{.Canary}} })
    min: 1
    noData: fail
`)
	q := &recordingQuerier{}
	svc := NewService(Options{Evaluator: NewEvaluator(q, nil), Clock: clock.NewManual(time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC))})
	svc.SetSpecs([]*Spec{spec})
	mux := http.NewServeMux()
	svc.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, tc := range []struct {
		canary string
		code   int
		err    string
		query  string
	}{
		{`pod="a\"b",track=canary`, 200, "", `sum(up{ pod="a\"b",track="canary" })`},
		{`{pod="C:\\dir",track="canary"}`, 200, "", `sum(up{ pod="C:\\dir",track="canary" })`},
		{`{track="canary"}`, 200, "", `sum(up{ track="canary" })`},
		{`pod="a\qb"`, 400, `canary: label pod: quoted value "a\qb" has an invalid escape: want PromQL's (\" for a quote, \\ for a backslash)`, ""},
		{`pod="a\"`, 400, `canary: label pod: unterminated quoted value`, ""},
		{`{track="canary"`, 400, `canary: label list "{track=\"canary\"": want a closing } after the labels`, ""},
		{`track=~"can.*"`, 400, `canary: label track: value "~\"can.*\"" holds a quote: quote the whole value (k="v"); only = is taken, not =~ or !=`, ""},
	} {
		q.queries = nil
		resp, err := http.Get(srv.URL + "/api/v1/analysis/by-pod/run?canary=" + url.QueryEscape(tc.canary))
		if err != nil {
			t.Fatal(err)
		}
		var env struct{ Error string }
		err = json.NewDecoder(resp.Body).Decode(&env)
		resp.Body.Close()
		if err != nil || resp.StatusCode != tc.code || env.Error != tc.err {
			t.Errorf("canary=%s: %d %q (%v), want %d %q", tc.canary, resp.StatusCode, env.Error, err, tc.code, tc.err)
			continue
		}
		if tc.query == "" && len(q.queries) > 0 {
			t.Errorf("canary=%s: queried %q", tc.canary, q.queries)
		}
		if tc.query != "" && !slices.Contains(q.queries, tc.query) {
			t.Errorf("canary=%s: queries %q, want %q among them", tc.canary, q.queries, tc.query)
		}
	}
}
