// Package notify delivers incident notifications: email (SMTP with STARTTLS
// and auth), Slack, Microsoft Teams and Mattermost incoming webhooks, signed
// generic webhooks, PagerDuty Events API v2, and SMS, phone calls and push
// through any HTTP provider (a Twilio-compatible form by default, or a body
// template with basic or bearer auth and custom headers). Messages go through a durable outbox table; a Sender drains it
// with retries (honouring 429 Retry-After, backing off on 5xx), so a restart
// loses nothing and a failing channel does not hold up the others.
package notify

import (
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/secretfile"
)

// Channel names.
const (
	ChannelEmail      = "email"
	ChannelSMS        = "sms"
	ChannelPhone      = "phone"
	ChannelPush       = "push"
	ChannelSlack      = "slack"
	ChannelWebhook    = "webhook"
	ChannelPagerDuty  = "pagerduty"
	ChannelTeams      = "teams"
	ChannelMattermost = "mattermost"
)

// Channels lists every channel.
var Channels = []string{ChannelSMS, ChannelPhone, ChannelPush, ChannelEmail, ChannelSlack, ChannelWebhook, ChannelPagerDuty, ChannelTeams, ChannelMattermost}

// PerUser reports whether a channel is addressed to each paged user (email,
// sms, phone, push) rather than once per escalation step (slack, teams,
// mattermost, webhook, pagerduty).
func PerUser(channel string) bool {
	switch channel {
	case ChannelEmail, ChannelSMS, ChannelPhone, ChannelPush:
		return true
	}
	return false
}

// NormalizeChannel maps aliases ("chat" is slack) and checks the name.
func NormalizeChannel(c string) (string, error) {
	c = strings.ToLower(strings.TrimSpace(c))
	if c == "chat" {
		c = ChannelSlack
	}
	for _, k := range Channels {
		if c == k {
			return c, nil
		}
	}
	return "", fmt.Errorf("unknown channel %q (want one of %s, or chat)", c, strings.Join(Channels, ", "))
}

// Config is the `notifications` section of sred.yml.
type Config struct {
	// AckSecret signs the acknowledge links in messages. Without it, messages
	// carry no acknowledge link.
	AckSecret     commoncfg.Secret `yaml:"ack_secret,omitempty"`
	AckSecretFile string           `yaml:"ack_secret_file,omitempty"`
	// AckLinkTTL is how long an acknowledge link stays valid.
	AckLinkTTL model.Duration `yaml:"ack_link_ttl,omitempty"`

	// MaxAttempts per message before it is given up as failed.
	MaxAttempts int `yaml:"max_attempts,omitempty"`
	// MinBackoff and MaxBackoff bound the exponential backoff after 5xx and
	// network errors; a 429 waits for its Retry-After (capped at MaxBackoff).
	MinBackoff model.Duration `yaml:"min_backoff,omitempty"`
	MaxBackoff model.Duration `yaml:"max_backoff,omitempty"`
	// Lease is how long a claimed message stays exclusive to the sender that
	// claimed it; a sender that died mid-send leaves it to another after it.
	Lease model.Duration `yaml:"lease,omitempty"`
	// Retention is how long delivered, failed and cancelled messages are kept.
	Retention model.Duration `yaml:"retention,omitempty"`
	// Timeout of one delivery attempt.
	Timeout model.Duration `yaml:"timeout,omitempty"`

	// Subject and Body are Go text/templates (see docs/notifications.md);
	// empty means the default, an incident status update.
	Subject string `yaml:"subject_template,omitempty"`
	Body    string `yaml:"body_template,omitempty"`

	Email      *EmailConfig      `yaml:"email,omitempty"`
	Slack      *SlackConfig      `yaml:"slack,omitempty"`
	Teams      *TeamsConfig      `yaml:"teams,omitempty"`
	Mattermost *MattermostConfig `yaml:"mattermost,omitempty"`
	Webhook    *WebhookConfig    `yaml:"webhook,omitempty"`
	PagerDuty  *PagerDutyConfig  `yaml:"pagerduty,omitempty"`
	SMS        *ProviderConfig   `yaml:"sms,omitempty"`
	Phone      *ProviderConfig   `yaml:"phone,omitempty"`
	Push       *ProviderConfig   `yaml:"push,omitempty"`

	// baseDir resolves relative *_file paths (set by SetBaseDir).
	baseDir string
}

// Defaults of the section.
const (
	DefaultMaxAttempts = 8
	DefaultMinBackoff  = model.Duration(10 * time.Second)
	DefaultMaxBackoff  = model.Duration(10 * time.Minute)
	DefaultTimeout     = model.Duration(10 * time.Second)
	DefaultAckLinkTTL  = model.Duration(24 * time.Hour)
)

