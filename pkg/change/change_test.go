package change_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/change"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// env is a change service and an incident service on one store, with the
// change hook installed, driven by a manual clock.
type env struct {
	clk       *clock.Manual
	changes   *change.Service
	incidents *incident.Service
	reg       *prometheus.Registry
}

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func newEnv(t *testing.T, db *store.DB, cfg change.Config) *env {
	t.Helper()
	e := &env{clk: clock.NewManual(t0), reg: prometheus.NewRegistry()}
	e.changes = change.New(change.Options{DB: db, Registerer: e.reg, Clock: e.clk})
	e.changes.SetConfig(cfg)
	var hooks []incident.Hook
	svc, err := incident.NewService(db, incident.DefaultOptions(), func() []incident.Hook { return hooks }, nil, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	svc.Clock = e.clk
	hooks = append(hooks, e.changes.Hook(svc))
	e.incidents = svc
	return e
}

func migrations() [][]store.Migration {
	return [][]store.Migration{incident.Migrations, change.Migrations}
}

func tp(t time.Time) *time.Time { return &t }

func (e *env) open(t *testing.T, service string) *incident.Incident {
	t.Helper()
	inc, err := e.incidents.Create(context.Background(), incident.ManualIncident{Title: service + " is down", Service: service, Severity: incident.SeverityCritical, Actor: "alice"})
	require.NoError(t, err)
	return inc
}

// A change that succeeded is linked to the incident that opens on its
// service within the window, counts as failed, names itself as the likely
// cause in the timeline and the post-mortem draft, and gives the DORA
// measures their lead time and time to restore.
func TestChangeLinkedToIncident(t *testing.T) {
	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, change.DefaultConfig)

		// The stage runner's calls: in progress, then finished.
		c, err := e.changes.Record(ctx, change.Change{Service: "checkout", Source: change.SourceRollout, Version: "v2", Commit: "abc1234",
			CommitTime: tp(t0.Add(-3 * time.Hour)), Outcome: change.InProgress, Actor: "ci"})
		require.NoError(t, err)
		require.Equal(t, change.InProgress, c.Outcome)
		require.Nil(t, c.FinishedAt)
		require.Equal(t, change.KindDeploy, c.Kind)
		e.clk.Advance(20 * time.Minute)
		c, err = e.changes.Finish(ctx, c.ID, change.Succeeded)
		require.NoError(t, err)
		require.Equal(t, change.Succeeded, c.Outcome)
		require.InDelta(t, (3*time.Hour + 20*time.Minute).Seconds(), *c.LeadTime, 0.001)
		// Finishing again the same way is a no-op; another way is refused.
		_, err = e.changes.Finish(ctx, c.ID, change.Succeeded)
		require.NoError(t, err)
		_, err = e.changes.Finish(ctx, c.ID, change.RolledBack)
		require.ErrorIs(t, err, change.ErrFinished)

		// A change of another service is not linked.
		_, err = e.changes.Record(ctx, change.Change{Service: "search", Kind: change.KindConfig})
		require.NoError(t, err)

		e.clk.Advance(10 * time.Minute)
		inc := e.open(t, "checkout")
		linked, err := e.changes.LinkedTo(ctx, inc.ID)
		require.NoError(t, err)
		require.Len(t, linked, 1)
		require.Equal(t, c.ID, linked[0].ID)
		require.True(t, linked[0].Failed)
		require.Len(t, linked[0].Incidents, 1)
		require.Equal(t, inc.ID, linked[0].Incidents[0].IncidentID)

		tl, err := e.incidents.Timeline(ctx, inc.ID)
		require.NoError(t, err)
		causes := incident.LikelyCauses(tl)
		require.Len(t, causes, 1)
		require.Equal(t, "likely cause: deploy change 1 of checkout (version v2, commit abc1234) by ci via rollout, succeeded 10m0s before the first alert", causes[0].Message)
		pm, err := e.incidents.Postmortem(ctx, inc.ID)
		require.NoError(t, err)
		require.Contains(t, pm.Markdown, "## Root cause\n\nLikely cause (a change recorded shortly before the first alert):\n\n- Deploy change 1 of checkout (version v2, commit abc1234) by ci via rollout, succeeded 10m0s before the first alert\n")

		e.clk.Advance(45 * time.Minute)
		_, err = e.incidents.Resolve(ctx, inc.ID, "alice", "rolled forward")
		require.NoError(t, err)

		// An incident past the window links nothing.
		e.clk.Advance(2 * time.Hour)
		late := e.open(t, "checkout")
		linked, err = e.changes.LinkedTo(ctx, late.ID)
		require.NoError(t, err)
		require.Empty(t, linked)

		require.NoError(t, promtest.GatherAndCompare(e.reg, strings.NewReader(`
# HELP sre_change_failure_ratio Change failure rate: failed changes / changes that shipped, among those finished within changes.dora_window (7d by default); 0 without changes in the window.
# TYPE sre_change_failure_ratio gauge
sre_change_failure_ratio{service="checkout"} 1
sre_change_failure_ratio{service="search"} 0
# HELP sre_change_failures_total Changes that failed: failed, rolled back, or linked to an incident that opened within changes.incident_link_window after them.
# TYPE sre_change_failures_total counter
sre_change_failures_total{service="checkout"} 1
sre_change_failures_total{service="search"} 0
# HELP sre_deployments_total Changes finished, by kind (deploy, config, infra) and result: succeeded, failed, rolled_back, refused (the deploy gate denied it; it did not ship).
# TYPE sre_deployments_total counter
sre_deployments_total{kind="config",result="failed",service="checkout"} 0
sre_deployments_total{kind="deploy",result="failed",service="checkout"} 0
sre_deployments_total{kind="infra",result="failed",service="checkout"} 0
sre_deployments_total{kind="config",result="failed",service="search"} 0
sre_deployments_total{kind="deploy",result="failed",service="search"} 0
sre_deployments_total{kind="infra",result="failed",service="search"} 0
sre_deployments_total{kind="config",result="refused",service="checkout"} 0
sre_deployments_total{kind="deploy",result="refused",service="checkout"} 0
sre_deployments_total{kind="infra",result="refused",service="checkout"} 0
sre_deployments_total{kind="config",result="refused",service="search"} 0
sre_deployments_total{kind="deploy",result="refused",service="search"} 0
sre_deployments_total{kind="infra",result="refused",service="search"} 0
sre_deployments_total{kind="config",result="rolled_back",service="checkout"} 0
sre_deployments_total{kind="deploy",result="rolled_back",service="checkout"} 0
sre_deployments_total{kind="infra",result="rolled_back",service="checkout"} 0
sre_deployments_total{kind="config",result="rolled_back",service="search"} 0
sre_deployments_total{kind="deploy",result="rolled_back",service="search"} 0
sre_deployments_total{kind="infra",result="rolled_back",service="search"} 0
sre_deployments_total{kind="config",result="succeeded",service="checkout"} 0
sre_deployments_total{kind="deploy",result="succeeded",service="checkout"} 1
sre_deployments_total{kind="infra",result="succeeded",service="checkout"} 0
sre_deployments_total{kind="config",result="succeeded",service="search"} 1
sre_deployments_total{kind="deploy",result="succeeded",service="search"} 0
sre_deployments_total{kind="infra",result="succeeded",service="search"} 0
# HELP sre_rollbacks_total Changes rolled back: the rolled_back result, and the changes that failed and were rolled back later (those stay under result="failed" of sre_deployments_total, the outcome they finished with, so that no counter goes down).
# TYPE sre_rollbacks_total counter
sre_rollbacks_total{service="checkout"} 0
sre_rollbacks_total{service="search"} 0
`), change.MetricFailureRatio, change.MetricFailures, change.MetricDeployments, change.MetricRollbacks))

		ms, err := e.changes.Metrics(ctx)
		require.NoError(t, err)
		require.Len(t, ms, 2)
		m := ms[0]
		require.Equal(t, "checkout", m.Service)
		require.Equal(t, uint64(1), m.LeadTime.Count)
		require.InDelta(t, 12000.0, m.LeadTime.Sum, 0.001)
		require.Equal(t, uint64(0), m.LeadTime.Buckets[7200])
		require.Equal(t, uint64(1), m.LeadTime.Buckets[14400])
		require.Equal(t, uint64(1), m.RestoreTime.Count)
		require.InDelta(t, 2700.0, m.RestoreTime.Sum, 0.001)
		require.Equal(t, uint64(1), m.RestoreTime.Buckets[3600])
		require.Equal(t, uint64(0), m.RestoreTime.Buckets[1800])
		require.InDelta(t, 1.0/7, m.PerDay, 1e-9)
	})
}

