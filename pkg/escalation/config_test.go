package escalation_test

import (
	"bytes"
	"errors"
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
	"github.com/rootuip/sre/pkg/yamlerr"
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
			// Placed in the file as sred places a section's problems.
			return nil, nil, yamlerr.FileSection(path, b, "escalation", yamlerr.Fields(err, &s))
		}
	}
	warnings, err := s.Escalation.CheckRefs(&s.OnCall, &s.Notifications)
	if err != nil {
		// As sred's config validator reports it, at the value it names.
		return nil, nil, yamlerr.FileChecks(path, b, []string{"escalation"}, fmt.Errorf("escalation: %w", err))
	}
	return &s, warnings, nil
}

// badFixtures maps each testdata/*.bad.yml to the error it must give, after
// the file's name, at the line and column sred places it (the node it
// names: a check of a value at that value, "levels[2].after: 15m ..." at
// the 15m): one fixture per validation error of the escalation section
// (severity_first_problem.bad.yml has several: the first of the file is
// reported).
var badFixtures = map[string]string{
	"ack_reminder_channels.bad.yml": `3:3: escalation: ack_reminder_channels: pagerduty cannot carry reminders (the incident is already acknowledged there)`,
	"ack_timeout_negative.bad.yml":  `2:16: not a valid duration string: "-5m"`,
	"level_channel.bad.yml":         `5:50: escalation: policies[0] (api): levels[0].channels: unknown channel "pager" (want one of sms, phone, push, email, slack, webhook, pagerduty, teams, mattermost, or chat)`,
	"level_empty.bad.yml":           `6:10: escalation: policies[0] (api): levels[1]: empty`,
	"level_no_targets.bad.yml":      `5:11: escalation: policies[0] (api): levels[0]: no users, schedules or teams`,
	"level_order.bad.yml":           `7:19: escalation: policies[0] (api): levels[2].after: 15m must be later than the previous level's`,
	// A value an alias (*soon) or a merge key (<<: *page) brings in: at
	// its anchor, where it is written.
	"level_after_alias.bad.yml":        `6:19: escalation: policies[1] (db): levels[1].after: 5m must be later than the previous level's`,
	"level_order_merge.bad.yml":        `6:25: escalation: policies[1] (api): levels[2].after: 15m must be later than the previous level's`,
	"policy_duplicate.bad.yml":         `5:13: escalation: policies[1]: name: "api" is used by policies[0] too`,
	"policy_empty.bad.yml":             `3:6: escalation: policies[0]: empty`,
	"policy_matcher.bad.yml":           "4:18: escalation: policies[0] (api): matcher \"service=~\\\"api|(checkout\\\"\": error parsing regexp: missing closing ): `^(?:api|(checkout)$`",
	"policy_no_levels.bad.yml":         `3:7: escalation: policies[0] (api): no levels`,
	"policy_no_name.bad.yml":           `3:7: escalation: policies[0]: name is required`,
	"repeat_negative.bad.yml":          `4:15: escalation: policies[0] (api): repeat: -1 must not be negative`,
	"severity_channel_unknown.bad.yml": `3:29: escalation: severities: LOW: unknown channel "carrier-pigeon" (want one of sms, phone, push, email, slack, webhook, pagerduty, teams, mattermost, or chat)`,
	"severity_empty.bad.yml":           `3:5: escalation: severities: HIGH is empty`,
	"severity_escalate_after.bad.yml":  `3:45: unknown unit " minutes" in duration "5 minutes"`,
	"severity_first_problem.bad.yml":   `3:22: escalation: severities: LOW: unknown channel "carrier-pigeon" (want one of sms, phone, push, email, slack, webhook, pagerduty, teams, mattermost, or chat)`,
	"severity_merge.bad.yml":           `5:31: escalation: severities: LOW: unknown channel "carrier-pigeon" (want one of sms, phone, push, email, slack, webhook, pagerduty, teams, mattermost, or chat)`,
	"severity_lowercase.bad.yml":       `3:5: escalation: severities: unknown severity "critical" (want CRITICAL, HIGH, MEDIUM or LOW)`,
	"severity_no_channels.bad.yml":     `3:5: escalation: severities: MEDIUM has no channels`,
	"severity_unknown.bad.yml":         `3:5: escalation: severities: unknown severity "URGENT" (want CRITICAL, HIGH, MEDIUM or LOW)`,
	"unknown_field.bad.yml":            `2:3: unknown field "ack_timout" in escalation (did you mean "ack_timeout"?)`,
	"unknown_schedule.bad.yml":         `6:36: escalation: policies[0] (api): levels[1].schedules[0]: unknown schedule "api-secondary"`,
	"unknown_team.bad.yml":             `5:31: escalation: policies[0] (api): levels[0].teams[0]: unknown team "api-team"`,
	"unknown_user.bad.yml":             `6:32: escalation: policies[0] (api): levels[1].users[0]: unknown user "tara"`,
	"window_empty.bad.yml":             `3:6: escalation: maintenance_windows[0]: empty`,
	"window_end.bad.yml":               `6:12: escalation: maintenance_windows[0] (db-migration): end: 2026-06-06T22:00:00Z must be after start (2026-06-07T02:00:00Z)`,
	"window_matcher.bad.yml":           `4:18: escalation: maintenance_windows[0] (db-migration): matcher "service=db\"": matcher value contains unescaped double quote: db"`,
	"window_no_end.bad.yml":            `3:7: escalation: maintenance_windows[0] (db-migration): end is required`,
	"window_no_matchers.bad.yml":       `3:7: escalation: maintenance_windows[0] (db-migration): matchers are required`,
	"window_no_name.bad.yml":           `3:7: escalation: maintenance_windows[0]: name is required`,
	"window_no_start.bad.yml":          `3:7: escalation: maintenance_windows[0] (db-migration): start is required`,
	"window_time.bad.yml":              `5:14: parsing time "next saturday" as "2006-01-02T15:04:05Z07:00": cannot parse "next saturday" as "2006"`,
}

