package runbook

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/testutil"
)

func exampleConfig(t *testing.T) Config {
	t.Helper()
	var cfg Config
	require.NoError(t, yaml.Unmarshal([]byte(`
files: [examples/runbooks/*.yml]
http_endpoints:
  api-cache: {url: http://api-cache.api.svc:8080}
  api-admin: {url: http://api.api.svc:9000}
`), &cfg))
	return cfg
}

func TestLoadExamples(t *testing.T) {
	cfg := exampleConfig(t)
	set, err := Load(cfg, testutil.RepoRoot(t))
	require.NoError(t, err)
	var names []string
	for _, rb := range set.List() {
		names = append(names, rb.Name)
	}
	require.Equal(t, []string{"api-service-down", "connection-pool-reset", "disk-cleanup", "high-api-latency", "memory-leak-restart", "service-restart"}, names)
	require.Equal(t, 2, set.Get("service-restart").MaxRuns, "a service that keeps leaking pages a human on the third alert")

	rb := set.Get("high-api-latency")
	require.Equal(t, []StepType{StepKubernetes, StepHTTP, StepKubernetes, StepPromQL}, stepTypes(rb))
	require.Equal(t, FailEscalate, rb.Steps[3].OnFailure, "verify steps escalate by default")
	require.Equal(t, FailContinue, rb.Steps[1].OnFailure)
	require.False(t, rb.Steps[2].SafeToRepeat(), "a restart is not repeated after a crash unless declared idempotent")
	require.True(t, rb.Steps[3].SafeToRepeat(), "a promql check is always safe to repeat")
	require.True(t, set.Get("api-service-down").Steps[2].SafeToRepeat(), "scale-to-5 is declared idempotent")

	inc := &incident.Incident{ID: "INC-1", Severity: incident.SeverityHigh, Status: incident.StatusTriggered,
		Labels: map[string]string{"alertname": "SLOBurnRatePage", "service": "api", "slo": "latency"}}
	require.True(t, rb.Matches(inc))
	inc.Severity = incident.SeverityLow
	require.False(t, rb.Matches(inc), "severity LOW is not a trigger")
	inc.Severity, inc.Status = incident.SeverityHigh, incident.StatusInvestigating
	require.False(t, rb.Matches(inc), "state investigating is not a trigger")
	inc.Status = incident.StatusTriggered
	inc.Labels["alertname"] = "Other"
	require.False(t, rb.Matches(inc))
	// A link attaches documentation, it never bypasses the matchers: an
	// alert of another namespace carrying the runbook's URL or name starts
	// nothing.
	inc.RunbookURLs = []string{"https://runbooks.rootuip.com/high-api-latency"}
	require.True(t, rb.Linked(inc), "linked by runbook_url")
	require.False(t, rb.Matches(inc), "a runbook_url does not start the runbook")
	inc.RunbookURLs = nil
	inc.Alerts = []incident.Alert{{Annotations: map[string]string{"runbook": "high-api-latency"}}}
	require.True(t, rb.Linked(inc), "linked by name")
	require.False(t, rb.Matches(inc), "a runbook annotation does not start the runbook")
	inc.Alerts = nil
	require.False(t, rb.Linked(inc))
}

// TestMatchesAlertGroups: what the console says of a runbook on an
// incident (Matches) follows the engine: the matchers select one of the
// incident's alert groups (its links), not only the group that opened it;
// an incident without links is matched on its own labels.
func TestMatchesAlertGroups(t *testing.T) {
	set, err := Load(exampleConfig(t), testutil.RepoRoot(t))
	require.NoError(t, err)
	rb := set.Get("connection-pool-reset")
	opened := incident.Link{GroupKey: `{}:{alertname="PostgresDown", service="postgres"}`,
		Labels: map[string]string{"alertname": "PostgresDown", "service": "postgres"}, Reason: "opened"}
	joined := incident.Link{GroupKey: `{}:{alertname="ConnectionPoolSaturated", service="api"}`,
		Labels: map[string]string{"alertname": "ConnectionPoolSaturated", "service": "api"}, Reason: "dependency"}
	for _, tc := range []struct {
		name     string
		labels   map[string]string
		links    []incident.Link
		severity incident.Severity
		status   incident.Status
		want     bool
	}{
		{"opened by the pool's group", joined.Labels, []incident.Link{joined}, incident.SeverityCritical, incident.StatusTriggered, true},
		{"the pool's group joined", opened.Labels, []incident.Link{opened, joined}, incident.SeverityCritical, incident.StatusTriggered, true},
		{"no group of the pool", opened.Labels, []incident.Link{opened}, incident.SeverityCritical, incident.StatusTriggered, false},
		{"no links: the incident's labels", joined.Labels, nil, incident.SeverityCritical, incident.StatusTriggered, true},
		{"no links, other labels", opened.Labels, nil, incident.SeverityCritical, incident.StatusTriggered, false},
		{"severity not a trigger", opened.Labels, []incident.Link{opened, joined}, incident.SeverityLow, incident.StatusTriggered, false},
		{"state not a trigger", opened.Labels, []incident.Link{opened, joined}, incident.SeverityCritical, incident.StatusAcknowledged, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inc := &incident.Incident{ID: "INC-1", Severity: tc.severity, Status: tc.status, Labels: tc.labels, Links: tc.links}
			require.Equal(t, tc.want, rb.Matches(inc))
		})
	}
}