// EmailConfig sends email through an SMTP smarthost.
type EmailConfig struct {
	// Smarthost is host:port of the SMTP server.
	Smarthost string `yaml:"smarthost"`
	From      string `yaml:"from"`
	Hello     string `yaml:"hello,omitempty"`
	// TLS is how the connection is secured: "starttls" (upgrade after
	// EHLO) or "implicit" (TLS from the first byte, "SMTPS"). The default
	// is implicit on port 465 and starttls elsewhere.
	TLS string `yaml:"tls,omitempty"`
	// RequireTLS refuses to send unless the server offers STARTTLS
	// (default true; implicit TLS always has it).
	RequireTLS       *bool               `yaml:"require_tls,omitempty"`
	TLSConfig        commoncfg.TLSConfig `yaml:"tls_config,omitempty"`
	AuthUsername     string              `yaml:"auth_username,omitempty"`
	AuthPassword     commoncfg.Secret    `yaml:"auth_password,omitempty"`
	AuthPasswordFile string              `yaml:"auth_password_file,omitempty"`
	Headers          map[string]string   `yaml:"headers,omitempty"`
}

// Values of EmailConfig.TLS.
const (
	EmailStartTLS    = "starttls"
	EmailImplicitTLS = "implicit"
)

// SlackConfig posts to a Slack incoming webhook.
type SlackConfig struct {
	WebhookURL     commoncfg.Secret `yaml:"webhook_url,omitempty"`
	WebhookURLFile string           `yaml:"webhook_url_file,omitempty"`
	Channel        string           `yaml:"channel,omitempty"`
	Username       string           `yaml:"username,omitempty"`
}

// TeamsConfig posts an Adaptive Card to a Microsoft Teams incoming webhook:
// a Workflows (Power Automate) "when a Teams webhook request is received"
// URL, or a legacy Office 365 connector URL. Both accept the same message.
type TeamsConfig struct {
	WebhookURL     commoncfg.Secret `yaml:"webhook_url,omitempty"`
	WebhookURLFile string           `yaml:"webhook_url_file,omitempty"`
}

// MattermostConfig posts to a Mattermost incoming webhook.
type MattermostConfig struct {
	WebhookURL     commoncfg.Secret `yaml:"webhook_url,omitempty"`
	WebhookURLFile string           `yaml:"webhook_url_file,omitempty"`
	// Channel, Username and IconURL override the webhook's defaults (when
	// the Mattermost server allows it).
	Channel  string `yaml:"channel,omitempty"`
	Username string `yaml:"username,omitempty"`
	IconURL  string `yaml:"icon_url,omitempty"`
}

// WebhookConfig posts a JSON document signed with HMAC-SHA256.
type WebhookConfig struct {
	URL        string           `yaml:"url"`
	Secret     commoncfg.Secret `yaml:"secret,omitempty"`
	SecretFile string           `yaml:"secret_file,omitempty"`
	// MaxBytes bounds the JSON document (DefaultWebhookMaxBytes when 0, at
	// least MinWebhookMaxBytes): a larger one gets its alert text, labels
	// and mentions cut, and says so in "truncated" (webhookPayload).
	MaxBytes int `yaml:"max_bytes,omitempty"`
}

// Bounds of the webhook's document.
const (
	DefaultWebhookMaxBytes = 256 << 10
	MinWebhookMaxBytes     = 4096
)

// PagerDutyConfig sends PagerDuty Events API v2 events.
type PagerDutyConfig struct {
	URL            string           `yaml:"url,omitempty"`
	RoutingKey     commoncfg.Secret `yaml:"routing_key,omitempty"`
	RoutingKeyFile string           `yaml:"routing_key_file,omitempty"`
}

// DefaultPagerDutyURL is the Events API v2 endpoint.
const DefaultPagerDutyURL = "https://events.pagerduty.com/v2/enqueue"

// ProviderConfig is an HTTP provider for SMS, phone calls or push. Any
// provider works: without BodyTemplate it POSTs a Twilio-compatible form (To,
// From, Body; phone: Twiml; push: Title, Body, Url); with BodyTemplate it
// POSTs the rendered template (e.g. JSON for Vonage, MessageBird, Plivo,
// ntfy or Pushover) as ContentType. Authentication is HTTP basic auth
// (Username, Password) or a bearer token; Headers adds fixed headers.
type ProviderConfig struct {
	URL          string           `yaml:"url"`
	Username     string           `yaml:"username,omitempty"`
	Password     commoncfg.Secret `yaml:"password,omitempty"`
	PasswordFile string           `yaml:"password_file,omitempty"`
	// BearerToken is sent as "Authorization: Bearer <token>".
	BearerToken     commoncfg.Secret  `yaml:"bearer_token,omitempty"`
	BearerTokenFile string            `yaml:"bearer_token_file,omitempty"`
	Headers         map[string]string `yaml:"headers,omitempty"`
	From            string            `yaml:"from,omitempty"`
	// BodyTemplate is a Go text/template over ProviderData; ContentType
	// defaults to application/json when it is set.
	BodyTemplate string `yaml:"body_template,omitempty"`
	ContentType  string `yaml:"content_type,omitempty"`

	body *template.Template
}

