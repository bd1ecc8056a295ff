package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/limits"
)

// A command-line value kingpin refuses is echoed cut at limits.MaxEchoBytes,
// the message otherwise as kingpin writes it; a short one stays whole.
func TestParseErrorCutsValue(t *testing.T) {
	long := strings.Repeat("x", 5000)
	cut := limits.Cut(long)
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"budget", "-o", "yaml"}, "srectl: enum value must be one of table,json, got 'yaml'\n"},
		{[]string{"budget", "-o", long}, "srectl: enum value must be one of table,json, got '" + cut + "'\n"},
		{[]string{"incidents", long}, "srectl: expected command but got \"" + cut + "\" (commands: list, ls, show, ack, investigate, resolve, snooze, create, split, merge, export, import; see srectl incidents --help)\n"},
		{[]string{"gate", "--" + long}, "srectl: unknown long flag '--" + limits.Cut("--" + long)[2:] + "'\n"},
	} {
		var stdout, stderr bytes.Buffer
		require.Equal(t, 2, Main(tc.args, &stdout, &stderr), "%.40q", tc.args)
		require.Equal(t, tc.stderr, stderr.String(), "%.40q", tc.args)
	}
}
