package reconcile

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// TestReconcileResolvesMissedResolves posts alerts to a real Alertmanager
// that delivers them to sred's webhook with send_resolved: false, resolves
// them in Alertmanager (sred never hears of it), and shows the reconciler
// resolving first one alert, then the incident.
func TestReconcileResolvesMissedResolves(t *testing.T) {
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		am := startAlertmanager(t, e.srv.URL)
		start := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
		a := amAlert{Labels: map[string]string{"alertname": "HighErrorRate", "service": "api", "severity": "critical", "instance": "a"},
			StartsAt: start, EndsAt: start.Add(time.Hour)}
		b := amAlert{Labels: map[string]string{"alertname": "HighErrorRate", "service": "api", "severity": "critical", "instance": "b"},
			StartsAt: start, EndsAt: start.Add(time.Hour)}
		postAlerts(t, am.URL, a, b)
		inc := waitIncident(t, e.svc, 2)
		require.Equal(t, incident.StatusTriggered, inc.Status)
		require.Equal(t, incident.SeverityCritical, inc.Severity)

		r := NewReconciler(newClient(t, am.URL), e.svc, e.watchdog, Options{MissingPolls: 2}, nil, e.m)

		// Both alerts are in Alertmanager: nothing to do, however often.
		for range 3 {
			res, err := r.Reconcile(ctx)
			require.NoError(t, err)
			require.Equal(t, 2, res.Checked)
			require.Empty(t, res.Resolved)
		}

		// Alertmanager resolves a; with send_resolved: false sred is not
		// told. A new alert c of the group, posted after, is delivered in a
		// notification Alertmanager sent knowing a resolved: once sred has
		// c, that notification came and a is still firing in sred.
		a.EndsAt = time.Now().UTC().Add(-time.Second)
		postAlerts(t, am.URL, a)
		c := amAlert{Labels: map[string]string{"alertname": "HighErrorRate", "service": "api", "severity": "critical", "instance": "c"},
			StartsAt: start, EndsAt: start.Add(time.Hour)}
		postAlerts(t, am.URL, c)
		inc = waitIncident(t, e.svc, 3)
		got, err := e.svc.Get(ctx, inc.ID)
		require.NoError(t, err)
		require.Equal(t, map[string]string{"a": "firing", "b": "firing", "c": "firing"}, alertStatus(got), "the webhook must not have resolved a")

		// First poll: missing once, not yet resolved (Alertmanager may have restarted).
		res, err := r.Reconcile(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, res.Missing)
		require.Empty(t, res.Resolved)
		// Second poll: resolved.
		res, err = r.Reconcile(ctx)
		require.NoError(t, err)
		require.Len(t, res.Resolved, 1)
		got, err = e.svc.Get(ctx, inc.ID)
		require.NoError(t, err)
		require.Equal(t, map[string]string{"a": "resolved", "b": "firing", "c": "firing"}, alertStatus(got))
		require.True(t, got.Status.Open(), "b and c still fire")
		kinds := timelineKinds(t, e.svc, inc.ID)
		require.Len(t, kinds["reconcile"], 1)
		require.Equal(t, Actor, kinds["reconcile"][0].Actor)
		require.Contains(t, kinds["reconcile"][0].Message, `HighErrorRate{instance="a", service="api", severity="critical"}`)

		// b and c resolve too: the incident resolves, with its recovery time.
		b.EndsAt = time.Now().UTC().Add(-time.Second)
		c.EndsAt = b.EndsAt
		postAlerts(t, am.URL, b, c)
		for range 2 {
			_, err = r.Reconcile(ctx)
			require.NoError(t, err)
		}
		got, err = e.svc.Get(ctx, inc.ID)
		require.NoError(t, err)
		require.Equal(t, incident.StatusResolved, got.Status)
		require.NotNil(t, got.RecoveredAt)
		require.NotNil(t, got.ResolvedAt)
		require.True(t, contains(timelineKinds(t, e.svc, inc.ID)["status"], "resolved automatically"))
		require.Equal(t, 3.0, testutil.ToFloat64(e.m.resolved))
		// The resolve is the reconciler's, not an Alertmanager delivery.
		for _, en := range timelineKinds(t, e.svc, inc.ID)["status"] {
			if strings.Contains(en.Message, "resolved automatically") {
				require.Equal(t, Actor, en.Actor, en.Message)
			}
		}

		// Nothing left to do: a further poll changes nothing.
		res, err = r.Reconcile(ctx)
		require.NoError(t, err)
		require.Zero(t, res.Checked)
		tl, err := e.svc.Timeline(ctx, inc.ID)
		require.NoError(t, err)
		n := len(tl)
		_, err = r.Reconcile(ctx)
		require.NoError(t, err)
		tl, err = e.svc.Timeline(ctx, inc.ID)
		require.NoError(t, err)
		require.Len(t, tl, n)
	})
}

