package incident_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestImportMergedIntoExists: an imported merged_into names an incident
// stored or on a line of the same import, earlier or later (export writes
// the oldest first, and an incident may have been merged into a newer
// one), under that very ID. One that exists nowhere, that differs only in
// case from the incident's ID, or that names the line's own incident is
// refused naming the line, the field and the value; the stored incidents
// stay as they were. Before, merged_into was checked for its shape only.
func TestImportMergedIntoExists(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := t.Context()
		line := func(id, into string) string { return mergedLine(t, id, into) }
		count := func() int {
			var n int
			require.NoError(t, db.QueryRowContext(ctx, `SELECT COUNT(*) FROM incidents`).Scan(&n))
			return n
		}
		into, err := f.svc.Create(ctx, incident.ManualIncident{Title: "API down", Service: "api", Severity: incident.SeverityHigh, Actor: "alice"})
		require.NoError(t, err)

		// Stored, on an earlier line, on a later line of the same batch,
		// and on a line of a later batch (more than 500 lines on).
		var body strings.Builder
		body.WriteString(line("OLD-2025-0001", into.ID))
		body.WriteString(line("OLD-2025-0002", "OLD-2025-0003"))
		body.WriteString(line("OLD-2025-0003", ""))
		body.WriteString(line("OLD-2025-0004", "OLD-2025-0003"))
		body.WriteString(line("OLD-2025-0005", "OLD-2025-1000"))
		for i := 6; i <= 999; i++ {
			body.WriteString(line(fmt.Sprintf("OLD-2025-%04d", i), ""))
		}
		body.WriteString(line("OLD-2025-1000", ""))
		res, err := f.svc.Import(ctx, strings.NewReader(body.String()))
		require.NoError(t, err)
		require.Equal(t, 1000, res.Imported)
		require.Equal(t, into.ID, f.get(t, "OLD-2025-0001").MergedInto)
		require.Equal(t, "OLD-2025-0003", f.get(t, "OLD-2025-0002").MergedInto)
		require.Equal(t, "OLD-2025-0003", f.get(t, "OLD-2025-0004").MergedInto)
		require.Equal(t, "OLD-2025-1000", f.get(t, "OLD-2025-0005").MergedInto)
		// Importing it again skips every line.
		res, err = f.svc.Import(ctx, strings.NewReader(body.String()))
		require.NoError(t, err)
		require.Equal(t, 1000, res.Skipped)

		stored := count()
		for _, tc := range []struct {
			name, body string
			imported   int
			err        string
		}{
			{"nowhere", line("NEW-2025-0001", "") + line("NEW-2025-0002", "GONE-2025-0001") + line("NEW-2025-0003", ""), 2,
				`import line 2 (NEW-2025-0002): incident NEW-2025-0002: field incident.merged_into: incident "GONE-2025-0001" is neither stored here nor on a line of the import: import it too (an export from an earlier --since holds it), or clear merged_into`},
			{"stored in another case", line("NEW-2025-0011", strings.ToLower(into.ID)), 0,
				`import line 1 (NEW-2025-0011): incident NEW-2025-0011: field incident.merged_into: "` + strings.ToLower(into.ID) + `" differs only in case from incident ` + into.ID +
					`, which exists here: name it as it is, incident IDs are read in any case (rename one in the export)`},
			{"earlier line in another case", line("NEW-2025-0021", "") + line("NEW-2025-0022", "new-2025-0021"), 1,
				`import line 2 (NEW-2025-0022): incident NEW-2025-0022: field incident.merged_into: "new-2025-0021" differs only in case from incident NEW-2025-0021, which is on line 1: name it as it is, incident IDs are read in any case (rename one in the export)`},
			{"later line in another case", line("NEW-2025-0031", "new-2025-0032") + line("NEW-2025-0032", ""), 1,
				`import line 1 (NEW-2025-0031): incident NEW-2025-0031: field incident.merged_into: "new-2025-0032" differs only in case from incident NEW-2025-0032, which is on line 2: name it as it is, incident IDs are read in any case (rename one in the export)`},
			{"itself", line("NEW-2025-0041", "new-2025-0041"), 0,
				`import line 1: incident NEW-2025-0041: field incident.merged_into: names the incident itself: an incident cannot be merged into itself`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res, err := f.svc.Import(ctx, strings.NewReader(tc.body))
				require.EqualError(t, err, tc.err)
				require.Equal(t, tc.imported, res.Imported)
				require.Equal(t, stored+tc.imported, count())
				stored = count()
			})
		}
		// At most 500 lines wait for the incident they are merged into;
		// the first of them is refused when more do, the lines read
		// before it stay.
		var many strings.Builder
		many.WriteString(line("WAIT-2025-0000", ""))
		for i := 1; i <= 1000; i++ {
			many.WriteString(line(fmt.Sprintf("WAIT-2025-%04d", i), fmt.Sprintf("LATE-2025-%04d", i)))
		}
		for i := 1; i <= 1000; i++ {
			many.WriteString(line(fmt.Sprintf("LATE-2025-%04d", i), ""))
		}
		res, err = f.svc.Import(ctx, strings.NewReader(many.String()))
		require.EqualError(t, err, `import line 2 (WAIT-2025-0001): incident WAIT-2025-0001: field incident.merged_into: incident "LATE-2025-0001" is neither stored here nor on the lines read so far, and more than 500 lines wait for the incident they are merged into: write an incident before those merged into it (as srectl export does when it was merged into an older one), or import it first`)
		require.Equal(t, 1, res.Imported)
		require.Equal(t, stored+1, count())
		f.get(t, "WAIT-2025-0000")

		// The refused lines were not stored (a line merged into the
		// incident of a later line is written after it); the stored ones
		// are unchanged.
		for _, id := range []string{"NEW-2025-0002", "NEW-2025-0011", "NEW-2025-0022", "NEW-2025-0031", "NEW-2025-0041"} {
			_, err := f.svc.Get(ctx, id)
			require.ErrorIs(t, err, incident.ErrNotFound, id)
		}
		require.Equal(t, into.ID, f.get(t, "OLD-2025-0001").MergedInto)
		require.Equal(t, "OLD-2025-1000", f.get(t, "OLD-2025-0005").MergedInto)
	})
}
