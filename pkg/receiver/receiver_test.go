package receiver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/secretfile"
	"github.com/rootuip/sre/pkg/store"
	tu "github.com/rootuip/sre/pkg/testutil"
)

var migrations = [][]store.Migration{incident.Migrations}

// epoch is the fixed time of the service under test.
var epoch = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

type env struct {
	db  *store.DB
	svc *incident.Service
	h   *Handler
	srv *httptest.Server
	reg *prometheus.Registry
}

func newEnv(t testing.TB, db *store.DB, opts Options) *env {
	t.Helper()
	reg := prometheus.NewRegistry()
	svc, err := incident.NewService(db, incident.DefaultOptions(), nil, events.NewBus(16, nil), nil, reg)
	require.NoError(t, err)
	svc.Clock = clock.NewManual(epoch)
	h := NewHandler(svc, opts, nil, reg)
	mux := http.NewServeMux()
	mux.Handle("POST "+Path, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{db: db, svc: svc, h: h, srv: srv, reg: reg}
}

// recorded loads a payload captured from Alertmanager (testdata/am-*.json).
func recorded(t *testing.T, name string) Message {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	var m Message
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

// shifted returns a copy of m whose alerts started (and ended) d later: the
// next episode of the same alerts.
func shifted(m Message, d time.Duration) Message {
	c := m
	c.Alerts = nil
	for _, a := range m.Alerts {
		a.StartsAt = a.StartsAt.Add(d)
		if !a.EndsAt.IsZero() && a.EndsAt.Year() > 1 {
			a.EndsAt = a.EndsAt.Add(d)
		}
		c.Alerts = append(c.Alerts, a)
	}
	return c
}

func (e *env) post(t *testing.T, body any, header ...string) (int, string) {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		var err error
		b, err = json.Marshal(v)
		require.NoError(t, err)
	}
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+Path, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(rb)
}

func (e *env) mustPost(t *testing.T, m Message) {
	t.Helper()
	code, body := e.post(t, m)
	require.Equal(t, http.StatusOK, code, body)
}

// snapshot dumps every incident table, so tests can compare whole states.
func snapshot(t *testing.T, db *store.DB) string {
	t.Helper()
	var sb strings.Builder
	for _, q := range []string{
		`SELECT * FROM incidents ORDER BY id`,
		`SELECT * FROM incident_alerts ORDER BY group_key, fingerprint, starts_at`,
		`SELECT * FROM incident_timeline ORDER BY id`,
		`SELECT * FROM alert_groups ORDER BY group_key`,
		`SELECT * FROM incident_seq ORDER BY year`,
	} {
		rows, err := db.Query(q)
		require.NoError(t, err)
		cols, _ := rows.Columns()
		fmt.Fprintln(&sb, q)
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(t, rows.Scan(ptrs...))
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				fmt.Fprintf(&sb, "%s=%v ", cols[i], v)
			}
			fmt.Fprintln(&sb)
		}
		require.NoError(t, rows.Err())
		rows.Close()
	}
	return sb.String()
}

func onlyIncident(t *testing.T, svc *incident.Service) *incident.Incident {
	t.Helper()
	page, err := svc.List(context.Background(), incident.Filter{})
	require.NoError(t, err)
	require.Len(t, page.Incidents, 1)
	inc, err := svc.Get(context.Background(), page.Incidents[0].ID)
	require.NoError(t, err)
	return inc
}

func kinds(t *testing.T, svc *incident.Service, id string) []string {
	t.Helper()
	tl, err := svc.Timeline(context.Background(), id)
	require.NoError(t, err)
	var out []string
	for _, e := range tl {
		out = append(out, e.Kind)
	}
	return out
}

