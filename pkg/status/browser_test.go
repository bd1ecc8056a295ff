package status_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/status"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil/browser"
)

// TestBrowserPublicUpdateLayout: a public update of several lines reads
// as several lines on the status page, and one with a long unbroken word
// (a URL) stays inside a phone's screen instead of widening the page.
func TestBrowserPublicUpdateLayout(t *testing.T) {
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Migrate(ctx, incident.Migrations))
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	inc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	inc.Clock = clock.NewManual(now.Add(-time.Hour))
	created, err := inc.Create(ctx, incident.ManualIncident{Title: "Payments failing", Service: "payments", Severity: incident.SeverityHigh, Actor: "rita"})
	require.NoError(t, err)
	msg := "Card payments fail.\nWe are rolling back.\nDetails: https://example.com/" + strings.Repeat("x", 300)
	_, err = inc.PostStatusUpdate(ctx, created.ID, incident.StatusUpdate{Actor: "rita", Impact: "payments fail", Public: true, PublicMessage: msg})
	require.NoError(t, err)

	cfg := status.Config{Title: "Shop status", Components: []status.Component{{Name: "Shop", Services: []string{"payments"}}}, UptimeDays: 1}
	require.NoError(t, cfg.Validate())
	mux := http.NewServeMux()
	status.NewHandler(status.New(cfg, status.Options{Incidents: inc, Clock: clock.NewManual(now)}), nil).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	tab, closeBrowser := browser.Tab(t, 2*time.Minute) // a safety net only
	defer closeBrowser()
	require.NoError(t, chromedp.Do(tab, chromedp.EmulateViewport(390, 844), chromedp.Navigate(srv.URL+"/status"),
		chromedp.WaitVisible(chromedp.CSS(".update p"))))
	text, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.querySelector('.update p').innerText`))
	require.NoError(t, err)
	require.Equal(t, msg, text, "the lines of the update as the responder wrote them")
	wide, err := chromedp.Run(tab, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > document.documentElement.clientWidth`))
	require.NoError(t, err)
	require.False(t, wide, "the page is wider than the phone's screen")
}
