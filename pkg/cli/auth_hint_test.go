package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rootuip/sre/pkg/app"
	"github.com/stretchr/testify/require"
)

// TestUnauthorizedHint: against a sred with users (auth.users_file), a
// command refused with 401 says what srectl sent: nothing (SRECTL_TOKEN
// unset) or a token sred does not list; the listed token is let in.
func TestUnauthorizedHint(t *testing.T) {
	dir := t.TempDir()
	const token = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
	sum := sha256.Sum256([]byte(token))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "users.yml"),
		[]byte("tokens:\n  - name: ci\n    sha256: "+hex.EncodeToString(sum[:])+"\n    role: viewer\n"), 0o600))
	cfg := filepath.Join(dir, "sred.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("auth:\n  users_file: users.yml\n"), 0o600))

	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, app.Options{ConfigFile: cfg, StoragePath: filepath.Join(dir, "data")})
	require.NoError(t, err)
	defer a.Close()
	var wg sync.WaitGroup
	for _, act := range a.Actors() {
		wg.Add(1)
		go func() { defer wg.Done(); _ = act.Execute(ctx) }()
	}
	defer func() { cancel(); wg.Wait() }()
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()

	for _, tc := range []struct {
		name, token string
		code        int
		stderr      string
	}{
		{"no token", "", 4, "srectl: sred answered 401: missing or wrong credentials (basic auth or Authorization: Bearer <token>) (srectl sent none: set SRECTL_TOKEN to an API token, or --http.config.file)\n"},
		{"unknown token", "feed", 4, "srectl: sred answered 401: missing or wrong credentials (basic auth or Authorization: Bearer <token>) (srectl sent $SRECTL_TOKEN: is its SHA-256 under tokens in sred's auth.users_file?)\n"},
		{"listed token", token, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(TokenEnv, tc.token)
			var stdout, stderr bytes.Buffer
			require.Equal(t, tc.code, Main([]string{"incidents", "list", "--sred.url=" + srv.URL}, &stdout, &stderr), stderr.String())
			require.Equal(t, tc.stderr, stderr.String())
		})
	}
}