func TestRecordedFiringThenResolved(t *testing.T) {
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{})
		firing, resolved := recorded(t, "am-firing.json"), recorded(t, "am-resolved.json")

		code, body := e.post(t, firing)
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, `"created":["INC-2026-0001"]`)
		inc := onlyIncident(t, e.svc)
		require.Equal(t, "INC-2026-0001", inc.ID)
		require.Equal(t, "API error rate above 5%", inc.Title)
		require.Equal(t, "api", inc.Service)
		require.Equal(t, incident.SeverityCritical, inc.Severity)
		require.Equal(t, incident.StatusTriggered, inc.Status)
		require.Equal(t, firing.GroupKey, inc.GroupKey)
		require.Equal(t, []string{"https://runbooks.example.com/api/high-error-rate"}, inc.RunbookURLs)
		require.Equal(t, firing.Alerts[0].StartsAt.UTC(), inc.DetectedAt)
		require.Equal(t, epoch, inc.CreatedAt)
		require.Len(t, inc.Alerts, 2)
		for _, a := range inc.Alerts {
			require.Equal(t, "firing", a.Status)
			require.Nil(t, a.EndsAt)
		}
		require.Equal(t, []string{"status", "alert_fired"}, kinds(t, e.svc, inc.ID))

		e.mustPost(t, resolved)
		inc = onlyIncident(t, e.svc)
		require.Equal(t, incident.StatusResolved, inc.Status)
		require.Equal(t, epoch, *inc.ResolvedAt)
		require.Equal(t, resolved.Alerts[0].EndsAt.UTC(), *inc.RecoveredAt)
		for _, a := range inc.Alerts {
			require.Equal(t, "resolved", a.Status)
		}
		require.Equal(t, []string{"status", "alert_fired", "alert_resolved", "status"}, kinds(t, e.svc, inc.ID))
		tl, err := e.svc.Timeline(context.Background(), inc.ID)
		require.NoError(t, err)
		require.Equal(t, `2 alerts fired: HighErrorRate{instance="api-0:8080", job="api", service="api", severity="critical"}, `+
			`HighErrorRate{instance="api-1:8080", job="api", service="api", severity="critical"}`, tl[1].Message)
		require.Len(t, tl[1].Data["alerts"], 2)
	})
}

func TestIdempotentDeliveries(t *testing.T) {
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		firing, resolved := recorded(t, "am-firing.json"), recorded(t, "am-resolved.json")
		e := newEnv(t, db, Options{})

		e.mustPost(t, firing)
		once := snapshot(t, db)
		e.mustPost(t, firing)
		require.Equal(t, once, snapshot(t, db), "the same delivery twice must leave the state of once")
		require.Equal(t, 1.0, testutil.ToFloat64(e.svc.Metrics().Duplicates))

		e.mustPost(t, resolved)
		both := snapshot(t, db)
		e.mustPost(t, resolved)
		e.mustPost(t, firing) // late retry of the firing notification
		require.Equal(t, both, snapshot(t, db))
		require.Equal(t, 2.0, testutil.ToFloat64(e.svc.Metrics().OutOfOrder))
	})
}

func TestConcurrentIdenticalDeliveries(t *testing.T) {
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		firing := recorded(t, "am-firing.json")
		// Reference state: one delivery on a fresh database of the same backend.
		ref := freshLike(t, db)
		newEnv(t, ref, Options{}).mustPost(t, firing)
		want := snapshot(t, ref)

		e := newEnv(t, db, Options{})
		var wg sync.WaitGroup
		codes := make([]int, 12)
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i], _ = e.post(t, firing)
			}()
		}
		wg.Wait()
		for _, c := range codes {
			require.Equal(t, http.StatusOK, c)
		}
		require.Equal(t, want, snapshot(t, db))
	})
}

// freshLike opens a new empty database of db's backend.
func freshLike(t *testing.T, db *store.DB) *store.DB {
	t.Helper()
	var fresh *store.DB
	var err error
	if db.Dialect == store.Postgres {
		fresh, err = store.OpenPostgres(context.Background(), tu.PostgresSchemaURL(t), store.PostgresOptions{})
	} else {
		fresh, err = store.OpenSQLite(context.Background(), t.TempDir())
	}
	require.NoError(t, err)
	t.Cleanup(func() { fresh.Close() })
	require.NoError(t, fresh.Migrate(context.Background(), migrations...))
	return fresh
}

func TestOutOfOrder(t *testing.T) {
	firing, resolved := recorded(t, "am-firing.json"), recorded(t, "am-resolved.json")
	// One alert resolved, the other still firing.
	partial := firing
	partial.Alerts = []Alert{resolved.Alerts[0], firing.Alerts[1]}

	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		t.Run("resolved before firing", func(t *testing.T) {
			db := freshLike(t, db)
			e := newEnv(t, db, Options{})
			e.mustPost(t, resolved)
			page, err := e.svc.List(context.Background(), incident.Filter{})
			require.NoError(t, err)
			require.Empty(t, page.Incidents, "a resolve with no incident opens none")
			require.Equal(t, 2.0, testutil.ToFloat64(e.svc.Metrics().Late))
			before := snapshot(t, db)
			e.mustPost(t, firing) // the delayed firing of the same episode
			require.Equal(t, before, snapshot(t, db), "a firing older than its resolve must not open an incident")
			require.Equal(t, 2.0, testutil.ToFloat64(e.svc.Metrics().OutOfOrder))
		})
		t.Run("older notification after newer", func(t *testing.T) {
			db := freshLike(t, db)
			e := newEnv(t, db, Options{})
			e.mustPost(t, firing)
			e.mustPost(t, partial)
			inc := onlyIncident(t, e.svc)
			require.Equal(t, incident.StatusTriggered, inc.Status)
			state := snapshot(t, db)
			e.mustPost(t, firing) // the first notification, redelivered late
			require.Equal(t, state, snapshot(t, db))
			e.mustPost(t, resolved)
			require.Equal(t, incident.StatusResolved, onlyIncident(t, e.svc).Status)
		})
		t.Run("any order gives the same state", func(t *testing.T) {
			a, b := freshLike(t, db), freshLike(t, db)
			ea, eb := newEnv(t, a, Options{}), newEnv(t, b, Options{})
			for _, m := range []Message{firing, partial, resolved} {
				ea.mustPost(t, m)
			}
			for _, m := range []Message{firing, resolved, partial, firing} {
				eb.mustPost(t, m)
			}
			// Timelines differ in order; the incident and its alerts do not.
			ia, ib := onlyIncident(t, ea.svc), onlyIncident(t, eb.svc)
			require.Equal(t, ia, ib)
		})
	})
}