// TestReconcileByAlertGroup: each alert is reconciled by its own group,
// whichever incident correlation placed it on. The alert sred raises itself
// when an error budget runs out (group budget-exhausted/..., which
// Alertmanager never has) and an Alertmanager alert of the same service
// share one incident, whichever of them opened it: polls never resolve
// sred's alert, and resolve the Alertmanager alert once Alertmanager no
// longer has it (its resolve not sent), leaving the incident open on
// sred's alert.
func TestReconcileByAlertGroup(t *testing.T) {
	for _, tc := range []struct {
		name string
		// amFirst: the Alertmanager alert opens the incident, sred's joins it.
		amFirst bool
	}{
		{"sred's alert joined an Alertmanager incident", true},
		{"an Alertmanager alert joined sred's incident", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
				ctx := context.Background()
				e := newEnv(t, db)
				e.svc.SetCorrelation(&incident.Correlation{Window: time.Hour, DependsOn: map[string]map[string][]string{"api": {}}})
				am := startAlertmanager(t, e.srv.URL)
				start := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
				fromAM := amAlert{Labels: map[string]string{"alertname": "HighErrorRate", "service": "api", "severity": "critical"},
					StartsAt: start, EndsAt: start.Add(time.Hour)}
				own := exhaustedAlert("api", "success-rate", start)

				var id string
				if tc.amFirst {
					postAlerts(t, am.URL, fromAM)
					id = waitIncident(t, e.svc, 1).ID
					res, err := e.svc.Ingest(ctx, own)
					require.NoError(t, err)
					require.Equal(t, []string{id}, res.Incidents, "correlation attaches sred's alert")
				} else {
					res, err := e.svc.Ingest(ctx, own)
					require.NoError(t, err)
					require.Len(t, res.Created, 1)
					id = res.Created[0]
					postAlerts(t, am.URL, fromAM)
				}
				inc := waitIncident(t, e.svc, 2)
				require.Equal(t, id, inc.ID, "one incident for both alerts")
				statuses := func() map[string]string {
					got, err := e.svc.Get(ctx, id)
					require.NoError(t, err)
					return alertnameStatus(t, got)
				}
				r := NewReconciler(newClient(t, am.URL), e.svc, nil, Options{MissingPolls: 2}, nil, e.m)

				// Alertmanager has its alert, never sred's: nothing to do,
				// however often.
				for range 3 {
					res, err := r.Reconcile(ctx)
					require.NoError(t, err)
					require.Equal(t, 1, res.Checked, "only the Alertmanager alert is compared")
					require.Zero(t, res.Missing)
					require.Empty(t, res.Resolved)
				}
				require.Equal(t, map[string]string{"HighErrorRate": "firing", "SLOErrorBudgetExhausted": "firing"}, statuses())
				require.Empty(t, timelineKinds(t, e.svc, id)["reconcile"])

				// Alertmanager resolves its alert; with send_resolved: false
				// sred is not told. Two polls resolve it, and only it.
				fromAM.EndsAt = time.Now().UTC().Add(-time.Second)
				postAlerts(t, am.URL, fromAM)
				res, err := r.Reconcile(ctx)
				require.NoError(t, err)
				require.Equal(t, 1, res.Missing)
				res, err = r.Reconcile(ctx)
				require.NoError(t, err)
				amFP := fingerprintOf(t, e.svc, id, "HighErrorRate")
				require.Equal(t, []string{id + "/" + amFP}, res.Resolved)
				require.Equal(t, map[string]string{"HighErrorRate": "resolved", "SLOErrorBudgetExhausted": "firing"}, statuses())
				got, err := e.svc.Get(ctx, id)
				require.NoError(t, err)
				require.True(t, got.Status.Open(), "sred's alert still fires")
				rec := timelineKinds(t, e.svc, id)["reconcile"]
				require.Len(t, rec, 1)
				require.Contains(t, rec[0].Message, `Alertmanager no longer has 1 alert sred held as firing (resolve not received): HighErrorRate{service="api", severity="critical"}`)

				for range 2 {
					res, err = r.Reconcile(ctx)
					require.NoError(t, err)
					require.Zero(t, res.Checked)
					require.Empty(t, res.Resolved)
				}
				require.Equal(t, map[string]string{"HighErrorRate": "resolved", "SLOErrorBudgetExhausted": "firing"}, statuses())
			})
		})
	}
}

