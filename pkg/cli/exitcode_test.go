package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kingpin/v2"
	"github.com/stretchr/testify/require"
)

// A file named on the command line that does not exist fails the command
// with exit code 1 whichever subcommand reads it, as promtool does; exit
// code 2 stays for command lines srectl cannot parse (before, `check config`
// and its --web.config.file, and the token files of gate, change record and
// alert fire, exited 2).
func TestMissingFileExitCode(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.yml")
	good := filepath.Join("..", "config", "testdata", "conf.good.yml")
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"generate", []string{"generate", "-i", missing}, 1},
		{"generate scaling", []string{"generate", "-i", filepath.Join("..", "..", "examples", "slos"), "--scaling", missing}, 1},
		{"validate", []string{"validate", missing}, 1},
		{"check config", []string{"check", "config", missing}, 1},
		{"check config web config", []string{"check", "config", "--web.config.file", missing, good}, 1},
		{"runbook validate", []string{"runbook", "validate", missing}, 1},
		{"runbook validate config", []string{"runbook", "validate", "--config.file", missing}, 1},
		{"chaos validate", []string{"chaos", "validate", missing}, 1},
		{"rollout validate", []string{"rollout", "validate", missing}, 1},
		{"scaling check", []string{"scaling", "check", missing}, 1},
		{"scaling generate", []string{"scaling", "generate", "--policy", missing}, 1},
		{"escalation simulate", []string{"escalation", "simulate", "--config.file", missing}, 1},
		{"oncall", []string{"oncall", "--config.file", missing}, 1},
		{"incidents import", []string{"incidents", "import", missing}, 1},
		{"gate token", []string{"gate", "--service", "s", "--override-token-file", missing, "--sred.url", "http://127.0.0.1:1"}, 1},
		{"change token", []string{"change", "record", "--service", "s", "--override-token-file", missing, "--sred.url", "http://127.0.0.1:1"}, 1},
		{"alert token", []string{"alert", "fire", "--webhook.token-file", missing, "--sred.url", "http://127.0.0.1:1"}, 1},
		{"usage", []string{"check", "config"}, 2},
		{"unknown flag", []string{"validate", "--bogus", missing}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(c.args, &stdout, &stderr)
			require.Equal(t, c.code, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
			if c.code == 1 {
				require.Contains(t, stdout.String()+stderr.String(), "missing.yml")
			}
		})
	}
}

// sredCommands are the command lines of every srectl command that talks to
// sred (without --sred.url), each valid as far as srectl checks it before
// asking sred. TestSredExitCodes fails when a command that has --sred.url is
// missing here.
var sredCommands = [][]string{
	{"incidents", "list"},
	{"incidents", "show", "INC-2026-0001"},
	{"incidents", "ack", "INC-2026-0001"},
	{"incidents", "investigate", "INC-2026-0001"},
	{"incidents", "resolve", "INC-2026-0001"},
	{"incidents", "snooze", "INC-2026-0001", "--for", "30m"},
	{"incidents", "create", "--title", "t", "--service", "api", "--severity", "HIGH"},
	{"incidents", "split", "INC-2026-0001", "--group-key", "{}:{}"},
	{"incidents", "merge", "INC-2026-0001", "INC-2026-0002"},
	{"incidents", "export"},
	{"incidents", "import", "IMPORT_FILE"},
	{"status"},
	{"alert", "fire"},
	{"alert", "resolve"},
	{"oncall"},
	{"escalation", "simulate", "-l", "service=api"},
	{"runbook", "list"},
	{"runbook", "runs"},
	{"runbook", "show", "1"},
	{"runbook", "approve", "1"},
	{"runbook", "cancel", "1"},
	{"runbook", "kill-switch"},
	{"budget"},
	{"gate", "--service", "api"},
	{"sla", "report", "--customer", "acme"},
	{"chaos", "plan", "x"},
	{"chaos", "run", "x"},
	{"chaos", "status"},
	{"chaos", "stop", "1"},
	{"chaos", "approve", "1"},
	{"chaos", "halt"},
	{"chaos", "report", "1"},
	{"report", "noise"},
	{"change", "record", "--service", "api"},
	{"change", "finish", "1", "--outcome", "succeeded"},
	{"change", "list"},
	{"rollout", "run", "x", "1.2.3"},
	{"rollout", "status"},
	{"rollout", "promote", "1"},
	{"rollout", "pause", "1"},
	{"rollout", "abort", "1"},
}

