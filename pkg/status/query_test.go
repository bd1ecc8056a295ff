package status_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/status"
	"github.com/rootuip/sre/pkg/store"
)

// TestPublicRoutesDropQuery: the public routes read no query parameter, so
// a request with a query string (a tracking parameter, a random one sent
// to get past a CDN, an empty "?") is answered 301 to the same path without
// it, the redirect cached an hour, and a shared cache holds one copy of
// each answer. Before, each query string was answered 200 with
// "public, max-age=15": a copy per query string, and random ones reached
// sred on every request. On SQLite and PostgreSQL.
func TestPublicRoutesDropQuery(t *testing.T) {
	atFirstStart(t, func(t *testing.T, db *store.DB, clk *clock.Manual, stored status.Stored, inc *incident.Service) {
		cfg := status.Config{Components: []status.Component{{Name: "Shop", Services: []string{"payments"}}}}
		require.NoError(t, cfg.Validate())
		svc := status.New(cfg, status.Options{Incidents: inc, Clock: clk, Key: stored.Key, FirstStart: stored.FirstStart})
		mux := http.NewServeMux()
		status.NewHandler(svc, nil).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		do := func(c *http.Client, method, path string) (*http.Response, string) {
			req, err := http.NewRequest(method, srv.URL+path, nil)
			require.NoError(t, err)
			res, err := c.Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			require.NoError(t, err)
			return res, string(b)
		}

		for _, path := range []string{"/status", "/status.json", "/status/feed.atom", "/status/status.css", "/status/favicon.svg"} {
			plain, want := do(noRedirect, "GET", path)
			require.Equal(t, http.StatusOK, plain.StatusCode, path)
			for _, query := range []string{"?utm_source=mail", "?nocache=8f3a1c", "?a=1&b=2", "?"} {
				for _, method := range []string{"GET", "HEAD"} {
					res, body := do(noRedirect, method, path+query)
					require.Equal(t, http.StatusMovedPermanently, res.StatusCode, method+" "+path+query)
					require.Equal(t, path, res.Header.Get("Location"), path+query)
					require.Equal(t, "public, max-age=3600", res.Header.Get("Cache-Control"), path+query)
					require.Empty(t, body)
				}
				res, body := do(http.DefaultClient, "GET", path+query)
				require.Equal(t, http.StatusOK, res.StatusCode, path+query)
				require.Equal(t, path, res.Request.URL.RequestURI(), "followed to the path alone")
				require.Equal(t, want, body, path+query)
				require.Equal(t, plain.Header.Get("Cache-Control"), res.Header.Get("Cache-Control"), path+query)
			}
		}
	})
}
