package app

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDuplicateJSONKeysRefused: a JSON body giving a key twice (a proxy in
// front of sred may have checked the first, encoding/json keeps the last)
// is answered 400 naming the key; nothing is stored.
func TestDuplicateJSONKeysRefused(t *testing.T) {
	_, srv := runApp(t, "sqlite", "", nil)
	post := func(body string) (int, apiEnvelope) {
		t.Helper()
		resp, err := http.Post(srv.URL+"/api/v1/incidents", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		var env apiEnvelope
		require.NoError(t, json.Unmarshal(b, &env), "%s", b)
		return resp.StatusCode, env
	}
	code, env := post(`{"title":"db down","service":"db","service":"payments","severity":"high"}`)
	require.Equal(t, http.StatusBadRequest, code, env.Error)
	require.Equal(t, `invalid JSON body: the JSON body: key "service" given twice`, env.Error)
	var list struct {
		Incidents []json.RawMessage `json:"incidents"`
	}
	code, env = getJSON(t, srv.URL+"/api/v1/incidents", nil, &list)
	require.Equal(t, http.StatusOK, code, env.Error)
	require.Empty(t, list.Incidents, "%s", env.Data)

	code, env = post(`{"title":"db down","service":"db","severity":"high"}`)
	require.Equal(t, http.StatusCreated, code, env.Error)
	code, env = getJSON(t, srv.URL+"/api/v1/incidents", nil, &list)
	require.Equal(t, http.StatusOK, code, env.Error)
	require.Len(t, list.Incidents, 1, "%s", env.Data)
}