// TestMetricsBoundServices: any responder may record changes of any
// service name; /metrics names at most change.MaxMetricServices services,
// those with the most changes, and sums the others as service="other"
// (before, every name recorded added 36 series to every scrape).
func TestMetricsBoundServices(t *testing.T) {
	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, change.DefaultConfig)
		for i := range change.MaxMetricServices {
			for range 3 {
				_, err := e.changes.Record(ctx, change.Change{Service: fmt.Sprintf("svc-%03d", i)})
				require.NoError(t, err)
			}
		}
		const junk = 5
		for i := range junk {
			outcome := change.Succeeded
			switch i {
			case 0:
				outcome = change.Failed
			case 1:
				outcome = change.RolledBack
			}
			_, err := e.changes.Record(ctx, change.Change{Service: fmt.Sprintf("junk-%d", i), Outcome: outcome})
			require.NoError(t, err)
		}
		// A change of a folded service that failed and was rolled back
		// later counts under failed and among the rollbacks.
		late, err := e.changes.Record(ctx, change.Change{Service: "junk-2", Outcome: change.Failed})
		require.NoError(t, err)
		_, err = e.changes.Finish(ctx, late.ID, change.RolledBack)
		require.NoError(t, err)
		mfs, err := e.reg.Gather()
		require.NoError(t, err)
		services := map[string]bool{}
		values := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				var svc, result string
				for _, l := range m.GetLabel() {
					switch l.GetName() {
					case "service":
						svc = l.GetValue()
					case "result":
						result = l.GetValue()
					}
				}
				if svc == "" {
					continue
				}
				services[svc] = true
				if svc == change.OtherService {
					key := mf.GetName()
					if result != "" {
						key += "/" + result
					}
					// sre_deployments_total sums over its kinds.
					values[key] += m.GetCounter().GetValue() + m.GetGauge().GetValue()
				}
			}
		}
		require.Len(t, services, change.MaxMetricServices+1)
		require.True(t, services["svc-000"] && services["svc-099"], "the busiest services keep their name")
		require.False(t, services["junk-0"])
		require.Equal(t, map[string]float64{
			"sre_deployments_total/succeeded":   junk - 2,
			"sre_deployments_total/failed":      2,
			"sre_deployments_total/rolled_back": 1,
			"sre_deployments_total/refused":     0,
			"sre_rollbacks_total":               2,
			"sre_change_failures_total":         3,
			"sre_change_failure_ratio":          3.0 / (junk + 1),
			"sre_deployment_frequency_per_day":  float64(junk-2) / 7,
			"sre_changes_in_progress":           0,
			// Histograms are neither counters nor gauges.
			"sre_change_lead_time_seconds":    0,
			"sre_change_restore_time_seconds": 0,
		}, values)
	})
}

