package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// amGroup is one Alertmanager group notification (webhook payload v4) of
// one alert, as Alertmanager sends it when its route groups by alertname
// and service.
type amGroup struct {
	alertname, service string
	labels             map[string]string // more labels of the alert (and the group's common labels)
	starts             time.Time
}

func (g amGroup) groupKey() string {
	return fmt.Sprintf(`{}:{alertname=%q, service=%q}`, g.alertname, g.service)
}

func (g amGroup) payload(status string, ends time.Time) string {
	labels := map[string]string{"alertname": g.alertname, "service": g.service, "severity": "critical"}
	for k, v := range g.labels {
		labels[k] = v
	}
	sum := sha256.Sum256([]byte(g.groupKey()))
	alert := map[string]any{
		"status": status, "labels": labels, "annotations": map[string]string{"summary": g.alertname + " on " + g.service},
		"startsAt": g.starts.UTC().Format(time.RFC3339Nano), "endsAt": "0001-01-01T00:00:00Z",
		"fingerprint": hex.EncodeToString(sum[:8]),
	}
	if status == "resolved" {
		alert["endsAt"] = ends.UTC().Format(time.RFC3339Nano)
	}
	b, _ := json.Marshal(map[string]any{
		"version": "4", "groupKey": g.groupKey(), "status": status, "receiver": "sred",
		"groupLabels":  map[string]string{"alertname": g.alertname, "service": g.service},
		"commonLabels": labels, "alerts": []any{alert},
	})
	return string(b)
}

