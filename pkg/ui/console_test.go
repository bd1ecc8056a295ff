package ui_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/ui"
)

const specTemplate = `
apiVersion: sre.rootuip.io/v1
kind: ServiceLevelObjectives
service: %[1]s
slos:
%[2]s`

const sloTemplate = `  - name: %[2]s
    objective: 99.9
    period: 30d
    sli:
      events:
        errorSelector: http_requests_total{job="%[1]s",code=~"5.."}
        totalSelector: http_requests_total{job="%[1]s"}
`

// specs returns services x perService SLOs.
func specs(t testing.TB, services, perService int) []*slo.Spec {
	t.Helper()
	var all []*slo.Spec
	for i := range services {
		name := fmt.Sprintf("svc%03d", i)
		var b strings.Builder
		for j := range perService {
			fmt.Fprintf(&b, sloTemplate, name, fmt.Sprintf("slo%02d", j))
		}
		sp, err := slo.Parse([]byte(fmt.Sprintf(specTemplate, name, b.String())), name+".yml")
		require.NoError(t, err)
		all = append(all, sp...)
	}
	return all
}

// principal serves h with the principal of the X-Test-Role header (none
// when absent), as the authentication middleware would.
func principal(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.Header.Get("X-Test-Role"); v != "" {
			role, ok := auth.ParseRole(v)
			if !ok {
				http.Error(w, "bad role", 400)
				return
			}
			r = r.WithContext(auth.NewContext(r.Context(), auth.Principal{Name: "alice-" + v, Role: role}))
		}
		h.ServeHTTP(w, r)
	})
}

type client struct {
	t    *testing.T
	base string
	role string
	c    *http.Client
}

func (c *client) do(method, path string, form url.Values) (int, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	require.NoError(c.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.role != "" {
		req.Header.Set("X-Test-Role", c.role)
	}
	resp, err := c.c.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp.StatusCode, string(b)
}

// TestHomeCountsSLOs: a service's summary on the home page counts its SLOs
// in words, "1 SLO" for one.
func TestHomeCountsSLOs(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations, budget.Migrations}, func(t *testing.T, db *store.DB) {
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		bs := budget.New(budget.Options{DB: db, Registerer: prometheus.NewRegistry()})
		mux := http.NewServeMux()
		ui.New(ui.Sources{Incidents: svc, Budgets: bs}, ui.Options{}).Register(mux)
		srv := httptest.NewServer(principal(mux))
		defer srv.Close()
		c := &client{t: t, base: srv.URL, role: "viewer", c: srv.Client()}
		for _, n := range []int{1, 2} {
			require.NoError(t, bs.Update(budget.DefaultConfig, specs(t, 1, n), nil, nil))
			code, body := c.do("GET", "/", nil)
			require.Equal(t, http.StatusOK, code, body)
			require.Contains(t, body, `<span class="muted">`+map[int]string{1: "1 SLO", 2: "2 SLOs"}[n]+`</span>`)
		}
	})
}

