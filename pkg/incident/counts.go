package incident

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/rootuip/sre/pkg/store"
)

// Bounds of what people add to one incident over the API, the console and
// srectl (docs/api.md, Bounds of an incident). The size of each item is
// bounded too (MaxNote, ...); these bound how many there are, so that a
// script posting in a loop cannot make an incident's timeline, post-mortem,
// console page and export grow without end. An import is held to them as
// well (validateRecord).
const (
	// MaxNotes bounds an incident's timeline notes.
	MaxNotes = 1000
	// MaxStatusUpdates bounds an incident's status updates, public or not.
	MaxStatusUpdates = 200
	// MaxActionItems bounds an incident's post-mortem action items.
	MaxActionItems = 500
	// MaxEdits bounds the timeline entries of an incident's impact
	// statements, assignments, snoozes and action item changes (additions
	// included).
	MaxEdits = 2500
	// MaxMerged bounds the incidents merged into one by hand (Merge). Each
	// merge moves the merged incident's alert groups (its links) and adds
	// an entry to the timeline. Correlation, which attaches Alertmanager's
	// groups to an incident without a merge, is not bounded by it.
	MaxMerged = 100
)

// ErrFull is matched (errors.Is) by every *FullError.
var ErrFull = errors.New("incident has the most it can have")

// FullError refuses an addition to an incident that already has the most
// of a collection it can have (MaxNotes, MaxStatusUpdates, MaxActionItems,
// MaxEdits, MaxMerged). The API answers it 409, as a change the incident's state does
// not allow.
type FullError struct {
	ID string
	// Collection names what is full ("notes", "status updates", ...).
	Collection string
	Max        int
	// Hint says what to do instead.
	Hint string
}

// Error implements error.
func (e *FullError) Error() string {
	return fmt.Sprintf("incident %s has %d %s, the most it can have; %s", e.ID, e.Max, e.Collection, e.Hint)
}

// Is makes errors.Is(err, ErrFull) true.
func (e *FullError) Is(target error) bool { return target == ErrFull }

// bounded is one of an incident's bounded collections: the rows that count
// against it are those of rows (SQL selecting one row per item of incident
// $1) when set, else the incident's timeline entries of kinds, or its
// action items when kinds is empty.
type bounded struct {
	name  string
	rows  string
	kinds []string
	max   int
	hint  string
}

var (
	boundNotes = bounded{name: "notes", kinds: []string{"note"}, max: MaxNotes,
		hint: "write what follows in its post-mortem, or open a new incident for new work"}
	boundStatusUpdates = bounded{name: "status updates", kinds: []string{"status_update"}, max: MaxStatusUpdates,
		hint: "resolve it and open a new incident for what follows"}
	boundActionItems = bounded{name: "action items", max: MaxActionItems,
		hint: "update the ones it has (PATCH .../action-items/{item}), or track the rest outside sred"}
	boundEdits = bounded{name: "impact, assignment, snooze and action item changes", kinds: []string{"impact", "assignment", "snooze", "action_item"},
		max: MaxEdits, hint: "open a new incident for what follows"}
	boundMerged = bounded{name: "incidents merged into it", rows: `SELECT 1 FROM incidents WHERE merged_into = $1 AND ` + mergedIndexed, max: MaxMerged,
		hint: "merge the rest into another open incident, or resolve them and name them in its post-mortem"}
)

// mergedIndexed is the WHERE of incidents_merged_into (migration
// incident/0016_incidents_merged_into), word for word: a query on
// merged_into adds it so that SQLite reads the index (a partial index
// serves a query whose WHERE holds the index's own terms).
const mergedIndexed = `merged_into <> ''`

// boundedKindsIndexed is the WHERE of incident_timeline_bounded
// (incident/0017_timeline_bounded_kinds), word for word, for the same
// reason: the timeline kinds of the bounds (boundNotes, boundStatusUpdates,
// boundEdits), every one of which it must list.
const boundedKindsIndexed = `kind IN ('note', 'status_update', 'impact', 'assignment', 'snooze', 'action_item')`

// room refuses one more row of b on incident id with a *FullError when it
// has b.max already. It runs in the transaction that adds the row, after
// the incident's row is loaded: PostgreSQL holds that row locked (load,
// FOR UPDATE) and SQLite has one writer at a time, so two concurrent
// additions count one after the other and cannot both pass the bound. The
// count stops at the bound: an incident over it (from before the bound)
// costs no more to check.
func (s *Service) room(ctx context.Context, tx *sql.Tx, id string, b bounded) error {
	q, args := b.countQuery(id)
	var n int
	if err := tx.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return fmt.Errorf("count the %s of %s: %w", b.name, id, err)
	}
	if n >= b.max {
		return &FullError{ID: id, Collection: b.name, Max: b.max, Hint: b.hint}
	}
	return nil
}

