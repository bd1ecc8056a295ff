package config

import (
	"errors"
	"fmt"
	"os"
	"strings"

	commoncfg "github.com/prometheus/common/config"
)

// checkFiles reports every referenced secret or token file (notification
// secrets, the webhook and gate tokens, the passwords, tokens and TLS files
// of the Alertmanager and Prometheus clients) that is missing, unreadable or
// empty. sred reads these files at each use; without this check a missing
// file only shows later as failed deliveries or acknowledge links silently
// left out of messages.
func (c *Config) checkFiles() error {
	type ref struct{ field, path string }
	var refs []ref
	add := func(field, path string) {
		if path != "" {
			refs = append(refs, ref{field, path})
		}
	}
	add("webhook.bearer_token_file", c.Webhook.BearerTokenFile)
	for i, f := range c.SLOs.Gate.OverrideTokenFiles {
		add(fmt.Sprintf("slos.gate.override_token_files[%d]", i), f)
	}
	for _, f := range c.Notifications.SecretFiles() {
		add(f.Field, f.Path)
	}
	for _, h := range []struct {
		section string
		cfg     *commoncfg.HTTPClientConfig
	}{{"alertmanager", &c.Alertmanager.HTTPClientConfig}, {"prometheus", &c.Prometheus.HTTPClientConfig}} {
		hc := h.cfg
		if hc.BasicAuth != nil {
			add(h.section+".basic_auth.password_file", hc.BasicAuth.PasswordFile)
			add(h.section+".basic_auth.username_file", hc.BasicAuth.UsernameFile)
		}
		if hc.Authorization != nil {
			add(h.section+".authorization.credentials_file", hc.Authorization.CredentialsFile)
		}
		add(h.section+".bearer_token_file", hc.BearerTokenFile)
		if hc.OAuth2 != nil {
			add(h.section+".oauth2.client_secret_file", hc.OAuth2.ClientSecretFile)
		}
		add(h.section+".tls_config.ca_file", hc.TLSConfig.CAFile)
		add(h.section+".tls_config.cert_file", hc.TLSConfig.CertFile)
		add(h.section+".tls_config.key_file", hc.TLSConfig.KeyFile)
	}
	var errs []error
	for _, r := range refs {
		// Relative paths are relative to the config file; the message
		// names the path as written.
		b, err := os.ReadFile(c.ResolvePath(r.path))
		switch {
		case errors.Is(err, os.ErrNotExist):
			errs = append(errs, fmt.Errorf("%s: file %q does not exist", r.field, r.path))
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", r.field, err))
		case strings.TrimSpace(string(b)) == "":
			errs = append(errs, fmt.Errorf("%s: file %q is empty", r.field, r.path))
		}
	}
	return errors.Join(errs...)
}
