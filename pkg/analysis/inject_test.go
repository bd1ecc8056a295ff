package analysis

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/clock"
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
