package budget_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/testutil"
)

// While Prometheus is down, every gate request is answered without budgets;
// any viewer may ask at will, so the warning is logged once a minute per
// service, with how many were not logged, not once per request.
func TestGateWithoutBudgetsLoggedOnceAMinute(t *testing.T) {
	var logs bytes.Buffer
	clk := clock.NewManual(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	s := budget.New(budget.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Clock: clk})
	prom, err := budget.NewProm(fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t)), commoncfg.DefaultHTTPClientConfig, 10*time.Second)
	require.NoError(t, err)
	require.NoError(t, s.Update(budget.DefaultConfig, loadSpecs(t), prom, nil))
	mux := http.NewServeMux()
	s.Register(mux)

	warnings := func() []string {
		var out []string
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "deploy gate without budgets") {
				out = append(out, l)
			}
		}
		return out
	}
	for range 20 {
		code, _ := get(t, mux, "/api/v1/gate?service=web", nil)
		require.Equal(t, http.StatusOK, code)
	}
	code, _ := get(t, mux, "/api/v1/gate?service=api", nil)
	require.Equal(t, http.StatusOK, code)
	w := warnings()
	require.Len(t, w, 2, "one line for web, one for api")
	require.Contains(t, w[0], "service=web")
	require.Contains(t, w[1], "service=api")

	clk.Advance(time.Minute)
	code, _ = get(t, mux, "/api/v1/gate?service=web", nil)
	require.Equal(t, http.StatusOK, code)
	w = warnings()
	require.Len(t, w, 3)
	require.Contains(t, w[2], "service=web")
	require.Contains(t, w[2], "not_logged=19")
}