// TestBadConfigs checks one fixture per error, with its exact message.
func TestBadConfigs(t *testing.T) {
	for file, want := range badFixtures {
		t.Run(file, func(t *testing.T) {
			path := filepath.Join("testdata", file)
			_, _, err := loadSections(path)
			require.EqualError(t, err, path+":"+want)
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
		// The file sets HIGH only: it comes first.
		"severities.HIGH.channels[1]: channel push is used by the escalation config but not configured in notifications",
		"default severities.CRITICAL.channels[3]: channel email is used by the escalation config but not configured in notifications",
		"default severities.LOW.channels[1]: channel slack is used by the escalation config but not configured in notifications",
		`policies[0] (api): levels[0].schedules[0] (api-primary): user alice has no contact for sms (CRITICAL, HIGH), phone (CRITICAL): those messages skip them`,
		`policies[0] (api): levels[0].schedules[0] (api-primary): user bob has no contact for sms (CRITICAL, HIGH), phone (CRITICAL): those messages skip them`,
		`policies[0] (api): levels[1].teams[0] (api-team): user alice has no contact for phone (CRITICAL, HIGH): those messages skip them`,
		`policies[0] (api): levels[1].teams[0] (api-team): user bob has no contact for phone (CRITICAL, HIGH): those messages skip them`,
		`policies[0] (api): levels[2].users[0]: user tara has no contact for sms (CRITICAL, HIGH), phone (CRITICAL): those messages skip them`,
		`policies[1] (default): levels[0].users[0]: user tara has no contact for sms (CRITICAL, HIGH), phone (CRITICAL): those messages skip them`,
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

// TestContactWarningPositions: a warning about a user without a contact
// names the value of the level that brings the user in, as the errors do
// (the user listed directly, users[k], else the schedule or team they come
// from), so that sred places it there in the file (yamlerr.FileChecks, as
// `srectl check config` prints it).
func TestContactWarningPositions(t *testing.T) {
	path := filepath.Join("testdata", "contacts.yml")
	var got []string
	for _, w := range placedWarnings(t, path) {
		if !strings.Contains(w, " has no contact for ") {
			continue // the channels the default severities use
		}
		got = append(got, w)
	}
	require.Equal(t, []string{
		// bob is listed directly and is also on api-primary: the list names him.
		path + `:9:26: escalation: policies[0] (api): levels[0].users[1]: user bob has no contact for sms (CRITICAL): those messages skip them`,
		path + `:10:23: escalation: policies[0] (api): levels[0].schedules[0] (api-primary): user carol has no contact for sms (CRITICAL): those messages skip them`,
		path + `:12:23: escalation: policies[0] (api): levels[1].schedules[0] (db-primary): user dave has no contact for email (CRITICAL): those messages skip them`,
		path + `:12:35: escalation: policies[0] (api): levels[1].schedules[1] (api-primary): user bob has no contact for sms (CRITICAL): those messages skip them`,
		path + `:12:35: escalation: policies[0] (api): levels[1].schedules[1] (api-primary): user carol has no contact for sms (CRITICAL): those messages skip them`,
		path + `:13:19: escalation: policies[0] (api): levels[1].teams[0] (api-team): user erin has no contact for sms (CRITICAL), email (CRITICAL): those messages skip them`,
	}, got)
}

// TestWarningPositions: the section's warnings come in the order of the
// file (ack reminders, severities, then policy by policy and level by
// level: policies[2] before policies[10], a level's users before its
// teams), and each names the path of its value, an unconfigured channel
// the first value that uses it, so that each is placed in the file.
func TestWarningPositions(t *testing.T) {
	path := filepath.Join("testdata", "warnings.yml")
	got := placedWarnings(t, path)
	require.Equal(t, []string{
		path + `:3:27: escalation: ack_reminder_channels[0]: channel email is used by the escalation config but not configured in notifications`,
		path + `:3:34: escalation: ack_reminder_channels[1]: channel slack is used by the escalation config but not configured in notifications`,
		path + `:5:32: escalation: severities.CRITICAL.channels[1]: channel push is used by the escalation config but not configured in notifications`,
		path + `:16:19: escalation: policies[2] (p2): levels[0].users[0]: user bob has no contact for sms (CRITICAL, HIGH, MEDIUM, LOW): those messages skip them`,
		path + `:17:19: escalation: policies[2] (p2): levels[0].teams[0] (t): user carol has no contact for sms (CRITICAL, HIGH, MEDIUM, LOW): those messages skip them`,
		path + `:21:22: escalation: policies[2] (p2): levels[1].channels[0]: channel teams is used by the escalation config but not configured in notifications`,
		path + `:29:48: escalation: policies[10] (p10): levels[0].users[0]: user bob has no contact for sms (CRITICAL, HIGH, MEDIUM, LOW): those messages skip them`,
	}, got)
}

// TestSeverityWarningOrder: the severities' warnings follow the order of
// the file's keys (a key brought in by a merge, "<<: {...}", at the merge,
// also when the merge brings in the whole severities section),
// then the severities the file leaves to their default, in the order
// CRITICAL, HIGH, MEDIUM, LOW; an unconfigured channel is named at the
// first value of that order that uses it.
func TestSeverityWarningOrder(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string
	}{
		{"severity_order.yml", []string{
			`:3:22: escalation: severities.LOW.channels[0]: channel slack is used by the escalation config but not configured in notifications`,
			`:4:25: escalation: severities.MEDIUM.channels[0]: channel teams is used by the escalation config but not configured in notifications`,
			// slack was named at LOW.
			`:5:39: escalation: severities.CRITICAL.channels[2]: channel mattermost is used by the escalation config but not configured in notifications`,
			`: escalation: default severities.HIGH.channels[1]: channel push is used by the escalation config but not configured in notifications`,
			`: escalation: default severities.HIGH.channels[2]: channel email is used by the escalation config but not configured in notifications`,
		}},
		{"severity_order_merge.yml", []string{
			`:3:32: escalation: severities.CRITICAL.channels[1]: channel mattermost is used by the escalation config but not configured in notifications`,
			// The merged values are placed where the merge writes them.
			`:4:27: escalation: severities.LOW.channels[0]: channel slack is used by the escalation config but not configured in notifications`,
			`:4:56: escalation: severities.MEDIUM.channels[0]: channel teams is used by the escalation config but not configured in notifications`,
			`:5:23: escalation: severities.HIGH.channels[0]: channel webhook is used by the escalation config but not configured in notifications`,
		}},
		// The severities a merge brings into the section keep their order.
		{"severity_order_section_merge.yml", []string{
			`:2:38: escalation: severities.LOW.channels[0]: channel slack is used by the escalation config but not configured in notifications`,
			`:2:69: escalation: severities.CRITICAL.channels[0]: channel teams is used by the escalation config but not configured in notifications`,
			`: escalation: default severities.HIGH.channels[1]: channel push is used by the escalation config but not configured in notifications`,
			`: escalation: default severities.HIGH.channels[2]: channel email is used by the escalation config but not configured in notifications`,
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", tc.file)
			got := placedWarnings(t, path)
			for i := range got {
				got[i] = strings.TrimPrefix(got[i], path)
			}
			require.Equal(t, tc.want, got)
		})
	}
}

// TestSeverityFirstProblem: of several problems in the severities, the
// one the file lists first is reported, every time (the severities were
// checked in the map's random order).
func TestSeverityFirstProblem(t *testing.T) {
	path := filepath.Join("testdata", "severity_first_problem.bad.yml")
	for range 50 {
		_, _, err := loadSections(path)
		require.EqualError(t, err, path+":"+badFixtures["severity_first_problem.bad.yml"])
	}
}

// placedWarnings loads the escalation section of the file at path and
// returns its warnings placed in the file as sred places them
// ("path:line:col: escalation: ..."; yamlerr.FileChecks).
func placedWarnings(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	_, warnings, err := loadSections(path)
	require.NoError(t, err)
	out := make([]string, len(warnings))
	for i, w := range warnings {
		out[i] = yamlerr.FileChecks(path, b, []string{"escalation"}, errors.New("escalation: "+w)).Error()
	}
	return out
}
