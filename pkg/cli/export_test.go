package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/web"
)

func serveIncidents(t *testing.T, db *store.DB, clk clock.Clock) (*incident.Service, string) {
	t.Helper()
	require.NoError(t, db.Migrate(context.Background(), incident.Migrations))
	svc, err := incident.NewService(db, incident.DefaultOptions(), nil, events.NewBus(8, nil), nil, prometheus.NewRegistry())
	require.NoError(t, err)
	t.Cleanup(func() { svc.Close() })
	svc.Clock = clk
	mux := http.NewServeMux()
	(&web.IncidentsAPI{Service: svc}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return svc, srv.URL
}

// TestIncidentsExportImport moves a SQLite store's incidents to PostgreSQL
// with `srectl incidents export` and `srectl incidents import`, and checks
// every incident field by field: its columns, alerts, links and timeline.
// Importing again skips them; the next incident gets the next ID.
func TestIncidentsExportImport(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewManual(time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC))
	srcDB, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "sred.db"))
	require.NoError(t, err)
	defer srcDB.Close()
	src, srcURL := serveIncidents(t, srcDB, clk)
	src.SetCorrelation(&incident.Correlation{Window: time.Hour,
		DependsOn: map[string]map[string][]string{"db": {}, "api": {"db": {"api", "db"}}, "web": {}}})
	fire := func(gk, service string, status string, starts time.Time) {
		l := map[string]string{"alertname": "Down", "service": service, "severity": "critical"}
		a := incident.NotifiedAlert{Status: status, Fingerprint: "fp-" + gk, StartsAt: starts, Labels: l,
			Annotations: map[string]string{"summary": service + " is down", "runbook_url": "https://runbooks.example.com/" + service}}
		if status == "resolved" {
			a.EndsAt = clk.Now()
		}
		_, err := src.Ingest(ctx, incident.Notification{Receiver: "sred", Status: status, GroupKey: gk, CommonLabels: l,
			Alerts: []incident.NotifiedAlert{a}})
		require.NoError(t, err)
	}
	fire("g-db", "db", "firing", clk.Now().Add(-time.Minute))
	clk.Advance(time.Minute)
	fire("g-api", "api", "firing", clk.Now().Add(-time.Minute))
	clk.Advance(time.Minute)
	_, err = src.Acknowledge(ctx, "INC-2026-0001", "alice")
	require.NoError(t, err)
	_, err = src.AddNote(ctx, "INC-2026-0001", "alice", "failing over the primary")
	require.NoError(t, err)
	fire("g-web", "web", "firing", clk.Now().Add(-time.Minute))
	clk.Advance(time.Minute)
	fire("g-web", "web", "resolved", clk.Now().Add(-3*time.Minute))
	for i := range 20 {
		clk.Advance(time.Minute)
		gk := fmt.Sprintf("g-batch-%d", i)
		fire(gk, "batch", "firing", clk.Now().Add(-time.Minute))
		if i%2 == 0 {
			fire(gk, "batch", "resolved", clk.Now().Add(-time.Minute))
		}
	}

	dstDB, err := store.OpenPostgres(ctx, testutil.PostgresSchemaURL(t), store.PostgresOptions{})
	require.NoError(t, err)
	defer dstDB.Close()
	dst, dstURL := serveIncidents(t, dstDB, clk)

	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := Main(append([]string{"incidents"}, args...), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	code, out, errOut := run("export", "--sred.url="+srcURL)
	require.Equal(t, 0, code, errOut)
	require.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 22)
	file := filepath.Join(t.TempDir(), "incidents.jsonl")
	require.NoError(t, os.WriteFile(file, []byte(out), 0o644))
	// One incident first: the counts of one are singular.
	one := filepath.Join(t.TempDir(), "one.jsonl")
	require.NoError(t, os.WriteFile(one, []byte(strings.SplitAfter(out, "\n")[0]), 0o644))
	code, imp, errOut := run("import", "--sred.url="+dstURL, one)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "imported 1 incident, skipped 0 that exist\n", imp)
	code, imp, errOut = run("import", "--sred.url="+dstURL, file)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "imported 21 incidents, skipped 1 that exists\n", imp)
	code, imp, errOut = run("import", "--sred.url="+dstURL, file)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "imported 0 incidents, skipped 22 that exist\n", imp)

	page, err := src.List(ctx, incident.Filter{Limit: 1000})
	require.NoError(t, err)
	require.Len(t, page.Incidents, 22)
	for _, s := range page.Incidents {
		a, err := src.Get(ctx, s.ID)
		require.NoError(t, err)
		b, err := dst.Get(ctx, s.ID)
		require.NoError(t, err)
		require.Equal(t, a, b, s.ID)
		ta, err := src.Timeline(ctx, s.ID)
		require.NoError(t, err)
		tb, err := dst.Timeline(ctx, s.ID)
		require.NoError(t, err)
		require.Len(t, tb, len(ta))
		for i := range ta {
			ta[i].ID, tb[i].ID = 0, 0
		}
		require.Equal(t, ta, tb, s.ID)
	}
	inc, err := dst.Get(ctx, "INC-2026-0001")
	require.NoError(t, err)
	require.Equal(t, []string{"api", "db"}, inc.Services)
	require.Equal(t, incident.StatusAcknowledged, inc.Status)

	// Alertmanager's next delivery of an imported group joins its
	// incident; a new group gets the next ID.
	res, err := dst.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "firing", GroupKey: "g-api",
		CommonLabels: map[string]string{"alertname": "Down", "service": "api", "severity": "critical"},
		Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "fp-g-api", StartsAt: clk.Now().Add(-21*time.Minute - 2*time.Minute),
			Labels: map[string]string{"alertname": "Down", "service": "api", "severity": "critical"}}}})
	require.NoError(t, err)
	require.Equal(t, []string{"INC-2026-0001"}, res.Incidents)
	res, err = dst.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "firing", GroupKey: "g-new",
		CommonLabels: map[string]string{"alertname": "Down", "service": "cache"},
		Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "fp-new", StartsAt: clk.Now(),
			Labels: map[string]string{"alertname": "Down", "service": "cache"}}}})
	require.NoError(t, err)
	require.Equal(t, []string{"INC-2026-0023"}, res.Created)

	// A malformed line names its line.
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	require.NoError(t, os.WriteFile(bad, []byte(strings.SplitN(out, "\n", 2)[0]+"\n{not json\n"), 0o644))
	code, _, errOut = run("import", "--sred.url="+dstURL, bad)
	require.Equal(t, 4, code)
	require.Contains(t, errOut, "import line 2: invalid character")

	// A line that fails validation names its line and field, and nothing
	// of it is stored; the valid line before it is.
	first := strings.SplitN(out, "\n", 2)[0]
	okLine := strings.ReplaceAll(first, "INC-2026-0001", "INC-2026-0101")
	for _, c := range []struct{ line, want string }{
		{strings.Replace(first, `"severity":"CRITICAL"`, `"severity":"SEVERE"`, 1),
			`import line 2: incident INC-2026-0001: field incident.severity: "SEVERE" is not one of CRITICAL, HIGH, MEDIUM, LOW`},
		{strings.Replace(first, `"fingerprint":"fp-g-db"`, `"fingerprint":""`, 1), "import line 2: incident INC-2026-0001: field alerts[1].fingerprint: is missing"},
		{strings.Replace(first, `"title":"`, `"title":5,"x":"`, 1), "import line 2: incident.title: want a string, got a number"},
		{strings.Replace(first, `"links":`, `"parts":{"escalation":{}},"links":`, 1),
			"import line 2: incident INC-2026-0001: field parts.escalation: this sred has no escalation subsystem"},
	} {
		c.line = strings.ReplaceAll(c.line, "INC-2026-0001", "INC-2026-0102")
		c.want = strings.ReplaceAll(c.want, "INC-2026-0001", "INC-2026-0102")
		require.NoError(t, os.WriteFile(bad, []byte(okLine+"\n"+c.line+"\n"), 0o644))
		code, _, errOut = run("import", "--sred.url="+dstURL, bad)
		require.Equal(t, 4, code)
		require.Contains(t, errOut, c.want)
		_, err = dst.Get(ctx, "INC-2026-0102")
		require.ErrorIs(t, err, incident.ErrNotFound)
		_, err = dst.Get(ctx, "INC-2026-0101")
		require.NoError(t, err)
	}

	// An incident the importing sred opened itself (its budget poller, a
	// delivery) under an ID the export also has is another incident: the
	// import stops at its line, naming both, rather than skip the exported
	// one as if it were there.
	own, err := dst.Create(ctx, incident.ManualIncident{Title: "opened before the import", Service: "api", Severity: incident.SeverityHigh, Actor: "rita"})
	require.NoError(t, err)
	clash := strings.ReplaceAll(first, "INC-2026-0001", own.ID)
	require.NoError(t, os.WriteFile(bad, []byte(clash+"\n"), 0o644))
	code, imp, errOut = run("import", "--sred.url="+dstURL, bad)
	require.Equal(t, 4, code, imp)
	require.Contains(t, errOut, "import line 1 ("+own.ID+"): incident "+own.ID+" exists here as another incident (created 2026-05-04T10:")
	require.Contains(t, errOut, `group "manual:`+own.ID+`")`)
	kept, err := dst.Get(ctx, own.ID)
	require.NoError(t, err)
	require.Equal(t, "opened before the import", kept.Title)
}
