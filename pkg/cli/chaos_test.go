package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/chaos"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/targetlock"
)

func TestChaosCommands(t *testing.T) {
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Migrate(ctx, chaos.Migrations, targetlock.Migrations))
	svc := chaos.New(chaos.Options{DB: db, NoAuth: true, Drivers: map[string]chaos.Driver{chaos.DriverStress: nopDriver{}}, Clock: clock.NewManual(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))})
	exps, err := chaos.LoadDir(filepath.Join("..", "..", "examples", "chaos"))
	require.NoError(t, err)
	gated, err := chaos.Parse([]byte(gatedExperiment), "gated.yml")
	require.NoError(t, err)
	exps = append(exps, gated)
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
	require.Contains(t, out, "experiment api-backend-latency is valid (1 fault on api in staging for")
	code, _, errs := run("validate", filepath.Join("..", "chaos", "testdata", "bad", "reset-percent.yml"))
	require.Equal(t, 1, code)
	require.Contains(t, errs, "reset-percent.yml:12:38: faults[0]: percent: 80 must be between 1 and 50")

	// No Prometheus and no drivers in this sred: the plan says why a run would be refused.
	code, out, _ = run("plan", "api-backend-latency")
	require.Equal(t, 0, code)
	require.Contains(t, out, "fault backend-latency (latency via toxiproxy): add 300ms (+-50ms) on proxy api-backend")
	require.Contains(t, out, "(1 of 4 instances)")
	require.Contains(t, out, `Would be REFUSED now`)
	require.Contains(t, out, `driver "toxiproxy" is not available in this sred`)

	code, _, errs = run("run", "api-backend-latency")
	require.Equal(t, 4, code, errs)
	require.Contains(t, errs, `experiment api-backend-latency refused: fault backend-latency: driver "toxiproxy" is not available in this sred; fault backend-latency: no tcp proxy "api-backend" in chaos.proxies`, "the reasons are printed")

	code, out, _ = run("status")
	require.Equal(t, 0, code)
	require.Contains(t, out, "refused")

	// An experiment with an approval gate waits for "srectl chaos approve".
	code, out, errs = run("run", "gated", "-o", "json")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, `"status": "waiting_approval"`)
	var started chaos.RunInfo
	require.NoError(t, json.Unmarshal([]byte(out), &started))
	code, out, errs = run("approve", started.ID, "--comment", "game day")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "run "+started.ID+" of gated approved by anonymous")
	svc.Wait()
	code, out, _ = run("status", started.ID)
	require.Equal(t, 0, code)
	require.Contains(t, out, "approved by anonymous (admin): game day")
	code, _, errs = run("approve", started.ID)
	require.Equal(t, 4, code)
	require.Contains(t, errs, "not waiting for approval")

	code, out, _ = run("halt")
	require.Equal(t, 0, code)
	require.Contains(t, out, "halt: 0 running experiments stopped")

	code, _, errs = run("report", "nope")
	require.Equal(t, 4, code)
	require.Contains(t, errs, "chaos run not found")
}

// gatedExperiment needs an approval; in this sred (no Prometheus, no
// drivers) it is refused by the full validation once approved.
const gatedExperiment = `apiVersion: chaos.sre.rootuip.io/v1
kind: Experiment
name: gated
hypothesis:
  description: the API holds
  steadyState: [{name: up, promql: 'up == 1'}]
target: {service: api, environment: staging, instances: 1, totalInstances: 4}
faults: [{name: cpu, type: cpu-stress, cpuPercent: 50}]
duration: 1m
approval: {role: responder}
`

// nopDriver lets the gated experiment pass the driver check; it is never
// asked to inject (the run is refused after its approval).
type nopDriver struct{}

func (nopDriver) Inject(context.Context, string, chaos.Fault) (json.RawMessage, error) {
	return nil, errors.New("not expected to inject")
}
func (nopDriver) Revert(context.Context, string, chaos.Fault, json.RawMessage) error { return nil }
