package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckConfig(t *testing.T) {
	fixtures := filepath.Join("..", "config", "testdata")
	good := filepath.Join(fixtures, "conf.good.yml")
	cases := []struct {
		name string
		args []string
		code int
		out  string
	}{
		// The escalation's warnings, which sred logs at start, are
		// printed: this file configures no notification channel, so the
		// default severities page nobody.
		{"good", []string{good}, 0, "Checking '" + good + "'\n  SUCCESS\n" +
			"  WARNING: escalation: default severities.CRITICAL.channels[0]: channel sms is used by the escalation config but not configured in notifications\n" +
			"  WARNING: escalation: default severities.CRITICAL.channels[1]: channel phone is used by the escalation config but not configured in notifications\n" +
			"  WARNING: escalation: default severities.CRITICAL.channels[2]: channel push is used by the escalation config but not configured in notifications\n" +
			"  WARNING: escalation: default severities.CRITICAL.channels[3]: channel email is used by the escalation config but not configured in notifications\n" +
			"  WARNING: escalation: default severities.LOW.channels[1]: channel slack is used by the escalation config but not configured in notifications\n" +
			"  WARNING: no users: sred refuses to start unless --web.no-auth is given (anyone who reaches the port is then admin); list users in auth.users_file\n" +
			"  incident IDs: INC-YYYY-NNNN, webhook auth: none, max body: 4194304 bytes\n" +
			"  service labels: [service job], severity label: severity (default MEDIUM), auto resolve: true, flap window: 1h\n" +
			"  auto resolve after 6h without a delivery\n" +
			"  alertmanager: http://localhost:9093\n" +
			"  watchdog: alert Watchdog, timeout 10m\n" +
			"  prometheus: http://localhost:9090\n\n"},
		{"example", []string{filepath.Join("..", "..", "examples", "sred.yml")}, 0, ""},
		{"unknown field", []string{filepath.Join(fixtures, "unknown_field.bad.yml")}, 1,
			"Checking '" + filepath.Join(fixtures, "unknown_field.bad.yml") + "'\n  FAILED: load config " +
				filepath.Join(fixtures, "unknown_field.bad.yml") + ":2:3: unknown field \"incident_id_prefx\" in global (did you mean \"incident_id_prefix\"?)\n\n"},
		{"bad severity", []string{filepath.Join(fixtures, "severity_map.bad.yml")}, 1,
			"Checking '" + filepath.Join(fixtures, "severity_map.bad.yml") + "'\n  FAILED: load config " +
				filepath.Join(fixtures, "severity_map.bad.yml") + `:3:15: incidents: severity_map["critical"]: unknown severity "SEV1" (want one of CRITICAL, HIGH, MEDIUM, LOW)` + "\n\n"},
		// A syntax error is positioned file:line:col, as `srectl validate`
		// positions the errors of SLO specs.
		{"syntax", []string{filepath.Join(fixtures, "syntax_unclosed.bad.yml")}, 1,
			"Checking '" + filepath.Join(fixtures, "syntax_unclosed.bad.yml") + "'\n  FAILED: load config " +
				filepath.Join(fixtures, "syntax_unclosed.bad.yml") + ":4:19: invalid YAML: \"[\" opened here is not closed before line 5\n\n"},
		{"good and bad", []string{good, filepath.Join(fixtures, "prefix.bad.yml")}, 1, ""},
	}
	var example bytes.Buffer
	require.Equal(t, 0, Main([]string{"check", "config", filepath.Join("..", "..", "examples", "sred.yml")}, &example, &example))
	require.Contains(t, example.String(), "  service graph: 4 services, 4 dependencies (correlation: docs/correlation.md)\n")
	require.Contains(t, example.String(), "  changes: incidents linked within 1h, yellow quota 3 a day, DORA window 1w (docs/changes.md)\n")
	require.Contains(t, example.String(), "  rollout analyses: api (6 checks)")
	require.Contains(t, example.String(), "  scaling policies: api (cpu 2-20, scaled by kubernetes), ml-pipeline (memory 1-10, scaled by sred, dry run) (docs/scaling.md)\n")
	require.Contains(t, example.String(), "  rollouts: api-blue-green (blue_green of api, 5 stages), api-canary (canary of api, 3 stages) (docs/rollout-runner.md)\n")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(append([]string{"check", "config"}, c.args...), &stdout, &stderr)
			require.Equal(t, c.code, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
			if c.out != "" {
				require.Equal(t, c.out, stdout.String())
			}
			if c.code != 0 {
				require.Equal(t, "srectl: configuration check failed\n", stderr.String())
			}
		})
	}
	bad, err := filepath.Glob(filepath.Join(fixtures, "*.bad.yml"))
	require.NoError(t, err)
	require.NotEmpty(t, bad)
	for _, f := range bad {
		var stdout, stderr bytes.Buffer
		require.Equal(t, 1, Main([]string{"check", "config", f}, &stdout, &stderr), f)
		// A syntax error is positioned file:line:col.
		require.Regexp(t, `  FAILED: load config `+regexp.QuoteMeta(f)+`(:\d+:\d+)?: `, stdout.String())
		// No Go type names of the loader (config.plain, escalation.Policy).
		require.NotRegexp(t, `\b(plain|[a-z]+\.[A-Z][A-Za-z]*)\b|cannot unmarshal|not found in type`, stdout.String(), f)
	}
	// An unknown section.
	dir := t.TempDir()
	f := filepath.Join(dir, "sred.yml")
	require.NoError(t, os.WriteFile(f, []byte("receiver: {}\n"), 0o600))
	var out, errb bytes.Buffer
	require.Equal(t, 1, Main([]string{"check", "config", f}, &out, &errb))
	require.Equal(t, "Checking '"+f+"'\n  FAILED: load config "+f+":1:1: unknown field \"receiver\"\n\n", out.String())
	// The service graph's counts of one are singular.
	for _, tc := range []struct{ yaml, want string }{
		{"services: {postgres: {}}\n", "  service graph: 1 service, 0 dependencies (correlation: docs/correlation.md)\n"},
		{"services: {postgres: {}, api: {depends_on: [postgres]}}\n", "  service graph: 2 services, 1 dependency (correlation: docs/correlation.md)\n"},
	} {
		require.NoError(t, os.WriteFile(f, []byte(tc.yaml), 0o600))
		var out, errb bytes.Buffer
		require.Equal(t, 0, Main([]string{"check", "config", f}, &out, &errb), "%s\n%s", out.String(), errb.String())
		require.Contains(t, out.String(), tc.want)
	}
	// So are an analysis' checks and a rollout's stages: an analysis of
	// one check (the error-rate trigger, the others disabled) and a
	// canary of one stage.
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "analyses"), 0o700))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "stages"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "analyses", "one.yml"), []byte(`apiVersion: sre.rootuip.io/v1
kind: RolloutAnalysis
name: one
service: api
interval: 5m
queries:
  requests: sum(increase(http_requests_total{ {{.Selector}} }[{{.Interval}}]))
  errors: sum(increase(http_requests_total{ {{.Selector}},code=~"5.." }[{{.Interval}}]))
rollbackTriggers:
  latencyIncrease: {enabled: false}
  healthChecks: {enabled: false}
  burnRate: {enabled: false}
`), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stages", "one.yml"), []byte(`name: all-at-once
service: api
environment: staging
canary:
  stages: [{weight: 100}]
  set_weight: {exec: {command: [set-weight, '{{ .Vars.weight }}']}}
