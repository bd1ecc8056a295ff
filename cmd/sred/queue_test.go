package main

import (
	"database/sql"
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

	"github.com/rootuip/sre/pkg/notify"
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
	replicas := newReplicaSet(t, t.TempDir(), pagingConfig(hook.URL,
		fmt.Sprintf("  lease: %s\n  timeout: 4s\n  max_attempts: 3\n  min_backoff: 1s\n", lease), ""))

	a := replicas.start(t)
	code, body := a.do(t, http.MethodPost, "/api/v1/webhook/alertmanager", payload(t, "am-firing.json"))
	require.Equal(t, http.StatusOK, code, body)
	select {
	case <-rc.first:
	case <-time.After(30 * time.Second):
		t.Fatalf("replica A sent no page within 30s:\n%s", a.output())
	}
	// Mid-job: the message is claimed and its request is in flight. Its
	// lease as A holds it (A may still extend it, never shorten it):
	// B may claim the message only once this time has passed.
	db, err := sql.Open("pgx", replicas.url)
	require.NoError(t, err)
	defer db.Close()
	var leaseUntil int64
	require.NoError(t, db.QueryRow(`SELECT lease_until FROM jobs WHERE queue = $1 AND state = 'running'`, notify.Queue).Scan(&leaseUntil))
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGKILL))

	b := replicas.start(t)
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
	// B could only claim the message once A's lease had run out, and sent
	// it after claiming it (sred's clocks and the receiver's are this
	// machine's), however long A took between its claim and its request.
	require.False(t, reqs[1].Before(time.UnixMilli(leaseUntil)), "B sent at %s, before A's lease expired at %s", reqs[1], time.UnixMilli(leaseUntil))
}

// runbookStep is a runbook whose three steps each append a line to out
// ("one", "two", "three"). The second records each attempt in att, writes
// "two" unless out has it already, and on its first attempt records its pid
// in pid and hangs: the replica running it is killed there.
func runbookStep(name string, idempotent bool, out, att, pid string) string {
	return fmt.Sprintf(`name: %[1]s
matchers: ['alertname="HighErrorRate"']
steps:
  - name: one
    exec:
      command: [/bin/sh, -c, 'echo one >> "$OUT"']
      env: {OUT: %[3]q}
  - name: two
    idempotent: %[2]t
    exec:
      command: [/bin/sh, -c, 'echo attempt >> "$ATT"; grep -qx two "$OUT" || echo two >> "$OUT"; [ "$(wc -l < "$ATT")" -gt 1 ] || { echo $$ > "$PID"; exec sleep 600; }']
      env: {OUT: %[3]q, ATT: %[4]q, PID: %[5]q}
  - name: three
    exec:
      command: [/bin/sh, -c, 'echo three >> "$OUT"']
      env: {OUT: %[3]q}
`, name, idempotent, out, att, pid)
}

