package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/status"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestStatusCommand: srectl status prints the components of the status
// page with their state and uptime, and the public updates.
func TestStatusCommand(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		now := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
		svc := newIncidentService(t, db, now)
		ctx := context.Background()
		inc, err := svc.Create(ctx, incident.ManualIncident{Title: "db down", Service: "checkout", Severity: incident.SeverityHigh, Actor: "alice"})
		require.NoError(t, err)
		_, err = svc.PostStatusUpdate(ctx, inc.ID, incident.StatusUpdate{Actor: "alice", Public: true, PublicMessage: "Some payments fail."})
		require.NoError(t, err)
		cfg := status.Config{Components: []status.Component{{Name: "Checkout", Services: []string{"checkout"}}, {Name: "Search", Services: []string{"search"}}}}
		require.NoError(t, cfg.Validate())
		// An hour later: one hour of partial outage in 89 days and 13 hours.
		page := status.New(cfg, status.Options{Incidents: svc, Clock: clock.NewManual(now.Add(time.Hour))})
		mux := http.NewServeMux()
		status.NewHandler(page, nil).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()

		var stdout, stderr bytes.Buffer
		code := Main([]string{"status", "--sred.url=" + srv.URL}, &stdout, &stderr)
		require.Equal(t, 0, code, stderr.String())
		require.Equal(t, "Service status: Partial outage\n\n"+
			"COMPONENT  STATUS          UPTIME (90d)\n"+
			"Checkout   Partial outage  99.953%\n"+
			"Search     Operational     100.000%\n\n"+
			"Partial outage of Checkout (investigating, since 2026-05-04 12:00 UTC)\n"+
			"  2026-05-04 12:00  Some payments fail.\n", stdout.String())

		stdout.Reset()
		code = Main([]string{"status", "--sred.url=" + srv.URL, "-o", "json"}, &stdout, &stderr)
		require.Equal(t, 0, code, stderr.String())
		var p status.Page
		require.NoError(t, json.Unmarshal(stdout.Bytes(), &p))
		require.Equal(t, status.PartialOutage, p.Status)
		require.Len(t, p.Components[0].Uptime, 90)

		// sred first started an hour before the incident: the uptime is
		// over the day with data, not 90 days.
		fresh := status.New(cfg, status.Options{Incidents: svc, Clock: clock.NewManual(now.Add(time.Hour)), FirstStart: now.Add(-time.Hour)})
		mux = http.NewServeMux()
		status.NewHandler(fresh, nil).Register(mux)
		srv2 := httptest.NewServer(mux)
		defer srv2.Close()
		stdout.Reset()
		code = Main([]string{"status", "--sred.url=" + srv2.URL}, &stdout, &stderr)
		require.Equal(t, 0, code, stderr.String())
		require.Contains(t, stdout.String(), "COMPONENT  STATUS          UPTIME (90d)\n"+
			"Checkout   Partial outage  50.000% (1 day with data)\n"+
			"Search     Operational     100.000% (1 day with data)\n")

		// At the instant of the first start no day has data: no uptime,
		// in the table and in JSON.
		none := status.New(cfg, status.Options{Incidents: svc, Clock: clock.NewManual(now.Add(time.Hour)), FirstStart: now.Add(time.Hour)})
		mux = http.NewServeMux()
		status.NewHandler(none, nil).Register(mux)
		srv3 := httptest.NewServer(mux)
		defer srv3.Close()
		stdout.Reset()
		code = Main([]string{"status", "--sred.url=" + srv3.URL}, &stdout, &stderr)
		require.Equal(t, 0, code, stderr.String())
		require.Contains(t, stdout.String(), "Search     Operational     no data\n")
		stdout.Reset()
		code = Main([]string{"status", "--sred.url=" + srv3.URL, "-o", "json"}, &stdout, &stderr)
		require.Equal(t, 0, code, stderr.String())
		var raw struct {
			Components []map[string]json.RawMessage `json:"components"`
		}
		require.NoError(t, json.Unmarshal(stdout.Bytes(), &raw))
		require.Equal(t, "null", string(raw.Components[1]["uptime_ratio"]))
	})
}