// exhaustedAlert is the notification of the alert sred raises itself when
// the error budget of an SLO runs out (pkg/budget).
func exhaustedAlert(service, slo string, start time.Time) incident.Notification {
	labels := map[string]string{"alertname": budget.AlertExhausted, "service": service, "slo": slo,
		"burn_tier": budget.BurnTierExhausted, "severity": "critical"}
	ls := model.LabelSet{}
	for k, v := range labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return incident.Notification{Receiver: "sred", Status: "firing", GroupKey: budget.ExhaustedGroupPrefix + service + "/" + slo,
		Actor: budget.Actor, GroupLabels: map[string]string{"service": service, "slo": slo}, CommonLabels: labels,
		Alerts: []incident.NotifiedAlert{{Status: "firing", Labels: labels, StartsAt: start, Fingerprint: ls.Fingerprint().String()}}}
}

// alertnameStatus maps each alert of inc's alertname to its status (each
// alert once: an alert listed twice fails the test).
func alertnameStatus(t *testing.T, inc *incident.Incident) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, a := range inc.Alerts {
		name := a.Labels["alertname"]
		_, dup := out[name]
		require.False(t, dup, "alert %s stored twice: %+v", name, inc.Alerts)
		out[name] = a.Status
	}
	return out
}

func fingerprintOf(t *testing.T, svc *incident.Service, id, alertname string) string {
	t.Helper()
	inc, err := svc.Get(context.Background(), id)
	require.NoError(t, err)
	for _, a := range inc.Alerts {
		if a.Labels["alertname"] == alertname {
			return a.Fingerprint
		}
	}
	t.Fatalf("no alert %s on %s", alertname, id)
	return ""
}

// TestReconcileAlertmanagerDown: when Alertmanager cannot be reached, the
// poll fails and nothing is resolved.
func TestReconcileAlertmanagerDown(t *testing.T) {
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		am := startAlertmanager(t, e.srv.URL)
		start := time.Now().UTC().Add(-time.Minute)
		postAlerts(t, am.URL, amAlert{Labels: map[string]string{"alertname": "DiskFull", "service": "db", "instance": "x"},
			StartsAt: start, EndsAt: start.Add(time.Hour)})
		inc := waitIncident(t, e.svc, 1)
		am.Stop()
		r := NewReconciler(newClient(t, am.URL), e.svc, nil, Options{MissingPolls: 1}, nil, e.m)
		for range 3 {
			_, err := r.Reconcile(ctx)
			require.ErrorContains(t, err, "get alerts from alertmanager")
		}
		got, err := e.svc.Get(ctx, inc.ID)
		require.NoError(t, err)
		require.Equal(t, incident.StatusTriggered, got.Status)
		require.Equal(t, 3.0, testutil.ToFloat64(e.m.runs.WithLabelValues("error")))
	})
}

