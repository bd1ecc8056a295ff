package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// TestIncidentSnoozeEscalates runs the wired app on both backends: an
// incident pages level 0 of its policy through a real webhook channel, is
// acknowledged and snoozed through the API, and when the snooze ends (the
// incident service's manual clock moved past it) the incident timers have
// the escalation engine page the next level at once.
func TestIncidentSnoozeEscalates(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{StoragePath: filepath.Join(dir, "data")}
			if backend == "postgres" {
				opts = Options{PostgresURL: tu.PostgresSchemaURL(t)}
			}
			testIncidentSnooze(t, dir, opts)
		})
	}
}

// pageSink is a notification webhook receiver counting the escalation
// messages that page each user.
type pageSink struct {
	mu    sync.Mutex
	pages map[string]int
}

func (s *pageSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range []string{"alice", "bob"} {
		if strings.Contains(string(b), "paging "+u) {
			s.pages[u]++
		}
	}
	w.WriteHeader(http.StatusOK)
}

func (s *pageSink) count(u string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pages[u]
}

func testIncidentSnooze(t *testing.T, dir string, opts Options) {
	sink := &pageSink{pages: map[string]int{}}
	hooks := httptest.NewServer(sink)
	defer hooks.Close()
	opts.ConfigFile = filepath.Join(dir, "sred.yml")
	require.NoError(t, os.WriteFile(opts.ConfigFile, []byte(fmt.Sprintf(`
escalation:
  policies:
    - name: api
      levels:
        - {after: 0m, users: [alice], channels: [webhook]}
        - {after: 1h, users: [bob], channels: [webhook]}
oncall:
  users:
    - {name: alice, email: alice@example.com}
    - {name: bob, email: bob@example.com}
notifications:
  min_backoff: 1s
  webhook: {url: %s, secret: s3cret}
`, hooks.URL)), 0o644))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := New(ctx, opts)
	require.NoError(t, err)
	defer a.Close()
	// The incident service's clock, set before any goroutine reads it.
	clock := clock.NewManual(time.Now())
	a.Incidents.Clock = clock
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for _, act := range a.Actors() {
		if act.Name == "escalation-worker" || act.Name == "notification-sender" {
			wg.Go(func() { _ = act.Execute(ctx) })
		}
	}
	// The incident timers run when the test says (incidentTimersDue).
	logger := a.Logger
	srv := httptest.NewServer(a.Mux)
	defer srv.Close()
	res, err := a.Incidents.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "firing", GroupKey: `{}:{alertname="Down"}`,
		CommonLabels: map[string]string{"alertname": "Down", "service": "api"},
		Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "f1", StartsAt: time.Now().Add(-time.Minute),
			Labels: map[string]string{"alertname": "Down", "service": "api"}}}})
	require.NoError(t, err)
	id := res.Created[0]
	require.Eventually(t, func() bool { return sink.count("alice") == 1 }, 15*time.Second, 50*time.Millisecond, "level 0 was not paged")

	post := func(path, body string) int {
		resp, err := http.Post(srv.URL+"/api/v1/incidents/"+id+path, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusOK, post("/ack", `{"actor":"alice"}`))
	require.Equal(t, http.StatusOK, post("/snooze", `{"actor":"alice","duration":"1m"}`))
	// Before the snooze ends the timers have nothing to do: the incident
	// stays snoozed and nobody else is paged.
	clock.Advance(59 * time.Second)
	a.incidentTimersDue(ctx, logger)
	inc, err := a.Incidents.Get(ctx, id)
	require.NoError(t, err)
	require.NotNil(t, inc.SnoozedUntil, "the snooze has not ended")
	require.Zero(t, sink.count("bob"))

	clock.Advance(2 * time.Second)
	a.incidentTimersDue(ctx, logger)
	require.Eventually(t, func() bool { return sink.count("bob") == 1 }, 15*time.Second, 50*time.Millisecond,
		"the end of the snooze did not page the next level")
	inc, err = a.Incidents.Get(ctx, id)
	require.NoError(t, err)
	require.Nil(t, inc.SnoozedUntil)
	require.Equal(t, incident.StatusAcknowledged, inc.Status)
	tl, err := a.Incidents.Timeline(ctx, id)
	require.NoError(t, err)
	var snoozes []string
	for _, e := range tl {
		if e.Kind == "snooze" {
			snoozes = append(snoozes, e.Actor+": "+e.Message)
		}
	}
	require.Len(t, snoozes, 2)
	require.Contains(t, snoozes[0], "alice: snoozed by alice for 1m, until ")
	require.Contains(t, snoozes[1], "sred: snooze ended (was until ")
	require.True(t, strings.HasSuffix(snoozes[1], "): the incident is still acknowledged; escalating now"), snoozes[1])
}
