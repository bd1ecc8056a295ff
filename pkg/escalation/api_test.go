package escalation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/auth/authtest"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/oncall"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/ui"
	"github.com/rootuip/sre/pkg/web"
)

// apiRig is a rig behind a real HTTP server: the incidents API of the core
// and the escalation API mounted on one mux, as sred does.
type apiRig struct {
	*rig
	srv *httptest.Server
}

func newAPIRig(t *testing.T, db *store.DB) *apiRig {
	t.Helper()
	return newAPIRigWith(t, db, escalationYAML)
}

// newAPIRigWith is newAPIRig with the escalation section escYAML.
func newAPIRigWith(t *testing.T, db *store.DB, escYAML string) *apiRig {
	t.Helper()
	sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
	return newAPIRigNotify(t, db, escYAML, notifyConfig(t, sms, push, email, slack))
}

// newAPIRigNotify is newAPIRigWith with the notifications section ncfg.
func newAPIRigNotify(t *testing.T, db *store.DB, escYAML string, ncfg *notify.Config) *apiRig {
	t.Helper()
	r := newRig(t, db, clock.NewManual(t0), escYAML, ncfg)
	mux := http.NewServeMux()
	(&web.IncidentsAPI{Service: r.svc}).Register(mux)
	(&escalation.API{Engine: r.engine, Acks: r.svc}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &apiRig{rig: r, srv: srv}
}

type reply struct {
	Code        int
	ContentType string
	Header      http.Header
	Body        string
	Env         web.Response
}

func (a *apiRig) do(t *testing.T, method, path, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := reply{Code: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Header: resp.Header, Body: string(b)}
	if strings.HasPrefix(out.ContentType, "application/json") {
		require.NoError(t, json.Unmarshal(b, &out.Env), string(b))
	}
	return out
}

// requireAckHeaders checks the headers of the acknowledge page: those of
// the console's pages (no framing by another site, which could trick a
// click on the button; nosniff; not cached), and no referrer (the URL
// carries the token).
func requireAckHeaders(t *testing.T, got reply) {
	t.Helper()
	for name, want := range map[string]string{
		"Content-Security-Policy": web.PageCSP,
		"X-Content-Type-Options":  "nosniff",
		"Cache-Control":           "no-store",
		"Referrer-Policy":         "no-referrer",
	} {
		require.Equal(t, want, got.Header.Get(name), name)
	}
	require.Contains(t, got.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'")
	require.Contains(t, got.Header.Get("Content-Security-Policy"), "form-action 'self'", "the form posts to the page itself")
}

// requireError checks an error envelope: status code, type and exact message.
func requireError(t *testing.T, got reply, code int, typ, msg string) {
	t.Helper()
	require.Equal(t, code, got.Code, got.Body)
	require.Equal(t, "error", got.Env.Status, got.Body)
	require.Equal(t, typ, got.Env.ErrorType, got.Body)
	require.Equal(t, msg, got.Env.Error)
}

// snapshot is everything a bad request must leave alone: the escalation
// state with its pending timers and notifications, the incident's status and
// its timeline length.
func (a *apiRig) snapshot(t *testing.T, id string) string {
	t.Helper()
	st, err := a.engine.Get(context.Background(), id)
	require.NoError(t, err)
	inc, err := a.svc.Get(context.Background(), id)
	require.NoError(t, err)
	tl, err := a.svc.Timeline(context.Background(), id)
	require.NoError(t, err)
	b, err := json.Marshal(map[string]any{"escalation": st, "status": inc.Status, "timeline": len(tl)})
	require.NoError(t, err)
	return string(b)
}

// ackPath returns the path of the acknowledge link sent to user.
func (a *apiRig) ackPath(t *testing.T, id, user string) string {
	t.Helper()
	recs, err := notify.List(context.Background(), a.db, id)
	require.NoError(t, err)
	for _, rec := range recs {
		if rec.User == user && rec.Message.AckURL != "" {
			u, err := url.Parse(rec.Message.AckURL)
			require.NoError(t, err)
			require.Equal(t, "sred.example.com", u.Host)
			return u.Path
		}
	}
	t.Fatalf("no acknowledge link for %s on %s", user, id)
	return ""
}

func TestAPIStatusAndEscalate(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		// escalationYAML's policy, but for the batch service, which no
		// policy pages.
		a := newAPIRigWith(t, db, strings.Replace(escalationYAML, "  - name: default\n", "  - name: default\n    matchers: ['service!=\"batch\"']\n", 1))
		id := a.open(t, "critical")
		a.tick(t)

		got := a.do(t, "GET", "/api/v1/escalation/incidents/"+id, "")
		require.Equal(t, http.StatusOK, got.Code, got.Body)
		var st escalation.Status
		b, _ := json.Marshal(got.Env.Data)
		require.NoError(t, json.Unmarshal(b, &st))
		require.Equal(t, "default", st.Policy)
		require.Equal(t, escalation.StateActive, st.State)
		require.Equal(t, 0, st.Level)
		require.Equal(t, []escalation.PendingStep{
			{Kind: "step", Level: 1, At: t0.Add(15 * time.Minute)},
			{Kind: "handoff", Level: 0, At: time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)}, // the primary's next shift
		}, st.Pending)
		require.Len(t, st.Notices, 3)
		require.Len(t, st.Frozen.Levels, 4)

		requireError(t, a.do(t, "GET", "/api/v1/escalation/incidents/INC-1999-0001", ""),
			http.StatusNotFound, "not_found", `incident "INC-1999-0001" has no escalation`)

		// Bad bodies change nothing.
		before := a.snapshot(t, id)
		for _, tc := range []struct{ name, body, msg string }{
			{"malformed", `{"reason":`, "invalid JSON body: unexpected EOF"},
			{"not an object", `["x"]`, "invalid JSON body: want an object, got a list"},
			{"unknown field", `{"reason":"x","level":3}`, `invalid JSON body: json: unknown field "level"`},
			{"trailing data", `{"reason":"x"} {}`, "invalid JSON body: trailing data after the JSON value"},
			// The reason goes into every page of the level.
			{"reason too long", `{"reason":"` + strings.Repeat("é", 501) + `"}`, "reason: at most 500 characters, got 501"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				requireError(t, a.do(t, "POST", "/api/v1/escalation/incidents/"+id+"/escalate", tc.body), http.StatusBadRequest, "bad_data", tc.msg)
			})
		}
		// A body over 1 MiB is a 413 on every route that reads one.
		for _, path := range []string{"/api/v1/escalation/incidents/" + id + "/escalate", "/api/v1/escalation/maintenance", "/api/v1/escalation/simulate"} {
			t.Run("huge "+path, func(t *testing.T) {
				requireError(t, a.do(t, "POST", path, `{"reason":"`+strings.Repeat("x", web.MaxBody)+`"}`),
					http.StatusRequestEntityTooLarge, "bad_data", "request body larger than 1048576 bytes")
			})
		}
		require.Equal(t, before, a.snapshot(t, id))

		// Escalate now: level 1 is paged at once.
		got = a.do(t, "POST", "/api/v1/escalation/incidents/"+id+"/escalate", `{"reason":"customer report"}`)
		require.Equal(t, http.StatusAccepted, got.Code, got.Body)
		require.Equal(t, map[string]any{"incident_id": id}, got.Env.Data)
		a.tick(t)
		require.Equal(t, []string{`Escalated now (customer report): level 1 (policy "default"): paging carol via sms, phone (no push contact for carol); level 2 at 2026-03-02 10:45:00 UTC if not acknowledged`},
			a.timeline(t, id, "Escalated now"))

		// An incident no policy pages, a resolved one and an unknown one
		// have nothing to escalate: that changes nothing.
		batch := a.open(t, "critical", "service", "batch")
		got = a.do(t, "GET", "/api/v1/escalation/incidents/"+batch, "")
		require.Equal(t, http.StatusOK, got.Code, got.Body)
		require.Equal(t, escalation.StateNoPolicy, got.Env.Data.(map[string]any)["state"])
		got = a.do(t, "POST", "/api/v1/incidents/"+id+"/resolve", `{"actor":"carol"}`)
		require.Equal(t, http.StatusOK, got.Code, got.Body)
		for _, tc := range []struct {
			name, id string
			code     int
			typ, msg string
		}{
			{"no policy", batch, http.StatusConflict, "conflict", "escalate " + batch + " now: incident has no escalation to advance"},
			{"resolved", id, http.StatusConflict, "conflict", "escalate " + id + " now: incident has no escalation to advance"},
			{"unknown incident", "INC-1999-0001", http.StatusNotFound, "not_found", "escalate INC-1999-0001 now: incident has no escalation to advance: unknown incident"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before, beforeBatch := a.snapshot(t, id), a.snapshot(t, batch)
				requireError(t, a.do(t, "POST", "/api/v1/escalation/incidents/"+tc.id+"/escalate", `{}`), tc.code, tc.typ, tc.msg)
				require.Equal(t, before, a.snapshot(t, id))
				require.Equal(t, beforeBatch, a.snapshot(t, batch))
			})
		}
	})
}

