package incident_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// importRecord is one import line: an incident with only what Import
// requires.
func importRecord(t *testing.T, id string) string {
	t.Helper()
	created := epoch.Add(-48 * time.Hour)
	b, err := json.Marshal(incident.ExportRecord{Incident: incident.Incident{
		ID: id, Title: "imported " + id, Service: "api", Severity: incident.SeverityLow, Status: incident.StatusResolved,
		GroupKey: "{}:" + id, DetectedAt: created, CreatedAt: created, UpdatedAt: created}})
	require.NoError(t, err)
	return string(b) + "\n"
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// repeatReader is n bytes of b.
type repeatReader struct {
	b byte
	n int64
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n)]
	for i := range p {
		p[i] = r.b
	}
	r.n -= int64(len(p))
	return len(p), nil
}

// TestImportLongLineNotReadWhole: a line over MaxImportLineBytes is
// refused naming its line once that many bytes are read, not held whole
// (one line of a gigabyte was read into memory before any check); the
// lines before it stay imported.
func TestImportLongLineNotReadWhole(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		body := &countingReader{r: io.MultiReader(strings.NewReader(importRecord(t, "OLD-2025-0001")),
			&repeatReader{b: 'x', n: 3 * incident.MaxImportLineBytes})}
		res, err := f.svc.Import(t.Context(), body)
		var long *incident.ImportLineError
		require.True(t, errors.As(err, &long), "%v", err)
		require.Equal(t, 2, long.Line)
		require.ErrorContains(t, err, "import line 2: line longer than")
		require.Equal(t, 1, res.Imported, "the line before the long one is imported")
		f.get(t, "OLD-2025-0001")
		require.Less(t, body.n, int64(incident.MaxImportLineBytes+4<<20), "the long line was read past the bound")
	})
}

// TestImportRefusesIDInAnotherCase: an imported incident whose ID differs
// only in case from a stored one, or from another line's, is refused
// naming both (an ID is read in any case, so one stood for the other);
// the same ID again is still skipped.
func TestImportRefusesIDInAnotherCase(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		res, err := f.svc.Import(t.Context(), strings.NewReader(importRecord(t, "OLD-2025-0001")))
		require.NoError(t, err)
		require.Equal(t, 1, res.Imported)
		for _, tc := range []struct {
			name, body, want string
		}{
			{"stored", importRecord(t, "old-2025-0001"),
				"import line 1 (old-2025-0001): incident old-2025-0001 differs only in case from incident OLD-2025-0001, which exists here"},
			{"same import", importRecord(t, "Old-2025-0002") + importRecord(t, "OLD-2025-0002"),
				"import line 2: incident OLD-2025-0002 differs only in case from incident Old-2025-0002, which is on line 1"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := f.svc.Import(t.Context(), strings.NewReader(tc.body))
				var clash *incident.IDCaseError
				require.True(t, errors.As(err, &clash), "%v", err)
				require.ErrorContains(t, err, tc.want)
			})
		}
		_, err = f.svc.Get(t.Context(), "old-2025-0001")
		require.ErrorIs(t, err, incident.ErrNotFound)
		res, err = f.svc.Import(t.Context(), strings.NewReader(importRecord(t, "OLD-2025-0001")))
		require.NoError(t, err)
		require.Equal(t, 1, res.Skipped)
	})
}

