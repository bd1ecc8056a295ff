package budget_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	commoncfg "github.com/prometheus/common/config"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/budget"
)

// TestGateOverrideTokenFiles: the override token files are read at each
// gate request with a token, so a rotated file is in force without Update
// (a reload); a file that cannot be read, is empty or holds a short token
// matches nothing and is reported as such, while the other tokens keep
// working.
func TestGateOverrideTokenFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gate-token")
	write := func(token string) { require.NoError(t, os.WriteFile(file, []byte(token+"\n"), 0o600)) }
	write("override-token-one")
	const inline = "inline-override-token"
	cfg := budget.DefaultConfig
	cfg.Gate.OverrideTokens = []commoncfg.Secret{inline}
	cfg.Gate.OverrideTokenFiles = []string{file}
	s := budget.New(budget.Options{})
	require.NoError(t, s.Update(cfg, loadSpecs(t), nil, nil))

	gate := func(token string) error {
		t.Helper()
		d, err := s.Gate(context.Background(), budget.GateRequest{Service: "web", OverrideToken: token, OverrideReason: "hotfix"})
		if err == nil {
			require.True(t, d.Override)
			require.True(t, d.Allowed, "an override is allowed even though the budgets cannot be read")
		}
		return err
	}
	require.NoError(t, gate("override-token-one"))
	require.NoError(t, gate(inline))
	require.ErrorIs(t, gate("override-token-two!"), budget.ErrBadOverrideToken)

	write("override-token-two!")
	require.NoError(t, gate("override-token-two!"), "the rotated token, without Update")
	require.ErrorIs(t, gate("override-token-one"), budget.ErrBadOverrideToken, "the old token")

	for _, tc := range []struct {
		name   string
		broken func()
	}{
		{"missing", func() { require.NoError(t, os.Remove(file)) }},
		{"empty", func() { write("") }},
		{"short", func() { write("short-token") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.broken()
			err := gate("override-token-two!")
			require.ErrorIs(t, err, budget.ErrOverrideTokenUnavailable)
			require.False(t, errors.Is(err, budget.ErrBadOverrideToken))
			require.NoError(t, gate(inline), "the other tokens still work")
			require.ErrorIs(t, gate("short-token"), budget.ErrOverrideTokenUnavailable, "a short token in a file is never accepted")
		})
	}
}
