package ui_test

import (
	"html"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/oncall"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/ui"
)

// TestOnCallPageZone: the on-call page shows a schedule's shifts in the
// schedule's zone, named, as `srectl oncall` does: a Europe/Berlin handoff
// at 09:00 reads "09:00 +01:00 CET" before the clocks go forward and
// "09:00 +02:00 CEST" after. Before, every shift was shown in UTC
// ("08:00:00 UTC", then "07:00:00 UTC").
func TestOnCallPageZone(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations, oncall.Migrations}, func(t *testing.T, db *store.DB) {
		cfg := &oncall.Config{
			Users: []*oncall.User{{Name: "alice"}, {Name: "bob"}},
			Schedules: []*oncall.Schedule{{Name: "berlin", TimeZone: "Europe/Berlin", Layers: []*oncall.Layer{
				{Name: "daily", Rotation: oncall.RotationDaily, Start: "2026-03-01T09:00", Users: []string{"alice", "bob"}},
			}}},
		}
		require.NoError(t, cfg.Validate())
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, nil)
		require.NoError(t, err)
		now := time.Date(2026, 3, 27, 10, 0, 0, 0, time.UTC)
		mux := http.NewServeMux()
		ui.New(ui.Sources{Incidents: svc, OnCall: oncall.NewDirectory(db, cfg)},
			ui.Options{AllowAnonymous: true, Clock: clock.NewManual(now)}).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()

		code, body := get(t, srv.URL+"/oncall")
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, "Times in Europe/Berlin.")
		for _, want := range []string{
			"2026-03-27 11:00 +01:00 CET",  // now
			"2026-03-28 09:00 +01:00 CET",  // handoff before the change
			"2026-03-29 09:00 +02:00 CEST", // handoff after it
			"2026-04-03 12:00 +02:00 CEST", // now + 7 days
		} {
			require.Contains(t, html.UnescapeString(body), "<td>"+want+"</td>")
		}
		require.NotContains(t, body, "UTC</td>")
	})
}

// TestOnCallPageSimulationZone: the "Who gets paged" dry run shows its
// times as the shift tables do, in the zone of the schedule each step pages
// (else the policy's first schedule's, else UTC), and names the zones above
// the table. Before, every step read "2026-03-27 10:00:00 UTC".
func TestOnCallPageSimulationZone(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations, jobs.Migrations, oncall.Migrations, notify.Migrations, escalation.Migrations}, func(t *testing.T, db *store.DB) {
		daily := func(user string) []*oncall.Layer {
			return []*oncall.Layer{{Name: "daily", Rotation: oncall.RotationDaily, Start: "2026-03-01T09:00", Users: []string{user}}}
		}
		oc := &oncall.Config{
			Users: []*oncall.User{{Name: "alice"}, {Name: "bob"}, {Name: "carol"}},
			Schedules: []*oncall.Schedule{
				{Name: "ny", TimeZone: "America/New_York", Layers: daily("alice")},
				{Name: "berlin", TimeZone: "Europe/Berlin", Layers: daily("bob")},
			},
		}
		require.NoError(t, oc.Validate())
		ec := &escalation.Config{Policies: []*escalation.Policy{
			{Name: "zoned", Matchers: []string{`service="api"`}, Levels: []*escalation.Level{
				{Schedules: []string{"ny"}},
				{After: model.Duration(10 * time.Minute), Users: []string{"carol"}},
				{After: model.Duration(20 * time.Minute), Schedules: []string{"berlin"}},
			}},
			{Name: "people", Levels: []*escalation.Level{{Users: []string{"carol"}}}},
		}}
		require.NoError(t, ec.Validate())
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, nil)
		require.NoError(t, err)
		now := time.Date(2026, 3, 27, 10, 0, 0, 0, time.UTC)
		dir := oncall.NewDirectory(db, oc)
		engine := escalation.NewEngine(db, ec, dir, nil, "", escalation.Options{Clock: clock.NewManual(now), Registerer: prometheus.NewRegistry()})
		mux := http.NewServeMux()
		ui.New(ui.Sources{Incidents: svc, OnCall: dir, Escalation: engine},
			ui.Options{AllowAnonymous: true, Clock: clock.NewManual(now)}).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()

		code, body := get(t, srv.URL+"/oncall?service=api&severity=critical")
		require.Equal(t, http.StatusOK, code, body)
		body = html.UnescapeString(body)
		require.Contains(t, body, "Times in America/New_York, Europe/Berlin.")
		for _, want := range []string{
			"2026-03-27 06:00 -04:00 EDT", // level 0 pages ny
			"2026-03-27 06:10 -04:00 EDT", // level 1 pages a user: the policy's first schedule's zone
			"2026-03-27 11:20 +01:00 CET", // level 2 pages berlin
		} {
			require.Contains(t, body, "<td>"+want+"</td>")
		}
		require.NotContains(t, body, ":00 UTC</td>")

		code, body = get(t, srv.URL+"/oncall?service=web&severity=critical")
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, "Times in UTC.")
		require.Contains(t, html.UnescapeString(body), "<td>2026-03-27 10:00 +00:00 UTC</td>")
	})
}