// TestImportRefusesOverCountBounds: an imported incident with more notes,
// status updates, impact, assignment, snooze and action item changes, or action
// items than the API lets an incident have was imported whole, past the
// bounds (MaxNotes, ...). It is refused naming its line and the
// collection, the lines before it imported; an incident at the bound
// imports.
func TestImportRefusesOverCountBounds(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		created := epoch.Add(-48 * time.Hour)
		line := func(t *testing.T, id string, fill func(rec *incident.ExportRecord)) string {
			rec := incident.ExportRecord{Incident: incident.Incident{
				ID: id, Title: "imported " + id, Service: "api", Severity: incident.SeverityLow, Status: incident.StatusResolved,
				GroupKey: "{}:" + id, DetectedAt: created, CreatedAt: created, UpdatedAt: created}}
			fill(&rec)
			b, err := json.Marshal(rec)
			require.NoError(t, err)
			return string(b) + "\n"
		}
		timeline := func(n int, kinds ...string) func(rec *incident.ExportRecord) {
			return func(rec *incident.ExportRecord) {
				for k := range n {
					rec.Timeline = append(rec.Timeline, incident.ExportTimelineEntry{Time: created, Kind: kinds[k%len(kinds)], Actor: "alice", Message: "x"})
				}
			}
		}
		items := func(n int) func(rec *incident.ExportRecord) {
			return func(rec *incident.ExportRecord) {
				for range n {
					rec.ActionItems = append(rec.ActionItems, incident.ExportActionItem{Title: "x", State: incident.ActionOpen, CreatedAt: created, UpdatedAt: created})
				}
			}
		}
		for i, tc := range []struct {
			name string
			fill func(rec *incident.ExportRecord)
			want string
		}{
			{"notes", timeline(incident.MaxNotes+1, "note"),
				"field timeline: holds 1001 notes, more than the 1000 an incident can have"},
			{"status updates", timeline(incident.MaxStatusUpdates+1, "status_update"),
				"field timeline: holds 201 status updates, more than the 200 an incident can have"},
			{"changes", timeline(incident.MaxEdits+1, "impact", "assignment", "snooze", "action_item"),
				"field timeline: holds 2501 impact, assignment, snooze and action item changes, more than the 2500 an incident can have"},
			{"action items", items(incident.MaxActionItems + 1),
				"field action_items: holds 501 action items, more than the 500 an incident can have"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ok := fmt.Sprintf("OLD-2025-%04d", 2*i+1)
				over := fmt.Sprintf("OLD-2025-%04d", 2*i+2)
				res, err := f.svc.Import(t.Context(), strings.NewReader(importRecord(t, ok)+line(t, over, tc.fill)))
				require.EqualError(t, err, "import line 2: incident "+over+": "+tc.want)
				require.Equal(t, 1, res.Imported)
				f.get(t, ok)
				_, err = f.svc.Get(t.Context(), over)
				require.ErrorIs(t, err, incident.ErrNotFound)
			})
		}
		// At the bounds: imported.
		res, err := f.svc.Import(t.Context(), strings.NewReader(line(t, "OLD-2025-0100", func(rec *incident.ExportRecord) {
			timeline(incident.MaxNotes, "note")(rec)
			timeline(incident.MaxStatusUpdates, "status_update")(rec)
			timeline(incident.MaxEdits, "impact")(rec)
			items(incident.MaxActionItems)(rec)
		})))
		require.NoError(t, err)
		require.Equal(t, 1, res.Imported)
	})
}

// linesReader is n import lines, one a Read: the reader is asked for line
// i when Import has taken the lines before it. at is called then.
type linesReader struct {
	i, n int
	line func(i int) string
	at   func(i int)
	rest []byte
}

func (r *linesReader) Read(p []byte) (int, error) {
	if len(r.rest) == 0 {
		if r.i == r.n {
			return 0, io.EOF
		}
		r.i++
		r.at(r.i)
		r.rest = []byte(r.line(r.i))
	}
	n := copy(p, r.rest)
	r.rest = r.rest[n:]
	return n, nil
}

