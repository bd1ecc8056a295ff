package ui_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/oncall"
	"github.com/rootuip/sre/pkg/runbook"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/ui"
	"github.com/rootuip/sre/pkg/web"
)

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// newConsole serves the console, open to anonymous callers, over a real
// incident service on db until the test ends.
func newConsole(t *testing.T, db *store.DB) (*incident.Service, *httptest.Server) {
	t.Helper()
	svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	mux := http.NewServeMux()
	ui.New(ui.Sources{Incidents: svc}, ui.Options{AllowAnonymous: true}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return svc, srv
}

// TestUIPages runs the pages over the real incident service on both
// backends: open incidents are listed most severe first, bad forms are
// refused without changing the incident, unknown incidents are 404.
func TestUIPages(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc, srv := newConsole(t, db)

		var ids []string
		for _, sev := range []string{"low", "critical"} {
			lbls := map[string]string{"alertname": "Down", "service": "api", "severity": sev}
			res, err := svc.Ingest(t.Context(), incident.Notification{Receiver: "sred", Status: "firing", GroupKey: "{}:" + sev, CommonLabels: lbls,
				Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: sev, StartsAt: time.Now(), Labels: lbls}}})
			require.NoError(t, err)
			ids = append(ids, res.Created[0])
		}
		code, body := get(t, srv.URL+"/incidents")
		require.Equal(t, http.StatusOK, code)
		require.Less(t, strings.Index(body, ids[1]), strings.Index(body, ids[0]), "CRITICAL before LOW")

		resp, err := http.PostForm(srv.URL+"/incidents/"+ids[0]+"/resolve", url.Values{"actor": {strings.Repeat("x", 300)}})
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		require.Contains(t, string(b), "actor longer than 200 characters")

		resp, err = http.Post(srv.URL+"/incidents/"+ids[0]+"/resolve", "application/x-www-form-urlencoded", strings.NewReader("note="+strings.Repeat("x", web.MaxBody)))
		require.NoError(t, err)
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		require.Contains(t, string(b), "invalid form: http: request body too large")
		inc, err := svc.Get(t.Context(), ids[0])
		require.NoError(t, err)
		require.Equal(t, incident.StatusTriggered, inc.Status, "refused forms changed nothing")

		code, body = get(t, srv.URL+"/incidents/"+url.PathEscape("<nope>"))
		require.Equal(t, http.StatusNotFound, code)
		require.Contains(t, body, "&lt;nope&gt;")
	})
}

// runbookSet is the runbooks the console lists, parsed from YAML by the
// runbook package; the incident page needs nothing else of the engine.
type runbookSet struct {
	list []*runbook.Runbook
	dry  bool // runbooks.dry_run
}

var errNoEngine = errors.New("no runbook engine in this test")

func (s runbookSet) Runbooks() []*runbook.Runbook { return s.list }
func (s runbookSet) DryRun() bool                 { return s.dry }
func (runbookSet) ListRuns(context.Context, runbook.RunFilter) ([]*runbook.Run, error) {
	return nil, errNoEngine
}
func (runbookSet) GetRun(context.Context, int64) (*runbook.Run, error) { return nil, errNoEngine }
func (runbookSet) Approve(context.Context, int64, string, string) (*runbook.Run, error) {
	return nil, errNoEngine
}
func (runbookSet) Cancel(context.Context, int64, string, string) (*runbook.Run, error) {
	return nil, errNoEngine
}

