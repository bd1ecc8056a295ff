package postmortem

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
)

// Migrations create the post-mortem tables.
var Migrations = []store.Migration{{
	ID: "postmortem/0001_init",
	SQLite: `
CREATE TABLE postmortems (
	incident_id  TEXT PRIMARY KEY REFERENCES incidents (id),
	markdown     TEXT NOT NULL,
	generated_by TEXT NOT NULL,
	generated_at BIGINT NOT NULL
);
CREATE TABLE postmortem_action_items (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	incident_id TEXT NOT NULL REFERENCES incidents (id),
	title       TEXT NOT NULL,
	owner       TEXT NOT NULL,
	due         TEXT NOT NULL DEFAULT '',
	state       TEXT NOT NULL,
	created_by  TEXT NOT NULL,
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL
);
CREATE INDEX postmortem_action_items_incident ON postmortem_action_items (incident_id, id);
CREATE INDEX postmortem_action_items_owner ON postmortem_action_items (owner, state);
`,
	Postgres: `
CREATE TABLE postmortems (
	incident_id  TEXT PRIMARY KEY REFERENCES incidents (id),
	markdown     TEXT NOT NULL,
	generated_by TEXT NOT NULL,
	generated_at BIGINT NOT NULL
);
CREATE TABLE postmortem_action_items (
	id          BIGSERIAL PRIMARY KEY,
	incident_id TEXT NOT NULL REFERENCES incidents (id),
	title       TEXT NOT NULL,
	owner       TEXT NOT NULL,
	due         TEXT NOT NULL DEFAULT '',
	state       TEXT NOT NULL,
	created_by  TEXT NOT NULL,
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL
);
CREATE INDEX postmortem_action_items_incident ON postmortem_action_items (incident_id, id);
CREATE INDEX postmortem_action_items_owner ON postmortem_action_items (owner, state);
`,
}}

// ErrNoDraft is returned when an incident has no post-mortem draft yet.
var ErrNoDraft = errors.New("no post-mortem draft yet: generate one with POST")

// ErrItemNotFound is returned for an unknown action item.
var ErrItemNotFound = errors.New("action item not found")

// InvalidError is bad input; the API answers 400 with it.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

func invalid(format string, args ...any) error {
	return &InvalidError{Msg: fmt.Sprintf(format, args...)}
}

// Draft is a stored post-mortem draft.
type Draft struct {
	IncidentID  string    `json:"incident_id"`
	Markdown    string    `json:"markdown"`
	GeneratedBy string    `json:"generated_by"`
	GeneratedAt time.Time `json:"generated_at"`
	Durations   Durations `json:"durations"`
}

// MarshalJSON renders durations as seconds.
func (d Durations) MarshalJSON() ([]byte, error) {
	sec := func(p *time.Duration) *float64 {
		if p == nil {
			return nil
		}
		v := p.Seconds()
		return &v
	}
	return json.Marshal(struct {
		TimeToDetect      *float64 `json:"time_to_detect_seconds"`
		TimeToAcknowledge *float64 `json:"time_to_acknowledge_seconds"`
		TimeToRecover     *float64 `json:"time_to_recover_seconds"`
		TimeToResolve     *float64 `json:"time_to_resolve_seconds"`
	}{sec(d.TimeToDetect), sec(d.TimeToAcknowledge), sec(d.TimeToRecover), sec(d.TimeToResolve)})
}

// Store keeps drafts and action items.
type Store struct {
	db   *store.DB
	inc  *incident.Service
	tmpl *template.Template

	// Now is the clock (tests may replace it).
	Now func() time.Time
}

// NewStore returns a Store rendering with tmpl (nil: DefaultTemplate).
func NewStore(db *store.DB, inc *incident.Service, tmpl *template.Template) *Store {
	return &Store{db: db, inc: inc, tmpl: tmpl, Now: time.Now}
}

func (s *Store) now() time.Time { return s.Now().UTC() }