// deliver posts a notification to sred's real webhook and returns what it did.
func deliver(t *testing.T, url, body string) incident.IngestResult {
	t.Helper()
	resp, err := http.Post(url+"/api/v1/webhook/alertmanager", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	var env struct {
		Data incident.IngestResult `json:"data"`
	}
	require.NoError(t, json.Unmarshal(b, &env), "%s", b)
	return env.Data
}

func getIncident(t *testing.T, url, id string) incident.Incident {
	t.Helper()
	var inc incident.Incident
	code, env := getJSON(t, url+"/api/v1/incidents/"+id, nil, &inc)
	require.Equal(t, http.StatusOK, code, env.Error)
	return inc
}

func timelineOf(t *testing.T, url, id, kind string) []string {
	t.Helper()
	var tl []incident.TimelineEntry
	code, env := getJSON(t, url+"/api/v1/incidents/"+id+"/timeline", nil, &tl)
	require.Equal(t, http.StatusOK, code, env.Error)
	var out []string
	for _, e := range tl {
		if e.Kind == kind {
			out = append(out, e.Message)
		}
	}
	return out
}

func listIncidents(t *testing.T, url string) []incident.Incident {
	t.Helper()
	var page incident.Page
	code, env := getJSON(t, url+"/api/v1/incidents?limit=1000", nil, &page)
	require.Equal(t, http.StatusOK, code, env.Error)
	return page.Incidents
}

// pagesSettled reports whether the escalation and notification queues
// have no work due: every page that was to be sent by now has been.
func pagesSettled(t *testing.T, a *App) bool {
	var n int
	require.NoError(t, a.DB.QueryRowContext(context.Background(),
		`SELECT COUNT(*) FROM jobs WHERE state IN ('pending', 'running') AND run_at <= $1`, time.Now().UnixMilli()).Scan(&n))
	return n == 0
}

const stormConfig = `
services:
  db: {description: the orders database}
  cache: {}
  api: {depends_on: [db]}
  checkout: {depends_on: [api, db]}
  search: {depends_on: [db]}
  web: {depends_on: [cache]}
correlation:
  window: 30m
  label_rules:
    - {name: same-cluster, labels: [cluster]}
escalation:
  policies:
    - name: everything
      levels:
        - {after: 0m, users: [alice], channels: [webhook]}
        - {after: 1h, users: [bob], channels: [webhook]}
oncall:
  users:
    - {name: alice, email: alice@example.com}
    - {name: bob, email: bob@example.com}
notifications:
  min_backoff: 1s
  webhook: {url: %s, secret: s3cret}
`

// TestCorrelationStormDatabaseOutage replays the alert storm of a database
// outage through the real webhook, on both backends: the API's alerts
// arrive first, then the database's, then those of two more dependants,
// and Alertmanager redelivers every group. Responders get one incident and
// one page; the incident names the database as the likely root, lists the
// four services, and its timeline says why each group joined.
func TestCorrelationStormDatabaseOutage(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			sink := &pageSink{pages: map[string]int{}}
			hooks := httptest.NewServer(sink)
			defer hooks.Close()
			a, srv := runApp(t, backend, fmt.Sprintf(stormConfig, hooks.URL), nil)
			start := time.Now().Add(-2 * time.Minute)
			storm := []amGroup{
				{alertname: "HighErrorRate", service: "api", starts: start},
				{alertname: "PostgresDown", service: "db", starts: start.Add(10 * time.Second)},
				{alertname: "CheckoutFailing", service: "checkout", starts: start.Add(20 * time.Second)},
				{alertname: "SearchLatency", service: "search", starts: start.Add(30 * time.Second)},
			}
			first := deliver(t, srv.URL, storm[0].payload("firing", time.Time{}))
			require.Len(t, first.Created, 1)
			id := first.Created[0]
			for _, g := range storm[1:] {
				res := deliver(t, srv.URL, g.payload("firing", time.Time{}))
				require.Empty(t, res.Created, "%s opened an incident of its own", g.service)
				require.Equal(t, []string{id}, res.Incidents, "%s", g.service)
			}
			// Alertmanager redelivers every group (repeat_interval, or a
			// retry after a lost answer): nothing changes.
			for _, g := range storm {
				res := deliver(t, srv.URL, g.payload("firing", time.Time{}))
				require.True(t, res.Duplicate, "%s redelivered", g.service)
				require.Equal(t, []string{id}, res.Incidents)
			}

			incs := listIncidents(t, srv.URL)
			require.Len(t, incs, 1, "one incident for the whole outage")
			var graph struct {
				Services map[string]struct {
					DependsOn   []string `json:"depends_on"`
					Description string   `json:"description"`
				} `json:"services"`
			}
			code, env := getJSON(t, srv.URL+"/api/v1/services", nil, &graph)
			require.Equal(t, http.StatusOK, code, env.Error)
			require.Equal(t, []string{"api", "db"}, graph.Services["checkout"].DependsOn)
			require.Equal(t, "the orders database", graph.Services["db"].Description)
			// The console's graph page highlights the root.
			code, page := getPage(t, srv.URL+"/graph")
			require.Equal(t, http.StatusOK, code, page)
			require.Contains(t, page, `<li id="svc-db" class="node failing root">`)
			require.Contains(t, page, `<li id="svc-api" class="node failing">`)
			inc := getIncident(t, srv.URL, id)
			require.Equal(t, "db", inc.RootService)
			require.Equal(t, []string{"api", "checkout", "db", "search"}, inc.Services)
			require.Len(t, inc.Alerts, 4)
			require.Len(t, inc.Links, 4)
			require.Equal(t, "opened", inc.Links[0].Reason)

			msgs := timelineOf(t, srv.URL, id, "correlation")
			require.Equal(t, []string{
				"attached because api, affected by " + id + ", depends on db",
				"likely root: db (the deepest failing dependency of api, db)",
				"attached because checkout depends on db, which has " + id,
				"attached because search depends on db, which has " + id,
			}, msgs)

			// One page: level 0 of the policy, once.
			waitFor(t, func() bool { return sink.count("alice") >= 1 && pagesSettled(t, a) }, "the page was not sent")
			require.Equal(t, 1, sink.count("alice"), "one page for the outage")

			// The database recovers, then its dependants: the incident
			// resolves when the last group resolved.
			for i, g := range storm {
				res := deliver(t, srv.URL, g.payload("resolved", time.Now()))
				require.Equal(t, []string{id}, res.Incidents)
				inc := getIncident(t, srv.URL, id)
				if i < len(storm)-1 {
					require.True(t, inc.Status.Open(), "resolved while %s still fires", storm[len(storm)-1].service)
				} else {
					require.Equal(t, incident.StatusResolved, inc.Status)
				}
			}
		})
	}
}

