package main

import (
	"bufio"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/testutil"
)

// metricValue returns the value of the sample named exactly series (name
// and labels as /metrics prints them) in a /metrics body, 0 if absent.
func metricValue(body, series string) float64 {
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// retryAlertmanager starts the pinned Alertmanager sending every alert to
// sred's webhook with its bearer token, and posts one firing alert to it.
func retryAlertmanager(t *testing.T, sredURL string) {
	t.Helper()
	am := testutil.StartAlertmanager(t, testutil.AlertmanagerOptions{Config: fmt.Sprintf(`
route:
  receiver: sred
  group_by: [alertname, service]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: sred
    webhook_configs:
      - url: %s/api/v1/webhook/alertmanager
        send_resolved: true
        http_config:
          authorization:
            credentials: s3cret
`, sredURL)})
	body := fmt.Sprintf(`[{"labels":{"alertname":"DiskFull","service":"db","severity":"warning","instance":"db-0"},
		"annotations":{"summary":"Disk almost full"},"startsAt":%q,"endsAt":%q}]`,
		time.Now().Add(-time.Minute).UTC().Format(time.RFC3339), time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	resp, err := http.Post(am.URL+"/api/v2/alerts", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// requireOneIncidentOneAlert checks, in the database itself, that the
// delivery landed exactly once: one incident, one alert, one group.
func requireOneIncidentOneAlert(t *testing.T, db *sql.DB) {
	t.Helper()
	for _, q := range []string{`SELECT COUNT(*) FROM incidents`, `SELECT COUNT(*) FROM incident_alerts`, `SELECT COUNT(*) FROM alert_groups`} {
		var n int
		require.NoError(t, db.QueryRow(q).Scan(&n))
		require.Equal(t, 1, n, q)
	}
}

// TestAlertmanagerRetries503 runs sred behind the pinned Alertmanager and
// makes sred answer its first deliveries 503, as it does when the store
// cannot write: Alertmanager retries, and once the store writes again the
// alert lands exactly once (one incident, one alert), on both backends.
// The store refuses writes through a trigger on the alerts table that the
// test creates in sred's own database and drops later; the test waits on
// sred's counters, not on Alertmanager's timers.
func TestAlertmanagerRetries503(t *testing.T) {
	type backend struct {
		args          []string
		db            *sql.DB
		refuse, allow []string
	}
	backends := map[string]func(t *testing.T, dir string) backend{
		"sqlite": func(t *testing.T, dir string) backend {
			return backend{args: []string{"--storage.path=" + filepath.Join(dir, "data")},
				refuse: []string{`CREATE TRIGGER refuse_writes BEFORE INSERT ON incident_alerts BEGIN SELECT RAISE(ABORT, 'the store refuses writes (test)'); END`},
				allow:  []string{`DROP TRIGGER refuse_writes`}}
		},
		"postgres": func(t *testing.T, dir string) backend {
			u := testutil.PostgresSchemaURL(t)
			db, err := sql.Open("pgx", u)
			require.NoError(t, err)
			t.Cleanup(func() { db.Close() })
			return backend{args: []string{"--storage.postgres-url=" + u}, db: db,
				refuse: []string{`CREATE FUNCTION refuse_writes() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the store refuses writes (test)'; END $$`,
					`CREATE TRIGGER refuse_writes BEFORE INSERT ON incident_alerts FOR EACH ROW EXECUTE FUNCTION refuse_writes()`},
				allow: []string{`DROP TRIGGER refuse_writes ON incident_alerts`}}
		},
	}
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "sred.yml")
			require.NoError(t, os.WriteFile(cfg, []byte("webhook:\n  bearer_token: s3cret\n"), 0o600))
			b := backends[name](t, dir)
			s := start(t, append([]string{"--config.file=" + cfg}, b.args...)...)
			if b.db == nil {
				db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "data", "sred.db")+"?_pragma=busy_timeout(10000)")
				require.NoError(t, err)
				t.Cleanup(func() { db.Close() })
				b.db = db
			}
			for _, q := range b.refuse {
				_, err := b.db.Exec(q)
				require.NoError(t, err, q)
			}

			retryAlertmanager(t, s.url)
			// Alertmanager's deliveries are answered 503 and retried.
			require.Eventually(t, func() bool {
				_, m := s.do(t, http.MethodGet, "/metrics", nil)
				return metricValue(m, `sre_webhook_requests_total{code="503"}`) >= 2
			}, 2*time.Minute, 50*time.Millisecond, "Alertmanager's delivery answered 503 twice")
			require.Empty(t, incidentIDs(t, s), "nothing stored while the store refuses")

			for _, q := range b.allow {
				_, err := b.db.Exec(q)
				require.NoError(t, err, q)
			}
			require.Eventually(t, func() bool {
				_, m := s.do(t, http.MethodGet, "/metrics", nil)
				return metricValue(m, `sre_webhook_requests_total{code="200"}`) >= 1
			}, 2*time.Minute, 50*time.Millisecond, "Alertmanager's retry accepted")
			ids := incidentIDs(t, s)
			require.Len(t, ids, 1)
			require.True(t, strings.HasSuffix(ids[0], " triggered"), ids[0])
			requireOneIncidentOneAlert(t, b.db)
		})
	}
}

// TestAlertmanagerRetriesOverConnectionCap: sred holds
// --web.max-connections=2, the test keeps both (one it polls sred on, one
// idle), so the listener answers Alertmanager's deliveries 503;
// Alertmanager retries, and once the idle connection is released the
// alert lands exactly once.
func TestAlertmanagerRetriesOverConnectionCap(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sred.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("webhook:\n  bearer_token: s3cret\n"), 0o600))
	// The test's client keeps one keep-alive connection, used for every
	// poll below.
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	s := startWith(t, &sred{url: "http://", client: client}, "--config.file="+cfg,
		"--storage.path="+filepath.Join(dir, "data"), "--web.max-connections=2")
	metrics := func() string {
		_, m := s.do(t, http.MethodGet, "/metrics", nil)
		return m
	}
	open := func() float64 { return metricValue(metrics(), `sre_http_open_connections{listener="web"}`) }
	// sred may still be closing a readiness check's connection.
	require.Eventually(t, func() bool { return open() == 1 }, time.Minute, 20*time.Millisecond)
	// The second connection: idle once its request is answered.
	idle, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	require.NoError(t, err)
	defer idle.Close()
	_, err = io.WriteString(idle, "GET /-/healthy HTTP/1.1\r\nHost: sred\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, 2.0, open())

	retryAlertmanager(t, s.url)
	require.Eventually(t, func() bool {
		return metricValue(metrics(), `sre_http_refused_connections_total{listener="web"}`) >= 2
	}, 2*time.Minute, 50*time.Millisecond, "Alertmanager's delivery refused twice")
	require.Zero(t, metricValue(metrics(), `sre_webhook_requests_total{code="200"}`), "no delivery reached the webhook")
	require.Empty(t, incidentIDs(t, s))

	// Release the idle connection: Alertmanager's next retry gets it.
	idle.Close()
	require.Eventually(t, func() bool {
		return metricValue(metrics(), `sre_webhook_requests_total{code="200"}`) >= 1
	}, 3*time.Minute, 100*time.Millisecond, "Alertmanager's retry accepted")
	ids := incidentIDs(t, s)
	require.Len(t, ids, 1)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "data", "sred.db")+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	defer db.Close()
	requireOneIncidentOneAlert(t, db)
}
