package config

// BadFixtures maps each testdata/*.bad.yml to the error it must give.
var BadFixtures = map[string]string{
	"auto_resolve_after.bad.yml": `:2:3: incidents: auto_resolve_after must be 0 (off) or at least 1m, got 30s`,
	"alertmanager_url.bad.yml":   `:2:8: alertmanager: url: "localhost:9093": scheme must be http or https`,
	"default_severity.bad.yml":   `:2:21: incidents: default_severity: unknown severity "urgent" (want one of CRITICAL, HIGH, MEDIUM, LOW)`,
	"external_url.bad.yml":       `:2:17: global: external_url: "ftp://sred.example.com": scheme must be http or https`,
	"flap_window.bad.yml":        `:2:16: unknown unit " hour" in duration "1 hour"`,
	// Syntax errors name the line of the problem, not the line above the
	// construct it is in (yaml's own "line 3" for the first, none for the
	// second); a "[" left open is named where it opened, with the line
	// where the decoder noticed. They are positioned file:line:col, as the
	// errors of the SLO specs are (a message starting with ":" follows the
	// file name directly).
	"syntax_unclosed.bad.yml": ":4:19: invalid YAML: \"[\" opened here is not closed before line 5",
	"syntax_control.bad.yml":  ":4:1: invalid YAML: control characters are not allowed",
	// So are unknown fields and values of the wrong kind, at the key or
	// value the problem names.
	"not_a_mapping.bad.yml": ":1:1: cannot use a list here: want a mapping of fields",
	// Another kind of file given as sred.yml: which kind, and what checks it.
	"other_rule_file.bad.yml":    "this is a Prometheus rule file (groups:), not a sred configuration; check it with promtool check rules",
	"other_prometheus.bad.yml":   "this is a Prometheus configuration (scrape_configs:), not a sred configuration; check it with promtool check config",
	"other_alertmanager.bad.yml": "this is an Alertmanager configuration (route:), not a sred configuration; check it with amtool check-config",
	"other_runbook.bad.yml":      "this is a runbook (steps:), not a sred configuration; check it with srectl runbook validate",
	"other_slo_spec.bad.yml": `:2:7: this file has apiVersion: "sre.rootuip.io/v1", kind: "ServiceLevelObjectives", not a sred configuration: ` +
		"an SLO spec is checked with srectl validate, a chaos experiment with srectl chaos validate",
	"prefix.bad.yml":          `:2:23: global: incident_id_prefix "INC-" must contain only letters and digits`,
	"prometheus_auth.bad.yml": `:1:1: prometheus: at most one of basic_auth, oauth2 & authorization must be configured`,
	// A problem of a check (not of the decoder) at the value it quotes,
	// else at the field it names, else at its section's key; one line
	// each (a line starting with ":" follows the file name directly).
	"secret_files.bad.yml": ":4:22: webhook.bearer_token_file: file \"secrets/no_such_webhook_token\" does not exist\n" +
		":8:23: prometheus.authorization.credentials_file: file \"secrets/empty_token\" is empty",
	"service_label_name.bad.yml":     `:2:3: incidents: service_labels: invalid label name ""`,
	"service_labels.bad.yml":         `:2:3: incidents: service_labels must not be empty`,
	"severity_map.bad.yml":           `:3:15: incidents: severity_map["critical"]: unknown severity "SEV1" (want one of CRITICAL, HIGH, MEDIUM, LOW)`,
	"severity_map_twice.bad.yml":     `:3:5: incidents: severity_map: "critical" is mapped twice (keys are case-insensitive)`,
	"silence_on_ack.bad.yml":         `:2:3: alertmanager: silence_on_ack needs alertmanager.url`,
	"silence_on_snooze.bad.yml":      `:2:3: alertmanager: silence_on_snooze needs alertmanager.url`,
	"status_update_template.bad.yml": `:2:3: incidents: status_update_template: template: status_update:1: missing value for if`,
	"title_template.bad.yml":         `:2:3: incidents: title_template: template: title:1: unclosed action`,
	"title_template_exec.bad.yml":    `:2:3: incidents: title_template: template: title:1:3: executing "title" at <.NoSuchField>: the template data has no field NoSuchField`,
	"two_documents.bad.yml":          `config must hold a single YAML document`,
	// An unknown field names its section and the field meant, else the
	// fields allowed there when they are few.
	"unknown_field.bad.yml":          `:2:3: unknown field "incident_id_prefx" in global (did you mean "incident_id_prefix"?)`,
	"unknown_nested_field.bad.yml":   `:4:5: unknown field "alertnam" in alertmanager.watchdog (did you mean "alertname"?)`,
	"unknown_field_no_close.bad.yml": `:3:5: unknown field "bogus" in alertmanager.watchdog (known fields: alertname, timeout)`,
	"unknown_section.bad.yml":        `:1:1: unknown field "incident" (did you mean "incidents"?)`,
	// A section a merge key brings in, at the anchor.
	"unknown_merged_section.bad.yml": `:2:6: unknown field "incident"`,
	"watchdog_timeout.bad.yml":       `:5:5: alertmanager: watchdog: timeout must be positive, got 0s`,
	"webhook_max_body.bad.yml":       `:2:3: webhook: max_body_bytes must be positive, got 0`,
	"webhook_tokens.bad.yml":         `:1:1: webhook: at most one of bearer_token and bearer_token_file must be set`,
}
