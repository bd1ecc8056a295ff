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
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/limits"
)

// recordingQuerier answers 1 to every query and keeps the queries asked.
type recordingQuerier struct {
	mu      sync.Mutex
	queries []string
}

func (q *recordingQuerier) Instant(_ context.Context, query string, at time.Time) (model.Vector, error) {
	q.mu.Lock()
	q.queries = append(q.queries, query)
	q.mu.Unlock()
	return model.Vector{{Metric: model.Metric{}, Value: 1000, Timestamp: model.TimeFromUnixNano(at.UnixNano())}}, nil
}

func (q *recordingQuerier) Range(context.Context, string, v1.Range) (model.Matrix, error) {
	return nil, nil
}

// A spec may write {{.Service}} inside a quoted matcher value; the
// service is the caller's (a viewer's, Argo Rollouts' args, Flagger's
// metadata), so one that is not a service name is refused before any
// query is rendered, and never changes what Prometheus is asked.
func TestServiceNotInjectedIntoQueries(t *testing.T) {
	spec := parse(t, `apiVersion: sre.rootuip.io/v1
kind: RolloutAnalysis
name: by-job
service: api
minRequests: 1
rollbackTriggers:
  latencyIncrease: {enabled: false}
checks:
  - name: deps
    type: threshold
    query: sum(up{job="{{.Service}}-deps"})
    min: 1
    noData: fail
`)
	q := &recordingQuerier{}
	svc := NewService(Options{Evaluator: NewEvaluator(q, nil), Clock: clock.NewManual(time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC))})
	svc.SetSpecs([]*Spec{spec})
	mux := http.NewServeMux()
	svc.Register(mux)
	post := func(path string, body any) (int, string) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, path, bytes.NewReader(b))
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		out, _ := io.ReadAll(rec.Result().Body)
		return rec.Result().StatusCode, string(out)
	}
	for _, service := range []string{
		`api"}) or vector(1) or sum(up{job="x`,
		"api\n",
		`api\`,
		"api'",
		"",
	} {
		q.queries = nil
		canary := map[string]string{"job": "api", "track": "canary"}
		code, body := post("/api/v1/analysis/by-job/run", map[string]any{"service": service, "canary": canary})
		if service == "" {
			if code != http.StatusOK {
				t.Fatalf("the spec's service: %d %s", code, body)
			}
			continue
		}
		if code != http.StatusBadRequest || !strings.Contains(body, "service") {
			t.Errorf("run with service %q: %d %s, want 400 naming the service", service, code, body)
		}
		code, body = post(FlaggerRollback, map[string]any{"name": "api", "namespace": "prod",
			"metadata": map[string]string{"analysis": "by-job", "service": service, "canary": "job=api,track=canary"}})
		if code != http.StatusBadRequest || !strings.Contains(body, "service") {
			t.Errorf("flagger rollback with service %q: %d %s, want 400 naming the service", service, code, body)
		}
		for _, qq := range q.queries {
			t.Errorf("service %q: queried %s", service, qq)
		}
	}
	for _, qq := range q.queries {
		if strings.Contains(qq, "up{job=") && qq != `sum(up{job="api-deps"})` {
			t.Errorf("query %s", qq)
		}
	}
}

// A service that is not a service name is echoed cut, not whole (up to
// the 253 bytes a service may have).
func TestBadServiceEchoedCut(t *testing.T) {
	spec := parse(t, `apiVersion: sre.rootuip.io/v1
kind: RolloutAnalysis
name: by-job
service: api
minRequests: 1
`)
	q := &recordingQuerier{}
	svc := NewService(Options{Evaluator: NewEvaluator(q, nil), Clock: clock.NewManual(time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC))})
	svc.SetSpecs([]*Spec{spec})
	mux := http.NewServeMux()
	svc.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	service := "api " + strings.Repeat("x", 240)
	b, _ := json.Marshal(map[string]any{"service": service, "canary": map[string]string{"job": "api"}, "baseline": map[string]string{"job": "api"}})
	resp, err := http.Post(srv.URL+"/api/v1/analysis/by-job/run", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "is not a service name") {
		t.Fatalf("%d %s, want 400 naming the service", resp.StatusCode, body)
	}
	if strings.Contains(string(body), strings.Repeat("x", limits.MaxEchoBytes+1)) {
		t.Errorf("the service is echoed whole: %s", body)
	}
	if len(q.queries) > 0 {
		t.Errorf("queried %q", q.queries)
	}
}

// Labels long enough to render a query past its bound are the caller's
// mistake (400 naming it), not the server's (500).
func TestLongLabelsRefused(t *testing.T) {
	q := &recordingQuerier{}
	srv := newServer(t, NewEvaluator(q, nil), nil, time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC))
	body, _ := json.Marshal(RunRequest{Canary: map[string]string{"job": strings.Repeat("a", maxQueryBytes)}, Baseline: map[string]string{"job": "api"}})
	resp, err := http.Post(srv.URL+"/api/v1/analysis/api/run", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "labels make a query longer than 65536 bytes") {
		t.Errorf("%d %s, want 400 naming the labels", resp.StatusCode, b)
	}
	if len(q.queries) != 0 {
		t.Errorf("queried %d times", len(q.queries))
	}
}

// A Flagger hook's metadata.canary of many labels is read in one pass:
// refused as too long a query, having allocated about what the body holds.
// Before, each label copied the rest of the list: 256 KiB of labels
// allocated gigabytes (a list of 1 MiB, the body limit, kept a core busy
// for minutes), before the run limit counted anything.
func TestManyLabelsParsedInOnePass(t *testing.T) {
	q := &recordingQuerier{}
	srv := newServer(t, NewEvaluator(q, nil), nil, time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC))
	var labels strings.Builder
	for i := 0; labels.Len() < 256<<10; i++ {
		fmt.Fprintf(&labels, "l%d=v,", i)
	}
	body, _ := json.Marshal(FlaggerPayload{Name: "api", Namespace: "prod", Metadata: map[string]string{"canary": labels.String(), "baseline": "job=api"}})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	resp, err := http.Post(srv.URL+FlaggerRollback, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	runtime.ReadMemStats(&after)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "labels make a query longer than 65536 bytes") {
		t.Errorf("%d %.300s, want 400 naming the labels", resp.StatusCode, b)
	}
	// The request, its labels and their answer: some megabytes. Copying
	// the rest of the list per label: over 3 GB.
	if n := after.TotalAlloc - before.TotalAlloc; n > 256<<20 {
		t.Errorf("allocated %d MiB for %d bytes of labels", n>>20, labels.Len())
	}
	if len(q.queries) != 0 {
		t.Errorf("queried %d times", len(q.queries))
	}
}

// idleQuerier answers for a canary that is up but has served no request
// yet (the first check of a rollout): its CPU seconds per request divide
// by zero (+Inf), its error ratio and latency are NaN, and no SLO
// recording exists.
type idleQuerier struct{}

func (idleQuerier) Instant(_ context.Context, q string, at time.Time) (model.Vector, error) {
	canary := strings.Contains(q, `track="canary"`)
	var v float64
	switch {
	case strings.Contains(q, "slo:burn_rate"):
		return nil, nil
	case strings.Contains(q, "process_cpu_seconds_total") && canary:
		v = math.Inf(1)
	case strings.Contains(q, "process_cpu_seconds_total"):
		v = 0.0014
	case strings.Contains(q, "up{"):
		v = 1
	case strings.Contains(q, "histogram_quantile") && canary, strings.Contains(q, `code=~`) && canary:
		v = math.NaN()
	case strings.Contains(q, "histogram_quantile"):
		v = 0.1
	case canary:
		v = 0
	default:
		v = 1200
	}
	return model.Vector{{Metric: model.Metric{}, Value: model.SampleValue(v), Timestamp: model.TimeFromUnixNano(at.UnixNano())}}, nil
}

func (idleQuerier) Range(context.Context, string, v1.Range) (model.Matrix, error) { return nil, nil }

// A canary that has served no request is paused, not rolled back, by a
// check whose value is per request (the example's saturation): its +Inf is
// no evidence, and the Flagger rollback hook, which Flagger asks from the
// first interval on, must not roll back every canary before its traffic.
func TestIdleCanaryNotRolledBack(t *testing.T) {
	end := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	srv := newServer(t, NewEvaluator(idleQuerier{}, nil), nil, end)
	meta := map[string]string{"analysis": "api", "canary": "job=api,track=canary", "baseline": "job=api,track=stable"}
	ok, ans, code := flaggerCall(t, srv.URL+FlaggerRollback, meta)
	if ok || ans.Result == nil || ans.Result.Verdict != Inconclusive {
		t.Fatalf("rollback hook: success %v (%d), want no rollback of an idle canary: %+v", ok, code, ans)
	}
	for _, c := range ans.Result.Checks {
		want := Inconclusive
		if c.Name == "health" {
			want = Pass
		}
		if c.Verdict != want {
			t.Errorf("check %s: %s (%s), want %s", c.Name, c.Verdict, c.Reason, want)
		}
		if c.Name == "saturation" && !strings.Contains(c.Reason, "its value is infinite") {
			t.Errorf("saturation: reason %q", c.Reason)
		}
	}
	if ok, ans, _ := flaggerCall(t, srv.URL+FlaggerConfirmPromotion, meta); ok || ans.Result.Verdict != Inconclusive {
		t.Errorf("confirm-promotion: success %v, verdict %s, want held as inconclusive", ok, ans.Result.Verdict)
	}
}

// What a caller gets wrong in a run's target is a 400 naming it, before
// Prometheus is asked: a reserved label name (Prometheus would refuse the
// query, which sred would report as unavailable, 503), a parameter given
// twice (the second was ignored).
func TestRunTargetMistakes(t *testing.T) {
	q := &recordingQuerier{}
	srv := newServer(t, NewEvaluator(q, nil), nil, time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC))
	for _, tc := range []struct{ query, err string }{
		{"canary=__name__=up&baseline=job=api", `canary label name \"__name__\" is reserved`},
		{"canary=job=api&baseline=__meta_pod=x", `baseline label name \"__meta_pod\" is reserved`},
		{"canary=job=api,track=canary&canary=job=other&baseline=job=api", `parameter \"canary\" given 2 times`},
		{"canary=job=api&baseline=job=api&service=api&service=other", `parameter \"service\" given 2 times`},
	} {
		resp, err := http.Get(srv.URL + "/api/v1/analysis/api/run?" + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), tc.err) {
			t.Errorf("%s: %d %s, want 400 with %s", tc.query, resp.StatusCode, b, tc.err)
		}
	}
	if len(q.queries) != 0 {
		t.Errorf("Prometheus asked %d queries", len(q.queries))
	}
}