// TestRecordKeyOfAnotherService: a change recorded (Record, as the Flux
// notifications and the stage runner do, and as POST /api/v1/changes does
// when two requests with one key race past its check) with the key of a
// change of another service or kind is refused with ErrKeyReused; it was
// answered with that other change, and the change was lost.
func TestRecordKeyOfAnotherService(t *testing.T) {
	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, change.DefaultConfig)
		first, err := e.changes.Record(ctx, change.Change{Service: "checkout", Key: "job-42"})
		require.NoError(t, err)
		again, err := e.changes.Record(ctx, change.Change{Service: "checkout", Key: "job-42"})
		require.NoError(t, err, "a retry")
		require.Equal(t, first.ID, again.ID)
		for _, c := range []change.Change{{Service: "search", Key: "job-42"}, {Service: "checkout", Kind: change.KindConfig, Key: "job-42"}} {
			_, err = e.changes.Record(ctx, c)
			require.ErrorIs(t, err, change.ErrKeyReused, "%+v", c)
			require.ErrorContains(t, err, fmt.Sprintf("change %d", first.ID))
		}
		cs, err := e.changes.List(ctx, change.Query{})
		require.NoError(t, err)
		require.Len(t, cs, 1)
	})
}

// TestDeploymentFrequencyCountsDeploys: the deployment frequency counts the
// deployments of a service, as DORA defines it; a configuration or
// infrastructure change is no deployment (it counted as one), but it is a
// change of the failure rate and of sre_deployments_total.
func TestDeploymentFrequencyCountsDeploys(t *testing.T) {
	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, change.DefaultConfig)
		for _, c := range []change.Change{
			{Service: "checkout"},
			{Service: "checkout", Kind: change.KindDeploy},
			{Service: "checkout", Kind: change.KindConfig},
			{Service: "checkout", Kind: change.KindInfra},
			{Service: "checkout", Kind: change.KindConfig, Outcome: change.Failed},
		} {
			_, err := e.changes.Record(ctx, c)
			require.NoError(t, err)
		}
		ms, err := e.changes.Metrics(ctx)
		require.NoError(t, err)
		require.Len(t, ms, 1)
		require.InDelta(t, 2.0/7, ms[0].PerDay, 1e-9)
		require.InDelta(t, 1.0/5, ms[0].FailureRatio, 1e-9)
		require.Equal(t, 4, ms[0].Results[change.Succeeded])
		require.NoError(t, promtest.GatherAndCompare(e.reg, strings.NewReader(fmt.Sprintf(`
# HELP sre_deployment_frequency_per_day Deployment frequency: deployments (changes of kind deploy) that succeeded within changes.dora_window, per day.
# TYPE sre_deployment_frequency_per_day gauge
sre_deployment_frequency_per_day{service="checkout"} %v
`, 2.0/7)), "sre_deployment_frequency_per_day"))
	})
}