func stepTypes(rb *Runbook) []StepType {
	var out []StepType
	for _, s := range rb.Steps {
		out = append(out, s.Type())
	}
	return out
}

func TestLoadMissingEndpoint(t *testing.T) {
	cfg := exampleConfig(t)
	delete(cfg.HTTPEndpoints, "api-cache")
	_, err := Load(cfg, testutil.RepoRoot(t))
	require.EqualError(t, err, filepath.Join(testutil.RepoRoot(t), "examples/runbooks/high-api-latency.yml")+
		`:34:17: runbook "high-api-latency": step "clear-cache": http endpoint "api-cache" is not in runbooks.http_endpoints`)
}

func TestParseErrors(t *testing.T) {
	const head = "name: rb\nmatchers: ['alertname=\"X\"']\n"
	for _, tc := range []struct {
		name, src, err string
	}{
		{"unclosed list", head + "steps:\n  - name: a\n    exec: {command: [/bin/true}\n", `bad.yml:5:5: invalid YAML: did not find expected ',' or ']'`},
		{"unknown top field", head + "stepz: []\n", `bad.yml:3:1: unknown field "stepz" in runbook (known fields: approval_timeout, continue_on_resolve, description, dry_run, labels, matchers, max_run_time, max_runs, name, rate_limit, require_approval, resolve_on_verify, severities, states, steps, target, urls, window)`},
		{"unknown step field", head + "steps:\n  - name: a\n    wait: {duration: 1s}\n    timout: 5s\n", `bad.yml:6:5: unknown field "timout" in step (known fields: approval, exec, http, idempotent, kubernetes, labels, name, notify, on_failure, promql, timeout, verify, wait)`},
		{"unknown nested field", head + "steps:\n  - name: a\n    exec:\n      comand: [/bin/true]\n", `bad.yml:6:7: unknown field "comand" in step exec (known fields: command, dir, env, env_files)`},
		{"bad name", "name: Bad Name\nmatchers: ['a=\"b\"']\nsteps: [{name: a, wait: {duration: 1s}}]\n", `bad.yml:1:1: runbook name "Bad Name": want lower-case letters, digits, '-' or '_' (at most 64)`},
		{"bad matcher", "name: rb\nmatchers: ['alertname=~\"(\"']\nsteps: [{name: a, wait: {duration: 1s}}]\n", "bad.yml:1:1: runbook \"rb\": matcher \"alertname=~\\\"(\\\"\": error parsing regexp: missing closing ): `^(?:()$`"},
		{"no trigger", "name: rb\nsteps: [{name: a, wait: {duration: 1s}}]\n", `bad.yml:1:1: runbook "rb": needs matchers, or it would never run (urls only link its documentation)`},
		{"no steps", head, `bad.yml:1:1: runbook "rb": no steps`},
		{"two actions", head + "steps:\n  - name: a\n    wait: {duration: 1s}\n    notify: {message: hi}\n", `bad.yml:4:5: step "a": want exactly one of exec, http, kubernetes, promql, wait, notify, approval (got 2)`},
		{"bad severity", head + "severities: [URGENT]\nsteps: [{name: a, wait: {duration: 1s}}]\n", `bad.yml:1:1: runbook "rb": severities: unknown severity "URGENT" (want one of CRITICAL, HIGH, MEDIUM, LOW)`},
		{"closed state", head + "states: [resolved]\nsteps: [{name: a, wait: {duration: 1s}}]\n", `bad.yml:1:1: runbook "rb": state "resolved": want triggered, acknowledged or investigating`},
		{"undeclared label", head + "steps:\n  - name: a\n    exec:\n      command: [/bin/echo, '{{ .Labels.service }}']\n", `bad.yml:4:5: runbook "rb": step "a": command[1]: template "{{ .Labels.service }}" uses label "service", which has no allow-list pattern in ` + "`labels`"},
		{"templated program", head + "labels: {p: '.*'}\nsteps:\n  - name: a\n    exec:\n      command: ['{{ .Labels.p }}']\n", `bad.yml:5:5: step "a": the program (exec.command[0]) cannot be a template`},
		{"label range", head + "steps:\n  - name: a\n    notify: {message: '{{ range .Labels }}x{{ end }}'}\n", `bad.yml:4:5: runbook "rb": step "a": message: template "{{ range .Labels }}x{{ end }}": "{{range .Labels}}x{{end}}" is not allowed in runbook templates`},
		{"bad allow-list", head + "labels: {service: '('}\nsteps: [{name: a, wait: {duration: 1s}}]\n", "bad.yml:1:1: runbook \"rb\": labels: label \"service\": pattern \"(\": error parsing regexp: missing closing ): `^(?:()$`"},
		{"bad promql", head + "steps:\n  - name: a\n    promql: {query: 'up ==='}\n", `bad.yml:4:5: runbook "rb": step "a": query: 1:6: parse error: unexpected "="`},
		{"promql quote", head + "labels: {service: '\\S+'}\nsteps:\n  - name: a\n    verify: true\n    promql: {query: 'up{service=\"{{ .Labels.service }}\"} == 1'}\n", `bad.yml:5:5: runbook "rb": step "a": query: label "service" is used in a PromQL query, and its pattern "\\S+" can match "\"", which could end a string and become PromQL; restrict the pattern`},
		{"promql backslash", head + "labels: {service: '[a-z\\\\]+'}\nsteps:\n  - name: a\n    promql: {query: 'up{service=\"{{ .Labels.service }}\"}'}\n", `bad.yml:5:5: runbook "rb": step "a": query: label "service" is used in a PromQL query, and its pattern "[a-z\\\\]+" can match "\\", which could end a string and become PromQL; restrict the pattern`},
		{"promql regex widens", head + "labels: {service: '[a-z.]+'}\nsteps:\n  - name: a\n    verify: true\n    promql: {query: 'up{service=~\"{{ .Labels.service }}-v[0-9]+\"} == 1'}\n", `bad.yml:5:5: runbook "rb": step "a": query: label "service" is used in the regex matcher service=~, and its pattern "[a-z.]+" can match ".", which is a regex operator there and would widen the selection; use = or restrict the pattern`},
		{"promql negative regex", head + "labels: {pod: '[a-z|-]+'}\nsteps:\n  - name: a\n    promql: {query: 'count(up{pod!~\"{{ .Labels.pod }}\"})'}\n", `bad.yml:5:5: runbook "rb": step "a": query: label "pod" is used in the regex matcher pod!~, and its pattern "[a-z|-]+" can match "|", which is a regex operator there and would widen the selection; use = or restrict the pattern`},
		{"patch quote", head + "labels: {color: '\\S+'}\nsteps:\n  - name: a\n    kubernetes: {action: patch, namespace: web, service: web, patch: '{\"spec\": {\"selector\": {\"color\": \"{{ .Labels.color }}\"}}}'}\n", `bad.yml:5:5: runbook "rb": step "a": patch: label "color" is used in a JSON patch, and its pattern "\\S+" can match "\"", which could end a string and add fields to the patch; restrict the pattern`},
		{"json body quote", head + "labels: {service: '\\S+'}\nsteps:\n  - name: a\n    http: {endpoint: ops, body: '{\"service\": \"{{ .Labels.service }}\"}'}\n", `bad.yml:5:5: runbook "rb": step "a": body: label "service" is used in a JSON body, and its pattern "\\S+" can match "\"", which could end a string and add fields to the body; restrict the pattern`},
		{"bad on_failure", head + "steps:\n  - name: a\n    on_failure: retry\n    wait: {duration: 1s}\n", `bad.yml:4:5: step "a": on_failure "retry": want stop, continue or escalate`},
		{"scale unbounded", head + "steps:\n  - name: a\n    kubernetes: {action: scale, namespace: n, deployment: d, by: 2}\n", `bad.yml:4:5: step "a": kubernetes: scale by a positive N needs max, so that repeated runs cannot grow without bound`},
		{"scale both", head + "steps:\n  - name: a\n    kubernetes: {action: scale, namespace: n, deployment: d, by: 2, replicas: 3, max: 4}\n", `bad.yml:4:5: step "a": kubernetes: scale needs exactly one of replicas (to N) or by (by N)`},
		{"bad http method", head + "steps:\n  - name: a\n    http: {endpoint: e, method: TRACE}\n", `bad.yml:4:5: step "a": http.method "TRACE": want one of GET, POST, PUT, PATCH, DELETE`},
		{"duplicate step", head + "steps:\n  - name: a\n    wait: {duration: 1s}\n  - name: a\n    wait: {duration: 1s}\n", `bad.yml:6:5: runbook "rb": step name "a" used twice`},
		{"verify wait", head + "steps:\n  - name: a\n    verify: true\n    wait: {duration: 1s}\n", `bad.yml:4:5: step "a": verify is for promql, http or exec steps`},
		{"two documents", head + "steps: [{name: a, wait: {duration: 1s}}]\n---\nname: b\n", `bad.yml:5: one runbook per file, found a second YAML document`},
		{"type error", head + "steps: [{name: a, wait: {duration: soon}}]\n", `bad.yml:3:36: not a valid duration string: "soon"`},
		{"bad notify channel", head + "steps:\n  - name: a\n    notify: {message: hi, channels: [fax]}\n", `bad.yml:4:5: step "a": notify.channels: unknown channel "fax" (want one of sms, phone, push, email, slack, webhook, pagerduty, teams, mattermost, or chat)`},
		{"pagerduty notify", head + "steps:\n  - name: a\n    notify: {message: hi, channels: [pagerduty]}\n", `bad.yml:4:5: step "a": notify.channels: pagerduty opens pages, not messages; use the escalation policy`},
		{"shell templated", head + "labels: {service: '[a-z]+'}\nsteps:\n  - name: a\n    exec:\n      command: [/bin/sh, -c, 'echo {{ .Labels.service }}']\n", `bad.yml:5:5: step "a": exec.command runs the shell sh: command[2] cannot be a template (a label value would become code; pass it in env and quote it, "$NAME")`},
		{"shell positional", head + "steps:\n  - name: a\n    exec:\n      command: [bash, -c, 'echo \"$1\"', x, '{{ .IncidentID }}']\n", `bad.yml:4:5: step "a": exec.command runs the shell bash: command[4] cannot be a template (a label value would become code; pass it in env and quote it, "$NAME")`},
		{"env shell", head + "labels: {service: '[a-z]+'}\nsteps:\n  - name: a\n    exec:\n      command: [/usr/bin/env, -i, zsh, -c, 'echo {{ .Labels.service }}']\n", `bad.yml:5:5: step "a": exec.command runs the shell zsh: command[4] cannot be a template (a label value would become code; pass it in env and quote it, "$NAME")`},
		{"busybox shell", head + "labels: {service: '[a-z]+'}\nsteps:\n  - name: a\n    exec:\n      command: [busybox, ash, -c, 'echo {{ .Labels.service }}']\n", `bad.yml:5:5: step "a": exec.command runs the shell ash: command[3] cannot be a template (a label value would become code; pass it in env and quote it, "$NAME")`},
		{"sudo shell", head + "labels: {service: '[a-z]+'}\nsteps:\n  - name: a\n    exec:\n      command: [sudo, -u, root, /bin/dash, -c, 'echo {{ .Labels.service }}']\n", `bad.yml:5:5: step "a": exec.command runs the shell dash: command[5] cannot be a template (a label value would become code; pass it in env and quote it, "$NAME")`},
		{"python inline", head + "labels: {service: '[a-z]+'}\nsteps:\n  - name: a\n    exec:\n      command: [python3.12, -c, 'print(\"{{ .Labels.service }}\")']\n", `bad.yml:5:5: step "a": exec.command runs inline code (python3.12 -c): command[2] cannot be a template (a label value would become code; pass it in env and quote it, "$NAME")`},
		{"perl cluster", head + "labels: {service: '[a-z]+'}\nsteps:\n  - name: a\n    exec:\n      command: [perl, -le, 'print 1', '{{ .Labels.service }}']\n", `bad.yml:5:5: step "a": exec.command runs inline code (perl -le): command[3] cannot be a template (a label value would become code; pass it in env and quote it, "$NAME")`},
		{"node eval", head + "labels: {service: '[a-z]+'}\nsteps:\n  - name: a\n    exec:\n      command: [nice, node, '--eval=console.log(1)', '{{ .Labels.service }}']\n", `bad.yml:5:5: step "a": exec.command runs inline code (node --eval=console.log(1)): command[3] cannot be a template (a label value would become code; pass it in env and quote it, "$NAME")`},
		{"shell env metachars", head + "labels: {service: '.+'}\nsteps:\n  - name: a\n    exec:\n      command: [/bin/sh, /opt/restart.sh]\n      env: {SERVICE: '{{ .Labels.service }}'}\n", `bad.yml:5:5: runbook "rb": step "a": env.SERVICE: label "service" reaches the environment of sh, and its pattern ".+" can match the shell metacharacter "|"; restrict the pattern`},
		{"ssh metachars", head + "labels: {service: '[a-z ]+'}\nsteps:\n  - name: a\n    exec:\n      command: [ssh, ops@bastion, /opt/restart, '{{ .Labels.service }}']\n", `bad.yml:5:5: runbook "rb": step "a": command[3]: label "service" reaches the arguments of ssh, which hands them to a shell, and its pattern "[a-z ]+" can match the shell metacharacter " "; restrict the pattern`},
		{"su runs a shell", head + "labels: {service: '[a-z]+'}\nsteps:\n  - name: a\n    exec:\n      command: [timeout, 30s, su, ops, -c, '/opt/restart {{ .Labels.service }}']\n", `bad.yml:5:5: step "a": exec.command runs a shell (su): command[5] cannot be a template (a label value would become code; pass it in env and quote it, "$NAME")`},
		{"idempotent false on a wait", head + "steps:\n  - name: a\n    idempotent: false\n    wait: {duration: 1s}\n", `bad.yml:4:5: step "a": idempotent: false does not apply to wait steps, which are always safe to run again`},
		{"idempotent not a bool", head + "steps:\n  - name: a\n    idempotent: maybe\n    exec: {command: [/bin/true]}\n", `bad.yml:5:17: cannot use the string "maybe" here: want true or false`},
		{"duplicate key", head + "name: again\nsteps: [{name: a, wait: {duration: 1s}}]\n", `bad.yml:3:1: field "name" set twice in runbook`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "bad.yml")
			require.EqualError(t, err, tc.err)
		})
	}
}

