package notify

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

func emailConfig(t *testing.T, extra string, srv *smtpServer) *Config {
	t.Helper()
	var cfg Config
	dec := yaml.NewDecoder(strings.NewReader(fmt.Sprintf(`
min_backoff: 30s
email:
  smarthost: %q
  from: sred@example.com
  auth_username: sred
  auth_password: s3cret
  tls_config: {ca_file: %q}
%s`, srv.Addr, srv.CAFile, extra)))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&cfg))
	return &cfg
}

func TestEmailTLSDefaults(t *testing.T) {
	for _, tc := range []struct{ smarthost, tls, want, err string }{
		{"mail.example.com:465", "", EmailImplicitTLS, ""},
		{"mail.example.com:587", "", EmailStartTLS, ""},
		{"mail.example.com:2465", "implicit", EmailImplicitTLS, ""},
		{"mail.example.com:25", "ssl", "", `email: tls "ssl": want starttls or implicit`},
	} {
		c := &Config{Email: &EmailConfig{Smarthost: tc.smarthost, From: "sred@example.com", TLS: tc.tls}}
		err := c.Validate()
		if tc.err != "" {
			require.EqualError(t, err, tc.err)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tc.want, c.Email.TLS, tc.smarthost)
	}
}

// TestEmailTLSModes delivers through a real SMTP server in STARTTLS mode and
// in implicit TLS mode, and shows that a mismatch is a retryable failure.
func TestEmailTLSModes(t *testing.T) {
	starttls, smtps := startSMTP(t), startSMTPS(t)
	msg := &Message{IncidentID: "INC-1", Channel: ChannelEmail, Event: EventTrigger, User: "alice", To: "alice@example.com",
		Subject: "[CRITICAL] Incident INC-1: API down", Body: "API down\n", Time: time.Now()}
	for _, tc := range []struct {
		name  string
		srv   *smtpServer
		extra string
		err   string
	}{
		{"starttls", starttls, "", ""},
		{"implicit", smtps, "  tls: implicit\n", ""},
		{"implicit against a STARTTLS server", starttls, "  tls: implicit\n", "email: TLS handshake: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(tc.srv.Mails())
			d := &deliverer{cfg: emailConfig(t, tc.extra, tc.srv), now: time.Now}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := d.deliver(ctx, msg)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				var de *DeliveryError
				require.ErrorAs(t, err, &de)
				require.True(t, de.Retryable)
				require.Len(t, tc.srv.Mails(), before)
				return
			}
			require.NoError(t, err)
			mails := tc.srv.Mails()
			require.Len(t, mails, before+1)
			got := mails[len(mails)-1]
			require.True(t, got.TLS, "encrypted")
			require.Equal(t, "sred", got.User)
			require.Equal(t, "alice@example.com", got.To)
			require.Contains(t, got.Data, "Subject: [CRITICAL] Incident INC-1: API down")
		})
	}
}

// TestEmailTemporaryFailure: a 451 to RCPT TO is retried after the backoff
// and the second attempt is delivered; the outbox records both.
func TestEmailTemporaryFailure(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{jobs.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		srv := startSMTPS(t)
		srv.mu.Lock()
		srv.failRcpt = 451
		srv.mu.Unlock()
		t0 := time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)
		clock := clock.NewManual(t0)
		_, err := Enqueue(ctx, db, t0, "INC-1/email/alice", &Message{IncidentID: "INC-1", Channel: ChannelEmail, Event: EventTrigger,
			User: "alice", To: "alice@example.com", Subject: "s", Body: "b", Time: t0})
		require.NoError(t, err)
		s := NewSender(db, emailConfig(t, "  tls: implicit\n", srv), clock, nil, nil, prometheus.NewRegistry())
		_, err = s.DeliverDue(ctx)
		require.NoError(t, err)
		recs, err := List(ctx, db, "INC-1")
		require.NoError(t, err)
		require.Equal(t, StatePending, recs[0].State)
		require.Equal(t, 1, recs[0].Attempts)
		require.Equal(t, `email: RCPT TO: 451 "4.0.0 try again later"`, recs[0].LastError)
		require.Equal(t, t0.Add(30*time.Second), recs[0].NextAttempt)
		require.Empty(t, srv.Mails())

		clock.Advance(30 * time.Second)
		_, err = s.DeliverDue(ctx)
		require.NoError(t, err)
		recs, err = List(ctx, db, "INC-1")
		require.NoError(t, err)
		require.Equal(t, StateDelivered, recs[0].State)
		require.Equal(t, 2, recs[0].Attempts)
		require.Len(t, srv.Mails(), 1)
	})
}

// Alert text reaches an email's body (templates over labels, the impact,
// annotations). A bare CR or LF in it must not reach the SMTP stream as
// such: "<CR>.<CR><LF>" and "<LF>.<LF>" end the message on some servers
// (SMTP smuggling), which would let an alert's text append a mail of its
// own. Every line break goes out as CRLF, so the dot after it is escaped.
func TestEmailBodyLineBreaks(t *testing.T) {
	d := &deliverer{now: func() time.Time { return time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC) }}
	ec := &EmailConfig{From: "sred@example.com"}
	for _, tc := range []struct{ body, want string }{
		{"a\nb", "a\r\nb"},
		{"a\r\nb", "a\r\nb"},
		{"a\rb", "a\r\nb"},
		{"x\r.\r\nMAIL FROM:<e@evil.example>", "x\r\n.\r\nMAIL FROM:<e@evil.example>"},
		{"x\n.\nDATA", "x\r\n.\r\nDATA"},
		{"x\r\r\n.", "x\r\n\r\n."},
	} {
		out := string(d.emailBody(ec, &Message{IncidentID: "INC-1", To: "alice@example.com", Subject: "s", Body: tc.body}))
		_, body, ok := strings.Cut(out, "\r\n\r\n")
		require.True(t, ok)
		require.Equal(t, tc.want, body, "%q", tc.body)
	}
}
