package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// relabel loads a recorded payload and rewrites it: groupKey, and in every
// label set (alerts, groupLabels, commonLabels) the labels of set (an empty
// value deletes the label).
func relabel(t *testing.T, name, groupKey string, set map[string]string) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(payload(t, name), &m))
	m["groupKey"] = groupKey
	apply := func(ls any) {
		labels := ls.(map[string]any)
		for k, v := range set {
			if _, ok := labels[k]; !ok && v == "" {
				continue
			}
			if v == "" {
				delete(labels, k)
			} else {
				labels[k] = v
			}
		}
	}
	apply(m["groupLabels"])
	apply(m["commonLabels"])
	for _, a := range m["alerts"].([]any) {
		apply(a.(map[string]any)["labels"])
	}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}

// TestNonDefaultConfig runs sred with a non-default incidents section on
// both backends: a custom severity_map (which replaces the default one), the
// service taken from the job label when there is no service label, and
// auto_resolve: false keeping an incident open when its alerts resolve.
func TestNonDefaultConfig(t *testing.T) {
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "sred.yml")
			require.NoError(t, os.WriteFile(cfg, []byte(`incidents:
  service_labels: [service, job]
  severity_map:
    sev1: CRITICAL
    SEV3: low
  auto_resolve: false
`), 0o644))
			s := start(t, append([]string{"--config.file=" + cfg}, storageArgs(t, name)...)...)

			type want struct{ service, severity, status string }
			get := func(id string) want {
				code, body := s.do(t, http.MethodGet, "/api/v1/incidents/"+id, nil)
				require.Equal(t, http.StatusOK, code, body)
				var inc struct {
					Data struct{ Service, Severity, Status string } `json:"data"`
				}
				require.NoError(t, json.Unmarshal([]byte(body), &inc))
				return want{inc.Data.Service, inc.Data.Severity, inc.Data.Status}
			}
			post := func(body []byte) string {
				code, resp := s.do(t, http.MethodPost, "/api/v1/webhook/alertmanager", body)
				require.Equal(t, http.StatusOK, code, resp)
				var r struct {
					Data struct {
						Incidents []string `json:"incidents"`
					} `json:"data"`
				}
				require.NoError(t, json.Unmarshal([]byte(resp), &r), resp)
				require.Len(t, r.Data.Incidents, 1, resp)
				return r.Data.Incidents[0]
			}

			cases := []struct {
				name, group string
				set         map[string]string
				want        want
			}{
				{"custom severity value, service from job", "g1", map[string]string{"service": "", "job": "payments", "severity": "sev1"},
					want{"payments", "CRITICAL", "triggered"}},
				{"custom map keys are case-insensitive", "g2", map[string]string{"severity": "Sev3"}, want{"api", "LOW", "triggered"}},
				{"default keys are replaced by the custom map", "g3", map[string]string{"severity": "page"}, want{"api", "MEDIUM", "triggered"}},
				{"a severity name maps to itself", "g4", map[string]string{"severity": "high"}, want{"api", "HIGH", "triggered"}},
			}
			ids := map[string]string{}
			for _, c := range cases {
				id := post(relabel(t, "am-firing.json", c.group, c.set))
				ids[c.group] = id
				require.Equal(t, c.want, get(id), c.name)
			}

			// auto_resolve: false: the alerts resolve, the incident stays open.
			id := post(relabel(t, "am-resolved.json", "g1", cases[0].set))
			require.Equal(t, ids["g1"], id)
			require.Equal(t, want{"payments", "CRITICAL", "triggered"}, get(id))
			code, body := s.do(t, http.MethodGet, "/api/v1/incidents/"+id, nil)
			require.Equal(t, http.StatusOK, code)
			require.Equal(t, 2, strings.Count(body, `"status":"resolved"`), "both alerts resolved: %s", body)
			require.Contains(t, body, `"recovered_at"`)
			code, body = s.do(t, http.MethodGet, "/api/v1/incidents/"+id+"/timeline", nil)
			require.Equal(t, http.StatusOK, code)
			require.Contains(t, body, "2 alerts resolved")
			require.NotContains(t, body, "resolved automatically")
			// A person resolves it.
			code, body = s.do(t, http.MethodPost, "/api/v1/incidents/"+id+"/resolve", []byte(`{"actor":"alice"}`))
			require.Equal(t, http.StatusOK, code, body)
			require.Equal(t, "resolved", get(id).status)
		})
	}
}
