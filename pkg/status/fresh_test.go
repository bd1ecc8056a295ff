package status_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/status"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestFreshStoreHasNoData: on a store sred first started on three hours
// ago, with no incident and no SLI data, the 89 days before today have no
// data (source "none", uptime null in JSON, grey bars in HTML) and are left
// out of the uptime, which is today's so far; a restart keeps the time of
// the first start. Before, the page showed 90 days of 100% uptime. On SQLite
// and PostgreSQL.
func TestFreshStoreHasNoData(t *testing.T) {
	ctx := context.Background()
	atFirstStart(t, func(t *testing.T, db *store.DB, clk *clock.Manual, stored status.Stored, inc *incident.Service) {
		require.Equal(t, firstStart, stored.FirstStart)
		clk.Advance(3 * time.Hour)
		restart, err := status.Load(ctx, db, clk.Now())
		require.NoError(t, err)
		require.Equal(t, firstStart, restart.FirstStart, "a restart keeps the first start")

		cfg := status.Config{Components: []status.Component{{Name: "Shop", Services: []string{"payments"}}}}
		require.NoError(t, cfg.Validate())
		svc := status.New(cfg, status.Options{Incidents: inc, Clock: clk, Key: restart.Key, FirstStart: restart.FirstStart})
		page, err := svc.Page(ctx)
		require.NoError(t, err)
		shop := page.Components[0]
		require.Len(t, shop.Uptime, status.DefaultUptimeDays)
		for i, d := range shop.Uptime {
			if i == len(shop.Uptime)-1 {
				require.Equal(t, "2026-12-05", d.Date)
				require.Equal(t, status.SourceIncidents, d.Source, "today, since the first start")
				require.Equal(t, 1.0, d.Uptime)
				continue
			}
			require.Equal(t, status.SourceNone, d.Source, "%s is before the first start", d.Date)
		}
		require.Equal(t, 1, shop.DataDays())
		require.Equal(t, 1.0, shop.UptimeRatio)

		get := pageGetter(t, svc)
		var js struct {
			Components []struct {
				UptimeRatio float64 `json:"uptime_ratio"`
				Uptime      []struct {
					Date   string   `json:"date"`
					Uptime *float64 `json:"uptime"`
					Source string   `json:"source"`
				} `json:"uptime"`
			} `json:"components"`
		}
		body := get("/status.json")
		require.Contains(t, body, `{"date":"2026-09-07","uptime":null,"source":"none","incidents":0,"worst":"operational"}`)
		require.NoError(t, json.Unmarshal([]byte(body), &js))
		days := js.Components[0].Uptime
		require.Len(t, days, status.DefaultUptimeDays)
		require.Equal(t, "none", days[0].Source)
		require.Nil(t, days[0].Uptime, "no data is no figure, not 100%")
		require.Equal(t, "incidents", days[len(days)-1].Source)
		require.Equal(t, 1.0, *days[len(days)-1].Uptime)

		html := get("/status")
		require.Equal(t, status.DefaultUptimeDays-1, strings.Count(html, `<span class="bar none" data-source="none"`), "grey bars")
		require.Contains(t, html, `title="2026-11-30: no data"`)
		require.Contains(t, html, "100.00% uptime over the 1 day with data")
		require.NotContains(t, html, "uptime over 90 days")
		require.Contains(t, get("/status/status.css"), ".bar.none{")
	})
}

// TestOneUptimeDay: a page of uptime_days 1 reads "1 day ago" and "uptime
// over 1 day" (before, "1 days"). On SQLite and PostgreSQL.
func TestOneUptimeDay(t *testing.T) {
	atFirstStart(t, func(t *testing.T, _ *store.DB, clk *clock.Manual, stored status.Stored, inc *incident.Service) {
		cfg := status.Config{Components: []status.Component{{Name: "Shop", Services: []string{"payments"}}}, UptimeDays: 1}
		require.NoError(t, cfg.Validate())
		clk.Advance(3 * time.Hour)
		svc := status.New(cfg, status.Options{Incidents: inc, Clock: clk, Key: stored.Key, FirstStart: stored.FirstStart})
		html := pageGetter(t, svc)("/status")
		require.Contains(t, html, `aria-label="Shop: 100.00% uptime over 1 day"`)
		require.Contains(t, html, `<p class="uptime">1 day ago · 100.00% uptime · today</p>`)
	})
}

// TestNoDataHasNoUptimeRatio: at the instant of sred's first start every
// bar of a component has no data, and so has its uptime: uptime_ratio is
// null in JSON (before, 1: 100% measured over nothing) and the page says
// "no data yet". On SQLite and PostgreSQL.
func TestNoDataHasNoUptimeRatio(t *testing.T) {
	ctx := context.Background()
	atFirstStart(t, func(t *testing.T, _ *store.DB, clk *clock.Manual, stored status.Stored, inc *incident.Service) {
		cfg := status.Config{Components: []status.Component{{Name: "Shop", Services: []string{"payments"}}}, UptimeDays: 3}
		require.NoError(t, cfg.Validate())
		svc := status.New(cfg, status.Options{Incidents: inc, Clock: clk, Key: stored.Key, FirstStart: stored.FirstStart})
		page, err := svc.Page(ctx)
		require.NoError(t, err)
		shop := page.Components[0]
		require.Equal(t, 0, shop.DataDays())
		require.Zero(t, shop.UptimeRatio)

		get := pageGetter(t, svc)
		var js struct {
			Components []map[string]json.RawMessage `json:"components"`
		}
		require.NoError(t, json.Unmarshal([]byte(get("/status.json")), &js))
		require.Len(t, js.Components, 1)
		ratio, ok := js.Components[0]["uptime_ratio"]
		require.True(t, ok, "uptime_ratio is in the JSON")
		require.Equal(t, "null", string(ratio), "no data is no figure, not 100%")
		require.Contains(t, string(js.Components[0]["uptime"]), `{"date":"2026-12-05","uptime":null,"source":"none"`)

		html := get("/status")
		require.Equal(t, 2, strings.Count(html, "no data yet"), "the bars' label and the uptime line")
		require.NotContains(t, html, "% uptime")
	})
}

