package ui_test

import (
	"html"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
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