`), 0o600))
	require.NoError(t, os.WriteFile(f, []byte("analysis: {spec_files: [analyses/]}\nrollouts: {files: [stages/]}\n"), 0o600))
	out.Reset()
	errb.Reset()
	require.Equal(t, 0, Main([]string{"check", "config", f}, &out, &errb), "%s\n%s", out.String(), errb.String())
	require.Contains(t, out.String(), "  rollout analyses: one (1 check) (docs/rollouts.md)\n")
	require.Contains(t, out.String(), "  rollouts: all-at-once (canary of api, 1 stage) (docs/rollout-runner.md)\n")
	var stdout, stderr bytes.Buffer
	require.Equal(t, 1, Main([]string{"check", "config", "/nonexistent.yml"}, &stdout, &stderr))
	require.Contains(t, stdout.String(), "FAILED: load config: open /nonexistent.yml: no such file or directory")
}

// TestCheckConfigStatusPageSection: an error of the status_page section
// names it, as the escalation section's errors do: a maintenance title
// with a control character read "maintenance[0]: title ...", which the
// escalation's maintenance_windows could have meant; each at the
// file:line:col of the value or field at fault.
func TestCheckConfigStatusPageSection(t *testing.T) {
	f := filepath.Join(t.TempDir(), "sred.yml")
	for _, tc := range []struct{ yaml, want string }{
		{"status_page:\n  components: [{name: API, services: [api]}]\n  maintenance:\n" +
			"    - {title: \"DB\\tupgrade\", components: [API], start: 2026-12-05T02:00:00Z, end: 2026-12-05T03:00:00Z}\n",
			`:4:15: status_page: maintenance[0]: title "DB\tupgrade": character U+0009 at byte 2 is not printable (one line of printable characters)`},
		{"status_page:\n  components: [{name: \"API\\nv2\", services: [api]}]\n",
			`:2:23: status_page: components[0]: name "API\nv2": character U+000A at byte 3 is not printable (one line of printable characters)`},
		{"status_page:\n  uptime_days: 400\n", ":2:3: status_page: uptime_days: 400 is out of range (1 to 366)"},
	} {
		require.NoError(t, os.WriteFile(f, []byte(tc.yaml), 0o600))
		var out, errb bytes.Buffer
		require.Equal(t, 1, Main([]string{"check", "config", f}, &out, &errb))
		require.Equal(t, "Checking '"+f+"'\n  FAILED: load config "+f+tc.want+"\n\n", out.String())
	}
}

// TestCheckConfigAccess: combinations of users, webhook credential and
// --web.config.file users that cannot work are reported.
func TestCheckConfigAccess(t *testing.T) {
	dir := filepath.Join("testdata", "access")
	f := func(n string) string { return filepath.Join(dir, n) }
	abs := func(n string) string {
		p, err := filepath.Abs(n)
		require.NoError(t, err)
		return p
	}
	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		// No access warning (its file configures no notification
		// channel: the escalation's warnings say so).
		{"users, webhook token", []string{f("users-webhook-token.yml")}, 0, []string{"  SUCCESS\n  WARNING: escalation: ", "  incident IDs"}},
		{"short webhook token", []string{f("users-short-webhook-token.yml")}, 0,
			[]string{"WARNING: the webhook's bearer token is 9 bytes: webhook requests are not rate-limited, so a short token can be guessed by anyone who reaches the port; use at least 16 random bytes (e.g. openssl rand -hex 16)"}},
		{"one-byte webhook token", []string{f("users-one-byte-webhook-token.yml")}, 0,
			[]string{"WARNING: the webhook's bearer token is 1 byte: webhook requests"}},
		// Override tokens, which a viewer may present, are limited per
		// client (docs/security.md) but a short one is still refused at
		// load, not only warned about.
		{"short override token", []string{f("short-override-token.yml")}, 1,
			[]string{"FAILED: load config " + f("short-override-token.yml") + ":6:3: slos: gate: override token in ", "short-override-token must be at least 16 characters"}},
		{"users, no webhook token", []string{f("users-no-webhook-token.yml")}, 0,
			[]string{"WARNING: the webhook has no bearer token (webhook.bearer_token): Alertmanager must authenticate as a responder or admin user"}},
		{"only viewers, no webhook token", []string{f("viewers-no-webhook-token.yml")}, 0,
			[]string{"WARNING: the webhook has no bearer token (webhook.bearer_token) and no user or token may deliver (role responder or admin): every Alertmanager delivery will get 401/403 and be lost"}},
		{"web config users with webhook token", []string{"--web.config.file=" + f("web-users.yml"), f("users-webhook-token.yml")}, 1,
			[]string{`FAILED: user "rita" is defined both in the users file and in basic_auth_users of the web config file`}},
		{"web config users only", []string{"--web.config.file=" + f("web-users.yml"), good(t)}, 0,
			[]string{"WARNING: the webhook has no bearer token (webhook.bearer_token): Alertmanager must authenticate", "WARNING: 1 user of basic_auth_users in the web config file is an admin checked by sred (not by exporter-toolkit); give it a role"}},
		// The web config file's errors read as sred.yml's: a syntax error
		// at its line and column, no Go type of exporter-toolkit.
		{"web config syntax error", []string{"--web.config.file=" + f("web-syntax.yml"), good(t)}, 1,
			[]string{"FAILED: web config file " + f("web-syntax.yml") + `:2:9: invalid YAML: "[" opened here is not closed before line 3` + "\n"}},
		{"web config unknown field", []string{"--web.config.file=" + f("web-unknown-field.yml"), good(t)}, 1,
			[]string{"FAILED: web config file " + f("web-unknown-field.yml") + ": yaml: unmarshal errors:\n  line 1: unknown field \"basic_auth_user\"\n"}},
		{"tokens given as bcrypt hashes", []string{f("tokens.yml")}, 0,
			[]string{"WARNING: tokens argo, flagger are given as bcrypt hashes: every unknown bearer token a client sends costs one bcrypt comparison per such token; give each token's SHA-256 instead (sha256: in the users file, docs/security.md)"}},
		{"one token given as a bcrypt hash", []string{f("token.yml")}, 0,
			[]string{"WARNING: token argo is given as a bcrypt hash: every unknown bearer token a client sends costs one bcrypt comparison; give the token's SHA-256 instead (sha256: in the users file, docs/security.md)"}},
		// The users file's syntax error reads as sred.yml's: the file, its
		// line and column.
		{"users file syntax error", []string{f("users-syntax.yml")}, 1,
			[]string{"FAILED: load config " + f("users-syntax.yml") + ": users file " + abs(f("syntax-users.yml")) +
				`:2:9: invalid YAML: "{" opened here is not closed before line 3` + "\n"}},
		{"missing users file", []string{f("missing-users.yml")}, 1, []string{"FAILED: load config " + f("missing-users.yml") + ": read users file: open ", "missing.yml: no such file or directory"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(append([]string{"check", "config"}, c.args...), &stdout, &stderr)
			require.Equal(t, c.code, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
			for _, w := range c.want {
				require.Contains(t, stdout.String(), w)
			}
			if c.name == "users, webhook token" {
				require.NotRegexp(t, `WARNING: [^e]`, stdout.String())
			}
		})
	}
}

func good(*testing.T) string {
	return filepath.Join("..", "config", "testdata", "conf.good.yml")
}

// TestCheckConfigSLAStricterThanSLO: a contracted target stricter than the
// objective of the SLO measuring it loads (sred logs it) and is a warning
// of srectl check config; a target as strict as its SLO, or looser, is
// not. The example's contracts are looser than their SLOs.
func TestCheckConfigSLAStricterThanSLO(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "checkout.yml"), []byte(`apiVersion: sre.rootuip.io/v1
kind: ServiceLevelObjectives
service: checkout
slos:
  - name: orders
    objective: 99.9
    sli:
      events:
        errorSelector: 'http_requests_total{job="checkout",code=~"5.."}'
        totalSelector: 'http_requests_total{job="checkout"}'
  - name: latency
    objective: 95
    sli:
      latency:
        histogram: http_request_duration_seconds{job="checkout"}
        threshold: 300ms