// TestImportMemoryDoesNotGrowWithLines: Import kept the ID of every line
// of the request (to find two lines with one ID) for the whole request,
// so its memory grew with the import's length, while docs/storage.md
// says it does not. The live heap when Import is 250 lines into a batch
// is the same at the 3rd batch and at the 43rd; two lines with one ID
// are still refused, in one batch naming the other line and across
// batches as a stored incident.
func TestImportMemoryDoesNotGrowWithLines(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		// Long IDs (64 characters, the most an ID has): each one kept
		// costs what it can.
		id := func(i int) string { return fmt.Sprintf("MEM-%060d", i) }
		const first, last, lines = 1251, 21251, 21300
		var heap [2]uint64
		r := &linesReader{n: lines, line: func(i int) string { return importRecord(t, id(i)) }, at: func(i int) {
			if i != first && i != last {
				return
			}
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			heap[min(i/last, 1)] = ms.HeapAlloc
		}}
		res, err := f.svc.Import(t.Context(), r)
		require.NoError(t, err)
		require.Equal(t, lines, res.Imported)
		require.NotZero(t, heap[0])
		require.NotZero(t, heap[1])
		grown := int64(heap[1]) - int64(heap[0])
		t.Logf("live heap at line %d: %d bytes, at line %d: %d bytes (%+d)", first, heap[0], last, heap[1], grown)
		// 20,000 IDs kept: about 2.7 MB.
		require.Less(t, grown, int64(1<<20), "the live heap grew with the lines read")

		created := epoch.Add(-48 * time.Hour)
		other := func(id string) string {
			b, err := json.Marshal(incident.ExportRecord{Incident: incident.Incident{
				ID: id, Title: "another " + id, Service: "api", Severity: incident.SeverityLow, Status: incident.StatusResolved,
				GroupKey: "{}:another", DetectedAt: created, CreatedAt: created, UpdatedAt: created}})
			require.NoError(t, err)
			return string(b) + "\n"
		}
		var body strings.Builder
		for i := range 600 {
			body.WriteString(importRecord(t, fmt.Sprintf("DUP-%d", i)))
		}
		for _, tc := range []struct{ name, body, err string }{
			{"one batch", importRecord(t, "ONE-1") + other("ONE-1"),
				`import line 2 (ONE-1): incident ONE-1 is on line 1 as another incident`},
			{"two batches", body.String() + other("DUP-3"),
				`import line 601 (DUP-3): incident DUP-3 exists here as another incident (created 2026-03-12T09:30:00Z, group "{}:DUP-3"), stored before the import or by an earlier line of it`},
			{"case, two batches", body.String() + importRecord(t, "dup-4"),
				`import line 601 (dup-4): incident dup-4 differs only in case from incident DUP-4, which exists here`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := f.svc.Import(t.Context(), strings.NewReader(tc.body))
				require.ErrorContains(t, err, tc.err)
			})
		}
		inc, err := f.svc.Get(t.Context(), "DUP-3")
		require.NoError(t, err)
		require.Equal(t, "imported DUP-3", inc.Title, "the first line's incident is kept")
	})
}

// TestImportPlansWithValues: on PostgreSQL sred's sessions plan prepared
// statements generically; an import batch's look-ups of its IDs (id IN
// ($1, ... $1000)) then scanned the whole incidents table of the store
// being filled, comparing each row with every ID (2-3 s of PostgreSQL's
// CPU a batch of a 100,000-incident move). The import's transaction plans
// its statements with their values, which walk the primary key.
func TestImportPlansWithValues(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		var modes []string
		f.svc.AddImportHook(func(ctx context.Context, tx *sql.Tx, _ time.Time) error {
			if db.Dialect != store.Postgres {
				return nil
			}
			var mode string
			err := tx.QueryRowContext(ctx, `SHOW plan_cache_mode`).Scan(&mode)
			modes = append(modes, mode)
			return err
		})
		res, err := f.svc.Import(t.Context(), strings.NewReader(importRecord(t, "OLD-2025-0001")+importRecord(t, "OLD-2025-0002")))
		require.NoError(t, err)
		require.Equal(t, 2, res.Imported)
		if db.Dialect == store.Postgres {
			require.Equal(t, []string{"force_custom_plan"}, modes)
			// Outside the import, the session's generic plans hold.
			var mode string
			require.NoError(t, db.QueryRowContext(t.Context(), `SHOW plan_cache_mode`).Scan(&mode))
			require.Equal(t, "force_generic_plan", mode)
		}
	})
}