// TestIncidentPageRunbooks: the incident page shows the runbooks an alert
// links (by runbook_url or a `runbook: <name>` annotation) as documentation
// that does not run, the runbooks whose matchers select the incident as
// running, and one whose matchers select it in another severity with the
// severities and states it runs in; a runbook neither linked nor
// selecting it is not shown.
func TestIncidentPageRunbooks(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		var set runbookSet
		for _, src := range []string{
			"name: restart-api\nurls: [https://docs.example/restart]\nmatchers: ['namespace=\"prod\"']\nsteps: [{name: w, wait: {duration: 1s}}]\n",
			"name: drain\nmatchers: ['namespace=\"staging\"']\nsteps: [{name: w, wait: {duration: 1s}}]\n",
			"name: prod-page\nmatchers: ['alertname=\"Down\"']\nsteps: [{name: w, wait: {duration: 1s}}]\n",
			"name: unrelated\nmatchers: ['alertname=\"Other\"']\nsteps: [{name: w, wait: {duration: 1s}}]\n",
			"name: restart-when-low\nmatchers: ['alertname=\"Down\"']\nseverities: [LOW, MEDIUM]\nstates: [triggered, acknowledged]\nsteps: [{name: w, wait: {duration: 1s}}]\n",
		} {
			rb, err := runbook.Parse([]byte(src), "rb.yml")
			require.NoError(t, err)
			set.list = append(set.list, rb)
		}
		mux := http.NewServeMux()
		ui.New(ui.Sources{Incidents: svc, Runbooks: set}, ui.Options{AllowAnonymous: true}).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()

		// An alert of another namespace links restart-api by URL and drain
		// by name: neither selects it, prod-page does.
		lbls := map[string]string{"alertname": "Down", "service": "api", "severity": "critical", "namespace": "dev"}
		res, err := svc.Ingest(t.Context(), incident.Notification{Receiver: "sred", Status: "firing", GroupKey: "{}:dev", CommonLabels: lbls,
			Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "a", StartsAt: time.Now(), Labels: lbls,
				Annotations: map[string]string{"runbook_url": "https://docs.example/restart", "runbook": "drain"}}}})
		require.NoError(t, err)
		code, body := get(t, srv.URL+"/incidents/"+res.Created[0])
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, `<th>Runbook restart-api</th><td>linked by an alert: documentation only, it does not run here <a href="https://docs.example/restart">`)
		require.Contains(t, body, `<th>Runbook drain</th><td>linked by an alert: documentation only, it does not run here</td>`)
		require.Contains(t, body, `<th>Runbook prod-page</th><td>runs for this incident (its matchers select it)</td>`)
		require.NotContains(t, body, "unrelated")
		// Its matchers select the CRITICAL incident, its severities do
		// not: it says when it runs.
		require.Contains(t, body, `<th>Runbook restart-when-low</th><td>its matchers select this incident: it runs once the incident is LOW or MEDIUM, triggered or acknowledged</td>`)
	})
}

// TestIncidentPageRunbookURLSchemes: an alert's runbook_url is a link on
// the incident page only when it is an http or https URL; a javascript:,
// data: or vbscript: URL (in any case, with leading space) is shown as
// escaped text, not as a link. Before, html/template made it a link to
// "#ZgotmplZ".
func TestIncidentPageRunbookURLSchemes(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc, srv := newConsole(t, db)

		hostile := []string{"javascript:alert(1)", "JaVaScRiPt:alert(2)", " javascript:alert(3)", "data:text/html,<script>alert(4)</script>",
			"vbscript:msgbox(5)", "//evil.example/relative"}
		var alerts []incident.NotifiedAlert
		for i, u := range append([]string{"https://docs.example/runbook"}, hostile...) {
			lbls := map[string]string{"alertname": "Down", "service": "api", "i": strconv.Itoa(i)}
			alerts = append(alerts, incident.NotifiedAlert{Status: "firing", Fingerprint: strconv.Itoa(i), StartsAt: time.Now(), Labels: lbls,
				Annotations: map[string]string{"runbook_url": u}})
		}
		res, err := svc.Ingest(t.Context(), incident.Notification{Receiver: "sred", Status: "firing", GroupKey: "{}:links",
			CommonLabels: map[string]string{"alertname": "Down", "service": "api"}, Alerts: alerts})
		require.NoError(t, err)
		code, body := get(t, srv.URL+"/incidents/"+res.Created[0])
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, `<th>Runbook</th><td><a href="https://docs.example/runbook">https://docs.example/runbook</a></td>`)
		require.NotContains(t, body, "ZgotmplZ")
		for _, u := range hostile {
			require.Contains(t, body, `<th>Runbook</th><td>`+template.HTMLEscapeString(u)+`</td>`, "shown as text")
		}
		require.NotContains(t, body, "<script>alert(4)")
	})
}

// noRuns is a runbook engine without runbooks or runs.
type noRuns struct{ runbookSet }

func (noRuns) ListRuns(context.Context, runbook.RunFilter) ([]*runbook.Run, error) { return nil, nil }