// Escalate-now called several times at once pages the next level once:
// the call that escalated is answered 202, the others 409 naming the
// escalation in flight they were merged into. A call served once that
// escalation's step has paged, made before it did (here: at the same
// instant), is merged too; a later call escalates again.
func TestConcurrentEscalateNow(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		a := newAPIRig(t, db)
		id := a.open(t, "critical")
		a.tick(t)
		paged := len(a.paged(t, id))
		path := "/api/v1/escalation/incidents/" + id + "/escalate"

		const calls = 6
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			replies [calls]reply
			errs    [calls]error
		)
		for i := range calls {
			wg.Go(func() {
				<-start
				resp, err := http.Post(a.srv.URL+path, "application/json", strings.NewReader(fmt.Sprintf(`{"reason":"call %d"}`, i)))
				if err != nil {
					errs[i] = err
					return
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				replies[i], errs[i] = reply{Code: resp.StatusCode, Body: string(b)}, err
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, got := range replies {
			require.NoError(t, errs[i])
			require.NoError(t, json.Unmarshal([]byte(got.Body), &replies[i].Env), got.Body)
			got = replies[i]
			if got.Code == http.StatusAccepted {
				require.Equal(t, -1, winner, "two calls answered 202: %s", got.Body)
				require.Equal(t, map[string]any{"incident_id": id}, got.Env.Data)
				winner = i
			}
		}
		require.NotEqual(t, -1, winner, "no call escalated")
		for i, got := range replies {
			if i != winner {
				requireError(t, got, http.StatusConflict, "conflict", fmt.Sprintf(
					"escalate %s now: an escalation to level 1 (call %d, requested at 10:30:00.000 UTC) is already in flight; nobody else paged", id, winner))
			}
		}
		a.tick(t)
		require.Equal(t, []string{fmt.Sprintf(`Escalated now (call %d): level 1 (policy "default"): paging carol via sms, phone (no push contact for carol); level 2 at 2026-03-02 10:45:00 UTC if not acknowledged`, winner)},
			a.timeline(t, id, "Escalated now"))
		require.Len(t, a.paged(t, id), paged+2, "carol paged once by sms and phone")

		// Made at the instant the step paged level 1: merged into it.
		requireError(t, a.do(t, "POST", path, `{"reason":"late"}`), http.StatusConflict, "conflict", fmt.Sprintf(
			"escalate %s now: an escalation to level 1 (call %d, requested at 10:30:00.000 UTC) paged it while this call waited; nobody else paged", id, winner))
		// Later, escalate-now pages the next level again.
		a.clock.Advance(time.Second)
		got := a.do(t, "POST", path, `{"reason":"later"}`)
		require.Equal(t, http.StatusAccepted, got.Code, got.Body)
		// The console, a runbook, the end of a snooze (EscalateNow) are
		// merged into it without a word, and do not cancel its step.
		require.NoError(t, a.engine.EscalateNow(context.Background(), id, "snooze ended"))
		a.tick(t)
		require.Len(t, a.timeline(t, id, "Escalated now"), 2)
		require.Contains(t, a.timeline(t, id, "Escalated now")[1], "Escalated now (later): level 2")
	})
}

func TestAPIMaintenance(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		a := newAPIRig(t, db)
		list := func() []any {
			t.Helper()
			got := a.do(t, "GET", "/api/v1/escalation/maintenance", "")
			require.Equal(t, http.StatusOK, got.Code, got.Body)
			return got.Env.Data.([]any)
		}
		require.Equal(t, []any{}, list())

		for _, tc := range []struct{ name, body, msg string }{
			{"malformed", `{"name":"x"`, "invalid JSON body: unexpected EOF"},
			{"unknown field", `{"name":"x","matchers":["service=\"api\""],"duration":"1h","ends":"tomorrow"}`, `invalid JSON body: json: unknown field "ends"`},
			{"bad time", `{"name":"x","matchers":["service=\"api\""],"start":"monday"}`, `invalid JSON body: start: cannot parse "monday" as an RFC 3339 time (as 2026-12-05T10:00:00Z)`},
			{"no name", `{"matchers":["service=\"api\""],"duration":"1h"}`, "maintenance window without a name"},
			{"no matchers", `{"name":"x","duration":"1h"}`, `maintenance window "x": matchers are required`},
			{"bad matcher", `{"name":"x","matchers":["service=~\"(\""],"duration":"1h"}`, "maintenance window \"x\": matcher \"service=~\\\"(\\\"\": error parsing regexp: missing closing ): `^(?:()$`"},
			{"bad duration", `{"name":"x","matchers":["service=\"api\""],"duration":"an hour"}`, `invalid duration "an hour"`},
			{"negative duration", `{"name":"x","matchers":["service=\"api\""],"duration":"-1h"}`, `invalid duration "-1h"`},
			{"no end", `{"name":"x","matchers":["service=\"api\""]}`, `maintenance window "x": end or duration is required`},
			// The duration won over the end, without a word.
			{"end and duration", `{"name":"x","matchers":["service=\"api\""],"duration":"1h","end":"2026-03-02T14:00:00Z"}`, `maintenance window "x": end and duration both given: give one of them`},
			{"end before start", `{"name":"x","matchers":["service=\"api\""],"start":"2026-03-02T12:00:00Z","end":"2026-03-02T11:00:00Z"}`, `maintenance window "x": end must be after start`},
			// Stored to the millisecond, such a window ended where it
			// started, and listing the windows answered 500.
			{"shorter than a millisecond", `{"name":"x","matchers":["service=\"api\""],"start":"2026-03-02T12:00:00Z","end":"2026-03-02T12:00:00.000000001Z"}`,
				`maintenance window "x": end must be after start (times are kept to the millisecond)`},
			{"a duration under a millisecond", `{"name":"x","matchers":["service=\"api\""],"start":"2026-03-02T12:00:00.0004Z","duration":"500us"}`,
				`maintenance window "x": end must be after start (times are kept to the millisecond)`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				requireError(t, a.do(t, "POST", "/api/v1/escalation/maintenance", tc.body), http.StatusBadRequest, "bad_data", tc.msg)
			})
		}
		require.Equal(t, []any{}, list(), "no bad request stored a window")

		// A window starting now for an hour, and one in the future.
		got := a.do(t, "POST", "/api/v1/escalation/maintenance", `{"name":"db-upgrade","matchers":["service=\"api\""],"duration":"1h","by":"alice"}`)
		require.Equal(t, http.StatusCreated, got.Code, got.Body)
		require.Equal(t, map[string]any{"id": float64(1), "name": "db-upgrade", "matchers": []any{`service="api"`},
			"start": "2026-03-02T10:30:00Z", "end": "2026-03-02T11:30:00Z"}, got.Env.Data)
		got = a.do(t, "POST", "/api/v1/escalation/maintenance", `{"name":"later","matchers":["service=\"web\""],"start":"2026-03-09T22:00:00Z","end":"2026-03-10T02:00:00Z"}`)
		require.Equal(t, http.StatusCreated, got.Code, got.Body)
		require.Len(t, list(), 2)

		// The window is honoured by a new incident.
		id := a.open(t, "critical")
		a.tick(t)
		require.Empty(t, a.paged(t, id))

		requireError(t, a.do(t, "DELETE", "/api/v1/escalation/maintenance/abc", ""), http.StatusBadRequest, "bad_data", `invalid maintenance window id "abc"`)
		requireError(t, a.do(t, "DELETE", "/api/v1/escalation/maintenance/99", ""), http.StatusNotFound, "not_found", "no stored maintenance window 99")
		require.Len(t, list(), 2)
		got = a.do(t, "DELETE", "/api/v1/escalation/maintenance/1", "")
		require.Equal(t, http.StatusOK, got.Code, got.Body)
		require.Equal(t, map[string]any{"deleted": float64(1)}, got.Env.Data)
		ws := list()
		require.Len(t, ws, 1)
		require.Equal(t, "later", ws[0].(map[string]any)["name"])

		// One stored ending where it starts, as such a window was before
		// (in the future, so the list reads it): it covers nothing, and
		// the list and the simulation still answer.
		_, err := db.ExecContext(t.Context(), `INSERT INTO escalation_maintenance (name, matchers, starts_at, ends_at, created_by, created_at)
VALUES ('empty', '["service=\"api\""]', 1804075200000, 1804075200000, 'test', 1804075200000)`)
		require.NoError(t, err)
		ws = list()
		require.Len(t, ws, 1, "a window ending where it starts is left out")
		got = a.do(t, "POST", "/api/v1/escalation/simulate", `{"labels":{"service":"api","severity":"high"},"at":"2026-03-02T10:30:00Z"}`)
		require.Equal(t, http.StatusOK, got.Code, got.Body)
	})
}