// A label with an empty value in a run's canary or baseline (a GET list or
// a POST body, as Argo Rollouts' web provider sends it with an unset
// argument) is a 400 naming the label, before Prometheus is asked:
// app="" selects the series without the label, and the analysis could
// pass on other series or on none.
func TestRunEmptyLabelValueRefused(t *testing.T) {
	q := &recordingQuerier{}
	srv := newServer(t, NewEvaluator(q, nil), nil, time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC))
	for _, tc := range []struct {
		query string
		body  map[string]any
		err   string
	}{
		{query: "canary=job=,track=canary&baseline=job=api,track=stable", err: "canary label job has an empty value, which selects the series without that label"},
		{query: `canary=job="",track=canary&baseline=job=api,track=stable`, err: "canary label job has an empty value"},
		{query: "canary=job=api,track=canary&baseline=job=api,track=", err: "baseline label track has an empty value"},
		{body: map[string]any{"canary": map[string]string{"job": "api", "rollouts_pod_template_hash": ""}, "baseline": map[string]string{"job": "api", "rollouts_pod_template_hash": "abc"}},
			err: "canary label rollouts_pod_template_hash has an empty value"},
		{body: map[string]any{"canary": map[string]string{"job": "api", "track": "canary"}, "baseline": map[string]string{"job": "", "track": "stable"}},
			err: "baseline label job has an empty value"},
	} {
		var resp *http.Response
		var err error
		if tc.body == nil {
			resp, err = http.Get(srv.URL + "/api/v1/analysis/api/run?" + tc.query)
		} else {
			b, _ := json.Marshal(tc.body)
			resp, err = http.Post(srv.URL+"/api/v1/analysis/api/run", "application/json", bytes.NewReader(b))
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), tc.err) {
			t.Errorf("%s %v: %d %s, want 400 with %q", tc.query, tc.body, resp.StatusCode, b, tc.err)
		}
	}
	if len(q.queries) != 0 {
		t.Errorf("Prometheus asked %d queries: %v", len(q.queries), q.queries)
	}
}

