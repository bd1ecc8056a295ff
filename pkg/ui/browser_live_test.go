package ui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/stream"
	"github.com/rootuip/sre/pkg/testutil/browser"
	"github.com/rootuip/sre/pkg/ui"
)

// liveConsole serves the console and the event stream over a real
// incident service, with one firing incident. Each stream request goes
// through serve, which the test may hold or end.
func liveConsole(t *testing.T, serve func(n int64, w http.ResponseWriter, r *http.Request, next http.Handler)) (*httptest.Server, *incident.Service, *events.Bus, string) {
	t.Helper()
	ctx := t.Context()
	db, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.Migrate(ctx, incident.Migrations))
	bus := events.NewBus(256, nil)
	svc, err := incident.NewService(db, incident.DefaultOptions(), nil, bus, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	mux := http.NewServeMux()
	ui.New(ui.Sources{Incidents: svc}, ui.Options{AllowAnonymous: true}).Register(mux)
	sse := stream.New(bus, stream.Options{})
	var requests atomic.Int64
	mux.HandleFunc("GET /api/v1/events", func(w http.ResponseWriter, r *http.Request) {
		serve(requests.Add(1), w, r, sse)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	lbls := map[string]string{"alertname": "CheckoutErrors", "service": "checkout", "severity": "critical"}
	res, err := svc.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "firing", GroupKey: "{}:checkout", CommonLabels: lbls,
		Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "c1", StartsAt: time.Now(), Labels: lbls}}})
	require.NoError(t, err)
	return srv, svc, bus, res.Created[0]
}

func passThrough(_ int64, w http.ResponseWriter, r *http.Request, next http.Handler) {
	next.ServeHTTP(w, r)
}

// TestBrowserLiveEveryType: the page refreshes on every event type its
// data-live prefix covers, not only on a list of types known to the
// script: an incident page refreshes on incident.flapping.
func TestBrowserLiveEveryType(t *testing.T) {
	srv, _, bus, id := liveConsole(t, passThrough)
	tab, closeBrowser := browser.Tab(t, 2*time.Minute) // a safety net only
	defer closeBrowser()
	require.NoError(t, chromedp.Do(tab, chromedp.Navigate(srv.URL+"/incidents/"+id),
		chromedp.WaitVisible(chromedp.CSS(`body[data-live-connected="true"]`))))
	live, err := chromedp.Run(tab, chromedp.Text(chromedp.ID("live")))
	require.NoError(t, err)
	require.Equal(t, "Live", strings.TrimSpace(live))

	bus.Publish(events.Event{Type: "incident.flapping", Time: time.Now(), IncidentID: id, Service: "checkout"})
	require.NoError(t, chromedp.Do(tab, chromedp.WaitVisible(chromedp.CSS(`body[data-refreshed]`))))
	live, err = chromedp.Run(tab, chromedp.Text(chromedp.ID("live")))
	require.NoError(t, err)
	require.Regexp(t, `^Updated \d\d:\d\d:\d\d UTC$`, strings.TrimSpace(live), "the time of the refresh, in UTC as every time of the console")
}

// TestBrowserLiveReconnect: when the stream ends the page says it is
// disconnected, reconnects, and then shows what changed meanwhile (the
// stream does not replay it).
func TestBrowserLiveReconnect(t *testing.T) {
	drop, resume := make(chan struct{}), make(chan struct{})
	srv, svc, _, id := liveConsole(t, func(n int64, w http.ResponseWriter, r *http.Request, next http.Handler) {
		switch n {
		case 1: // the first stream ends when the test says
			ctx, cancel := context.WithCancel(r.Context())
			defer cancel()
			go func() {
				select {
				case <-drop:
					cancel()
				case <-ctx.Done():
				}
			}()
			next.ServeHTTP(w, r.WithContext(ctx))
		case 2: // the second waits until the incident changed
			select {
			case <-resume:
			case <-r.Context().Done():
				return
			}
			next.ServeHTTP(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
	tab, closeBrowser := browser.Tab(t, 2*time.Minute) // a safety net only
	defer closeBrowser()
	require.NoError(t, chromedp.Do(tab, chromedp.Navigate(srv.URL+"/incidents/"+id),
		chromedp.WaitVisible(chromedp.CSS(`body[data-live-connected="true"]`))))

	close(drop)
	require.NoError(t, chromedp.Do(tab, chromedp.WaitVisible(chromedp.CSS(`body[data-live-connected="false"]`))))
	live, err := chromedp.Run(tab, chromedp.Text(chromedp.ID("live")))
	require.NoError(t, err)
	require.Regexp(t, `^Disconnected at \d\d:\d\d:\d\d UTC: reconnecting…$`, strings.TrimSpace(live))

	_, err = svc.Acknowledge(t.Context(), id, "alice")
	require.NoError(t, err)
	close(resume)
	require.NoError(t, chromedp.Do(tab, chromedp.WaitVisible(chromedp.CSS(`body[data-live-connected="true"][data-refreshed]`))))
	status, err := chromedp.Run(tab, chromedp.Text(chromedp.ID("status")))
	require.NoError(t, err)
	require.Equal(t, "acknowledged", strings.TrimSpace(status))
}