// TestReconcileAfterAlertmanagerRestart: Alertmanager keeps alerts in
// memory only. Restarted, it has none until Prometheus sends them again,
// which it does every resend_delay (1m) at its next rule evaluation: up to
// two minutes later with a one-minute evaluation interval, after two polls
// a minute apart. Polls within RestartGrace of Alertmanager's start resolve
// nothing, however many; Prometheus's re-sent alert is found; an alert
// that resolved is resolved from the second poll after the grace.
func TestReconcileAfterAlertmanagerRestart(t *testing.T) {
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		am := startAlertmanager(t, e.srv.URL)
		start := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
		a := amAlert{Labels: map[string]string{"alertname": "DiskFull", "service": "db", "instance": "x"},
			StartsAt: start, EndsAt: start.Add(time.Hour)}
		postAlerts(t, am.URL, a)
		inc := waitIncident(t, e.svc, 1)

		am.Stop()
		am = startAlertmanager(t, e.srv.URL) // restarted: no alerts
		client := newClient(t, am.URL)
		started, err := client.Started(ctx)
		require.NoError(t, err)
		clk := clock.NewManual(started.Add(30 * time.Second))
		r := NewReconciler(client, e.svc, nil, Options{MissingPolls: 2, RestartGrace: 3 * time.Minute}, nil, e.m)
		r.Clock = clk
		for range 4 {
			res, err := r.Reconcile(ctx)
			require.NoError(t, err)
			require.Equal(t, 1, res.Missing)
			require.Empty(t, res.Resolved)
			clk.Advance(30 * time.Second)
		}
		got, err := e.svc.Get(ctx, inc.ID)
		require.NoError(t, err)
		require.Equal(t, incident.StatusTriggered, got.Status, "an Alertmanager that just restarted resolved the incident")
		require.Equal(t, map[string]string{"x": "firing"}, alertStatus(got))

		// Prometheus sends the alert again: found.
		postAlerts(t, am.URL, a)
		res, err := r.Reconcile(ctx)
		require.NoError(t, err)
		require.Zero(t, res.Missing)

		// Past the grace, Alertmanager's answer counts: a resolved alert
		// (its resolve not sent) is resolved at the second poll.
		clk.Set(started.Add(4 * time.Minute))
		a.EndsAt = time.Now().UTC().Add(-time.Second)
		postAlerts(t, am.URL, a)
		res, err = r.Reconcile(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, res.Missing)
		res, err = r.Reconcile(ctx)
		require.NoError(t, err)
		require.Len(t, res.Resolved, 1)
		got, err = e.svc.Get(ctx, inc.ID)
		require.NoError(t, err)
		require.Equal(t, incident.StatusResolved, got.Status)
	})
}

