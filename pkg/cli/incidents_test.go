package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/web"
)

// fireAlert delivers one firing alert of labels, the group's labels too,
// to svc as Alertmanager would.
func fireAlert(t *testing.T, svc *incident.Service, groupKey, fingerprint string, labels map[string]string, startsAt time.Time) {
	t.Helper()
	_, err := svc.Ingest(context.Background(), incident.Notification{
		Receiver: "sred", Status: "firing", GroupKey: groupKey, CommonLabels: labels,
		Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: fingerprint, StartsAt: startsAt, Labels: labels}},
	})
	require.NoError(t, err)
}

func TestIncidentsCommands(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
		svc := newIncidentService(t, db, now)
		for _, g := range []struct{ service, severity string }{{"checkout", "critical"}, {"search", "warning"}} {
			fireAlert(t, svc, g.service, g.service, map[string]string{"alertname": "Down", "service": g.service, "severity": g.severity}, now.Add(-time.Minute))
		}
		run := incidentsCommand(t, svc, "--actor=alice")
		code, out, errOut := run("list")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, ""+
			"ID             SEVERITY  STATUS     SERVICE   CREATED           ASSIGNEE  TITLE\n"+
			"INC-2026-0002  MEDIUM    triggered  search    2026-05-04 10:00  -         Down on search\n"+
			"INC-2026-0001  CRITICAL  triggered  checkout  2026-05-04 10:00  -         Down on checkout\n", out)

		code, out, errOut = run("list", "--severity=CRITICAL", "-o", "json")
		require.Equal(t, 0, code, errOut)
		var page incident.Page
		require.NoError(t, json.Unmarshal([]byte(out), &page))
		require.Equal(t, 1, page.Total)
		require.Equal(t, "INC-2026-0001", page.Incidents[0].ID)

		code, out, errOut = run("ack", "INC-2026-0001")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, "INC-2026-0001 is now acknowledged\n", out)

		code, _, errOut = run("ack", "INC-2026-0001")
		require.Equal(t, 4, code)
		require.Equal(t, "srectl: sred answered 409: cannot acknowledge incident INC-2026-0001: it is acknowledged, only a triggered incident can be acknowledged\n", errOut)

		code, out, errOut = run("resolve", "INC-2026-0001", "-m", "restarted the pods")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, "INC-2026-0001 is now resolved\n", out)

		code, out, errOut = run("show", "INC-2026-0001")
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "INC-2026-0001 [CRITICAL] Down on checkout\nStatus:    resolved\n")
		require.Contains(t, out, "  status         alice          acknowledged by alice\n")
		require.Contains(t, out, "resolved by alice: restarted the pods\n")

		code, _, errOut = run("show", "INC-2026-0404")
		require.Equal(t, 4, code)
		require.Equal(t, "srectl: sred answered 404: incident not found: INC-2026-0404\n", errOut)

		code, _, errOut = run("snooze", "INC-2026-0002", "--for", "30m")
		require.Equal(t, 4, code)
		require.Equal(t, "srectl: sred answered 409: cannot snooze incident INC-2026-0002: it is triggered: acknowledge it first\n", errOut)
		code, _, errOut = run("snooze", "INC-2026-0002", "--for", "half an hour")
		require.Equal(t, 2, code)
		require.Equal(t, "srectl: --for: not a valid duration string: \"half an hour\" (want a number and a unit: 30m, 2h, 1d)\n", errOut)
		code, _, errOut = run("snooze", "INC-2026-0002", "--for", "30")
		require.Equal(t, 2, code)
		require.Equal(t, "srectl: --for: not a valid duration string: \"30\" (want a number and a unit: 30m, 2h, 1d)\n", errOut)
		code, _, errOut = run("snooze", "INC-2026-0002", "--for", strings.Repeat("n", 5000))
		require.Equal(t, 2, code)
		require.Equal(t, "srectl: --for: not a valid duration string: \""+strings.Repeat("n", 61)+"…\" (want a number and a unit: 30m, 2h, 1d)\n", errOut)
		code, _, errOut = run("ack", "INC-2026-0002")
		require.Equal(t, 0, code, errOut)
		code, out, errOut = run("snooze", "INC-2026-0002", "--for", "30m")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, "INC-2026-0002 is acknowledged, snoozed until 2026-05-04T10:30:00Z\n", out)
		code, out, errOut = run("show", "INC-2026-0002")
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "Snoozed:   2026-05-04T10:30:00Z\n")
		require.Contains(t, out, "snoozed by alice for 30m, until 2026-05-04T10:30:00Z\n")

		var stdout, stderr bytes.Buffer
		require.Equal(t, 3, Main([]string{"incidents", "--sred.url=http://127.0.0.1:1", "list"}, &stdout, &stderr))
		require.Contains(t, stderr.String(), "srectl: reach sred: ")

		code, out, errOut = run("create", "--title=Checkout slow", "--service=checkout", "--severity=high", "--description=Support reports timeouts")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, "INC-2026-0003 opened: [HIGH] Checkout slow (triggered)\n", out)
		code, _, errOut = run("create", "--title=x", "--service=checkout", "--severity=urgent")
		require.Equal(t, 2, code)
		require.Contains(t, errOut, `--severity: unknown severity "urgent"`)
		code, _, errOut = run("create", "--title= ", "--service=checkout", "--severity=low")
		require.Equal(t, 4, code)
		require.Contains(t, errOut, `"title" must not be empty`)
		inc, err := svc.Get(context.Background(), "INC-2026-0003")
		require.NoError(t, err)
		require.Equal(t, "manual", inc.Receiver)
	})
}

