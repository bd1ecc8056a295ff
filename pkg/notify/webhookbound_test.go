package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWebhookMaxBytes: the message of a 20,000-alert group (20,000
// labels, 2,000 paged users, a 1 MB description, a long title) reaches a
// real HTTP receiver as a signed document of at most max_bytes, saying in
// "truncated" how many labels and mentions it left out; what it kept is
// the message's, in order. A small message goes out whole, without
// "truncated".
func TestWebhookMaxBytes(t *testing.T) {
	labels := map[string]string{}
	for i := range 20000 {
		labels[fmt.Sprintf("instance_%05d", i)] = fmt.Sprintf("db-%05d:9100", i)
	}
	var mentions []string
	for i := range 2000 {
		mentions = append(mentions, fmt.Sprintf("user-%04d", i))
	}
	big := &Message{IncidentID: "INC-2026-0001", Channel: ChannelWebhook, Event: EventTrigger, Subject: strings.Repeat("disk <full> ", 2000),
		Title: strings.Repeat("disk full ", 2000), Service: "db", Body: strings.Repeat("20,000 alerts firing\n", 50000), Severity: "CRITICAL",
		Labels: labels, Mentions: mentions, URL: "https://sred.example.com/incidents/INC-2026-0001", Time: time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)}
	small := &Message{IncidentID: "INC-2026-0002", Channel: ChannelWebhook, Event: EventTrigger, Subject: "api down", Body: "api down\n",
		Severity: "HIGH", Labels: map[string]string{"service": "api"}, Mentions: []string{"alice"}, Time: big.Time}
	for _, max := range []int{0, MinWebhookMaxBytes, 64 << 10} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			ep := newEndpoint(t)
			cfg := decodeConfig(t, fmt.Sprintf("webhook: {url: %q, secret: s, max_bytes: %d}", ep.URL, max))
			want := max
			if max == 0 {
				want = DefaultWebhookMaxBytes
			}
			require.Equal(t, want, cfg.Webhook.MaxBytes)
			d := &deliverer{cfg: cfg, client: ep.Client(), now: func() time.Time { return big.Time }}
			require.NoError(t, d.deliver(context.Background(), big))
			require.NoError(t, d.deliver(context.Background(), small))
			reqs := ep.Requests()
			require.Len(t, reqs, 2)

			b := reqs[0].Body
			require.LessOrEqual(t, len(b), want)
			require.Equal(t, Sign("s", reqs[0].Header.Get(TimestampHeader), b), reqs[0].Header.Get(SignatureHeader))
			var got WebhookPayload
			require.NoError(t, json.Unmarshal(b, &got))
			require.NotNil(t, got.Truncated)
			require.True(t, got.Truncated.Text)
			require.Equal(t, len(labels), len(got.Labels)+got.Truncated.Labels)
			require.Greater(t, got.Truncated.Labels, 0)
			for k, v := range got.Labels {
				require.Equal(t, labels[k], v)
			}
			require.Equal(t, mentions[:len(got.Mentions)], got.Mentions)
			require.Equal(t, len(mentions), len(got.Mentions)+got.Truncated.Mentions)
			require.Equal(t, "INC-2026-0001", got.IncidentID)
			require.Equal(t, big.URL, got.URL)
			require.True(t, strings.HasSuffix(got.Body, cutMark))
			require.True(t, strings.HasPrefix(got.Body, "20,000 alerts firing\n"))

			var whole WebhookPayload
			require.NoError(t, json.Unmarshal(reqs[1].Body, &whole))
			require.Nil(t, whole.Truncated)
			require.Equal(t, small.Body, whole.Body)
			require.Equal(t, small.Labels, whole.Labels)
		})
	}
}