// TestReconcileRevivesAlertFiringAgain: Prometheus stopped sending a firing
// alert for longer than its validity (a restart, failing evaluations), so
// Alertmanager resolved it and sred resolved the incident; then Prometheus
// sends it again with the start it had. Alertmanager's firing deliveries of
// that episode are taken for late ones (out of order): the outage went on
// with its incident resolved. The reconciler finds the episode active in
// Alertmanager at two successive polls and re-opens the incident.
func TestReconcileRevivesAlertFiringAgain(t *testing.T) {
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		am := startAlertmanager(t, e.srv.URL)
		start := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Millisecond)
		a := amAlert{Labels: map[string]string{"alertname": "DiskFull", "service": "db", "instance": "x"},
			StartsAt: start, EndsAt: start.Add(time.Hour)}
		postAlerts(t, am.URL, a)
		inc := waitIncident(t, e.svc, 1)
		got, err := e.svc.Get(ctx, inc.ID)
		require.NoError(t, err)
		stored := got.Alerts[0]
		groups, err := e.svc.Links(ctx, inc.ID)
		require.NoError(t, err)
		require.Len(t, groups, 1)

		// Alertmanager's resolve of the episode (it timed out), as its
		// webhook delivers it.
		resolved := incident.NotifiedAlert{Status: "resolved", Labels: stored.Labels, StartsAt: stored.StartsAt,
			EndsAt: time.Now().UTC().Add(-time.Minute), Fingerprint: stored.Fingerprint}
		_, err = e.svc.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "resolved", GroupKey: groups[0].GroupKey,
			CommonLabels: stored.Labels, Alerts: []incident.NotifiedAlert{resolved}})
		require.NoError(t, err)
		got, err = e.svc.Get(ctx, inc.ID)
		require.NoError(t, err)
		require.Equal(t, incident.StatusResolved, got.Status)
		// Its firing delivery afterwards, same start: taken for a late one.
		firing := resolved
		firing.Status, firing.EndsAt = "firing", time.Time{}
		res, err := e.svc.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "firing", GroupKey: groups[0].GroupKey,
			CommonLabels: stored.Labels, Alerts: []incident.NotifiedAlert{firing}})
		require.NoError(t, err)
		require.Equal(t, 1, res.Alerts["out_of_order"])

		// Alertmanager holds it active (Prometheus sends it again).
		r := NewReconciler(newClient(t, am.URL), e.svc, nil, Options{MissingPolls: 2}, nil, e.m)
		rr, err := r.Reconcile(ctx)
		require.NoError(t, err)
		require.Empty(t, rr.Revived, "once is not enough")
		rr, err = r.Reconcile(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{inc.ID + "/" + stored.Fingerprint}, rr.Revived)
		got, err = e.svc.Get(ctx, inc.ID)
		require.NoError(t, err)
		require.Equal(t, incident.StatusTriggered, got.Status, "the incident re-opens")
		require.Equal(t, map[string]string{"x": "firing"}, alertStatus(got))
		kinds := timelineKinds(t, e.svc, inc.ID)
		require.True(t, contains(kinds["status"], "re-opened: Alertmanager has alerts firing again"))
		require.True(t, contains(kinds["reconcile"], `firing again that sred held as resolved (sent again with the same start): DiskFull{instance="x", service="db"}`))

		// Found firing now: further polls change nothing.
		rr, err = r.Reconcile(ctx)
		require.NoError(t, err)
		require.Empty(t, rr.Revived)
		require.Empty(t, rr.Resolved)

		// Resolved again, and silenced in Alertmanager: not revived (a
		// silence says nobody is to be told).
		resolved.EndsAt = time.Now().UTC()
		_, err = e.svc.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "resolved", GroupKey: groups[0].GroupKey,
			CommonLabels: stored.Labels, Alerts: []incident.NotifiedAlert{resolved}})
		require.NoError(t, err)
		_, err = newClient(t, am.URL).CreateSilence(ctx, Silence{Matchers: map[string]string{"alertname": "DiskFull"},
			StartsAt: time.Now().UTC(), EndsAt: time.Now().UTC().Add(time.Hour), CreatedBy: "test", Comment: "maintenance"})
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			as, err := newClient(t, am.URL).Alerts(ctx)
			return err == nil && len(as) == 1 && as[0].State == "suppressed"
		}, 60*time.Second, 50*time.Millisecond, "the silence did not suppress the alert")
		for range 3 {
			rr, err = r.Reconcile(ctx)
			require.NoError(t, err)
			require.Empty(t, rr.Revived)
		}
		got, err = e.svc.Get(ctx, inc.ID)
		require.NoError(t, err)
		require.Equal(t, incident.StatusResolved, got.Status)
	})
}

// startFlushOnce starts an Alertmanager that sends its groups to e's
// webhook: a group's first notification at once, the next one only an
// hour later, never within a test.
func startFlushOnce(t *testing.T, e *env) *tu.Process {
	t.Helper()
	return tu.StartAlertmanager(t, tu.AlertmanagerOptions{Config: fmt.Sprintf(`
route:
  receiver: sred
  group_by: [alertname, service]
  group_wait: 0s
  group_interval: 1h
  repeat_interval: 4h
receivers:
- name: sred
  webhook_configs:
  - url: %s/api/v1/webhook/alertmanager
`, e.srv.URL)})
}

// fireAndResolve sends Alertmanager an alert of labels that started ten
// minutes ago and waits for its incident, then resolves the alert, as
// Prometheus does, and waits until Alertmanager no longer has it active.
// It returns the incident and the alert's start.
func fireAndResolve(t *testing.T, e *env, amURL string, client *Client, labels map[string]string) (incident.Incident, time.Time) {
	t.Helper()
	first := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Second)
	postAlerts(t, amURL, amAlert{Labels: labels, StartsAt: first, EndsAt: first.Add(time.Hour)})
	inc := waitIncident(t, e.svc, 1)
	postAlerts(t, amURL, amAlert{Labels: labels, StartsAt: first, EndsAt: time.Now().UTC().Add(-time.Second)})
	require.Eventually(t, func() bool {
		as, err := client.Alerts(context.Background())
		return err == nil && len(as) == 0
	}, 60*time.Second, 50*time.Millisecond, "Alertmanager still has the alert active")
	return inc, first
}

