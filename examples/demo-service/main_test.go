package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/promslog"
)

func newTestServer(t *testing.T) (*service, *prometheus.Registry, *httptest.Server) {
	t.Helper()
	reg := prometheus.NewRegistry()
	svc := newService(reg, promslog.NewNopLogger())
	srv := httptest.NewServer(svc.handler(reg))
	t.Cleanup(srv.Close)
	return svc, reg, srv
}

func do(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func TestErrorInjectionAndHeal(t *testing.T) {
	svc, _, srv := newTestServer(t)

	for range 10 {
		if code, _ := do(t, "GET", srv.URL+"/api/work"); code != 200 {
			t.Fatalf("healthy request: got %d", code)
		}
	}
	if code, body := do(t, "POST", srv.URL+"/admin/errors?rate=1"); code != 200 || body != `{"error_rate":1,"latency_seconds":0}` {
		t.Fatalf("set errors: %d %s", code, body)
	}
	for range 5 {
		if code, _ := do(t, "GET", srv.URL+"/api/work"); code != 500 {
			t.Fatalf("request with rate=1: got %d", code)
		}
	}
	if got := testutil.ToFloat64(svc.requests.WithLabelValues("/api/work", "get", "200")); got != 10 {
		t.Errorf(`http_requests_total{code="200"} = %v, want 10`, got)
	}
	if got := testutil.ToFloat64(svc.requests.WithLabelValues("/api/work", "get", "500")); got != 5 {
		t.Errorf(`http_requests_total{code="500"} = %v, want 5`, got)
	}
	if got := testutil.ToFloat64(svc.errorRateGauge); got != 1 {
		t.Errorf("demo_error_rate = %v, want 1", got)
	}

	if code, body := do(t, "POST", srv.URL+"/admin/heal"); code != 200 || body != `{"error_rate":0,"latency_seconds":0}` {
		t.Fatalf("heal: %d %s", code, body)
	}
	if code, _ := do(t, "GET", srv.URL+"/api/work"); code != 200 {
		t.Fatalf("request after heal: got %d", code)
	}
	if got := testutil.ToFloat64(svc.heals); got != 1 {
		t.Errorf("demo_heals_total = %v, want 1", got)
	}
}

func TestLatencyInjection(t *testing.T) {
	_, reg, srv := newTestServer(t)
	if code, body := do(t, "POST", srv.URL+"/admin/latency?duration=300ms"); code != 200 || body != `{"error_rate":0,"latency_seconds":0.3}` {
		t.Fatalf("set latency: %d %s", code, body)
	}
	start := time.Now()
	if code, _ := do(t, "GET", srv.URL+"/api/work"); code != 200 {
		t.Fatalf("slow request: got %d", code)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("request took %v, want >= 300ms", d)
	}
	// The request falls into the le=0.5 bucket but not into le=0.25.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	buckets := map[float64]uint64{}
	var count uint64
	for _, mf := range mfs {
		if mf.GetName() != "http_request_duration_seconds" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		count = h.GetSampleCount()
		for _, b := range h.GetBucket() {
			buckets[b.GetUpperBound()] = b.GetCumulativeCount()
		}
	}
	if count != 1 || buckets[0.25] != 0 || buckets[0.5] != 1 {
		t.Errorf("histogram: count %d, le=0.25 %d, le=0.5 %d; want 1, 0, 1", count, buckets[0.25], buckets[0.5])
	}
}

func TestAdminBadInput(t *testing.T) {
	svc, _, srv := newTestServer(t)
	for _, tc := range []struct {
		path, want string
	}{
		{"/admin/errors?rate=abc", `{"error":"parameter rate=\"abc\": not a number"}`},
		{"/admin/errors", `{"error":"parameter rate=\"\": not a number"}`},
		{"/admin/errors?rate=1.5", `{"error":"parameter rate=\"1.5\": error rate 1.5 out of range [0, 1]"}`},
		{"/admin/errors?rate=-0.1", `{"error":"parameter rate=\"-0.1\": error rate -0.1 out of range [0, 1]"}`},
		{"/admin/errors?rate=NaN", `{"error":"parameter rate=\"NaN\": error rate NaN out of range [0, 1]"}`},
		{"/admin/latency?duration=fast", `{"error":"parameter duration=\"fast\": not a duration such as 300ms"}`},
		{"/admin/latency?duration=-1s", `{"error":"parameter duration=\"-1s\": latency -1s out of range [0s, 1m0s]"}`},
		{"/admin/latency?duration=2h", `{"error":"parameter duration=\"2h\": latency 2h0m0s out of range [0s, 1m0s]"}`},
	} {
		t.Run(tc.path, func(t *testing.T) {
			code, body := do(t, "POST", srv.URL+tc.path)
			if code != http.StatusBadRequest || body != tc.want {
				t.Errorf("got %d %s, want 400 %s", code, body, tc.want)
			}
		})
	}
	// Nothing changed.
	if st := svc.state(); st.ErrorRate != 0 || st.LatencySeconds != 0 {
		t.Errorf("state changed by bad input: %+v", st)
	}
	// Admin endpoints only accept POST.
	if code, _ := do(t, "GET", srv.URL+"/admin/heal"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /admin/heal: got %d, want 405", code)
	}
}

func TestMetricsExposition(t *testing.T) {
	_, _, srv := newTestServer(t)
	do(t, "GET", srv.URL+"/api/work")
	code, body := do(t, "GET", srv.URL+"/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics: %d", code)
	}
	for _, want := range []string{
		`http_requests_total{code="200",handler="/api/work",method="get"} 1`,
		`http_requests_total{code="500",handler="/api/work",method="get"} 0`,
		`http_request_duration_seconds_bucket{handler="/api/work",method="get",le="0.2"} 1`,
		`http_request_duration_seconds_count{handler="/api/work",method="get"} 1`,
		`demo_error_rate 0`,
		// What the data-integrity SLO of examples/slos/api.yml reads: it
		// had no data in the demo, so the console showed it unknown.
		`api_integrity_checks_total{result="match"} 1`,
		`api_integrity_checks_total{result="mismatch"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// The memory and pool gauges of the healing rules move with the admin API;
// a restart brings them back.
func TestResources(t *testing.T) {
	svc, _, srv := newTestServer(t)
	ratio := func() float64 { return testutil.ToFloat64(svc.memoryUsed) / testutil.ToFloat64(svc.memoryLimit) }
	if got := ratio(); got != memoryBaseline {
		t.Fatalf("memory ratio at start = %v, want %v", got, memoryBaseline)
	}
	if code, body := do(t, "POST", srv.URL+"/admin/memory?ratio=0.95"); code != 200 ||
		body != `{"memory_used_bytes":510027366.4,"memory_limit_bytes":536870912,"memory_ratio":0.95,"pool_in_use":0,"pool_max":20,"restarts":0}` {
		t.Fatalf("set memory: %d %s", code, body)
	}
	if got := ratio(); got != 0.95 {
		t.Errorf("memory ratio = %v, want 0.95", got)
	}
	if code, _ := do(t, "POST", srv.URL+"/admin/pool?in_use=20"); code != 200 {
		t.Fatalf("set pool: %d", code)
	}
	if got := testutil.ToFloat64(svc.poolInUse) / testutil.ToFloat64(svc.poolMax); got != 1 {
		t.Errorf("pool ratio = %v, want 1", got)
	}
	if code, body := do(t, "POST", srv.URL+"/admin/db/pool/reset"); code != 200 || !strings.Contains(body, `"pool_in_use":0`) {
		t.Fatalf("pool reset: %d %s", code, body)
	}
	do(t, "POST", srv.URL+"/admin/pool?in_use=5")
	if code, body := do(t, "POST", srv.URL+"/admin/restart"); code != 200 ||
		body != `{"memory_used_bytes":134217728,"memory_limit_bytes":536870912,"memory_ratio":0.25,"pool_in_use":0,"pool_max":20,"restarts":1}` {
		t.Fatalf("restart: %d %s", code, body)
	}
	if got := testutil.ToFloat64(svc.restarts); got != 1 {
		t.Errorf("demo_restarts_total = %v, want 1", got)
	}
	for _, u := range []string{"/admin/memory?ratio=1.5", "/admin/memory?ratio=x", "/admin/pool?in_use=21", "/admin/pool?in_use=-1"} {
		if code, _ := do(t, "POST", srv.URL+u); code != 400 {
			t.Errorf("POST %s: %d, want 400", u, code)
		}
	}
	if code, body := do(t, "GET", srv.URL+"/admin/resources"); code != 200 || !strings.Contains(body, `"restarts":1`) {
		t.Errorf("resources: %d %s", code, body)
	}
}
