package escalation

// The escalation part of an incident export (incident.ExportPart): the
// state row with its frozen policy, the pages already sent, and the timers
// still to run, so that an imported open incident escalates on from where
// it was, without paging again the levels that were paged.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/jsonerr"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/store"
)

// ExportPart exports and imports escalation state with incidents.
type ExportPart struct{ Dialect store.Dialect }

var _ incident.ExportPart = ExportPart{}

// Exported is the escalation part of one incident.
type Exported struct {
	Policy string `json:"policy"`
	// Frozen and Snapshot are the stored JSON as it is.
	Frozen   json.RawMessage `json:"frozen"`
	Snapshot json.RawMessage `json:"snapshot"`
	Epoch    int             `json:"epoch"`
	State    string          `json:"state"`
	Level    int             `json:"level"`
	// Cycle is the round of a repeating policy Level was paged in.
	Cycle     int       `json:"cycle,omitempty"`
	StartedAt time.Time `json:"started_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// AckedBy is who acknowledged the current epoch.
	AckedBy string `json:"acked_by,omitempty"`
	// Pages are the pages sent (per epoch, user and level).
	Pages []ExportedPage `json:"pages,omitempty"`
	// Timers are the pending escalation timers (steps, acknowledgement
	// timeouts, handoffs, reminders).
	Timers []ExportedTimer `json:"timers,omitempty"`
}

// ExportedPage is one page sent.
type ExportedPage struct {
	Epoch   int       `json:"epoch"`
	User    string    `json:"user"`
	Level   int       `json:"level"`
	PagedAt time.Time `json:"paged_at"`
}

// ExportedTimer is one pending timer of the escalation queue.
type ExportedTimer struct {
	Kind      string          `json:"kind"`
	Key       string          `json:"key"`
	RunAt     time.Time       `json:"run_at"`
	Payload   json.RawMessage `json:"payload"`
	Attempts  int             `json:"attempts,omitempty"`
	LastError string          `json:"last_error,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
}

var _ incident.PathCutter = ExportPart{}

// CutPaths implements incident.PathCutter: the last errors of the timers
// (a page that failed: "open /etc/sred/secrets/sms-token: ...").
func (ExportPart) CutPaths(part json.RawMessage) json.RawMessage {
	var e Exported
	if bytes.IndexByte(part, '/') < 0 || json.Unmarshal(part, &e) != nil {
		return part
	}
	cut := false
	for i, t := range e.Timers {
		auth.CutPaths(&e.Timers[i].LastError)
		cut = cut || e.Timers[i].LastError != t.LastError
	}
	if !cut {
		return part
	}
	b, err := json.Marshal(e)
	if err != nil {
		return part
	}
	return b
}

