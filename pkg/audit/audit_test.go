package audit_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/audit"
	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/store"
)

// TestAckLinkTokenNotRecorded: an acknowledgement link's token acknowledges
// as its user until it expires; the audit log, which admins read over the
// API and the console, keeps the link's claims but not its signature, so
// that no usable link can be taken from it. Other paths are kept whole.
func TestAckLinkTokenNotRecorded(t *testing.T) {
	ctx := context.Background()
	l := newLog(t)
	rec := l.Recorder(func(err error) { t.Error(err) })

	const key = "ack-secret-0123456789abcdef"
	tok, err := notify.SignAck(key, notify.AckClaims{IncidentID: "INC-2026-0001", User: "alice", Expires: time.Now().Add(time.Hour).Unix()})
	require.NoError(t, err)
	claims, sig, ok := strings.Cut(tok, ".")
	require.True(t, ok)
	rec(httptest.NewRequest("POST", "/ack/"+tok, nil), auth.Principal{}, "POST /ack/{token}", 200)
	rec(httptest.NewRequest("POST", "/api/v1/incidents/INC-2026-0001/ack", nil), auth.Principal{Name: "rita", Role: auth.RoleResponder},
		"POST /api/v1/incidents/{id}/ack", 200)

	es, err := l.List(ctx, audit.Query{})
	require.NoError(t, err)
	require.Len(t, es, 2)
	require.Equal(t, "/api/v1/incidents/INC-2026-0001/ack", es[0].Path)
	require.Equal(t, "link", es[1].Actor)
	require.Equal(t, "/ack/"+claims+".…", es[1].Path)
	require.NotContains(t, es[1].Path, sig)
	_, err = notify.VerifyAck(key, strings.TrimPrefix(es[1].Path, "/ack/"), time.Now())
	require.ErrorIs(t, err, notify.ErrAckTokenInvalid)
}

// TestListSinceParam: GET /api/v1/audit?since= takes a time as every other
// route's time parameter does (RFC 3339 or Unix seconds, from 1970-01-02):
// it took RFC 3339 alone, refusing Unix seconds, and took year 1.
func TestListSinceParam(t *testing.T) {
	ctx := context.Background()
	l := newLog(t)
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	require.NoError(t, l.Record(ctx, audit.Entry{Time: at, Actor: "alice", Method: "POST", Path: "/api/v1/incidents", Route: "POST /api/v1/incidents", Status: 201}))
	mux := http.NewServeMux()
	l.Register(mux)
	for _, tc := range []struct {
		since string
		code  int
		want  string
	}{
		{fmt.Sprint(at.Add(-time.Minute).Unix()), 200, `"actor":"alice"`},
		{fmt.Sprint(at.Add(time.Minute).Unix()), 200, `"data":[]`},
		{at.Add(-time.Minute).Format(time.RFC3339), 200, `"actor":"alice"`},
		{"0001-01-01T00:00:00Z", 400, `since: \"0001-01-01T00:00:00Z\" is before 1970-01-02T00:00:00Z`},
		{"-1", 400, `since: \"-1\" (1969-12-31T23:59:59Z) is before 1970-01-02T00:00:00Z`},
		{"yesterday", 400, `since: cannot parse \"yesterday\" as an RFC 3339 time or a Unix timestamp`},
	} {
		t.Run(tc.since, func(t *testing.T) {
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/audit?since="+url.QueryEscape(tc.since), nil))
			require.Equal(t, tc.code, w.Code, w.Body.String())
			require.Contains(t, w.Body.String(), tc.want)
		})
	}
}

// newLog is an audit log on a new SQLite store.
func newLog(t *testing.T) *audit.Log {
	t.Helper()
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.Migrate(ctx, audit.Migrations))
	return audit.New(db, nil)
}