// The title_template of examples/sred.yml names an SLO incident after the
// SLO, the factor of the fastest tier firing and the severity, and
// `incidents show` names each alert's SLO, tier and factor.
func TestIncidentsShowNamesSLOAndBurnFactor(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "examples", "sred.yml"))
	require.NoError(t, err)
	var ex struct {
		Incidents struct {
			TitleTemplate string `yaml:"title_template"`
		} `yaml:"incidents"`
	}
	require.NoError(t, yaml.Unmarshal(b, &ex))
	require.NotEmpty(t, ex.Incidents.TitleTemplate)
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		opts := incident.DefaultOptions()
		opts.TitleTemplate = ex.Incidents.TitleTemplate
		svc, err := incident.NewService(db, opts, nil, events.NewBus(8, nil), nil, prometheus.NewRegistry())
		require.NoError(t, err)
		now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
		svc.Clock = clock.NewManual(now)
		alert := func(tier, factor string) incident.NotifiedAlert {
			return incident.NotifiedAlert{Status: "firing", Fingerprint: tier, StartsAt: now.Add(-time.Minute),
				Labels:      map[string]string{"alertname": "SLOBurnRatePage", "service": "api", "slo": "availability", "severity": "page", "burn_tier": tier},
				Annotations: map[string]string{"summary": "api SLO availability is burning its error budget 20x too fast", incident.AnnotationBurnRate: factor}}
		}
		res, err := svc.Ingest(context.Background(), incident.Notification{
			Receiver: "sred", Status: "firing", GroupKey: `{}:{service="api",slo="availability"}`,
			GroupLabels:  map[string]string{"service": "api", "slo": "availability"},
			CommonLabels: map[string]string{"alertname": "SLOBurnRatePage", "service": "api", "slo": "availability", "severity": "page"},
			Alerts:       []incident.NotifiedAlert{alert("page_slow", "6"), alert("page_fast", "14.4")},
		})
		require.NoError(t, err)
		require.Len(t, res.Created, 1)
		mux := http.NewServeMux()
		(&web.IncidentsAPI{Service: svc}).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		var stdout, stderr bytes.Buffer
		code := Main([]string{"incidents", "--sred.url=" + srv.URL, "show", res.Created[0]}, &stdout, &stderr)
		require.Equal(t, 0, code, stderr.String())
		out := stdout.String()
		require.Contains(t, out, "INC-2026-0001 [CRITICAL] api/availability burning 14.4x: page\n")
		require.Contains(t, out, "  firing   SLOBurnRatePage api/availability page_fast 14.4x since 2026-05-04T09:59:00Z\n")
		require.Contains(t, out, "  firing   SLOBurnRatePage api/availability page_slow 6x since 2026-05-04T09:59:00Z\n")

		// sred's own alert of an exhausted budget (pkg/budget).
		exhausted := map[string]string{"alertname": "SLOErrorBudgetExhausted", "service": "checkout", "slo": "orders", "severity": "critical", "burn_tier": "exhausted"}
		res, err = svc.Ingest(context.Background(), incident.Notification{
			Receiver: "sred", Status: "firing", GroupKey: "budget-exhausted/checkout/orders", CommonLabels: exhausted,
			Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "ex", StartsAt: now, Labels: exhausted}},
		})
		require.NoError(t, err)
		require.Len(t, res.Created, 1)
		inc, err := svc.Get(context.Background(), res.Created[0])
		require.NoError(t, err)
		require.Equal(t, "checkout/orders error budget exhausted: critical", inc.Title)
	})
}