// TestCorrelationLongOutage replays a database outage longer than the
// correlation window, on both backends, with the incident service on a
// manual clock: the database's group keeps firing while the clock moves 40
// minutes, then a dependant alerts, then, 40 minutes later again, another
// group of that dependant. Both join the database's open incident (its
// groups still fire, however long ago they joined), with their reasons.
// A group that resolved before the window does not attract one: the cache
// resolved 40 minutes ago on an incident a label rule keeps open, and the
// web front that depends on it opens an incident of its own.
func TestCorrelationLongOutage(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			sink := &pageSink{pages: map[string]int{}}
			hooks := httptest.NewServer(sink)
			defer hooks.Close()
			clk := clock.NewManual(time.Now())
			_, srv := runApp(t, backend, fmt.Sprintf(stormConfig, hooks.URL), func(a *App) { a.Incidents.Clock = clk })
			start := clk.Now().Add(-time.Minute)

			dbDown := amGroup{alertname: "PostgresDown", service: "db", starts: start}
			first := deliver(t, srv.URL, dbDown.payload("firing", time.Time{}))
			require.Len(t, first.Created, 1)
			id := first.Created[0]

			// 40 minutes in, past the 30m window: the database still fires.
			clk.Advance(40 * time.Minute)
			search := amGroup{alertname: "SearchLatency", service: "search", starts: clk.Now()}
			res := deliver(t, srv.URL, search.payload("firing", time.Time{}))
			require.Empty(t, res.Created, "search opened a second incident while the database's still fires")
			require.Equal(t, []string{id}, res.Incidents)

			// 40 more minutes: search's group is older than the window too,
			// and still fires; another group of search joins.
			clk.Advance(40 * time.Minute)
			searchErrors := amGroup{alertname: "SearchErrors", service: "search", starts: clk.Now()}
			res = deliver(t, srv.URL, searchErrors.payload("firing", time.Time{}))
			require.Empty(t, res.Created, "a second group of search opened an incident")
			require.Equal(t, []string{id}, res.Incidents)

			inc := getIncident(t, srv.URL, id)
			require.Equal(t, "db", inc.RootService)
			require.Equal(t, []string{"db", "search"}, inc.Services)
			require.Len(t, inc.Links, 3)
			require.Equal(t, []string{"opened", "dependency", "dependency"},
				[]string{inc.Links[0].Reason, inc.Links[1].Reason, inc.Links[2].Reason})
			for _, l := range inc.Links {
				require.True(t, l.Firing, "%s", l.GroupKey)
			}
			require.Equal(t, []string{
				"attached because search depends on db, which has " + id,
				"attached because search depends on db, which has " + id,
			}, timelineOf(t, srv.URL, id, "correlation"))

			// The database recovers: its link stops firing; the incident
			// stays open while search fires.
			res = deliver(t, srv.URL, dbDown.payload("resolved", clk.Now()))
			require.Equal(t, []string{id}, res.Incidents)
			inc = getIncident(t, srv.URL, id)
			require.True(t, inc.Status.Open())
			require.False(t, inc.Links[0].Firing, "the database's group resolved")
			require.True(t, inc.Links[1].Firing)

			// A group that resolved before the window attracts nothing. The
			// cache's incident is kept open by a group outside the graph
			// that joined it by the shared-cluster rule.
			us := map[string]string{"cluster": "us-1"}
			cache := amGroup{alertname: "RedisDown", service: "cache", labels: us, starts: clk.Now()}
			batch := amGroup{alertname: "QueueBacklog", service: "billing-batch", labels: us, starts: clk.Now()}
			res = deliver(t, srv.URL, cache.payload("firing", time.Time{}))
			require.Len(t, res.Created, 1)
			cacheID := res.Created[0]
			clk.Advance(time.Minute)
			res = deliver(t, srv.URL, batch.payload("firing", time.Time{}))
			require.Equal(t, []string{cacheID}, res.Incidents)
			clk.Advance(time.Minute)
			deliver(t, srv.URL, cache.payload("resolved", clk.Now()))
			require.True(t, getIncident(t, srv.URL, cacheID).Status.Open(), "billing-batch still fires")
			clk.Advance(40 * time.Minute)
			web := amGroup{alertname: "HighLatency", service: "web", starts: clk.Now()}
			res = deliver(t, srv.URL, web.payload("firing", time.Time{}))
			require.Len(t, res.Created, 1, "web joined an incident whose cache group resolved 40 minutes ago")
			require.NotEqual(t, cacheID, res.Created[0])
			require.NotEqual(t, id, res.Created[0])
			require.Equal(t, []string{"cache", "billing-batch"}, func() []string {
				var out []string
				for _, l := range getIncident(t, srv.URL, cacheID).Links {
					out = append(out, l.Service)
				}
				return out
			}())
			require.Len(t, listIncidents(t, srv.URL), 3)
		})
	}
}

