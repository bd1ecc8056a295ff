package runbook

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	sretest "github.com/rootuip/sre/pkg/testutil"
)

// amGroup is an Alertmanager alert group as the webhook delivers it: its
// key and common labels (group_by [alertname, service]).
type amGroup struct {
	key    string
	labels map[string]string
}

func newAMGroup(labels map[string]string) amGroup {
	keys := make([]string, 0, len(labels))
	for _, k := range []string{"alertname", "cluster", "service"} {
		if v, ok := labels[k]; ok {
			keys = append(keys, fmt.Sprintf("%s=%q", k, v))
		}
	}
	return amGroup{key: "{}:{" + strings.Join(keys, ", ") + "}", labels: labels}
}

// notification is a firing delivery of g with one alert per instance.
func (g amGroup) notification(started time.Time, instances ...string) incident.Notification {
	n := incident.Notification{Receiver: "sred", Status: "firing", GroupKey: g.key, CommonLabels: g.labels}
	for _, inst := range instances {
		ls := maps.Clone(g.labels)
		ls["instance"] = inst
		n.Alerts = append(n.Alerts, incident.NotifiedAlert{Status: "firing", Labels: ls, StartsAt: started,
			Fingerprint: fmt.Sprintf("%x", g.key+inst)})
	}
	return n
}

