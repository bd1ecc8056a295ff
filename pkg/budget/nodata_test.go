package budget_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/rulegen"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// A real Prometheus evaluating the generated rules before any traffic: no
// SLO has a series yet. The gate answers as gate.on_no_data says (allow or
// deny), with state unknown, records the decision, and the poller records
// no state change.
func TestGateWithoutData(t *testing.T) {
	files, err := rulegen.Generate(loadSpecs(t))
	require.NoError(t, err)
	cfg := "global: {evaluation_interval: 1s}\nrule_files:\n"
	rules := map[string]string{}
	for _, f := range files {
		b, err := f.Marshal()
		require.NoError(t, err)
		rules["rules/"+f.Name] = string(b)
		cfg += "  - rules/" + f.Name + "\n"
	}
	prom := testutil.StartPrometheus(t, testutil.PrometheusOptions{Config: cfg, Files: rules})

	testutil.Backends(t, [][]store.Migration{budget.Migrations}, func(t *testing.T, db *store.DB) {
		for _, tc := range []struct {
			mode    string
			allowed bool
		}{
			{budget.FailAllow, true},
			{budget.FailDeny, false},
		} {
			t.Run(tc.mode, func(t *testing.T) {
				gate := budget.DefaultGateConfig
				gate.OnNoData = tc.mode
				bus := events.NewBus(16, nil)
				evs, cancel := bus.Subscribe()
				defer cancel()
				s := newService(t, prom.URL, db, time.Now(), gate, prometheus.NewRegistry(), bus)
				mux := http.NewServeMux()
				s.Register(mux)

				// Every SLO is listed, without data.
				code, env := get(t, mux, "/api/v1/slos?service=api", nil)
				require.Equal(t, http.StatusOK, code, env.Error)
				var list budget.SLOList
				require.NoError(t, json.Unmarshal(env.Data, &list))
				require.Len(t, list.SLOs, 1)
				require.Equal(t, budget.StateUnknown, list.SLOs[0].State)
				require.Nil(t, list.SLOs[0].Budget.RemainingRatio)
				require.Equal(t, "no data", list.SLOs[0].Forecast.Message)

				for _, change := range []string{budget.ChangeNormal, budget.ChangeCritical} {
					code, env := get(t, mux, "/api/v1/gate?service=api&change="+change, nil)
					require.Equal(t, http.StatusOK, code, env.Error)
					var d budget.Decision
					require.NoError(t, json.Unmarshal(env.Data, &d))
					require.Equal(t, tc.allowed, d.Allowed, change)
					require.Equal(t, map[bool]string{true: "allow", false: "deny"}[tc.allowed], d.Answer)
					require.Equal(t, budget.StateUnknown, d.State)
					require.Equal(t, `no SLO of service "api" has data yet; gate configured to `+tc.mode+` without data`, d.Reason)
					require.Empty(t, d.PrometheusError)
					require.Empty(t, d.SLO)
					require.Nil(t, d.Remaining)
					require.Equal(t, []budget.GateSLO{{SLO: "availability", State: budget.StateUnknown}}, d.SLOs)
					require.NotZero(t, d.ID, "the decision is recorded")
					ev := <-evs
					require.Equal(t, "budget.gate_decision", ev.Type)
					require.Equal(t, d.Answer, ev.Data["decision"])
				}
				recs, err := budget.ListDecisions(context.Background(), db, "api", 10)
				require.NoError(t, err)
				require.Len(t, recs, 2)
				for _, r := range recs {
					require.Equal(t, tc.allowed, r.Allowed)
					require.Equal(t, string(budget.StateUnknown), r.State)
				}
				_, err = db.ExecContext(context.Background(), `DELETE FROM gate_decisions`)
				require.NoError(t, err)

				// No data is not a state: the poller records nothing.
				require.NoError(t, s.Poll(context.Background()))
				timeline, err := budget.ListEvents(context.Background(), db, "api", "", 10)
				require.NoError(t, err)
				require.Empty(t, timeline)
				select {
				case ev := <-evs:
					t.Fatalf("unexpected event %+v", ev)
				default:
				}
			})
		}
	})
}
