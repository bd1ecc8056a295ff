package probe

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/testutil"
)

func parse(t *testing.T, src string) Config {
	t.Helper()
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&c))
	return c
}

func TestConfigDefaults(t *testing.T) {
	c := parse(t, `
checks:
  - {name: web, service: demo, http: {url: "http://127.0.0.1:1/-/healthy"}}
  - {name: slow, service: demo, interval: 2m, tcp: {address: "127.0.0.1:1"}}
`)
	require.Equal(t, DefaultInterval, time.Duration(c.Interval))
	require.Equal(t, DefaultTimeout, time.Duration(c.Timeout))
	require.Equal(t, DefaultInterval, time.Duration(c.Checks[0].Interval))
	require.Equal(t, "GET", c.Checks[0].HTTP.Method)
	require.Equal(t, 2*time.Minute, time.Duration(c.Checks[1].Interval))
	require.Equal(t, DefaultTimeout, time.Duration(c.Checks[1].Timeout))

	// The timeout defaults to at most the interval; decoding twice (sred
	// decodes the section's defaults first) keeps nothing of the first.
	var twice Config
	require.NoError(t, yaml.Unmarshal([]byte("{}"), &twice))
	require.NoError(t, yaml.Unmarshal([]byte("interval: 1s"), &twice))
	require.Equal(t, time.Second, time.Duration(twice.Timeout))
}

// One invalid configuration per error, each with its exact message.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ src, err string }{
		{"interval: 5s\ntimeout: 10s", "health_checks: timeout 10s is longer than the interval 5s"},
		{"checks: [{name: 'a b', service: s, tcp: {address: 'h:1'}}]", `health_checks: check "a b": name: want letters, digits, '_', '.' or '-' (at most 63)`},
		{"checks: [{name: a, tcp: {address: 'h:1'}}]", `health_checks: check "a": service is required (the service label the healing rules match)`},
		{"checks: [{name: a, service: s}]", `health_checks: check "a": set exactly one of http, tcp and promql`},
		{"checks: [{name: a, service: s, tcp: {address: 'h:1'}, http: {url: 'http://h/'}}]", `health_checks: check "a": set exactly one of http, tcp and promql`},
		{"checks: [{name: a, service: s, http: {url: '/healthy'}}]", `health_checks: check "a": http: url "/healthy": want an absolute http:// or https:// URL`},
		{"checks: [{name: a, service: s, http: {url: 'http://h/', method: POST}}]", `health_checks: check "a": http: method "POST": want GET or HEAD (a health check changes nothing)`},
		{"checks: [{name: a, service: s, http: {url: 'http://h/', expected_status: [2000]}}]", `health_checks: check "a": http: expected_status 2000 is not an HTTP status code`},
		{"checks: [{name: a, service: s, http: {url: 'http://h/', body_regexp: '('}}]", "health_checks: check \"a\": http: body_regexp: error parsing regexp: missing closing ): `(`"},
		{"checks: [{name: a, service: s, tcp: {address: 'h'}}]", `health_checks: check "a": tcp: address "h": want host:port`},
		{"checks: [{name: a, service: s, promql: {query: 'up{'}}]", `health_checks: check "a": promql: query: 1:4: parse error: unexpected end of input inside braces`},
		{"checks: [{name: a, service: s, promql: {query: 'up', expect: some}}]", `health_checks: check "a": promql: expect "some": want non_empty or empty`},
		{"checks: [{name: a, service: s, interval: 5s, timeout: 6s, tcp: {address: 'h:1'}}]", `health_checks: check "a": timeout 6s is longer than the interval 5s`},
		{"checks: [{name: a, service: s, tcp: {address: 'h:1'}}, {name: a, service: s, tcp: {address: 'h:2'}}]", `health_checks: check "a" is defined twice`},
		{"checks: [{name: a, service: s, tcp: {address: 'h:1', port: 2}}]", "field port not found"},
	} {
		var c Config
		dec := yaml.NewDecoder(strings.NewReader(tc.src))
		dec.KnownFields(true)
		err := dec.Decode(&c)
		require.Error(t, err, tc.src)
		require.Contains(t, err.Error(), tc.err, tc.src)
	}
}

// target is an HTTP service whose health the test sets.
type target struct {
	srv    *httptest.Server
	status atomic.Int32
	body   atomic.Value
	hits   atomic.Int32
}

func newTarget(t *testing.T) *target {
	tg := &target{}
	tg.status.Store(200)
	tg.body.Store("OK")
	tg.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		tg.hits.Add(1)
		w.WriteHeader(int(tg.status.Load()))
		_, _ = w.Write([]byte(tg.body.Load().(string)))
	}))
	t.Cleanup(tg.srv.Close)
	return tg
}

// closedAddress is a loopback address nothing listens on: a port FreePort
// reserved, which no listener on port 0 and no other test is given.
func closedAddress(t *testing.T) string {
	return "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
}