// Templates are fine where no shell parses them: a script file given to an
// interpreter, a shell's environment with a metacharacter-free pattern, a
// hand-off program's arguments with one, any program that is not a shell.
func TestShellGuardAccepts(t *testing.T) {
	const head = "name: rb\nmatchers: ['alertname=\"X\"']\nlabels: {service: '[a-z][a-z0-9-]{0,40}', any: '(?s).*'}\nsteps:\n  - name: a\n    exec:\n"
	for _, exec := range []string{
		"      command: [python3, /opt/fix.py, '{{ .Labels.service }}', --, '{{ .Labels.any }}']\n      env: {X: '{{ .Labels.any }}'}\n",
		"      command: [/bin/sh, -c, 'systemctl restart \"$SERVICE\"']\n      env: {SERVICE: '{{ .Labels.service }}'}\n",
		"      command: [ssh, ops@bastion, /opt/restart, '{{ .Labels.service }}']\n",
		"      command: [/usr/local/bin/cleanup, '--reason={{ .Labels.any }}']\n",
		"      command: [sudo, /usr/local/bin/cleanup, --, '{{ .Labels.any }}']\n",
		"      command: [env, LANG=C, /usr/local/bin/cleanup, '{{ .Labels.service }}']\n",
	} {
		_, err := Parse([]byte(head+exec), "ok.yml")
		require.NoError(t, err, exec)
	}
	for _, tc := range []struct {
		pat  string
		want string
	}{
		{`[a-z][a-z0-9-]{0,40}`, ""},
		{`/[a-zA-Z0-9/_.-]{0,100}`, ""},
		{`(?i)[a-z]+`, ""},
		{`[^a-z]`, "|"},
		{`.*`, "|"},
		{`\w+\s`, " "},
		{`a\.b|c~`, "~"},
		{`\pL+`, ""},
	} {
		c, ok := patternMatchesAny(tc.pat, shellMetachars)
		got := ""
		if ok {
			got = string(c)
		}
		require.Equal(t, tc.want, got, tc.pat)
	}
}

