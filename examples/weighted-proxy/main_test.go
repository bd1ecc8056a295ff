package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func upstream(t *testing.T, name string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, name) }))
	t.Cleanup(s.Close)
	return s
}

func TestWeightedSplit(t *testing.T) {
	p, err := newProxy(upstream(t, "stable").URL, upstream(t, "canary").URL, 0, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	srv := httptest.NewServer(p)
	defer srv.Close()
	hits := func(n int) map[string]int {
		out := map[string]int{}
		for range n {
			resp, err := http.Get(srv.URL + "/api/work")
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			out[string(b)]++
		}
		return out
	}
	put := func(body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/admin/weight", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	require.Equal(t, map[string]int{"stable": 100}, hits(100))
	code, _ := put(`{"canary": 10}`)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, map[string]int{"stable": 90, "canary": 10}, hits(100), "exactly 10 of every 100")
	put(`{"canary": 50}`)
	require.Equal(t, map[string]int{"stable": 10, "canary": 10}, hits(20))
	put(`{"canary": 100}`)
	require.Equal(t, map[string]int{"canary": 7}, hits(7))

	for body, want := range map[string]string{
		`{"canary": 101}`: "weight 101 out of range [0, 100]",
		`{"weight": 5}`:   `want {\"canary\": <0..100>}`,
		`{}`:              `want {\"canary\": <0..100>}`,
	} {
		code, got := put(body)
		require.Equal(t, http.StatusBadRequest, code, body)
		require.Contains(t, got, want, body)
	}
	resp, err := http.Get(srv.URL + "/admin/weight")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.JSONEq(t, `{"canary":100,"stable_requests":200,"canary_requests":27}`, string(b))

	_, err = newProxy("localhost:1", "http://x", 0, nil)
	require.ErrorContains(t, err, `--stable.url "localhost:1": want an http(s) URL`)
}
