package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/testutil"
)

// srectl generate --scaling and srectl scaling generate write the objects
// golden-tested (and schema-checked) in pkg/scaling.
func TestGenerateScaling(t *testing.T) {
	inRepo(t)
	golden := filepath.Join(testutil.RepoRoot(t), "pkg", "scaling", "testdata", "golden")
	for _, args := range [][]string{
		{"generate", "--scaling", "examples/scaling", "--scaling.prometheus-address", "http://prometheus.monitoring.svc:9090"},
		{"scaling", "generate", "-i", "examples/scaling"},
	} {
		out := t.TempDir()
		code, _, stderr := srectl(t, append(args, "-o", out)...)
		require.Equal(t, 0, code, stderr)
		require.Contains(t, stderr, "policy ml-pipeline has no kubernetes target: sred's controller runs it")
		for _, f := range []string{"api.keda.yaml", "api.hpa.yaml"} {
			got, err := os.ReadFile(filepath.Join(out, f))
			require.NoError(t, err)
			want, err := os.ReadFile(filepath.Join(golden, f))
			require.NoError(t, err)
			require.Equal(t, string(want), string(got), "%v: %s", args, f)
		}
	}
	code, _, stderr := srectl(t, "scaling", "check", "examples/scaling/api.yml", "pkg/scaling/testdata/policy-queue.yml")
	require.Equal(t, 0, code, stderr)
	code, _, stderr = srectl(t, "scaling", "backtest", "--policy", "examples/scaling/api.yml", "--from", "1h", "--to", "2h")
	require.Equal(t, 2, code)
	require.Equal(t, "srectl: --to must be after --from\n", stderr)
	// Prometheus' duration syntax, as the API's: both bounds parse, and
	// their order is what is wrong.
	code, _, stderr = srectl(t, "scaling", "backtest", "--policy", "examples/scaling/api.yml", "--from", "1d12h", "--to", "1w")
	require.Equal(t, 2, code)
	require.Equal(t, "srectl: --to must be after --from\n", stderr)
	code, _, stderr = srectl(t, "scaling", "backtest", "--policy", "examples/scaling/api.yml", "--from", "1.5h")
	require.Equal(t, 2, code)
	require.Equal(t, "srectl: --from: time \"1.5h\": want RFC 3339 (2026-12-03T09:00:00Z), a duration before now (6h, 2d) or now\n", stderr)
}