// approval_timeout bounds the approval gate and the approval steps that set
// no timeout of their own; it defaults to one hour.
func TestApprovalTimeoutParse(t *testing.T) {
	const src = "name: rb\nmatchers: ['alertname=\"X\"']\n%ssteps:\n  - {name: ask, approval: {}}\n  - {name: ask-long, timeout: 2h, approval: {}}\n  - {name: say, notify: {message: hi, channels: [chat, email]}}\n"
	for _, tc := range []struct {
		line      string
		want, own model.Duration
	}{
		{"", model.Duration(time.Hour), model.Duration(time.Hour)},
		{"approval_timeout: 10m\n", model.Duration(10 * time.Minute), model.Duration(10 * time.Minute)},
	} {
		rb, err := Parse([]byte(fmt.Sprintf(src, tc.line)), "rb.yml")
		require.NoError(t, err)
		require.Equal(t, tc.want, rb.ApprovalTimeout)
		require.Equal(t, tc.own, rb.Steps[0].Timeout, "an approval step without timeout waits approval_timeout")
		require.Equal(t, model.Duration(2*time.Hour), rb.Steps[1].Timeout, "its own timeout wins")
		require.Equal(t, []string{"slack", "email"}, rb.Steps[2].Notify.Channels, "channels are normalized")
		require.Equal(t, tc.want.String(), rb.Info().ApprovalTimeout)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ src, err string }{
		{"max_run_time: 0s", "runbooks: max_run_time must be positive"},
		{"poll_interval: 10s\nlease_duration: 20s", "runbooks: lease_duration (20s) must be at least 3 poll intervals (30s)"},
		{"approval_severities: [SEVERE]", `runbooks: approval_severities: unknown severity "SEVERE" (want one of CRITICAL, HIGH, MEDIUM, LOW)`},
		{"http_endpoints: {cache: {url: 'ftp://x'}}", `http endpoint url "ftp://x": want an absolute http or https URL`},
		{"http_endpoints: {'bad name': {url: 'http://x'}}", `runbooks: http endpoint name "bad name": want letters, digits, '_' or '-'`},
		{"rate_limit: {per_hour: -1}", "rate_limit: per_hour and per_target_per_hour must not be negative"},
		{"dryrun: true", "yaml: unmarshal errors:\n  line 1: field dryrun not found in type runbook.plain"},
	} {
		t.Run(tc.src, func(t *testing.T) {
			var c Config
			dec := yaml.NewDecoder(stringsReader(tc.src))
			dec.KnownFields(true)
			require.EqualError(t, dec.Decode(&c), tc.err)
		})
	}
	var c Config
	require.NoError(t, yaml.Unmarshal([]byte("dry_run: true"), &c))
	require.True(t, c.DryRun)
	require.Equal(t, DefaultConfig.MaxRunTime, c.MaxRunTime)
}

