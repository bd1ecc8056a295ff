package incident

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/english"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/mdtext"
	"github.com/rootuip/sre/pkg/store"
)

func init() { Migrations = append(Migrations, postmortemMigrations...) }

// postmortemMigrations add post-mortem action items (part of Migrations).
var postmortemMigrations = []store.Migration{
	{
		ID: "incident/0002_action_items",
		SQLite: `
CREATE TABLE incident_action_items (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	incident_id TEXT NOT NULL REFERENCES incidents (id),
	title       TEXT NOT NULL,
	owner       TEXT NOT NULL DEFAULT '',
	state       TEXT NOT NULL,
	due_at      BIGINT,
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL
);
CREATE INDEX incident_action_items_incident ON incident_action_items (incident_id, id);
CREATE INDEX incident_action_items_state ON incident_action_items (state, owner);
`,
		Postgres: `
CREATE TABLE incident_action_items (
	id          BIGSERIAL PRIMARY KEY,
	incident_id TEXT NOT NULL REFERENCES incidents (id),
	title       TEXT NOT NULL,
	owner       TEXT NOT NULL DEFAULT '',
	state       TEXT NOT NULL,
	due_at      BIGINT,
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL
);
CREATE INDEX incident_action_items_incident ON incident_action_items (incident_id, id);
CREATE INDEX incident_action_items_state ON incident_action_items (state, owner);
`,
	},
}

// ActionItemState is the state of a post-mortem action item.
type ActionItemState string

const (
	ActionOpen       ActionItemState = "open"
	ActionInProgress ActionItemState = "in_progress"
	ActionDone       ActionItemState = "done"
	ActionWontDo     ActionItemState = "wont_do"
)

// ParseActionItemState validates a state name.
func ParseActionItemState(s string) (ActionItemState, error) {
	switch st := ActionItemState(s); st {
	case ActionOpen, ActionInProgress, ActionDone, ActionWontDo:
		return st, nil
	}
	return "", invalid("state", "unknown action item state %s (want open, in_progress, done or wont_do)", limits.Quote(s))
}

// ActionItem is a follow-up of a post-mortem, with an owner and a state.
type ActionItem struct {
	ID         int64           `json:"id"`
	IncidentID string          `json:"incident_id"`
	Title      string          `json:"title"`
	Owner      string          `json:"owner,omitempty"`
	State      ActionItemState `json:"state"`
	DueAt      *time.Time      `json:"due_at,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
}

// ErrActionItemNotFound is returned for an unknown action item.
var ErrActionItemNotFound = errors.New("action item not found")

// AddActionItem records a new open action item on an incident. Its title
// is at most MaxActionItemTitle characters, its owner MaxActionItemOwner.
// An incident holds at most MaxActionItems of them (and MaxEdits impact,
// assignment and action item entries): one more is a *FullError.
func (s *Service) AddActionItem(ctx context.Context, id, actor string, item ActionItem) (*ActionItem, error) {
	item.Title = strings.TrimSpace(item.Title)
	if err := checkActionItem(&item.Title, &item.Owner); err != nil {
		return nil, err
	}
	if item.State == "" {
		item.State = ActionOpen
	}
	if _, err := ParseActionItemState(string(item.State)); err != nil {
		return nil, err
	}
	var out ActionItem
	_, err := s.mutate(ctx, id, actor, func(r *record, now time.Time) (ChangeKind, *TimelineEntry, error) {
		out = item
		out.IncidentID, out.CreatedAt, out.UpdatedAt = r.ID, now, now
		return "", &TimelineEntry{Kind: "action_item", Message: "action item added: " + item.Title + ownerSuffix(item.Owner),
			Data: map[string]any{"title": item.Title, "owner": item.Owner}}, nil
	}, s.roomFor(id, boundActionItems, boundEdits), func(ctx context.Context, tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO incident_action_items (incident_id, title, owner, state, due_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id`, out.IncidentID, out.Title, out.Owner, string(out.State),
			nullMS(out.DueAt), ms(out.CreatedAt)).Scan(&out.ID)
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

func ownerSuffix(owner string) string {
	if owner == "" {
		return ""
	}
	return " (owner " + owner + ")"
}

// ActionItemUpdate changes an action item; nil fields stay.
type ActionItemUpdate struct {
	State *ActionItemState
	Owner *string
	Title *string
}

