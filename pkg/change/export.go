package change

// The change part of an incident export (incident.ExportPart): the
// incident's links to the changes before it, each with the change record
// itself, so that the likely cause and the DORA measures survive a move
// between stores.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
)

// changeColumns are the columns of a change record, as exported.
var changeColumns = []string{"id", "service", "kind", "source", "ref", "version", "commit_sha", "commit_at", "description",
	"actor", "outcome", "failed", "gate_decision", "gate_state", "gate_reason", "gate_override", "override_reason",
	"started_at", "finished_at", "idem_key", "rolled_back_at"}

// ExportPart exports and imports change links with incidents.
type ExportPart struct{ Dialect store.Dialect }

var _ incident.ExportPart = ExportPart{}

// ExportedLink is one change linked to an incident. Change holds every
// column of the change record (times in unix milliseconds), keyed by name.
type ExportedLink struct {
	Change     map[string]any `json:"change"`
	Service    string         `json:"service"`
	OpenedAt   time.Time      `json:"opened_at"`
	ResolvedAt *time.Time     `json:"resolved_at,omitempty"`
}

var _ incident.PathCutter = ExportPart{}

// CutPaths implements incident.PathCutter: the gate's reason recorded with
// each change (sred's text, which holds Prometheus' error when the gate
// could not read the budgets: a credentials file that cannot be read), as
// the change API shows it (ChangeFor). What the caller who recorded the
// change wrote (description, override reason) is left as it is.
func (ExportPart) CutPaths(part json.RawMessage) json.RawMessage {
	if bytes.IndexByte(part, '/') < 0 {
		return part
	}
	ls, err := decodeLinks(part)
	if err != nil {
		return part
	}
	cut := false
	for _, l := range ls {
		if r, ok := l.Change["gate_reason"].(string); ok {
			if c := auth.RedactPaths(r); c != r {
				l.Change["gate_reason"], cut = c, true
			}
		}
	}
	if !cut {
		return part
	}
	b, err := json.Marshal(ls)
	if err != nil {
		return part
	}
	return b
}

// ExportIncidents implements incident.ExportPart.
func (ExportPart) ExportIncidents(ctx context.Context, q incident.Querier, ids []string) (map[string]json.RawMessage, error) {
	cols := make([]string, len(changeColumns))
	for i, c := range changeColumns {
		cols[i] = "c." + c
	}
	rows, err := q.QueryContext(ctx, `SELECT l.incident_id, l.service, l.opened_at, l.resolved_at, `+strings.Join(cols, ", ")+`
		FROM change_incidents l JOIN changes c ON c.id = l.change_id
		WHERE l.incident_id IN (`+store.Placeholders(1, len(ids))+`) ORDER BY l.incident_id, l.opened_at, l.change_id`, store.Args(ids)...)
	if err != nil {
		return nil, fmt.Errorf("change links: %w", err)
	}
	defer rows.Close()
	links := map[string][]ExportedLink{}
	for rows.Next() {
		var id string
		var l ExportedLink
		var opened int64
		var resolved sql.NullInt64
		vals := make([]any, len(changeColumns))
		dest := []any{&id, &l.Service, &opened, &resolved}
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("change links: %w", err)
		}
		l.OpenedAt = time.UnixMilli(opened).UTC()
		if resolved.Valid {
			t := time.UnixMilli(resolved.Int64).UTC()
			l.ResolvedAt = &t
		}
		l.Change = make(map[string]any, len(vals))
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			l.Change[changeColumns[i]] = v
		}
		links[id] = append(links[id], l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("change links: %w", err)
	}
	out := make(map[string]json.RawMessage, len(links))
	for id, ls := range links {
		b, err := json.Marshal(ls)
		if err != nil {
			return nil, fmt.Errorf("change links of %s: %w", id, err)
		}
		out[id] = b
	}
	return out, nil
}

// decodeLinks decodes a part, numbers as json.Number.
func decodeLinks(raw json.RawMessage) ([]ExportedLink, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var ls []ExportedLink
	if err := dec.Decode(&ls); err != nil {
		return nil, err
	}
	return ls, nil
}

// changeValue converts a decoded column value for the statement.
func changeValue(v any) (any, error) {
	switch v := v.(type) {
	case nil, string:
		return v, nil
	case json.Number:
		return v.Int64()
	default:
		return nil, fmt.Errorf("unexpected %T", v)
	}
}

