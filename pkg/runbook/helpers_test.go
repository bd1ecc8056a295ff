package runbook

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestMain lets the test binary act as the programs exec steps run:
//
//	RUNBOOK_HELPER=argv      writes its arguments as JSON to $RUNBOOK_OUT
//	RUNBOOK_HELPER=spawn     starts /bin/sleep 60, prints its pid, and sleeps
//	RUNBOOK_HELPER=pidfile   starts /bin/sleep 60, writes "<its pid> <sleep's pid>" to $RUNBOOK_OUT, and sleeps
//	RUNBOOK_HELPER=count     appends a line to $RUNBOOK_OUT, then sleeps 60s if it was the first line
//	RUNBOOK_HELPER=mark      appends a line to $RUNBOOK_OUT
//	RUNBOOK_HELPER=env       writes its environment (JSON) to $RUNBOOK_OUT
//	RUNBOOK_HELPER=engine    runs an engine on a database (crash test)
func TestMain(m *testing.M) {
	switch os.Getenv("RUNBOOK_HELPER") {
	case "":
		os.Exit(m.Run())
	case "argv":
		b, _ := json.Marshal(os.Args[1:])
		if err := os.WriteFile(os.Getenv("RUNBOOK_OUT"), b, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		fmt.Println("argv written")
		os.Exit(0)
	case "spawn":
		c := exec.Command("/bin/sleep", "60")
		if err := c.Start(); err != nil {
			os.Exit(3)
		}
		fmt.Println(c.Process.Pid)
		time.Sleep(60 * time.Second)
		os.Exit(0)
	case "pidfile":
		c := exec.Command("/bin/sleep", "60")
		if err := c.Start(); err != nil {
			os.Exit(3)
		}
		if err := os.WriteFile(os.Getenv("RUNBOOK_OUT"), fmt.Appendf(nil, "%d %d", os.Getpid(), c.Process.Pid), 0o600); err != nil {
			os.Exit(3)
		}
		time.Sleep(60 * time.Second)
		os.Exit(0)
	case "count":
		f, err := os.OpenFile(os.Getenv("RUNBOOK_OUT"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			os.Exit(3)
		}
		fmt.Fprintln(f, "started")
		f.Close()
		if b, _ := os.ReadFile(os.Getenv("RUNBOOK_OUT")); string(b) == "started\n" {
			time.Sleep(60 * time.Second)
		}
		os.Exit(0)
	case "mark":
		f, err := os.OpenFile(os.Getenv("RUNBOOK_OUT"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			os.Exit(3)
		}
		fmt.Fprintln(f, "ran")
		f.Close()
		os.Exit(0)
	case "env":
		b, _ := json.Marshal(os.Environ())
		if err := os.WriteFile(os.Getenv("RUNBOOK_OUT"), b, 0o600); err != nil {
			os.Exit(3)
		}
		os.Exit(0)
	case "engine":
		os.Exit(crashChild())
	default:
		os.Exit(2)
	}
}

// recorder is the incident service's side as the engine sees it, with
// escalations and notifications kept in memory for assertions.
type recorder struct {
	mu         sync.Mutex
	timeline   []incident.TimelineEntry
	mitigated  []string
	resolved   []string
	escalated  []string
	notified   []string
	failNotify bool
}

func (r *recorder) AddTimeline(_ context.Context, _ *sql.Tx, e incident.TimelineEntry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.timeline = append(r.timeline, e)
	return nil
}

func (r *recorder) MarkMitigated(_ context.Context, id, by string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mitigated = append(r.mitigated, id+"/"+by)
	return nil
}

func (r *recorder) Resolve(_ context.Context, id, actor, _ string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resolved = append(r.resolved, id+"/"+actor)
	return nil
}

func (r *recorder) EscalateNow(_ context.Context, id, reason string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.escalated = append(r.escalated, id+": "+reason)
	return nil
}

func (r *recorder) NotifyResponders(_ context.Context, n Notification) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failNotify {
		return "", fmt.Errorf("notifier down")
	}
	r.notified = append(r.notified, fmt.Sprintf("%s run %d step %s %v: %s", n.IncidentID, n.RunID, n.Step, n.Channels, n.Message))
	return "sent to alice via webhook", nil
}

func (r *recorder) snapshot() (tl []incident.TimelineEntry, mitigated, resolved, escalated, notified []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]incident.TimelineEntry(nil), r.timeline...), append([]string(nil), r.mitigated...),
		append([]string(nil), r.resolved...), append([]string(nil), r.escalated...), append([]string(nil), r.notified...)
}

