package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/rootuip/sre/pkg/analysis"
	"github.com/rootuip/sre/pkg/config"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// TestAnalysisSubsystem: the analysis section loads the spec files, the
// routes serve them, a run without Prometheus answers 503 (Argo Rollouts
// counts it as an error, not a verdict), and a bad section is refused
// with the field named.
func TestAnalysisSubsystem(t *testing.T) {
	dir := filepath.Join(tu.RepoRoot(t), "examples", "rollouts")
	a, srv := runApp(t, "sqlite", "analysis:\n  spec_files: ["+dir+"]\n", nil)
	require.NotNil(t, a.Analysis)
	sp, ok := a.Analysis.Spec("api")
	require.True(t, ok)
	require.Equal(t, "api", sp.Service)

	resp, err := http.Get(srv.URL + "/api/v1/analysis")
	require.NoError(t, err)
	var list struct {
		Data []struct {
			Name   string `json:"name"`
			Checks []struct {
				Name   string `json:"name"`
				NoData string `json:"noData"`
			} `json:"checks"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&list))
	resp.Body.Close()
	require.Len(t, list.Data, 1)
	require.Equal(t, "api", list.Data[0].Name)
	require.Equal(t, "error-rate", list.Data[0].Checks[0].Name)
	require.Equal(t, "inconclusive", list.Data[0].Checks[0].NoData)

	resp, err = http.Post(srv.URL+"/api/v1/analysis/api/run", "application/json",
		strings.NewReader(`{"canary":{"track":"canary"},"baseline":{"track":"stable"}}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)

	bad := filepath.Join(t.TempDir(), "sred.yml")
	require.NoError(t, os.WriteFile(bad, []byte("analysis:\n  spec_file: [x]\n"), 0o644))
	_, err = LoadConfig(bad)
	require.ErrorContains(t, err, `unknown field "spec_file"`)
	require.NoError(t, os.WriteFile(bad, []byte("analysis:\n  spec_files: [missing/]\n"), 0o644))
	_, err = LoadConfig(bad)
	require.ErrorContains(t, err, "analysis: read analysis specs")
	for _, c := range []struct{ yml, err string }{
		{"analysis:\n  run_limit: {burst: 0}\n", "analysis: run_limit: burst must be 1 to 100000, got 0"},
		{"analysis:\n  run_limit: {every: 0s}\n", "analysis: run_limit: every must be positive and at most 1h, got 0s"},
		{"analysis:\n  run_limit: {every: 2h}\n", "analysis: run_limit: every must be positive and at most 1h, got 2h"},
		{"analysis:\n  run_limit: {brust: 5}\n", `unknown field "brust"`},
	} {
		require.NoError(t, os.WriteFile(bad, []byte(c.yml), 0o644))
		_, err = LoadConfig(bad)
		require.ErrorContains(t, err, c.err, c.yml)
	}
	// A key not given takes its default.
	cfg, err := config.Load([]byte("analysis:\n  run_limit: {burst: 5}\n"), "analysis")
	require.NoError(t, err)
	ac, err := LoadAnalysis(cfg)
	require.NoError(t, err)
	require.Equal(t, analysis.RunLimit{Burst: 5, Every: model.Duration(analysis.DefaultRunEvery)}, ac.Analysis.RunLimit)
	cfg, err = config.Load([]byte("prometheus: {url: http://127.0.0.1:9090}\n"), "analysis")
	require.NoError(t, err)
	ac, err = LoadAnalysis(cfg)
	require.NoError(t, err)
	require.Equal(t, analysis.DefaultConfig.RunLimit, ac.Analysis.RunLimit)
}

// TestAnalysisRoutesAuth: as the engines call them through sred's access
// control: Flagger with a viewer's basic auth in the webhook URL (its
// webhooks send no headers), Argo Rollouts with a viewer token in
// Authorization; without credentials, 401.
func TestAnalysisRoutesAuth(t *testing.T) {
	dir := t.TempDir()
	pw, err := bcrypt.GenerateFromPassword([]byte("flagger-pw"), bcrypt.MinCost)
	require.NoError(t, err)
	tok, err := bcrypt.GenerateFromPassword([]byte("argo-token-0123456789"), bcrypt.MinCost)
	require.NoError(t, err)
	users := filepath.Join(dir, "users.yml")
	require.NoError(t, os.WriteFile(users, []byte(fmt.Sprintf("users:\n  flagger: {password: '%s', role: viewer}\ntokens:\n  - {name: argo, hash: '%s', role: viewer}\n", pw, tok)), 0o600))
	specs := filepath.Join(tu.RepoRoot(t), "examples", "rollouts")
	_, srv := runApp(t, "sqlite", "auth:\n  users_file: "+users+"\nanalysis:\n  spec_files: ["+specs+"]\n", nil)

	flagger := func(u string) int {
		t.Helper()
		resp, err := http.Post(u, "application/json", strings.NewReader(
			`{"name":"api","namespace":"prod","phase":"Progressing","checksum":"85d557f47b","metadata":{"analysis":"api","canary":"app=api","baseline":"app=api-primary"}}`))
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	withUser := strings.Replace(srv.URL, "http://", "http://flagger:flagger-pw@", 1)
	require.Equal(t, http.StatusUnauthorized, flagger(srv.URL+"/api/v1/analysis/flagger/confirm-promotion"))
	// Authenticated: the analysis runs, and answers 503 for want of a Prometheus.
	require.Equal(t, http.StatusServiceUnavailable, flagger(withUser+"/api/v1/analysis/flagger/confirm-promotion"))
	require.Equal(t, http.StatusServiceUnavailable, flagger(withUser+"/api/v1/analysis/flagger/rollback"))

	argo := func(token string) int {
		t.Helper()
		req, err := http.NewRequest("POST", srv.URL+"/api/v1/analysis/api/run", strings.NewReader(`{"canary":{"app":"api"},"baseline":{"app":"api-primary"}}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, argo(""))
	require.Equal(t, http.StatusServiceUnavailable, argo("argo-token-0123456789"))
}
