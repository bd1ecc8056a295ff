package incident_test

import (
	"encoding/json"
	"errors"
	"io"
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
