package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/chaos"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/targetlock"
)

func TestChaosCommands(t *testing.T) {
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Migrate(ctx, chaos.Migrations, targetlock.Migrations))
	svc := chaos.New(chaos.Options{DB: db, NoAuth: true, Clock: chaos.NewManualClock(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))})
	exps, err := chaos.LoadDir(filepath.Join("..", "..", "examples", "chaos"))
	require.NoError(t, err)
	require.NoError(t, svc.ApplyConfig(chaos.DefaultConfig, exps))
	mux := http.NewServeMux()
	svc.Routes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(append([]string{"chaos"}, append(args, "--sred.url", srv.URL)...), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, _ := run("validate", filepath.Join("..", "..", "examples", "chaos", "api-latency.yml"))
	require.Equal(t, 0, code)
	require.Contains(t, out, "experiment api-backend-latency is valid")
	code, _, errs := run("validate", filepath.Join("..", "chaos", "testdata", "bad", "reset-percent.yml"))
	require.Equal(t, 1, code)
	require.Contains(t, errs, "percent 80 must be between 1 and 50")

	// No Prometheus and no drivers in this sred: the plan says why a run would be refused.
	code, out, _ = run("plan", "api-backend-latency")
	require.Equal(t, 0, code)
	require.Contains(t, out, "fault backend-latency (latency via toxiproxy): add 300ms (+-50ms) on proxy api-backend")
	require.Contains(t, out, `Would be REFUSED now`)
	require.Contains(t, out, `driver "toxiproxy" is not available in this sred`)

	code, _, errs = run("run", "api-backend-latency")
	require.Equal(t, 4, code, errs)
	require.Contains(t, errs, "experiment api-backend-latency refused")

	code, out, _ = run("status")
	require.Equal(t, 0, code)
	require.Contains(t, out, "refused")

	code, out, _ = run("halt")
	require.Equal(t, 0, code)
	require.Contains(t, out, "halt: 0 running experiment(s) stopped")

	code, _, errs = run("report", "nope")
	require.Equal(t, 4, code)
	require.Contains(t, errs, "chaos run not found")
}
