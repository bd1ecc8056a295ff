package rollout

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/store"
	sretest "github.com/rootuip/sre/pkg/testutil"
)

// missingProg is a program that is not there: an action running it fails
// with its path in the error.
const missingProg = "/nonexistent/sred-test/bin/set-weight"

const missingProgDef = `
name: api-canary
service: api
environment: staging
analysis: {spec: api, canary: {track: canary}, baseline: {track: stable}}
canary:
  stages:
    - {weight: 10, duration: 5m}
    - {weight: 100}
  set_weight: {exec: {command: [` + missingProg + `, '{{ .Vars.weight }}']}}
`

// TestRolloutPathsShownToAdminsOnly: a rollout whose action failed on a
// program that is not there is read by a viewer and a responder with the
// program's base name only, in its events' messages and
// details (the action's argv); an admin reads it whole.
func TestRolloutPathsShownToAdminsOnly(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, missingProgDef)
		ro := h.start("api-canary", "v2")
		h.run()
		require.Contains(t, fmt.Sprint(h.get(ro.ID).Events), missingProg, "the store keeps the whole path")
		mux := http.NewServeMux()
		h.svc.Routes(mux, false)
		get := func(role auth.Role, path string) string {
			rec := httptest.NewRecorder()
			r := httptest.NewRequest("GET", path, nil)
			mux.ServeHTTP(rec, r.WithContext(auth.NewContext(r.Context(), auth.Principal{Name: "u", Role: role})))
			b, err := io.ReadAll(rec.Body)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, rec.Code, string(b))
			return string(b)
		}
		path := fmt.Sprintf("/api/v1/rollouts/%d", ro.ID)
		require.Contains(t, get(auth.RoleAdmin, path), missingProg)
		for _, role := range []auth.Role{auth.RoleViewer, auth.RoleResponder} {
			body := get(role, path)
			require.NotContains(t, body, "/nonexistent/", role.String())
			require.True(t, strings.Contains(body, "fork/exec set-weight: no such file or directory"), "as %s: %s", role, body)
			require.Contains(t, body, `"argv":["set-weight","10"]`, role.String())
		}
	})
}
