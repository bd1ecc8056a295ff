package reconcile

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// groupByConfig is an Alertmanager configuration grouping by groupBy and
// sending resolves to sred's main webhook.
func groupByConfig(sredURL, groupBy string) string {
	return fmt.Sprintf(`
route:
  receiver: sred
  group_by: [%s]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
- name: sred
  webhook_configs:
  - url: %s/api/v1/webhook/alertmanager
    send_resolved: true
`, groupBy, sredURL)
}

// TestReconcileAfterGroupByChange: a real Alertmanager's group_by changes
// (a configuration reload) while an alert fires. Alertmanager delivers the
// alert again in a new group; when the alert resolves, it delivers the
// resolve in the new group only: the old group is gone from it and never
// sends one.
//
// When the new group joined the incident (correlation by service), its
// resolve resolves the old group's copy too: the incident resolves at the
// delivery and polls find nothing to do. When it opened an incident of its
// own (no correlation), that one resolves at the delivery and the first
// incident keeps the old group's copy firing until the reconciler, which
// finds the alert gone from Alertmanager, resolves it at its second poll.
func TestReconcileAfterGroupByChange(t *testing.T) {
	for _, tc := range []struct {
		name      string
		correlate bool
	}{
		{"the new group joined the incident", true},
		{"the new group opened an incident", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
				testGroupByChange(t, db, tc.correlate)
			})
		})
	}
}

func testGroupByChange(t *testing.T, db *store.DB, correlate bool) {
	ctx := context.Background()
	e := newEnv(t, db)
	if correlate {
		e.svc.SetCorrelation(&incident.Correlation{Window: time.Hour, DependsOn: map[string]map[string][]string{"api": {}}})
	}
	am := tu.StartAlertmanager(t, tu.AlertmanagerOptions{Config: groupByConfig(e.srv.URL, "alertname")})
	start := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	a := amAlert{Labels: map[string]string{"alertname": "HighErrorRate", "service": "api", "severity": "critical", "instance": "a"},
		StartsAt: start, EndsAt: start.Add(time.Hour)}
	postAlerts(t, am.URL, a)
	id := waitIncident(t, e.svc, 1).ID
	get := func(id string) *incident.Incident {
		inc, err := e.svc.Get(ctx, id)
		require.NoError(t, err)
		return inc
	}
	require.Len(t, get(id).Alerts[0].GroupKeys, 1)

	// group_by changes: Alertmanager delivers the alert in a new group.
	require.NoError(t, os.WriteFile(filepath.Join(am.Dir, "alertmanager.yml"),
		[]byte(groupByConfig(e.srv.URL, "alertname, service")), 0o644))
	resp, err := http.Post(am.URL+"/-/reload", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	// newID is the incident holding the new group's copy.
	var newID string
	require.Eventually(t, func() bool {
		page, err := e.svc.List(ctx, incident.Filter{WithAlerts: true})
		require.NoError(t, err)
		for _, inc := range page.Incidents {
			for _, al := range inc.Alerts {
				if len(al.GroupKeys) == 2 || (inc.ID != id && len(al.GroupKeys) == 1) {
					newID = inc.ID
					return true
				}
			}
		}
		return false
	}, 60*time.Second, 50*time.Millisecond, "the alert was not delivered in a new group after the reload")
	if correlate {
		require.Equal(t, id, newID, "the new group joins the incident")
		require.Len(t, get(id).Alerts, 1, "one alert, two groups")
		require.Len(t, get(id).Links, 2)
	} else {
		require.NotEqual(t, id, newID, "the new group opens an incident")
	}

	// The alert resolves: Alertmanager delivers the resolve in the new
	// group only.
	a.EndsAt = time.Now().UTC().Add(-time.Second)
	postAlerts(t, am.URL, a)
	require.Eventually(t, func() bool { return get(newID).Alerts[0].Status == "resolved" }, 60*time.Second, 50*time.Millisecond,
		"the new group did not deliver the resolve")
	require.Equal(t, incident.StatusResolved, get(newID).Status)

	r := NewReconciler(newClient(t, am.URL), e.svc, nil, Options{MissingPolls: 2}, nil, e.m)
	if correlate {
		for range 2 {
			res, err := r.Reconcile(ctx)
			require.NoError(t, err)
			require.Zero(t, res.Checked, "nothing fires")
			require.Empty(t, res.Resolved)
		}
		require.Empty(t, timelineKinds(t, e.svc, id)["reconcile"])
		return
	}
	// The first incident keeps the old group's copy firing.
	require.Equal(t, incident.StatusTriggered, get(id).Status)
	require.Equal(t, "firing", get(id).Alerts[0].Status)
	res, err := r.Reconcile(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.Checked)
	require.Equal(t, 1, res.Missing)
	require.Empty(t, res.Resolved)
	require.Equal(t, incident.StatusTriggered, get(id).Status)
	res, err = r.Reconcile(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{id + "/" + get(id).Alerts[0].Fingerprint}, res.Resolved)
	require.Equal(t, incident.StatusResolved, get(id).Status)
}