`), 0o600))
	conf := func(orders, latency string) string {
		f := filepath.Join(dir, "sred.yml")
		require.NoError(t, os.WriteFile(f, []byte(`slos: {spec_files: [checkout.yml]}
sla:
  customers:
    - id: ACME-001
      services:
        - service: checkout
          availability: {slo: orders, target: `+orders+`}
          latency: {target: `+latency+`}
`), 0o600))
		return f
	}
	// Each warning at the node of sred.yml it names (the SLO of the
	// target, else the target's field), as the errors of the checks are.
	warning := func(pos, kind, target, slo, objective string) string {
		return "  WARNING: " + filepath.Join(dir, "sred.yml") + ":" + pos + ": sla: customer \"ACME-001\": service \"checkout\": " + kind + " target " + target +
			"% is stricter than the objective of SLO \"" + slo + "\" (" + objective +
			"%): the contract can be missed while the SLO's error budget and burn-rate alerts still read healthy; make the SLO at least as strict as the contract\n"
	}
	for _, tc := range []struct {
		orders, latency string
		want            []string
	}{
		{"99.95", "95", []string{warning("7:31", "availability", "99.95", "orders", "99.9")}},
		{"99.99", "99", []string{warning("7:31", "availability", "99.99", "orders", "99.9"), warning("8:11", "latency", "99", "latency", "95")}},
		{"99.9", "95", nil},
		{"99.5", "90", nil},
	} {
		t.Run(tc.orders+"/"+tc.latency, func(t *testing.T) {
			var out, errb bytes.Buffer
			require.Equal(t, 0, Main([]string{"check", "config", conf(tc.orders, tc.latency)}, &out, &errb), "%s\n%s", out.String(), errb.String())
			var got []string
			for _, l := range strings.SplitAfter(out.String(), "\n") {
				if strings.HasPrefix(l, "  WARNING: ") && strings.Contains(l, ": sla: ") {
					got = append(got, l)
				}
			}
			require.Equal(t, tc.want, got, out.String())
		})
	}
	var example bytes.Buffer
	require.Equal(t, 0, Main([]string{"check", "config", filepath.Join("..", "..", "examples", "sred.yml")}, &example, &example))
	require.NotContains(t, example.String(), ": sla: ")
}

// TestCheckConfigEscalationWarningPositions: a warning of the escalation
// section (a user the policy pages on a channel they have no contact for)
// is printed at the value of the level that brings the user in, as the
// errors of the section are; a warning naming no node reads as it is.
func TestCheckConfigEscalationWarningPositions(t *testing.T) {
	f := filepath.Join(t.TempDir(), "sred.yml")
	require.NoError(t, os.WriteFile(f, []byte(`escalation:
  severities:
    CRITICAL: {channels: [sms]}
  policies:
    - name: api
      matchers: ['{severity="CRITICAL"}']
      levels:
        - {after: 0m, users: [alice, bob], channels: [sms, teams]}
        - {after: 10m, schedules: [api-primary]}