// TestRunbooksMatchEachAlertGroup: a runbook's matchers select the alert
// groups of an incident, not only the group that opened it. With the
// dependency graph of examples/sred.yml, PostgresDown opens an incident
// and ConnectionPoolSaturated of api, then of checkout, join it by
// correlation: connection-pool-reset runs once for each, each run
// templated with the labels of its own group. Dedup still holds: a
// redelivery, a new alert of the group, and another group of the same
// target start nothing more (one run per incident, runbook and target).
// A runbook that triggers on acknowledgement runs then for every matching
// group on the incident; the opening group's runbook runs once.
func TestRunbooksMatchEachAlertGroup(t *testing.T) {
	sretest.Backends(t, withIncidents(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		cfg := testConfig()
		set, err := NewSet(cfg,
			mustParse(t, `
name: connection-pool-reset
matchers: ['alertname="ConnectionPoolSaturated"']
severities: [CRITICAL, HIGH]
labels: {service: '[a-z]+'}
target: 'pool/{{ .Labels.service }}'
steps: [{name: reset, exec: {command: [/bin/echo, 'reset {{ .Labels.service }}']}}]
`),
			mustParse(t, `
name: pool-report
matchers: ['alertname="ConnectionPoolSaturated"']
states: [acknowledged]
labels: {service: '[a-z]+'}
target: 'report/{{ .Labels.service }}'
steps: [{name: report, exec: {command: [/bin/echo, 'report {{ .Labels.service }}']}}]
`),
			mustParse(t, `
name: postgres-check
matchers: ['alertname="PostgresDown"']
states: [triggered, acknowledged]
steps: [{name: check, exec: {command: [/bin/echo, check]}}]
`))
		require.NoError(t, err)
		var e *Engine
		svc := newService(t, db, func() []incident.Hook { return []incident.Hook{e} })
		svc.SetCorrelation(&incident.Correlation{Window: time.Hour, DependsOn: map[string]map[string][]string{
			"postgres": {},
			"api":      {"postgres": {"api", "postgres"}},
			"checkout": {"postgres": {"checkout", "postgres"}},
		}})
		e, err = New(Options{DB: db, Incidents: IncidentService{svc}, Registerer: prometheus.NewRegistry()}, cfg, set)
		require.NoError(t, err)
		startEngine(t, e)

		started := time.Now().UTC().Add(-time.Minute)
		deliver := func(n incident.Notification) *incident.IngestResult {
			t.Helper()
			res, err := svc.Ingest(ctx, n)
			require.NoError(t, err)
			return res
		}
		// runs waits until the incident has n runs, all finished, and
		// returns them as "runbook target status labels output".
		runs := func(id string, n int) []string {
			t.Helper()
			var out []string
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				rs, err := e.ListRuns(ctx, RunFilter{IncidentID: id})
				require.NoError(t, err)
				out = out[:0]
				for _, r := range rs {
					full, err := e.GetRun(ctx, r.ID)
					require.NoError(t, err)
					var output string
					for _, a := range full.Audit {
						if a.Event == "step" {
							output = strings.TrimSpace(a.Output)
						}
					}
					out = append(out, fmt.Sprintf("%s %s %s %v %q", r.Runbook, r.Target, r.Status, r.Labels, output))
				}
				sort.Strings(out)
				if len(rs) == n && !slices.ContainsFunc(rs, func(r *Run) bool { return r.FinishedAt == nil }) {
					return out
				}
			}
			t.Fatalf("%s has not %d finished runs: %q", id, n, out)
			return nil
		}

		pg := newAMGroup(map[string]string{"alertname": "PostgresDown", "service": "postgres", "severity": "critical"})
		api := newAMGroup(map[string]string{"alertname": "ConnectionPoolSaturated", "service": "api", "severity": "critical"})
		checkout := newAMGroup(map[string]string{"alertname": "ConnectionPoolSaturated", "service": "checkout", "severity": "critical"})
		apiEU := newAMGroup(map[string]string{"alertname": "ConnectionPoolSaturated", "service": "api", "cluster": "eu", "severity": "critical"})

		res := deliver(pg.notification(started, "pg-0"))
		require.Len(t, res.Created, 1)
		id := res.Created[0]
		want := []string{
			`postgres-check postgres-check succeeded map[alertname:PostgresDown service:postgres severity:critical] "check"`,
		}
		require.Equal(t, want, runs(id, 1))

		res = deliver(api.notification(started, "api-0"))
		require.Equal(t, []string{id}, res.Incidents)
		require.Empty(t, res.Created, "correlation attached the pool's group to the incident of postgres")
		tl, err := svc.Timeline(ctx, id)
		require.NoError(t, err)
		require.Contains(t, timelineMessages(tl), "attached because api depends on postgres, which has "+id)
		want = append(want,
			`connection-pool-reset pool/api succeeded map[alertname:ConnectionPoolSaturated service:api severity:critical] "reset api"`)
		sort.Strings(want)
		require.Equal(t, want, runs(id, 2), "the runbook matches the group that joined")

		deliver(api.notification(started, "api-0"))
		deliver(api.notification(started, "api-0", "api-1"))
		res = deliver(apiEU.notification(started, "api-eu-0"))
		require.Equal(t, []string{id}, res.Incidents)
		res = deliver(checkout.notification(started, "checkout-0"))
		require.Equal(t, []string{id}, res.Incidents)
		want = append(want,
			`connection-pool-reset pool/checkout succeeded map[alertname:ConnectionPoolSaturated service:checkout severity:critical] "reset checkout"`)
		sort.Strings(want)
		require.Equal(t, want, runs(id, 3),
			"one run per target: none for a redelivery, a new alert of the group or another group of pool/api; one for pool/checkout")

		_, err = svc.Acknowledge(ctx, id, "alice")
		require.NoError(t, err)
		want = append(want,
			`pool-report report/api succeeded map[alertname:ConnectionPoolSaturated service:api severity:critical] "report api"`,
			`pool-report report/checkout succeeded map[alertname:ConnectionPoolSaturated service:checkout severity:critical] "report checkout"`)
		sort.Strings(want)
		require.Equal(t, want, runs(id, 5), "acknowledged: every matching group on the incident, postgres-check not again")
	})
}

func timelineMessages(tl []incident.TimelineEntry) []string {
	out := make([]string, 0, len(tl))
	for _, e := range tl {
		out = append(out, e.Message)
	}
	return out
}
