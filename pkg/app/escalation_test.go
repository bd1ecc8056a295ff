package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/receiver"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// arrivals records webhook messages with the time each arrived.
type arrivals struct {
	mu   sync.Mutex
	msgs []notify.Message
	at   []time.Time
}

func (s *arrivals) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var m notify.Message
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &m); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.msgs, s.at = append(s.msgs, m), append(s.at, time.Now())
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// pages returns the arrival times of the trigger messages paging user.
func (s *arrivals) pages(user string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Time
	for i, m := range s.msgs {
		if m.Event == notify.EventTrigger && strings.Contains(m.Body, "paging "+user) {
			out = append(out, s.at[i])
		}
	}
	return out
}

// TestEscalationSurvivesSIGKILL runs two real sred processes on one
// PostgreSQL schema. An incident opened on replica A pages level 0; A is
// killed with SIGKILL before level 1 pages anyone; replica B pages level 1,
// not before its due time, and once: the test waits until the notification
// queue is drained (sre_jobs_pending on B) before counting the pages.
func TestEscalationSurvivesSIGKILL(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "sred")
	build := exec.Command("go", "build", "-o", bin, "./cmd/sred")
	build.Dir = tu.RepoRoot(t)
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build sred: %s", out)

	sink := &arrivals{}
	hooks := httptest.NewServer(sink)
	defer hooks.Close()
	cfg := filepath.Join(dir, "sred.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
escalation:
  policies:
    - name: fast
      levels:
        - {after: 0s, users: [alice], channels: [webhook]}
        - {after: 15s, users: [bob], channels: [webhook]}
oncall:
  users:
    - {name: alice, email: alice@example.com}
    - {name: bob, email: bob@example.com}
notifications:
  min_backoff: 1s
  webhook: {url: %s, secret: s3cret}
`, hooks.URL)), 0o644))
	pg := tu.PostgresSchemaURL(t)
	start := func(name string) *tu.Process {
		port := tu.FreePort(t)
		url := fmt.Sprintf("http://127.0.0.1:%d", port)
		return tu.StartProcess(t, name, bin, []string{"--config.file=" + cfg, "--web.no-auth", "--storage.postgres-url=" + pg,
			fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port)}, dir, url, "/-/ready")
	}
	a, b := start("sred-a"), start("sred-b")

	payload := fmt.Sprintf(`{"version":"4","groupKey":"{}:{alertname=\"APIDown\"}","status":"firing","receiver":"sred",
"groupLabels":{"alertname":"APIDown"},"commonLabels":{"alertname":"APIDown","service":"api","severity":"critical"},"commonAnnotations":{},
"externalURL":"http://alertmanager:9093","alerts":[{"status":"firing","labels":{"alertname":"APIDown","service":"api","severity":"critical"},
"annotations":{},"startsAt":%q,"endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"f00d"}]}`, time.Now().UTC().Add(-time.Minute).Format(time.RFC3339))
	resp, err := http.Post(a.URL+receiver.Path, "application/json", strings.NewReader(payload))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	waitFor(t, func() bool { return len(sink.pages("alice")) == 1 }, "level 0 was not paged")
	// Kill A once it has recorded level 0's page as sent: a replica killed
	// between sending a message and recording it sends it again after the
	// lease (cmd/sred's queue tests cover that case); this test is about
	// the escalation timer of level 1.
	waitFor(t, func() bool {
		mfs, _ := scrape(t, a.URL)
		v, ok := metricValue(mfs, "sre_jobs_pending", map[string]string{"queue": notify.Queue})
		return ok && v == 0
	}, "replica A did not record level 0's page")
	a.Kill()
	var page struct {
		Incidents []incident.Incident `json:"incidents"`
	}
	code, env := getJSON(t, b.URL+"/api/v1/incidents", nil, &page)
	require.Equal(t, http.StatusOK, code, env.Error)
	require.Len(t, page.Incidents, 1)
	due := page.Incidents[0].CreatedAt.Add(15 * time.Second)
	require.Empty(t, sink.pages("bob"), "replica A paged level 1 before it was killed")

	waitFor(t, func() bool { return len(sink.pages("bob")) == 1 }, "level 1 was not paged after replica A died")
	late := sink.pages("bob")[0].Sub(due)
	t.Logf("level 1 delivered %s after its due time", late)
	require.GreaterOrEqual(t, late, time.Duration(0), "level 1 paged before its due time")
	waitFor(t, func() bool {
		mfs, _ := scrape(t, b.URL)
		v, ok := metricValue(mfs, "sre_jobs_pending", map[string]string{"queue": notify.Queue})
		return ok && v == 0
	}, "the notification queue was not drained")
	require.Len(t, sink.pages("bob"), 1, "level 1 sent exactly once")
	require.Len(t, sink.pages("alice"), 1, "level 0 sent exactly once")
}