// TestIncidentsOutputEscapesControls: alert text reaches srectl's output;
// an escape sequence in it is printed as text, not sent to the terminal,
// in the table, in show, and in JSON (which still decodes to the value).
func TestIncidentsOutputEscapesControls(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
		svc := newIncidentService(t, db, now)
		evil := "api\x1b]0;pwned\x07\x1b[2J\rFAKE\u009b1A"
		labels := map[string]string{"alertname": "Down", "service": evil, "severity": "critical"}
		fireAlert(t, svc, "{}:{evil}", "f", labels, now.Add(-time.Minute))
		mux := http.NewServeMux()
		(&web.IncidentsAPI{Service: svc}).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		for _, args := range [][]string{{"list"}, {"show", "INC-2026-0001"}, {"list", "-o", "json"}} {
			var stdout, stderr bytes.Buffer
			code := Main(append([]string{"incidents", "--sred.url=" + srv.URL}, args...), &stdout, &stderr)
			require.Equal(t, 0, code, stderr.String())
			out := stdout.String()
			for _, c := range []string{"\x1b", "\x07", "\r", "\u009b"} {
				require.NotContains(t, out, c, "%v", args)
			}
			require.Contains(t, out, `api\u001b]0;pwned\u0007\u001b[2J`, "%v", args)
			if args[len(args)-1] == "json" {
				var page incident.Page
				require.NoError(t, json.Unmarshal(stdout.Bytes(), &page))
				require.Equal(t, evil, page.Incidents[0].Service)
			}
		}
	})
}

// TestIncidentsShowHighestSeverity: an incident whose critical alert
// resolved while its warning still fires is MEDIUM now; `srectl incidents
// list` and `show` say it was CRITICAL at its highest, as the console and
// the post-mortem draft do.
func TestIncidentsShowHighestSeverity(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
		svc := newIncidentService(t, db, now)
		alert := func(name, severity, status string) incident.NotifiedAlert {
			a := incident.NotifiedAlert{Status: status, Fingerprint: name, StartsAt: now.Add(-time.Minute),
				Labels: map[string]string{"alertname": name, "service": "checkout", "severity": severity}}
			if status == "resolved" {
				a.EndsAt = now
			}
			return a
		}
		for _, alerts := range [][]incident.NotifiedAlert{
			{alert("Down", "critical", "firing"), alert("Slow", "warning", "firing")},
			{alert("Down", "critical", "resolved"), alert("Slow", "warning", "firing")},
		} {
			_, err := svc.Ingest(context.Background(), incident.Notification{
				Receiver: "sred", Status: "firing", GroupKey: "checkout",
				CommonLabels: map[string]string{"service": "checkout"}, Alerts: alerts,
			})
			require.NoError(t, err)
		}
		mux := http.NewServeMux()
		(&web.IncidentsAPI{Service: svc}).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		run := func(args ...string) string {
			var stdout, stderr bytes.Buffer
			code := Main(append([]string{"incidents", "--sred.url=" + srv.URL}, args...), &stdout, &stderr)
			require.Equal(t, 0, code, stderr.String())
			return stdout.String()
		}
		list := run("list")
		require.Contains(t, list, "INC-2026-0001  MEDIUM (CRITICAL at its highest)  triggered", list)
		require.Contains(t, run("show", "INC-2026-0001"), "INC-2026-0001 [MEDIUM (CRITICAL at its highest)] ")
	})
}