// TestRunbookReplicaKilledMidStep: replica A of sred on PostgreSQL runs two
// runbooks for a new incident and is SIGKILLed while both are in their
// second step. Replica B, on the same database, resumes both runs once A's
// lease (runbooks.lease_duration) has expired, at the step in progress: the
// idempotent one runs it again and finishes, each step's line written once;
// the other is not repeated: its run ends interrupted at that step and the
// incident is escalated to a human.
func TestRunbookReplicaKilledMidStep(t *testing.T) {
	const lease = 6 * time.Second
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer hook.Close()
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "runbooks"), 0o755))
	files := func(name string) (out, att, pid string) {
		return filepath.Join(dir, name+".out"), filepath.Join(dir, name+".att"), filepath.Join(dir, name+".pid")
	}
	for _, rb := range []struct {
		name       string
		idempotent bool
	}{{"again", true}, {"once", false}} {
		out, att, pid := files(rb.name)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "runbooks", rb.name+".yml"), []byte(runbookStep(rb.name, rb.idempotent, out, att, pid)), 0o644))
		t.Cleanup(func() {
			// The hanging step of the killed replica outlives it.
			if b, err := os.ReadFile(pid); err == nil {
				var p int
				if _, err := fmt.Sscan(string(b), &p); err == nil && p > 0 {
					_ = syscall.Kill(p, syscall.SIGKILL)
				}
			}
		})
	}
	replicas := newReplicaSet(t, dir, pagingConfig(hook.URL, "",
		fmt.Sprintf("runbooks:\n  files: ['runbooks/*.yml']\n  poll_interval: 1s\n  lease_duration: %s\n", lease)))

	a := replicas.start(t)
	code, body := a.do(t, http.MethodPost, "/api/v1/webhook/alertmanager", payload(t, "am-firing.json"))
	require.Equal(t, http.StatusOK, code, body)
	deadline := time.Now().Add(60 * time.Second)
	for _, name := range []string{"again", "once"} {
		_, _, pid := files(name)
		for {
			if b, err := os.ReadFile(pid); err == nil && len(b) > 0 && b[len(b)-1] == '\n' {
				break
			}
			require.True(t, time.Now().Before(deadline), "runbook %s did not reach its second step on replica A:\n%s", name, a.output())
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Mid-step: both runs are in their second step.
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGKILL))
	killed := time.Now()

	b := replicas.start(t)
	type audit struct {
		Event    string    `json:"event"`
		StepName string    `json:"step_name"`
		Status   string    `json:"status"`
		Time     time.Time `json:"time"`
	}
	type run struct {
		ID      int64   `json:"id"`
		Runbook string  `json:"runbook"`
		Status  string  `json:"status"`
		Reason  string  `json:"reason"`
		Owner   string  `json:"owner"`
		Audit   []audit `json:"audit"`
	}
	final := map[string]run{}
	deadline = time.Now().Add(lease + 60*time.Second)
	for len(final) < 2 {
		code, body := b.do(t, http.MethodGet, "/api/v1/runbooks/runs", nil)
		require.Equal(t, http.StatusOK, code, body)
		var resp struct {
			Data []run `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &resp))
		for _, r := range resp.Data {
			if r.Status == "succeeded" || r.Status == "interrupted" || r.Status == "failed" {
				code, body := b.do(t, http.MethodGet, fmt.Sprintf("/api/v1/runbooks/runs/%d", r.ID), nil)
				require.Equal(t, http.StatusOK, code, body)
				var one struct {
					Data run `json:"data"`
				}
				require.NoError(t, json.Unmarshal([]byte(body), &one))
				// The run's status and its run_finished audit entry are
				// written one after the other: wait for both.
				if n := len(one.Data.Audit); n > 0 && one.Data.Audit[n-1].Event == "run_finished" {
					final[r.Runbook] = one.Data
				}
			}
		}
		require.True(t, time.Now().Before(deadline), "runs not finished by replica B: %+v\n%s", resp.Data, b.output())
		time.Sleep(200 * time.Millisecond)
	}

	read := func(p string) string {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		return string(b)
	}
	events := func(r run) []string {
		var out []string
		for _, a := range r.Audit {
			ev := a.Event
			if a.StepName != "" {
				ev += ":" + a.StepName + ":" + a.Status
			}
			out = append(out, ev)
		}
		return out
	}
	resumedAt := func(r run) time.Time {
		for _, a := range r.Audit {
			if a.Event == "run_resumed" {
				return a.Time
			}
		}
		t.Fatalf("run %d was not resumed: %v", r.ID, events(r))
		return time.Time{}
	}

	again := final["again"]
	out, att, _ := files("again")
	require.Equal(t, "succeeded", again.Status, again.Reason)
	require.Equal(t, "one\ntwo\nthree\n", read(out), "each step's effect exactly once")
	require.Equal(t, "attempt\nattempt\n", read(att), "the idempotent step in progress ran again on B")
	require.Equal(t, []string{"run_pending", "run_started", "step:one:ok", "run_resumed", "step:two:ok", "step:three:ok", "run_finished"}, events(again))

	once := final["once"]
	out, att, _ = files("once")
	require.Equal(t, "interrupted", once.Status)
	require.Equal(t, "its replica stopped during step 2 (two), which is not idempotent: not run again, a human decides", once.Reason)
	require.Equal(t, "one\ntwo\n", read(out), "the step in progress is not repeated, nothing runs after it")
	require.Equal(t, "attempt\n", read(att))
	require.Equal(t, []string{"run_pending", "run_started", "step:one:ok", "run_resumed", "escalation", "run_finished"}, events(once))
	for _, a := range once.Audit {
		if a.Event == "escalation" {
			require.Equal(t, "requested", a.Status, "the incident is escalated to a human")
		}
	}
	require.Equal(t, again.Owner, once.Owner)
	for _, r := range []run{again, once} {
		// B resumed the runs only once A's lease ran out (A renewed it at
		// most a poll interval before it died).
		require.GreaterOrEqual(t, resumedAt(r).Sub(killed), lease-2*time.Second, "run %s resumed before A's lease expired", r.Runbook)
	}
}