func changeID(l ExportedLink) (int64, error) {
	n, ok := l.Change["id"].(json.Number)
	if !ok {
		return 0, fmt.Errorf("change.id: is missing")
	}
	id, err := n.Int64()
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("change.id: %s is not a positive integer", n)
	}
	return id, nil
}

// ValidateIncident implements incident.ExportPart.
func (ExportPart) ValidateIncident(_ string, raw json.RawMessage) error {
	ls, err := decodeLinks(raw)
	if err != nil {
		return err
	}
	for i, l := range ls {
		if _, err := changeID(l); err != nil {
			return fmt.Errorf("[%d].%w", i, err)
		}
		for k, v := range l.Change {
			if !slices.Contains(changeColumns, k) {
				return fmt.Errorf("[%d].change.%s: is not a column of a change", i, k)
			}
			if _, err := changeValue(v); err != nil {
				return fmt.Errorf("[%d].change.%s: %w", i, k, err)
			}
		}
		for _, k := range []string{"service", "kind", "source", "outcome", "started_at"} {
			if l.Change[k] == nil {
				return fmt.Errorf("[%d].change.%s: is missing", i, k)
			}
		}
		if l.OpenedAt.IsZero() {
			return fmt.Errorf("[%d].opened_at: is missing", i)
		}
	}
	return nil
}

// ImportIncidents implements incident.ExportPart. A linked change that is
// not in the store yet is inserted with its ID; one whose ID is taken by
// another change (not the same service and start) is an error.
func (p ExportPart) ImportIncidents(ctx context.Context, tx *sql.Tx, parts map[string]json.RawMessage) error {
	ids := make([]string, 0, len(parts))
	for id := range parts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var changes, links [][]any
	type ident struct {
		service string
		started int64
	}
	seen := map[int64]ident{}
	var order []int64
	for _, incID := range ids {
		ls, err := decodeLinks(parts[incID])
		if err != nil {
			return fmt.Errorf("change links of %s: %w", incID, err)
		}
		for _, l := range ls {
			id, err := changeID(l)
			if err != nil {
				return fmt.Errorf("change links of %s: %w", incID, err)
			}
			if _, ok := seen[id]; !ok {
				row := make([]any, len(changeColumns))
				for i, c := range changeColumns {
					if row[i], err = changeValue(l.Change[c]); err != nil {
						return fmt.Errorf("change %d: %s: %w", id, c, err)
					}
				}
				svc, _ := row[1].(string)
				started, _ := row[17].(int64)
				seen[id] = ident{svc, started}
				order = append(order, id)
				changes = append(changes, row)
			}
			var resolved any
			if l.ResolvedAt != nil {
				resolved = l.ResolvedAt.UnixMilli()
			}
			links = append(links, []any{id, incID, l.Service, l.OpenedAt.UnixMilli(), resolved})
		}
	}
	if err := store.InsertRows(ctx, tx, p.Dialect, "changes", changeColumns, changes, `ON CONFLICT (id) DO NOTHING`); err != nil {
		return err
	}
	if len(order) > 0 {
		args := make([]any, len(order))
		for i, id := range order {
			args[i] = id
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, service, started_at FROM changes WHERE id IN (`+store.Placeholders(1, len(args))+`)`, args...)
		if err != nil {
			return fmt.Errorf("check changes: %w", err)
		}
		for rows.Next() {
			var id int64
			var got ident
			if err := rows.Scan(&id, &got.service, &got.started); err != nil {
				rows.Close()
				return fmt.Errorf("check changes: %w", err)
			}
			if want := seen[id]; want != got {
				rows.Close()
				return fmt.Errorf("change %d exists in this store as another change (service %q started %s, the export's: service %q started %s)",
					id, got.service, time.UnixMilli(got.started).UTC().Format(time.RFC3339), want.service, time.UnixMilli(want.started).UTC().Format(time.RFC3339))
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("check changes: %w", err)
		}
		if p.Dialect == store.Postgres {
			// Explicit IDs do not move the sequence: new changes come after them.
			if _, err := tx.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('changes', 'id'), GREATEST((SELECT MAX(id) FROM changes), 1))`); err != nil {
				return fmt.Errorf("move the change ID sequence: %w", err)
			}
		}
	}
	return store.InsertRows(ctx, tx, p.Dialect, "change_incidents", []string{"change_id", "incident_id", "service", "opened_at", "resolved_at"}, links,
		`ON CONFLICT (change_id, incident_id) DO NOTHING`)
}
