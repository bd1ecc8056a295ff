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

// TestProviderTemplateCut: an operator's body_template gets the alert
// text cut to the provider's limits, as the default form does: a
// 5,000-character title and a 20 KB description reach a real HTTP
// receiver as a .Subject, .Title and .Body within the channel's bounds,
// ending with …, and short text whole.
func TestProviderTemplateCut(t *testing.T) {
	const tmpl = `'{"subject": {{ json .Subject }}, "title": {{ json .Title }}, "body": {{ json .Body }}, "text": {{ json .Text }}}'`
	long := strings.Repeat("é", 5000)
	for _, tc := range []struct {
		ch            string
		subjMax, body int
		c             cost
	}{
		{ChannelSMS, smsMaxUnits, smsMaxUnits, utf16Units},
		{ChannelPhone, phoneSayMax, phoneSayMax, func(rune) int { return 1 }},
		{ChannelPush, pushTitleMax, pushBodyMax, bytesCost},
	} {
		t.Run(tc.ch, func(t *testing.T) {
			for _, text := range []struct{ subject, body string }{{long, strings.Repeat("disk full ", 2000)}, {"api down", "short body"}} {
				ep := newEndpoint(t)
				cfg := decodeConfig(t, fmt.Sprintf("%s: {url: %q, from: '+15550100000', body_template: %s}", tc.ch, ep.URL, tmpl))
				d := &deliverer{cfg: cfg, client: ep.Client(), now: time.Now}
				m := &Message{IncidentID: "INC-2026-0001", Channel: tc.ch, Event: EventTrigger, Subject: text.subject, Title: text.subject,
					Body: text.body, Severity: "CRITICAL", User: "alice", To: "+15550000001", AckURL: "https://sred.example.com/ack/tok"}
				require.NoError(t, d.deliver(context.Background(), m))
				reqs := ep.Requests()
				require.Len(t, reqs, 1)
				var got struct{ Subject, Title, Body, Text string }
				require.NoError(t, json.Unmarshal(reqs[0].Body, &got), string(reqs[0].Body))
				for _, f := range []struct {
					name, got, sent string
					max             int
				}{{"subject", got.Subject, text.subject, tc.subjMax}, {"title", got.Title, text.subject, tc.subjMax}, {"body", got.Body, text.body, tc.body}} {
					if size(f.sent, tc.c) <= f.max {
						require.Equal(t, f.sent, f.got, f.name)
						continue
					}
					require.LessOrEqual(t, size(f.got, tc.c), f.max, f.name)
					require.Greater(t, size(f.got, tc.c), f.max/2, f.name)
					require.True(t, strings.HasSuffix(f.got, cutMark), f.name)
				}
				require.LessOrEqual(t, size(got.Text, utf16Units), smsMaxUnits)
			}
		})
	}
}
