package ui_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
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

// TestBrowserLiveAck drives the console in headless Chromium (Debian's
// chromium; the test fails when it is missing): two tabs show the same
// incident, the first acknowledges it with the button, and the second shows
// the new status without a reload (through the event stream).
func TestBrowserLiveAck(t *testing.T) {
	ctx := t.Context()
	db, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Migrate(ctx, incident.Migrations))
	bus := events.NewBus(256, nil)
	svc, err := incident.NewService(db, incident.DefaultOptions(), nil, bus, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	mux := http.NewServeMux()
	ui.New(ui.Sources{Incidents: svc}, ui.Options{AllowAnonymous: true}).Register(mux)
	stream.New(bus, stream.Options{}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	lbls := map[string]string{"alertname": "CheckoutErrors", "service": "checkout", "severity": "critical"}
	res, err := svc.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "firing", GroupKey: "{}:checkout", CommonLabels: lbls,
		Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "c1", StartsAt: time.Now(), Labels: lbls}}})
	require.NoError(t, err)
	id := res.Created[0]

	// A safety net only: every step waits on a condition.
	tab1, closeBrowser := browser.Tab(t, 2*time.Minute)
	defer closeBrowser()

	page := srv.URL + "/incidents/" + id
	require.NoError(t, chromedp.Do(tab1, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("ack"))))
	// The second tab of the same browser (started by the first Do).
	tab2, cancel2 := chromedp.NewContext(tab1)
	defer cancel2()
	require.NoError(t, chromedp.Do(tab2, chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.CSS(`body[data-live-connected="true"]`))))
	status, err := chromedp.Run(tab2, chromedp.Text(chromedp.ID("status")))
	require.NoError(t, err)
	require.Equal(t, "triggered", strings.TrimSpace(status))
	dir := browser.Artifacts(t)
	browser.Screenshot(t, tab1, dir, "console-incident.jpg")

	require.NoError(t, chromedp.Do(tab1, chromedp.Click(chromedp.ID("ack")), chromedp.WaitVisible(chromedp.CSS(".done"))))
	status, err = chromedp.Run(tab1, chromedp.Text(chromedp.ID("status")))
	require.NoError(t, err)
	require.Equal(t, "acknowledged", strings.TrimSpace(status))

	// The second tab was not reloaded: it refreshed its live element.
	require.NoError(t, chromedp.Do(tab2, chromedp.WaitVisible(chromedp.CSS(`body[data-refreshed]`))))
	status, err = chromedp.Run(tab2, chromedp.Text(chromedp.ID("status")))
	require.NoError(t, err)
	require.Equal(t, "acknowledged", strings.TrimSpace(status))
	browser.Screenshot(t, tab2, dir, "console-incident-live.jpg")

	require.NoError(t, chromedp.Do(tab1, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("mtta"))))
	browser.Screenshot(t, tab1, dir, "console-home.jpg")
	t.Logf("screenshots in %s", dir)
	inc, err := svc.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, incident.StatusAcknowledged, inc.Status)
}
