package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/notify"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// webhookSink records the messages of the generic webhook channel.
type webhookSink struct {
	mu   sync.Mutex
	msgs []notify.Message
}

func (s *webhookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var m notify.Message
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &m); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (s *webhookSink) messages() []notify.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]notify.Message(nil), s.msgs...)
}

func fetch(t *testing.T, method, u string, form url.Values, hdr map[string]string) (int, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
		hdr = headers(map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, hdr)
	}
	return sendRequest(t, method, u, body, hdr)
}

// headers returns the headers of base with those of over set over them.
func headers(base, over map[string]string) map[string]string {
	h := map[string]string{}
	for _, m := range []map[string]string{base, over} {
		for k, v := range m {
			h[http.CanonicalHeaderKey(k)] = v
		}
	}
	return h
}

// sendRequest sends a request to u with body and the headers hdr and returns
// the answer's status and body.
func sendRequest(t *testing.T, method, u string, body io.Reader, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// runEscalationApp builds the whole sred on a backend and serves its mux,
// running only the escalation worker and the notification sender (the
// actors these tests exercise).
func runEscalationApp(t *testing.T, backend, config string) (*App, *httptest.Server) {
	t.Helper()
	dir := t.TempDir()
	o := Options{ConfigFile: filepath.Join(dir, "sred.yml"), StoragePath: filepath.Join(dir, "data")}
	require.NoError(t, os.WriteFile(o.ConfigFile, []byte(config), 0o644))
	if backend == "postgres" {
		o.PostgresURL = tu.PostgresSchemaURL(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, o)
	if err != nil {
		cancel()
		t.Fatalf("start sred: %v", err)
	}
	srv := httptest.NewServer(a.Mux)
	var wg sync.WaitGroup
	for _, act := range a.Actors() {
		if act.Name == "escalation-worker" || act.Name == "notification-sender" || act.Name == "reload" {
			wg.Go(func() {
				if err := act.Execute(ctx); err != nil && ctx.Err() == nil {
					t.Errorf("actor %s: %v", act.Name, err)
				}
			})
		}
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		srv.Close()
		a.Close()
	})
	return a, srv
}

var incidentLink = regexp.MustCompile(`(?m)^Incident: (\S+)$`)

// TestUIIncidentPage: the link in a message rendered by the escalation
// engine leads to a page of the real app that shows the incident, escapes
// hostile label values, and acknowledges and resolves it.
func TestUIIncidentPage(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testUIIncidentPage(t, backend) })
	}
}

func testUIIncidentPage(t *testing.T, backend string) {
	sink := &webhookSink{}
	hooks := httptest.NewServer(sink)
	defer hooks.Close()
	const ext = "https://sred.example.com"
	a, srv := runEscalationApp(t, backend, fmt.Sprintf(`
global:
  external_url: %s
escalation:
  policies:
    - name: all
      levels: [{after: 0m, users: [alice], channels: [webhook]}]
oncall:
  users: [{name: alice, email: alice@example.com}]
notifications:
  webhook: {url: %s, secret: s3cret}
`, ext, hooks.URL))

	const hostile = `<img src=x onerror=alert(1)>`
	labels := map[string]string{"alertname": "APIDown", "service": "api", "severity": "critical", "team": hostile}
	res, err := a.Incidents.Ingest(t.Context(), incident.Notification{Receiver: "sred", Status: "firing", GroupKey: `{}:{alertname="APIDown"}`,
		CommonLabels: labels,
		Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "f1", StartsAt: time.Now().Add(-time.Minute), Labels: labels,
			Annotations: map[string]string{"summary": `<script>alert("x")</script> API down`}}}})
	require.NoError(t, err)
	require.Len(t, res.Created, 1)
	id := res.Created[0]
	waitFor(t, func() bool { return len(sink.messages()) == 1 }, "the level 0 message was not delivered")

	// The link in the delivered message's body is the incident's page.
	m := sink.messages()[0]
	match := incidentLink.FindStringSubmatch(m.Body)
	require.NotNil(t, match, "no incident link in %q", m.Body)
	require.Equal(t, ext+"/incidents/"+id, match[1])
	require.Equal(t, match[1], m.URL)
	link, err := url.Parse(match[1])
	require.NoError(t, err)
	page := srv.URL + link.Path

	code, body := fetch(t, http.MethodGet, page, nil, nil)
	require.Equal(t, http.StatusOK, code, body)
	for _, want := range []string{
		"<h1>" + id + ": ",
		`<span class="sev sev-critical">CRITICAL</span>`,
		`<td id="status">triggered</td>`,
		"<th>Service</th><td>api</td>",
		`<code>team="&lt;img src=x onerror=alert(1)&gt;"</code>`,
		"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; API down",
		`Escalation level 0 (policy &#34;all&#34;): paging alice via webhook`,
		`<form method="post" action="/incidents/` + id + `/ack">`,
		`<form method="post" action="/incidents/` + id + `/resolve">`,
	} {
		require.Contains(t, body, want)
	}
	require.NotContains(t, body, "<img src=x")
	require.NotContains(t, body, "<script>alert")

	code, body = fetch(t, http.MethodGet, srv.URL+"/incidents", nil, nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `<a href="/incidents/`+id+`">`+id+`</a>`)
	require.Contains(t, body, "1–1 of 1")

	// A cross-site form post is refused and changes nothing.
	code, _ = fetch(t, http.MethodPost, page+"/ack", url.Values{"actor": {"mallory"}}, map[string]string{"Sec-Fetch-Site": "cross-site"})
	require.Equal(t, http.StatusForbidden, code)

	// The buttons: acknowledge, then resolve (the client follows the 303).
	code, body = fetch(t, http.MethodPost, page+"/ack", url.Values{"actor": {"alice"}}, map[string]string{"Sec-Fetch-Site": "same-origin"})
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "Incident acknowledged.")
	require.Contains(t, body, `<td id="status">acknowledged</td>`)
	require.NotContains(t, body, "/ack\">", "no Acknowledge button on an acknowledged incident")
	code, body = fetch(t, http.MethodPost, page+"/ack", url.Values{"actor": {"alice"}}, nil)
	require.Equal(t, http.StatusConflict, code, body)

	code, body = fetch(t, http.MethodPost, page+"/resolve", url.Values{"actor": {"alice"}, "note": {"restarted <b>api</b>"}}, nil)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `<td id="status">resolved</td>`)
	require.NotContains(t, body, `/resolve">`, "no Resolve button on a resolved incident")
	require.Contains(t, body, `/postmortem-done">`)
	inc, err := a.Incidents.Get(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, incident.StatusResolved, inc.Status)

	code, body = fetch(t, http.MethodGet, srv.URL+"/incidents", nil, nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "No incidents.")

	code, body = fetch(t, http.MethodGet, srv.URL+"/incidents/INC-1999-0001", nil, nil)
	require.Equal(t, http.StatusNotFound, code)
	require.Contains(t, body, "INC-1999-0001")
}