// TestRunbooksPageDryRun: the runbooks page shows each runbook's effective
// mode, as GET /api/v1/runbooks does: with runbooks.dry_run on (as in
// examples/sred.yml) every runbook is a dry run and the page says why.
// Before, it showed the runbook's own dry_run ("false") while nothing ran.
func TestRunbooksPageDryRun(t *testing.T) {
	var set runbookSet
	for _, src := range []string{
		"name: restart-api\nmatchers: ['alertname=\"Down\"']\nsteps: [{name: w, wait: {duration: 1s}}]\n",
		"name: drain\ndry_run: true\nmatchers: ['alertname=\"Down\"']\nsteps: [{name: w, wait: {duration: 1s}}]\n",
	} {
		rb, err := runbook.Parse([]byte(src), "rb.yml")
		require.NoError(t, err)
		set.list = append(set.list, rb)
	}
	const note = "Every runbook runs dry: <code>runbooks.dry_run</code> is on in sred.yml"
	for _, global := range []bool{false, true} {
		set.dry = global
		mux := http.NewServeMux()
		ui.New(ui.Sources{Runbooks: noRuns{set}}, ui.Options{AllowAnonymous: true}).Register(mux)
		srv := httptest.NewServer(mux)
		code, body := get(t, srv.URL+"/runbooks")
		srv.Close()
		require.Equal(t, http.StatusOK, code, body)
		rows := map[string]string{} // runbook name: its row's last cells
		for _, row := range strings.Split(body, "</tr>") {
			if _, r, ok := strings.Cut(row, "<tr><td>"); ok {
				name, _, _ := strings.Cut(r, "<")
				rows[name] = row[max(0, len(row)-40):]
			}
		}
		require.True(t, strings.HasSuffix(rows["drain"], "<td>false</td><td>true</td>"), "its own dry_run: %q", rows["drain"])
		require.True(t, strings.HasSuffix(rows["restart-api"], fmt.Sprintf("<td>false</td><td>%t</td>", global)),
			"runbooks.dry_run=%t: %q", global, rows["restart-api"])
		require.Equal(t, global, strings.Contains(body, note), "runbooks.dry_run=%t", global)
	}
}

// TestDoneBanner: the banner of ?done= is the server's fixed text of a
// known code; any other value (a link someone crafted to make the trusted
// console say "re-enter your password at ...") shows no banner and none of
// its words. Every console page is sent with Cache-Control: no-store and
// the console's CSP. Both backends.
func TestDoneBanner(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		mux := http.NewServeMux()
		ui.New(ui.Sources{Incidents: svc, Runbooks: noRuns{}}, ui.Options{AllowAnonymous: true}).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		lbls := map[string]string{"alertname": "Down", "service": "api", "severity": "critical"}
		res, err := svc.Ingest(t.Context(), incident.Notification{Receiver: "sred", Status: "firing", GroupKey: "{}:a", CommonLabels: lbls,
			Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "a", StartsAt: time.Now(), Labels: lbls}}})
		require.NoError(t, err)
		page := "/incidents/" + res.Created[0]

		const phishing = "Your session expired, re-enter your password at http://evil.example"
		for _, tc := range []struct {
			name, path, banner string
		}{
			{"acknowledged", page + "?done=acknowledged", "Incident acknowledged."},
			{"post-mortem", page + "?done=closed", "Incident closed with its post-mortem."},
			{"note", page + "?done=noted", "Note added."},
			{"run approved", "/runbooks?done=approved", "Run approved."},
			{"run denied", "/runbooks?done=denied", "Run denied."},
			{"free text", page + "?done=" + url.QueryEscape(phishing), ""},
			{"free text on another page", "/incidents?done=" + url.QueryEscape(phishing), ""},
			{"markup", page + "?done=" + url.QueryEscape("<b>hi</b>"), ""},
			{"a code with more", page + "?done=acknowledged." + url.QueryEscape(" Call +1 555 0100"), ""},
			{"empty", page + "?done=", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, err := http.Get(srv.URL + tc.path)
				require.NoError(t, err)
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.NoError(t, err)
				body := string(b)
				require.Equal(t, http.StatusOK, resp.StatusCode, body)
				if tc.banner == "" {
					require.NotContains(t, body, `class="done"`)
				} else {
					require.Contains(t, body, `<p class="done" role="status">`+tc.banner+`</p>`)
				}
				for _, words := range []string{"evil.example", "session expired", "555 0100", "hi</b>", "&lt;b&gt;"} {
					require.NotContains(t, body, words)
				}
				require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
				require.Equal(t, web.PageCSP, resp.Header.Get("Content-Security-Policy"))
				require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
			})
		}
	})
}

// TestPagesLinkIcon: every console page, the error page included, names
// its icon, and the console serves it: without one the browser asks for
// /favicon.ico, answered 404, and logs an error in the console of every
// first visit.
func TestPagesLinkIcon(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		_, srv := newConsole(t, db)
		const link = `<link rel="icon" href="/console/static/favicon.svg" type="image/svg+xml">`
		for _, path := range []string{"/", "/incidents", "/incidents/new", "/incidents/INC-1999-0001"} {
			_, body := get(t, srv.URL+path)
			require.Contains(t, body, link, path)
		}
		resp, err := http.Get(srv.URL + "/console/static/favicon.svg")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "image/svg+xml", resp.Header.Get("Content-Type"))
		require.True(t, strings.HasPrefix(string(b), "<svg"), string(b))
	})
}

