package receiver

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	tu "github.com/rootuip/sre/pkg/testutil"
)

func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// TestMixedServiceGroup: a group not grouped by service that holds alerts of
// several services becomes one incident named after the first alert's
// service; sred warns in its log and counts it in
// sre_webhook_mixed_service_groups_total. Groups that name their service, or
// whose alerts all share one, are not counted.
func TestMixedServiceGroup(t *testing.T) {
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		reg := prometheus.NewRegistry()
		var logs tu.SyncBuffer
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, events.NewBus(16, nil),
			slog.New(slog.NewTextHandler(&logs, nil)), reg)
		require.NoError(t, err)
		svc.Clock = clock.NewManual(epoch)
		mux := http.NewServeMux()
		mux.Handle("POST "+Path, NewHandler(svc, Options{}, nil, reg))
		srv := httptest.NewServer(mux)
		defer srv.Close()
		e := &env{db: db, svc: svc, srv: srv, reg: reg}

		// The recorded group is grouped by service: nothing to report.
		e.mustPost(t, recorded(t, "am-firing.json"))
		require.Equal(t, 0.0, counterValue(t, reg, "sre_webhook_mixed_service_groups_total"))

		// Grouped by alertname only, one alert of api and one of web.
		mixed := recorded(t, "am-firing.json")
		mixed.GroupKey = `{}:{alertname="HighErrorRate"}`
		mixed.GroupLabels = map[string]string{"alertname": "HighErrorRate"}
		delete(mixed.CommonLabels, "service")
		delete(mixed.CommonLabels, "job")
		mixed.Alerts[1].Labels = map[string]string{"alertname": "HighErrorRate", "instance": "web-1:8080", "job": "web",
			"service": "web", "severity": "critical"}
		mixed.Alerts[1].Fingerprint = "1111111111111111"
		code, body := e.post(t, mixed)
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, `"created":["INC-2026-0002"]`)
		inc, err := svc.Get(t.Context(), "INC-2026-0002")
		require.NoError(t, err)
		require.Equal(t, "api", inc.Service, "named after the first alert")
		require.Len(t, inc.Alerts, 2)
		require.Equal(t, 1.0, counterValue(t, reg, "sre_webhook_mixed_service_groups_total"))
		require.Contains(t, logs.String(), `level=WARN msg="Alertmanager group holds alerts of several services, one incident is named after one of them: add the service label to the route's group_by" `+
			`group_key="{}:{alertname=\"HighErrorRate\"}" services=api,web incidents=INC-2026-0002`)

		// The same delivery again is a duplicate: not counted twice.
		code, body = e.post(t, mixed)
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, `"duplicate":true`)
		require.Equal(t, 1.0, counterValue(t, reg, "sre_webhook_mixed_service_groups_total"))

		// Not grouped by service, but every alert is of one service (job
		// fallback): not mixed.
		one := recorded(t, "am-firing.json")
		one.GroupKey = `{}:{alertname="Other"}`
		one.GroupLabels = map[string]string{"alertname": "Other"}
		one.CommonLabels = map[string]string{"alertname": "Other"}
		for i := range one.Alerts {
			one.Alerts[i].Labels = map[string]string{"alertname": "Other", "job": "api", "instance": one.Alerts[i].Labels["instance"]}
		}
		e.mustPost(t, one)
		require.Equal(t, 1.0, counterValue(t, reg, "sre_webhook_mixed_service_groups_total"))
		require.Equal(t, 1, strings.Count(logs.String(), "several services"))
	})
}
