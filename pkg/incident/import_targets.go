package incident

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/store"
)

// maxWaiting bounds the lines an import holds back because the incident
// they are merged into is neither stored nor on a line read so far
// (Import): as many lines, and bytes, as one batch.
const maxWaiting = importBatch

// MergeTargetError is an imported incident merged into an incident that is
// neither stored nor on a line of the import, or whose ID differs only in
// case from the one that is (Other, on line Line of the import, 0 when it
// is stored). Waiting is set when the import ended before the incident
// came because more than maxWaiting lines waited for theirs.
type MergeTargetError struct {
	ID, MergedInto string
	Other          string
	Line           int
	Waiting        bool
}

func (e *MergeTargetError) Error() string {
	prefix := fmt.Sprintf("incident %s: field incident.merged_into: ", e.ID)
	switch {
	case e.Other != "":
		where := "which exists here"
		if e.Line > 0 {
			where = fmt.Sprintf("which is on line %d", e.Line)
		}
		return prefix + fmt.Sprintf("%s differs only in case from incident %s, %s: name it as it is, incident IDs are read in any case (rename one in the export)",
			limits.Quote(e.MergedInto), e.Other, where)
	case e.Waiting:
		return prefix + fmt.Sprintf("incident %s is neither stored here nor on the lines read so far, and more than %d lines wait for the incident they are merged into: write an incident before those merged into it (as srectl export does when it was merged into an older one), or import it first",
			limits.Quote(e.MergedInto), maxWaiting)
	}
	return prefix + fmt.Sprintf("incident %s is neither stored here nor on a line of the import: import it too (an export from an earlier --since holds it), or clear merged_into",
		limits.Quote(e.MergedInto))
}

// lookupIDs returns the stored incidents among ids, each looked up as it
// is and in upper and in lower case (as ResolveID finds an ID), by the
// upper case of their ID.
func lookupIDs(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, ids []string) (map[string]string, error) {
	out := map[string]string{}
	if len(ids) == 0 {
		return out, nil
	}
	var args []string
	for _, id := range ids {
		args = append(args, id, strings.ToUpper(id), strings.ToLower(id))
	}
	slices.Sort(args)
	args = slices.Compact(args)
	rows, err := q.QueryContext(ctx, `SELECT id FROM incidents WHERE id IN (`+store.Placeholders(1, len(args))+`)`, store.Args(args)...)
	if err != nil {
		return nil, fmt.Errorf("look up the incidents imported incidents are merged into: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out[strings.ToUpper(id)] = id
	}
	return out, rows.Err()
}

// holdMerged splits batch into the lines to write now and those to hold
// back: a line not stored yet whose merged_into names an incident neither
// on a line of batch nor stored, in any case. Those wait for the incident
// on a later line (Import); a merged_into in another case than the
// incident's is written now, for importLines to refuse it.
func (s *Service) holdMerged(ctx context.Context, batch []importLine) (now, held []importLine, err error) {
	inBatch := map[string]bool{}
	for _, l := range batch {
		inBatch[strings.ToUpper(l.rec.Incident.ID)] = true
	}
	var ids []string
	for _, l := range batch {
		if into := l.rec.Incident.MergedInto; into != "" && !inBatch[strings.ToUpper(into)] {
			ids = append(ids, l.rec.Incident.ID, into)
		}
	}
	if len(ids) == 0 {
		return batch, nil, nil
	}
	stored, err := lookupIDs(ctx, s.db, ids)
	if err != nil {
		return nil, nil, err
	}
	for _, l := range batch {
		inc := &l.rec.Incident
		_, target := stored[strings.ToUpper(inc.MergedInto)]
		if inc.MergedInto == "" || inBatch[strings.ToUpper(inc.MergedInto)] || target || stored[strings.ToUpper(inc.ID)] == inc.ID {
			now = append(now, l)
			continue
		}
		held = append(held, l)
	}
	return now, held, nil
}

// checkMergeTargets refuses the first line of lines that adds an incident
// (not in stored) merged into an incident that is neither on a line of
// lines nor stored under that very ID.
func checkMergeTargets(ctx context.Context, tx *sql.Tx, lines []importLine, stored map[string]bool) error {
	type idLine struct {
		id string
		n  int
	}
	inLines := map[string]idLine{}
	for _, l := range lines {
		if _, ok := inLines[strings.ToUpper(l.rec.Incident.ID)]; !ok {
			inLines[strings.ToUpper(l.rec.Incident.ID)] = idLine{l.rec.Incident.ID, l.n}
		}
	}
	var check []importLine
	var targets []string
	for _, l := range lines {
		inc := &l.rec.Incident
		if inc.MergedInto == "" || stored[inc.ID] {
			continue
		}
		if o, ok := inLines[strings.ToUpper(inc.MergedInto)]; ok && o.id == inc.MergedInto {
			continue
		}
		check = append(check, l)
		targets = append(targets, inc.MergedInto)
	}
	if len(check) == 0 {
		return nil
	}
	have, err := lookupIDs(ctx, tx, targets)
	if err != nil {
		return err
	}
	for _, l := range check {
		inc := &l.rec.Incident
		up := strings.ToUpper(inc.MergedInto)
		if have[up] == inc.MergedInto {
			continue
		}
		e := &MergeTargetError{ID: inc.ID, MergedInto: inc.MergedInto}
		if o, ok := inLines[up]; ok {
			e.Other, e.Line = o.id, o.n
		} else if other, ok := have[up]; ok {
			e.Other = other
		}
		return e
	}
	return nil
}

// targetsFirst returns lines with each line merged into the incident of
// another of its lines (in any case) after the others, in line order otherwise: written
// one at a time, an incident is stored before those merged into it.
func targetsFirst(lines []importLine) []importLine {
	ids := map[string]bool{}
	for _, l := range lines {
		ids[strings.ToUpper(l.rec.Incident.ID)] = true
	}
	rank := func(l importLine) int {
		if into := l.rec.Incident.MergedInto; into != "" && ids[strings.ToUpper(into)] {
			return 1
		}
		return 0
	}
	out := slices.Clone(lines)
	slices.SortStableFunc(out, func(a, b importLine) int { return cmp.Compare(rank(a), rank(b)) })
	return out
}
