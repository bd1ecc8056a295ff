package cli

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A file named on the command line that does not exist fails the command
// with exit code 1 whichever subcommand reads it, as promtool does; exit
// code 2 stays for command lines srectl cannot parse (before, `check config`
// and its --web.config.file, and the token files of gate, change record and
// alert fire, exited 2).
func TestMissingFileExitCode(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.yml")
	good := filepath.Join("..", "config", "testdata", "conf.good.yml")
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"generate", []string{"generate", "-i", missing}, 1},
		{"generate scaling", []string{"generate", "-i", filepath.Join("..", "..", "examples", "slos"), "--scaling", missing}, 1},
		{"validate", []string{"validate", missing}, 1},
		{"check config", []string{"check", "config", missing}, 1},
		{"check config web config", []string{"check", "config", "--web.config.file", missing, good}, 1},
		{"runbook validate", []string{"runbook", "validate", missing}, 1},
		{"runbook validate config", []string{"runbook", "validate", "--config.file", missing}, 1},
		{"chaos validate", []string{"chaos", "validate", missing}, 1},
		{"rollout validate", []string{"rollout", "validate", missing}, 1},
		{"scaling check", []string{"scaling", "check", missing}, 1},
		{"scaling generate", []string{"scaling", "generate", "--policy", missing}, 1},
		{"escalation simulate", []string{"escalation", "simulate", "--config.file", missing}, 1},
		{"oncall", []string{"oncall", "--config.file", missing}, 1},
		{"incidents import", []string{"incidents", "import", missing}, 1},
		{"gate token", []string{"gate", "--service", "s", "--override-token-file", missing, "--sred.url", "http://127.0.0.1:1"}, 1},
		{"change token", []string{"change", "record", "--service", "s", "--override-token-file", missing, "--sred.url", "http://127.0.0.1:1"}, 1},
		{"alert token", []string{"alert", "fire", "--webhook.token-file", missing, "--sred.url", "http://127.0.0.1:1"}, 1},
		{"usage", []string{"check", "config"}, 2},
		{"unknown flag", []string{"validate", "--bogus", missing}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(c.args, &stdout, &stderr)
			require.Equal(t, c.code, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
			if c.code == 1 {
				require.Contains(t, stdout.String()+stderr.String(), "missing.yml")
			}
		})
	}
}