// TestIncidentsListPeakSeverity: on both backends, `srectl incidents list
// --peak-severity=critical` lists every incident that paged CRITICAL,
// also one whose critical alert resolved while its warning still fires
// (MEDIUM now, which --severity=critical no longer lists); the flag
// repeats, and an unknown severity is sred's 400 naming the parameter.
func TestIncidentsListPeakSeverity(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
		svc := newIncidentService(t, db, now)
		alert := func(service, name, severity, status string) incident.NotifiedAlert {
			a := incident.NotifiedAlert{Status: status, Fingerprint: service + name, StartsAt: now.Add(-time.Minute),
				Labels: map[string]string{"alertname": name, "service": service, "severity": severity}}
			if status == "resolved" {
				a.EndsAt = now
			}
			return a
		}
		for _, n := range []struct {
			service string
			alerts  []incident.NotifiedAlert
		}{
			{"checkout", []incident.NotifiedAlert{alert("checkout", "Down", "critical", "firing"), alert("checkout", "Slow", "warning", "firing")}},
			{"checkout", []incident.NotifiedAlert{alert("checkout", "Down", "critical", "resolved"), alert("checkout", "Slow", "warning", "firing")}},
			{"search", []incident.NotifiedAlert{alert("search", "Down", "critical", "firing")}},
			{"web", []incident.NotifiedAlert{alert("web", "Slow", "warning", "firing")}},
		} {
			_, err := svc.Ingest(context.Background(), incident.Notification{
				Receiver: "sred", Status: "firing", GroupKey: n.service,
				CommonLabels: map[string]string{"service": n.service}, Alerts: n.alerts,
			})
			require.NoError(t, err)
		}
		run := incidentsCommand(t, svc, "list")

		code, out, errOut := run("--peak-severity=critical")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, ""+
			"ID             SEVERITY                          STATUS     SERVICE   CREATED           ASSIGNEE  TITLE\n"+
			"INC-2026-0002  CRITICAL                          triggered  search    2026-05-04 10:00  -         Down on search\n"+
			"INC-2026-0001  MEDIUM (CRITICAL at its highest)  triggered  checkout  2026-05-04 10:00  -         Down, Slow on checkout\n", out)

		ids := func(args ...string) []string {
			t.Helper()
			code, out, errOut := run(append(args, "-o", "json")...)
			require.Equal(t, 0, code, errOut)
			var page incident.Page
			require.NoError(t, json.Unmarshal([]byte(out), &page))
			var got []string
			for _, inc := range page.Incidents {
				got = append(got, inc.ID)
			}
			return got
		}
		require.Equal(t, []string{"INC-2026-0002"}, ids("--severity=critical"))
		require.Equal(t, []string{"INC-2026-0003", "INC-2026-0001"}, ids("--severity=medium"))
		require.Equal(t, []string{"INC-2026-0003"}, ids("--peak-severity=medium"))
		require.Equal(t, []string{"INC-2026-0003", "INC-2026-0002", "INC-2026-0001"}, ids("--peak-severity=medium", "--peak-severity=CRITICAL"))
		require.Equal(t, []string{"INC-2026-0001"}, ids("--peak-severity=critical", "--severity=medium"))

		code, _, errOut = run("--peak-severity=SEV1")
		require.Equal(t, 4, code)
		require.Equal(t, "srectl: sred answered 400: peak_severity: unknown severity \"SEV1\" (want one of CRITICAL, HIGH, MEDIUM, LOW)\n", errOut)
	})
}