func TestAPISimulate(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		a := newAPIRig(t, db)
		got := a.do(t, "POST", "/api/v1/escalation/simulate", `{"labels":{"service":"api","severity":"high"},"at":"2026-03-02T10:30:00Z"}`)
		require.Equal(t, http.StatusOK, got.Code, got.Body)
		var sim escalation.Simulation
		b, _ := json.Marshal(got.Env.Data)
		require.NoError(t, json.Unmarshal(b, &sim))
		require.Equal(t, "default", sim.Policy)
		require.Equal(t, "HIGH", sim.Severity)
		var steps []string
		for _, s := range sim.Steps {
			steps = append(steps, s.At.Format("15:04")+" "+strings.Join(s.Users, ","))
		}
		// HIGH escalates after 5 minutes; later levels keep their spacing.
		require.Equal(t, []string{"10:30 bob", "10:35 carol", "10:50 dave", "11:20 erin"}, steps)

		for _, tc := range []struct{ name, body, msg string }{
			{"malformed", `{"labels":`, "invalid JSON body: unexpected EOF"},
			// encoding/json reads null as nothing: a simulation with no labels.
			{"null", `null`, "invalid JSON body: want a JSON object, got null"},
			{"unknown field", `{"labels":{},"when":"now"}`, `invalid JSON body: json: unknown field "when"`},
			{"label not a string", `{"labels":{"service":1}}`, "invalid JSON body: labels.service: want a string, got a number"},
			{"bad severity", `{"labels":{"severity":"urgent"}}`, `unknown severity "urgent" (want one of CRITICAL, HIGH, MEDIUM, LOW)`},
			// Its steps would fall in the year 10000, which no answer can
			// encode (an empty 200 before).
			{"steps past the year 9999", `{"labels":{"service":"api","severity":"high"},"at":"9999-12-31T23:59:59Z"}`,
				`at 9999-12-31T23:59:59Z: the escalation's steps would fall after the year 9999: steps[1].at: time 10000-01-01T00:04:59Z is outside the years 1 to 9999 UTC`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				requireError(t, a.do(t, "POST", "/api/v1/escalation/simulate", tc.body), http.StatusBadRequest, "bad_data", tc.msg)
			})
		}
	})
}