func TestGroupKeyReuseAndFlapping(t *testing.T) {
	firing, resolved := recorded(t, "am-firing.json"), recorded(t, "am-resolved.json")
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		t.Run("new episode after the flap window is a new incident", func(t *testing.T) {
			e := newEnv(t, freshLike(t, db), Options{})
			e.mustPost(t, firing)
			e.mustPost(t, resolved)
			e.mustPost(t, shifted(firing, 3*time.Hour))
			page, err := e.svc.List(context.Background(), incident.Filter{})
			require.NoError(t, err)
			require.Len(t, page.Incidents, 2)
			require.Equal(t, "INC-2026-0002", page.Incidents[0].ID)
			require.Equal(t, incident.StatusTriggered, page.Incidents[0].Status)
			require.False(t, page.Incidents[0].Flapping)
			require.Equal(t, incident.StatusResolved, page.Incidents[1].Status)
			// The old episode's notifications stay with the old incident.
			e.mustPost(t, resolved)
			e.mustPost(t, firing)
			again, err := e.svc.List(context.Background(), incident.Filter{})
			require.NoError(t, err)
			require.Equal(t, page.Incidents, again.Incidents)
		})
		t.Run("firing again within the flap window re-opens", func(t *testing.T) {
			e := newEnv(t, freshLike(t, db), Options{})
			e.mustPost(t, firing)
			e.mustPost(t, resolved)
			e.mustPost(t, shifted(firing, 10*time.Minute))
			inc := onlyIncident(t, e.svc)
			require.Equal(t, incident.StatusTriggered, inc.Status)
			require.True(t, inc.Flapping)
			require.Nil(t, inc.ResolvedAt)
			require.Len(t, inc.Alerts, 4)
			tl := kinds(t, e.svc, inc.ID)
			require.Equal(t, []string{"status", "alert_fired", "alert_resolved", "status", "status", "alert_fired"}, tl)
			e.mustPost(t, shifted(resolved, 10*time.Minute))
			inc = onlyIncident(t, e.svc)
			require.Equal(t, incident.StatusResolved, inc.Status)
			require.True(t, inc.Flapping)
		})
	})
}