// TestIncidentsOutputOneLinePerValue: a label value with a newline or a
// tab (here the service an incident is named after) stays on its line and
// in its column: the table keeps one row per incident, and show keeps the
// value on its field's line, printed as \n and \t as the timeline does.
func TestIncidentsOutputOneLinePerValue(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
		svc := newIncidentService(t, db, now)
		for _, service := range []string{"we\nb\"x", "pay\tments"} {
			labels := map[string]string{"alertname": "Down\nHard", "service": service, "severity": "critical"}
			fireAlert(t, svc, "{}:"+service, service, labels, now.Add(-time.Minute))
		}
		run := incidentsCommand(t, svc, "--actor=alice")
		code, out, errOut := run("list")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, ""+
			"ID             SEVERITY  STATUS     SERVICE     CREATED           ASSIGNEE  TITLE\n"+
			"INC-2026-0002  CRITICAL  triggered  pay\\tments  2026-05-04 10:00  -         Down Hard on pay ments\n"+
			"INC-2026-0001  CRITICAL  triggered  we\\nb\"x     2026-05-04 10:00  -         Down Hard on we b\"x\n", out)

		code, out, errOut = run("show", "INC-2026-0001")
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "\nService:   we\\nb\"x\nAssignee:  -\n")
		require.Contains(t, out, "\nAlerts (1):\n  firing   Down\\nHard since 2026-05-04T09:59:00Z\n")
	})
}

// TestIncidentsShowTellsAlertsApart: the alerts of one group differ in
// labels such as instance; show prints the labels that differ between the
// incident's alerts next to each one's name (quoted, escaped as in the
// timeline), not the same "firing HighErr" line once per alert.
func TestIncidentsShowTellsAlertsApart(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
		svc := newIncidentService(t, db, now)
		alert := func(instance string, extra ...string) incident.NotifiedAlert {
			labels := map[string]string{"alertname": "HighErr", "service": "api", "severity": "critical", "instance": instance}
			for i := 0; i+1 < len(extra); i += 2 {
				labels[extra[i]] = extra[i+1]
			}
			return incident.NotifiedAlert{Status: "firing", Fingerprint: instance, StartsAt: now.Add(-time.Minute), Labels: labels}
		}
		_, err := svc.Ingest(context.Background(), incident.Notification{
			Receiver: "sred", Status: "firing", GroupKey: `{}:{alertname="HighErr", service="api"}`,
			CommonLabels: map[string]string{"alertname": "HighErr", "service": "api", "severity": "critical"},
			Alerts:       []incident.NotifiedAlert{alert("a"), alert("b", "path", "/data"), alert("c\"q\nü")},
		})
		require.NoError(t, err)
		run := incidentsCommand(t, svc, "--actor=alice")
		code, out, errOut := run("show", "INC-2026-0001")
		require.Equal(t, 0, code, errOut)
		for _, line := range []string{
			`  firing   HighErr {instance="a"} since 2026-05-04T09:59:00Z`,
			`  firing   HighErr {instance="b", path="/data"} since 2026-05-04T09:59:00Z`,
			`  firing   HighErr {instance="c\"q\nü"} since 2026-05-04T09:59:00Z`,
		} {
			require.Contains(t, out, "\n"+line+"\n")
		}
	})
}

// TestIncidentsListSince: --since takes the durations SREs write in
// PromQL (7d, 1w, 90m), as `incidents export --since 30d` does, an RFC
// 3339 time or Unix seconds; anything else is srectl's error naming the
// flag and what it takes, before any request. Before, `--since 7d`
// reached sred as a time and came back as its 400.
func TestIncidentsListSince(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		created := time.Now().UTC().Add(-3 * 24 * time.Hour).Truncate(time.Second)
		svc := newIncidentService(t, db, created)
		labels := map[string]string{"alertname": "Down", "service": "api", "severity": "critical"}
		fireAlert(t, svc, "api", "f", labels, created.Add(-time.Minute))
		run := incidentsCommand(t, svc, "--actor=alice")
		for _, c := range []struct {
			since string
			found bool
		}{
			{"7d", true}, {"1w", true}, {"96h", true}, {"2d", false}, {"90m", false},
			{created.Add(-time.Hour).Format(time.RFC3339), true}, {created.Add(time.Hour).Format(time.RFC3339), false},
			{strconv.FormatInt(created.Add(-time.Hour).Unix(), 10), true},
		} {
			code, out, errOut := run("list", "--since", c.since)
			require.Equal(t, 0, code, "%s: %s", c.since, errOut)
			require.Equal(t, c.found, strings.Contains(out, "INC-2026-0001"), "%s: %s", c.since, out)
		}
		code, out, errOut := run("list", "--since", "yesterday")
		require.Equal(t, 2, code)
		require.Empty(t, out)
		require.Equal(t, "srectl: --since: want a duration (24h, 7d), an RFC 3339 time (2026-05-04T10:00:00Z) or Unix seconds, got \"yesterday\"\n", errOut)
	})
}

