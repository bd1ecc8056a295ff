package app

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEscalationWarningsLogged: sred logs the escalation section's
// warnings at start and at each reload at the node of the file they name,
// "sred.yml:8:38: escalation: ...", as `srectl check config` prints them
// (one rule: Config.PlaceWarning); a warning naming no node of the file (a
// channel of the default severities, with no severities in the file)
// reads as it is.
func TestEscalationWarningsLogged(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sred.yml")
	write := func(s string) { require.NoError(t, os.WriteFile(file, []byte(s), 0o644)) }
	write(`escalation:
  severities:
    CRITICAL: {channels: [sms]}
    HIGH: {channels: [sms]}
    MEDIUM: {channels: [sms]}
    LOW: {channels: [sms]}
  policies:
    - name: api
      matchers: ['{severity="CRITICAL"}']
      levels:
        - {after: 0m, users: [alice, bob], channels: [sms, slack]}
oncall:
  users: [{name: alice, phone: "+15550100001"}, {name: bob}]
notifications:
  sms: {url: "http://127.0.0.1:1/sms", from: "+15550100000"}
`)
	logs := &logBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := New(ctx, Options{ConfigFile: file, StoragePath: filepath.Join(dir, "data"), Logger: logs.logger()})
	require.NoError(t, err)
	defer a.Close()
	logged := func() []string {
		var out []string
		for _, rec := range logs.lines(t, "escalation config") {
			out = append(out, rec["warning"].(string))
		}
		return out
	}
	require.Equal(t, []string{
		file + ":11:38: escalation: policies[0] (api): levels[0].users[1]: user bob has no contact for sms (CRITICAL): those messages skip them",
		file + ":11:60: escalation: policies[0] (api): levels[0].channels[1]: channel slack is used by the escalation config but not configured in notifications",
	}, logged())

	// A reload places them in the file as it is now.
	write(`oncall:
  users: [{name: alice, phone: "+15550100001"}, {name: bob}]
notifications:
  sms: {url: "http://127.0.0.1:1/sms", from: "+15550100000"}
escalation:
  policies:
    - name: api
      matchers: ['{severity="HIGH"}']
      levels:
        - {after: 0m, users: [bob]}
`)
	require.NoError(t, a.reload(ctx))
	require.Equal(t, []string{
		"escalation: default severities.CRITICAL.channels[1]: channel phone is used by the escalation config but not configured in notifications",
		"escalation: default severities.CRITICAL.channels[2]: channel push is used by the escalation config but not configured in notifications",
		"escalation: default severities.CRITICAL.channels[3]: channel email is used by the escalation config but not configured in notifications",
		"escalation: default severities.LOW.channels[1]: channel slack is used by the escalation config but not configured in notifications",
		file + ":10:31: escalation: policies[0] (api): levels[0].users[0]: user bob has no contact for sms (HIGH): those messages skip them",
	}, logged()[2:])
}
