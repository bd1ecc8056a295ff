package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/secretfile"
	"github.com/rootuip/sre/pkg/store"
	tu "github.com/rootuip/sre/pkg/testutil"
)

func heartbeat() []incident.NotifiedAlert {
	return []incident.NotifiedAlert{{Status: "firing", Labels: map[string]string{"alertname": "Watchdog", "severity": "none"},
		StartsAt: time.Now(), Fingerprint: "w"}}
}

// TestWatchdogGap drives the Watchdog with a controllable clock: a gap
// longer than the timeout opens one CRITICAL incident (also when a second
// replica checks), and the heartbeat's return resolves it.
func TestWatchdogGap(t *testing.T) {
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		c := clock.NewManual(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
		w := e.watchdog
		w.Clock = c
		replica := NewWatchdog(db, e.svc, w.Options(), nil, NewMetrics(nil))
		replica.Clock = c

		id, err := w.Check(ctx) // sred's start counts as a heartbeat
		require.NoError(t, err)
		require.Empty(t, id)
		c.Advance(time.Minute)
		seen, err := w.Observe(ctx, heartbeat())
		require.NoError(t, err)
		require.True(t, seen)
		seen, err = w.Observe(ctx, []incident.NotifiedAlert{{Status: "firing", Labels: map[string]string{"alertname": "Other"}}})
		require.NoError(t, err)
		require.False(t, seen)

		c.Advance(4*time.Minute + 59*time.Second) // 10:05:59, last heartbeat 10:01
		id, err = w.Check(ctx)
		require.NoError(t, err)
		require.Empty(t, id)

		c.Advance(time.Second) // 10:06:00: timeout reached
		id, err = w.Check(ctx)
		require.NoError(t, err)
		require.NotEmpty(t, id)
		id2, err := replica.Check(ctx)
		require.NoError(t, err)
		require.Equal(t, id, id2)
		id3, err := w.Check(ctx)
		require.NoError(t, err)
		require.Equal(t, id, id3)

		page, err := e.svc.List(ctx, incident.Filter{WithAlerts: true})
		require.NoError(t, err)
		require.Equal(t, 1, page.Total, "one incident, however many checks and replicas")
		inc := page.Incidents[0]
		require.Equal(t, incident.SeverityCritical, inc.Severity)
		require.Equal(t, incident.StatusTriggered, inc.Status)
		require.Equal(t, "Alerting pipeline broken: no Watchdog heartbeat for 5m", inc.Title)
		require.Equal(t, "alerting-pipeline", inc.Service)
		require.Equal(t, time.Date(2026, 3, 1, 10, 6, 0, 0, time.UTC), inc.DetectedAt)
		require.Len(t, inc.Alerts, 1)
		require.Equal(t, PipelineBrokenAlertname, inc.Alerts[0].Labels["alertname"])
		require.True(t, contains(timelineKinds(t, e.svc, id)["watchdog"], "no Watchdog heartbeat since 2026-03-01T10:01:00Z (timeout 5m)"))

		// The heartbeat returns: the incident resolves.
		c.Advance(3 * time.Minute)
		seen, err = w.Observe(ctx, heartbeat())
		require.NoError(t, err)
		require.True(t, seen)
		got, err := e.svc.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, incident.StatusResolved, got.Status)
		require.Equal(t, time.Date(2026, 3, 1, 10, 9, 0, 0, time.UTC), *got.RecoveredAt)
		require.True(t, contains(timelineKinds(t, e.svc, id)["watchdog"], "Watchdog heartbeat received again (webhook)"))
		id, err = w.Check(ctx)
		require.NoError(t, err)
		require.Empty(t, id)
	})
}

// TestWatchdogAutoResolveOff: the Watchdog closes its own incident even
// when resolved alerts do not resolve incidents.
func TestWatchdogAutoResolveOff(t *testing.T) {
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		o := e.svc.Options()
		o.AutoResolve = false
		require.NoError(t, e.svc.SetOptions(o))
		c := clock.NewManual(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
		e.watchdog.Clock = c
		_, err := e.watchdog.Check(ctx)
		require.NoError(t, err)
		c.Advance(6 * time.Minute)
		id, err := e.watchdog.Check(ctx)
		require.NoError(t, err)
		require.NotEmpty(t, id)
		require.NoError(t, e.watchdog.Heartbeat(ctx, c.Now(), "poll"))
		got, err := e.svc.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, incident.StatusResolved, got.Status)
	})
}