// TestImportHoldsMergedBound: an import checked merged_into line by line,
// so it could bring any number of incidents merged into one, past the
// MaxMerged a merge is held to. It counts, per incident merged into,
// those stored and those of the import's lines: the line over the bound
// is refused naming its line and the bound, the lines before it imported,
// what was stored kept; lines importing again what is stored add nothing.
func TestImportHoldsMergedBound(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := t.Context()
		line := func(id, into string) string { return mergedLine(t, id, into) }
		lines := func(from, to int, into string) string {
			var sb strings.Builder
			for i := from; i <= to; i++ {
				sb.WriteString(line(fmt.Sprintf("OLD-2025-%04d", i), into))
			}
			return sb.String()
		}
		merged := func(into string) []string {
			var ids []string
			rows, err := db.QueryContext(ctx, `SELECT id FROM incidents WHERE merged_into = $1 ORDER BY id`, into)
			require.NoError(t, err)
			defer rows.Close()
			for rows.Next() {
				var id string
				require.NoError(t, rows.Scan(&id))
				ids = append(ids, id)
			}
			require.NoError(t, rows.Err())
			return ids
		}

		// Stored: 60 merged into a stored incident; importing them again
		// skips them and counts nothing twice.
		into, err := f.svc.Create(ctx, incident.ManualIncident{Title: "API down", Service: "api", Severity: incident.SeverityHigh, Actor: "alice"})
		require.NoError(t, err)
		first := lines(1, 60, into.ID)
		res, err := f.svc.Import(ctx, strings.NewReader(first))
		require.NoError(t, err)
		require.Equal(t, 60, res.Imported)
		res, err = f.svc.Import(ctx, strings.NewReader(first+lines(61, 100, into.ID)))
		require.NoError(t, err)
		require.Equal(t, 40, res.Imported)
		require.Equal(t, 60, res.Skipped)
		stored := merged(into.ID)
		require.Len(t, stored, incident.MaxMerged)

		// One more is refused, the stored ones kept, the line before it
		// (merged elsewhere) imported.
		res, err = f.svc.Import(ctx, strings.NewReader(line("OLD-2025-0101", "")+line("OLD-2025-0102", into.ID)))
		require.EqualError(t, err, "import line 2 (OLD-2025-0102): incident OLD-2025-0102: field incident.merged_into: incident "+into.ID+
			" would have 101 incidents merged into it, more than the 100 an incident can have (100 stored or on earlier lines)")
		require.Equal(t, 1, res.Imported)
		f.get(t, "OLD-2025-0101")
		_, err = f.svc.Get(ctx, "OLD-2025-0102")
		require.ErrorIs(t, err, incident.ErrNotFound)
		require.Equal(t, stored, merged(into.ID))

		// Within one import: the incident merged into on its first line,
		// MaxMerged lines merged into it, then one more.
		res, err = f.svc.Import(ctx, strings.NewReader(line("NEW-2025-0001", "")+lines(201, 301, "NEW-2025-0001")))
		require.EqualError(t, err, "import line 102 (OLD-2025-0301): incident OLD-2025-0301: field incident.merged_into: incident NEW-2025-0001"+
			" would have 101 incidents merged into it, more than the 100 an incident can have (100 stored or on earlier lines)")
		require.Equal(t, 101, res.Imported)
		require.Len(t, merged("NEW-2025-0001"), incident.MaxMerged)
		_, err = f.svc.Get(ctx, "OLD-2025-0301")
		require.ErrorIs(t, err, incident.ErrNotFound)
	})
}

// mergedLine is the import line of a resolved incident id of service api,
// created two days before epoch, merged into into (none when empty).
func mergedLine(t *testing.T, id, into string) string {
	t.Helper()
	created := epoch.Add(-48 * time.Hour)
	b, err := json.Marshal(incident.ExportRecord{Incident: incident.Incident{
		ID: id, Title: "imported " + id, Service: "api", Severity: incident.SeverityLow, Status: incident.StatusResolved,
		GroupKey: "{}:" + id, DetectedAt: created, CreatedAt: created, UpdatedAt: created, ResolvedAt: &created, MergedInto: into}})
	require.NoError(t, err)
	return string(b) + "\n"
}