// Generate drafts (or re-drafts) the post-mortem of a resolved incident and
// stores it. An open incident gets a *incident.TransitionError.
func (s *Store) Generate(ctx context.Context, id, actor string) (*Draft, error) {
	if strings.TrimSpace(actor) == "" {
		return nil, invalid("actor must not be empty")
	}
	inc, err := s.inc.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if inc.Status != incident.StatusResolved && inc.Status != incident.StatusPostmortemDone {
		return nil, &incident.TransitionError{ID: id, From: inc.Status, Action: "draft the post-mortem of",
			Reason: fmt.Sprintf("it is %s, only a resolved incident has a post-mortem", inc.Status)}
	}
	tl, err := s.inc.Timeline(ctx, id)
	if err != nil {
		return nil, err
	}
	items, err := s.ActionItems(ctx, id)
	if err != nil {
		return nil, err
	}
	now := s.now()
	md, err := Render(s.tmpl, inc, tl, items, actor, now)
	if err != nil {
		return nil, err
	}
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO postmortems (incident_id, markdown, generated_by, generated_at)
			VALUES ($1, $2, $3, $4) ON CONFLICT (incident_id) DO UPDATE SET markdown = $2, generated_by = $3, generated_at = $4`,
			id, md, actor, now.UnixMilli()); err != nil {
			return fmt.Errorf("store post-mortem of %s: %w", id, err)
		}
		return s.inc.AddTimeline(ctx, tx, incident.TimelineEntry{IncidentID: id, Time: now, Kind: "postmortem", Actor: actor,
			Message: "post-mortem draft generated"})
	})
	if err != nil {
		return nil, err
	}
	return &Draft{IncidentID: id, Markdown: md, GeneratedBy: actor, GeneratedAt: time.UnixMilli(now.UnixMilli()).UTC(), Durations: Measure(inc)}, nil
}

// Draft returns the stored draft of an incident.
func (s *Store) Draft(ctx context.Context, id string) (*Draft, error) {
	inc, err := s.inc.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	d := &Draft{IncidentID: id, Durations: Measure(inc)}
	var at int64
	err = s.db.QueryRowContext(ctx, `SELECT markdown, generated_by, generated_at FROM postmortems WHERE incident_id = $1`, id).
		Scan(&d.Markdown, &d.GeneratedBy, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", id, ErrNoDraft)
	}
	if err != nil {
		return nil, fmt.Errorf("post-mortem of %s: %w", id, err)
	}
	d.GeneratedAt = time.UnixMilli(at).UTC()
	return d, nil
}

// ItemInput creates or changes an action item. Nil fields are unchanged.
type ItemInput struct {
	Title *string `json:"title,omitempty"`
	Owner *string `json:"owner,omitempty"`
	// Due is a date, YYYY-MM-DD ("" clears it).
	Due   *string `json:"due,omitempty"`
	State *string `json:"state,omitempty"`
	Actor string  `json:"actor,omitempty"`
}

const maxField = 500

func (in ItemInput) validate(creating bool) error {
	if creating && (in.Title == nil || strings.TrimSpace(*in.Title) == "") {
		return invalid(`"title" must not be empty`)
	}
	if creating && (in.Owner == nil || strings.TrimSpace(*in.Owner) == "") {
		return invalid(`"owner" must not be empty: every action item has an owner`)
	}
	if in.Title != nil {
		if strings.TrimSpace(*in.Title) == "" {
			return invalid(`"title" must not be empty`)
		}
		if len(*in.Title) > maxField {
			return invalid(`"title" is longer than %d bytes`, maxField)
		}
	}
	if in.Owner != nil {
		if strings.TrimSpace(*in.Owner) == "" {
			return invalid(`"owner" must not be empty: every action item has an owner`)
		}
		if len(*in.Owner) > 200 {
			return invalid(`"owner" is longer than 200 bytes`)
		}
	}
	if in.Due != nil && *in.Due != "" {
		if _, err := time.Parse(time.DateOnly, *in.Due); err != nil {
			return invalid(`"due" %q is not a date (want YYYY-MM-DD)`, *in.Due)
		}
	}
	if in.State != nil && !slices.Contains(States, *in.State) {
		return invalid(`"state" %q is not one of %s`, *in.State, strings.Join(States, ", "))
	}
	return nil
}

const itemColumns = `id, incident_id, title, owner, due, state, created_by, created_at, updated_at`

func scanItem(r interface{ Scan(...any) error }) (*ActionItem, error) {
	var it ActionItem
	var created, updated int64
	if err := r.Scan(&it.ID, &it.IncidentID, &it.Title, &it.Owner, &it.Due, &it.State, &it.CreatedBy, &created, &updated); err != nil {
		return nil, err
	}
	it.CreatedAt = time.UnixMilli(created).UTC()
	it.UpdatedAt = time.UnixMilli(updated).UTC()
	return &it, nil
}

// AddActionItem adds an action item to an incident (in any state) and
// records it in the timeline.
func (s *Store) AddActionItem(ctx context.Context, id string, in ItemInput) (*ActionItem, error) {
	if err := in.validate(true); err != nil {
		return nil, err
	}
	if strings.TrimSpace(in.Actor) == "" {
		return nil, invalid("actor must not be empty")
	}
	if _, err := s.inc.Get(ctx, id); err != nil {
		return nil, err
	}
	state, due := StateOpen, ""
	if in.State != nil {
		state = *in.State
	}
	if in.Due != nil {
		due = *in.Due
	}
	now := s.now()
	var it *ActionItem
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		it, err = scanItem(tx.QueryRowContext(ctx, `INSERT INTO postmortem_action_items (incident_id, title, owner, due, state,
			created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING `+itemColumns,
			id, strings.TrimSpace(*in.Title), strings.TrimSpace(*in.Owner), due, state, in.Actor, now.UnixMilli()))
		if err != nil {
			return fmt.Errorf("add action item to %s: %w", id, err)
		}
		return s.inc.AddTimeline(ctx, tx, incident.TimelineEntry{IncidentID: id, Time: now, Kind: "action_item", Actor: in.Actor,
			Message: fmt.Sprintf("action item #%d added: %s (owner %s)", it.ID, it.Title, it.Owner),
			Data:    map[string]any{"item": it.ID, "state": it.State}})
	})
	if err != nil {
		return nil, err
	}
	return it, nil
}

// UpdateActionItem changes an action item of an incident.
func (s *Store) UpdateActionItem(ctx context.Context, id string, item int64, in ItemInput) (*ActionItem, error) {
	if err := in.validate(false); err != nil {
		return nil, err
	}
	if strings.TrimSpace(in.Actor) == "" {
		return nil, invalid("actor must not be empty")
	}
	now := s.now()
	var it *ActionItem
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		q := `SELECT ` + itemColumns + ` FROM postmortem_action_items WHERE id = $1 AND incident_id = $2`
		if s.db.Dialect == store.Postgres {
			q += ` FOR UPDATE`
		}
		cur, err := scanItem(tx.QueryRowContext(ctx, q, item, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: #%d of %s", ErrItemNotFound, item, id)
		}
		if err != nil {
			return fmt.Errorf("action item #%d of %s: %w", item, id, err)
		}
		var changes []string
		if in.Title != nil && strings.TrimSpace(*in.Title) != cur.Title {
			cur.Title = strings.TrimSpace(*in.Title)
			changes = append(changes, "title")
		}
		if in.Owner != nil && strings.TrimSpace(*in.Owner) != cur.Owner {
			cur.Owner = strings.TrimSpace(*in.Owner)
			changes = append(changes, "owner "+cur.Owner)
		}
		if in.Due != nil && *in.Due != cur.Due {
			cur.Due = *in.Due
			changes = append(changes, "due "+orDash(cur.Due))
		}
		if in.State != nil && *in.State != cur.State {
			cur.State = *in.State
			changes = append(changes, "state "+cur.State)
		}
		it = cur
		if len(changes) == 0 {
			return nil
		}
		cur.UpdatedAt = time.UnixMilli(now.UnixMilli()).UTC()
		if _, err := tx.ExecContext(ctx, `UPDATE postmortem_action_items SET title = $3, owner = $4, due = $5, state = $6,
			updated_at = $7 WHERE id = $1 AND incident_id = $2`, item, id, cur.Title, cur.Owner, cur.Due, cur.State, now.UnixMilli()); err != nil {
			return fmt.Errorf("update action item #%d of %s: %w", item, id, err)
		}
		return s.inc.AddTimeline(ctx, tx, incident.TimelineEntry{IncidentID: id, Time: now, Kind: "action_item", Actor: in.Actor,
			Message: fmt.Sprintf("action item #%d updated: %s", item, strings.Join(changes, ", ")),
			Data:    map[string]any{"item": item, "state": cur.State}})
	})
	if err != nil {
		return nil, err
	}
	return it, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ActionItems lists an incident's action items in creation order.
func (s *Store) ActionItems(ctx context.Context, id string) ([]ActionItem, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+itemColumns+` FROM postmortem_action_items WHERE incident_id = $1 ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("action items of %s: %w", id, err)
	}
	defer rows.Close()
	out := []ActionItem{}
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return nil, fmt.Errorf("action items of %s: %w", id, err)
		}
		out = append(out, *it)
	}
	return out, rows.Err()
}