func TestBadInput(t *testing.T) {
	firing := recorded(t, "am-firing.json")
	mod := func(f func(m *Message)) Message {
		c := firing
		c.Alerts = append([]Alert(nil), firing.Alerts...)
		f(&c)
		return c
	}
	huge := mod(func(m *Message) {
		m.CommonAnnotations = map[string]string{"description": strings.Repeat("x", 70<<10)}
	})
	cases := []struct {
		name   string
		body   any
		header []string
		code   int
		msg    string
	}{
		{"malformed JSON", `{"version": "4", "alerts": [`, nil, 400, "invalid JSON body: unexpected end of JSON input"},
		{"not an object", `[1, 2]`, nil, 400, "invalid JSON body: want an object, got a list"},
		{"wrong type", `{"version": 4}`, nil, 400, "invalid JSON body: version: want a string, got a number"},
		{"unknown version", mod(func(m *Message) { m.Version = "3" }), nil, 400, `invalid webhook payload: unsupported payload version "3" (want "4")`},
		{"missing version", mod(func(m *Message) { m.Version = "" }), nil, 400, `invalid webhook payload: missing "version"`},
		{"missing groupKey", mod(func(m *Message) { m.GroupKey = "" }), nil, 400, `invalid webhook payload: missing "groupKey"`},
		// sred's own group keys: a delivery would join (and could resolve)
		// the Watchdog's, a manual or an exhausted budget's incident.
		{"the Watchdog's group key", mod(func(m *Message) { m.GroupKey = "sred:watchdog/Watchdog" }), nil, 400,
			`invalid webhook payload: "groupKey" starts with "sred:", which sred keeps for the incidents it opens itself`},
		{"a manual incident's group key", mod(func(m *Message) { m.GroupKey = "manual:INC-2026-0001" }), nil, 400,
			`invalid webhook payload: "groupKey" starts with "manual:", which sred keeps for the incidents it opens itself`},
		{"an exhausted budget's group key", mod(func(m *Message) { m.GroupKey = "budget-exhausted/api/availability" }), nil, 400,
			`invalid webhook payload: "groupKey" starts with "budget-exhausted/", which sred keeps for the incidents it opens itself`},
		{"bad status", mod(func(m *Message) { m.Status = "pending" }), nil, 400, `invalid webhook payload: invalid "status" "pending" (want firing or resolved)`},
		{"missing receiver", mod(func(m *Message) { m.Receiver = "" }), nil, 400, `invalid webhook payload: missing "receiver"`},
		{"no alerts", mod(func(m *Message) { m.Alerts = nil }), nil, 400, `invalid webhook payload: missing "alerts": a notification carries at least one alert`},
		{"missing fingerprint", mod(func(m *Message) { m.Alerts[1].Fingerprint = "" }), nil, 400, `invalid webhook payload: alerts[1]: missing "fingerprint"`},
		{"missing startsAt", mod(func(m *Message) { m.Alerts[0].StartsAt = time.Time{} }), nil, 400, `invalid webhook payload: alerts[0]: missing "startsAt"`},
		{"missing labels", mod(func(m *Message) { m.Alerts[0].Labels = nil }), nil, 400, `invalid webhook payload: alerts[0]: missing "labels"`},
		{"empty label name", mod(func(m *Message) { m.Alerts[0].Labels = map[string]string{"": "x"} }), nil, 400, `invalid webhook payload: alerts[0]: labels: invalid label name ""`},
		{"endsAt before startsAt", mod(func(m *Message) {
			m.Alerts[0].Status = "resolved"
			m.Alerts[0].EndsAt = m.Alerts[0].StartsAt.Add(-time.Minute)
		}), nil, 400, fmt.Sprintf(`invalid webhook payload: alerts[0]: "endsAt" %s is before "startsAt" %s`,
			firing.Alerts[0].StartsAt.Add(-time.Minute).Format(time.RFC3339), firing.Alerts[0].StartsAt.Format(time.RFC3339))},
		{"startsAt after 9999 UTC", mod(func(m *Message) {
			m.Alerts[1].StartsAt = time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("", -2*3600))
		}), nil, 400, `invalid webhook payload: alerts[1].startsAt: time 9999-12-31T23:00:00-02:00 is outside the years 1 to 9999 UTC`},
		{"endsAt before year 1 UTC", `{"version":"4","groupKey":"g","status":"firing","receiver":"sred","alerts":[{"status":"firing","labels":{"a":"b"},` +
			`"startsAt":"2026-11-27T03:34:23Z","endsAt":"0001-01-01T00:00:00+01:00","fingerprint":"f"}]}`, nil, 400,
			`invalid webhook payload: alerts[0].endsAt: time 0001-01-01T00:00:00+01:00 is outside the years 1 to 9999 UTC`},
		{"startsAt not a time", `{"version":"4","groupKey":"g","status":"firing","receiver":"sred","alerts":[{"status":"firing","labels":{"a":"b"},` +
			`"startsAt":"2026-11-27T03:34:23Z","fingerprint":"f"},{"status":"firing","labels":{"a":"c"},"startsAt":"yesterday","fingerprint":"g"}]}`, nil, 400,
			`invalid JSON body: alerts[1].startsAt: cannot parse "yesterday" as an RFC 3339 time (as 2026-12-05T10:00:00Z)`},
		{"endsAt in the year 10000", `{"version":"4","groupKey":"g","status":"resolved","receiver":"sred","alerts":[{"status":"resolved","labels":{"a":"b"},` +
			`"startsAt":"2026-11-27T03:34:23Z","endsAt":"10000-01-01T00:00:00Z","fingerprint":"f"}]}`, nil, 400,
			`invalid JSON body: alerts[0].endsAt: cannot parse "10000-01-01T00:00:00Z" as an RFC 3339 time (as 2026-12-05T10:00:00Z)`},
		{"invalid UTF-8 in a label value", "{\"version\":\"4\",\"groupKey\":\"g\",\"status\":\"firing\",\"receiver\":\"sred\",\"alerts\":[{\"status\":\"firing\",\"labels\":{\"a\":\"b\xff\"}," +
			`"startsAt":"2026-11-27T03:34:23Z","fingerprint":"f"}]}`, nil, 400,
			`invalid JSON body: body: invalid UTF-8 at byte offset 111`},
		{"NUL in a label value", mod(func(m *Message) { m.Alerts[0].Labels = map[string]string{"alertname": "a\x00b"} }), nil, 400,
			`invalid webhook payload: alerts[0].labels["alertname"]: NUL byte at offset 1`},
		{"NUL in an annotation", mod(func(m *Message) { m.CommonAnnotations = map[string]string{"summary": "\x00"} }), nil, 400,
			`invalid webhook payload: commonAnnotations["summary"]: NUL byte at offset 0`},
		{"NUL in the group key", mod(func(m *Message) { m.GroupKey = "{}:{a=\"\x00\"}" }), nil, 400,
			`invalid webhook payload: groupKey: NUL byte at offset 7`},
		{"label name too long", mod(func(m *Message) { m.Alerts[0].Labels = map[string]string{strings.Repeat("n", 257): "x"} }), nil, 400,
			`invalid webhook payload: alerts[0].labels: label name "` + strings.Repeat("n", 61) + `…" is longer than webhook.limits.max_label_name_bytes (256)`},
		// A value the delivery gave is quoted cut at 64 bytes with the
		// marker of the other answers (limits.Quote), never whole.
		{"label name of 5,000 bytes", mod(func(m *Message) { m.CommonLabels = map[string]string{strings.Repeat("n", 5000): "x"} }), nil, 400,
			`invalid webhook payload: commonLabels: label name "` + strings.Repeat("n", 61) + `…" is longer than webhook.limits.max_label_name_bytes (256)`},
		{"NUL in a label value of a 5,000-byte name", mod(func(m *Message) { m.Alerts[0].Labels = map[string]string{strings.Repeat("n", 5000): "\x00"} }), nil, 400,
			`invalid webhook payload: alerts[0].labels["` + strings.Repeat("n", 61) + `…"]: NUL byte at offset 0`},
		{"version of 5,000 bytes", mod(func(m *Message) { m.Version = strings.Repeat("n", 5000) }), nil, 400,
			`invalid webhook payload: unsupported payload version "` + strings.Repeat("n", 61) + `…" (want "4")`},
		{"status of 5,000 bytes", mod(func(m *Message) { m.Alerts[1].Status = strings.Repeat("n", 5000) }), nil, 400,
			`invalid webhook payload: alerts[1]: invalid "status" "` + strings.Repeat("n", 61) + `…" (want firing or resolved)`},
		{"too many labels", mod(func(m *Message) {
			ls := map[string]string{}
			for i := range 65 {
				ls[fmt.Sprintf("l%d", i)] = "x"
			}
			m.Alerts[1].Labels = ls
		}), nil, 400, `invalid webhook payload: alerts[1].labels: 65 labels, more than webhook.limits.max_labels_per_alert (64)`},
		// Alertmanager's fingerprint hashes the labels: two alerts with one
		// fingerprint and other labels were stored as one, the other lost.
		{"one fingerprint, other labels", mod(func(m *Message) {
			m.Alerts[1].Fingerprint, m.Alerts[1].StartsAt = m.Alerts[0].Fingerprint, m.Alerts[0].StartsAt
		}), nil, 400, fmt.Sprintf(`invalid webhook payload: alerts[1]: "fingerprint" %q is also that of alerts[0], whose labels differ (an alert's fingerprint identifies its labels)`, firing.Alerts[0].Fingerprint)},
		{"one fingerprint, other labels, in a large group", func() Message {
			m := mod(func(m *Message) {})
			a := m.Alerts[0]
			m.Alerts = nil
			for i := range pairwiseFingerprints + 1 {
				a.Labels = map[string]string{"alertname": "Many", "i": strconv.Itoa(i)}
				a.Fingerprint = fmt.Sprintf("%016x", i)
				m.Alerts = append(m.Alerts, a)
			}
			m.Alerts[pairwiseFingerprints].Fingerprint = m.Alerts[3].Fingerprint
			return m
		}(), nil, 400, fmt.Sprintf(`invalid webhook payload: alerts[%d]: "fingerprint" "0000000000000003" is also that of alerts[3], whose labels differ (an alert's fingerprint identifies its labels)`, pairwiseFingerprints)},
		// Prometheus sets startsAt from its clock: a time a day or more
		// after sred's became the incident's detection time and a
		// time to recover of thousands of years in the histograms.
		{"startsAt in the year 9999", mod(func(m *Message) {
			m.Alerts[1].StartsAt = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
		}), nil, 400, `invalid webhook payload: alerts[1]: "startsAt" 9999-12-31T23:59:59Z is more than 24 hours after sred's clock (2026-11-27T12:00:00Z): the clock of Prometheus or of sred is wrong`},
		{"startsAt a day and a second ahead", mod(func(m *Message) {
			m.Alerts[0].StartsAt = epoch.Add(MaxAheadOfClock + time.Second)
		}), nil, 400, `invalid webhook payload: alerts[0]: "startsAt" 2026-11-28T12:00:01Z is more than 24 hours after sred's clock (2026-11-27T12:00:00Z): the clock of Prometheus or of sred is wrong`},
		{"resolved alert ending years ahead", mod(func(m *Message) {
			m.Status, m.Alerts[0].Status, m.Alerts[0].EndsAt = "resolved", "resolved", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
		}), nil, 400, `invalid webhook payload: alerts[0]: "endsAt" 9999-01-01T00:00:00Z is more than 24 hours after sred's clock (2026-11-27T12:00:00Z): the clock of Prometheus or of sred is wrong`},
		// A start before 2000, before any Prometheus, added decades to
		// the detection histogram (sre_incident_detection_seconds).
		{"startsAt in 1970", mod(func(m *Message) {
			m.Alerts[1].StartsAt = time.Unix(0, 0)
		}), nil, 400, `invalid webhook payload: alerts[1]: "startsAt" 1970-01-01T00:00:00Z is before 2000-01-01T00:00:00Z, earlier than any Prometheus: the clock of Prometheus is wrong`},
		{"startsAt in the year 1", mod(func(m *Message) {
			m.Alerts[0].StartsAt = time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC)
		}), nil, 400, `invalid webhook payload: alerts[0]: "startsAt" 0001-01-01T00:00:01Z is before 2000-01-01T00:00:00Z, earlier than any Prometheus: the clock of Prometheus is wrong`},
		{"resolved alert starting a second before 2000", mod(func(m *Message) {
			m.Status, m.Alerts[0].Status = "resolved", "resolved"
			m.Alerts[0].StartsAt, m.Alerts[0].EndsAt = MinStartsAt.Add(-time.Second), epoch
		}), nil, 400, `invalid webhook payload: alerts[0]: "startsAt" 1999-12-31T23:59:59Z is before 2000-01-01T00:00:00Z, earlier than any Prometheus: the clock of Prometheus is wrong`},
		{"huge body", huge, nil, 413, "request body larger than 65536 bytes (webhook.max_body_bytes)"},
		{"no token", firing, []string{"Authorization", ""}, 401, "missing or wrong bearer token"},
		{"wrong token", firing, []string{"Authorization", "Bearer nope"}, 401, "missing or wrong bearer token"},
		{"wrong token of the same length", firing, []string{"Authorization", "Bearer s3creT"}, 401, "missing or wrong bearer token"},
		{"token and more", firing, []string{"Authorization", "Bearer s3cret2"}, 401, "missing or wrong bearer token"},
	}
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{MaxBodyBytes: 64 << 10, BearerToken: secretfile.Inline("s3cret")})
		e.h.Clock = clock.NewManual(epoch)
		auth := []string{"Authorization", "Bearer s3cret"}
		code, body := e.post(t, shifted(firing, -time.Hour), auth...) // existing data that must survive
		require.Equal(t, 200, code, body)
		// The scheme in another case (Alertmanager sends authorization.type
		// as written: "type: bearer") is the same credential.
		code, body = e.post(t, shifted(firing, -time.Hour), "Authorization", "bearer s3cret")
		require.Equal(t, 200, code, body)
		// So is the token after more than one space, as the API reads it.
		code, body = e.post(t, shifted(firing, -time.Hour), "Authorization", "Bearer   s3cret")
		require.Equal(t, 200, code, body)
		before := snapshot(t, db)
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				h := c.header
				if h == nil {
					h = auth
				}
				code, body := e.post(t, c.body, h...)
				require.Equal(t, c.code, code, body)
				var resp struct {
					Status string `json:"status"`
					Error  string `json:"error"`
				}
				require.NoError(t, json.Unmarshal([]byte(body), &resp))
				require.Equal(t, "error", resp.Status)
				require.Equal(t, c.msg, resp.Error)
				require.Equal(t, before, snapshot(t, db), "a rejected delivery must change nothing")
			})
		}
		// A clock up to a day ahead of sred's is taken as it is.
		ahead := shifted(firing, epoch.Add(MaxAheadOfClock).Sub(firing.Alerts[0].StartsAt))
		code, body = e.post(t, ahead, auth...)
		require.Equal(t, 200, code, body)
		// So is a start at 2000-01-01 itself, with Alertmanager's unset
		// endsAt of a firing alert, 0001-01-01T00:00:00Z.
		first := shifted(firing, MinStartsAt.Sub(firing.Alerts[0].StartsAt))
		first.GroupKey += ":2000"
		require.Equal(t, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), first.Alerts[0].EndsAt.UTC())
		code, body = e.post(t, first, auth...)
		require.Equal(t, 200, code, body)
	})
}

