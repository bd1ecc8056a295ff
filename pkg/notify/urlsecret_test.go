package notify

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/secretfile"
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

// TestEmptiedSecretFileRetried: a secret file emptied while sred runs (a
// rotation half done: truncated, then written) must not be read as an
// empty secret. PagerDuty answers an empty routing key 400, a permanent
// failure that gives the page up, and Slack's URL and the webhook's
// signing key would be sent empty. The delivery is a retryable error
// naming the file, nothing is sent, and once the file holds the new
// secret the next attempt uses it.
func TestEmptiedSecretFileRetried(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(url, file string) *Config
		// secret is the file's new content ("": a Slack URL of the
		// endpoint); uses tells whether a request was made with it.
		secret string
		uses   func(r recorded, secret string) bool
		ch     string
	}{
		{"pagerduty routing key", func(url, file string) *Config {
			return &Config{PagerDuty: &PagerDutyConfig{URL: url, RoutingKeyFile: file}}
		}, "NEWROUTINGKEY", func(r recorded, secret string) bool {
			return strings.Contains(string(r.Body), `"routing_key":"`+secret+`"`)
		}, ChannelPagerDuty},
		{"slack webhook URL", func(url, file string) *Config {
			return &Config{Slack: &SlackConfig{WebhookURLFile: file}}
		}, "", func(r recorded, _ string) bool { return true }, ChannelSlack},
		{"webhook signing key", func(url, file string) *Config {
			return &Config{Webhook: &WebhookConfig{URL: url, SecretFile: file}}
		}, "new-hmac-key", func(r recorded, secret string) bool {
			return r.Header.Get(SignatureHeader) == Sign(secret, r.Header.Get(TimestampHeader), r.Body)
		}, ChannelWebhook},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEndpoint(t)
			file := filepath.Join(t.TempDir(), "secret")
			require.NoError(t, os.WriteFile(file, []byte("  \n"), 0o600))
			d := &deliverer{cfg: tc.cfg(e.URL, file), client: http.DefaultClient, now: time.Now}
			m := &Message{IncidentID: "INC-2026-0001", Channel: tc.ch, Event: EventTrigger, Subject: "s", Body: "b", Severity: "CRITICAL"}

			err := d.deliver(context.Background(), m)
			var de *DeliveryError
			require.ErrorAs(t, err, &de)
			require.True(t, de.Retryable, "retried until the file is filled: %v", err)
			require.ErrorIs(t, err, secretfile.ErrEmpty)
			require.Contains(t, err.Error(), file)
			require.Empty(t, e.Requests(), "nothing sent with an empty secret")

			secret := tc.secret
			if secret == "" {
				secret = e.URL + "/hooks/T0/B0/NEW"
			}
			require.NoError(t, os.WriteFile(file, []byte(secret+"\n"), 0o600))
			require.NoError(t, d.deliver(context.Background(), m))
			require.Len(t, e.Requests(), 1)
			require.True(t, tc.uses(e.Requests()[0], secret), "sent with the new secret: %s %s", e.Requests()[0].Header, e.Requests()[0].Body)
		})
	}
}
