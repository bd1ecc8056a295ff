package incident_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestDeliveryAnsweredAsStored: Alertmanager gives up on a delivery (its
// webhook timeout) while sred applies it. The answer tells what the store
// holds: either the delivery failed and stored nothing, or it is answered
// as applied, its incident counted as created and its alert as new, once.
// Before, on SQLite the writer committed the delivery after Ingest had
// returned the caller's context error: the incident opened and paged while
// sre_webhook_deliveries_total counted an error, sre_incidents_created_total
// and sre_webhook_alerts_total{outcome="new"} never counted it, and the
// event stream never told it (Alertmanager's retry was a duplicate).
func TestDeliveryAnsweredAsStored(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		reg := prometheus.NewRegistry()
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, events.NewBus(8, nil), nil, reg)
		require.NoError(t, err)
		t.Cleanup(func() { svc.Close() })
		svc.Clock = clock.NewManual(epoch)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		incident.SetWriteHook(svc, func(context.Context, int64) { cancel() })

		res, ingestErr := svc.Ingest(ctx, notification("{}:gave-up", "checkout", "critical", epoch.Add(-time.Minute), "a"))
		incident.SetWriteHook(svc, nil)

		page, err := svc.List(context.Background(), incident.Filter{Limit: 10})
		require.NoError(t, err)
		counter := func(name, label, value string) float64 {
			mfs, err := reg.Gather()
			require.NoError(t, err)
			for _, mf := range mfs {
				if mf.GetName() != name {
					continue
				}
				for _, m := range mf.GetMetric() {
					if hasLabel(m, label, value) {
						return m.GetCounter().GetValue()
					}
				}
			}
			return 0
		}
		if db.Dialect == store.SQLite {
			// The writer applies a write whatever its caller does.
			require.NoError(t, ingestErr)
		}
		if ingestErr != nil {
			require.Zero(t, page.Total, "answered %v, yet stored", ingestErr)
			require.Equal(t, 1.0, counter("sre_webhook_deliveries_total", "outcome", "error"))
			return
		}
		require.Equal(t, 1, page.Total)
		require.Equal(t, []string{page.Incidents[0].ID}, res.Created)
		require.Equal(t, 1.0, counter("sre_incidents_created_total", "severity", "CRITICAL"))
		require.Equal(t, 1.0, counter("sre_webhook_alerts_total", "outcome", "new"))
		require.Equal(t, 1.0, counter("sre_webhook_deliveries_total", "outcome", "changed"))
		require.Zero(t, counter("sre_webhook_deliveries_total", "outcome", "error"))
	})
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}
