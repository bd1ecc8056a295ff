package web_test

import (
	"database/sql"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestConcurrentMerges merges three incidents into each other at once
// (A into B, B into A, A into C, C into B), round after round. Each
// request is merged or refused as a conflict (the other merge came
// first): on PostgreSQL, where two of them could deadlock, the one rolled
// back was answered 503 ("the store failed"); it now runs again. After
// each round no incident is lost, none is merged into itself through a
// cycle, and no alert or alert group stays on a merged incident.
func TestConcurrentMerges(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc := newIncidentService(t, db)
		srv := incidentsServer(t, svc)
		ctx := t.Context()
		for round := range 30 {
			var ids []string
			for k := range 3 {
				res, err := svc.Ingest(ctx, notification(fmt.Sprintf("g%d-%d", round, k), fmt.Sprintf("svc%d-%d", round, k), "critical"))
				require.NoError(t, err)
				require.Len(t, res.Incidents, 1)
				ids = append(ids, res.Incidents[0])
			}
			var wg sync.WaitGroup
			answers := make([]string, 4)
			for i, m := range [][2]string{{ids[0], ids[1]}, {ids[1], ids[0]}, {ids[2], ids[0]}, {ids[1], ids[2]}} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					code, r := call(t, "POST", srv.URL+"/api/v1/incidents/"+m[0]+"/merge", fmt.Sprintf(`{"actor":"alice","from":%q}`, m[1]))
					answers[i] = fmt.Sprint(code, " ", r.ErrorType)
				}()
			}
			wg.Wait()
			for i, a := range answers {
				require.Contains(t, []string{"200 ", "409 conflict"}, a, "round %d, merge %d", round, i)
			}

			merged := map[string]string{}
			for _, id := range ids {
				inc, err := svc.Get(ctx, id)
				require.NoError(t, err)
				merged[id] = inc.MergedInto
			}
			open := 0
			for id := range merged {
				seen := map[string]bool{}
				x := id
				for ; merged[x] != ""; x = merged[x] {
					require.False(t, seen[x], "round %d: merged into itself through %v", round, merged)
					seen[x] = true
				}
				if x == id {
					open++
				}
			}
			require.GreaterOrEqual(t, open, 1, "round %d: %v", round, merged)
			rows, err := db.QueryContext(ctx, `SELECT incident_id FROM alert_groups UNION ALL SELECT incident_id FROM incident_alerts`)
			require.NoError(t, err)
			n := 0
			for rows.Next() {
				var id sql.NullString
				require.NoError(t, rows.Scan(&id))
				if into := merged[id.String]; id.Valid && into != "" {
					t.Errorf("round %d: an alert stays on %s, merged into %s", round, id.String, into)
				}
				n++
			}
			require.NoError(t, rows.Err())
			rows.Close()
			require.Equal(t, 2*3*(round+1), n, "round %d: three groups and three alerts a round", round)
		}
	})
}
