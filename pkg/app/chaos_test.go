package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/auth"
)

func TestChaosWiring(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sred.yml")
	exps, err := filepath.Abs(filepath.Join("..", "..", "examples", "chaos"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, []byte(`
chaos:
  experiment_files: [`+exps+`]
  safety: {excluded_services: [payment]}
  proxies:
    - {name: api-backend, kind: tcp, listen: 127.0.0.1:0, upstream: 127.0.0.1:1}
    - {name: checkout-payments, kind: http, listen: 127.0.0.1:0, upstream: http://127.0.0.1:1}
`), 0o644))
	ctx := context.Background()
	a, err := New(ctx, Options{ConfigFile: file, StoragePath: filepath.Join(dir, "data")})
	require.NoError(t, err)
	defer a.Close()
	cfg := Chaos.Of(a.Config())
	require.Len(t, cfg.Experiments, 3)
	require.Equal(t, []string{"payment"}, cfg.Chaos.Safety.ExcludedServices)
	require.Equal(t, 0.5, cfg.Chaos.Safety.MaxInstanceFraction, "defaults kept for unset limits")

	h := a.Handler()
	get := func(p *auth.Principal, path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if p != nil {
			req = req.WithContext(auth.NewContext(req.Context(), *p))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	rec := get(&auth.Principal{Name: "v", Role: auth.RoleViewer}, "/api/v1/chaos/experiments")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "checkout-pod-kill")
	// No Prometheus in this configuration: the plan says the run would be refused.
	rec = get(&auth.Principal{Name: "v", Role: auth.RoleViewer}, "/api/v1/chaos/experiments/checkout-pod-kill/plan")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), `driver \"chaosmesh\" is not available`)
	// The console's chaos page, linked from the navigation.
	rec = get(&auth.Principal{Name: "v", Role: auth.RoleViewer}, "/chaos")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "checkout-pod-kill")
	require.Contains(t, rec.Body.String(), `<a href="/chaos">Chaos</a>`)
}
