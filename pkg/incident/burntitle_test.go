package incident_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// burnAlert is a firing alert of a generated burn-rate rule: its tier and
// the factor the generator writes in burn_rate_threshold.
type burnAlert struct{ tier, factor string }

// TestTitleNamesFastestTier: on both backends, .BurnRate and .BurnTier name
// the fastest tier firing. A 24h SLO's page_fast (5m windows) has the
// factor 5.76, below page_slow's 6 (12m): its incident is titled after
// page_fast, not after the highest factor.
func TestTitleNamesFastestTier(t *testing.T) {
	cases := []struct {
		name   string
		alerts []burnAlert
		want   string
	}{
		{"30d SLO, both pages", []burnAlert{{"page_slow", "6"}, {"page_fast", "14.4"}}, "14.4x page_fast"},
		{"24h SLO, both pages", []burnAlert{{"page_fast", "5.76"}, {"page_slow", "6"}}, "5.76x page_fast"},
		{"24h SLO, page_slow alone", []burnAlert{{"page_slow", "6"}}, "6x page_slow"},
		{"tickets", []burnAlert{{"ticket_slow", "1"}, {"ticket_fast", "3"}}, "3x ticket_fast"},
		{"a tier the generator does not write", []burnAlert{{"custom", "50"}, {"ticket_slow", "1"}}, "1x ticket_slow"},
		{"two tiers it does not write", []burnAlert{{"custom", "2"}, {"other", "50"}}, "50x other"},
	}
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		opts := incident.DefaultOptions()
		opts.TitleTemplate = `{{ .BurnRate }}x {{ .BurnTier }}`
		svc, err := incident.NewService(db, opts, nil, events.NewBus(64, nil), nil, prometheus.NewRegistry())
		require.NoError(t, err)
		svc.Clock = clock.NewManual(epoch)
		t.Cleanup(func() { svc.Close() })
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ctx := context.Background()
				service := "svc-" + string(rune('a'+i))
				n := incident.Notification{Receiver: "sred", Status: "firing", GroupKey: `{}:{service="` + service + `"}`,
					GroupLabels:  map[string]string{"service": service},
					CommonLabels: map[string]string{"service": service}}
				for _, a := range tc.alerts {
					n.Alerts = append(n.Alerts, incident.NotifiedAlert{Status: "firing", Fingerprint: service + a.tier,
						StartsAt:    epoch.Add(-time.Minute),
						Labels:      map[string]string{"alertname": "SLOBurnRatePage", "service": service, "severity": "page", "burn_tier": a.tier},
						Annotations: map[string]string{incident.AnnotationBurnRate: a.factor}})
				}
				res, err := svc.Ingest(ctx, n)
				require.NoError(t, err)
				require.Len(t, res.Created, 1)
				inc, err := svc.Get(ctx, res.Created[0])
				require.NoError(t, err)
				require.Equal(t, tc.want, inc.Title)
			})
		}
	})
}