// TestHomeCountsIncidents: the home page's card counts the incidents of
// the last 30 days in words that agree with the number ("0 incidents",
// "1 incident", "2 incidents"; it read "1 incidents").
func TestHomeCountsIncidents(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		for i, want := range []string{"0 incidents, 0 resolved", "1 incident, 0 resolved", "2 incidents, 0 resolved"} {
			if i > 0 {
				key := string(rune('a' + i))
				lbls := map[string]string{"alertname": "Down", "service": "api-" + key, "severity": "critical"}
				_, err := svc.Ingest(t.Context(), incident.Notification{Receiver: "sred", Status: "firing", GroupKey: "{}:" + key, CommonLabels: lbls,
					Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: key, StartsAt: time.Now(), Labels: lbls}}})
				require.NoError(t, err)
			}
			// A console of its own each time: the card's figures are cached.
			mux := http.NewServeMux()
			ui.New(ui.Sources{Incidents: svc}, ui.Options{AllowAnonymous: true}).Register(mux)
			srv := httptest.NewServer(mux)
			code, body := get(t, srv.URL+"/")
			srv.Close()
			require.Equal(t, http.StatusOK, code)
			require.Contains(t, body, "<p>"+want+"</p>")
		}
	})
}

// TestTitleStableSeverityCurrent: an incident's title, rendered when it
// opens, stays when its severity falls (as GoAlert's alert summary and
// Grafana OnCall's alert group title do), also when it names the severity;
// the severity the API, the console's incident page and its list show is
// the current one: the highest of the alerts still firing, followed on the
// console by the highest it had. The timeline says when it fell.
func TestTitleStableSeverityCurrent(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		opts := incident.DefaultOptions()
		opts.TitleTemplate = `{{ .Service }} {{ .Severity }}: {{ join .Alertnames ", " }}`
		svc, err := incident.NewService(db, opts, nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		mux := http.NewServeMux()
		ui.New(ui.Sources{Incidents: svc}, ui.Options{AllowAnonymous: true}).Register(mux)
		(&web.IncidentsAPI{Service: svc}).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()

		started := time.Now().Add(-10 * time.Minute)
		notify := func(pageStatus string) []string {
			t.Helper()
			n := incident.Notification{Receiver: "sred", Status: "firing", GroupKey: `{}:{service="api",slo="availability"}`,
				GroupLabels:  map[string]string{"service": "api", "slo": "availability"},
				CommonLabels: map[string]string{"service": "api", "slo": "availability"}}
			for _, a := range []struct{ name, severity, status string }{{"SLOBurnRatePage", "critical", pageStatus}, {"SLOBurnRateTicket", "warning", "firing"}} {
				al := incident.NotifiedAlert{Status: a.status, Fingerprint: "fp-" + a.name, StartsAt: started,
					Labels: map[string]string{"alertname": a.name, "service": "api", "slo": "availability", "severity": a.severity}}
				if a.status == "resolved" {
					al.EndsAt = time.Now()
				}
				n.Alerts = append(n.Alerts, al)
			}
			res, err := svc.Ingest(t.Context(), n)
			require.NoError(t, err)
			return res.Created
		}
		created := notify("firing")
		require.Len(t, created, 1)
		id := created[0]
		const title = "api CRITICAL: SLOBurnRatePage, SLOBurnRateTicket"
		require.Empty(t, notify("resolved"), "the same incident")

		var got struct {
			Data struct{ Title, Severity string } `json:"data"`
		}
		code, body := get(t, srv.URL+"/api/v1/incidents/"+id)
		require.Equal(t, http.StatusOK, code, body)
		require.NoError(t, json.Unmarshal([]byte(body), &got))
		require.Equal(t, title, got.Data.Title, "the title stays as it opened")
		require.Equal(t, "MEDIUM", got.Data.Severity, "the warning alert still firing")

		code, body = get(t, srv.URL+"/incidents/"+id)
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, "<h1>"+id+": "+title+"</h1>")
		require.Contains(t, body, `<tr><th>Severity</th><td><span class="sev sev-medium">MEDIUM</span> <span class="peak">(CRITICAL at its highest)</span></td></tr>`)
		require.Contains(t, body, "severity lowered: CRITICAL -&gt; MEDIUM (the highest severity of its firing alerts)")
		code, body = get(t, srv.URL+"/incidents")
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, `<td><span class="sev sev-medium">MEDIUM</span> <span class="peak">(CRITICAL at its highest)</span></td>`)
		require.NotContains(t, body, `sev-critical">CRITICAL`)
	})
}

