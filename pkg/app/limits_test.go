package app

import (
	"encoding/json"
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

			// Invalid UTF-8 is refused, not stored as U+FFFD by the JSON
			// decoder: in a delivery and in an API body.
			code, body = do("POST", "/api/v1/webhook/alertmanager", strings.Replace(strings.ReplaceAll(delivery, `Down`, `Up`), `"api"}`, "\"a\xffpi\"}", 1))
			require.Equal(t, http.StatusBadRequest, code, body)
			require.Contains(t, body, `invalid JSON body: body: invalid UTF-8 at byte offset`)
			code, body = do("POST", "/api/v1/incidents", "{\"title\":\"bad\xff\xfe\",\"service\":\"api\",\"severity\":\"LOW\"}")
			require.Equal(t, http.StatusBadRequest, code, body)
			require.Contains(t, body, `request body: invalid UTF-8 at byte offset 13`)
			page, err = a.Incidents.List(t.Context(), incident.Filter{})
			require.NoError(t, err)
			require.Equal(t, 1, page.Total, "refused bodies store nothing")

			// A URL-encoded form is read to at most 1 MiB before any
			// handler or credential check (a public route here).
			req, err := http.NewRequest("POST", srv.URL+"/ack/x", strings.NewReader("a="+strings.Repeat("b", 2<<20)))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, string(b))
			require.Equal(t, "form: request body larger than 1048576 bytes\n", string(b), "plain text outside /api/")
			require.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"))
			// The media type in another case, with a parameter, is the
			// same form for net/http, and for the limit.
			req, err = http.NewRequest("POST", srv.URL+"/ack/x", strings.NewReader("a="+strings.Repeat("b", 2<<20)))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "Application/X-WWW-Form-Urlencoded; charset=UTF-8")
			resp, err = http.DefaultClient.Do(req)
			require.NoError(t, err)
			b, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, string(b))
			// A console form with a NUL byte: plain text too.
			req, err = http.NewRequest("POST", srv.URL+"/incidents", strings.NewReader("title=t&service=x&severity=HIGH&description=%00"))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err = http.DefaultClient.Do(req)
			require.NoError(t, err)
			b, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, string(b))
			require.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"), string(b))
			require.Contains(t, string(b), "NUL byte")

			// A delivery labelled as a form (`curl -d @delivery.json`
			// sends that Content-Type) reaches the webhook whole, a '%'
			// in it included, as any other Content-Type does.
			formPost := func(path, body string) (int, string) {
				req, err := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
				require.NoError(t, err)
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			formDelivery := strings.ReplaceAll(strings.ReplaceAll(delivery, `Down`, `Slow`), `"api"`, `"web"`)
			formDelivery = strings.Replace(formDelivery, `"labels":`, `"annotations":{"summary":"100% of requests fail"},"labels":`, 1)
			code, body = formPost("/api/v1/webhook/alertmanager", formDelivery)
			require.Equal(t, http.StatusOK, code, body)
			require.Contains(t, body, `"created":["INC-`)
			// The other API routes take JSON only, and say so.
			code, body = formPost("/api/v1/incidents", `{"title":"Checkout slow","service":"checkout","severity":"HIGH"}`)
			require.Equal(t, http.StatusUnsupportedMediaType, code, body)
			require.Contains(t, body, `Content-Type must be application/json, got \"application/x-www-form-urlencoded\"`)
			page, err = a.Incidents.List(t.Context(), incident.Filter{})
			require.NoError(t, err)
			require.Equal(t, 2, page.Total, "the form-labelled delivery is stored")

			// An import is checked as the API's bodies are: a time no
			// answer could encode, or an ID a path would read otherwise,
			// is refused and nothing is stored.
			code, body = do("GET", "/api/v1/incidents/export", "")
			require.Equal(t, http.StatusOK, code, body)
			// Every incident of the store: never cached, never sniffed.
			exp, err := http.NewRequest("GET", srv.URL+"/api/v1/incidents/export", nil)
			require.NoError(t, err)
			expResp, err := http.DefaultClient.Do(exp)
			require.NoError(t, err)
			expResp.Body.Close()
			require.Equal(t, "no-store", expResp.Header.Get("Cache-Control"))
			require.Equal(t, "nosniff", expResp.Header.Get("X-Content-Type-Options"))
			var line map[string]any
			require.NoError(t, json.Unmarshal([]byte(strings.SplitN(body, "\n", 2)[0]), &line))
			imp := func(id, created string) (int, string) {
				line["incident"].(map[string]any)["id"] = id
				line["incident"].(map[string]any)["created_at"] = created
				b, err := json.Marshal(line)
				require.NoError(t, err)
				return do("POST", "/api/v1/incidents/import", string(b)+"\n")
			}
			code, body = imp("INC-2026-9001", "9999-12-31T23:00:00-02:00")
			require.Equal(t, http.StatusBadRequest, code, body)
			require.Contains(t, body, `incident INC-2026-9001: field incident.created_at: time 9999-12-31T23:00:00-02:00 is outside the years 1 to 9999 UTC`)
			code, body = imp("../../etc/passwd", "2026-11-27T03:34:23Z")
			require.Equal(t, http.StatusBadRequest, code, body)
			require.Contains(t, body, `field incident.id: \"../../etc/passwd\" is not an incident ID`)
			code, body = do("GET", "/api/v1/incidents", "")
			require.Equal(t, http.StatusOK, code, body)
			require.Contains(t, body, `"total":2`)

			// A window whose end (start plus duration) is past the year 9999.
			code, body = do("POST", "/api/v1/escalation/maintenance", `{"name":"m","matchers":["service=\"x\""],"start":"9999-12-31T23:00:00Z","duration":"2h"}`)
			require.Equal(t, http.StatusBadRequest, code, body)
			require.Contains(t, body, `the window's end (start plus duration): duration: time 10000-01-01T01:00:00Z is outside the years 1 to 9999 UTC`)
		})
	}
}
