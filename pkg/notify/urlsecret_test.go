package notify

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDeliveryErrorHidesSecretURL: a chat webhook URL is a credential (its
// path is the token) and the delivery error is stored as the
// notification's last_error, which every viewer reads in the escalation
// API. A URL that does not parse (a stray "%" in the file) must fail the
// delivery without quoting it, as network errors already do.
func TestDeliveryErrorHidesSecretURL(t *testing.T) {
	dir := t.TempDir()
	const secret = "T024BE7LH/B0123/xoxSECRETtoken"
	file := filepath.Join(dir, "slack_url")
	require.NoError(t, os.WriteFile(file, []byte("https://hooks.slack.example/services/"+secret+"%zz\n"), 0o600))
	d := &deliverer{cfg: &Config{Slack: &SlackConfig{WebhookURLFile: file}}, client: http.DefaultClient, now: time.Now}
	err := d.deliver(context.Background(), &Message{IncidentID: "INC-2026-0001", Channel: ChannelSlack, Event: EventTrigger,
		Subject: "s", Body: "b", Severity: "CRITICAL"})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "xoxSECRETtoken")
	require.Contains(t, err.Error(), "invalid URL escape")
}
