package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	commoncfg "github.com/prometheus/common/config"
)

// FileRef is a file that a configuration field names.
type FileRef struct {
	Field string // e.g. "notifications.ack_secret_file"
	Path  string // relative paths are relative to the config file
}

// CheckFiles reports every referenced secret or token file that is missing,
// unreadable or empty, naming the field and the path (relative to the config
// file when it is below it). sred reads these files at each use; without
// this check a missing file shows only later, as failed deliveries or
// acknowledge links silently left out of messages. Subsystems call it from
// their Load with the files of their sections.
func (c *Config) CheckFiles(refs ...FileRef) error {
	var errs []error
	for _, r := range refs {
		if r.Path == "" {
			continue
		}
		path := c.ResolvePath(r.Path)
		shown := r.Path
		if c.BaseDir != "" {
			if rel, err := filepath.Rel(c.BaseDir, path); err == nil && !strings.HasPrefix(rel, "..") {
				shown = rel
			}
		}
		b, err := os.ReadFile(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			errs = append(errs, fmt.Errorf("%s: file %q does not exist", r.Field, shown))
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", r.Field, err))
		case strings.TrimSpace(string(b)) == "":
			errs = append(errs, fmt.Errorf("%s: file %q is empty", r.Field, shown))
		}
	}
	return errors.Join(errs...)
}

// checkFiles checks the files of the core sections: the webhook token and
// the passwords, tokens and TLS files of the Alertmanager and Prometheus
// clients.
func (c *Config) checkFiles() error {
	refs := []FileRef{{"webhook.bearer_token_file", c.Webhook.BearerTokenFile}}
	for _, h := range []struct {
		section string
		cfg     *commoncfg.HTTPClientConfig
	}{{"alertmanager", &c.Alertmanager.HTTPClientConfig}, {"prometheus", &c.Prometheus.HTTPClientConfig}} {
		hc := h.cfg
		if hc.BasicAuth != nil {
			refs = append(refs, FileRef{h.section + ".basic_auth.password_file", hc.BasicAuth.PasswordFile},
				FileRef{h.section + ".basic_auth.username_file", hc.BasicAuth.UsernameFile})
		}
		if hc.Authorization != nil {
			refs = append(refs, FileRef{h.section + ".authorization.credentials_file", hc.Authorization.CredentialsFile})
		}
		if hc.OAuth2 != nil {
			refs = append(refs, FileRef{h.section + ".oauth2.client_secret_file", hc.OAuth2.ClientSecretFile})
		}
		refs = append(refs,
			FileRef{h.section + ".bearer_token_file", hc.BearerTokenFile},
			FileRef{h.section + ".tls_config.ca_file", hc.TLSConfig.CAFile},
			FileRef{h.section + ".tls_config.cert_file", hc.TLSConfig.CertFile},
			FileRef{h.section + ".tls_config.key_file", hc.TLSConfig.KeyFile})
	}
	return c.CheckFiles(refs...)
}
