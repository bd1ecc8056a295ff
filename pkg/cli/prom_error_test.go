package cli

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/sla"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestPrometheusErrorShortened: when the Prometheus sred queries is down,
// srectl sla report prints one line (where it failed, the start of the
// query and the cause), and the whole query with --verbose.
func TestPrometheusErrorShortened(t *testing.T) {
	specs, err := slo.Parse([]byte(fmt.Sprintf(cliSpecs, "web")), "web.yml")
	require.NoError(t, err)
	down := fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t))
	prom, err := budget.NewProm(down, commoncfg.DefaultHTTPClientConfig, 10*time.Second)
	require.NoError(t, err)
	var slaCfg sla.Config
	require.NoError(t, yaml.Unmarshal([]byte(`
customers:
  - id: ACME-001
    name: Acme Corp
    period: 1d
    services:
      - {service: web, availability: {target: 99.9}}
`), &slaCfg))
	// A fixed clock: the query names the time (@) and must read the same twice.
	end := time.Now().UTC().Truncate(time.Hour)
	rep := sla.NewReporter(clock.NewManual(end))
	require.NoError(t, rep.Update(slaCfg, prom, sla.Lookup(budget.Objectives(specs))))
	mux := http.NewServeMux()
	rep.Register(mux)
	sred := httptest.NewServer(mux)
	defer sred.Close()

	run := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := Main(append([]string{"sla", "report", "--customer=ACME-001", "--sred.url=" + sred.URL}, args...), &stdout, &stderr)
		return code, stderr.String()
	}
	code, whole := run("--verbose")
	require.Equal(t, 3, code, whole)
	require.Contains(t, whole, down)
	lines := strings.Split(strings.TrimSpace(whole), "\n")
	require.Greater(t, len(lines), 2, "the query sred quotes spans several lines: %s", whole)

	code, short := run()
	require.Equal(t, 3, code, short)
	require.Equal(t, 1, strings.Count(short, "\n"), short)
	require.True(t, strings.HasPrefix(short, lines[0]+" [… "), short)
	require.Contains(t, short, fmt.Sprintf("[… %d more lines; --verbose prints them] ", len(lines)-2))
	require.True(t, strings.HasSuffix(short, strings.TrimSpace(lines[len(lines)-1])+"\n"), short)
	require.Contains(t, short, "connection refused")
}