// TestAlertOfTwoGroupsListedOnce: Alertmanager's group_by changed while an
// alert fired, so the same alert (fingerprint and start) arrives in a new
// group, which joins the incident by its service. The incident lists the
// alert once, over the API and in the console, naming both groups, as the
// group that delivered it last says (resolved); both groups stay linked and
// the timeline keeps what each delivered. On both backends.
func TestAlertOfTwoGroupsListedOnce(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			clk := clock.NewManual(time.Now())
			_, srv := runApp(t, backend, "services:\n  api: {}\ncorrelation:\n  window: 30m\n", func(a *App) { a.Incidents.Clock = clk })
			starts := clk.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)
			payload := func(groupKey, status string) string {
				ends := "0001-01-01T00:00:00Z"
				if status == "resolved" {
					ends = clk.Now().UTC().Format(time.RFC3339Nano)
				}
				return fmt.Sprintf(`{"version":"4","groupKey":%q,"status":%q,"receiver":"sred",
					"commonLabels":{"alertname":"HighErrorRate","service":"api","severity":"critical"},
					"alerts":[{"status":%q,"labels":{"alertname":"HighErrorRate","service":"api","severity":"critical","instance":"api-0"},
					"annotations":{"summary":"api errors"},"startsAt":%q,"endsAt":%q,"fingerprint":"c0ffee0000000042"}]}`,
					groupKey, status, status, starts, ends)
			}
			before := `{}:{alertname="HighErrorRate"}`
			after := `{}:{alertname="HighErrorRate", service="api"}`
			res := deliver(t, srv.URL, payload(before, "firing"))
			require.Len(t, res.Created, 1)
			id := res.Created[0]
			clk.Advance(time.Minute)
			res = deliver(t, srv.URL, payload(after, "firing"))
			require.Empty(t, res.Created)
			require.Equal(t, []string{id}, res.Incidents)
			clk.Advance(time.Minute)
			deliver(t, srv.URL, payload(after, "resolved"))

			inc := getIncident(t, srv.URL, id)
			require.Len(t, inc.Alerts, 1, "one alert, delivered by two groups")
			a := inc.Alerts[0]
			require.Equal(t, "c0ffee0000000042", a.Fingerprint)
			require.Equal(t, "resolved", a.Status, "as the group that delivered it last says")
			require.Equal(t, []string{after, before}, a.GroupKeys)
			require.Len(t, inc.Links, 2)
			require.Len(t, timelineOf(t, srv.URL, id, "alert_fired"), 2, "each group's delivery stays in the timeline")

			var page incident.Page
			code, env := getJSON(t, srv.URL+"/api/v1/incidents?alerts=true", nil, &page)
			require.Equal(t, http.StatusOK, code, env.Error)
			require.Len(t, page.Incidents, 1)
			require.Len(t, page.Incidents[0].Alerts, 1)

			code, html := getPage(t, srv.URL+"/incidents/"+id)
			require.Equal(t, http.StatusOK, code, html)
			require.Contains(t, html, "<h2>Alerts (1)</h2>")
			require.Equal(t, 1, strings.Count(html, `<code>instance="api-0"</code>`), html)
		})
	}
}