// TestConsoleRaisedTitleAndPeak: on both backends, an incident a ticket
// opened and a page raised is named after the page on the console's
// incident page, its list and the home page; its timeline says the title
// changed; once the page resolves, each shows the current severity with
// the highest it had ("MEDIUM (CRITICAL at its highest)"), and the title
// stays the page's.
func TestConsoleRaisedTitleAndPeak(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		opts := incident.DefaultOptions()
		opts.TitleTemplate = `{{ .Service }}/{{ .CommonLabels.slo }} burning {{ .BurnRate }}x: {{ .CommonLabels.severity }}`
		svc, err := incident.NewService(db, opts, nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		mux := http.NewServeMux()
		ui.New(ui.Sources{Incidents: svc}, ui.Options{AllowAnonymous: true}).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()

		started := time.Now().Add(-10 * time.Minute)
		notify := func(tiers ...string) []string {
			t.Helper()
			n := incident.Notification{Receiver: "sred", Status: "firing", GroupKey: `{}:{service="api",slo="availability"}`,
				GroupLabels:  map[string]string{"service": "api", "slo": "availability"},
				CommonLabels: map[string]string{"service": "api", "slo": "availability"}}
			for _, a := range []struct{ name, severity, rate, status string }{{"SLOBurnRatePage", "page", "14.4", tiers[0]}, {"SLOBurnRateTicket", "ticket", "3", "firing"}} {
				if a.status == "" {
					continue
				}
				al := incident.NotifiedAlert{Status: a.status, Fingerprint: "fp-" + a.name, StartsAt: started,
					Labels:      map[string]string{"alertname": a.name, "service": "api", "slo": "availability", "severity": a.severity},
					Annotations: map[string]string{"burn_rate_threshold": a.rate}}
				if a.status == "resolved" {
					al.EndsAt = time.Now()
				}
				n.Alerts = append(n.Alerts, al)
			}
			if len(n.Alerts) == 1 {
				n.CommonLabels = n.Alerts[0].Labels
				n.CommonAnnotations = n.Alerts[0].Annotations
			}
			res, err := svc.Ingest(t.Context(), n)
			require.NoError(t, err)
			return res.Created
		}
		created := notify("")
		require.Len(t, created, 1)
		id := created[0]
		require.Empty(t, notify("firing"), "the page joins the ticket's incident")
		const title = "api/availability burning 14.4x: page"

		code, body := get(t, srv.URL+"/incidents/"+id)
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, "<h1>"+id+": "+title+"</h1>")
		require.Contains(t, body, `<tr><th>Severity</th><td><span class="sev sev-critical">CRITICAL</span></td></tr>`)
		require.Contains(t, body, "title changed: &#34;api/availability burning 3x: ticket&#34; -&gt; &#34;"+title+"&#34;")
		require.Contains(t, body, `<tr><th>Labels when opened</th>`)

		require.Empty(t, notify("resolved"))
		code, body = get(t, srv.URL+"/incidents/"+id)
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, "<h1>"+id+": "+title+"</h1>", "the title stays when the severity falls")
		require.Contains(t, body, `<tr><th>Severity</th><td><span class="sev sev-medium">MEDIUM</span> <span class="peak">(CRITICAL at its highest)</span></td></tr>`)
		for _, path := range []string{"/incidents", "/"} {
			code, body = get(t, srv.URL+path)
			require.Equal(t, http.StatusOK, code, path)
			require.Contains(t, body, `<span class="sev sev-medium">MEDIUM</span> <span class="peak">(CRITICAL at its highest)</span></td>`, path)
			require.Contains(t, body, "<td>"+title+"</td>", path)
		}

		// The list filters by the highest severity as the API does: the
		// incident that paged CRITICAL is found as CRITICAL after it fell.
		for _, tc := range []struct {
			query string
			found bool
		}{
			{"?status=all&severity=CRITICAL", false},
			{"?status=all&peak_severity=CRITICAL", true},
			{"?status=all&peak_severity=critical&severity=MEDIUM", true},
			{"?status=all&peak_severity=MEDIUM", false},
		} {
			code, body = get(t, srv.URL+"/incidents"+tc.query)
			require.Equal(t, http.StatusOK, code, tc.query)
			require.Equal(t, tc.found, strings.Contains(body, `<a href="/incidents/`+id+`">`), tc.query)
		}
		code, body = get(t, srv.URL+"/incidents?peak_severity=CRITICAL")
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, `<select name="peak_severity"><option value="">any</option><option selected>CRITICAL</option>`, "the form keeps the filter")
	})
}

