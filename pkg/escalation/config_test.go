package escalation_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/oncall"
)

// sections is the part of sred.yml the escalation config is checked
// against: its own section and the sections it refers to.
type sections struct {
	Escalation    escalation.Config `yaml:"escalation"`
	OnCall        oncall.Config     `yaml:"oncall"`
	Notifications notify.Config     `yaml:"notifications"`
}

// loadSections decodes a fixture strictly, as sred does, then checks the
// escalation's references to users, schedules, teams and channels.
func loadSections(path string) (*sections, []string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var s sections
	// Absent sections get their defaults, as in sred.
	for _, doc := range [][]byte{[]byte("escalation: {}\noncall: {}\nnotifications: {}\n"), b} {
		dec := yaml.NewDecoder(bytes.NewReader(doc))
		dec.KnownFields(true)
		if err := dec.Decode(&s); err != nil {
			return nil, nil, err
		}
	}
	warnings, err := s.Escalation.CheckRefs(&s.OnCall, &s.Notifications)
	if err != nil {
		return nil, nil, fmt.Errorf("escalation: %w", err) // as sred's config validator reports it
	}
	return &s, warnings, nil
}

// badFixtures maps each testdata/*.bad.yml to the error it must give: one
// fixture per validation error of the escalation section.
var badFixtures = map[string]string{
	"ack_reminder_channels.bad.yml":    `escalation: ack_reminder_channels: pagerduty cannot carry reminders (the incident is already acknowledged there)`,
	"ack_timeout_negative.bad.yml":     `not a valid duration string: "-5m"`,
	"level_channel.bad.yml":            `escalation: policies[0] (api): levels[0].channels: unknown channel "pager" (want one of sms, phone, push, email, slack, webhook, pagerduty, teams, mattermost, or chat)`,
	"level_empty.bad.yml":              `escalation: policies[0] (api): levels[1] is empty`,
	"level_no_targets.bad.yml":         `escalation: policies[0] (api): levels[0] has no users, schedules or teams`,
	"level_order.bad.yml":              `escalation: policies[0] (api): levels[2].after: 15m must be later than the previous level's`,
	"policy_duplicate.bad.yml":         `escalation: duplicate policy "api"`,
	"policy_empty.bad.yml":             `escalation: policy 1 is empty`,
	"policy_matcher.bad.yml":           "escalation: policies[0] (api): matcher \"service=~\\\"api|(checkout\\\"\": error parsing regexp: missing closing ): `^(?:api|(checkout)$`",
	"policy_no_levels.bad.yml":         `escalation: policies[0] (api): no levels`,
	"policy_no_name.bad.yml":           `escalation: policy 1 has no name`,
	"repeat_negative.bad.yml":          `escalation: policies[0] (api): repeat must not be negative`,
	"severity_channel_unknown.bad.yml": `escalation: severities: LOW: unknown channel "carrier-pigeon" (want one of sms, phone, push, email, slack, webhook, pagerduty, teams, mattermost, or chat)`,
	"severity_empty.bad.yml":           `escalation: severities: HIGH is empty`,
	"severity_escalate_after.bad.yml":  `unknown unit " minutes" in duration "5 minutes"`,
	"severity_lowercase.bad.yml":       `escalation: severities: unknown severity "critical" (want CRITICAL, HIGH, MEDIUM or LOW)`,
	"severity_no_channels.bad.yml":     `escalation: severities: MEDIUM has no channels`,
	"severity_unknown.bad.yml":         `escalation: severities: unknown severity "URGENT" (want CRITICAL, HIGH, MEDIUM or LOW)`,
	"unknown_field.bad.yml":            "yaml: unmarshal errors:\n  line 2: field ack_timout not found in type escalation.plain",
	"unknown_schedule.bad.yml":         `escalation: policies[0] (api): levels[1].schedules[0]: unknown schedule "api-secondary"`,
	"unknown_team.bad.yml":             `escalation: policies[0] (api): levels[0].teams[0]: unknown team "api-team"`,
	"unknown_user.bad.yml":             `escalation: policies[0] (api): levels[1].users[0]: unknown user "tara"`,
	"window_empty.bad.yml":             `escalation: maintenance window 1 is empty`,
	"window_end.bad.yml":               `escalation: maintenance window "db-migration": end must be after start`,
	"window_matcher.bad.yml":           `escalation: maintenance window "db-migration": matcher "service=db\"": matcher value contains unescaped double quote: db"`,
	"window_no_matchers.bad.yml":       `escalation: maintenance window "db-migration": matchers are required`,
	"window_no_name.bad.yml":           `escalation: maintenance window without a name`,
	"window_time.bad.yml":              `parsing time "next saturday" as "2006-01-02T15:04:05Z07:00": cannot parse "next saturday" as "2006"`,
}