// TestResolveInNewGroupResolvesIncident: Alertmanager's group_by changed
// while an alert fired, so the alert (fingerprint and start) arrived again
// in a new group, which joined the incident by its service. Alertmanager
// sends the resolve in the new group only (the old group is gone from it):
// the resolve also resolves the old group's copy on the incident, so the
// incident resolves then, recovered when the alert ended, with both
// groups' links no longer firing. A resolve the old group would still
// deliver changes nothing. On both backends.
func TestResolveInNewGroupResolvesIncident(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			clk := clock.NewManual(time.Now())
			_, srv := runApp(t, backend, "services:\n  api: {}\ncorrelation:\n  window: 30m\n", func(a *App) { a.Incidents.Clock = clk })
			starts := clk.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)
			payload := func(groupKey, status, ends string) string {
				return fmt.Sprintf(`{"version":"4","groupKey":%q,"status":%q,"receiver":"sred",
					"commonLabels":{"alertname":"HighErrorRate","service":"api","severity":"critical"},
					"alerts":[{"status":%q,"labels":{"alertname":"HighErrorRate","service":"api","severity":"critical","instance":"api-0"},
					"annotations":{"summary":"api errors"},"startsAt":%q,"endsAt":%q,"fingerprint":"c0ffee0000000042"}]}`,
					groupKey, status, status, starts, ends)
			}
			const firing = "0001-01-01T00:00:00Z"
			before := `{}:{alertname="HighErrorRate"}`
			after := `{}:{alertname="HighErrorRate", service="api"}`
			res := deliver(t, srv.URL, payload(before, "firing", firing))
			require.Len(t, res.Created, 1)
			id := res.Created[0]
			clk.Advance(time.Minute)
			res = deliver(t, srv.URL, payload(after, "firing", firing))
			require.Equal(t, []string{id}, res.Incidents)
			linksFiring := func(inc incident.Incident) map[string]bool {
				out := map[string]bool{}
				for _, l := range inc.Links {
					out[l.GroupKey] = l.Firing
				}
				return out
			}
			require.Equal(t, map[string]bool{before: true, after: true}, linksFiring(getIncident(t, srv.URL, id)))

			clk.Advance(time.Minute)
			ended := clk.Now().Add(-10 * time.Second).UTC().Truncate(time.Millisecond)
			res = deliver(t, srv.URL, payload(after, "resolved", ended.Format(time.RFC3339Nano)))
			require.Equal(t, []string{id}, res.Incidents)
			inc := getIncident(t, srv.URL, id)
			require.Equal(t, incident.StatusResolved, inc.Status, "nothing fires: the old group's copy resolved with the new group's")
			require.NotNil(t, inc.RecoveredAt)
			require.True(t, ended.Equal(*inc.RecoveredAt), "recovered when the alert ended: %s", inc.RecoveredAt)
			require.Equal(t, map[string]bool{before: false, after: false}, linksFiring(inc))
			require.Len(t, inc.Alerts, 1)
			require.Equal(t, "resolved", inc.Alerts[0].Status)
			require.Len(t, timelineOf(t, srv.URL, id, "alert_resolved"), 1)
			require.Contains(t, timelineOf(t, srv.URL, id, "status"), "resolved automatically: all alerts resolved")

			// The old group's resolve, were it delivered, changes nothing.
			clk.Advance(time.Minute)
			res = deliver(t, srv.URL, payload(before, "resolved", ended.Format(time.RFC3339Nano)))
			require.True(t, res.Duplicate)
			require.Equal(t, incident.StatusResolved, getIncident(t, srv.URL, id).Status)
			require.Len(t, timelineOf(t, srv.URL, id, "alert_resolved"), 1)
		})
	}
}

// TestCorrelationStormUnrelatedOutages replays two unrelated outages at
// once, interleaved: the database and its API in cluster eu-1, the cache and
// its web front in us-1. They stay two incidents, each with its own root and
// its own page; a service outside the graph in eu-1 joins the database's
// incident by the shared-cluster rule.
func TestCorrelationStormUnrelatedOutages(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			sink := &pageSink{pages: map[string]int{}}
			hooks := httptest.NewServer(sink)
			defer hooks.Close()
			a, srv := runApp(t, backend, fmt.Sprintf(stormConfig, hooks.URL), nil)
			start := time.Now().Add(-2 * time.Minute)
			eu := map[string]string{"cluster": "eu-1"}
			us := map[string]string{"cluster": "us-1"}
			storm := []amGroup{
				{alertname: "PostgresDown", service: "db", labels: eu, starts: start},
				{alertname: "RedisDown", service: "cache", labels: us, starts: start},
				{alertname: "HighErrorRate", service: "api", labels: eu, starts: start.Add(time.Second)},
				{alertname: "HighLatency", service: "web", labels: us, starts: start.Add(time.Second)},
				{alertname: "QueueBacklog", service: "billing-batch", labels: eu, starts: start.Add(2 * time.Second)},
			}
			var ids []string
			for _, g := range storm {
				res := deliver(t, srv.URL, g.payload("firing", time.Time{}))
				ids = append(ids, res.Incidents...)
			}
			incs := listIncidents(t, srv.URL)
			require.Len(t, incs, 2, "two unrelated outages are not merged")
			dbID, cacheID := ids[0], ids[1]
			require.NotEqual(t, dbID, cacheID)
			require.Equal(t, []string{dbID, cacheID, dbID, cacheID, dbID}, ids)

			db := getIncident(t, srv.URL, dbID)
			require.Equal(t, "db", db.RootService)
			require.Equal(t, []string{"api", "billing-batch", "db"}, db.Services)
			cache := getIncident(t, srv.URL, cacheID)
			require.Equal(t, "cache", cache.RootService)
			require.Equal(t, []string{"cache", "web"}, cache.Services)
			require.Equal(t, []string{
				"attached because api depends on db, which has " + dbID,
				`attached because it shares cluster="eu-1" with ` + dbID + " (rule same-cluster)",
			}, timelineOf(t, srv.URL, dbID, "correlation"))
			require.Equal(t, []string{"attached because web depends on cache, which has " + cacheID},
				timelineOf(t, srv.URL, cacheID, "correlation"))

			waitFor(t, func() bool { return sink.count("alice") >= 2 && pagesSettled(t, a) }, "the pages were not sent")
			require.Equal(t, 2, sink.count("alice"), "one page per outage")
		})
	}
}