func TestAckLink(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := newAPIRig(t, db)
		id := a.open(t, "critical")
		a.tick(t)
		path := a.ackPath(t, id, "bob")
		require.True(t, strings.HasPrefix(path, "/ack/"), path)
		before := a.snapshot(t, id)

		// GET shows a confirmation form and changes nothing (link scanners).
		got := a.do(t, "GET", path, "")
		require.Equal(t, http.StatusOK, got.Code, got.Body)
		require.Equal(t, "text/html; charset=utf-8", got.ContentType)
		require.Contains(t, got.Body, "<h1>Acknowledge incident "+id+"</h1>")
		// What is acknowledged: its title, severity, state and service.
		inc, err := a.svc.Get(ctx, id)
		require.NoError(t, err)
		require.Contains(t, got.Body, `<p class="title">`+inc.Title+`</p>`)
		require.Contains(t, got.Body, "<p>CRITICAL, triggered · service "+inc.Service+"</p>")
		require.Contains(t, got.Body, `<form method="post"><button type="submit">Acknowledge as bob</button></form>`)
		requireAckHeaders(t, got)
		require.Equal(t, before, a.snapshot(t, id))

		// Bad tokens: forged, truncated, signed with another key, garbage.
		tok := strings.TrimPrefix(path, "/ack/")
		payload, sig, _ := strings.Cut(tok, ".")
		otherKey, err := notify.SignAck("another-key", notify.AckClaims{IncidentID: id, User: "mallory", Expires: t0.Add(time.Hour).Unix()})
		require.NoError(t, err)
		for _, bad := range []string{payload + ".AAAA" + sig[4:], payload, otherKey, "garbage", strings.Repeat("a", 3000) + "." + sig} {
			for _, method := range []string{"GET", "POST"} {
				requireError(t, a.do(t, method, "/ack/"+bad, ""), http.StatusForbidden, "forbidden", "invalid acknowledge token")
			}
		}
		require.Equal(t, before, a.snapshot(t, id))

		// A valid token for an incident that does not exist.
		ghost, err := notify.SignAck("ack-key", notify.AckClaims{IncidentID: "INC-1999-0001", User: "bob", Expires: t0.Add(time.Hour).Unix()})
		require.NoError(t, err)
		requireError(t, a.do(t, "POST", "/ack/"+ghost, ""), http.StatusNotFound, "not_found", "incident not found: INC-1999-0001")
		requireError(t, a.do(t, "GET", "/ack/"+ghost, ""), http.StatusNotFound, "not_found", "incident not found: INC-1999-0001")

		// POST acknowledges as the user the link was sent to.
		got = a.do(t, "POST", path, "")
		require.Equal(t, http.StatusOK, got.Code, got.Body)
		require.Contains(t, got.Body, "<p>Acknowledged by bob.</p>")
		requireAckHeaders(t, got)
		inc, err = a.svc.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, incident.StatusAcknowledged, inc.Status)
		st, err := a.engine.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, escalation.StateAcknowledged, st.State)
		require.Equal(t, []string{"Escalation stopped: acknowledged by bob; re-escalates if not resolved within 30m0s"}, a.timeline(t, id, "Escalation stopped"))

		// Pressing the link again renews the acknowledgement.
		got = a.do(t, "POST", path, "")
		require.Equal(t, http.StatusOK, got.Code, got.Body)
		require.Equal(t, []string{"Acknowledgement renewed by bob; re-escalates if not resolved within 30m0s"}, a.timeline(t, id, "Acknowledgement renewed"))

		// Once resolved, the link refuses: nothing to acknowledge.
		_, err = a.svc.Resolve(ctx, id, "bob", "fixed")
		require.NoError(t, err)
		before = a.snapshot(t, id)
		requireError(t, a.do(t, "POST", path, ""), http.StatusConflict, "conflict",
			"cannot acknowledge incident "+id+": it is resolved, only a triggered incident can be acknowledged")
		require.Equal(t, before, a.snapshot(t, id))
	})
}