// testConfig is a fast configuration for tests.
func testConfig() Config {
	c := DefaultConfig
	c.PollInterval = 20 * 1e6 // 20ms
	c.LeaseDuration = 2 * 1e9 // 2s
	c.RateLimit = RateLimit{}
	return c
}

func mustParse(t *testing.T, src string) *Runbook {
	t.Helper()
	rb, err := Parse([]byte(src), "test.yml")
	require.NoError(t, err)
	return rb
}

func newEngine(t *testing.T, db *store.DB, cfg Config, rec *recorder, rbs ...*Runbook) *Engine {
	t.Helper()
	set, err := NewSet(cfg, rbs...)
	require.NoError(t, err)
	e, err := New(Options{DB: db, Incidents: rec, Escalator: rec, Notifier: rec, Registerer: prometheus.NewRegistry()}, cfg, set)
	require.NoError(t, err)
	return e
}

// startEngine runs the worker until stop is called or the test ends.
// waitCycles waits until the running engine went through n more worker
// rounds (claim, heartbeat, cancellations): what it would have done by then,
// it has done.
func waitCycles(t *testing.T, e *Engine, n int64) {
	t.Helper()
	from := e.cycles.Load()
	require.Eventually(t, func() bool { return e.cycles.Load() >= from+n }, 30*time.Second, 5*time.Millisecond)
}

func startEngine(t *testing.T, e *Engine) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return stop
}

// trigger opens an incident change through the hook, in a transaction, as
// the incident service does, for the incident's one alert group: the group
// that opened it, whose common labels are the incident's labels.
func trigger(t *testing.T, db *store.DB, e *Engine, inc *incident.Incident, kind incident.ChangeKind) {
	t.Helper()
	triggerGroups(t, db, e, inc, kind, openingGroup(inc))
}

// triggerGroups is trigger for a change that concerns groups.
func triggerGroups(t *testing.T, db *store.DB, e *Engine, inc *incident.Incident, kind incident.ChangeKind, groups ...incident.AlertGroup) {
	t.Helper()
	require.NoError(t, db.InTx(context.Background(), func(tx *sql.Tx) error {
		return e.IncidentChanged(context.Background(), tx, incident.Change{Kind: kind, Incident: inc, Time: time.Now(), Groups: groups})
	}))
}

// openingGroup is the alert group that opened inc.
func openingGroup(inc *incident.Incident) incident.AlertGroup {
	return incident.AlertGroup{GroupKey: "{}:" + inc.ID, Labels: inc.Labels}
}

func newIncident(id string, labels map[string]string) *incident.Incident {
	return &incident.Incident{ID: id, Title: "test", Service: labels["service"], Severity: incident.SeverityHigh,
		Status: incident.StatusTriggered, Labels: labels}
}

// waitRun waits until the run of (incident, runbook) reaches one of statuses.
func waitRun(t *testing.T, e *Engine, incidentID string, statuses ...string) *Run {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last *Run
	for time.Now().Before(deadline) {
		runs, err := e.ListRuns(context.Background(), RunFilter{IncidentID: incidentID})
		require.NoError(t, err)
		if len(runs) > 0 {
			last = runs[0]
			for _, s := range statuses {
				if last.Status == s {
					full, err := e.GetRun(context.Background(), last.ID)
					require.NoError(t, err)
					return full
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("run of %s did not reach %v; last: %+v", incidentID, statuses, last)
	return nil
}

func migrations() [][]store.Migration { return [][]store.Migration{jobs.Migrations, Migrations} }

// withIncidents are the migrations of tests that use the real incident service.
func withIncidents() [][]store.Migration {
	return [][]store.Migration{incident.Migrations, jobs.Migrations, Migrations}
}

// newService returns the real incident service, calling the hooks that
// hooks returns inside its transactions as sred does.
func newService(t *testing.T, db *store.DB, hooks func() []incident.Hook) *incident.Service {
	t.Helper()
	svc, err := incident.NewService(db, incident.DefaultOptions(), hooks, nil, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	return svc
}

// ingest delivers a firing alert with labels, as Alertmanager's webhook
// would, and returns the incident it opened.
func ingest(t *testing.T, svc *incident.Service, labels map[string]string) string {
	t.Helper()
	res, err := svc.Ingest(context.Background(), incident.Notification{Receiver: "sred", Status: "firing", GroupKey: fmt.Sprint(labels),
		CommonLabels: labels, Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: fmt.Sprintf("%x", fmt.Sprint(labels)),
			StartsAt: time.Now().Add(-time.Minute), Labels: labels}}})
	require.NoError(t, err)
	require.Len(t, res.Created, 1)
	return res.Created[0]
}

func helperCmd() string { return os.Args[0] }

func itoa(i int) string { return strconv.Itoa(i) }

var _ = testutil.Backends

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }
