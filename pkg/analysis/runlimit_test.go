package analysis

import (
	"context"
	"fmt"
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

// gatedQuerier answers 1 to every query and counts them; while gate is
// open (not closed) its queries wait for it.
type gatedQuerier struct {
	gate chan struct{}
	// entered, when set, is sent to at each query.
	entered chan struct{}

	mu sync.Mutex
	n  int
}

func (q *gatedQuerier) Instant(ctx context.Context, _ string, at time.Time) (model.Vector, error) {
	q.mu.Lock()
	q.n++
	q.mu.Unlock()
	if q.entered != nil {
		q.entered <- struct{}{}
	}
	select {
	case <-q.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return model.Vector{{Metric: model.Metric{}, Value: 1000, Timestamp: model.TimeFromUnixNano(at.UnixNano())}}, nil
}

func (q *gatedQuerier) Range(context.Context, string, v1.Range) (model.Matrix, error) {
	return nil, nil
}

func (q *gatedQuerier) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

func runServer(t *testing.T, q Querier, c clock.Clock, l RunLimit) (*Service, *httptest.Server) {
	t.Helper()
	svc := NewService(Options{Evaluator: NewEvaluator(q, nil), Clock: c, RunLimit: l})
	svc.SetSpecs([]*Spec{parse(t, strings.Replace(analysisSpec, "name: api", "name: podinfo", 1))})
	mux := http.NewServeMux()
	svc.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return svc, srv
}

func doRun(t *testing.T, method, url, body string) (int, http.Header, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Error(err)
		return 0, nil, ""
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, nil, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// Identical runs (same analysis, canary, baseline and time) arriving while
// one is evaluated share its answer: Prometheus is asked one set of
// queries, whatever the number of callers, and none of them counts against
// the run limit but the first.
func TestIdenticalRunsShareQueries(t *testing.T) {
	end := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	// One run alone: the number of queries of a set.
	open := make(chan struct{})
	close(open)
	one := &gatedQuerier{gate: open}
	_, srv := runServer(t, one, clock.NewManual(end), RunLimit{Burst: 2})
	if code, _, body := doRun(t, http.MethodGet, srv.URL+"/api/v1/analysis/podinfo/run?canary=job=api,track=canary&baseline=job=api,track=stable", ""); code != http.StatusOK {
		t.Fatalf("one run: %d %s", code, body)
	}
	set := one.count()
	if set == 0 {
		t.Fatal("a run asked no query")
	}

	const n = 20
	for _, c := range []struct{ name, method, path, body string }{
		{"GET run", http.MethodGet, "/api/v1/analysis/podinfo/run?canary=job=api,track=canary&baseline=job=api,track=stable", ""},
		{"POST run", http.MethodPost, "/api/v1/analysis/podinfo/run", `{"canary": {"track": "canary", "job": "api"}, "baseline": {"job": "api", "track": "stable"}}`},
		{"flagger rollback", http.MethodPost, FlaggerRollback, `{"name": "podinfo", "namespace": "prod", "metadata": {"canary": "job=api,track=canary", "baseline": "job=api,track=stable"}}`},
		{"flagger confirm-promotion", http.MethodPost, FlaggerConfirmPromotion, `{"name": "podinfo", "namespace": "prod", "metadata": {"canary": "job=api,track=canary", "baseline": "job=api,track=stable"}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			q := &gatedQuerier{gate: make(chan struct{}), entered: make(chan struct{}, 1000*n)}
			// A burst of 2: the 20 runs pass only because they share one.
			svc, srv := runServer(t, q, clock.NewManual(end), RunLimit{Burst: 2})
			joined := make(chan struct{}, n)
			svc.joined = func() { joined <- struct{}{} }
			type answer struct {
				code int
				body string
			}
			answers := make(chan answer, n)
			for range n {
				go func() {
					code, _, body := doRun(t, c.method, srv.URL+c.path, c.body)
					answers <- answer{code, body}
				}()
			}
			// Every run but the first joins the first, which waits for
			// Prometheus; more than one set of queries started means
			// runs were not shared.
			for joins, queries := 0, 0; joins < n-1 && queries <= set; {
				select {
				case <-joined:
					joins++
				case <-q.entered:
					queries++
				}
			}
			close(q.gate)
			var first string
			for range n {
				a := <-answers
				if a.code != http.StatusOK && a.code != http.StatusPreconditionFailed {
					t.Fatalf("%d %s", a.code, a.body)
				}
				if first == "" {
					first = a.body
				} else if a.body != first {
					t.Errorf("answers differ:\n%s\n%s", a.body, first)
				}
			}
			if got := q.count(); got != set {
				t.Errorf("%d runs asked %d queries, want one set of %d", n, got, set)
			}
		})
	}
}

// A client looping on runs beyond analysis.run_limit is answered 429 with
// Retry-After, nothing queried, the Flagger hooks included; a client
// calling once per interval is always answered.
func TestRunLimit(t *testing.T) {
	end := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	open := make(chan struct{})
	close(open)
	q := &gatedQuerier{gate: open}
	clk := clock.NewManual(end)
	_, srv := runServer(t, q, clk, RunLimit{Burst: 5, Every: model.Duration(10 * time.Second)})
	run := func(i int) (int, http.Header, string) {
		// Distinct runs (canary labels differ): none shares another's.
		return doRun(t, http.MethodPost, srv.URL+"/api/v1/analysis/podinfo/run",
			fmt.Sprintf(`{"canary": {"job": "api", "track": "canary-%d"}, "baseline": {"job": "api", "track": "stable"}}`, i))
	}
	for i := range 5 {
		if code, _, body := run(i); code != http.StatusOK {
			t.Fatalf("run %d: %d %s", i, code, body)
		}
	}
	before := q.count()
	for i := 5; i < 50; i++ {
		code, h, body := run(i)
		if code != http.StatusTooManyRequests || h.Get("Retry-After") != "10" || !strings.Contains(body, `too many runs of analysis \"podinfo\"`) {
			t.Fatalf("run %d over the limit: %d Retry-After %q %s", i, code, h.Get("Retry-After"), body)
		}
	}
	code, h, body := doRun(t, http.MethodPost, srv.URL+FlaggerRollback, `{"name": "podinfo", "namespace": "prod", "metadata": {"canary": "job=api,track=canary"}}`)
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Errorf("flagger hook over the limit: %d %s", code, body)
	}
	if got := q.count(); got != before {
		t.Errorf("runs over the limit asked %d queries", got-before)
	}
	// Once per interval is always answered.
	for i := range 10 {
		clk.Advance(10 * time.Second)
		if code, _, body := run(100 + i); code != http.StatusOK {
			t.Fatalf("run after 10s: %d %s", code, body)
		}
	}
}