// UpdateActionItem changes an action item's state, owner or title. A
// change is a timeline entry counted against MaxEdits (a *FullError past
// it); an update that changes nothing is answered as it is.
func (s *Service) UpdateActionItem(ctx context.Context, id string, itemID int64, actor string, u ActionItemUpdate) (*ActionItem, error) {
	if u.State != nil {
		if _, err := ParseActionItemState(string(*u.State)); err != nil {
			return nil, err
		}
	}
	if err := checkActionItem(u.Title, u.Owner); err != nil {
		return nil, err
	}
	var item *ActionItem
	_, err := s.mutate(ctx, id, actor, func(r *record, now time.Time) (ChangeKind, *TimelineEntry, error) {
		return "", nil, nil
	}, func(ctx context.Context, tx *sql.Tx) error {
		items, err := actionItems(ctx, tx, id, itemID)
		if err != nil {
			return err
		}
		if len(items) == 0 {
			return fmt.Errorf("%w: %d of %s", ErrActionItemNotFound, itemID, id)
		}
		it := items[0]
		var changes []string
		if u.State != nil && *u.State != it.State {
			changes = append(changes, fmt.Sprintf("state %s -> %s", it.State, *u.State))
			it.State = *u.State
		}
		if u.Owner != nil && *u.Owner != it.Owner {
			changes = append(changes, fmt.Sprintf("owner %q -> %q", it.Owner, *u.Owner))
			it.Owner = *u.Owner
		}
		if u.Title != nil && strings.TrimSpace(*u.Title) != it.Title {
			changes = append(changes, "title changed")
			it.Title = strings.TrimSpace(*u.Title)
		}
		item = &it
		if len(changes) == 0 {
			return nil
		}
		if err := s.room(ctx, tx, id, boundEdits); err != nil {
			return err
		}
		it.UpdatedAt = s.now()
		item.UpdatedAt = it.UpdatedAt
		if _, err := tx.ExecContext(ctx, `UPDATE incident_action_items SET state = $2, owner = $3, title = $4, updated_at = $5 WHERE id = $1`,
			it.ID, string(it.State), it.Owner, it.Title, ms(it.UpdatedAt)); err != nil {
			return fmt.Errorf("update action item: %w", err)
		}
		return s.insertTimeline(ctx, tx, []TimelineEntry{{IncidentID: id, Time: it.UpdatedAt, Kind: "action_item", Actor: actor,
			Message: fmt.Sprintf("action item #%d %q: %s", it.ID, it.Title, strings.Join(changes, ", ")),
			Data:    map[string]any{"id": it.ID, "state": string(it.State), "owner": it.Owner}}})
	})
	if err != nil {
		return nil, err
	}
	return item, nil
}

// ActionItems lists an incident's action items.
func (s *Service) ActionItems(ctx context.Context, id string) ([]ActionItem, error) {
	if _, err := s.Get(ctx, id); err != nil {
		return nil, err
	}
	var out []ActionItem
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = actionItems(ctx, tx, id, 0)
		return err
	})
	return out, err
}

func actionItems(ctx context.Context, tx *sql.Tx, id string, itemID int64) ([]ActionItem, error) {
	q := `SELECT id, title, owner, state, due_at, created_at, updated_at FROM incident_action_items WHERE incident_id = $1`
	args := []any{id}
	if itemID != 0 {
		q += ` AND id = $2`
		args = append(args, itemID)
	}
	rows, err := tx.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("action items of %s: %w", id, err)
	}
	defer rows.Close()
	out := []ActionItem{}
	for rows.Next() {
		it := ActionItem{IncidentID: id}
		var due sql.NullInt64
		var created, updated int64
		if err := rows.Scan(&it.ID, &it.Title, &it.Owner, &it.State, &due, &created, &updated); err != nil {
			return nil, fmt.Errorf("action items of %s: %w", id, err)
		}
		it.DueAt, it.CreatedAt, it.UpdatedAt = fromNullMS(due), fromMS(created), fromMS(updated)
		out = append(out, it)
	}
	return out, rows.Err()
}

// Durations are the response measures of an incident. Nil means not
// reached yet. In JSON they are seconds (float).
type Durations struct {
	// TimeToAcknowledge: created -> acknowledged.
	TimeToAcknowledge *time.Duration `json:"time_to_acknowledge,omitempty"`
	// TimeToRecover: earliest alert start -> last alert end (the outage as
	// the alerts saw it).
	TimeToRecover *time.Duration `json:"time_to_recover,omitempty"`
	// TimeToResolve: created -> resolved (the incident as people handled it).
	TimeToResolve *time.Duration `json:"time_to_resolve,omitempty"`
	// DetectionDelay: earliest alert start -> created.
	DetectionDelay time.Duration `json:"detection_delay"`
}