// TestCorrelationTwoReplicas runs two sred replicas on one PostgreSQL
// database. In each round, the database and three dependants fire at the
// same moment, their groups split between the replicas: every round gives
// one incident, rooted at the database.
func TestCorrelationTwoReplicas(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "sred.yml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(`
services:
  db: {}
  api: {depends_on: [db]}
  checkout: {depends_on: [api, db]}
  search: {depends_on: [db]}
correlation: {window: 30m}
`), 0o644))
	pg := tu.PostgresSchemaURL(t)
	var urls []string
	for range 2 {
		a, err := New(context.Background(), Options{ConfigFile: cfgFile, PostgresURL: pg})
		require.NoError(t, err)
		srv := httptest.NewServer(a.Handler())
		t.Cleanup(func() {
			srv.Close()
			a.Close()
		})
		urls = append(urls, srv.URL)
	}
	services := []string{"db", "api", "checkout", "search"}
	for round := range 8 {
		start := time.Now().Add(-time.Minute)
		var wg sync.WaitGroup
		gate := make(chan struct{})
		results := make([]incident.IngestResult, len(services))
		for i, svc := range services {
			g := amGroup{alertname: fmt.Sprintf("Outage%d", round), service: svc, starts: start}
			url := urls[(i+round)%2]
			wg.Go(func() {
				<-gate
				results[i] = deliver(t, url, g.payload("firing", time.Time{}))
			})
		}
		close(gate)
		wg.Wait()
		ids := map[string]bool{}
		created := 0
		for _, r := range results {
			for _, id := range r.Incidents {
				ids[id] = true
			}
			created += len(r.Created)
		}
		require.Len(t, ids, 1, "round %d: one incident, got %v: %+v", round, ids, results)
		require.Equal(t, 1, created, "round %d", round)
		var id string
		for k := range ids {
			id = k
		}
		inc := getIncident(t, urls[round%2], id)
		require.Equal(t, "db", inc.RootService, "round %d", round)
		want := append([]string(nil), services...)
		sort.Strings(want)
		require.Equal(t, want, inc.Services)
		// Resolved, so that the next round's groups do not join it.
		resp, err := http.Post(urls[0]+"/api/v1/incidents/"+id+"/resolve", "application/json", strings.NewReader(`{"actor":"alice"}`))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
}

// TestCorrelationConfigErrors: sred.yml's service graph is checked as sred
// and srectl check config load it; errors name the services.
func TestCorrelationConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ src, err string }{
		{"services:\n  api: {depends_on: [db]}\n", `services: api (sred.yml) depends on unknown service "db"`},
		{"services:\n  api: {depends_on: [db]}\n  db: {depends_on: [api]}\n", `services: dependency cycle: api -> db -> api`},
		{"correlation:\n  window: -1m\n", `not a valid duration`},
	} {
		f := filepath.Join(dir, "sred.yml")
		require.NoError(t, os.WriteFile(f, []byte(tc.src), 0o644))
		_, err := LoadConfig(f)
		require.ErrorContains(t, err, tc.err)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "graph.yml"), []byte("services:\n  db: {}\n  api: {depends_on: [db]}\n"), 0o644))
	f := filepath.Join(dir, "sred.yml")
	require.NoError(t, os.WriteFile(f, []byte("services:\n  web: {depends_on: [api]}\ncorrelation:\n  service_files: [graph.yml]\n"), 0o644))
	cfg, err := LoadConfig(f)
	require.NoError(t, err)
	require.Equal(t, []string{"api", "db", "web"}, ServiceGraph(cfg).Names())
}