func TestAckLinkExpired(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		a := newAPIRig(t, db)
		id := a.open(t, "critical")
		a.tick(t)
		path := a.ackPath(t, id, "bob")
		// ack_link_ttl is 24h: one second before, the link still shows.
		a.clock.Advance(24*time.Hour - time.Second)
		require.Equal(t, http.StatusOK, a.do(t, "GET", path, "").Code)
		a.clock.Advance(time.Second)
		before := a.snapshot(t, id)
		for _, method := range []string{"GET", "POST"} {
			requireError(t, a.do(t, method, path, ""), http.StatusForbidden, "forbidden", "acknowledge token expired")
		}
		require.Equal(t, before, a.snapshot(t, id))
		inc, err := a.svc.Get(context.Background(), id)
		require.NoError(t, err)
		require.Equal(t, incident.StatusTriggered, inc.Status)
	})
}

// TestAckLinkErrorInBrowser: a responder opening a forged or expired
// link, or pressing the button once the incident resolved, reads the
// acknowledge page saying why, with the same status (the API's JSON error
// before); a client that does not ask for HTML still gets the JSON.
func TestAckLinkErrorInBrowser(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := newAPIRig(t, db)
		id := a.open(t, "critical")
		a.tick(t)
		path := a.ackPath(t, id, "bob")
		const accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
		requirePage := func(t *testing.T, got reply, code int, h1, msg string) {
			t.Helper()
			require.Equal(t, code, got.Code, got.Body)
			require.Equal(t, "text/html; charset=utf-8", got.ContentType)
			require.Contains(t, got.Body, "<h1>"+h1+"</h1>")
			require.Contains(t, got.Body, `<p class="error">`+template.HTMLEscapeString(msg)+`</p>`)
			require.Contains(t, got.Body, `<link rel="stylesheet" href="/ack/ack.css">`)
			require.NotContains(t, got.Body, "<form", "no button to press")
			requireAckHeaders(t, got)
		}
		for _, method := range []string{"GET", "POST"} {
			requirePage(t, a.doAccept(t, method, "/ack/garbage", accept), http.StatusForbidden, "Acknowledge link", "invalid acknowledge token")
		}
		requireError(t, a.do(t, "GET", "/ack/garbage", ""), http.StatusForbidden, "forbidden", "invalid acknowledge token")

		_, err := a.svc.Resolve(ctx, id, "alice", "fixed")
		require.NoError(t, err)
		requirePage(t, a.doAccept(t, "POST", path, accept), http.StatusConflict, "Acknowledge incident "+id,
			"cannot acknowledge incident "+id+": it is resolved, only a triggered incident can be acknowledged")

		a.clock.Advance(24 * time.Hour)
		for _, method := range []string{"GET", "POST"} {
			requirePage(t, a.doAccept(t, method, path, accept), http.StatusForbidden, "Acknowledge link", "acknowledge token expired")
		}
	})
}

// doAccept is do without a body, asking for accept as a browser does.
func (a *apiRig) doAccept(t *testing.T, method, path, accept string) reply {
	t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{Code: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Header: resp.Header, Body: string(b)}
}

