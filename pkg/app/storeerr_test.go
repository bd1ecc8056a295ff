package app

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/web"
)

// TestStoreErrorLoggedNotShown: through the wired sred, a responder whose
// acknowledgement the store refuses reads web.ErrStore's fixed text, not
// the store's error (its file path); the error is in sred's log with the
// route.
func TestStoreErrorLoggedNotShown(t *testing.T) {
	logs := &logBuffer{}
	o := appOptions(t, "sqlite", "auth:\n  users_file: "+writeUsers(t, map[string]string{"rita": "responder"})+"\n")
	o.Logger = logs.logger()
	a, srv := runAppOptions(t, o, nil)
	do := func(path, body string) (int, string) {
		t.Helper()
		return doAs(t, srv, "POST", path, "rita", body, nil)
	}
	code, body := do("/api/v1/incidents", `{"title":"x","service":"api","severity":"low"}`)
	require.Equal(t, http.StatusCreated, code, body)
	var env struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &env))

	const cause = "could not write /var/lib/sred/sred.db"
	_, err := a.DB.Exec(`CREATE TRIGGER refused BEFORE UPDATE ON incidents BEGIN SELECT RAISE(ABORT, '` + cause + `'); END`)
	require.NoError(t, err)
	code, body = do("/api/v1/incidents/"+env.Data.ID+"/ack", `{}`)
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	var got web.Response
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	require.Equal(t, web.ErrStore.Error(), got.Error)
	logged := logs.lines(t, "API answer: the store failed")
	require.Len(t, logged, 1, logs.String())
	require.Equal(t, "POST /api/v1/incidents/{id}/ack", logged[0]["route"])
	require.Contains(t, logged[0]["err"], cause)
}
