package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	tu "github.com/rootuip/sre/pkg/testutil"
)

// runApp builds the whole sred on a backend ("sqlite" or "postgres") with
// config, calls prepare (when not nil) before anything runs, serves its mux
// on a real HTTP server and runs its actors until the test ends.
func runApp(t *testing.T, backend, config string, prepare func(*App)) (*App, *httptest.Server) {
	t.Helper()
	return runAppOptions(t, appOptions(t, backend, config), prepare)
}

// appOptions are the options runApp starts sred with: config in a file of
// a temporary directory, the store on backend ("sqlite" or "postgres").
func appOptions(t *testing.T, backend, config string) Options {
	t.Helper()
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "sred.yml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(config), 0o644))
	o := Options{ConfigFile: cfgFile, StoragePath: filepath.Join(dir, "data")}
	if backend == "postgres" {
		o.PostgresURL = tu.PostgresSchemaURL(t)
	}
	return o
}

// runAppOptions starts sred with o (a configuration file of its own, such
// as examples/sred.yml, whose relative paths resolve from its directory)
// as runApp does.
func runAppOptions(t *testing.T, o Options, prepare func(*App)) (*App, *httptest.Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, o)
	if err != nil {
		cancel()
		t.Fatalf("start sred: %v", err)
	}
	if prepare != nil {
		prepare(a)
	}
	srv := httptest.NewServer(a.Handler())
	var wg sync.WaitGroup
	for _, act := range a.Actors() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := act.Execute(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("actor %s: %v", act.Name, err)
			}
		}()
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		srv.Close()
		a.Close()
	})
	return a, srv
}

type apiEnvelope struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

// getJSON fetches url from the real server and decodes the envelope; data,
// when not nil, receives the payload of a success.
func getJSON(t *testing.T, url string, hdr map[string]string, data any) (int, apiEnvelope) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var env apiEnvelope
	require.NoError(t, json.Unmarshal(b, &env), "GET %s: %s", url, b)
	if data != nil && resp.StatusCode == http.StatusOK {
		require.NoError(t, json.Unmarshal(env.Data, data), "GET %s: %s", url, b)
	}
	return resp.StatusCode, env
}

func scrape(t *testing.T, url string) (map[string]*dto.MetricFamily, []byte) {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	require.NoError(t, err, "parse /metrics")
	return mfs, body
}

// metricValue returns the value of the gauge or counter of family name with
// exactly these label values (among the labels given), and whether there is one.
func metricValue(mfs map[string]*dto.MetricFamily, name string, lbl map[string]string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		for k, v := range lbl {
			if label(m, k) != v {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

// waitFor polls cond on the test's goroutine (so cond may use require)
// until it holds, for at most 60 seconds (generous: a loaded machine).
func waitFor(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