// TestWatchdogThroughAlertmanager: a real Alertmanager delivers the
// Watchdog alert to sred's Watchdog webhook, and reconciliation polls find
// it too; both count as heartbeats and neither opens an incident.
func TestWatchdogThroughAlertmanager(t *testing.T) {
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		am := startAlertmanager(t, e.srv.URL)
		start := time.Now().UTC().Add(-time.Minute)
		postAlerts(t, am.URL, amAlert{Labels: map[string]string{"alertname": "Watchdog", "severity": "none"},
			StartsAt: start, EndsAt: start.Add(time.Hour)})
		require.Eventually(t, func() bool {
			var n int
			_ = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM reconcile_watchdog WHERE alertname = 'Watchdog' AND source = 'webhook'`).Scan(&n)
			return n == 1
		}, 20*time.Second, 100*time.Millisecond, "the Watchdog delivery did not reach sred")

		r := NewReconciler(newClient(t, am.URL), e.svc, e.watchdog, Options{}, nil, e.m)
		res, err := r.Reconcile(ctx)
		require.NoError(t, err)
		require.True(t, res.Heartbeat)
		var source string
		require.NoError(t, db.QueryRowContext(ctx, `SELECT source FROM reconcile_watchdog WHERE alertname = 'Watchdog'`).Scan(&source))
		require.Equal(t, "poll", source)
		page, err := e.svc.List(ctx, incident.Filter{})
		require.NoError(t, err)
		require.Zero(t, page.Total)
	})
}

func TestWatchdogWebhookErrors(t *testing.T) {
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		h := NewWatchdogHandler(e.watchdog, WebhookOptions{BearerToken: secretfile.Inline("s3cret"), MaxBodyBytes: 512})
		e.watchdog.Clock = clock.NewManual(time.Date(2026, 3, 1, 10, 5, 0, 0, time.UTC))
		// The main webhook's rule: a time a day or more after sred's
		// clock is refused (receiver.AheadOfClock), with the same words.
		ahead := `{"version":"4","groupKey":"{}:{}","status":"firing","receiver":"w","alerts":[{"status":"firing",
			"labels":{"alertname":"Watchdog"},"startsAt":"9999-12-31T23:59:59Z","fingerprint":"ab"}]}`
		// And a start before 2000 (receiver.BeforeMinStartsAt).
		early := `{"version":"4","groupKey":"{}:{}","status":"firing","receiver":"w","alerts":[{"status":"firing",
			"labels":{"alertname":"Watchdog"},"startsAt":"1970-01-01T00:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"ab"}]}`
		good := `{"version":"4","groupKey":"{}:{}","status":"firing","receiver":"w","alerts":[{"status":"firing",
			"labels":{"alertname":"Watchdog"},"startsAt":"2026-03-01T10:00:00Z","fingerprint":"ab"}]}`
		for _, tc := range []struct {
			name, token, body string
			code              int
			err               string
		}{
			{"no token", "", good, 401, "missing or wrong bearer token"},
			{"wrong token", "nope", good, 401, "missing or wrong bearer token"},
			{"bad json", "s3cret", `{"version":`, 400, "invalid JSON body: unexpected end of JSON input"},
			{"bad version", "s3cret", `{"version":"3"}`, 400, `invalid webhook payload: unsupported payload version "3" (want "4")`},
			{"startsAt in the year 9999", "s3cret", ahead, 400, `invalid webhook payload: alerts[0]: "startsAt" 9999-12-31T23:59:59Z is more than 24 hours after sred's clock (2026-03-01T10:05:00Z): the clock of Prometheus or of sred is wrong`},
			{"startsAt in 1970", "s3cret", early, 400, `invalid webhook payload: alerts[0]: "startsAt" 1970-01-01T00:00:00Z is before 2000-01-01T00:00:00Z, earlier than any Prometheus: the clock of Prometheus is wrong`},
			{"too big", "s3cret", `{"version":"4","x":"` + strings.Repeat("a", 600) + `"}`, 413, "request body larger than 512 bytes (webhook.max_body_bytes)"},
			{"ok", "s3cret", good, 200, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodPost, WatchdogPath, bytes.NewReader([]byte(tc.body)))
				if tc.token != "" {
					req.Header.Set("Authorization", "Bearer "+tc.token)
				}
				rec := &recorder{header: http.Header{}}
				h.ServeHTTP(rec, req)
				require.Equal(t, tc.code, rec.code, rec.body.String())
				var out struct {
					Status string
					Error  string
					Data   map[string]any
				}
				require.NoError(t, json.Unmarshal(rec.body.Bytes(), &out))
				if tc.err != "" {
					require.Equal(t, tc.err, out.Error)
				} else {
					require.Equal(t, map[string]any{"heartbeat": true}, out.Data)
				}
			})
		}
	})
}

type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(c int)           { r.code = c }

var _ io.Writer = (*recorder)(nil)

// TestWatchdogHeartbeatBackOnReplicas: two sred replicas (two pools on one
// PostgreSQL schema) get the heartbeat that ends an outage at once, as
// every Alertmanager peer delivers it to every replica. The incident
// resolves and its timeline says once that the heartbeat is back, with
// the gap it ended. Each replica may read the outage before the other
// clears it: the second read is replayed deterministically by putting the
// outage back as the first replica read it, then all of them race.
func TestWatchdogHeartbeatBackOnReplicas(t *testing.T) {
	ctx := context.Background()
	dbA, dbB, _, _ := tu.PostgresReplicas(t, "sred-watchdog", migrations...)
	a, b := newEnv(t, dbA), newEnv(t, dbB)
	c := clock.NewManual(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	a.watchdog.Clock, b.watchdog.Clock = c, c

	_, err := a.watchdog.Check(ctx) // sred's start counts as a heartbeat
	require.NoError(t, err)
	c.Advance(6 * time.Minute)
	id, err := a.watchdog.Check(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, id)
	id2, err := b.watchdog.Check(ctx)
	require.NoError(t, err)
	require.Equal(t, id, id2)
	var outage int64
	require.NoError(t, dbA.QueryRowContext(ctx, `SELECT outage_starts FROM reconcile_watchdog WHERE alertname = 'Watchdog'`).Scan(&outage))

	// Replica A applies the heartbeat; replica B read the outage before A
	// cleared it.
	c.Advance(time.Minute)
	seen, err := a.watchdog.Observe(ctx, heartbeat())
	require.NoError(t, err)
	require.True(t, seen)
	_, err = dbB.ExecContext(ctx, `UPDATE reconcile_watchdog SET outage_starts = $1, incident_id = $2 WHERE alertname = 'Watchdog'`, outage, id)
	require.NoError(t, err)
	seen, err = b.watchdog.Observe(ctx, heartbeat())
	require.NoError(t, err)
	require.True(t, seen)

	// And the same heartbeat delivered to both replicas at once, twice each.
	_, err = dbB.ExecContext(ctx, `UPDATE reconcile_watchdog SET outage_starts = $1, incident_id = $2 WHERE alertname = 'Watchdog'`, outage, id)
	require.NoError(t, err)
	errs := make(chan error, 4)
	for _, w := range []*Watchdog{a.watchdog, b.watchdog, a.watchdog, b.watchdog} {
		go func() {
			_, err := w.Observe(ctx, heartbeat())
			errs <- err
		}()
	}
	for range 4 {
		require.NoError(t, <-errs)
	}

	got, err := a.svc.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, incident.StatusResolved, got.Status)
	var back []string
	for _, e := range timelineKinds(t, b.svc, id)["watchdog"] {
		if strings.Contains(e.Message, "heartbeat received again") {
			back = append(back, e.Message)
		}
	}
	require.Equal(t, []string{"Watchdog heartbeat received again (webhook) after a gap since 2026-03-01T10:00:00Z"}, back,
		"the heartbeat's return is recorded once, with the gap it ended")
	var open int64
	require.NoError(t, dbB.QueryRowContext(ctx, `SELECT COUNT(*) FROM reconcile_watchdog WHERE outage_starts IS NOT NULL`).Scan(&open))
	require.Zero(t, open, "the outage is over")
}
