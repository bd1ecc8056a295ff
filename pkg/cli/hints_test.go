package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/testutil"
)

// TestUsageErrorHints: a command-line mistake exits 2 and says what was
// probably meant.
func TestUsageErrorHints(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "api.yml")
	require.NoError(t, os.WriteFile(spec, []byte("{}"), 0o600))
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"generate", spec}, "srectl: unexpected " + spec + " (did you mean: srectl generate -i " + spec + "?)\n"},
		{[]string{"generate", "-o", dir, "../../examples/slos"}, "srectl: unexpected ../../examples/slos (did you mean: srectl generate -i ../../examples/slos?)\n"},
		{[]string{"generat", "-i", spec}, "srectl: expected command but got \"generat\" (did you mean \"generate\"?)\n"},
		{[]string{"incidents", "lst"}, "srectl: expected command but got \"lst\" (did you mean \"incidents list\"?)\n"},
		{[]string{"runbook", "kil-switch"}, "srectl: expected command but got \"kil-switch\" (did you mean \"runbook kill-switch\"?)\n"},
		{[]string{"incidents"}, "srectl: must select a subcommand of 'incidents' (commands: list, ls, show, ack, investigate, resolve, snooze, create, split, merge, export, import)\n"},
		{[]string{"gate", "--servic=web"}, "srectl: unknown long flag '--servic' (did you mean --service?)\n"},
		{[]string{"gate", "--service=web", "--sred-url", "http://x"}, "srectl: unknown long flag '--sred-url' (did you mean --sred.url?)\n"},
		{[]string{"incidents", "list", "--sred.ur=http://x"}, "srectl: unknown long flag '--sred.ur' (did you mean --sred.url?)\n"},
		{[]string{"generate", "-i", spec, "--quite"}, "srectl: unknown long flag '--quite' (did you mean --quiet?)\n"},
		{[]string{"--hepl"}, "srectl: unknown long flag '--hepl' (did you mean --help?)\n"},
		// A flag of the commands given before the command, as amtool's --alertmanager.url may be.
		{[]string{"--sred.url=http://127.0.0.1:8096", "incidents", "list"},
			"srectl: unknown long flag '--sred.url' (--sred.url is a flag of the commands, not of srectl: give it after the command, srectl incidents list --sred.url=http://127.0.0.1:8096)\n"},
		{[]string{"--sred.url", "http://x", "incidents", "show", "INC-1"},
			"srectl: unknown long flag '--sred.url' (--sred.url is a flag of the commands, not of srectl: give it after the command, srectl incidents show INC-1 --sred.url http://x)\n"},
		{[]string{"--sred.url=http://x"}, "srectl: unknown long flag '--sred.url' (--sred.url is a flag of the commands, not of srectl: give it after the command)\n"},
		// A file named by a flag, as sred's --config.file, to a command that takes it as an argument.
		{[]string{"check", "config", "--config.file", spec}, "srectl: unknown long flag '--config.file' (srectl check config takes its <file> as an argument, not a flag: srectl check config " + spec + ")\n"},
		{[]string{"check", "config", "--config.file=" + spec}, "srectl: unknown long flag '--config.file' (srectl check config takes its <file> as an argument, not a flag: srectl check config " + spec + ")\n"},
		{[]string{"runbook", "validate", "--file", spec}, "srectl: unknown long flag '--file' (srectl runbook validate takes its <files> as an argument, not a flag: srectl runbook validate " + spec + ")\n"},
		{[]string{"check", "config", "--config.file"}, "srectl: unknown long flag '--config.file'\n"},
		// Nothing close: no guess.
		{[]string{"gate", "--service=web", "--colour"}, "srectl: unknown long flag '--colour'\n"},
		{[]string{"frobnicate"}, "srectl: expected command but got \"frobnicate\" (commands: help, generate, validate, incidents, status, alert, check, oncall, escalation, runbook, budget, gate, sla, chaos, report, change, rollout, scaling, dashboards; see srectl --help)\n"},
		{[]string{"gate"}, "srectl: required flag(s) '--service' not provided\n"},
		// An id that is not one, named with the argument and cut, not in strconv's words.
		{[]string{"runbook", "show", "abc"}, "srectl: run ID \"abc\": want a positive integer\n"},
		{[]string{"runbook", "approve", "0"}, "srectl: run ID \"0\": want a positive integer\n"},
		{[]string{"runbook", "cancel", strings.Repeat("n", 300)}, "srectl: run ID \"" + strings.Repeat("n", 61) + "…\": want a positive integer\n"},
		{[]string{"change", "finish", "--outcome=failed", "x1"}, "srectl: change id \"x1\": want a positive integer\n"},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			require.Equal(t, 2, Main(tc.args, &stdout, &stderr), "stderr: %s", stderr.String())
			require.Equal(t, tc.stderr, stderr.String())
			require.Empty(t, stdout.String())
		})
	}
}

// TestSredNotListening: a command whose sred does not listen (not started,
// or started on another port) exits 3 and says how to start one and how
// to name its address; the export stream too.
func TestSredNotListening(t *testing.T) {
	down := "http://127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	hint := "connect: connection refused (is sred running? `make run` starts one on localhost:8095; --sred.url or SRECTL_SRED_URL names another, now " + down + ")\n"
	for _, args := range [][]string{
		{"incidents", "list"},
		{"alert", "fire"},
		{"incidents", "export"},
		{"gate", "--service=api"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			require.Equal(t, 3, Main(append(args, "--sred.url="+down), &stdout, &stderr), "stderr: %s", stderr.String())
			require.True(t, strings.HasPrefix(stderr.String(), "srectl: reach sred: "), stderr.String())
			require.True(t, strings.HasSuffix(stderr.String(), hint), stderr.String())
		})
	}
}

func TestShorten(t *testing.T) {
	one := "sred answered 404: service \"x\" has no SLO: not found"
	require.Equal(t, one, shorten(one))
	long := "sred answered 503: error budget of api/availability: Prometheus at http://prom:9090 unavailable: query 1 - (\n" +
		"  sum(rate(http_requests_total{code=~\"5..\"}[30d]))\n" +
		"  /\n" +
		"  sum(rate(http_requests_total[30d]))\n" +
		"): Post \"http://prom:9090/api/v1/query\": dial tcp: connection refused"
	require.Equal(t, "sred answered 503: error budget of api/availability: Prometheus at http://prom:9090 unavailable: query 1 - ( [… 3 more lines; --verbose prints them] ): Post \"http://prom:9090/api/v1/query\": dial tcp: connection refused", shorten(long))
}

// TestNegativeValueHint: a flag's value that starts with '-' (a negative
// duration or number) is read by kingpin as another flag; the error says
// the value goes after '=' instead of only "expected argument".
func TestNegativeValueHint(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"incidents", "snooze", "INC-2026-0001", "--for", "-5m"},
			"srectl: expected argument for flag '--for' (a value starting with '-' goes after '=': --for=-5m)\n"},
		{[]string{"incidents", "snooze", "INC-2026-0001", "--for"}, "srectl: expected argument for flag '--for'\n"},
	} {
		var stdout, stderr bytes.Buffer
		require.Equal(t, 2, Main(tc.args, &stdout, &stderr), "%q", tc.args)
		require.Equal(t, tc.stderr, stderr.String(), "%q", tc.args)
	}
}
