package incident_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// A service is a label value: in the correlation entries of the timeline
// (and the link's explanation the console shows) one that is not a plain
// name is quoted as the timeline quotes alert labels, so a newline in it
// cannot split the entry into one that reads as sred's own; plain names
// stay as written.
func TestCorrelationQuotesServices(t *testing.T) {
	hostile := "web\nlikely root: db"
	for _, tc := range []struct {
		name string
		// first opens the incident; second depends on it, or (dependency)
		// it depends on second.
		first, second string
		dependency    bool
		want          []string
	}{
		{"plain", "db", "web", false, []string{"attached because web depends on db, which has %s"}},
		{"newline", "db", hostile, false, []string{`attached because "web\nlikely root: db" depends on db, which has %s`}},
		{"quote and comma", "db", `web", db`, false, []string{`attached because "web\", db" depends on db, which has %s`}},
		{"newline in the root", "api", hostile, true, []string{
			`attached because api, affected by %s, depends on "web\nlikely root: db"`,
			`likely root: "web\nlikely root: db" (the deepest failing dependency of api, "web\nlikely root: db")`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
				ctx := context.Background()
				f := newFixture(t, db)
				graph := map[string]map[string][]string{tc.second: {tc.first: {tc.second, tc.first}}, tc.first: {}}
				if tc.dependency {
					graph = map[string]map[string][]string{tc.first: {tc.second: {tc.first, tc.second}}, tc.second: {}}
				}
				f.svc.SetCorrelation(&incident.Correlation{Window: 30 * time.Minute, DependsOn: graph})
				id := f.open(t, "g-first", tc.first, "critical")
				f.clock.Advance(time.Minute)
				res, err := f.svc.Ingest(ctx, notification("g-second", tc.second, "critical", f.clock.Now(), "second-a"))
				require.NoError(t, err)
				require.Equal(t, []string{id}, res.Incidents)
				tl, err := f.svc.Timeline(ctx, id)
				require.NoError(t, err)
				var got []string
				for _, e := range tl {
					if e.Kind == "correlation" {
						require.NotContains(t, e.Message, "\n", "a service split the entry")
						got = append(got, e.Message)
					}
				}
				want := make([]string, len(tc.want))
				for i, w := range tc.want {
					want[i] = strings.ReplaceAll(w, "%s", id)
				}
				require.Equal(t, want, got)
				inc := f.get(t, id)
				for _, l := range inc.Links {
					require.NotContains(t, l.Explanation, "\n")
				}
			})
		})
	}
}