// UnmarshalYAML sets defaults and validates the section.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	type plain Config
	*c = Config{}
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	return nil
}

func checkURL(field, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s %q is not an http(s) URL", field, s)
	}
	return nil
}

func secretPair(field string, s commoncfg.Secret, file string, required bool) error {
	if s != "" && file != "" {
		return fmt.Errorf("at most one of %s and %s_file may be set", field, field)
	}
	if required && s == "" && file == "" {
		return fmt.Errorf("%s or %s_file is required", field, field)
	}
	return nil
}

// Validate sets defaults and checks the section. It is idempotent.
func (c *Config) Validate() error {
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.AckLinkTTL == 0 {
		c.AckLinkTTL = DefaultAckLinkTTL
	}
	if c.Lease == 0 {
		c.Lease = model.Duration(DefaultLease)
	}
	if c.Retention == 0 {
		c.Retention = model.Duration(jobs.DefaultRetention)
	}
	if c.Lease < 0 || c.Retention < 0 {
		return errors.New("lease and retention must be positive")
	}
	if c.Timeout < 0 || c.Timeout >= c.Lease/2 {
		return fmt.Errorf("timeout %s must be positive and shorter than %s (half the outbox lease of %s, so that a slow delivery is never sent twice)",
			c.Timeout, c.Lease/2, c.Lease)
	}
	if c.MaxAttempts < 1 {
		return errors.New("max_attempts must be at least 1")
	}
	if c.MinBackoff < 0 || c.MaxBackoff < c.MinBackoff {
		return fmt.Errorf("min_backoff %s and max_backoff %s: want 0 < min_backoff <= max_backoff", c.MinBackoff, c.MaxBackoff)
	}
	if err := secretPair("ack_secret", c.AckSecret, c.AckSecretFile, false); err != nil {
		return err
	}
	if _, err := parseTemplates(c.Subject, c.Body); err != nil {
		return err
	}
	if e := c.Email; e != nil {
		_, port, err := splitHostPort(e.Smarthost)
		if err != nil {
			return fmt.Errorf("email: smarthost: %w", err)
		}
		switch e.TLS {
		case "":
			e.TLS = EmailStartTLS
			if port == "465" {
				e.TLS = EmailImplicitTLS
			}
		case EmailStartTLS, EmailImplicitTLS:
		default:
			return fmt.Errorf("email: tls %q: want starttls or implicit", e.TLS)
		}
		if _, err := mail.ParseAddress(e.From); err != nil {
			return fmt.Errorf("email: from %q: %w", e.From, err)
		}
		if e.RequireTLS == nil {
			t := true
			e.RequireTLS = &t
		}
		if err := secretPair("auth_password", e.AuthPassword, e.AuthPasswordFile, false); err != nil {
			return fmt.Errorf("email: %w", err)
		}
		if err := e.TLSConfig.Validate(); err != nil {
			return fmt.Errorf("email: tls_config: %w", err)
		}
	}
	if s := c.Slack; s != nil {
		if err := checkWebhookURL(s.WebhookURL, s.WebhookURLFile); err != nil {
			return fmt.Errorf("slack: %w", err)
		}
	}
	if w := c.Webhook; w != nil {
		if err := checkURL("url", w.URL); err != nil {
			return fmt.Errorf("webhook: %w", err)
		}
		if err := secretPair("secret", w.Secret, w.SecretFile, true); err != nil {
			return fmt.Errorf("webhook: %w", err)
		}
		if w.MaxBytes == 0 {
			w.MaxBytes = DefaultWebhookMaxBytes
		}
		if w.MaxBytes < MinWebhookMaxBytes {
			return fmt.Errorf("webhook: max_bytes %d: want at least %d (unset: %d)", w.MaxBytes, MinWebhookMaxBytes, DefaultWebhookMaxBytes)
		}
	}
	if p := c.PagerDuty; p != nil {
		if p.URL == "" {
			p.URL = DefaultPagerDutyURL
		}
		if err := checkURL("url", p.URL); err != nil {
			return fmt.Errorf("pagerduty: %w", err)
		}
		if err := secretPair("routing_key", p.RoutingKey, p.RoutingKeyFile, true); err != nil {
			return fmt.Errorf("pagerduty: %w", err)
		}
	}
	if t := c.Teams; t != nil {
		if err := checkWebhookURL(t.WebhookURL, t.WebhookURLFile); err != nil {
			return fmt.Errorf("teams: %w", err)
		}
	}
	if m := c.Mattermost; m != nil {
		if err := checkWebhookURL(m.WebhookURL, m.WebhookURLFile); err != nil {
			return fmt.Errorf("mattermost: %w", err)
		}
	}
	if m := c.Mattermost; m != nil && m.IconURL != "" {
		if err := checkURL("icon_url", m.IconURL); err != nil {
			return fmt.Errorf("mattermost: %w", err)
		}
	}
	for _, pp := range []struct {
		name string
		p    *ProviderConfig
	}{{ChannelSMS, c.SMS}, {ChannelPhone, c.Phone}, {ChannelPush, c.Push}} {
		if pp.p == nil {
			continue
		}
		if err := pp.p.validate(pp.name); err != nil {
			return fmt.Errorf("%s: %w", pp.name, err)
		}
	}
	return nil
}