// The checks run on a real HTTP server, a real TCP listener and a real
// Prometheus, and their results come out under blackbox_exporter's names.
func TestProbes(t *testing.T) {
	tg := newTarget(t)
	prom := testutil.StartPrometheus(t, testutil.PrometheusOptions{Config: "global: {scrape_interval: 1h}\n"})
	client, err := api.NewClient(api.Config{Address: prom.URL})
	require.NoError(t, err)
	closed := closedAddress(t)
	open := strings.TrimPrefix(tg.srv.URL, "http://")
	c := parse(t, `
checks:
  - {name: web, service: demo, http: {url: "`+tg.srv.URL+`/-/healthy", body_regexp: "^OK$"}}
  - {name: web-teapot, service: demo, http: {url: "`+tg.srv.URL+`/tea", expected_status: [418]}}
  - {name: port, service: demo, tcp: {address: "`+open+`"}}
  - {name: port-closed, service: other, tcp: {address: "`+closed+`"}}
  - {name: query, service: demo, promql: {query: "vector(1)"}}
  - {name: query-empty, service: demo, promql: {query: "vector(1) == 2", expect: empty}}
  - {name: query-fails, service: demo, promql: {query: "vector(1) == 2"}}
`)
	clk := clock.NewManual(time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC))
	p := New(c, Options{Clock: clk, Prometheus: v1.NewAPI(client)})
	n, next := p.RunDue(context.Background())
	require.Equal(t, 7, n)
	require.Equal(t, clk.Now().Add(DefaultInterval), next)
	got := map[string]Result{}
	for _, r := range p.Results() {
		got[r.Check] = r
	}
	for name, ok := range map[string]bool{"web": true, "web-teapot": false, "port": true, "port-closed": false,
		"query": true, "query-empty": true, "query-fails": false} {
		require.Equal(t, ok, got[name].Success, "%s: %+v", name, got[name])
	}
	require.Equal(t, "status 200, want one of [418]", got["web-teapot"].Error)
	require.Equal(t, "query returned no sample", got["query-fails"].Error)
	require.Contains(t, got["port-closed"].Error, "connection refused")

	// The body and status are checked.
	tg.body.Store("degraded")
	clk.Advance(DefaultInterval)
	n, _ = p.RunDue(context.Background())
	require.Equal(t, 7, n)
	require.Equal(t, `body does not match "^OK$"`, p.Results()[0].Error)
	tg.status.Store(503)
	clk.Advance(DefaultInterval)
	p.RunDue(context.Background())
	require.Equal(t, "status 503, want 2xx", p.Results()[0].Error)

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p)
	want := `
# HELP probe_http_status_code Response HTTP status code
# TYPE probe_http_status_code gauge
probe_http_status_code{instance="` + tg.srv.URL + `/-/healthy",probe="web",service="demo"} 503
probe_http_status_code{instance="` + tg.srv.URL + `/tea",probe="web-teapot",service="demo"} 503
# HELP probe_success Displays whether or not the probe was a success
# TYPE probe_success gauge
probe_success{instance="` + tg.srv.URL + `/-/healthy",probe="web",service="demo"} 0
probe_success{instance="` + tg.srv.URL + `/tea",probe="web-teapot",service="demo"} 0
probe_success{instance="` + open + `",probe="port",service="demo"} 1
probe_success{instance="` + closed + `",probe="port-closed",service="other"} 0
probe_success{instance="query",probe="query",service="demo"} 1
probe_success{instance="query-empty",probe="query-empty",service="demo"} 1
probe_success{instance="query-fails",probe="query-fails",service="demo"} 0
`
	require.NoError(t, promtest.GatherAndCompare(reg, strings.NewReader(want), "probe_success", "probe_http_status_code"))
	require.Equal(t, 7, promtest.CollectAndCount(p, "probe_duration_seconds"))
}

// Run follows the clock: every check runs at start, then each at its own
// interval, and nothing runs between.
func TestRunFollowsClock(t *testing.T) {
	fast, slow := newTarget(t), newTarget(t)
	c := parse(t, `
checks:
  - {name: fast, service: demo, http: {url: "`+fast.srv.URL+`"}}
  - {name: slow, service: demo, interval: 1m, http: {url: "`+slow.srv.URL+`"}}
`)
	clk := clock.NewManual(time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC))
	p := New(c, Options{Clock: clk})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		require.NoError(t, p.Run(ctx))
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	// waitIdle waits until the loop blocks on the clock again.
	waitIdle := func() {
		t.Helper()
		require.NoError(t, clk.WaitWaiters(context.Background(), 1))
	}
	step := func(d time.Duration, wantFast, wantSlow int32) {
		t.Helper()
		clk.Advance(d)
		waitIdle()
		require.Equal(t, wantFast, fast.hits.Load(), "fast after %s", clk.Now().Format(time.TimeOnly))
		require.Equal(t, wantSlow, slow.hits.Load(), "slow after %s", clk.Now().Format(time.TimeOnly))
	}
	step(0, 1, 1)
	step(29*time.Second, 1, 1)
	step(time.Second, 2, 1)    // 30s
	step(30*time.Second, 3, 2) // 1m
	step(10*time.Second, 3, 2)

	// A reload that changes a check runs it at once; one that drops a check
	// drops its series.
	c2 := parse(t, `
checks:
  - {name: fast, service: demo, http: {url: "`+fast.srv.URL+`/v2"}}
`)
	p.SetConfig(c2)
	require.Eventually(t, func() bool { return fast.hits.Load() == 4 }, 30*time.Second, 5*time.Millisecond)
	// The changed check's result is recorded after its request is
	// answered, and the loop may already wait on the clock again: wait for
	// the series, not for the loop (once failed under a concurrent build).
	require.Eventually(t, func() bool { return promtest.CollectAndCount(p, "probe_success") == 1 }, 30*time.Second, 5*time.Millisecond)
	waitIdle()
	require.Equal(t, 1, promtest.CollectAndCount(p, "probe_success"))
	require.Equal(t, int32(2), slow.hits.Load())
}
