package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/web"
)

// TestAlertResolveNamesLabels: `srectl alert resolve` of an alert no open
// incident has firing names the labels it looked for, so that the one an
// open incident has with a label more (the demo's, with team="platform")
// is seen to be another alert.
func TestAlertResolveNamesLabels(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
		svc := newIncidentService(t, db, now)
		labels := map[string]string{}
		for k, v := range defaultAlertLabels {
			labels[k] = v
		}
		labels["team"] = "platform"
		_, err := svc.Ingest(context.Background(), incident.Notification{
			Receiver: "sred", Status: "firing", GroupKey: "api", CommonLabels: labels,
			Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "demo", StartsAt: now.Add(-time.Minute), Labels: labels}},
		})
		require.NoError(t, err)
		mux := http.NewServeMux()
		(&web.IncidentsAPI{Service: svc}).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()

		want := model.LabelSet{}
		for k, v := range defaultAlertLabels {
			want[model.LabelName(k)] = model.LabelValue(v)
		}
		var stdout, stderr bytes.Buffer
		code := Main([]string{"alert", "resolve", "--sred.url=" + srv.URL}, &stdout, &stderr)
		require.Equal(t, 4, code, stderr.String()) // a not found (docs/rules.md)
		require.Equal(t, "srectl: no open incident has a firing alert "+
			`{alertname="SLOBurnRatePage", burn_tier="page_fast", service="api", severity="page", slo="availability"}`+
			" (fingerprint "+want.Fingerprint().String()+"): srectl alert resolve ends the alert srectl alert fire sent with the same labels (-l)\n", stderr.String())
		require.Empty(t, stdout.String())
	})
}
