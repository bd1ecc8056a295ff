package runbook

import "fmt"

// CheckHTTPEndpoints builds the HTTP client of every http endpoint of cfg,
// as Update does, so that a configuration can be checked before it is
// installed: Update cannot then fail on it.
func CheckHTTPEndpoints(cfg Config) error {
	for name, ep := range cfg.HTTPEndpoints {
		if _, err := newHTTPClient(name, ep); err != nil {
			return fmt.Errorf("runbooks: http endpoint %q: %w", name, err)
		}
	}
	return nil
}