// TestQueuedPageShownOnConsole: sred's webhook receiver refuses
// connections and its failing channel is paused for an hour. A second
// incident's page, due during the pause, is not tried; its console page
// and its timeline in the API end with the page queued behind the pause
// (the last error in fixed words), and its escalation status marks the
// page's record with the pause. Nothing is stored for it.
func TestQueuedPageShownOnConsole(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testQueuedPageShownOnConsole(t, backend) })
	}
}

func testQueuedPageShownOnConsole(t *testing.T, backend string) {
	// A port where nothing listens.
	refused := "http://127.0.0.1:" + strconv.Itoa(tu.FreePort(t)) + "/hook"
	a, srv := runEscalationApp(t, backend, fmt.Sprintf(`
escalation:
  policies:
    - name: all
      levels: [{after: 0m, users: [alice], channels: [webhook]}]
oncall:
  users: [{name: alice, email: alice@example.com}]
notifications:
  min_backoff: 1h
  max_backoff: 2h
  webhook: {url: %s, secret: s3cret}
`, refused))
	open := func(name string) string {
		labels := map[string]string{"alertname": name, "service": "api", "severity": "critical"}
		res, err := a.Incidents.Ingest(t.Context(), incident.Notification{Receiver: "sred", Status: "firing",
			GroupKey: `{}:{alertname="` + name + `"}`, CommonLabels: labels,
			Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: name, StartsAt: time.Now().Add(-time.Minute), Labels: labels}}})
		require.NoError(t, err)
		require.Len(t, res.Created, 1)
		return res.Created[0]
	}
	stored := func(id string) []incident.TimelineEntry {
		tl, err := a.Incidents.Timeline(t.Context(), id)
		require.NoError(t, err)
		var out []incident.TimelineEntry
		for _, e := range tl {
			if e.Kind == "notification" {
				out = append(out, e)
			}
		}
		return out
	}
	status := func(id string) []notify.Record {
		code, body := fetch(t, http.MethodGet, srv.URL+"/api/v1/escalation/incidents/"+id, nil, nil)
		require.Equal(t, http.StatusOK, code, body)
		var env struct {
			Data struct {
				Notices []notify.Record `json:"notifications"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &env))
		return env.Data.Notices
	}

	// The first page fails: the channel pauses for an hour.
	first := open("APIDown")
	waitFor(t, func() bool { return len(stored(first)) == 1 }, "the first page's failure was not recorded")
	require.Contains(t, stored(first)[0].Message, "failed (attempt 1), retrying in 1h0m0s")

	// The second incident's page falls due during the pause.
	second := open("DBDown")
	waitFor(t, func() bool { n := status(second); return len(n) == 1 && n[0].Queued != nil }, "the second page is not shown queued")
	n := status(second)[0]
	require.Equal(t, notify.StatePending, n.State)
	require.Zero(t, n.Attempts)
	require.Equal(t, "webhook", n.Queued.Channel)
	require.Equal(t, 1, n.Queued.Failures)
	require.Equal(t, "connection refused", n.Queued.LastError)
	require.Equal(t, time.Hour, n.Queued.NextProbe.Sub(n.Queued.PausedSince))
	require.Nil(t, status(first)[0].Queued, "backing off until the pause's end, not due")

	want := "Notification (trigger) by webhook queued, not sent yet: the webhook channel is paused since " +
		n.Queued.PausedSince.UTC().Format("2006-01-02 15:04:05 UTC") + " after 1 failure (last error: connection refused); next probe at " +
		n.Queued.NextProbe.UTC().Format("2006-01-02 15:04:05 UTC")
	code, body := fetch(t, http.MethodGet, srv.URL+"/incidents/"+second, nil, nil)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `<td class="msg">`+want+`</td>`)
	code, body = fetch(t, http.MethodGet, srv.URL+"/api/v1/incidents/"+second+"/timeline", nil, nil)
	require.Equal(t, http.StatusOK, code, body)
	var tl struct {
		Data []incident.TimelineEntry `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &tl))
	last := tl.Data[len(tl.Data)-1]
	require.Equal(t, want, last.Message)
	require.Zero(t, last.ID)
	require.Empty(t, stored(second), "nothing stored for the queued page")
}