// TestAckLinkKeyUnreadable: the acknowledge routes need no credentials, so
// while the signing key's file cannot be read they answer 503 naming the
// setting, never the error with the file's path (a 500 with "stat
// /etc/sred/secrets/ack_secret: no such file or directory" before), and
// so while it is empty; the links work again once the file is back.
func TestAckLinkKeyUnreadable(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
		ncfg := notifyConfig(t, sms, push, email, slack)
		dir := t.TempDir()
		secret := filepath.Join(dir, "ack_secret")
		require.NoError(t, os.WriteFile(secret, []byte("key-1\n"), 0o600))
		ncfg.AckSecret, ncfg.AckSecretFile = "", secret
		require.NoError(t, ncfg.Validate())
		a := newAPIRigNotify(t, db, escalationYAML, ncfg)
		id := a.open(t, "critical")
		a.tick(t)
		path := a.ackPath(t, id, "bob")
		require.NoError(t, os.Rename(secret, secret+".moved"))
		before := a.snapshot(t, id)
		for _, method := range []string{"GET", "POST"} {
			got := a.do(t, method, path, "")
			requireError(t, got, http.StatusServiceUnavailable, "unavailable", escalation.ErrAckKeyUnavailable.Error())
			require.NotContains(t, got.Body, dir)
		}
		require.Equal(t, before, a.snapshot(t, id))
		require.NoError(t, os.Rename(secret+".moved", secret))
		// An emptied file (a rotation half done) is not "no key" either: a
		// valid link was answered 403 "invalid acknowledge token".
		require.NoError(t, os.WriteFile(secret, []byte("\n"), 0o600))
		for _, method := range []string{"GET", "POST"} {
			got := a.do(t, method, path, "")
			requireError(t, got, http.StatusServiceUnavailable, "unavailable", escalation.ErrAckKeyUnavailable.Error())
		}
		require.Equal(t, before, a.snapshot(t, id))
		require.NoError(t, os.WriteFile(secret, []byte("key-1\n"), 0o600))
		got := a.do(t, "POST", path, "")
		require.Equal(t, http.StatusOK, got.Code, got.Body)
		require.Contains(t, got.Body, "<p>Acknowledged by bob.</p>")
	})
}

// TestAckLinkStoreError: the acknowledge routes need no credentials, so a
// store that refuses the acknowledgement answers 500 with a fixed text,
// never the store's error (which can name its host, a file path or SQL);
// nothing is acknowledged.
func TestAckLinkStoreError(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		a := newAPIRig(t, db)
		id := a.open(t, "critical")
		a.tick(t)
		path := a.ackPath(t, id, "bob")
		const cause = "could not write /var/lib/sred/sred.db"
		refuse := []string{`CREATE TRIGGER ack_refused BEFORE UPDATE ON incidents BEGIN SELECT RAISE(ABORT, '` + cause + `'); END`}
		if db.Dialect == store.Postgres {
			refuse = []string{
				`CREATE FUNCTION ack_refused() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION '` + cause + `'; END $$ LANGUAGE plpgsql`,
				`CREATE TRIGGER ack_refused BEFORE UPDATE ON incidents FOR EACH ROW EXECUTE FUNCTION ack_refused()`,
			}
		}
		for _, q := range refuse {
			_, err := db.Exec(q)
			require.NoError(t, err, q)
		}
		before := a.snapshot(t, id)
		got := a.do(t, "POST", path, "")
		requireError(t, got, http.StatusInternalServerError, "ack_failed", escalation.ErrAckFailed.Error())
		require.NotContains(t, got.Body, "sred.db")
		require.Equal(t, before, a.snapshot(t, id))
		inc, err := a.svc.Get(context.Background(), id)
		require.NoError(t, err)
		require.Equal(t, incident.StatusTriggered, inc.Status)
	})
}

// TestSimulateMatchesEngine: the API's dry run uses the overrides and
// maintenance windows stored at runtime, and plans exactly what the engine
// then does for a real incident.
func TestSimulateMatchesEngine(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		a := newAPIRig(t, db)
		// carol covers primary from 10:00 to 11:00; api is in maintenance 10:30-10:42.
		require.NoError(t, a.dir.ReplaceOverrides(ctx, "primary", t0.Add(-30*time.Minute), t0.Add(30*time.Minute),
			[]*oncall.Override{{User: "carol", Start: t0.Add(-30 * time.Minute), End: t0.Add(30 * time.Minute)}}, "bob", t0))
		got := a.do(t, "POST", "/api/v1/escalation/maintenance", `{"name":"deploy","matchers":["service=\"api\""],"start":"2026-03-02T10:30:00Z","duration":"12m"}`)
		require.Equal(t, http.StatusCreated, got.Code, got.Body)

		got = a.do(t, "POST", "/api/v1/escalation/simulate", `{"labels":{"alertname":"APIDown","service":"api","severity":"high"},"at":"2026-03-02T10:30:00Z"}`)
		require.Equal(t, http.StatusOK, got.Code, got.Body)
		var sim escalation.Simulation
		b, _ := json.Marshal(got.Env.Data)
		require.NoError(t, json.Unmarshal(b, &sim))
		require.False(t, sim.Offline)
		var planned []string
		for _, s := range sim.Steps {
			planned = append(planned, fmt.Sprintf("%s level %d %s", s.At.UTC().Format("15:04"), s.Level, strings.Join(s.Users, ",")))
		}
		require.Equal(t, []string{"10:42 level 0 carol", "10:47 level 1 carol", "11:02 level 2 dave", "11:32 level 3 erin"}, planned)
		require.Equal(t, []string{`maintenance window "deploy": deferred from 2026-03-02T10:30:00Z to its end`}, sim.Steps[0].Notes)

		// The offline dry run knows neither the override nor the window.
		off, err := escalation.Simulate(decode[escalation.Config](t, escalationYAML), a.dir.Config(), nil, map[string]string{"service": "api", "severity": "high"}, t0)
		require.NoError(t, err)
		require.True(t, off.Offline)
		require.Equal(t, t0, off.Steps[0].At)
		require.Equal(t, []string{"bob"}, off.Steps[0].Users)

		id := a.open(t, "high")
		for a.clock.Now().Before(t0.Add(2 * time.Hour)) {
			a.tick(t)
			a.clock.Advance(time.Minute)
		}
		tl, err := a.svc.Timeline(ctx, id)
		require.NoError(t, err)
		var done []string
		for _, e := range tl {
			if strings.HasPrefix(e.Message, "Escalation level") {
				users := e.Data["users"].([]any)
				var us []string
				for _, u := range users {
					us = append(us, u.(string))
				}
				done = append(done, fmt.Sprintf("%s level %v %s", e.Time.UTC().Format("15:04"), e.Data["level"], strings.Join(us, ",")))
			}
		}
		require.Equal(t, planned, done, "the engine did what the dry run planned")
	})
}