// TestWebhookLimits: over-long values are truncated and alerts beyond
// max_alerts_per_group left out (counted as truncated), on both backends;
// the delivery is stored, and each cut is counted.
func TestWebhookLimits(t *testing.T) {
	lim := limits.Webhook{MaxLabelNameBytes: 64, MaxLabelValueBytes: 32, MaxLabelsPerAlert: 16, MaxAnnotationValueBytes: 128, MaxAlertsPerGroup: 2}
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{Limits: lim})
		m := recorded(t, "am-firing.json")
		m.Alerts = append([]Alert(nil), m.Alerts...)
		third := m.Alerts[1]
		third.Fingerprint = "third"
		m.Alerts = append(m.Alerts, third)
		big := strings.Repeat("v", 4<<20-4096)
		m.Alerts[0].Labels = map[string]string{"alertname": "HighErrorRate", "service": "api", "pod": big}
		m.Alerts[0].Annotations = map[string]string{"description": strings.Repeat("é", 100)} // 200 bytes
		// The receiver's name was stored whole (3 MB on every incident of
		// the group, in every incident list): it is cut as a label value.
		m.Receiver = strings.Repeat("r", 100)
		code, body := e.post(t, m)
		require.Equal(t, http.StatusOK, code, body)

		inc := onlyIncident(t, e.svc)
		require.Len(t, inc.Alerts, 2, "alerts beyond max_alerts_per_group are left out")
		var pod, desc string
		for _, a := range inc.Alerts {
			require.NotEqual(t, "third", a.Fingerprint)
			if a.Fingerprint == m.Alerts[0].Fingerprint {
				pod, desc = a.Labels["pod"], a.Annotations["description"]
			}
		}
		require.Equal(t, strings.Repeat("v", 32-len(limits.TruncationMark))+limits.TruncationMark, pod)
		require.LessOrEqual(t, len(desc), 128)
		require.True(t, strings.HasSuffix(desc, limits.TruncationMark))
		require.NoError(t, limits.Text("description", desc), "cut on a UTF-8 boundary")

		require.Equal(t, 1.0, testutil.ToFloat64(e.h.limited.WithLabelValues("label_value")))
		require.Equal(t, 1.0, testutil.ToFloat64(e.h.limited.WithLabelValues("annotation_value")))
		require.Equal(t, 1.0, testutil.ToFloat64(e.h.limited.WithLabelValues("alerts_per_group")))
		require.Equal(t, strings.Repeat("r", 32-len(limits.TruncationMark))+limits.TruncationMark, inc.Receiver)
		require.Equal(t, 1.0, testutil.ToFloat64(e.h.limited.WithLabelValues("receiver")))
		var size int
		require.NoError(t, db.QueryRow(`SELECT SUM(LENGTH(labels)) FROM incident_alerts`).Scan(&size))
		require.Less(t, size, 4096, "the 4 MB label value is not stored")
	})
}

