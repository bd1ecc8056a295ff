package escalation_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/auth/authtest"
	"github.com/rootuip/sre/pkg/change"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/web"
)

// TestExportPartsPathsShownToAdminsOnly: the export of a viewer or a
// responder (GET /api/v1/incidents/export) cuts the server's paths in the
// parts of other subsystems as their own answers do: the last error of an
// escalation timer (a page that failed on a secret file) and the deploy
// gate's reason recorded with a linked change (Prometheus' error naming a
// credentials file). What the change's caller wrote is left as it is; an
// admin's export, the one to import, is the store's as it is.
func TestExportPartsPathsShownToAdminsOnly(t *testing.T) {
	testutil.Backends(t, nil, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
		clk := clock.NewManual(t0)
		r := newMigrationRig(t, db, clk, notifyConfig(t, sms, push, email, slack))

		const secret = "/nonexistent/sred-test/secrets/sms-token"
		const creds = "/nonexistent/sred-test/secrets/prom-token"
		gateReason := "emergency override: cannot read error budgets, gate fails closed (deny): Post \"http://prometheus:9090/api/v1/query\": unable to read authorization credentials: open " + creds + ": no such file or directory"
		_, err := r.changes.Record(ctx, change.Change{Service: "web", Source: change.SourceRollout, Version: "v2", Outcome: change.Succeeded,
			Actor: "ci", Description: "built from /srv/ci/web/v2", Gate: &change.Gate{Decision: "allow", Reason: gateReason, Override: true, OverrideReason: "hotfix"}})
		require.NoError(t, err)
		clk.Advance(time.Minute)
		inc := r.fire(t, "g-web", "web", "firing", clk.Now()).Created[0]
		r.tick(t)
		res, err := db.ExecContext(ctx, `UPDATE jobs SET attempts = 1, last_error = $1 WHERE queue = $2 AND grp = $3`,
			"page bob: open "+secret+": no such file or directory", escalation.Queue, inc)
		require.NoError(t, err)
		n, err := res.RowsAffected()
		require.NoError(t, err)
		require.NotZero(t, n, "no pending escalation timer of %s", inc)

		mux := http.NewServeMux()
		(&web.IncidentsAPI{Service: r.svc}).Register(mux)
		srv := authtest.Serve(t, mux)
		export := func(token string) string { return srv.Get("/api/v1/incidents/export", token) }
		for _, token := range []string{authtest.Viewer, authtest.Responder} {
			body := export(token)
			require.NotContains(t, body, "/nonexistent/", token)
			require.Contains(t, body, `"last_error":"page bob: open sms-token: no such file or directory"`, token)
			require.Contains(t, body, "unable to read authorization credentials: open prom-token: no such file or directory", token)
			require.Contains(t, body, `http://prometheus:9090/api/v1/query`, token)
			require.Contains(t, body, `"description":"built from /srv/ci/web/v2"`, token)
			require.Contains(t, body, `"override_reason":"hotfix"`, token)
		}
		body := export(authtest.Admin)
		require.Contains(t, body, `"last_error":"page bob: open `+secret+`: no such file or directory"`)
		require.Contains(t, body, "open "+creds+": no such file or directory")
		require.Equal(t, 1, strings.Count(body, "\n"), body)
	})
}
