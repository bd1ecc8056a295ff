package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/prometheus/exporter-toolkit/web"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/app"
	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/yamlerr"
)

// MinWebhookTokenBytes is the shortest webhook bearer token check config
// accepts without a warning.
const MinWebhookTokenBytes = 16

// checkAccess loads the users file of cfg and the web configuration file
// (when given) as sred does, and returns warnings about combinations of
// users and webhook credentials that cannot work, or an error for those sred
// refuses.
func checkAccess(cfg *app.Config, webConfig string) ([]string, error) {
	var warnings []string
	users := &auth.UsersFile{}
	if path := app.Auth.Of(cfg).UsersFile; path != "" {
		f, err := auth.LoadUsersFile(path)
		if err != nil {
			return nil, err
		}
		users = f
	}
	var webUsers map[string]string
	if webConfig != "" {
		b, err := os.ReadFile(webConfig)
		if err != nil {
			return nil, fmt.Errorf("web config file %s: %w", webConfig, err)
		}
		// A syntax error is named at its line and column, as sred names
		// it, before exporter-toolkit's own reading of the file names it raw.
		if err := yaml.Unmarshal(b, &yaml.Node{}); err != nil {
			return nil, fmt.Errorf("web config file %w", yamlerr.InFile(webConfig, yamlerr.Located(b, err)))
		}
		if err := web.Validate(webConfig); err != nil {
			return nil, fmt.Errorf("web config file %s: %w", webConfig, yamlerr.Rewrite(err))
		}
		var wc struct {
			Users map[string]string `yaml:"basic_auth_users"`
		}
		if err := yaml.Unmarshal(b, &wc); err != nil {
			return nil, fmt.Errorf("web config file %s: %w", webConfig, yamlerr.Rewrite(err))
		}
		webUsers = wc.Users
	}
	all, err := users.WithUsers(webUsers, auth.RoleAdmin)
	if err != nil {
		return nil, err
	}
	webhookToken := cfg.Webhook.BearerToken != "" || cfg.Webhook.BearerTokenFile != ""
	responders := 0
	for _, u := range all.Users {
		if u.Role.Allows(auth.RoleResponder) {
			responders++
		}
	}
	for _, t := range all.Tokens {
		if t.Role.Allows(auth.RoleResponder) {
			responders++
		}
	}
	switch {
	case len(all.Users) == 0 && len(all.Tokens) == 0:
		warnings = append(warnings, "no users: sred refuses to start unless --web.no-auth is given (anyone who reaches the port is then admin); list users in auth.users_file")
	case !webhookToken && responders == 0:
		warnings = append(warnings, "the webhook has no bearer token (webhook.bearer_token) and no user or token may deliver (role responder or admin): every Alertmanager delivery will get 401/403 and be lost (Alertmanager does not retry 4xx)")
	case !webhookToken:
		warnings = append(warnings, "the webhook has no bearer token (webhook.bearer_token): Alertmanager must authenticate as a responder or admin user (http_config.basic_auth) or token (http_config.authorization)")
	}
	if webhookToken {
		// Deliveries are not rate-limited (Alertmanager's bursts must pass),
		// so the token alone stands against guessing.
		tok, err := cfg.Webhook.Token().Get()
		if err != nil {
			return nil, fmt.Errorf("webhook token: %w", err)
		}
		if n := len(strings.TrimSpace(tok)); n < MinWebhookTokenBytes {
			warnings = append(warnings, fmt.Sprintf("the webhook's bearer token is %s: webhook requests are not rate-limited, so a short token can be guessed by anyone who reaches the port; use at least %d random bytes (e.g. openssl rand -hex 16)", count(n, "byte", "bytes"), MinWebhookTokenBytes))
		}
	}
	if names := all.BcryptTokens(); len(names) > 0 {
		if len(names) == 1 {
			warnings = append(warnings, fmt.Sprintf("token %s is given as a bcrypt hash: every unknown bearer token a client sends costs one bcrypt comparison; give the token's SHA-256 instead (sha256: in the users file, docs/security.md)", names[0]))
		} else {
			warnings = append(warnings, fmt.Sprintf("tokens %s are given as bcrypt hashes: every unknown bearer token a client sends costs one bcrypt comparison per such token; give each token's SHA-256 instead (sha256: in the users file, docs/security.md)", strings.Join(names, ", ")))
		}
	}
	if len(webUsers) > 0 {
		if len(webUsers) == 1 {
			warnings = append(warnings, "1 user of basic_auth_users in the web config file is an admin checked by sred (not by exporter-toolkit); give it a role by moving it to auth.users_file")
		} else {
			warnings = append(warnings, fmt.Sprintf("%d users of basic_auth_users in the web config file are admins checked by sred (not by exporter-toolkit); give them roles by moving them to auth.users_file", len(webUsers)))
		}
	}
	return warnings, nil
}