// TestBadConfigs checks one fixture per error, with its exact message.
func TestBadConfigs(t *testing.T) {
	for file, want := range badFixtures {
		t.Run(file, func(t *testing.T) {
			_, _, err := loadSections(filepath.Join("testdata", file))
			require.EqualError(t, err, want)
		})
	}
	files, err := filepath.Glob("testdata/*.bad.yml")
	require.NoError(t, err)
	require.Len(t, files, len(badFixtures), "every bad fixture has its expected message")
	for _, f := range files {
		require.Contains(t, badFixtures, strings.TrimPrefix(f, "testdata/"))
	}
}

func TestGoodConfig(t *testing.T) {
	s, warnings, err := loadSections("testdata/good.yml")
	require.NoError(t, err)
	c := &s.Escalation
	require.Equal(t, []string{
		"channel email is used by the escalation config but not configured in notifications",
		"channel push is used by the escalation config but not configured in notifications",
		"channel slack is used by the escalation config but not configured in notifications",
		`policy "api" level 0: user alice has no contact for sms (CRITICAL, HIGH), phone (CRITICAL): those messages skip them`,
		`policy "api" level 0: user bob has no contact for sms (CRITICAL, HIGH), phone (CRITICAL): those messages skip them`,
		`policy "api" level 1: user alice has no contact for phone (CRITICAL, HIGH): those messages skip them`,
		`policy "api" level 1: user bob has no contact for phone (CRITICAL, HIGH): those messages skip them`,
		`policy "api" level 2: user tara has no contact for sms (CRITICAL, HIGH), phone (CRITICAL): those messages skip them`,
		`policy "default" level 0: user tara has no contact for sms (CRITICAL, HIGH), phone (CRITICAL): those messages skip them`,
	}, warnings)
	// The severities not set keep the defaults.
	require.Equal(t, escalation.DefaultSeverities()[incident.SeverityLow], c.Severities[incident.SeverityLow])
	require.Equal(t, []string{"sms", "push"}, c.Severities[incident.SeverityHigh].Channels)

	ls := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		labels map[string]string
		policy string
	}{
		{ls("service", "api", "severity", "HIGH"), "api"},
		{ls("service", "checkout", "severity", "CRITICAL"), "api"},
		{ls("service", "api", "severity", "LOW"), "default"},
		{ls("service", "web", "severity", "CRITICAL"), "default"},
	} {
		inc := &incident.Incident{Service: tc.labels["service"], Severity: incident.Severity(tc.labels["severity"])}
		require.Equal(t, tc.policy, c.Select(escalation.LabelSet(inc)).Name, "%v", tc.labels)
	}

	f := c.Freeze(c.Select(escalation.LabelSet(&incident.Incident{Service: "api", Severity: incident.SeverityHigh})), incident.SeverityHigh)
	require.Equal(t, &escalation.Frozen{
		Policy: "api", Severity: "HIGH", Repeat: 1, RepeatAfter: 10 * time.Minute, AckTimeout: 0,
		Levels: []escalation.FrozenLevel{
			{Offset: 0, Schedules: []string{"api-primary"}, Channels: []string{"sms", "push"}},
			{Offset: 5 * time.Minute, Teams: []string{"api-team"}, Channels: []string{"phone", "slack"}},
			{Offset: 20 * time.Minute, Users: []string{"tara"}, Channels: []string{"sms", "push"}},
		},
	}, f)
}