// durationsJSON is the wire form of Durations: seconds, as a float, like
// Prometheus' *_seconds metrics.
type durationsJSON struct {
	TimeToAcknowledge *float64 `json:"time_to_acknowledge,omitempty"`
	TimeToRecover     *float64 `json:"time_to_recover,omitempty"`
	TimeToResolve     *float64 `json:"time_to_resolve,omitempty"`
	DetectionDelay    float64  `json:"detection_delay"`
}

// MarshalJSON writes the durations in seconds (float).
func (d Durations) MarshalJSON() ([]byte, error) {
	secs := func(v *time.Duration) *float64 {
		if v == nil {
			return nil
		}
		f := v.Seconds()
		return &f
	}
	return json.Marshal(durationsJSON{
		TimeToAcknowledge: secs(d.TimeToAcknowledge),
		TimeToRecover:     secs(d.TimeToRecover),
		TimeToResolve:     secs(d.TimeToResolve),
		DetectionDelay:    d.DetectionDelay.Seconds(),
	})
}

// UnmarshalJSON reads durations written by MarshalJSON.
func (d *Durations) UnmarshalJSON(b []byte) error {
	var j durationsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	dur := func(f *float64) *time.Duration {
		if f == nil {
			return nil
		}
		v := time.Duration(*f * float64(time.Second))
		return &v
	}
	*d = Durations{
		TimeToAcknowledge: dur(j.TimeToAcknowledge),
		TimeToRecover:     dur(j.TimeToRecover),
		TimeToResolve:     dur(j.TimeToResolve),
		DetectionDelay:    time.Duration(j.DetectionDelay * float64(time.Second)),
	}
	return nil
}

// Durations computes the incident's response measures.
func (inc *Incident) Durations() Durations {
	d := Durations{DetectionDelay: max(0, inc.CreatedAt.Sub(inc.DetectedAt))}
	since := func(from time.Time, to *time.Time) *time.Duration {
		if to == nil {
			return nil
		}
		v := max(0, to.Sub(from))
		return &v
	}
	d.TimeToAcknowledge = since(inc.CreatedAt, inc.AcknowledgedAt)
	d.TimeToRecover = since(inc.DetectedAt, inc.RecoveredAt)
	d.TimeToResolve = since(inc.CreatedAt, inc.ResolvedAt)
	return d
}

// Postmortem is a generated post-mortem draft.
type Postmortem struct {
	IncidentID  string       `json:"incident_id"`
	Durations   Durations    `json:"durations"`
	ActionItems []ActionItem `json:"action_items"`
	Markdown    string       `json:"markdown"`
}

// Postmortem drafts the post-mortem of an incident from its record and
// timeline: summary, impact, timeline, detection/response/resolution times
// and action items, with the parts only people can write marked TODO.
func (s *Service) Postmortem(ctx context.Context, id string) (*Postmortem, error) {
	return s.PostmortemWith(ctx, id, nil)
}