// failedRuns is a runbook engine with one run whose step failed on a
// program that is not there; its runs waiting for approval cannot be
// listed when broken is set.
type failedRuns struct {
	runbookSet
	broken bool
}

const missingProg = "/nonexistent/sred-test/bin/restart-app"

func (f failedRuns) ListRuns(_ context.Context, rf runbook.RunFilter) ([]*runbook.Run, error) {
	if f.broken {
		return nil, errors.New("open /var/lib/sred-test/sred.db: permission denied")
	}
	if rf.Status != "" {
		return nil, nil
	}
	return []*runbook.Run{{ID: 1}}, nil
}

func (failedRuns) GetRun(context.Context, int64) (*runbook.Run, error) {
	errText := "start " + missingProg + ": fork/exec " + missingProg + ": no such file or directory"
	return &runbook.Run{ID: 1, IncidentID: "INC-1", Runbook: "restart", Status: runbook.RunFailed, Reason: "step act failed: " + errText,
		Audit: []runbook.AuditEntry{{Event: "step", StepName: "act", Status: "failed", Error: errText, Output: "ran " + missingProg}}}, nil
}

// requirePathsShownToAdminsOnly serves the console of src to a viewer and
// to an admin and asks each of paths (200 expected): the admin reads whole
// in the page, the viewer reads base and not hidden.
func requirePathsShownToAdminsOnly(t *testing.T, src ui.Sources, paths []string, whole, base, hidden string) {
	t.Helper()
	for _, c := range []struct {
		p     auth.Principal
		whole bool
	}{
		{auth.Principal{Name: "vera", Role: auth.RoleViewer}, false},
		{auth.Principal{Name: "ada", Role: auth.RoleAdmin}, true},
	} {
		mux := http.NewServeMux()
		ui.New(src, ui.Options{}).Register(mux)
		srv := httptest.NewServer(as(c.p.Name, c.p.Role, mux))
		for _, path := range paths {
			code, body := get(t, srv.URL+path)
			require.Equal(t, http.StatusOK, code, body)
			if c.whole {
				require.Contains(t, body, whole, path)
				continue
			}
			require.Contains(t, body, base, path)
			require.NotContains(t, body, hidden, path)
		}
		srv.Close()
	}
}

// TestRunbooksPagePathsShownToAdminsOnly: on the console's runbooks page a
// viewer reads a failed step's error and output, and a failure of the page
// itself, with the server's paths cut to their base names; an admin reads
// them whole.
func TestRunbooksPagePathsShownToAdminsOnly(t *testing.T) {
	for _, c := range []struct {
		name  string
		p     auth.Principal
		whole bool
	}{
		{"viewer", auth.Principal{Name: "vera", Role: auth.RoleViewer}, false},
		{"responder", auth.Principal{Name: "rita", Role: auth.RoleResponder}, false},
		{"admin", auth.Principal{Name: "adam", Role: auth.RoleAdmin}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, broken := range []bool{false, true} {
				mux := http.NewServeMux()
				ui.New(ui.Sources{Runbooks: failedRuns{broken: broken}}, ui.Options{}).Register(mux)
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mux.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), c.p)))
				}))
				code, body := get(t, srv.URL+"/runbooks")
				srv.Close()
				want, gone := "restart-app: no such file or directory", "/nonexistent/"
				if broken {
					require.Equal(t, http.StatusServiceUnavailable, code, body)
					want, gone = "open sred.db: permission denied", "/var/lib/"
				} else {
					require.Equal(t, http.StatusOK, code, body)
				}
				if c.whole {
					require.Contains(t, body, gone)
					continue
				}
				require.Contains(t, body, want)
				require.NotContains(t, body, gone)
			}
		})
	}
}

// TestIncidentPageTimelinePaths: on the console's incident page a viewer
// reads a runbook step's timeline entry with the server's paths cut to
// their base names; an admin reads it whole.
func TestIncidentPageTimelinePaths(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		lbls := map[string]string{"alertname": "Down", "service": "api", "severity": "critical"}
		res, err := svc.Ingest(t.Context(), incident.Notification{Receiver: "sred", Status: "firing", GroupKey: "{}:a", CommonLabels: lbls,
			Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "a", StartsAt: time.Now(), Labels: lbls}}})
		require.NoError(t, err)
		id := res.Created[0]
		require.NoError(t, svc.AddTimeline(t.Context(), nil, incident.TimelineEntry{IncidentID: id, Kind: "runbook_step", Actor: "runbook:restart",
			Message: "Runbook restart: step act failed: fork/exec " + missingProg + ": no such file or directory"}))
		requirePathsShownToAdminsOnly(t, ui.Sources{Incidents: svc, Runbooks: noRuns{}}, []string{"/incidents/" + id},
			"fork/exec "+missingProg, "step act failed: fork/exec restart-app: no such file or directory", "/nonexistent/")
	})
}

