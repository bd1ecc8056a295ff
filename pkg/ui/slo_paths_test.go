package ui_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	commoncfg "github.com/prometheus/common/config"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/ui"
)

// rulerError is the last evaluation error a ruler (Thanos Ruler querying
// through a bearer token file) reports for a rule it cannot evaluate.
const rulerError = `Post "http://thanos-query:10902/api/v1/query": unable to read authorization credentials file /nonexistent/sred-test/secrets/query-token: open /nonexistent/sred-test/secrets/query-token: no such file or directory`

// TestSLOPagesPathsShownToAdminsOnly: the console's pages of error budgets
// show errors of Prometheus that can name the server's files. A viewer
// reads them with the paths cut to their base names, URLs whole; an admin
// reads them whole: the home page's failure of the last budget poll (a
// credentials file that cannot be read) and, on an SLO's page, the last
// evaluation error of a generated alert rule as the rules API reports it.
func TestSLOPagesPathsShownToAdminsOnly(t *testing.T) {
	db, err := store.OpenSQLite(t.Context(), t.TempDir())
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Migrate(t.Context(), incident.Migrations, budget.Migrations))
	svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	bs := budget.New(budget.Options{DB: db, Registerer: prometheus.NewRegistry()})
	point := func(url string, hc commoncfg.HTTPClientConfig) {
		t.Helper()
		prom, err := budget.NewProm(url, hc, 10*time.Second)
		require.NoError(t, err)
		require.NoError(t, bs.Update(budget.DefaultConfig, specs(t, 1, 1), prom, nil))
	}

	// The poll fails on a credentials file that went away.
	dir := t.TempDir()
	creds := filepath.Join(dir, "prom-token")
	require.NoError(t, os.WriteFile(creds, []byte("prom-secret\n"), 0o600))
	hc := commoncfg.DefaultHTTPClientConfig
	hc.Authorization = &commoncfg.Authorization{Type: "Bearer", CredentialsFile: creds}
	down := "http://127.0.0.1:" + strconv.Itoa(testutil.FreePort(t)) + "/prom"
	point(down, hc)
	require.NoError(t, os.Remove(creds))
	require.Error(t, bs.Poll(t.Context()))
	require.Contains(t, bs.LastPollFailure().Err.Error(), creds)
	requirePathsShownToAdminsOnly(t, ui.Sources{Incidents: svc, Budgets: bs}, []string{"/"},
		creds+": no such file or directory", "open prom-token: no such file or directory", dir)
	requirePathsShownToAdminsOnly(t, ui.Sources{Incidents: svc, Budgets: bs}, []string{"/"},
		down, down, dir)

	// A ruler reports a generated rule it cannot evaluate.
	ruler := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/rules" {
			http.Error(w, `{"status":"error","errorType":"bad_data","error":"not a query API"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"groups":[{"name":"slo-svc000-slo00","file":"/etc/thanos/rules/svc000.yml","interval":30,` +
			`"rules":[{"type":"alerting","name":"SLOBurnRatePage","query":"slo:burn_rate:ratio_rate1h > 14.4","duration":120,` +
			`"labels":{"service":"svc000","slo":"slo00","burn_tier":"page_fast","severity":"page"},"annotations":{},"alerts":[],` +
			`"health":"err","lastError":` + strconv.Quote(rulerError) + `,"state":"inactive","evaluationTime":0.001,"lastEvaluation":"2026-01-01T00:00:00Z"}]}]}}`))
	}))
	defer ruler.Close()
	point(ruler.URL, commoncfg.DefaultHTTPClientConfig)
	requirePathsShownToAdminsOnly(t, ui.Sources{Incidents: svc, Budgets: bs}, []string{"/slos/svc000/slo00"},
		"credentials file /nonexistent/sred-test/secrets/query-token: open /nonexistent/sred-test/secrets/query-token: no such file or directory",
		`Post &#34;http://thanos-query:10902/api/v1/query&#34;: unable to read authorization credentials file query-token: open query-token: no such file or directory`,
		"/nonexistent/")
}
