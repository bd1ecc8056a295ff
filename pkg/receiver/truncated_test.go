package receiver

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// TestTruncatedDeliveries posts the payloads Alertmanager v0.28 sent for a
// group of three alerts with max_alerts: 1 (one alert, truncatedAlerts: 2):
// the incident holds the alert it was told about, the left-out alerts are
// counted, and the resolved notification resolves the incident.
func TestTruncatedDeliveries(t *testing.T) {
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{})
		firing, resolved := recorded(t, "am-truncated-firing.json"), recorded(t, "am-truncated-resolved.json")
		truncated := func() float64 { return counterValue(t, e.reg, "sre_webhook_truncated_alerts_total") }
		require.Equal(t, 0.0, truncated())

		code, body := e.post(t, firing)
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, `"created":["INC-2026-0001"]`)
		inc := onlyIncident(t, e.svc)
		require.Equal(t, "api", inc.Service)
		require.Equal(t, incident.SeverityCritical, inc.Severity)
		require.Equal(t, incident.StatusTriggered, inc.Status)
		require.Len(t, inc.Alerts, 1)
		require.Equal(t, "api-0:8080", inc.Alerts[0].Labels["instance"])
		require.Equal(t, "firing", inc.Alerts[0].Status)
		require.Equal(t, 2.0, truncated())

		e.mustPost(t, resolved)
		inc = onlyIncident(t, e.svc)
		require.Equal(t, incident.StatusResolved, inc.Status)
		require.Len(t, inc.Alerts, 1)
		require.Equal(t, "resolved", inc.Alerts[0].Status)
		require.Equal(t, resolved.Alerts[0].EndsAt.UTC(), *inc.RecoveredAt)
		require.Equal(t, 4.0, truncated())
		require.Equal(t, []string{"status", "alert_fired", "alert_resolved", "status"}, kinds(t, e.svc, inc.ID))
	})
}