// TestErrorPageStoreFailure: a console page the store cannot answer shows
// web.ErrStore's fixed text, not the store's error (its file or SQL), to
// any role; the error goes to the log.
func TestErrorPageStoreFailure(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		lbls := map[string]string{"alertname": "Down", "service": "api", "severity": "critical"}
		res, err := svc.Ingest(t.Context(), incident.Notification{Receiver: "sred", Status: "firing", GroupKey: "{}:a", CommonLabels: lbls,
			Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "a", StartsAt: time.Now(), Labels: lbls}}})
		require.NoError(t, err)
		// The DROP locks incidents too (the foreign key), and PostgreSQL
		// may pick it to break a deadlock; it is run again then.
		require.NoError(t, store.RunAgain(t.Context(), func() error {
			_, err := db.Exec(`DROP TABLE incident_timeline`)
			return err
		}))
		var logged strings.Builder
		mux := http.NewServeMux()
		ui.New(ui.Sources{Incidents: svc, Runbooks: noRuns{}}, ui.Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))}).Register(mux)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mux.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), auth.Principal{Name: "ada", Role: auth.RoleAdmin})))
		}))
		defer srv.Close()
		code, body := get(t, srv.URL+"/incidents/"+res.Created[0])
		require.Equal(t, http.StatusServiceUnavailable, code, body)
		require.Contains(t, body, template.HTMLEscapeString(web.ErrStore.Error()))
		require.NotContains(t, body, "incident_timeline")
		require.Contains(t, logged.String(), "incident_timeline", "the store's error is logged")
	})
}

// brokenOnCall answers the on-call question with the store's own error.
type brokenOnCall struct{ err error }

func (brokenOnCall) Config() *oncall.Config { return &oncall.Config{} }
func (b brokenOnCall) Who(context.Context, string, string, time.Time, int) ([]oncall.OnCallEntry, error) {
	return nil, b.err
}

// TestInlineErrorsStoreFailure: an error shown inside a console page (the
// home page's on-call card) that is the store's own error is shown as
// web.ErrStore's fixed text and logged.
func TestInlineErrorsStoreFailure(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		_, storeErr := db.Exec(`SELECT * FROM oncall_missing_table`)
		require.Error(t, storeErr)
		var logged strings.Builder
		mux := http.NewServeMux()
		ui.New(ui.Sources{Incidents: svc, OnCall: brokenOnCall{storeErr}}, ui.Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))}).Register(mux)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mux.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), auth.Principal{Name: "vera", Role: auth.RoleViewer})))
		}))
		defer srv.Close()
		code, body := get(t, srv.URL+"/")
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, template.HTMLEscapeString(web.ErrStore.Error()))
		require.NotContains(t, body, "oncall_missing_table")
		require.Contains(t, logged.String(), "oncall_missing_table", "the store's error is logged")
	})
}