// TestFirstStartOfAnOlderStore: a store whose page key was stored before
// the time of the first start was kept takes its first migration's time.
func TestFirstStartOfAnOlderStore(t *testing.T) {
	ctx := context.Background()
	testutil.Backends(t, [][]store.Migration{status.Migrations[:1]}, func(t *testing.T, db *store.DB) {
		_, err := db.ExecContext(ctx, `INSERT INTO status_key (id, key) VALUES (1, '00112233445566778899aabbccddeeff')`)
		require.NoError(t, err)
		var migrated string
		require.NoError(t, db.QueryRowContext(ctx, `SELECT MIN(applied_at) FROM schema_migrations`).Scan(&migrated))
		want, err := time.Parse(time.RFC3339Nano, migrated)
		require.NoError(t, err)
		require.NoError(t, db.Migrate(ctx, status.Migrations))
		stored, err := status.Load(ctx, db, want.Add(24*time.Hour))
		require.NoError(t, err)
		require.Equal(t, want.UTC(), stored.FirstStart)
		require.Equal(t, "00112233445566778899aabbccddeeff", hex.EncodeToString(stored.Key), "the key is kept")
	})
}

// TestAlertFiringBeforeFirstStart: an alert firing since the day before
// sred's first start opens an incident detected then: that day has data
// (the outage from 03:00), the days before it none. An incident opened
// after the first start does not move it: Search's day counts from 15:00.
func TestAlertFiringBeforeFirstStart(t *testing.T) {
	ctx := context.Background()
	atFirstStart(t, func(t *testing.T, _ *store.DB, clk *clock.Manual, stored status.Stored, inc *incident.Service) {
		labels := map[string]string{"alertname": "Down", "service": "payments", "severity": "critical"}
		_, err := inc.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "firing", GroupKey: "{}:{alertname=\"Down\"}",
			GroupLabels: map[string]string{"alertname": "Down"}, CommonLabels: labels,
			Alerts: []incident.NotifiedAlert{{Status: "firing", Labels: labels, StartsAt: firstStart.Add(-36 * time.Hour), Fingerprint: "f1"}}})
		require.NoError(t, err)
		clk.Advance(time.Hour)
		search, err := inc.Create(ctx, incident.ManualIncident{Title: "Search down", Service: "search", Severity: incident.SeverityHigh, Actor: "rita"})
		require.NoError(t, err)
		clk.Advance(time.Hour)
		_, err = inc.Resolve(ctx, search.ID, "rita", "fixed")
		require.NoError(t, err)
		clk.Advance(time.Hour)

		cfg := status.Config{Components: []status.Component{{Name: "Shop", Services: []string{"payments"}}, {Name: "Search", Services: []string{"search"}}}, UptimeDays: 3}
		require.NoError(t, cfg.Validate())
		page, err := status.New(cfg, status.Options{Incidents: inc, Clock: clk, Key: stored.Key, FirstStart: stored.FirstStart}).Page(ctx)
		require.NoError(t, err)
		days := page.Components[0].Uptime
		require.Len(t, days, 3)
		require.Equal(t, status.Day{Date: "2026-12-03", Source: status.SourceNone, Worst: status.Operational}, days[0])
		require.Equal(t, status.Day{Date: "2026-12-04", Uptime: 3.0 / 24, Source: status.SourceIncidents, Incidents: 1, Worst: status.MajorOutage}, days[1])
		require.Equal(t, status.Day{Date: "2026-12-05", Uptime: 0, Source: status.SourceIncidents, Incidents: 1, Worst: status.MajorOutage}, days[2])
		require.InDelta(t, 3.0/42, page.Components[0].UptimeRatio, 1e-9, "3 hours up of 42")
		days = page.Components[1].Uptime
		require.Equal(t, status.SourceNone, days[1].Source)
		require.Equal(t, status.SourceIncidents, days[2].Source)
		require.InDelta(t, 2.0/3, days[2].Uptime, 1e-9, "down an hour of the three since the first start")
		require.InDelta(t, 2.0/3, page.Components[1].UptimeRatio, 1e-9)
	})
}

// firstStart is the time sred first started on the stores of these tests.
var firstStart = time.Date(2026, 12, 5, 15, 0, 0, 0, time.UTC)

// atFirstStart runs fn on SQLite and PostgreSQL at the instant sred first
// starts on a new store: a clock at firstStart, what status.Load stored
// then, and an incident service telling the time by that clock.
func atFirstStart(t *testing.T, fn func(t *testing.T, db *store.DB, clk *clock.Manual, stored status.Stored, inc *incident.Service)) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations, status.Migrations}, func(t *testing.T, db *store.DB) {
		clk := clock.NewManual(firstStart)
		stored, err := status.Load(context.Background(), db, clk.Now())
		require.NoError(t, err)
		inc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		inc.Clock = clk
		fn(t, db, clk, stored, inc)
	})
}

// pageGetter serves svc's public page until the test ends and returns a
// function that reads path from it, answered 200.
func pageGetter(t *testing.T, svc *status.Service) func(path string) string {
	t.Helper()
	mux := http.NewServeMux()
	status.NewHandler(svc, nil).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return func(path string) string {
		res, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode, path)
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return string(b)
	}
}
