package app

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
)

// TestFlappingAlertDamped replays a flapping alert through the real
// webhook on both backends: one alert group fires and resolves four times
// within the flap window. It stays one incident, flagged flapping; with
// incidents.flap_threshold 1 no re-opening restarts the escalation before
// the flap window is over (each resolves first), so responders are paged
// once.
func TestFlappingAlertDamped(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			sink := &pageSink{pages: map[string]int{}}
			hooks := httptest.NewServer(sink)
			defer hooks.Close()
			cfg := strings.Replace(fmt.Sprintf(stormConfig, hooks.URL), "services:", "incidents:\n  flap_window: 1h\n  flap_threshold: 1\nservices:", 1)
			a, srv := runApp(t, backend, cfg, nil)
			base := time.Now().Add(-time.Hour)
			var ids []string
			for i := range 4 {
				g := amGroup{alertname: "DiskIOSaturated", service: "storage", starts: base.Add(time.Duration(i) * 10 * time.Minute)}
				ids = append(ids, deliver(t, srv.URL, g.payload("firing", time.Time{})).Incidents...)
				// Whatever a firing pages is sent before the resolve comes.
				waitFor(t, func() bool { return sink.count("alice") >= 1 && pagesSettled(t, a) }, "the first firing did not page")
				ids = append(ids, deliver(t, srv.URL, g.payload("resolved", g.starts.Add(2*time.Minute))).Incidents...)
			}
			require.Len(t, ids, 8)
			for _, id := range ids {
				require.Equal(t, ids[0], id, "one incident for the flapping alert")
			}
			require.Len(t, listIncidents(t, srv.URL), 1)
			inc := getIncident(t, srv.URL, ids[0])
			require.True(t, inc.Flapping)
			require.Equal(t, incident.StatusResolved, inc.Status)
			require.Len(t, inc.Alerts, 4)
			var damped int
			for _, m := range timelineOf(t, srv.URL, ids[0], "status") {
				if strings.Contains(m, "damped, escalation held back 1h") {
					damped++
				}
			}
			require.Equal(t, 3, damped, "every re-opening was damped")
			waitFor(t, func() bool { return pagesSettled(t, a) }, "pages still due")
			require.Equal(t, 1, sink.count("alice"), "the flapping alert paged once")

			mfs, _ := scrape(t, srv.URL)
			v, ok := metricValue(mfs, "sre_incident_transitions_total", map[string]string{"kind": "flapping"})
			require.True(t, ok)
			require.Equal(t, 3.0, v)
		})
	}
}