func TestStoreDownGives503(t *testing.T) {
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		own := freshLike(t, db)
		e := newEnv(t, own, Options{})
		require.NoError(t, own.Close())
		code, body := e.post(t, recorded(t, "am-firing.json"))
		require.Equal(t, http.StatusServiceUnavailable, code, body)
		require.Contains(t, body, "store the delivery")
	})
}

// TestReplicas runs two services (two sred replicas) on one database and
// delivers the same notifications to both concurrently, as Alertmanager HA
// peers do: each incident is created once, with distinct sequential IDs.
func TestReplicas(t *testing.T) {
	open := map[string]func(t *testing.T) (*store.DB, *store.DB){
		"postgres": func(t *testing.T) (*store.DB, *store.DB) {
			url := tu.PostgresSchemaURL(t)
			a, err := store.OpenPostgres(context.Background(), url, store.PostgresOptions{})
			require.NoError(t, err)
			b, err := store.OpenPostgres(context.Background(), url, store.PostgresOptions{})
			require.NoError(t, err)
			return a, b
		},
		"sqlite": func(t *testing.T) (*store.DB, *store.DB) {
			dir := t.TempDir()
			a, err := store.OpenSQLite(context.Background(), dir)
			require.NoError(t, err)
			b, err := store.OpenSQLite(context.Background(), dir)
			require.NoError(t, err)
			return a, b
		},
	}
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			a, b := open[backend](t)
			t.Cleanup(func() { a.Close(); b.Close() })
			var mwg sync.WaitGroup
			for _, db := range []*store.DB{a, b} {
				mwg.Add(1)
				go func() {
					defer mwg.Done()
					require.NoError(t, db.Migrate(context.Background(), migrations...))
				}()
			}
			mwg.Wait()
			r1, r2 := newEnv(t, a, Options{}), newEnv(t, b, Options{})
			firing, resolved := recorded(t, "am-firing.json"), recorded(t, "am-resolved.json")
			const groups = 20
			var msgs []Message
			for i := 0; i < groups; i++ {
				m := firing
				m.GroupKey = fmt.Sprintf(`{}:{alertname="HighErrorRate", service="svc%02d"}`, i)
				msgs = append(msgs, m)
				r := resolved
				r.GroupKey = m.GroupKey
				msgs = append(msgs, r)
			}
			var wg sync.WaitGroup
			for _, r := range []*env{r1, r2, r1, r2} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for _, m := range msgs {
						code, body := r.post(t, m)
						require.Equal(t, http.StatusOK, code, body)
					}
				}()
			}
			wg.Wait()
			page, err := r1.svc.List(context.Background(), incident.Filter{Limit: 1000})
			require.NoError(t, err)
			// Every sender posts a group's firing before its resolve, so each
			// group gets exactly one incident, and no ID is handed out twice.
			require.Len(t, page.Incidents, groups)
			perGroup := map[string]int{}
			ids := map[string]bool{}
			for _, inc := range page.Incidents {
				perGroup[inc.GroupKey]++
				require.False(t, ids[inc.ID])
				ids[inc.ID] = true
			}
			for g, n := range perGroup {
				require.Equal(t, 1, n, "group %s has %d incidents", g, n)
			}
			var maxSeq int
			require.NoError(t, a.QueryRow(`SELECT COALESCE(MAX(last), 0) FROM incident_seq`).Scan(&maxSeq))
			require.Equal(t, len(page.Incidents), maxSeq, "IDs are gap-free")
			var alerts int
			require.NoError(t, a.QueryRow(`SELECT COUNT(*) FROM incident_alerts`).Scan(&alerts))
			require.Equal(t, groups*2, alerts)
		})
	}
}

