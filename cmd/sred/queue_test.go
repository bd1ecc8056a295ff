package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/testutil"
)

// receiver is a webhook endpoint that never answers its first request (the
// sender is killed while waiting for it) and accepts every later one.
type receiver struct {
	mu       sync.Mutex
	requests []time.Time
	accepted []string
	first    chan struct{}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var msg struct {
		Incident struct {
			ID string `json:"id"`
		} `json:"incident"`
		Event string `json:"event"`
	}
	err := json.NewDecoder(r.Body).Decode(&msg)
	rc.mu.Lock()
	rc.requests = append(rc.requests, time.Now())
	n := len(rc.requests)
	rc.mu.Unlock()
	if n == 1 {
		close(rc.first)
		<-r.Context().Done() // the sender dies before an answer
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.accepted = append(rc.accepted, msg.Event)
	rc.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (rc *receiver) snapshot() ([]time.Time, []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]time.Time(nil), rc.requests...), append([]string(nil), rc.accepted...)
}

// TestWorkerKilledMidJob: replica A of sred on PostgreSQL claims the page of
// a new incident from the notify queue and is SIGKILLed while the webhook
// request is in flight. Replica B, on the same database, delivers it once
// A's lease (notifications.lease) has expired, and not before: the
// receiver accepts the page exactly once and the queue records it delivered
// on its second attempt.
func TestWorkerKilledMidJob(t *testing.T) {
	const lease = 10 * time.Second
	rc := &receiver{first: make(chan struct{})}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sred.yml")
	require.NoError(t, os.WriteFile(cfg, fmt.Appendf(nil, `global:
  incident_id_prefix: INC
escalation:
  severities:
    CRITICAL: {channels: [webhook]}
  policies:
    - name: api
      matchers: ['service="api"']
      levels:
        - {after: 0m, users: [alice]}
oncall:
  users:
    - {name: alice, email: alice@example.com}
notifications:
  lease: %s
  timeout: 4s
  max_attempts: 3
  min_backoff: 1s
  webhook:
    url: %s/sred
    secret: test-secret
`, lease, hook.URL), 0o644))
	args := []string{"--config.file=" + cfg, "--storage.postgres-url=" + testutil.PostgresSchemaURL(t)}

	a := start(t, args...)
	code, body := a.do(t, http.MethodPost, "/api/v1/webhook/alertmanager", payload(t, "am-firing.json"))
	require.Equal(t, http.StatusOK, code, body)
	select {
	case <-rc.first:
	case <-time.After(30 * time.Second):
		t.Fatalf("replica A sent no page within 30s:\n%s", a.output())
	}
	// Mid-job: the message is claimed and its request is in flight.
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGKILL))

	b := start(t, args...)
	id := strings.Split(incidentIDs(t, b)[0], " ")[0]
	type record struct {
		State    string `json:"state"`
		Attempts int    `json:"attempts"`
		Channel  string `json:"channel"`
	}
	var notices []record
	deadline := time.Now().Add(lease + 30*time.Second)
	for {
		code, body := b.do(t, http.MethodGet, "/api/v1/escalation/incidents/"+id, nil)
		require.Equal(t, http.StatusOK, code, body)
		var resp struct {
			Data struct {
				Notifications []record `json:"notifications"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &resp))
		notices = resp.Data.Notifications
		if len(notices) == 1 && notices[0].State == "delivered" {
			break
		}
		require.True(t, time.Now().Before(deadline), "not delivered by replica B: %+v\n%s", notices, b.output())
		time.Sleep(100 * time.Millisecond)
	}
	require.Equal(t, record{State: "delivered", Attempts: 2, Channel: "webhook"}, notices[0])
	reqs, accepted := rc.snapshot()
	require.Equal(t, []string{"trigger"}, accepted, "the page is accepted exactly once")
	require.Len(t, reqs, 2, "one request from A (killed), one from B")
	// A claimed the message just before its request; B could only claim it
	// once the lease ran out (the clocks of both are this machine's).
	require.GreaterOrEqual(t, reqs[1].Sub(reqs[0]), lease-time.Second, "B sent before A's lease expired")
}