// TestReconcileFindsNewEpisodeAfterResolve: an alert resolves and fires
// again between two flushes of its Alertmanager group. Alertmanager
// notifies a group only when its set of firing fingerprints changes (or
// repeat_interval passes), so it delivers neither the resolve nor the new
// episode; the reconciler resolved the incident when the alert was gone,
// and must re-open it when Alertmanager has the alert firing again with a
// new start, as the webhook would have.
func TestReconcileFindsNewEpisodeAfterResolve(t *testing.T) {
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		am := startFlushOnce(t, e)
		client := newClient(t, am.URL)
		labels := map[string]string{"alertname": "CacheEvictions", "service": "cache", "instance": "x"}
		// The alert fires, then Prometheus resolves it: gone from
		// Alertmanager's active alerts, and two polls later resolved by the
		// reconciler.
		inc, first := fireAndResolve(t, e, am.URL, client, labels)
		fp := inc.Alerts[0].Fingerprint
		r := NewReconciler(client, e.svc, nil, Options{MissingPolls: 2}, nil, e.m)
		for range 2 {
			_, err := r.Reconcile(ctx)
			require.NoError(t, err)
		}
		got, err := e.svc.Get(ctx, inc.ID)
		require.NoError(t, err)
		require.Equal(t, incident.StatusResolved, got.Status)

		// It fires again, a new episode, which Alertmanager does not deliver
		// before the group's next flush.
		second := time.Now().UTC().Truncate(time.Second)
		postAlerts(t, am.URL, amAlert{Labels: labels, StartsAt: second, EndsAt: second.Add(time.Hour)})
		require.Eventually(t, func() bool {
			as, err := client.Alerts(ctx)
			return err == nil && len(as) == 1 && as[0].StartsAt.Equal(second) && as[0].State == "active"
		}, 60*time.Second, 50*time.Millisecond, "Alertmanager does not have the new episode active")
		rr, err := r.Reconcile(ctx)
		require.NoError(t, err)
		require.Empty(t, rr.Revived, "once is not enough")
		rr, err = r.Reconcile(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{inc.ID + "/" + fp}, rr.Revived)
		got, err = e.svc.Get(ctx, inc.ID)
		require.NoError(t, err)
		require.Equal(t, incident.StatusTriggered, got.Status, "the incident re-opens")
		require.True(t, got.Flapping, "fired again within the flap window")
		require.Len(t, got.Alerts, 2)
		starts := map[string]string{}
		for _, a := range got.Alerts {
			starts[a.StartsAt.UTC().Format(time.RFC3339)] = a.Status
		}
		require.Equal(t, map[string]string{first.Format(time.RFC3339): "resolved", second.Format(time.RFC3339): "firing"}, starts)
		kinds := timelineKinds(t, e.svc, inc.ID)
		require.True(t, contains(kinds["status"], "re-opened: fired again within the flap window"))
		require.True(t, contains(kinds["reconcile"], `Alertmanager has 1 alert firing again with a new start that it has not delivered: CacheEvictions{instance="x", service="cache"}`))
		page, err := e.svc.List(ctx, incident.Filter{})
		require.NoError(t, err)
		require.Len(t, page.Incidents, 1, "no second incident")

		// Found firing now: further polls change nothing.
		for range 2 {
			rr, err = r.Reconcile(ctx)
			require.NoError(t, err)
			require.Empty(t, rr.Revived)
			require.Empty(t, rr.Resolved)
		}
		require.Len(t, timelineKinds(t, e.svc, inc.ID)["reconcile"], 2)
	})
}

// TestReconcileSkipsAlertsAheadOfClock: Alertmanager takes the times its
// clients give, so an alert starting in the year 9999 reaches it as it
// is. The webhooks refuse such an alert (receiver.AheadOfClock); a poll
// leaves it out and says so, instead of storing it as a new episode of a
// resolved alert (the incident "re-opened" in the year 9999).
func TestReconcileSkipsAlertsAheadOfClock(t *testing.T) {
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		far := time.Date(9999, 12, 30, 0, 0, 0, 0, time.UTC)
		requireSkipped(t, db, far, far.Add(time.Hour), func(now time.Time) string {
			return `"startsAt" 9999-12-30T00:00:00Z is more than 24 hours after sred's clock (` +
				now.Format(time.RFC3339) + `): the clock of Prometheus or of sred is wrong`
		})
	})
}

