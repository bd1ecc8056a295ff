package ui_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil/browser"
	"github.com/rootuip/sre/pkg/ui"
)

// as serves h as the principal name with role.
func as(name string, role auth.Role, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), auth.Principal{Name: name, Role: role})))
	})
}

// TestBrowserViewerAndCrossSite drives the console in headless Chromium: a
// viewer sees the incident without any action button, and a form that
// another site posts to the console (as a responder's browser would,
// with the responder's credentials) is refused and changes nothing.
func TestBrowserViewerAndCrossSite(t *testing.T) {
	ctx := t.Context()
	db, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Migrate(ctx, incident.Migrations))
	svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	mux := http.NewServeMux()
	ui.New(ui.Sources{Incidents: svc}, ui.Options{}).Register(mux)
	viewer := httptest.NewServer(as("vera", auth.RoleViewer, mux))
	defer viewer.Close()
	responder := httptest.NewServer(as("rita", auth.RoleResponder, mux))
	defer responder.Close()

	lbls := map[string]string{"alertname": "CheckoutErrors", "service": "checkout", "severity": "critical"}
	res, err := svc.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "firing", GroupKey: "{}:checkout", CommonLabels: lbls,
		Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "c1", StartsAt: time.Now(), Labels: lbls}}})
	require.NoError(t, err)
	id := res.Created[0]

	// Another site (localhost is not the console's 127.0.0.1) whose page
	// posts the acknowledge form to the console as soon as it loads.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s/incidents/%s/ack"></form><script>document.getElementById("f").submit()</script>`,
			responder.URL, id)
	}))
	defer evil.Close()
	evilURL := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)

	// A safety net only: every step waits on a condition.
	tab, closeBrowser := browser.Tab(t, 2*time.Minute)
	defer closeBrowser()

	// The viewer: the incident, no button, no form that posts.
	require.NoError(t, chromedp.Do(tab, chromedp.Navigate(viewer.URL+"/incidents/"+id), chromedp.WaitVisible(chromedp.ID("status"))))
	status, err := chromedp.Run(tab, chromedp.Text(chromedp.ID("status")))
	require.NoError(t, err)
	require.Equal(t, "triggered", strings.TrimSpace(status))
	html, err := chromedp.Run(tab, chromedp.OuterHTML(chromedp.CSS("main")))
	require.NoError(t, err)
	require.NotContains(t, html, `method="post"`, "a viewer sees no action buttons")
	require.NotContains(t, html, `<button`, "a viewer sees no action buttons")

	// The responder sees the button (the page is the same otherwise).
	require.NoError(t, chromedp.Do(tab, chromedp.Navigate(responder.URL+"/incidents/"+id), chromedp.WaitVisible(chromedp.ID("ack"))))

	// The cross-site post: the browser sends it, the console refuses it.
	require.NoError(t, chromedp.Do(tab, chromedp.Navigate(evilURL), chromedp.WaitVisible(chromedp.CSS(`body`))))
	body := ""
	for !strings.Contains(strings.ToLower(body), "cross-origin") {
		require.NoError(t, tab.Err(), "the refusal did not show; last page: %q", body)
		body, _ = chromedp.Run(tab, chromedp.Text(chromedp.CSS("body")))
	}
	inc, err := svc.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, incident.StatusTriggered, inc.Status, "the cross-site post changed nothing")
}