// TestIncidentsShowIndentsNoteLines: a note of several lines is shown in
// its entry's message column, each line after the first indented to it,
// so that a line of the note cannot read as a timeline entry of its own.
func TestIncidentsShowIndentsNoteLines(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
		svc := newIncidentService(t, db, now)
		labels := map[string]string{"alertname": "Down", "service": "api", "severity": "critical"}
		res, err := svc.Ingest(context.Background(), incident.Notification{
			Receiver: "sred", Status: "firing", GroupKey: "api", CommonLabels: labels,
			Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "f", StartsAt: now.Add(-time.Minute), Labels: labels}},
		})
		require.NoError(t, err)
		_, err = svc.AddNote(context.Background(), res.Created[0], "bob", "rolled back:\n2026-05-04 10:05:00  status         alice          resolved by alice\n- step two")
		require.NoError(t, err)
		run := incidentsCommand(t, svc, "--actor=alice")
		code, out, errOut := run("show", res.Created[0])
		require.Equal(t, 0, code, errOut)
		pad := strings.Repeat(" ", 53)
		require.Contains(t, out, "\n  2026-05-04 10:00:00  note           bob            rolled back:\n"+
			pad+"2026-05-04 10:05:00  status         alice          resolved by alice\n"+
			pad+"- step two\n")
	})
}

// A page past the last incident says so on stderr, with how many
// incidents match, instead of printing a table header alone.
func TestIncidentsListPastEnd(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
		svc := newIncidentService(t, db, now)
		for _, s := range []string{"checkout", "search"} {
			fireAlert(t, svc, s, s, map[string]string{"alertname": "Down", "service": s, "severity": "critical"}, now.Add(-time.Minute))
		}
		run := incidentsCommand(t, svc)
		for _, tc := range []struct {
			args    []string
			out     string
			errLine string
		}{
			{[]string{"--offset=2"}, "", "no incidents at offset 2: 2 incidents match (offsets 0 to 1)\n"},
			{[]string{"--offset=500"}, "", "no incidents at offset 500: 2 incidents match (offsets 0 to 1)\n"},
			{[]string{"--offset=1", "--service=search"}, "", "no incidents at offset 1: 1 incident matches (at offset 0)\n"},
			{[]string{"--offset=3", "--service=cart"}, "", "no incidents at offset 3: no incident matches\n"},
			{[]string{"--offset=1"}, "" +
				"ID             SEVERITY  STATUS     SERVICE   CREATED           ASSIGNEE  TITLE\n" +
				"INC-2026-0001  CRITICAL  triggered  checkout  2026-05-04 10:00  -         Down on checkout\n", ""},
		} {
			t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
				code, out, errOut := run(append([]string{"list"}, tc.args...)...)
				require.Equal(t, 0, code, errOut)
				require.Equal(t, tc.out, out)
				require.Equal(t, tc.errLine, errOut)
			})
		}
	})
}

// srectl takes an incident ID in any case, as sred's API does.
func TestIncidentsIDAnyCase(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
		svc := newIncidentService(t, db, now)
		fireAlert(t, svc, "checkout", "checkout", map[string]string{"alertname": "Down", "service": "checkout", "severity": "critical"}, now.Add(-time.Minute))
		run := incidentsCommand(t, svc, "--actor=alice")
		code, out, errOut := run("ack", "inc-2026-0001")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, "INC-2026-0001 is now acknowledged\n", out)
		code, out, errOut = run("show", "Inc-2026-0001")
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "INC-2026-0001 [CRITICAL] Down on checkout\nStatus:    acknowledged\n")
	})
}