// TestJSONBodyRuleOnlyForJSON: the quote rule for labels in an http step's
// body applies to JSON bodies (the default Content-Type), not to a body
// sent as another type, where a quote ends nothing.
func TestJSONBodyRuleOnlyForJSON(t *testing.T) {
	const src = "name: rb\nmatchers: ['alertname=\"X\"']\nlabels: {service: '\\S+'}\nsteps:\n  - name: a\n    http:\n      endpoint: ops\n      headers: {Content-Type: text/plain}\n      body: 'restart {{ .Labels.service }}'\n"
	_, err := Parse([]byte(src), "ok.yml")
	require.NoError(t, err)
	_, err = Parse([]byte(strings.Replace(src, "text/plain", "application/merge-patch+json", 1)), "bad.yml")
	require.ErrorContains(t, err, `body: label "service" is used in a JSON body`)
}

// TestRegexMatcherRule: a label in an equality matcher may hold regex
// operators (the value is taken as it is); in a regex matcher it may not,
// unless its pattern cannot match one (a Kubernetes name with dashes, as
// examples/runbooks/memory-leak-restart.yml writes its deployment).
func TestRegexMatcherRule(t *testing.T) {
	const src = "name: rb\nmatchers: ['alertname=\"X\"']\nlabels: {instance: '[a-z0-9.:-]+', deployment: '[a-z0-9]([-a-z0-9]*[a-z0-9])?'}\nsteps:\n  - name: a\n    verify: true\n    promql:\n      query: 'up{instance=\"{{ .Labels.instance }}\", pod=~\"{{ .Labels.deployment }}-[a-z0-9]+\"} == 1'\n"
	_, err := Parse([]byte(src), "ok.yml")
	require.NoError(t, err)
	_, err = Parse([]byte(strings.Replace(src, `instance="`, `instance=~"`, 1)), "bad.yml")
	require.ErrorContains(t, err, `label "instance" is used in the regex matcher instance=~, and its pattern "[a-z0-9.:-]+" can match "."`)
}
