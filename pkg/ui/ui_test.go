package ui_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/ui"
	"github.com/rootuip/sre/pkg/web"
)

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestUIPages runs the pages over the real incident service on both
// backends: open incidents are listed most severe first, bad forms are
// refused without changing the incident, unknown incidents are 404.
func TestUIPages(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		mux := http.NewServeMux()
		ui.New(ui.Sources{Incidents: svc}, ui.Options{AllowAnonymous: true}).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()

		var ids []string
		for _, sev := range []string{"low", "critical"} {
			lbls := map[string]string{"alertname": "Down", "service": "api", "severity": sev}
			res, err := svc.Ingest(t.Context(), incident.Notification{Receiver: "sred", Status: "firing", GroupKey: "{}:" + sev, CommonLabels: lbls,
				Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: sev, StartsAt: time.Now(), Labels: lbls}}})
			require.NoError(t, err)
			ids = append(ids, res.Created[0])
		}
		code, body := get(t, srv.URL+"/incidents")
		require.Equal(t, http.StatusOK, code)
		require.Less(t, strings.Index(body, ids[1]), strings.Index(body, ids[0]), "CRITICAL before LOW")

		resp, err := http.PostForm(srv.URL+"/incidents/"+ids[0]+"/resolve", url.Values{"actor": {strings.Repeat("x", 300)}})
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		require.Contains(t, string(b), "actor longer than 200 characters")

		resp, err = http.Post(srv.URL+"/incidents/"+ids[0]+"/resolve", "application/x-www-form-urlencoded", strings.NewReader("note="+strings.Repeat("x", web.MaxBody)))
		require.NoError(t, err)
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		require.Contains(t, string(b), "invalid form: http: request body too large")
		inc, err := svc.Get(t.Context(), ids[0])
		require.NoError(t, err)
		require.Equal(t, incident.StatusTriggered, inc.Status, "refused forms changed nothing")

		code, body = get(t, srv.URL+"/incidents/"+url.PathEscape("<nope>"))
		require.Equal(t, http.StatusNotFound, code)
		require.Contains(t, body, "&lt;nope&gt;")
	})
}