// TestConsole drives the console over the real incident service and a real
// budget service (configured SLOs, no Prometheus yet) on both backends:
// the home page groups SLOs by service and filters them, the incident
// buttons act and record the principal as the actor, viewers see no
// buttons and are refused, and a manual incident opens from the form.
func TestConsole(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations, budget.Migrations}, func(t *testing.T, db *store.DB) {
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		bs := budget.New(budget.Options{DB: db, Registerer: prometheus.NewRegistry()})
		require.NoError(t, bs.Update(budget.DefaultConfig, specs(t, 3, 2), nil, nil))
		mux := http.NewServeMux()
		ui.New(ui.Sources{Incidents: svc, Budgets: bs}, ui.Options{}).Register(mux)
		srv := httptest.NewServer(principal(mux))
		defer srv.Close()
		jar, _ := cookiejar.New(nil)
		noRedirect := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		responder := &client{t: t, base: srv.URL, role: "responder", c: noRedirect}
		viewer := &client{t: t, base: srv.URL, role: "viewer", c: noRedirect}
		anonymous := &client{t: t, base: srv.URL, c: noRedirect}

		lbls := map[string]string{"alertname": "Down", "service": "svc001", "severity": "critical"}
		res, err := svc.Ingest(t.Context(), incident.Notification{Receiver: "sred", Status: "firing", GroupKey: "{}:a", CommonLabels: lbls,
			Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "a", StartsAt: time.Now(), Labels: lbls}}})
		require.NoError(t, err)
		id := res.Created[0]

		code, body := responder.do("GET", "/", nil)
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, "6 of 6 SLOs in 3 services.")
		require.Contains(t, body, `data-slo="svc002/slo01"`)
		require.Contains(t, body, `href="/incidents/`+id+`"`)
		require.Contains(t, body, `<span class="gate gate-no-data" title="no SLO of the service has data yet">deploy: no data</span>`)
		require.Contains(t, body, `href="/incidents/new">Open incident</a>`)
		for _, nav := range []string{"Chaos", "Rollouts", "Scaling"} {
			require.Contains(t, body, `<span class="soon" title="not available yet">`+nav+`</span>`)
		}
		code, body = responder.do("GET", "/?q=SVC002", nil)
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, "2 of 6 SLOs in 1 service.")
		require.NotContains(t, body, `data-slo="svc001/`)
		code, body = responder.do("GET", "/?state=red", nil)
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, "0 of 6 SLOs in 0 services.")
		code, body = responder.do("GET", "/?state=purple", nil)
		require.Equal(t, http.StatusBadRequest, code)
		require.Contains(t, body, `unknown state &#34;purple&#34;`)
		code, body = responder.do("GET", "/slos/svc000/slo01", nil)
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, "Objective 99.9% over 30d")
		require.Contains(t, body, "Prometheus: ", "no Prometheus configured: said on the page")
		code, _ = responder.do("GET", "/slos/svc000/nope", nil)
		require.Equal(t, http.StatusNotFound, code)

		// A viewer sees the incident but no buttons, and is refused.
		code, body = viewer.do("GET", "/incidents/"+id, nil)
		require.Equal(t, http.StatusOK, code)
		require.NotContains(t, body, `id="actions"`)
		require.NotContains(t, body, "Open incident</a>")
		code, body = viewer.do("POST", "/incidents/"+id+"/ack", url.Values{})
		require.Equal(t, http.StatusForbidden, code)
		require.Contains(t, body, "needs the responder role")
		// Without a principal and without the no-auth mode: read only.
		code, _ = anonymous.do("POST", "/incidents/"+id+"/ack", url.Values{})
		require.Equal(t, http.StatusForbidden, code)
		inc, err := svc.Get(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, incident.StatusTriggered, inc.Status, "refused actions changed nothing")

		code, body = responder.do("GET", "/incidents/"+id, nil)
		require.Equal(t, http.StatusOK, code)
		for _, b := range []string{"ack", "investigate", "resolve", "note", "status-update"} {
			require.Contains(t, body, `id="`+b+`"`)
		}
		require.NotContains(t, body, `id="escalate"`, "no escalation engine: no button")

		steps := []struct {
			action string
			form   url.Values
			code   int
			want   string
		}{
			{"ack", url.Values{"actor": {"mallory"}}, http.StatusSeeOther, "done=acknowledged"},
			{"ack", url.Values{}, http.StatusConflict, "only a triggered incident can be acknowledged"},
			{"note", url.Values{"text": {"  "}}, http.StatusBadRequest, "the note is empty"},
			{"note", url.Values{"text": {"DB <failover> started"}}, http.StatusSeeOther, "done=noted"},
			// The limits of the service's actions hold on the forms.
			{"note", url.Values{"text": {strings.Repeat("A", 100000)}}, http.StatusBadRequest, "&#34;text&#34; longer than 25000 characters"},
			{"note", url.Values{"text": {strings.Repeat("é", incident.MaxNote+1)}}, http.StatusBadRequest, "&#34;text&#34; longer than 25000 characters"},
			{"investigate", url.Values{"assignee": {strings.Repeat("b", incident.MaxAssignee+1)}}, http.StatusBadRequest, "&#34;assignee&#34; longer than 200 characters"},
			{"status-update", url.Values{"impact": {strings.Repeat("A", 100000)}}, http.StatusBadRequest, "&#34;impact&#34; longer than 10000 characters"},
			{"status-update", url.Values{"public": {"on"}, "public_message": {strings.Repeat("A", incident.MaxPublicMessage+1)}}, http.StatusBadRequest,
				"&#34;public_message&#34; longer than 10000 characters"},
			{"resolve", url.Values{"note": {strings.Repeat("A", incident.MaxNote+1)}}, http.StatusBadRequest, "&#34;note&#34; longer than 25000 characters"},
			{"status-update", url.Values{"impact": {"checkout errors"}, "next_update": {"soon"}}, http.StatusBadRequest, "next update"},
			{"status-update", url.Values{"impact": {"checkout errors"}, "actions": {"failing over"}, "next_update": {"30m"}}, http.StatusSeeOther, "done=updated"},
			{"status-update", url.Values{"public_message": {"Checkout is slow"}}, http.StatusBadRequest, "public message: tick"},
			{"status-update", url.Values{"public": {"on"}, "public_message": {"Checkout is slow"}}, http.StatusSeeOther, "done=updated"},
			{"investigate", url.Values{"assignee": {"bob"}}, http.StatusSeeOther, "done=assigned"},
			{"snooze", url.Values{"duration": {"10s"}}, http.StatusBadRequest, "snooze duration must be between"},
			{"snooze", url.Values{"duration": {"1h"}}, http.StatusSeeOther, "done=snoozed"},
			{"escalate", url.Values{}, http.StatusBadRequest, "no escalation engine"},
			{"dance", url.Values{}, http.StatusNotFound, "unknown action"},
			{"resolve", url.Values{"note": {"failed over"}}, http.StatusSeeOther, "done=resolved"},
			{"postmortem-done", url.Values{}, http.StatusSeeOther, "done=closed"},
		}
		for _, s := range steps {
			req, err := http.NewRequest("POST", srv.URL+"/incidents/"+id+"/"+s.action, strings.NewReader(s.form.Encode()))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Test-Role", "responder")
			resp, err := noRedirect.Do(req)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, s.code, resp.StatusCode, "%s: %s", s.action, b)
			if s.code == http.StatusSeeOther {
				require.Contains(t, resp.Header.Get("Location"), s.want, s.action)
				// The page redirected to shows the action's banner.
				code, page := responder.do("GET", resp.Header.Get("Location"), nil)
				require.Equal(t, http.StatusOK, code)
				require.Contains(t, page, `<p class="done" role="status">`, "%s: no banner for %s", s.action, resp.Header.Get("Location"))
			} else {
				require.Contains(t, string(b), s.want, s.action)
			}
		}
		inc, err = svc.Get(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, incident.StatusPostmortemDone, inc.Status)
		require.Equal(t, "bob", inc.Assignee)
		require.Equal(t, "checkout errors", inc.Impact, "the refused impact was not stored")
		tl, err := svc.Timeline(t.Context(), id)
		require.NoError(t, err)
		for _, e := range tl {
			require.LessOrEqual(t, len(e.Message), 2*incident.MaxNote, "refused text was not stored: %s entry of %d bytes", e.Kind, len(e.Message))
		}
		actors := map[string]bool{}
		for _, e := range tl {
			actors[e.Actor] = true
		}
		require.True(t, actors["alice-responder"], "the principal is the actor")
		var public []string
		for _, e := range tl {
			if e.Kind == "status_update" && e.Data["public"] == true {
				public = append(public, e.Data["public_message"].(string))
			}
		}
		require.Equal(t, []string{"Checkout is slow"}, public, "one status update was posted as public")
		require.False(t, actors["mallory"], "the form's actor field does not override the principal")
		code, body = responder.do("GET", "/incidents/"+id, nil)
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, "DB &lt;failover&gt; started", "timeline text is escaped")

		// Action items: mark one done.
		item, err := svc.AddActionItem(t.Context(), id, "alice", incident.ActionItem{Title: "Alert on replication lag"})
		require.NoError(t, err)
		code, _ = responder.do("POST", fmt.Sprintf("/incidents/%s/action-items/%d/done", id, item.ID), url.Values{})
		require.Equal(t, http.StatusSeeOther, code)
		items, err := svc.ActionItems(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, incident.ActionDone, items[0].State)

		// Open an incident from the form.
		code, body = responder.do("POST", "/incidents", url.Values{"title": {""}, "service": {"svc000"}, "severity": {"HIGH"}})
		require.Equal(t, http.StatusBadRequest, code)
		require.Contains(t, body, `&#34;title&#34; must not be empty`)
		code, _ = viewer.do("POST", "/incidents", url.Values{"title": {"x"}, "service": {"svc000"}, "severity": {"HIGH"}})
		require.Equal(t, http.StatusForbidden, code)
		code, _ = responder.do("POST", "/incidents", url.Values{"title": {"Customers report slow checkout"}, "service": {"svc000"},
			"severity": {"HIGH"}, "description": {"via support"}})
		require.Equal(t, http.StatusSeeOther, code)
		page, err := svc.List(t.Context(), incident.Filter{Service: "svc000"})
		require.NoError(t, err)
		require.Len(t, page.Incidents, 1)
		require.Equal(t, "Customers report slow checkout", page.Incidents[0].Title)

		// The incident list filters and pages.
		code, body = responder.do("GET", "/incidents?status=all&service=svc000", nil)
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, "1–1 of 1")
		code, body = responder.do("GET", "/incidents?status=bogus", nil)
		require.Equal(t, http.StatusBadRequest, code)
		require.Contains(t, body, "unknown status")
		code, body = responder.do("GET", "/incidents?offset=-1", nil)
		require.Equal(t, http.StatusBadRequest, code)

		// Cross-origin posts are refused.
		req, _ := http.NewRequest("POST", srv.URL+"/incidents/"+id+"/note", strings.NewReader("text=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		req.Header.Set("X-Test-Role", "responder")
		resp, err := noRedirect.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusForbidden, resp.StatusCode)

		// Pages without their subsystem say so.
		code, body = responder.do("GET", "/oncall", nil)
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, "No on-call schedules configured.")
		code, body = responder.do("GET", "/runbooks", nil)
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, "No runbooks configured.")
		code, body = responder.do("GET", "/console/static/console.js", nil)
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, "EventSource")
		// Files only, never a listing of the directory, and nosniff.
		for _, path := range []string{"/console/static/", "/console/static"} {
			code, body = responder.do("GET", path, nil)
			require.NotEqual(t, http.StatusOK, code, path)
			require.NotContains(t, body, "console.js", path)
		}
		req, _ = http.NewRequest("GET", srv.URL+"/console/static/console.css", nil)
		req.Header.Set("X-Test-Role", "responder")
		resp, err = noRedirect.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
	})
}
