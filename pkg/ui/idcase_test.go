package ui_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestIncidentPagesIDCase: the console's incident pages take an incident
// ID typed in another case, as the API does: the page of inc-2026-0001
// redirects to that of INC-2026-0001 (query kept), its buttons act on it,
// and an unknown ID is still the 404 page.
func TestIncidentPagesIDCase(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc, srv := newConsole(t, db)
		lbls := map[string]string{"alertname": "Down", "service": "api", "severity": "critical"}
		res, err := svc.Ingest(t.Context(), incident.Notification{Receiver: "sred", Status: "firing", GroupKey: "{}:a", CommonLabels: lbls,
			Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "a", StartsAt: time.Now(), Labels: lbls}}})
		require.NoError(t, err)
		id := res.Created[0]
		lower := strings.ToLower(id)
		noFollow := *srv.Client()
		noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

		for _, tc := range []struct {
			name, method, path string
			form               url.Values
			code               int
			location           string
		}{
			{"page", "GET", "/incidents/" + lower, nil, http.StatusFound, "/incidents/" + id},
			{"page with query", "GET", "/incidents/" + lower + "?done=noted", nil, http.StatusFound, "/incidents/" + id + "?done=noted"},
			{"stored form", "GET", "/incidents/" + id, nil, http.StatusOK, ""},
			{"note", "POST", "/incidents/" + lower + "/note", url.Values{"text": {"looking"}}, http.StatusSeeOther, "/incidents/" + id + "?done=noted"},
			{"ack", "POST", "/incidents/" + lower + "/ack", url.Values{}, http.StatusSeeOther, "/incidents/" + id + "?done=acknowledged"},
			{"unknown page", "GET", "/incidents/inc-1999-0404", nil, http.StatusNotFound, ""},
			{"unknown action", "POST", "/incidents/inc-1999-0404/ack", url.Values{}, http.StatusNotFound, ""},
			{"unknown item", "POST", "/incidents/inc-1999-0404/action-items/1/done", url.Values{}, http.StatusNotFound, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var body io.Reader
				if tc.form != nil {
					body = strings.NewReader(tc.form.Encode())
				}
				req, err := http.NewRequest(tc.method, srv.URL+tc.path, body)
				require.NoError(t, err)
				if tc.form != nil {
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				resp, err := noFollow.Do(req)
				require.NoError(t, err)
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.Equal(t, tc.code, resp.StatusCode, string(b))
				require.Equal(t, tc.location, resp.Header.Get("Location"))
			})
		}
		inc, err := svc.Get(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, incident.StatusAcknowledged, inc.Status, "the button of the lower-case page acknowledged the incident")
		tl, err := svc.TimelineView(t.Context(), id)
		require.NoError(t, err)
		var noted bool
		for _, e := range tl {
			noted = noted || strings.Contains(e.Message, "looking")
		}
		require.True(t, noted, "the note of the lower-case page is on the incident's timeline")
	})
}