// PostmortemWith is Postmortem drafted from the timeline as view returns
// it (nil: as stored): the API drafts a viewer's from the timeline the
// viewer may read (web.TimelineFor).
func (s *Service) PostmortemWith(ctx context.Context, id string, view func([]TimelineEntry) []TimelineEntry) (*Postmortem, error) {
	inc, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	tl, err := s.Timeline(ctx, id)
	if err != nil {
		return nil, err
	}
	if view != nil {
		tl = view(tl)
	}
	items, err := s.ActionItems(ctx, id)
	if err != nil {
		return nil, err
	}
	pm := &Postmortem{IncidentID: id, Durations: inc.Durations(), ActionItems: items}
	pm.Markdown = renderPostmortem(inc, tl, items, pm.Durations)
	return pm, nil
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func fmtDur(d *time.Duration) string {
	if d == nil {
		return "—"
	}
	return d.Round(time.Second).String()
}

func renderPostmortem(inc *Incident, tl []TimelineEntry, items []ActionItem, d Durations) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Post-mortem: %s — %s\n\n", inc.ID, mdtext.Cell(inc.Title))
	w("_Draft generated by sred from the incident record. Sections marked TODO need a human._\n\n")
	w("| | |\n|---|---|\n")
	// The severity follows the alerts still firing (an SLO's page
	// resolving before its ticket leaves the incident at the ticket's);
	// the stored peak follows it, as the console and srectl show them.
	w("| Severity | %s |\n| Service | %s |\n| Status | %s |\n", inc.SeverityText(), mdtext.Cell(inc.Service), inc.Status)
	if inc.Assignee != "" {
		w("| Incident lead | %s |\n", mdtext.Cell(inc.Assignee))
	}
	detected := inc.DetectedAt
	w("| Detected | %s |\n| Created | %s |\n| Acknowledged | %s |\n| Recovered | %s |\n| Resolved | %s |\n",
		fmtTime(&detected), fmtTime(&inc.CreatedAt), fmtTime(inc.AcknowledgedAt), fmtTime(inc.RecoveredAt), fmtTime(inc.ResolvedAt))
	if inc.Flapping {
		w("| Flapping | yes: the alerts fired again shortly after resolving |\n")
	}
	if inc.MitigatedBy != "" {
		w("| Mitigated by | %s |\n", mdtext.Cell(inc.MitigatedBy))
	}

	w("\n## Summary\n\n")
	firing, resolved := 0, 0
	var names []string
	seen := map[string]bool{}
	for _, a := range inc.Alerts {
		if a.Status == "resolved" {
			resolved++
		} else {
			firing++
		}
		if n := a.Labels["alertname"]; n != "" && !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	w("%s (%s) fired for service %s starting %s; %d resolved, %d still firing.",
		english.Count(len(inc.Alerts), "alert", "alerts"), mdtext.Cell(strings.Join(names, ", ")), mdtext.Cell(inc.Service), fmtTime(&detected), resolved, firing)
	for _, e := range tl {
		if e.Kind == "status" && e.Data != nil && e.Data["to"] == string(StatusResolved) {
			w(" %s.", strings.TrimSuffix(mdtext.Text(capitalize(e.Message)), "."))
		}
	}
	w("\n\nTODO: what happened, in two or three sentences.\n")

	w("\n## Impact\n\n")
	if inc.Impact != "" {
		// The responder's lines, as text: the statement makes no
		// heading, HTML or link of the document.
		w("%s\n", mdtext.Lines(inc.Impact))
	} else {
		w("TODO: who was affected, how, and for how long.\n")
	}

	w("\n## Timeline\n\n| Time (UTC) | Actor | Event |\n|---|---|---|\n")
	for _, e := range tl {
		w("| %s | %s | %s |\n", e.Time.UTC().Format("2006-01-02 15:04:05"), mdtext.Cell(e.Actor), mdtext.Text(e.Message))
	}

	w("\n## Detection, response and resolution\n\n| Measure | Value |\n|---|---|\n")
	w("| Detection delay (first alert → incident) | %s |\n", fmtDur(&d.DetectionDelay))
	w("| Time to acknowledge (incident → acknowledged) | %s |\n", fmtDur(d.TimeToAcknowledge))
	w("| Time to recover (first alert start → last alert end) | %s |\n", fmtDur(d.TimeToRecover))
	w("| Time to resolve (incident → resolved) | %s |\n", fmtDur(d.TimeToResolve))

	w("\n## Root cause\n\n")
	if causes := LikelyCauses(tl); len(causes) > 0 {
		w("Likely cause (a change recorded shortly before the first alert):\n\n")
		for _, e := range causes {
			w("- %s\n", mdtext.Text(capitalize(strings.TrimPrefix(e.Message, "likely cause: "))))
		}
		w("\n")
	}
	w("TODO: the causes, and why the safeguards did not catch them.\n")

	w("\n## Action items\n\n")
	if len(items) == 0 {
		w("TODO: add action items (POST /api/v1/incidents/%s/action-items).\n", inc.ID)
	} else {
		w("| # | Action | Owner | State |\n|---|---|---|---|\n")
		for _, it := range items {
			owner := it.Owner
			if owner == "" {
				owner = "unassigned"
			}
			w("| %d | %s | %s | %s |\n", it.ID, mdtext.Cell(it.Title), mdtext.Cell(owner), it.State)
		}
	}
	w("\n## Lessons learned\n\nTODO: what went well, what went badly, where we got lucky.\n")
	return b.String()
}

// LikelyCauses returns the timeline entries that name a change as the
// likely cause of the incident.
func LikelyCauses(tl []TimelineEntry) []TimelineEntry {
	var out []TimelineEntry
	for _, e := range tl {
		if e.Kind == TimelineLikelyCause {
			out = append(out, e)
		}
	}
	return out
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// StatusUpdate is a request to publish a status update.
type StatusUpdate struct {
	Actor      string
	Impact     string
	Actions    string
	NextUpdate time.Time
	StatusPage string
	// Public updates appear on the public status page with PublicMessage
	// (or, when it is empty, the impact and actions).
	Public        bool
	PublicMessage string
}

// StatusUpdateHook is called inside the transaction of a status update with
// the incident, the update and its rendered text: the status page enqueues
// the update's notifications there, atomically with the timeline entry.
type StatusUpdateHook func(ctx context.Context, tx *sql.Tx, inc *Incident, u StatusUpdate, text string, now time.Time) error

// AddStatusUpdateHook registers h (at wiring time, before requests).
func (s *Service) AddStatusUpdateHook(h StatusUpdateHook) {
	s.statusUpdateHooks = append(s.statusUpdateHooks, h)
}

// SetStatusPage sets where the status page's URL comes from: the link of
// status updates that name none (at wiring time, before requests).
func (s *Service) SetStatusPage(url func() string) { s.statusPage = url }

// PublicText is what a public status update says on the status page.
func (u StatusUpdate) PublicText() string {
	if m := strings.TrimSpace(u.PublicMessage); m != "" {
		return m
	}
	var parts []string
	if v := strings.TrimSpace(u.Impact); v != "" {
		parts = append(parts, "Impact: "+v)
	}
	if v := strings.TrimSpace(u.Actions); v != "" {
		parts = append(parts, "Actions: "+v)
	}
	if len(parts) == 0 {
		return "We are investigating."
	}
	return strings.Join(parts, "\n")
}

// PostStatusUpdate renders the status-update template for an incident,
// records the text in the timeline (kind "status_update") and publishes an
// "incident.status_update" event with the text, for notification channels.
// A non-empty Impact also becomes the incident's impact. The update's text
// is refused over its limits (StatusUpdate.Check), and an incident holds
// at most MaxStatusUpdates updates (a *FullError past it).
func (s *Service) PostStatusUpdate(ctx context.Context, id string, u StatusUpdate) (string, error) {
	if err := u.Check(); err != nil {
		return "", err
	}
	opts := s.Options()
	var text string
	var inc Incident
	var at time.Time
	statusPage := u.StatusPage
	if statusPage == "" && s.statusPage != nil {
		statusPage = s.statusPage()
	}
	_, err := s.mutate(ctx, id, u.Actor, func(r *record, now time.Time) (ChangeKind, *TimelineEntry, error) {
		if u.Impact != "" {
			r.Impact = strings.TrimSpace(u.Impact)
		}
		url := ""
		if opts.ExternalURL != "" {
			url = strings.TrimSuffix(opts.ExternalURL, "/") + "/api/v1/incidents/" + r.ID
		}
		var err error
		text, err = RenderStatusUpdate(opts.StatusUpdateTemplate, StatusUpdateData{
			Incident: &r.Incident, Impact: u.Impact, Actions: u.Actions, NextUpdate: u.NextUpdate,
			StatusPage: statusPage, URL: url, Sent: now,
		})
		if err != nil {
			return "", nil, fmt.Errorf("render status update: %w", err)
		}
		inc = r.Incident
		at = now
		data := map[string]any{"impact": u.Impact, "actions": u.Actions}
		if !u.NextUpdate.IsZero() {
			data["next_update"] = u.NextUpdate.UTC().Format(time.RFC3339)
		}
		if u.Public {
			data["public"] = true
			data["public_message"] = u.PublicText()
		}
		return "", &TimelineEntry{Kind: "status_update", Message: text, Data: data}, nil
	}, s.roomFor(id, boundStatusUpdates), func(ctx context.Context, tx *sql.Tx) error {
		for _, h := range s.statusUpdateHooks {
			if err := h(ctx, tx, &inc, u, text, at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	s.bus.Publish(events.Event{Type: "incident.status_update", Service: inc.Service, IncidentID: id,
		Data: map[string]any{"text": text, "actor": u.Actor, "severity": inc.Severity, "title": inc.Title, "public": u.Public}})
	return text, nil
}