// TestReconcileSkipsAlertsBefore2000: an alert starting in 1970 (a client's
// Unix time 0) reaches Alertmanager as it is too. The webhooks refuse it
// (receiver.BeforeMinStartsAt); a poll leaves it out and says so, instead
// of storing it as a new episode with a detection time of decades.
func TestReconcileSkipsAlertsBefore2000(t *testing.T) {
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		requireSkipped(t, db, time.Unix(0, 0).UTC(), time.Now().UTC().Add(time.Hour).Truncate(time.Second), func(time.Time) string {
			return `"startsAt" 1970-01-01T00:00:00Z is before 2000-01-01T00:00:00Z, earlier than any Prometheus: the clock of Prometheus is wrong`
		})
	})
}

// requireSkipped fires and resolves an alert, which the reconciler
// resolves, then has it fire again in Alertmanager from start to end, a
// start the webhooks refuse: every poll leaves it out with reason(the
// poll's clock), logs it at the first poll only, counts it in
// sre_reconcile_skipped_alerts, and re-opens nothing.
func requireSkipped(t *testing.T, db *store.DB, start, end time.Time, reason func(now time.Time) string) {
	t.Helper()
	ctx := context.Background()
	e := newEnv(t, db)
	am := startFlushOnce(t, e)
	client := newClient(t, am.URL)
	labels := map[string]string{"alertname": "CacheEvictions", "service": "cache", "instance": "x"}
	inc, first := fireAndResolve(t, e, am.URL, client, labels)
	var logs bytes.Buffer
	r := NewReconciler(client, e.svc, nil, Options{MissingPolls: 2}, slog.New(slog.NewTextHandler(&logs, nil)), e.m)
	now := time.Now().UTC().Truncate(time.Second)
	r.Clock = clock.NewManual(now)
	for range 2 {
		_, err := r.Reconcile(ctx)
		require.NoError(t, err)
	}
	got, err := e.svc.Get(ctx, inc.ID)
	require.NoError(t, err)
	require.Equal(t, incident.StatusResolved, got.Status)

	// The alert fires again, from start.
	postAlerts(t, am.URL, amAlert{Labels: labels, StartsAt: start, EndsAt: end})
	require.Eventually(t, func() bool {
		as, err := client.Alerts(ctx)
		return err == nil && len(as) == 1 && as[0].StartsAt.Equal(start) && as[0].State == "active"
	}, 60*time.Second, 50*time.Millisecond, "Alertmanager does not have the alert active")
	want := []string{`CacheEvictions{instance="x", service="cache"}: ` + reason(now)}
	for range 3 {
		rr, err := r.Reconcile(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, rr.AlertmanagerAlerts)
		require.Empty(t, rr.Revived)
		require.Equal(t, want, rr.Skipped)
		require.Equal(t, 1.0, testutil.ToFloat64(e.m.skipped), "sre_reconcile_skipped_alerts")
	}
	require.Equal(t, 1, strings.Count(logs.String(), "Skipped an alert of Alertmanager"), "logged at the first poll that skips it only:\n%s", logs.String())
	got, err = e.svc.Get(ctx, inc.ID)
	require.NoError(t, err)
	require.Equal(t, incident.StatusResolved, got.Status, "nothing re-opened")
	require.Len(t, got.Alerts, 1)
	require.True(t, got.Alerts[0].StartsAt.Equal(first))
	page, err := e.svc.List(ctx, incident.Filter{})
	require.NoError(t, err)
	require.Len(t, page.Incidents, 1, "no second incident")
}

func TestNewClientErrors(t *testing.T) {
	for _, tc := range []struct{ url, err string }{
		{"ftp://am:9093", `alertmanager url "ftp://am:9093": want http(s)://host[:port][/prefix]`},
		{"http://", `alertmanager url "http://": want http(s)://host[:port][/prefix]`},
		{"://x", `alertmanager url: parse "://x": missing protocol scheme`},
	} {
		_, err := NewClient(tc.url, commoncfg.DefaultHTTPClientConfig, 0)
		require.EqualError(t, err, tc.err, tc.url)
	}
}

func TestIsAlertmanagerGroup(t *testing.T) {
	for key, want := range map[string]bool{
		`{}:{alertname="X"}`:             true,
		`{}/{team="a"}:{alertname="X"}`:  true,
		WatchdogGroupPrefix + "Watchdog": false,
		"":                               false,
	} {
		require.Equal(t, want, IsAlertmanagerGroup(key), key)
	}
}
