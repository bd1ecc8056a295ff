package app

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

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
}