// A Flagger payload with an empty canary name or namespace, or an empty
// value in the labels selecting the canary's or the primary's series (an
// unset variable in the Canary's metadata), is a 400 naming the field,
// before Prometheus is asked: app="" selects the series without the
// label, the wrong data, which could promote or keep the canary.
func TestFlaggerEmptyFieldsRefused(t *testing.T) {
	q := &recordingQuerier{}
	srv := newServer(t, NewEvaluator(q, nil), nil, time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC))
	for _, tc := range []struct {
		name, namespace string
		meta            map[string]string
		err             string
	}{
		{"", "test", map[string]string{"analysis": "podinfo", "canary": "app=podinfo", "baseline": "app=podinfo-primary"},
			"flagger webhook: name of the canary is required"},
		{"podinfo", "", map[string]string{"analysis": "podinfo", "canary": "app=podinfo", "baseline": "app=podinfo-primary"},
			"flagger webhook: namespace of the canary is required"},
		{"podinfo", "test", map[string]string{"analysis": "podinfo", "canary": "app=,track=canary", "baseline": "app=podinfo-primary"},
			"flagger %s hook: metadata.canary: label app has an empty value, which selects the series without that label"},
		{"podinfo", "test", map[string]string{"analysis": "podinfo", "canary": `app="",track=canary`, "baseline": "app=podinfo-primary"},
			"flagger %s hook: metadata.canary: label app has an empty value"},
		{"podinfo", "test", map[string]string{"analysis": "podinfo", "canary": "app=podinfo", "baseline": "app= "},
			"flagger %s hook: metadata.baseline: label app has an empty value"},
	} {
		for _, hook := range []struct{ name, path string }{{"confirm-promotion", FlaggerConfirmPromotion}, {"rollback", FlaggerRollback}} {
			b, _ := json.Marshal(map[string]any{"name": tc.name, "namespace": tc.namespace, "phase": "Progressing", "metadata": tc.meta})
			resp, err := http.Post(srv.URL+hook.path, "application/json", bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := tc.err
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, hook.name)
			}
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), want) {
				t.Errorf("%s %s/%s %v: %d %s, want 400 with %q", hook.name, tc.namespace, tc.name, tc.meta, resp.StatusCode, body, want)
			}
		}
	}
	if len(q.queries) != 0 {
		t.Errorf("Prometheus asked %d queries: %v", len(q.queries), q.queries)
	}
}

