package notify

// SecretFile is a file a configuration field names.
type SecretFile struct {
	Field string // e.g. "notifications.slack.webhook_url_file"
	Path  string // as written; relative paths are relative to the config file
}

// SecretFiles returns every secret file the section references, so that
// their presence can be checked at load time (they are read again at each
// use, so a rotated file is picked up without a reload).
func (c *Config) SecretFiles() []SecretFile {
	var out []SecretFile
	add := func(field, path string) {
		if path != "" {
			out = append(out, SecretFile{Field: "notifications." + field, Path: path})
		}
	}
	add("ack_secret_file", c.AckSecretFile)
	if e := c.Email; e != nil {
		add("email.auth_password_file", e.AuthPasswordFile)
	}
	if s := c.Slack; s != nil {
		add("slack.webhook_url_file", s.WebhookURLFile)
	}
	if t := c.Teams; t != nil {
		add("teams.webhook_url_file", t.WebhookURLFile)
	}
	if m := c.Mattermost; m != nil {
		add("mattermost.webhook_url_file", m.WebhookURLFile)
	}
	if w := c.Webhook; w != nil {
		add("webhook.secret_file", w.SecretFile)
	}
	if p := c.PagerDuty; p != nil {
		add("pagerduty.routing_key_file", p.RoutingKeyFile)
	}
	for _, pp := range []struct {
		name string
		p    *ProviderConfig
	}{{ChannelSMS, c.SMS}, {ChannelPhone, c.Phone}, {ChannelPush, c.Push}} {
		if pp.p != nil {
			add(pp.name+".password_file", pp.p.PasswordFile)
			add(pp.name+".bearer_token_file", pp.p.BearerTokenFile)
		}
	}
	return out
}
