package budget_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/clock"
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
	require.ErrorIs(t, gate("override-token-onE"), budget.ErrBadOverrideToken, "same length")
	require.ErrorIs(t, gate("override-token-one-"), budget.ErrBadOverrideToken, "a longer one")

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

// TestOverrideTokenGuessesLimited: wrong override tokens count against the
// client and principal that send them, as failed credentials do in
// pkg/auth: 10 in a row are answered 403, then every token the principal
// sends from that address is answered 429 with Retry-After, the right one
// included (no free guesses), until one more failure is due (6 s later).
// Another principal behind the same address is not limited, and a right
// token never counts. Every token checked and refused is reported
// (OnOverrideRefused: the audit log in sred). Before, a viewer could try
// tokens without limit.
func TestOverrideTokenGuessesLimited(t *testing.T) {
	clk := clock.NewManual(time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC))
	var refused []int
	var mu sync.Mutex
	s := budget.New(budget.Options{Clock: clk, OnOverrideRefused: func(r *http.Request, code int) {
		mu.Lock()
		defer mu.Unlock()
		refused = append(refused, code)
	}})
	cfg := budget.DefaultConfig
	cfg.Gate.OverrideTokens = []commoncfg.Secret{token}
	require.NoError(t, s.Update(cfg, loadSpecs(t), nil, nil))
	mux := http.NewServeMux()
	s.Register(mux)
	// The principal as the auth middleware sets it (pkg/auth tests the
	// middleware); X-Test-User names it.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := auth.Principal{Name: r.Header.Get("X-Test-User"), Role: auth.RoleViewer}
		mux.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), p)))
	}))
	t.Cleanup(srv.Close)

	type answer struct {
		code       int
		retryAfter string
		err        string
	}
	gate := func(user, tok string) answer {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/gate?service=web&reason=hotfix", nil)
		require.NoError(t, err)
		req.Header.Set("X-Test-User", user)
		req.Header.Set(budget.OverrideHeader, tok)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var env envelope
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
		return answer{resp.StatusCode, resp.Header.Get("Retry-After"), env.Error}
	}
	forbidden := answer{http.StatusForbidden, "", "invalid emergency override token"}
	limited := answer{http.StatusTooManyRequests, "6", "too many wrong override tokens from this address: retry in 6s"}

	// A right token never counts.
	for range 20 {
		require.Equal(t, http.StatusOK, gate("ci", token).code)
	}
	for i := range 10 {
		require.Equal(t, forbidden, gate("mallory", fmt.Sprintf("guess-%016d", i)), i)
	}
	require.Equal(t, limited, gate("mallory", "guess-0000000000000010"))
	require.Equal(t, limited, gate("mallory", token), "the right token after the limit is not a free guess")
	// Another principal at the same address: served, and its own failures
	// count apart.
	require.Equal(t, http.StatusOK, gate("ci", token).code)
	require.Equal(t, forbidden, gate("ci", "typo-0000000000000000"))
	require.Equal(t, http.StatusOK, gate("ci", token).code)

	// One more failure every 6 s.
	clk.Advance(5 * time.Second)
	require.Equal(t, answer{http.StatusTooManyRequests, "1", "too many wrong override tokens from this address: retry in 1s"}, gate("mallory", "guess-0000000000000011"))
	clk.Advance(time.Second)
	require.Equal(t, forbidden, gate("mallory", "guess-0000000000000012"))
	require.Equal(t, limited, gate("mallory", "guess-0000000000000013"))
	clk.Advance(6 * time.Second)
	require.Equal(t, http.StatusOK, gate("mallory", token).code, "a right token within the limit")
	require.Equal(t, forbidden, gate("mallory", "guess-0000000000000014"), "and it did not count")

	mu.Lock()
	defer mu.Unlock()
	want := []int{}
	for range 10 {
		want = append(want, http.StatusForbidden)
	}
	// Checked and refused: reported; refused unchecked (429): not, so
	// that looping on the limit cannot grow the audit log.
	want = append(want, http.StatusForbidden, http.StatusForbidden, http.StatusForbidden)
	require.Equal(t, want, refused)
}
