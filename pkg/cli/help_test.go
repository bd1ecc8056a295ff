package cli

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kingpin/v2"
	"github.com/stretchr/testify/require"
)

// allCommands walks kingpin's model of srectl and returns every command's
// full name, parents included.
func allCommands(t *testing.T) []string {
	t.Helper()
	app, _, _ := newApp(&bytes.Buffer{}, &bytes.Buffer{})
	// Parsing initializes the model (and adds the help command).
	_, _, _, err := parse(app, []string{"--help"})
	require.NoError(t, err)
	var out []string
	var walk func([]*kingpin.CmdModel)
	walk = func(cmds []*kingpin.CmdModel) {
		for _, c := range cmds {
			out = append(out, c.FullCommand)
			walk(c.Commands)
		}
	}
	walk(app.Model().Commands)
	return out
}

// TestHelpEverywhere: --help (and -h, and "help CMD") prints the usage of
// every command on stdout and exits 0, whatever its required flags or
// arguments and whatever flags have no default (issue: `srectl gate --help`
// failed on its required --service, `srectl oncall --help` on an empty
// --sred.url).
func TestHelpEverywhere(t *testing.T) {
	cmds := allCommands(t)
	require.Greater(t, len(cmds), 20, "the walk found too few commands: %v", cmds)
	for _, c := range []string{"gate", "oncall", "incidents list", "generate", "budget", "sla report", "runbook list", "check config"} {
		require.Contains(t, cmds, c)
	}
	type run struct {
		args  []string
		usage string
	}
	runs := []run{
		{nil, "usage: srectl [<flags>] <command>"},
		{[]string{"--help"}, "usage: srectl [<flags>] <command>"},
		{[]string{"-h"}, "usage: srectl [<flags>] <command>"},
	}
	for _, c := range cmds {
		f := strings.Fields(c)
		usage := "usage: srectl " + c
		if c == "help" {
			// kingpin's help command: "help help" and "--help help" print
			// its own usage, "help --help" srectl's.
			usage = "usage: srectl "
		}
		runs = append(runs,
			run{append(slices.Clone(f), "--help"), usage},
			run{append(slices.Clone(f), "-h"), usage},
			run{append([]string{"--help"}, f...), usage},
			run{append([]string{"help"}, f...), usage})
	}
	for _, r := range runs {
		t.Run(strings.Join(r.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(r.args, &stdout, &stderr)
			require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout.String(), stderr.String())
			require.Empty(t, stderr.String())
			require.Contains(t, stdout.String(), r.usage)
			require.Contains(t, stdout.String(), "--help")
		})
	}
}

// TestVersion: --version prints the version and exits 0.
func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, Main([]string{"--version"}, &stdout, &stderr))
	require.Contains(t, stdout.String(), "srectl, version")
	require.Empty(t, stderr.String())
}