// TestConsolePeakSeverityFilter: on both backends, the incident list
// filters by the highest severity the incidents had (?peak_severity=, as
// the API does): every incident that paged CRITICAL, also one whose page
// resolved while its warning still fires (MEDIUM now), which the severity
// filter no longer lists. The form keeps the choice, combines it with the
// severity, the pages' links keep it, and an unknown severity is refused
// naming the parameter.
func TestConsolePeakSeverityFilter(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc, srv := newConsole(t, db)
		started := time.Now().Add(-10 * time.Minute)
		ingest := func(service string, severities map[string]string) string {
			t.Helper()
			n := incident.Notification{Receiver: "sred", Status: "firing", GroupKey: "{}:" + service,
				GroupLabels: map[string]string{"service": service}, CommonLabels: map[string]string{"service": service}}
			for _, name := range []string{"Down", "Slow"} {
				sev, ok := severities[name]
				if !ok {
					continue
				}
				status := "firing"
				if sev == "" {
					sev, status = "critical", "resolved"
				}
				al := incident.NotifiedAlert{Status: status, Fingerprint: service + name, StartsAt: started,
					Labels: map[string]string{"alertname": name, "service": service, "severity": sev}}
				if status == "resolved" {
					al.EndsAt = time.Now()
				}
				n.Alerts = append(n.Alerts, al)
			}
			res, err := svc.Ingest(t.Context(), n)
			require.NoError(t, err)
			if len(res.Created) == 1 {
				return res.Created[0]
			}
			return ""
		}
		fell := ingest("checkout", map[string]string{"Down": "critical", "Slow": "warning"})
		require.Empty(t, ingest("checkout", map[string]string{"Down": "", "Slow": "warning"}), "the page resolves, the warning fires")
		paged := ingest("search", map[string]string{"Down": "critical"})
		warned := ingest("cart", map[string]string{"Slow": "warning"})
		inc, err := svc.Get(t.Context(), fell)
		require.NoError(t, err)
		require.Equal(t, "MEDIUM (CRITICAL at its highest)", inc.SeverityText())

		listed := func(query string) map[string]bool {
			t.Helper()
			code, body := get(t, srv.URL+"/incidents?"+query)
			require.Equal(t, http.StatusOK, code, body)
			out := map[string]bool{}
			for _, id := range []string{fell, paged, warned} {
				out[id] = strings.Contains(body, `href="/incidents/`+id+`"`)
			}
			return out
		}
		require.Equal(t, map[string]bool{fell: true, paged: true, warned: false}, listed("peak_severity=critical"))
		require.Equal(t, map[string]bool{fell: false, paged: true, warned: false}, listed("severity=critical"))
		require.Equal(t, map[string]bool{fell: true, paged: false, warned: false}, listed("peak_severity=CRITICAL&severity=MEDIUM"))
		require.Equal(t, map[string]bool{fell: false, paged: false, warned: true}, listed("peak_severity=medium"))
		require.Equal(t, map[string]bool{fell: false, paged: false, warned: false}, listed("peak_severity=low"))

		code, body := get(t, srv.URL+"/incidents?peak_severity=critical&offset=1")
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, `<label>Highest severity <select name="peak_severity"><option value="">any</option><option selected>CRITICAL</option>`)
		require.Contains(t, body, `<a href="/incidents?offset=0&amp;peak_severity=CRITICAL&amp;status=open" rel="prev">`)

		code, body = get(t, srv.URL+"/incidents?peak_severity=SEV1")
		require.Equal(t, http.StatusBadRequest, code)
		require.Contains(t, body, template.HTMLEscapeString(`peak_severity: unknown severity "SEV1" (want one of CRITICAL, HIGH, MEDIUM, LOW)`))
	})
}

// TestConsoleListFilterErrors: a bad status or severity of the incident
// list is refused naming the parameter and the values it takes, as
// peak_severity is (the list filters by both severities; before, a bad
// severity did not say which, and a bad status listed no value).
func TestConsoleListFilterErrors(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		_, srv := newConsole(t, db)
		for query, want := range map[string]string{
			"status=closed":              `status: unknown status "closed" (want open, all, triggered, acknowledged, investigating, resolved, postmortem_done)`,
			"severity=SEV1":              `severity: unknown severity "SEV1" (want one of CRITICAL, HIGH, MEDIUM, LOW)`,
			"status=all&severity=urgent": `severity: unknown severity "urgent" (want one of CRITICAL, HIGH, MEDIUM, LOW)`,
		} {
			code, body := get(t, srv.URL+"/incidents?"+query)
			require.Equal(t, http.StatusBadRequest, code, query)
			require.Contains(t, body, template.HTMLEscapeString(want), query)
		}
	})
}

// TestConsoleBadRequestReasonOnce: a 400 page gives its reason alone under
// the "400 Bad Request" heading, for a bad query and for a bad form posted
// through the action handler (whose status comes from the error's kind);
// it used to read "bad request: <reason>" below the heading.
func TestConsoleBadRequestReasonOnce(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc, srv := newConsole(t, db)
		lbls := map[string]string{"alertname": "Down", "service": "api", "severity": "critical"}
		res, err := svc.Ingest(t.Context(), incident.Notification{Receiver: "sred", Status: "firing", GroupKey: "{}:down", CommonLabels: lbls,
			Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "down", StartsAt: time.Now(), Labels: lbls}}})
		require.NoError(t, err)

		code, body := get(t, srv.URL+"/incidents?offset=-1")
		require.Equal(t, http.StatusBadRequest, code)
		require.Contains(t, body, "<h1>400 Bad Request</h1>")
		require.Contains(t, body, `<p class="error">`+template.HTMLEscapeString(`offset: want a non-negative integer, got "-1"`)+`</p>`)

		resp, err := http.PostForm(srv.URL+"/incidents/"+res.Created[0]+"/note", url.Values{"text": {" "}})
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "errors.Is(err, errBadRequest) still gives the status")
		require.Contains(t, string(b), `<p class="error">the note is empty</p>`)
		require.NotContains(t, string(b), "bad request:")
	})
}
