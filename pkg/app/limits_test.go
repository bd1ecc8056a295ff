package app

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
)

// TestInputLimits runs sred as built by cmd/sred on both backends: text the
// store cannot keep is refused in paths, query parameters and JSON bodies
// with a 400 naming the field, and webhook.limits of sred.yml reach the
// webhook handler.
func TestInputLimits(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			a, srv := runApp(t, backend, "webhook:\n  limits:\n    max_alerts_per_group: 1\n", nil)
			do := func(method, path, body string) (int, string) {
				req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
				require.NoError(t, err)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			code, body := do("GET", "/api/v1/incidents?service=a%00b", "")
			require.Equal(t, http.StatusBadRequest, code, body)
			require.Contains(t, body, `query parameter \"service\": NUL byte at offset 1`)
			code, body = do("GET", "/api/v1/incidents/INC-2026-0001%00", "")
			require.Equal(t, http.StatusBadRequest, code, body)
			require.Contains(t, body, `path: NUL byte`)
			code, body = do("GET", "/api/v1/incidents?until=NaN", "")
			require.Equal(t, http.StatusBadRequest, code, body)
			require.Contains(t, body, `until: NaN is not a finite number`)

			alert := func(fp string) string {
				return `{"status":"firing","labels":{"alertname":"Down","service":"api"},"startsAt":"2026-11-27T03:34:23Z","fingerprint":"` + fp + `"}`
			}
			delivery := `{"version":"4","groupKey":"{}:{alertname=\"Down\"}","status":"firing","receiver":"sred","alerts":[` + alert("a") + `,` + alert("b") + `]}`
			code, body = do("POST", "/api/v1/webhook/alertmanager", strings.Replace(delivery, `"api"}`, `"a\u0000pi"}`, 1))
			require.Equal(t, http.StatusBadRequest, code, body)
			require.Contains(t, body, `alerts[0].labels[\"service\"]: NUL byte at offset 1`)
			page, err := a.Incidents.List(t.Context(), incident.Filter{})
			require.NoError(t, err)
			require.Zero(t, page.Total, "a refused delivery stores nothing")

			code, body = do("POST", "/api/v1/webhook/alertmanager", delivery)
			require.Equal(t, http.StatusOK, code, body)
			page, err = a.Incidents.List(t.Context(), incident.Filter{})
			require.NoError(t, err)
			require.Equal(t, 1, page.Total)
			inc, err := a.Incidents.Get(t.Context(), page.Incidents[0].ID)
			require.NoError(t, err)
			require.Len(t, inc.Alerts, 1, "webhook.limits.max_alerts_per_group of sred.yml applies")
		})
	}
}