// TestLongGroupKey: Alertmanager's group key holds the route and every
// group-by label (`group_by: ['...']`: all of them), so it can be longer
// than PostgreSQL indexes (about 2.7 KB per B-tree entry). A long key is
// stored as its first bytes and a digest of the whole: the group opens one
// incident on both backends, a retry or an HA peer's copy lands on it, its
// resolve ends it, and a key that differs only past the cut is another
// group.
func TestLongGroupKey(t *testing.T) {
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{})
		var b strings.Builder
		for i := 0; b.Len() < 8000; i++ {
			fmt.Fprintf(&b, "%x", sha256.Sum256([]byte(strconv.Itoa(i)))) // incompressible
		}
		long := `{}/{}:{alertname="HighErrorRate", pod="` + b.String() + `"}`
		m := recorded(t, "am-firing.json")
		m.GroupKey = long
		for range 2 { // Alertmanager's retry, or its HA peer's copy
			code, body := e.post(t, m)
			require.Equal(t, http.StatusOK, code, body)
		}
		inc := onlyIncident(t, e.svc)
		require.LessOrEqual(t, len(inc.GroupKey), limits.MaxGroupKeyBytes)
		require.True(t, strings.HasPrefix(inc.GroupKey, long[:256]), inc.GroupKey)
		require.Equal(t, 2.0, testutil.ToFloat64(e.h.limited.WithLabelValues("group_key")), "each delivery counts")

		other := m
		other.GroupKey = long[:len(long)-3] + `x"}`
		code, body := e.post(t, other)
		require.Equal(t, http.StatusOK, code, body)
		page, err := e.svc.List(t.Context(), incident.Filter{})
		require.NoError(t, err)
		require.Equal(t, 2, page.Total, "a key that differs past the cut is another group")

		res := recorded(t, "am-resolved.json")
		res.GroupKey = long
		code, body = e.post(t, res)
		require.Equal(t, http.StatusOK, code, body)
		got, err := e.svc.Get(t.Context(), inc.ID)
		require.NoError(t, err)
		require.Equal(t, incident.StatusResolved, got.Status)
	})
}