// TestAPIStoreFailure: a store that fails is a 500, never a 400 that would
// blame the request. (Escalating writes through the incident service's
// writer, whose own connection outlives the pool's Close.)
func TestAPIStoreFailure(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		a := newAPIRig(t, db)
		id := a.open(t, "critical")
		a.tick(t)
		require.NoError(t, db.Close())
		for _, tc := range []struct{ method, path, body string }{
			{"GET", "/api/v1/escalation/incidents/" + id, ""},
			{"GET", "/api/v1/escalation/maintenance", ""},
			{"POST", "/api/v1/escalation/maintenance", `{"name":"db-upgrade","matchers":["service=\"api\""],"duration":"1h"}`},
			{"DELETE", "/api/v1/escalation/maintenance/1", ""},
			{"POST", "/api/v1/escalation/simulate", `{"labels":{"service":"api","severity":"high"}}`},
		} {
			t.Run(tc.method+" "+tc.path, func(t *testing.T) {
				got := a.do(t, tc.method, tc.path, tc.body)
				require.Equal(t, http.StatusInternalServerError, got.Code, got.Body)
				require.Equal(t, "internal", got.Env.ErrorType, got.Body)
				require.Contains(t, got.Env.Error, "sql: database is closed")
			})
		}
	})
}

// TestMaintenanceWindowNames: a maintenance window's name, from the API or
// the configuration, is one line of at most 200 printable characters; a
// bad one is refused naming the name, and nothing is stored. Markup is
// printable and kept as text (pages escape it). A window stored before
// names were checked still lists and still silences.
func TestMaintenanceWindowNames(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		a := newAPIRig(t, db)
		list := func() []any {
			t.Helper()
			got := a.do(t, "GET", "/api/v1/escalation/maintenance", "")
			require.Equal(t, http.StatusOK, got.Code, got.Body)
			return got.Env.Data.([]any)
		}
		long := strings.Repeat("é", escalation.MaxMaintenanceNameLen+1)
		for _, tc := range []struct{ name, window, msg string }{
			{"newline", `db\nupgrade`, `maintenance window name "db\nupgrade": character U+000A at byte 2 is not printable (a name is a single line of printable characters)`},
			{"carriage return", `db\r`, `maintenance window name "db\r": character U+000D at byte 2 is not printable (a name is a single line of printable characters)`},
			{"tab", `db\tupgrade`, `maintenance window name "db\tupgrade": character U+0009 at byte 2 is not printable (a name is a single line of printable characters)`},
			{"line separator", `db\u2028upgrade`, `maintenance window name "db\u2028upgrade": character U+2028 at byte 2 is not printable (a name is a single line of printable characters)`},
			{"blank", `  `, "maintenance window without a name"},
			{"too long", long, fmt.Sprintf(`maintenance window name %.40q... is %d characters long: at most %d`, long, escalation.MaxMaintenanceNameLen+1, escalation.MaxMaintenanceNameLen)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				requireError(t, a.do(t, "POST", "/api/v1/escalation/maintenance", `{"name":"`+tc.window+`","matchers":["service=\"api\""],"duration":"1h"}`),
					http.StatusBadRequest, "bad_data", tc.msg)
			})
		}
		require.Equal(t, []any{}, list(), "no bad name stored a window")

		for i, name := range []string{`<b>DB</b> upgrade & "cache"`, "Wartung für die DB", strings.Repeat("x", escalation.MaxMaintenanceNameLen)} {
			b, err := json.Marshal(map[string]any{"name": name, "matchers": []string{fmt.Sprintf(`service="web%d"`, i)}, "duration": "1h"})
			require.NoError(t, err)
			got := a.do(t, "POST", "/api/v1/escalation/maintenance", string(b))
			require.Equal(t, http.StatusCreated, got.Code, got.Body)
			require.Equal(t, name, got.Env.Data.(map[string]any)["name"])
		}
		require.Len(t, list(), 3)

		// The configuration refuses the same names.
		for _, name := range []string{`"db\nupgrade"`, `"db\tupgrade"`} {
			var c escalation.Config
			err := yaml.Unmarshal([]byte("maintenance_windows:\n  - {name: "+name+`, matchers: ['service="api"'], start: 2026-03-02T10:00:00Z, end: 2026-03-02T11:00:00Z}`+"\n"), &c)
			require.ErrorContains(t, err, "line 2: escalation: maintenance_windows[0].name: maintenance window name ")
			require.ErrorContains(t, err, "is not printable (a name is a single line of printable characters)")
		}

		// A window an earlier version stored with a newline in its name
		// is kept, listed and honoured.
		_, err := db.ExecContext(context.Background(), `INSERT INTO escalation_maintenance (name, matchers, starts_at, ends_at, created_by, created_at)
VALUES ($1, $2, $3, $4, $5, $6)`, "db\nupgrade", `["service=\"api\""]`, jobs.Millis(t0), jobs.Millis(t0.Add(time.Hour)), "alice", jobs.Millis(t0))
		require.NoError(t, err)
		require.Len(t, list(), 4)
		id := a.open(t, "critical")
		a.tick(t)
		require.Empty(t, a.paged(t, id))
		require.Equal(t, []string{`Maintenance window "db\nupgrade" until 2026-03-02T11:30:00Z: not paging level 0`}, a.timeline(t, id, "Maintenance"))

		// The console shows a name with markup as text.
		web0 := a.open(t, "high", "service", "web0")
		a.tick(t)
		require.Empty(t, a.paged(t, web0))
		mux := http.NewServeMux()
		ui.New(ui.Sources{Incidents: a.svc}, ui.Options{AllowAnonymous: true}).Register(mux)
		console := httptest.NewServer(mux)
		defer console.Close()
		resp, err := http.Get(console.URL + "/incidents/" + web0)
		require.NoError(t, err)
		page, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(page))
		require.Contains(t, string(page), `Maintenance window &#34;&lt;b&gt;DB&lt;/b&gt; upgrade &amp; \&#34;cache\&#34;&#34; until 2026-03-02T11:30:00Z`)
		require.NotContains(t, string(page), "<b>DB</b>")
	})
}