func checkWebhookURL(u commoncfg.Secret, file string) error {
	if err := secretPair("webhook_url", u, file, true); err != nil {
		return err
	}
	if u != "" {
		return checkURL("webhook_url", string(u))
	}
	return nil
}

func (p *ProviderConfig) validate(name string) error {
	if err := checkURL("url", p.URL); err != nil {
		return err
	}
	if err := secretPair("password", p.Password, p.PasswordFile, false); err != nil {
		return err
	}
	if err := secretPair("bearer_token", p.BearerToken, p.BearerTokenFile, false); err != nil {
		return err
	}
	if (p.BearerToken != "" || p.BearerTokenFile != "") && (p.Username != "" || p.Password != "" || p.PasswordFile != "") {
		return errors.New("at most one of basic auth (username, password) and bearer_token may be set")
	}
	for k := range p.Headers {
		if http.CanonicalHeaderKey(k) == "Authorization" || http.CanonicalHeaderKey(k) == "Content-Type" {
			return fmt.Errorf("headers: %s is set by the provider's auth and content_type fields", http.CanonicalHeaderKey(k))
		}
		if !validHeaderName(k) {
			return fmt.Errorf("headers: invalid header name %q", k)
		}
	}
	if p.BodyTemplate != "" {
		t, err := parseProviderTemplate(p.BodyTemplate)
		if err != nil {
			return err
		}
		p.body = t
		if p.ContentType == "" {
			p.ContentType = "application/json"
		}
	} else {
		if p.ContentType != "" {
			return errors.New("content_type needs body_template (the default body is a form)")
		}
		if name != ChannelPush && p.From == "" {
			return errors.New("from is required by the default (Twilio-compatible) form body")
		}
	}
	return nil
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if r <= ' ' || r >= 127 || strings.ContainsRune("()<>@,;:\\\"/[]?={}", r) {
			return false
		}
	}
	return true
}

// SetBaseDir sets the directory that relative *_file paths are resolved
// against (the directory of the config file).
func (c *Config) SetBaseDir(dir string) { c.baseDir = dir }

// Configured reports whether channel has a configuration.
func (c *Config) Configured(channel string) bool {
	switch channel {
	case ChannelEmail:
		return c.Email != nil
	case ChannelSlack:
		return c.Slack != nil
	case ChannelWebhook:
		return c.Webhook != nil
	case ChannelPagerDuty:
		return c.PagerDuty != nil
	case ChannelSMS:
		return c.SMS != nil
	case ChannelPhone:
		return c.Phone != nil
	case ChannelPush:
		return c.Push != nil
	case ChannelTeams:
		return c.Teams != nil
	case ChannelMattermost:
		return c.Mattermost != nil
	}
	return false
}

// secret returns an inline secret or reads its file at use time (so a
// rotated file is picked up without a reload; secretfile.Read). A file
// that holds nothing is an error (secretfile.ErrEmpty), as one that cannot
// be read, never an empty secret: a message is retried until the file is
// filled, not sent with an empty key, password or URL.
func (c *Config) secret(s commoncfg.Secret, file string) (string, error) {
	if file == "" {
		return string(s), nil
	}
	if !filepath.IsAbs(file) && c.baseDir != "" {
		file = filepath.Join(c.baseDir, file)
	}
	return secretfile.Source{File: file}.Get()
}

// AckKey returns the key that signs acknowledge links ("" if none). An
// ack_secret_file that holds nothing is an error (secretfile.ErrEmpty),
// as one that cannot be read: it never means "no key".
func (c *Config) AckKey() (string, error) {
	k, err := c.secret(c.AckSecret, c.AckSecretFile)
	if err != nil && c.AckSecretFile != "" {
		err = fmt.Errorf("notifications.ack_secret_file: %w", err)
	}
	return k, err
}
