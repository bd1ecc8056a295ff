// Package notify delivers incident notifications: email (SMTP with STARTTLS
// and auth), Slack incoming webhooks, signed generic webhooks, PagerDuty
// Events API v2, and SMS, phone calls and push through a Twilio-style HTTP
// provider. Messages go through a durable outbox table; a Sender drains it
// with retries (honouring 429 Retry-After, backing off on 5xx), so a restart
// loses nothing and a failing channel does not hold up the others.
package notify

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
)

// Channel names.
const (
	ChannelEmail     = "email"
	ChannelSMS       = "sms"
	ChannelPhone     = "phone"
	ChannelPush      = "push"
	ChannelSlack     = "slack"
	ChannelWebhook   = "webhook"
	ChannelPagerDuty = "pagerduty"
)

// Channels lists every channel.
var Channels = []string{ChannelSMS, ChannelPhone, ChannelPush, ChannelEmail, ChannelSlack, ChannelWebhook, ChannelPagerDuty}

// PerUser reports whether a channel is addressed to each paged user (email,
// sms, phone, push) rather than once per escalation step (slack, webhook,
// pagerduty).
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
	// Timeout of one delivery attempt.
	Timeout model.Duration `yaml:"timeout,omitempty"`

	// Subject and Body are Go text/templates (see docs/notifications.md);
	// empty means the default, the guide's status update.
	Subject string `yaml:"subject_template,omitempty"`
	Body    string `yaml:"body_template,omitempty"`

	Email     *EmailConfig     `yaml:"email,omitempty"`
	Slack     *SlackConfig     `yaml:"slack,omitempty"`
	Webhook   *WebhookConfig   `yaml:"webhook,omitempty"`
	PagerDuty *PagerDutyConfig `yaml:"pagerduty,omitempty"`
	SMS       *ProviderConfig  `yaml:"sms,omitempty"`
	Phone     *ProviderConfig  `yaml:"phone,omitempty"`
	Push      *ProviderConfig  `yaml:"push,omitempty"`

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
	// RequireTLS refuses to send unless the server offers STARTTLS
	// (default true).
	RequireTLS       *bool               `yaml:"require_tls,omitempty"`
	TLSConfig        commoncfg.TLSConfig `yaml:"tls_config,omitempty"`
	AuthUsername     string              `yaml:"auth_username,omitempty"`
	AuthPassword     commoncfg.Secret    `yaml:"auth_password,omitempty"`
	AuthPasswordFile string              `yaml:"auth_password_file,omitempty"`
	Headers          map[string]string   `yaml:"headers,omitempty"`
}

// SlackConfig posts to a Slack incoming webhook.
type SlackConfig struct {
	WebhookURL     commoncfg.Secret `yaml:"webhook_url,omitempty"`
	WebhookURLFile string           `yaml:"webhook_url_file,omitempty"`
	Channel        string           `yaml:"channel,omitempty"`
	Username       string           `yaml:"username,omitempty"`
}

// WebhookConfig posts a JSON document signed with HMAC-SHA256.
type WebhookConfig struct {
	URL        string           `yaml:"url"`
	Secret     commoncfg.Secret `yaml:"secret,omitempty"`
	SecretFile string           `yaml:"secret_file,omitempty"`
}

// PagerDutyConfig sends PagerDuty Events API v2 events.
type PagerDutyConfig struct {
	URL            string           `yaml:"url,omitempty"`
	RoutingKey     commoncfg.Secret `yaml:"routing_key,omitempty"`
	RoutingKeyFile string           `yaml:"routing_key_file,omitempty"`
}

// DefaultPagerDutyURL is the Events API v2 endpoint.
const DefaultPagerDutyURL = "https://events.pagerduty.com/v2/enqueue"

// ProviderConfig is a Twilio-style HTTP provider for SMS, phone calls or
// push: a form POST with To, From and Body (phone: Twiml; push: Title, Url)
// authenticated with HTTP basic auth (account SID and auth token).
type ProviderConfig struct {
	URL          string           `yaml:"url"`
	Username     string           `yaml:"username,omitempty"`
	Password     commoncfg.Secret `yaml:"password,omitempty"`
	PasswordFile string           `yaml:"password_file,omitempty"`
	From         string           `yaml:"from,omitempty"`
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
		if _, _, err := splitHostPort(e.Smarthost); err != nil {
			return fmt.Errorf("email: smarthost: %w", err)
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
		if err := secretPair("webhook_url", s.WebhookURL, s.WebhookURLFile, true); err != nil {
			return fmt.Errorf("slack: %w", err)
		}
		if s.WebhookURL != "" {
			if err := checkURL("webhook_url", string(s.WebhookURL)); err != nil {
				return fmt.Errorf("slack: %w", err)
			}
		}
	}
	if w := c.Webhook; w != nil {
		if err := checkURL("url", w.URL); err != nil {
			return fmt.Errorf("webhook: %w", err)
		}
		if err := secretPair("secret", w.Secret, w.SecretFile, true); err != nil {
			return fmt.Errorf("webhook: %w", err)
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
	for name, p := range map[string]*ProviderConfig{"sms": c.SMS, "phone": c.Phone, "push": c.Push} {
		if p == nil {
			continue
		}
		if err := checkURL("url", p.URL); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := secretPair("password", p.Password, p.PasswordFile, false); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if name != "push" && p.From == "" {
			return fmt.Errorf("%s: from is required", name)
		}
	}
	return nil
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
	}
	return false
}

// secret returns an inline secret or reads its file at use time (so a
// rotated file is picked up without a reload).
func (c *Config) secret(s commoncfg.Secret, file string) (string, error) {
	if file == "" {
		return string(s), nil
	}
	if !filepath.IsAbs(file) && c.baseDir != "" {
		file = filepath.Join(c.baseDir, file)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// AckKey returns the key that signs acknowledge links ("" if none).
func (c *Config) AckKey() (string, error) { return c.secret(c.AckSecret, c.AckSecretFile) }