// countQuery is the query counting the rows of b on incident id, up to
// b.max, and its arguments.
func (b bounded) countQuery(id string) (string, []any) {
	var q string
	args := []any{id}
	switch {
	case b.rows != "":
		q = b.rows
	case len(b.kinds) == 0:
		q = `SELECT 1 FROM incident_action_items WHERE incident_id = $1`
	default:
		ph := make([]string, len(b.kinds))
		for i, k := range b.kinds {
			ph[i] = fmt.Sprintf("$%d", i+2)
			args = append(args, k)
		}
		q = `SELECT 1 FROM incident_timeline WHERE incident_id = $1 AND kind IN (` + strings.Join(ph, ", ") + `) AND ` + boundedKindsIndexed
	}
	args = append(args, b.max)
	return `SELECT COUNT(*) FROM (` + q + fmt.Sprintf(` LIMIT $%d) t`, len(args)), args
}

// roomFor is room as an extra function of mutate.
func (s *Service) roomFor(id string, bs ...bounded) func(ctx context.Context, tx *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		for _, b := range bs {
			if err := s.room(ctx, tx, id, b); err != nil {
				return err
			}
		}
		return nil
	}
}

// importBounds checks the collections of an imported incident against the
// bounds the API holds them to, naming the collection; the caller names
// the line.
func importBounds(rec *ExportRecord) (field string, err error) {
	count := map[string]int{}
	for _, e := range rec.Timeline {
		count[e.Kind]++
	}
	for _, b := range []bounded{boundNotes, boundStatusUpdates, boundEdits} {
		n := 0
		for _, k := range b.kinds {
			n += count[k]
		}
		if n > b.max {
			return "timeline", fmt.Errorf("holds %d %s, more than the %d an incident can have", n, b.name, b.max)
		}
	}
	if n := len(rec.ActionItems); n > MaxActionItems {
		return "action_items", fmt.Errorf("holds %d action items, more than the %d an incident can have", n, MaxActionItems)
	}
	return "", nil
}

// importMergedQuery counts the stored incidents merged into each of n
// incidents ($1 to $n), through incidents_merged_into.
func importMergedQuery(n int) string {
	return `SELECT merged_into, COUNT(*) FROM incidents WHERE merged_into IN (` + store.Placeholders(1, n) + `) AND ` + mergedIndexed +
		` GROUP BY merged_into`
}

// importMerged holds the incidents lines would add to MaxMerged merged into
// any one incident, as Merge does: those stored (from before the import or
// from its earlier lines, committed) and those of lines, in line order. A
// line adds its incident unless it is stored (stored) or on an earlier
// line. The first line over the bound is an error naming its field; the
// caller names the line.
func importMerged(ctx context.Context, tx *sql.Tx, lines []importLine, stored map[string]bool) error {
	var adds []importLine
	var targets []string
	added, seen := map[string]bool{}, map[string]bool{}
	for _, l := range lines {
		inc := &l.rec.Incident
		if stored[inc.ID] || added[inc.ID] {
			continue
		}
		added[inc.ID] = true
		if inc.MergedInto == "" {
			continue
		}
		adds = append(adds, l)
		if !seen[inc.MergedInto] {
			seen[inc.MergedInto] = true
			targets = append(targets, inc.MergedInto)
		}
	}
	if len(targets) == 0 {
		return nil
	}
	merged := make(map[string]int, len(targets))
	rows, err := tx.QueryContext(ctx, importMergedQuery(len(targets)), store.Args(targets)...)
	if err != nil {
		return fmt.Errorf("count the incidents merged into those the import merges into: %w", err)
	}
	for rows.Next() {
		var into string
		var n int
		if err := rows.Scan(&into, &n); err != nil {
			rows.Close()
			return fmt.Errorf("count the incidents merged into those the import merges into: %w", err)
		}
		merged[into] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("count the incidents merged into those the import merges into: %w", err)
	}
	for _, l := range adds {
		inc := &l.rec.Incident
		if merged[inc.MergedInto]++; merged[inc.MergedInto] > MaxMerged {
			return fmt.Errorf("incident %s: field incident.merged_into: incident %s would have %d %s, more than the %d an incident can have (%d stored or on earlier lines)",
				inc.ID, inc.MergedInto, merged[inc.MergedInto], boundMerged.name, MaxMerged, merged[inc.MergedInto]-1)
		}
	}
	return nil
}