// TestStatusPathsShownToAdminsOnly: a notification that failed on a
// channel's secret file that is not there keeps the file's path in its
// last error; the escalation status shows a viewer its base name only, an
// admin the whole path.
func TestStatusPathsShownToAdminsOnly(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		const secret = "/nonexistent/sred-test/secrets/sms-token"
		ncfg := notifyConfig(t, newSink(t), newSink(t), newSink(t), newSink(t))
		ncfg.SMS.BearerTokenFile = secret
		require.NoError(t, ncfg.Validate())
		a := newAPIRigNotify(t, db, escalationYAML, ncfg)
		id := a.open(t, "critical")
		a.tick(t)
		st, err := a.engine.Get(context.Background(), id)
		require.NoError(t, err)
		require.Contains(t, fmt.Sprint(st.Notices), secret, "the store keeps the whole path")

		mux := http.NewServeMux()
		(&escalation.API{Engine: a.engine, Acks: a.svc}).Register(mux)
		get := func(role auth.Role) string {
			rec := httptest.NewRecorder()
			r := httptest.NewRequest("GET", "/api/v1/escalation/incidents/"+id, nil)
			mux.ServeHTTP(rec, r.WithContext(auth.NewContext(r.Context(), auth.Principal{Name: "u", Role: role})))
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			return rec.Body.String()
		}
		require.Contains(t, get(auth.RoleAdmin), secret)
		for _, role := range []auth.Role{auth.RoleViewer, auth.RoleResponder} {
			body := get(role)
			require.NotContains(t, body, "/nonexistent/", role.String())
			require.Contains(t, body, "sms-token", role.String())
		}
	})
}

// TestEscalateNowNamesWhoEscalated: the reason of an escalate-now is shown
// as sred's text in the timeline and in every page ("Escalated now
// (<reason>)"), so it is recorded after the authenticated user who
// escalated: a responder writing the reason a runbook or the console
// writes ("runbook restart-api: verification failed", "escalated from the
// console by the-boss") is named first. Before, the reason was recorded
// as written, and the responder passed for the runbook or the boss.
func TestEscalateNowNamesWhoEscalated(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		r := newRig(t, db, clock.NewManual(t0), escalationYAML, notifyConfig(t, newSink(t), newSink(t), newSink(t), newSink(t)))
		mux := http.NewServeMux()
		(&web.IncidentsAPI{Service: r.svc}).Register(mux)
		(&escalation.API{Engine: r.engine, Acks: r.svc}).Register(mux)
		srv := authtest.Serve(t, mux)
		for _, c := range []struct{ body, want string }{
			{`{"reason":"runbook restart-api: verification failed"}`, `Escalated now (by rita: runbook restart-api: verification failed): level 1 (policy "default"): paging carol`},
			{`{"reason":"escalated from the console by the-boss"}`, `Escalated now (by rita: escalated from the console by the-boss): level 1 (policy "default"): paging carol`},
			{`{}`, `Escalated now (by rita): level 1 (policy "default"): paging carol`},
		} {
			id := r.open(t, "critical", "case", c.body)
			r.tick(t)
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/escalation/incidents/"+id+"/escalate", strings.NewReader(c.body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+authtest.Responder)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, http.StatusAccepted, resp.StatusCode, string(b))
			r.tick(t)
			got := r.timeline(t, id, "Escalated now")
			require.Len(t, got, 1)
			require.True(t, strings.HasPrefix(got[0], c.want), "%s\nwant it to start with\n%s", got[0], c.want)
		}
	})
}
