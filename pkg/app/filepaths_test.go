package app

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	tu "github.com/rootuip/sre/pkg/testutil"
)

// TestFilePathsShownToAdminsOnly: the files runbooks, chaos experiments,
// rollout definitions, analyses, scaling policies and services were loaded
// from are paths of the server's file system: the API and the console show
// them whole to admins, and only their base names to viewers. So are the
// host paths a chaos experiment's faults name (a pid file, a directory to
// fill) in its plan's descriptions, which sred writes itself and cuts
// with auth.CutPaths (auth.FilePath cuts the others).
func TestFilePathsShownToAdminsOnly(t *testing.T) {
	// examples/sred.yml with users, and a service file, in a directory of
	// its own (its relative paths resolve there).
	root := tu.RepoRoot(t)
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS(filepath.Join(root, "examples"))))
	// Secret files must not be readable by others.
	require.NoError(t, filepath.WalkDir(filepath.Join(dir, "secrets"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chmod(p, 0o600)
	}))
	b, err := os.ReadFile(filepath.Join(root, "examples", "sred.yml"))
	require.NoError(t, err)
	cfg := strings.Replace(string(b), "  # service_files: [services/*.yml]", "  service_files: [more-services.yml]", 1)
	require.NotEqual(t, string(b), cfg)
	cfg += "\nauth:\n  users_file: " + writeUsers(t, map[string]string{"ada": "admin", "vic": "viewer"}) + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sred.yml"), []byte(cfg), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "more-services.yml"), []byte("services:\n  batch:\n    depends_on: [postgres]\n"), 0o600))
	// Relative host paths of faults resolve from the experiment's directory.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "chaos", "api-host.yml"), []byte(`apiVersion: chaos.sre.rootuip.io/v1
kind: Experiment
name: api-host
hypothesis:
  description: the API survives a stopped worker and a full disk
  steadyState:
    - {name: ok, promql: 'vector(1)'}
target: {service: api, environment: staging, instances: 1, totalInstances: 4}
faults:
  - {name: stop, type: process-stop, pidFile: run/api.pid}
  - {name: fill, type: disk-fill, path: scratch/ballast, size: 1MiB}
duration: 1m
abort: {interval: 5s}
`), 0o600))
	_, srv := runAppOptions(t, Options{ConfigFile: filepath.Join(dir, "sred.yml"), StoragePath: filepath.Join(t.TempDir(), "data")}, nil)

	get := func(path, user string) string {
		t.Helper()
		code, b := doAs(t, srv, "GET", path, user, "", nil)
		require.Equal(t, http.StatusOK, code, "GET %s as %s: %s", path, user, b)
		return b
	}
	// prefix is what precedes a path in the answer, base the base name of
	// one of the files the answer names.
	for _, c := range []struct{ path, prefix, base string }{
		{"/api/v1/runbooks", `"file":"`, "api-service-down.yml"},
		{"/api/v1/chaos/experiments", `"file":"`, "api-latency.yml"},
		{"/api/v1/rollouts/definitions", `"file":"`, "api-canary.yml"},
		{"/api/v1/analysis", `"file":"`, "api.yml"},
		{"/api/v1/analysis/api", `"file":"`, "api.yml"},
		{"/api/v1/scaling/policies", `"file":"`, "ml-pipeline.yml"},
		{"/api/v1/services", `"batch":"`, "more-services.yml"},
		{"/graph", `defined in `, "more-services.yml"},
		{"/api/v1/chaos/experiments/api-host/plan", `"description":"stop the process of `, "api.pid"},
		{"/api/v1/chaos/experiments/api-host/plan", `"description":"fill `, "ballast"},
	} {
		t.Run(c.path, func(t *testing.T) {
			admin := get(c.path, "ada")
			require.Contains(t, admin, c.prefix+dir+string(filepath.Separator), "an admin sees the whole path")
			viewer := get(c.path, "vic")
			require.NotContains(t, viewer, dir, "a viewer sees no path of the server")
			require.NotContains(t, viewer, root)
			require.Contains(t, viewer, c.prefix+c.base, "a viewer sees the base name")
			require.NotContains(t, viewer, c.prefix+"/")
		})
	}
}