// scrapeQuerier answers for a canary that serves traffic with errors%
// errors but has no up series (its health check has no data), or, when
// scraped is false, for a canary with no series at all.
type scrapeQuerier struct {
	scraped bool
	errors  float64
}

func (q scrapeQuerier) Instant(_ context.Context, query string, at time.Time) (model.Vector, error) {
	canary := strings.Contains(query, `track="canary"`)
	var v float64
	switch {
	case canary && !q.scraped, strings.Contains(query, "up{"):
		return nil, nil
	case strings.Contains(query, "slo:burn_rate"):
		v = 1
	case strings.Contains(query, "histogram_quantile"):
		v = 0.1
	case strings.Contains(query, `code=~`) && canary:
		v = q.errors / 100
	default:
		v = 1000
	}
	return model.Vector{{Metric: model.Metric{}, Value: model.SampleValue(v), Timestamp: model.TimeFromUnixNano(at.UnixNano())}}, nil
}

func (scrapeQuerier) Range(context.Context, string, v1.Range) (model.Matrix, error) { return nil, nil }

// The Flagger rollback hook rolls back on a check that failed on measured
// data, also when a no-data policy failed another; a fail that comes only
// from no-data policies is a 412 saying there is no data yet.
func TestRollbackOnMeasuredFailureOnly(t *testing.T) {
	end := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	meta := map[string]string{"analysis": "podinfo", "canary": "job=api,track=canary", "baseline": "job=api,track=stable"}
	for _, tc := range []struct {
		name     string
		q        scrapeQuerier
		rollback bool
		message  string
	}{
		{"not scraped", scrapeQuerier{}, false, "no data yet for health (the canary's series are not in Prometheus): no rollback: "},
		{"no up series, 10% errors", scrapeQuerier{scraped: true, errors: 10}, true, "analysis failed: roll back: error-rate fail: canary value 0.1 > 0.05; health fail: no data"},
		{"no up series, no errors", scrapeQuerier{scraped: true}, false, "no data yet for health (the canary's series are not in Prometheus): no rollback: health fail: no data"},
	} {
		srv := newServer(t, NewEvaluator(tc.q, nil), nil, end)
		ok, ans, code := flaggerCall(t, srv.URL+FlaggerRollback, meta)
		if ok != tc.rollback || ans.Result == nil || ans.Result.Verdict != Fail || !strings.HasPrefix(ans.Message, tc.message) {
			t.Errorf("%s: rollback %v (%d) %q, want %v with %q", tc.name, ok, code, ans.Message, tc.rollback, tc.message)
		}
		if ok, _, code := flaggerCall(t, srv.URL+FlaggerConfirmPromotion, meta); ok {
			t.Errorf("%s: confirm-promotion %d, want held", tc.name, code)
		}
	}
}
