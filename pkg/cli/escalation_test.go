package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	sredapp "github.com/rootuip/sre/pkg/app"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/oncall"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

func TestEscalationSimulateAndOncall(t *testing.T) {
	cfg := filepath.Join(testutil.RepoRoot(t), "examples", "sred.yml")
	var out, errb bytes.Buffer
	code := Main([]string{"escalation", "simulate", "--config.file", cfg, "-l", "service=api", "-l", "severity=low", "--at", "2026-03-10T08:00:00Z"}, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	require.Equal(t, `Policy "api", severity LOW, triggered 2026-03-10T08:00:00Z
AT                           AFTER     LEVEL         USERS       CHANNELS      NOTES
2026-03-10 08:00 +00:00 UTC  +0s       0             bob         email, slack  
2026-03-10 09:00 +00:00 UTC  +1h0m0s   1             dan         email, slack  
2026-03-10 09:15 +00:00 UTC  +1h15m0s  2             tara        email, slack  
2026-03-10 09:45 +00:00 UTC  +1h45m0s  3             mia, chris  email, slack  
2026-03-10 10:45 +00:00 UTC  +2h45m0s  0 (repeat 1)  bob         email, slack  
2026-03-10 11:45 +00:00 UTC  +3h45m0s  1 (repeat 1)  dan         email, slack  
2026-03-10 12:00 +00:00 UTC  +4h0m0s   2 (repeat 1)  tara        email, slack  
2026-03-10 12:30 +00:00 UTC  +4h30m0s  3 (repeat 1)  mia, chris  email, slack  
Offline: from the config file only; overrides and maintenance windows stored in sred are not included (use --sred.url).
`, out.String())

	out.Reset()
	code = Main([]string{"oncall", "--config.file", cfg, "--service", "api", "--at", "2026-03-29T12:00:00Z"}, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	require.Equal(t, `SCHEDULE       SERVICE  ROLE     ON CALL
api-primary    api      primary  dan
api-secondary  api      backup   bob
`, out.String())

	errb.Reset()
	code = Main([]string{"oncall", "--config.file", cfg, "--service", "web"}, &out, &errb)
	require.Equal(t, 2, code)
	require.Equal(t, "srectl: unknown service \"web\"\n", errb.String())
	require.True(t, strings.HasPrefix(errb.String(), "srectl:"))

	errb.Reset()
	code = Main([]string{"oncall", "--config.file", cfg, "--service", strings.Repeat("n", 5000)}, &out, &errb)
	require.Equal(t, 2, code)
	require.Equal(t, "srectl: unknown service \""+strings.Repeat("n", 61)+"…\"\n", errb.String(), "the name is cut as sred cuts it")
}

// TestEscalationSimulateWithoutConfig: without --config.file, where the
// working directory has no sred.yml, the error names the flags that say
// where the configuration is, not the missing file alone.
func TestEscalationSimulateWithoutConfig(t *testing.T) {
	t.Chdir(t.TempDir())
	var out, errb bytes.Buffer
	code := Main([]string{"escalation", "simulate", "-l", "service=api"}, &out, &errb)
	require.Equal(t, 2, code, errb.String())
	require.Equal(t, "srectl: no sred.yml in the working directory: name sred's configuration with --config.file "+
		"(srectl escalation simulate --config.file examples/sred.yml ...), or a running sred with --sred.url\n", errb.String())
	require.Empty(t, out.String())

	// A file named and missing is named as before.
	errb.Reset()
	code = Main([]string{"escalation", "simulate", "--config.file", "sred.yml", "-l", "service=api"}, &out, &errb)
	require.Equal(t, 1, code, errb.String())
	require.Contains(t, errb.String(), "open sred.yml: no such file or directory")
}

// TestEscalationSimulateTimeZone: a trigger time given with an offset
// (--at 2026-03-28T10:00:00+01:00) printed its steps as "10:00 +0100", a
// zone without a name printed by Go's "MST"; they read as srectl oncall's
// shift times, with the offset as RFC 3339 writes it, offline and from
// sred.
func TestEscalationSimulateTimeZone(t *testing.T) {
	cfg := filepath.Join(testutil.RepoRoot(t), "examples", "sred.yml")
	want := []string{
		`Policy "api", severity LOW, triggered 2026-03-28T10:00:00+01:00`,
		"AT                       AFTER     LEVEL         USERS       CHANNELS      NOTES",
		"2026-03-28 10:00 +01:00  +0s       0             dan         email, slack  ",
		"2026-03-28 11:00 +01:00  +1h0m0s   1             bob         email, slack  ",
	}
	var out, errb bytes.Buffer
	code := Main([]string{"escalation", "simulate", "--config.file", cfg, "-l", "service=api", "-l", "severity=low", "--at", "2026-03-28T10:00:00+01:00"}, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	require.Equal(t, want, strings.Split(out.String(), "\n")[:4])
	require.NotContains(t, out.String(), "+0100")

	loaded, err := sredapp.LoadConfig(cfg)
	require.NoError(t, err)
	ec := sredapp.Escalation.Of(loaded)
	testutil.Backends(t, [][]store.Migration{incident.Migrations, jobs.Migrations, oncall.Migrations, notify.Migrations, escalation.Migrations}, func(t *testing.T, db *store.DB) {
		start := time.Date(2026, 3, 28, 9, 0, 0, 0, time.UTC)
		dir := oncall.NewDirectory(db, &ec.OnCall)
		engine := escalation.NewEngine(db, &ec.Escalation, dir, &ec.Notifications, "", escalation.Options{Clock: clock.NewManual(start), Registerer: prometheus.NewRegistry()})
		mux := http.NewServeMux()
		(&escalation.API{Engine: engine}).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		var out, errb bytes.Buffer
		code := Main([]string{"escalation", "simulate", "--sred.url", srv.URL, "-l", "service=api", "-l", "severity=low", "--at", "2026-03-28T10:00:00+01:00"}, &out, &errb)
		require.Equal(t, 0, code, errb.String())
		require.NotContains(t, out.String(), "+0100")
		require.Equal(t, want, strings.Split(out.String(), "\n")[:4])
	})
}

// TestEscalationSimulateOnline: with --sred.url the dry run runs in sred,
// with the overrides and maintenance windows stored there.
func TestEscalationSimulateOnline(t *testing.T) {
	loaded, err := sredapp.LoadConfig(filepath.Join(testutil.RepoRoot(t), "examples", "sred.yml"))
	require.NoError(t, err)
	cfg := sredapp.Escalation.Of(loaded)
	testutil.Backends(t, [][]store.Migration{incident.Migrations, jobs.Migrations, oncall.Migrations, notify.Migrations, escalation.Migrations}, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		start := time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC)
		dir := oncall.NewDirectory(db, &cfg.OnCall)
		engine := escalation.NewEngine(db, &cfg.Escalation, dir, &cfg.Notifications, "", escalation.Options{Clock: clock.NewManual(start), Registerer: prometheus.NewRegistry()})
		require.NoError(t, dir.ReplaceOverrides(ctx, "api-primary", start.Add(-time.Hour), start.Add(time.Hour),
			[]*oncall.Override{{User: "alice", Start: start.Add(-time.Hour), End: start.Add(time.Hour)}}, "bob", start))
		_, err := engine.AddMaintenance(ctx, &escalation.MaintenanceWindow{Name: "deploy", Matchers: []string{`service="api"`}, Start: start, End: start.Add(20 * time.Minute)}, "bob")
		require.NoError(t, err)
		mux := http.NewServeMux()
		(&escalation.API{Engine: engine}).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()

		var out, errb bytes.Buffer
		code := Main([]string{"escalation", "simulate", "--sred.url", srv.URL, "-l", "service=api", "-l", "severity=low", "--at", "2026-03-10T08:00:00Z"}, &out, &errb)
		require.Equal(t, 0, code, errb.String())
		lines := strings.Split(out.String(), "\n")
		require.Equal(t, []string{
			`Policy "api", severity LOW, triggered 2026-03-10T08:00:00Z`,
			"AT                           AFTER     LEVEL         USERS       CHANNELS      NOTES",
			`2026-03-10 08:20 +00:00 UTC  +20m0s    0             alice       email, slack  maintenance window "deploy": deferred from 2026-03-10T08:00:00Z to its end`,
			"2026-03-10 09:20 +00:00 UTC  +1h20m0s  1             dan         email, slack  ",
		}, lines[:4])
		require.NotContains(t, out.String(), "Offline")

		// A trigger time with nanoseconds (the default, now): AFTER is
		// rounded to the second (+19m59.078841286s before).
		out.Reset()
		code = Main([]string{"escalation", "simulate", "--sred.url", srv.URL, "-l", "service=api", "-l", "severity=low", "--at", "2026-03-10T08:00:00.921158714Z"}, &out, &errb)
		require.Equal(t, 0, code, errb.String())
		lines = strings.Split(out.String(), "\n")
		require.Equal(t, []string{
			`Policy "api", severity LOW, triggered 2026-03-10T08:00:00Z`,
			"AT                           AFTER      LEVEL         USERS       CHANNELS      NOTES",
			`2026-03-10 08:20 +00:00 UTC  +19m59s    0             alice       email, slack  maintenance window "deploy": deferred from 2026-03-10T08:00:00Z to its end`,
			"2026-03-10 09:20 +00:00 UTC  +1h19m59s  1             dan         email, slack  ",
		}, lines[:4])

		errb.Reset()
		code = Main([]string{"escalation", "simulate", "--sred.url", srv.URL, "-l", "severity=urgent"}, &out, &errb)
		require.Equal(t, 4, code)
		require.Equal(t, "srectl: sred: unknown severity \"urgent\" (want one of CRITICAL, HIGH, MEDIUM, LOW)\n", errb.String())
	})
}
