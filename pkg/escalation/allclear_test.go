package escalation_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestAllClearOncePerPage: bob is paged (push) and the SLO recovers: he
// hears the all-clear. The SLO burns again, which starts a new escalation
// run, and recovers once more. When the new run paged bob before the
// recovery, he hears a second all-clear; when it recovered before the new
// run paged anyone, he hears nothing more: no all-clear without a page
// since the last one.
func TestAllClearOncePerPage(t *testing.T) {
	for _, tc := range []struct {
		name string
		// paged runs the new run's first step before the recovery.
		paged bool
		want  int
		entry string
	}{
		{name: "recovered before the new run paged", want: 1,
			entry: "Escalation stopped: the SLO is recovering (1 pending step(s) cancelled); nobody had been paged, no all-clear to send"},
		{name: "the new run paged bob", paged: true, want: 2,
			entry: "Escalation stopped: the SLO is recovering (2 pending step(s) cancelled); all-clear sent via push to bob"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
				ctx := context.Background()
				r, _, id := newPageRig(t, db, pageSetup{policy: escalationYAML, severity: "medium"})
				require.Equal(t, []string{"bob/push"}, r.paged(t, id))
				markRecovering := func() {
					t.Helper()
					r.clock.Advance(time.Minute)
					_, err := r.svc.MarkRecovering(ctx, id, "sred", "api/availability short burn-rate windows back under")
					require.NoError(t, err)
				}
				markRecovering()
				require.Equal(t, 1, countAllClears(t, db, id, "bob/push"))

				r.clock.Advance(time.Minute)
				_, err := r.svc.BurningAgain(ctx, id, "sred", "api/availability page_fast 5m 20x > 14.4x")
				require.NoError(t, err)
				st, err := r.engine.Get(ctx, id)
				require.NoError(t, err)
				require.Equal(t, 2, st.Epoch)
				if tc.paged {
					r.tick(t)
				}
				markRecovering()

				require.Equal(t, tc.want, countAllClears(t, db, id, "bob/push"))
				entries := r.timeline(t, id, "Escalation stopped: the SLO is recovering")
				require.Len(t, entries, 2)
				require.Equal(t, tc.entry, entries[1])
			})
		})
	}
}

// countAllClears counts the all-clear messages of incident id to
// recipient ("user/channel").
func countAllClears(t *testing.T, db *store.DB, id, recipient string) int {
	t.Helper()
	n := 0
	for _, rec := range mustList(t, db, id) {
		if rec.Event == notify.EventAllClear && rec.User+"/"+rec.Channel == recipient {
			n++
		}
	}
	return n
}
