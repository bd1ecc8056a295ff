package main

import (
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHelp: sred --help and -h print the usage (on stderr) with every flag and exit 0,
// whether or not the configuration file exists.
func TestHelp(t *testing.T) {
	bin, err := buildSred()
	require.NoError(t, err)
	for _, args := range [][]string{
		{"--help"},
		{"-h"},
		{"--config.file=/nonexistent/sred.yml", "--help"},
		{"--help-long"},
	} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = t.TempDir()
		// kingpin prints the usage on stderr, as Prometheus and Alertmanager do.
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "sred %v: %s", args, out)
		require.Equal(t, 0, cmd.ProcessState.ExitCode())
		for _, s := range []string{"usage: sred [<flags>]", "--config.file", "--storage.path", "--web.listen-address"} {
			require.Contains(t, string(out), s, "sred %v", args)
		}
	}
	cmd := exec.Command(bin, "--version")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err)
	require.Contains(t, string(out), "sred, version")
}