// ExportIncidents implements incident.ExportPart.
func (ExportPart) ExportIncidents(ctx context.Context, q incident.Querier, ids []string) (map[string]json.RawMessage, error) {
	in := store.Placeholders(1, len(ids))
	args := store.Args(ids)
	out := map[string]*Exported{}
	rows, err := q.QueryContext(ctx, `SELECT incident_id, policy, frozen, snapshot, epoch, state, level, cycle, started_at, updated_at, acked_by
		FROM escalation_state WHERE incident_id IN (`+in+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("escalation state: %w", err)
	}
	for rows.Next() {
		var id, frozen, snap string
		var e Exported
		var started, updated int64
		if err := rows.Scan(&id, &e.Policy, &frozen, &snap, &e.Epoch, &e.State, &e.Level, &e.Cycle, &started, &updated, &e.AckedBy); err != nil {
			rows.Close()
			return nil, fmt.Errorf("escalation state: %w", err)
		}
		e.Frozen, e.Snapshot = json.RawMessage(frozen), json.RawMessage(snap)
		e.StartedAt, e.UpdatedAt = jobs.FromMillis(started), jobs.FromMillis(updated)
		out[id] = &e
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("escalation state: %w", err)
	}
	rows, err = q.QueryContext(ctx, `SELECT incident_id, epoch, user_name, level, paged_at FROM escalation_pages
		WHERE incident_id IN (`+in+`) ORDER BY incident_id, epoch, level, user_name`, args...)
	if err != nil {
		return nil, fmt.Errorf("escalation pages: %w", err)
	}
	for rows.Next() {
		var id string
		var p ExportedPage
		var at int64
		if err := rows.Scan(&id, &p.Epoch, &p.User, &p.Level, &at); err != nil {
			rows.Close()
			return nil, fmt.Errorf("escalation pages: %w", err)
		}
		p.PagedAt = jobs.FromMillis(at)
		if e := out[id]; e != nil {
			e.Pages = append(e.Pages, p)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("escalation pages: %w", err)
	}
	// A timer a worker holds (running) is exported as pending: the
	// importing side runs it; pages already recorded are not sent again.
	rows, err = q.QueryContext(ctx, `SELECT grp, kind, dedup_key, run_at, payload, attempts, last_error, created_at FROM jobs
		WHERE queue = $`+fmt.Sprint(len(ids)+1)+` AND state IN ('pending', 'running') AND grp IN (`+in+`) ORDER BY grp, run_at, dedup_key`,
		append(args, Queue)...)
	if err != nil {
		return nil, fmt.Errorf("escalation timers: %w", err)
	}
	for rows.Next() {
		var id, payload string
		var t ExportedTimer
		var runAt, created int64
		if err := rows.Scan(&id, &t.Kind, &t.Key, &runAt, &payload, &t.Attempts, &t.LastError, &created); err != nil {
			rows.Close()
			return nil, fmt.Errorf("escalation timers: %w", err)
		}
		t.RunAt, t.CreatedAt, t.Payload = jobs.FromMillis(runAt), jobs.FromMillis(created), json.RawMessage(payload)
		if e := out[id]; e != nil {
			e.Timers = append(e.Timers, t)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("escalation timers: %w", err)
	}
	res := make(map[string]json.RawMessage, len(out))
	for id, e := range out {
		b, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("escalation of %s: %w", id, err)
		}
		res[id] = b
	}
	return res, nil
}

func decodeExported(raw json.RawMessage) (*Exported, error) {
	var e Exported
	if err := json.Unmarshal(raw, &e); err != nil {
		// Worded as the API words its bodies: the field's path and the
		// JSON it wants, never a Go type.
		return nil, jsonerr.Rewrite(err, raw, &e)
	}
	return &e, nil
}

// ValidateIncident implements incident.ExportPart.
func (ExportPart) ValidateIncident(_ string, raw json.RawMessage) error {
	e, err := decodeExported(raw)
	if err != nil {
		return err
	}
	var f Frozen
	switch {
	case !slices.Contains([]string{StateActive, StateAcknowledged, StateResolved, StateNoPolicy, StateRecovering}, e.State):
		return fmt.Errorf("state: %s is not an escalation state", limits.Quote(e.State))
	case e.Epoch < 1:
		return fmt.Errorf("epoch: %d is not a positive number", e.Epoch)
	case e.Level < -1:
		return fmt.Errorf("level: %d is below -1", e.Level)
	case e.StartedAt.IsZero():
		return fmt.Errorf("started_at: is missing")
	case json.Unmarshal(e.Frozen, &f) != nil:
		return fmt.Errorf("frozen: is not a frozen policy")
	case len(e.Snapshot) == 0 || e.Snapshot[0] != '{' || !json.Valid(e.Snapshot):
		return fmt.Errorf("snapshot: is not a JSON object")
	}
	for i, p := range e.Pages {
		if p.User == "" {
			return fmt.Errorf("pages[%d].user: is missing", i)
		}
		if p.PagedAt.IsZero() {
			return fmt.Errorf("pages[%d].paged_at: is missing", i)
		}
	}
	for i, t := range e.Timers {
		switch {
		case !slices.Contains(Kinds, jobs.Kind(t.Kind)):
			return fmt.Errorf("timers[%d].kind: %s is not an escalation timer", i, limits.Quote(t.Kind))
		case t.Key == "":
			return fmt.Errorf("timers[%d].key: is missing", i)
		case t.RunAt.IsZero():
			return fmt.Errorf("timers[%d].run_at: is missing", i)
		case len(t.Payload) == 0 || !json.Valid(t.Payload):
			return fmt.Errorf("timers[%d].payload: is not JSON", i)
		}
	}
	return nil
}

// ImportIncidents implements incident.ExportPart.
func (p ExportPart) ImportIncidents(ctx context.Context, tx *sql.Tx, parts map[string]json.RawMessage) error {
	ids := make([]string, 0, len(parts))
	for id := range parts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var states, pages, timers [][]any
	for _, id := range ids {
		e, err := decodeExported(parts[id])
		if err != nil {
			return fmt.Errorf("escalation of %s: %w", id, err)
		}
		states = append(states, []any{id, e.Policy, string(e.Frozen), string(e.Snapshot), e.Epoch, e.State, e.Level, e.Cycle,
			jobs.Millis(e.StartedAt), jobs.Millis(e.UpdatedAt), e.AckedBy})
		for _, p := range e.Pages {
			pages = append(pages, []any{id, p.Epoch, p.User, p.Level, jobs.Millis(p.PagedAt)})
		}
		for _, t := range e.Timers {
			timers = append(timers, []any{Queue, t.Kind, t.Key, id, jobs.Millis(t.RunAt), string(t.Payload), "pending", t.Attempts,
				t.LastError, jobs.Millis(t.CreatedAt)})
		}
	}
	if err := store.InsertRows(ctx, tx, p.Dialect, "escalation_state", []string{"incident_id", "policy", "frozen", "snapshot", "epoch", "state",
		"level", "cycle", "started_at", "updated_at", "acked_by"}, states, `ON CONFLICT (incident_id) DO NOTHING`); err != nil {
		return err
	}
	if err := store.InsertRows(ctx, tx, p.Dialect, "escalation_pages", []string{"incident_id", "epoch", "user_name", "level", "paged_at"}, pages,
		`ON CONFLICT DO NOTHING`); err != nil {
		return err
	}
	return store.InsertRows(ctx, tx, p.Dialect, "jobs", []string{"queue", "kind", "dedup_key", "grp", "run_at", "payload", "state", "attempts",
		"last_error", "created_at"}, timers, `ON CONFLICT (queue, dedup_key) DO NOTHING`)
}