// TestSredExitCodes: every command that talks to sred exits with the codes
// of docs/rules.md: 4 when sred refuses the request (any 4xx answer), 3 when
// it fails (5xx), 1 for a missing or invalid --http.config.file, 2 for a
// --sred.url that is not a URL. Before, incidents, runbook, oncall,
// escalation simulate, change finish and change list exited 1 when sred
// refused and budget, gate, sla, change record, chaos and rollout exited 2
// for an invalid --http.config.file.
func TestSredExitCodes(t *testing.T) {
	// Every command with --sred.url (its own or its parent's) is in
	// sredCommands, but the offline validate commands.
	app, _, _ := newApp(io.Discard, io.Discard)
	listed := map[string]bool{}
	for _, args := range sredCommands {
		cmd := args[0]
		if len(args) > 1 && !strings.HasPrefix(args[1], "-") && app.GetCommand(args[0]).Model().Commands != nil {
			cmd += " " + args[1]
		}
		listed[cmd] = true
	}
	var walk func(cs []*kingpin.CmdModel, sred bool)
	walk = func(cs []*kingpin.CmdModel, sred bool) {
		for _, c := range cs {
			has := sred
			for _, f := range c.Flags {
				has = has || f.Name == "sred.url"
			}
			if len(c.Commands) > 0 {
				walk(c.Commands, has)
				continue
			}
			if has && c.Name != "validate" {
				require.True(t, listed[c.FullCommand], "%s talks to sred: add it to sredCommands", c.FullCommand)
			}
		}
	}
	walk(app.Model().Commands, false)

	dir := t.TempDir()
	importFile := filepath.Join(dir, "incidents.jsonl")
	require.NoError(t, os.WriteFile(importFile, []byte(`{"id":"INC-2026-0001"}`+"\n"), 0o600))
	invalidHTTPConfig := filepath.Join(dir, "http.yml")
	require.NoError(t, os.WriteFile(invalidHTTPConfig, []byte("tls_config:\n  ca_fle: ca.pem\n"), 0o600))
	missingHTTPConfig := filepath.Join(dir, "missing-http.yml")

	// status is what the server answers, in the API's error envelope
	// (errorType as sred names it), to every request; with notJSON, a
	// text body.
	var status int
	var notJSON bool
	errorTypes := map[int]string{400: "bad_data", 401: "unauthorized", 403: "forbidden", 404: "not_found",
		409: "conflict", 422: "bad_data", 500: "internal", 503: "unavailable"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if notJSON {
			w.WriteHeader(status)
			fmt.Fprintf(w, "<html>test server answers %d</html>\n", status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": errorTypes[status],
			"error": fmt.Sprintf("test server answers %d", status)})
	}))
	defer srv.Close()

	type answer struct {
		status  int
		notJSON bool
		code    int
	}
	// A 2xx whose envelope says "error", or that is not JSON, is a broken
	// answer of sred, not a refusal: 3 (it exited 4, as a 4xx).
	answers := []answer{{400, false, 4}, {401, false, 4}, {403, false, 4}, {404, false, 4}, {409, false, 4}, {422, false, 4},
		{500, false, 3}, {503, false, 3}, {200, false, 3}, {200, true, 3}, {404, true, 4}, {502, true, 3}}
	for _, cmd := range sredCommands {
		args := slices.Clone(cmd)
		for i, a := range args {
			if a == "IMPORT_FILE" {
				args[i] = importFile
			}
		}
		name := strings.Join(cmd[:min(2, len(cmd))], " ")
		run := func(t *testing.T, extra ...string) (int, string) {
			var stdout, stderr bytes.Buffer
			code := Main(append(slices.Clone(args), extra...), &stdout, &stderr)
			return code, stdout.String() + stderr.String()
		}
		t.Run(name, func(t *testing.T) {
			for _, a := range answers {
				status, notJSON = a.status, a.notJSON
				code, out := run(t, "--sred.url="+srv.URL)
				require.Equal(t, a.code, code, "sred answered %d (not JSON: %v):\n%s", a.status, a.notJSON, out)
				require.Contains(t, out, fmt.Sprintf("test server answers %d", a.status))
			}
			status, notJSON = http.StatusOK, false
			for _, f := range []string{missingHTTPConfig, invalidHTTPConfig} {
				code, out := run(t, "--sred.url="+srv.URL, "--http.config.file="+f)
				require.Equal(t, 1, code, "--http.config.file=%s:\n%s", f, out)
				require.Contains(t, out, "http.config.file "+f)
			}
			code, out := run(t, "--sred.url=localhost:8095")
			require.Equal(t, 2, code, out)
			require.Contains(t, out, `invalid --sred.url "localhost:8095"`)
		})
	}

	// The deploy gate's denial is a verdict, not a refusal: `srectl change
	// record` exits 1 when sred answers 409 "refused", as `srectl gate`
	// does when the gate denies.
	status, errorTypes[409] = http.StatusConflict, "refused"
	var stdout, stderr bytes.Buffer
	code := Main([]string{"change", "record", "--service", "api", "--sred.url=" + srv.URL}, &stdout, &stderr)
	require.Equal(t, 1, code, stderr.String())
	require.Equal(t, "refused: test server answers 409\n", stdout.String())

	// `alert resolve` of an alert sred has no firing incident for: what
	// sred answers is a not found, exit 4 (it exited 1, the code of an
	// invalid file).
	noIncidents := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"success","data":{"incidents":[]}}`)
	}))
	defer noIncidents.Close()
	stdout.Reset()
	stderr.Reset()
	code = Main([]string{"alert", "resolve", "--sred.url=" + noIncidents.URL}, &stdout, &stderr)
	require.Equal(t, 4, code, stderr.String())
	require.Contains(t, stderr.String(), "no open incident has a firing alert")

	// The offline modes of oncall and escalation simulate (--config.file,
	// without --sred.url) refuse a flag value the file does not know as a
	// usage error, exit 2, where sred answers 404 or 400 (exit 4). They
	// exited 1, the code of an invalid file.
	cfg := filepath.Join("..", "..", "examples", "sred.yml")
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"oncall", "--config.file", cfg, "--service", "nope"}, `unknown service "nope"`},
		{[]string{"oncall", "--config.file", cfg, "--schedule", "nope"}, `unknown schedule "nope"`},
		{[]string{"escalation", "simulate", "--config.file", cfg, "-l", "service=api", "-l", "severity=urgent"}, `--label: unknown severity "urgent"`},
	} {
		stdout.Reset()
		stderr.Reset()
		code := Main(c.args, &stdout, &stderr)
		require.Equal(t, 2, code, "%v: %s", c.args, stderr.String())
		require.Contains(t, stderr.String(), c.msg)
	}
}

// TestIncidentsValueExitCodes: a flag value srectl refuses itself, before
// asking sred, is a usage error (exit 2) as kingpin's own are; sred is not
// asked. Before, `incidents snooze --for`, `incidents create --severity`,
// `incidents list|export --since` and an empty --actor exited 1, the code
// of an invalid file.
func TestIncidentsValueExitCodes(t *testing.T) {
	asked := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = true
		http.Error(w, "unexpected request", http.StatusTeapot)
	}))
	defer srv.Close()
	for _, c := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"snooze", "INC-2026-0001", "--for", "30"}, `--for: not a valid duration string: "30"`},
		{[]string{"create", "--title", "t", "--service", "api", "--severity", "urgent"}, `--severity: unknown severity "urgent"`},
		{[]string{"list", "--since", "yesterday"}, `--since: want a duration`},
		{[]string{"export", "--since", "yesterday"}, `--since: want a duration`},
		{[]string{"ack", "INC-2026-0001", "--actor="}, "no actor: set --actor or $USER"},
		{[]string{"create", "--title", "t", "--service", "api", "--severity", "HIGH", "--actor="}, "no actor: set --actor or $USER"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(append([]string{"incidents", "--sred.url=" + srv.URL}, c.args...), &stdout, &stderr)
			require.Equal(t, 2, code, stderr.String())
			require.Contains(t, stderr.String(), c.stderr)
			require.False(t, asked, "sred was asked")
		})
	}
}

// TestHelpExitCodes: `srectl --help` lists the exit codes a script tells
// apart (before, only docs/rules.md did, and a few commands' help each its
// own).
func TestHelpExitCodes(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, Main([]string{"--help"}, &stdout, &stderr), stderr.String())
	help := strings.Join(strings.Fields(stdout.String()), " ")
	for _, want := range []string{"Exit codes (every command): 0 done;", "1 failure (an invalid or missing file, --http.config.file too;",
		"2 usage (a flag value of the wrong form, --sred.url too);", "3 sred unreachable or failing (5xx);", "4 refused by sred (any 4xx)."} {
		require.Contains(t, help, want)
	}
}
