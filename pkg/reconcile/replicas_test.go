package reconcile

import (
	"context"
	"strings"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// pollBetween is a real Alertmanager client that runs between once after
// the reconciler has read sred's firing alerts and before it applies its
// verdict: asked when Alertmanager started (only when an alert is absent),
// it runs between first.
type pollBetween struct {
	*Client
	between func()
}

func (p *pollBetween) Started(ctx context.Context) (time.Time, error) {
	if p.between != nil {
		f := p.between
		p.between = nil
		f()
	}
	return p.Client.Started(ctx)
}

// TestReconcileResolveOnReplicas: two sred replicas (two pools on one
// PostgreSQL schema) poll one real Alertmanager that no longer has an
// alert sred holds as firing. Replica B's poll resolves it while replica
// A's poll, which read the alert as firing, has yet to apply its verdict.
// The alert is resolved once: one timeline entry, one alert counted
// resolved over both replicas, not one per poll that saw it missing.
func TestReconcileResolveOnReplicas(t *testing.T) {
	ctx := context.Background()
	dbA, dbB, _, _ := tu.PostgresReplicas(t, "sred-reconcile", migrations...)
	a, b := newEnv(t, dbA), newEnv(t, dbB)
	am := startAlertmanager(t, a.srv.URL)
	start := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	alert := amAlert{Labels: map[string]string{"alertname": "HighErrorRate", "service": "api", "severity": "critical"},
		StartsAt: start, EndsAt: start.Add(time.Hour)}
	postAlerts(t, am.URL, alert)
	inc := waitIncident(t, a.svc, 1)

	// Alertmanager resolves it; with send_resolved: false sred is not told.
	alert.EndsAt = time.Now().UTC().Add(-time.Second)
	postAlerts(t, am.URL, alert)

	rB := NewReconciler(newClient(t, am.URL), b.svc, nil, Options{MissingPolls: 1}, nil, b.m)
	var resB *Result
	clientA := &pollBetween{Client: newClient(t, am.URL), between: func() {
		var err error
		resB, err = rB.Reconcile(ctx)
		require.NoError(t, err)
	}}
	// RestartGrace: a nanosecond, so that A asks when Alertmanager started
	// (and B polls then) without taking it as just restarted.
	rA := NewReconciler(clientA, a.svc, nil, Options{MissingPolls: 1, RestartGrace: time.Nanosecond}, nil, a.m)
	resA, err := rA.Reconcile(ctx)
	require.NoError(t, err)
	require.NotNil(t, resB, "replica B did not poll while replica A's poll ran")
	require.Equal(t, []string{inc.ID + "/" + inc.Alerts[0].Fingerprint}, resB.Resolved)
	require.Empty(t, resA.Resolved, "replica B resolved the alert first")

	got, err := a.svc.Get(ctx, inc.ID)
	require.NoError(t, err)
	require.Equal(t, incident.StatusResolved, got.Status)
	var entries []string
	for _, e := range timelineKinds(t, a.svc, inc.ID)["reconcile"] {
		if strings.Contains(e.Message, "Alertmanager no longer has") {
			entries = append(entries, e.Message)
		}
	}
	require.Equal(t, []string{`Alertmanager no longer has 1 alert sred held as firing (resolve not received): HighErrorRate{service="api", severity="critical"}`}, entries)
	require.Equal(t, 1.0, promtest.ToFloat64(a.m.resolved)+promtest.ToFloat64(b.m.resolved),
		"sre_reconcile_resolved_alerts_total: one alert resolved over both replicas")
}
