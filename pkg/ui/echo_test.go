package ui_test

import (
	"context"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/audit"
	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/noise"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/ui"
)

// TestConsoleLongValuesCut: a console error page naming a value of the
// request (an SLO or service in the path, ?before=, ?since=, ?state=, an
// incident id, an action, a duration) quotes it cut at 64 bytes ending with
// "…" (limits.Quote), never the 5,000 characters whole. Both backends.
func TestConsoleLongValuesCut(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations, budget.Migrations, audit.Migrations}, func(t *testing.T, db *store.DB) {
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		defer svc.Close()
		bs := budget.New(budget.Options{DB: db, Registerer: prometheus.NewRegistry()})
		require.NoError(t, bs.Update(budget.DefaultConfig, specs(t, 1, 1), nil, nil))
		report := func(ctx context.Context, o noise.Options) (*noise.Report, error) { return noise.Build(ctx, db, o) }
		mux := http.NewServeMux()
		ui.New(ui.Sources{Incidents: svc, Budgets: bs, Audit: audit.New(db, clock.Real{}), Noise: report, Runbooks: noRuns{}},
			ui.Options{AllowAnonymous: true}).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		lbls := map[string]string{"alertname": "Down", "service": "svc000", "severity": "critical"}
		res, err := svc.Ingest(t.Context(), incident.Notification{Receiver: "sred", Status: "firing", GroupKey: "{}:a", CommonLabels: lbls,
			Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "a", StartsAt: time.Now(), Labels: lbls}}})
		require.NoError(t, err)
		id := res.Created[0]
		c := &client{t: t, base: srv.URL, c: srv.Client()}

		long := strings.Repeat("n", 5000)
		cut := strings.Repeat("n", 61) + "…"
		quoted := `"` + cut + `"`
		for _, tc := range []struct {
			method, path string
			form         url.Values
			code         int
			want         string
		}{
			{"GET", "/slos/" + long + "/" + long, nil, 404, "SLO " + quoted + " of service " + quoted},
			{"GET", "/audit?before=" + long, nil, 400, "before: want a non-negative integer, got " + quoted},
			{"GET", "/noise?since=" + long, nil, 400, "since: want a positive duration (7d, 30d, 90d), got " + quoted},
			{"GET", "/?state=" + long, nil, 400, "unknown state " + quoted},
			{"GET", "/incidents?status=" + long, nil, 400, "unknown status " + quoted},
			{"GET", "/incidents?offset=" + long, nil, 400, "offset: want a non-negative integer, got " + quoted},
			{"GET", "/incidents?severity=" + long, nil, 400, "unknown severity " + quoted},
			{"GET", "/incidents?peak_severity=" + long, nil, 400, "peak_severity: unknown severity " + quoted},
			{"GET", "/incidents/" + long, nil, 404, "incident not found: " + cut},
			{"POST", "/incidents/" + long + "/ack", url.Values{}, 404, "incident not found: " + cut},
			{"POST", "/incidents/" + id + "/" + long, url.Values{}, 404, "unknown action " + quoted},
			{"POST", "/incidents/" + id + "/action-items/" + long + "/done", url.Values{}, 400, "invalid action item id " + quoted},
			{"POST", "/incidents/" + id + "/snooze", url.Values{"duration": {long}}, 400, "snooze duration: not a valid duration string: " + quoted},
			{"POST", "/incidents/" + id + "/status-update", url.Values{"impact": {"x"}, "next_update": {long}}, 400,
				"next update: not a valid duration string: " + quoted},
			{"POST", "/runbooks/runs/" + long + "/approve", url.Values{}, 400, "invalid run id " + quoted},
			{"POST", "/runbooks/runs/1/" + long, url.Values{}, 404, "unknown action " + quoted},
		} {
			t.Run(tc.method+" "+tc.path[:min(len(tc.path), 40)], func(t *testing.T) {
				code, body := c.do(tc.method, tc.path, tc.form)
				require.Equal(t, tc.code, code, "%.300s", body)
				require.Contains(t, body, template.HTMLEscapeString(tc.want))
				require.NotContains(t, body, strings.Repeat("n", 100), "the value comes back whole")
			})
		}
	})
}