oncall:
  users: [{name: alice, phone: "+15550100001"}, {name: bob}, {name: carol}]
  schedules:
    - name: api-primary
      layers: [{rotation: weekly, start: "2026-01-05T09:00", users: [carol]}]
notifications:
  sms: {url: "http://127.0.0.1:1/sms", from: "+15550100000"}
`), 0o600))
	var out, errb bytes.Buffer
	require.Equal(t, 0, Main([]string{"check", "config", f}, &out, &errb), "%s\n%s", out.String(), errb.String())
	require.Contains(t, out.String(), "  WARNING: "+f+":8:38: escalation: policies[0] (api): levels[0].users[1]: user bob has no contact for sms (CRITICAL): those messages skip them\n")
	require.Contains(t, out.String(), "  WARNING: "+f+":9:36: escalation: policies[0] (api): levels[1].schedules[0] (api-primary): user carol has no contact for sms (CRITICAL): those messages skip them\n")
	// A channel of a severity the file leaves to its default has no
	// position; one of the file, at the first value that uses it.
	require.Contains(t, out.String(), "  WARNING: escalation: default severities.HIGH.channels[2]: channel email is used by the escalation config but not configured in notifications\n")
	require.Contains(t, out.String(), "  WARNING: "+f+":8:60: escalation: policies[0] (api): levels[0].channels[1]: channel teams is used by the escalation config but not configured in notifications\n")
	// In the order of the file: level 0's warnings before level 1's.
	require.Less(t, strings.Index(out.String(), ":8:60: "), strings.Index(out.String(), ":9:36: "))
}
