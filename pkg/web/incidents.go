package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/envelope"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/store"
)

// IncidentsAPI serves /api/v1/incidents (see docs/api.md).
type IncidentsAPI struct {
	Service *incident.Service
	// MaxImportBytes bounds an import request's body
	// (DefaultMaxImportBytes when 0).
	MaxImportBytes int64
}

func (a *IncidentsAPI) maxImportBytes() int64 {
	if a.MaxImportBytes > 0 {
		return a.MaxImportBytes
	}
	return DefaultMaxImportBytes
}

// Register mounts the routes on mux.
func (a *IncidentsAPI) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/incidents", a.list)
	mux.HandleFunc("POST /api/v1/incidents", a.create)
	mux.HandleFunc("GET /api/v1/incidents/{id}", a.byID(a.get))
	mux.HandleFunc("GET /api/v1/incidents/{id}/timeline", a.byID(a.timeline))
	mux.HandleFunc("POST /api/v1/incidents/{id}/ack", a.byID(a.ack))
	mux.HandleFunc("POST /api/v1/incidents/{id}/investigate", a.byID(a.investigate))
	mux.HandleFunc("POST /api/v1/incidents/{id}/assign", a.byID(a.assign))
	mux.HandleFunc("POST /api/v1/incidents/{id}/resolve", a.byID(a.resolve))
	mux.HandleFunc("POST /api/v1/incidents/{id}/snooze", a.byID(a.snooze))
	mux.HandleFunc("POST /api/v1/incidents/{id}/notes", a.byID(a.note))
	mux.HandleFunc("POST /api/v1/incidents/{id}/impact", a.byID(a.impact))
	mux.HandleFunc("POST /api/v1/incidents/{id}/postmortem/complete", a.byID(a.postmortemDone))
	mux.HandleFunc("GET /api/v1/incidents/{id}/postmortem", a.byID(a.postmortem))
	mux.HandleFunc("GET /api/v1/incidents/{id}/action-items", a.byID(a.actionItems))
	mux.HandleFunc("POST /api/v1/incidents/{id}/action-items", a.byID(a.addActionItem))
	mux.HandleFunc("PATCH /api/v1/incidents/{id}/action-items/{item}", a.byID(a.updateActionItem))
	mux.HandleFunc("POST /api/v1/incidents/{id}/status-updates", a.byID(a.statusUpdate))
	mux.HandleFunc("GET /api/v1/incidents/export", a.export)
	mux.HandleFunc("POST /api/v1/incidents/import", a.importLines)
	mux.HandleFunc("POST /api/v1/incidents/{id}/split", a.byID(a.split))
	mux.HandleFunc("POST /api/v1/incidents/{id}/merge", a.byID(a.merge))
}

// byID serves h with the request's {id} in its stored form
// (incident.Service.ResolveID): an ID typed in another case
// (inc-2026-0001) names the incident INC-2026-0001. An unknown ID is
// answered 404 here, before the body is read.
func (a *IncidentsAPI) byID(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := a.Service.ResolveID(r.Context(), r.PathValue("id"))
		if err != nil {
			ServiceError(w, err)
			return
		}
		r.SetPathValue("id", id)
		h(w, r)
	}
}

// ActionRequest is the body of the incident actions. Actor defaults to the
// basic-auth user name, then to "api".
type ActionRequest struct {
	Actor    string `json:"actor,omitempty"`
	Assignee string `json:"assignee,omitempty"`
	Note     string `json:"note,omitempty"`
	Text     string `json:"text,omitempty"`
	Impact   string `json:"impact,omitempty"`
	// GroupKey is the alert group to split out (split).
	GroupKey string `json:"group_key,omitempty"`
	// From is the incident to merge into this one (merge).
	From string `json:"from,omitempty"`
}

// ServiceError maps an incident service error to an HTTP answer: 400 for a
// refused value (a field over its limit), 404 for an unknown incident, 409
// for an invalid transition and for an addition past one of the incident's
// bounds (incident.FullError: MaxNotes, ...), 503 for store failures.
func ServiceError(w http.ResponseWriter, err error) {
	var te *incident.TransitionError
	switch {
	case errors.Is(err, incident.ErrInvalid):
		Error(w, http.StatusBadRequest, "bad_data", err)
	case errors.Is(err, incident.ErrNotFound), errors.Is(err, incident.ErrActionItemNotFound), errors.Is(err, incident.ErrGroupNotFound):
		Error(w, http.StatusNotFound, "not_found", err)
	case errors.As(err, &te), errors.Is(err, incident.ErrFull):
		Error(w, http.StatusConflict, "conflict", err)
	default:
		Error(w, http.StatusServiceUnavailable, "unavailable", err)
	}
}

func parseList(q map[string][]string, name string) []string {
	var out []string
	for _, v := range q[name] {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// ParseDuration reads a Prometheus duration (30m, 1h30m, 7d) as
// model.ParseDuration does. Its error quotes the value whole, so a value
// longer than limits.MaxEchoBytes is named cut (limits.Quote) instead.
func ParseDuration(s string) (model.Duration, error) {
	d, err := model.ParseDuration(s)
	if err != nil && len(s) > limits.MaxEchoBytes {
		return 0, fmt.Errorf("not a valid duration string: %s", limits.Quote(s))
	}
	return d, err
}

func parseTime(s string) (time.Time, error) {
	t, err := limits.ParseTime("value", s)
	if err != nil {
		var fe *limits.FieldError
		if errors.As(err, &fe) {
			return t, fe.Err
		}
	}
	return t, err
}

// filterParams are the query parameters ParseFilter reads.
var filterParams = []string{"status", "severity", "peak_severity", "service", "since", "until", "limit", "offset", "alerts"}

// ParseFilter reads list filters from a query string; a parameter it does
// not read, or a single-value one given twice, is an error naming it.
// status, severity and peak_severity take lists (given twice or separated
// by commas).
func ParseFilter(r *http.Request) (incident.Filter, error) {
	q := r.URL.Query()
	var f incident.Filter
	if err := onlyParams(q, filterParams...); err != nil {
		return f, err
	}
	if err := onceParams(q, "service", "since", "until", "limit", "offset", "alerts"); err != nil {
		return f, err
	}
	all := false
	for _, s := range parseList(q, "status") {
		st := incident.Status(strings.ToLower(s))
		switch st {
		case incident.StatusTriggered, incident.StatusAcknowledged, incident.StatusInvestigating,
			incident.StatusResolved, incident.StatusPostmortemDone:
			f.Status = append(f.Status, st)
		case "open":
			f.Status = append(f.Status, incident.StatusTriggered, incident.StatusAcknowledged, incident.StatusInvestigating)
		case "all":
			// Every status, as the console's incident list says it.
			all = true
		default:
			return f, fmt.Errorf("status: unknown status %s (want %s)", limits.Quote(s), incident.StatusFilterValues)
		}
	}
	if all {
		f.Status = nil
	}
	for _, s := range parseList(q, "severity") {
		sv, err := incident.ParseSeverity(s)
		if err != nil {
			return f, fmt.Errorf("severity: %w", err)
		}
		f.Severity = append(f.Severity, sv)
	}
	for _, s := range parseList(q, "peak_severity") {
		sv, err := incident.ParseSeverity(s)
		if err != nil {
			return f, fmt.Errorf("peak_severity: %w", err)
		}
		f.PeakSeverity = append(f.PeakSeverity, sv)
	}
	f.Service = q.Get("service")
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := q.Get(name); v != "" {
			t, err := parseTime(v)
			if err != nil {
				return f, fmt.Errorf("%s: %w", name, err)
			}
			*dst = t
		}
	}
	for name, dst := range map[string]*int{"limit": &f.Limit, "offset": &f.Offset} {
		if v := q.Get(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return f, fmt.Errorf("%s: want a non-negative integer, got %s", name, limits.Quote(v))
			}
			*dst = n
		}
	}
	if f.Limit > 1000 {
		return f, fmt.Errorf("limit: at most 1000, got %d", f.Limit)
	}
	if q.Get("limit") != "" && f.Limit == 0 {
		// ?limit=0 answered the default page of 50, where a client may
		// have meant "all".
		return f, errors.New("limit: want 1 to 1000 (default 50), got 0")
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		// A reversed window answered an empty list.
		return f, fmt.Errorf("until %s must be after since %s", f.Until.Format(time.RFC3339), f.Since.Format(time.RFC3339))
	}
	switch v := q.Get("alerts"); v {
	case "", "false":
	case "true":
		f.WithAlerts = true
	default:
		// ?alerts=1 or ?alerts=yes answered the incidents without them.
		return f, fmt.Errorf("alerts: want true or false, got %s", limits.Quote(v))
	}
	return f, nil
}

func (a *IncidentsAPI) list(w http.ResponseWriter, r *http.Request) {
	f, err := ParseFilter(r)
	if err != nil {
		Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	page, err := a.Service.List(r.Context(), f)
	if err != nil {
		ServiceError(w, err)
		return
	}
	JSON(w, http.StatusOK, page)
}

func (a *IncidentsAPI) get(w http.ResponseWriter, r *http.Request) {
	inc, err := a.Service.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		ServiceError(w, err)
		return
	}
	JSON(w, http.StatusOK, inc)
}

func (a *IncidentsAPI) timeline(w http.ResponseWriter, r *http.Request) {
	tl, err := a.Service.TimelineView(r.Context(), r.PathValue("id"))
	if err != nil {
		ServiceError(w, err)
		return
	}
	JSON(w, http.StatusOK, TimelineFor(r.Context(), tl))
}

// TimelineFor returns tl as the principal of ctx may read it: for a caller
// who is not an admin, the server's file paths in the message and data of
// each entry sred wrote itself (a runbook step's error, output and argv, a
// notification's or an escalation's error: MachineActor) are cut to their
// base names (auth.Redact). What alerts and people wrote (labels with URL
// paths, a responder's text) is left as it is. tl is not changed; an admin
// gets it as it is.
func TimelineFor(ctx context.Context, tl []incident.TimelineEntry) []incident.TimelineEntry {
	return auth.ViewEach(ctx, tl, func(e *incident.TimelineEntry) {
		if MachineActor(e.Actor) {
			auth.CutPaths(&e.Message)
			e.Data = auth.CutMap(e.Data)
		}
	})
}

// MachineActor tells the actors of the timeline entries sred writes from
// its own work ("sred", "sred:recovery", "runbook:<name>", the
// reconciler), whose text can hold the server's paths, from alerts and
// people.
func MachineActor(actor string) bool {
	return actor == "sred" || actor == "reconciler" || strings.HasPrefix(actor, "sred:") || strings.HasPrefix(actor, "runbook:")
}

// readAction decodes an optional action body; an empty body is allowed.
// The limits of the fields (incident.MaxActor, MaxNote, ...) are the
// service's: its actions refuse what is over them, whichever way they are
// called.
func readAction(w http.ResponseWriter, r *http.Request) (ActionRequest, bool) {
	var req ActionRequest
	if r.ContentLength != 0 {
		if err := DecodeJSON(w, r, &req); err != nil {
			if !(r.ContentLength < 0 && strings.Contains(err.Error(), "EOF")) {
				Error(w, http.StatusBadRequest, "bad_data", err)
				return req, false
			}
		}
	}
	req.Actor = actorOf(r, req.Actor)
	return req, true
}

func (a *IncidentsAPI) act(w http.ResponseWriter, r *http.Request, fn func(req ActionRequest, id string) (any, error)) {
	req, ok := readAction(w, r)
	if !ok {
		return
	}
	out, err := fn(req, r.PathValue("id"))
	if err != nil {
		var bad badRequest
		if errors.As(err, &bad) {
			Error(w, http.StatusBadRequest, "bad_data", err)
			return
		}
		ServiceError(w, err)
		return
	}
	JSON(w, http.StatusOK, out)
}

type badRequest struct{ error }

// export streams the incidents created since ?since= (all without it) as
// JSON lines, oldest first.
func (a *IncidentsAPI) export(w http.ResponseWriter, r *http.Request) {
	if err := onlyParams(r.URL.Query(), "since"); err != nil {
		Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	if err := onceParams(r.URL.Query(), "since"); err != nil {
		Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	var since time.Time
	if v := r.URL.Query().Get("since"); v != "" {
		t, err := parseTime(v)
		if err != nil {
			Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("since: %w", err))
			return
		}
		since = t
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	envelope.Private(w.Header())
	var view func(*incident.ExportRecord)
	if !auth.SeesPaths(r.Context()) {
		view = func(rec *incident.ExportRecord) {
			exportView(rec)
			a.Service.CutPartPaths(rec)
		}
	}
	if _, err := a.Service.ExportWith(r.Context(), since, w, view); err != nil {
		// The status line is sent: end the stream with the error as its
		// last line, which is not an incident record. The store's own
		// error is logged, not sent (as Error does).
		if store.Failed(err) {
			storeFailed(w, err)
			err = ErrStore
		}
		fmt.Fprintf(w, "{\"error\":%q}\n", auth.Redact(r.Context(), err.Error()))
	}
}

// exportView cuts the server's paths in the timeline entries sred wrote
// of an exported incident (as TimelineFor), for a reader who is not an
// admin: the export of a viewer holds what the timeline shows the viewer.
// The parts of other subsystems are cut by their own PathCutter
// (incident.Service.CutPartPaths).
func exportView(rec *incident.ExportRecord) {
	for i, e := range rec.Timeline {
		if MachineActor(e.Actor) {
			auth.CutPaths(&e.Message)
			e.Data = auth.CutJSON(e.Data)
			rec.Timeline[i] = e
		}
	}
}

// DefaultMaxImportBytes bounds one import request unless
// IncidentsAPI.MaxImportBytes says otherwise. Import streams the body, a
// line at a time (incident.MaxImportLineBytes each), writing batches as it
// goes: memory does not grow with the body, which is an export of a whole
// store when srectl moves one (docs/storage.md).
const DefaultMaxImportBytes = 1 << 30

// importLines imports JSON lines of incidents (an export). A body over
// the import bound or a line over incident.MaxImportLineBytes is a 413; the
// lines before it stay imported, as they do before a refused line.
func (a *IncidentsAPI) importLines(w http.ResponseWriter, r *http.Request) {
	res, err := a.Service.Import(r.Context(), http.MaxBytesReader(w, r.Body, a.maxImportBytes()))
	if err != nil {
		code, typ := http.StatusBadRequest, "bad_data"
		var (
			taken *incident.IDTakenError
			clash *incident.IDCaseError
			mbe   *http.MaxBytesError
			long  *incident.ImportLineError
		)
		switch {
		case errors.As(err, &taken), errors.As(err, &clash):
			code, typ = http.StatusConflict, "conflict"
		case errors.As(err, &mbe):
			code = http.StatusRequestEntityTooLarge
			err = fmt.Errorf("request body larger than %d bytes", mbe.Limit)
		case errors.As(err, &long):
			code = http.StatusRequestEntityTooLarge
		}
		Error(w, code, typ, fmt.Errorf("%w (imported %d, skipped %d before it)", err, res.Imported, res.Skipped))
		return
	}
	JSON(w, http.StatusOK, res)
}

// split moves an alert group out of the incident into one of its own.
func (a *IncidentsAPI) split(w http.ResponseWriter, r *http.Request) {
	a.act(w, r, func(req ActionRequest, id string) (any, error) {
		if strings.TrimSpace(req.GroupKey) == "" {
			return nil, badRequest{errors.New(`"group_key" must name the alert group to split out`)}
		}
		return a.Service.Split(r.Context(), id, req.GroupKey, req.Actor)
	})
}

// merge merges the incident named by "from" into this one.
func (a *IncidentsAPI) merge(w http.ResponseWriter, r *http.Request) {
	a.act(w, r, func(req ActionRequest, id string) (any, error) {
		if strings.TrimSpace(req.From) == "" {
			return nil, badRequest{errors.New(`"from" must name the incident to merge into this one`)}
		}
		from, err := a.Service.ResolveID(r.Context(), req.From)
		if err != nil {
			return nil, err
		}
		if from == id {
			return nil, badRequest{errors.New(`"from" names this incident: an incident cannot be merged into itself`)}
		}
		return a.Service.Merge(r.Context(), id, from, req.Actor)
	})
}

func (a *IncidentsAPI) ack(w http.ResponseWriter, r *http.Request) {
	a.act(w, r, func(req ActionRequest, id string) (any, error) {
		return a.Service.Acknowledge(r.Context(), id, req.Actor)
	})
}

func (a *IncidentsAPI) investigate(w http.ResponseWriter, r *http.Request) {
	a.act(w, r, func(req ActionRequest, id string) (any, error) {
		return a.Service.Investigate(r.Context(), id, req.Actor, req.Assignee)
	})
}

func (a *IncidentsAPI) assign(w http.ResponseWriter, r *http.Request) {
	a.act(w, r, func(req ActionRequest, id string) (any, error) {
		if strings.TrimSpace(req.Assignee) == "" {
			return nil, badRequest{errors.New(`"assignee" must not be empty`)}
		}
		return a.Service.Assign(r.Context(), id, req.Actor, req.Assignee)
	})
}

func (a *IncidentsAPI) resolve(w http.ResponseWriter, r *http.Request) {
	a.act(w, r, func(req ActionRequest, id string) (any, error) {
		return a.Service.Resolve(r.Context(), id, req.Actor, req.Note)
	})
}

// SnoozeRequest is the body of POST /api/v1/incidents/{id}/snooze.
type SnoozeRequest struct {
	Actor string `json:"actor,omitempty"`
	// Duration is a Prometheus duration ("30m", "2h", "1d").
	Duration string `json:"duration"`
}

func (a *IncidentsAPI) snooze(w http.ResponseWriter, r *http.Request) {
	var req SnoozeRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New(`missing body: want {"duration": "30m"}`)
		}
		Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	if req.Duration == "" {
		Error(w, http.StatusBadRequest, "bad_data", errors.New(`"duration" is required, e.g. "30m"`))
		return
	}
	d, err := ParseDuration(req.Duration)
	if err != nil {
		Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf(`"duration": %w`, err))
		return
	}
	if time.Duration(d) < incident.MinSnooze || time.Duration(d) > incident.MaxSnooze {
		Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf(`"duration" must be between %s and %s, got %s`,
			model.Duration(incident.MinSnooze), model.Duration(incident.MaxSnooze), d))
		return
	}
	inc, err := a.Service.Snooze(r.Context(), r.PathValue("id"), actorOf(r, req.Actor), time.Duration(d))
	if err != nil {
		ServiceError(w, err)
		return
	}
	JSON(w, http.StatusOK, inc)
}

func (a *IncidentsAPI) note(w http.ResponseWriter, r *http.Request) {
	a.act(w, r, func(req ActionRequest, id string) (any, error) {
		if strings.TrimSpace(req.Text) == "" {
			return nil, badRequest{errors.New(`"text" must not be empty`)}
		}
		return a.Service.AddNote(r.Context(), id, req.Actor, req.Text)
	})
}

func (a *IncidentsAPI) impact(w http.ResponseWriter, r *http.Request) {
	a.act(w, r, func(req ActionRequest, id string) (any, error) {
		if strings.TrimSpace(req.Impact) == "" {
			return nil, badRequest{errors.New(`"impact" must not be empty`)}
		}
		return a.Service.SetImpact(r.Context(), id, req.Actor, req.Impact)
	})
}

func (a *IncidentsAPI) postmortemDone(w http.ResponseWriter, r *http.Request) {
	a.act(w, r, func(req ActionRequest, id string) (any, error) {
		return a.Service.CompletePostmortem(r.Context(), id, req.Actor)
	})
}

func (a *IncidentsAPI) postmortem(w http.ResponseWriter, r *http.Request) {
	// A misspelt ?format=md or ?fromat=markdown answered the JSON draft.
	q := r.URL.Query()
	if err := CheckParams(q, "format"); err != nil {
		Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	switch f := q.Get("format"); f {
	case "", "json", "markdown":
	default:
		Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("format %s: want markdown or json", limits.Quote(f)))
		return
	}
	pm, err := a.Service.PostmortemWith(r.Context(), r.PathValue("id"), func(tl []incident.TimelineEntry) []incident.TimelineEntry {
		return TimelineFor(r.Context(), tl)
	})
	if err != nil {
		ServiceError(w, err)
		return
	}
	if q.Get("format") == "markdown" {
		w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
		envelope.Private(w.Header())
		_, _ = w.Write([]byte(pm.Markdown))
		return
	}
	JSON(w, http.StatusOK, pm)
}

func (a *IncidentsAPI) actionItems(w http.ResponseWriter, r *http.Request) {
	items, err := a.Service.ActionItems(r.Context(), r.PathValue("id"))
	if err != nil {
		ServiceError(w, err)
		return
	}
	JSON(w, http.StatusOK, items)
}

// ActionItemRequest is the body of POST and PATCH on action items.
type ActionItemRequest struct {
	Actor string  `json:"actor,omitempty"`
	Title *string `json:"title,omitempty"`
	Owner *string `json:"owner,omitempty"`
	State *string `json:"state,omitempty"`
	// Due is an RFC 3339 time (POST only).
	Due string `json:"due,omitempty"`
}

// actorOf returns who acted: the authenticated user; the body's actor field
// only in the no-auth mode (see auth.ActorOf).
func actorOf(r *http.Request, actor string) string {
	return auth.ActorOf(r.Context(), strings.TrimSpace(actor), "api")
}

func (a *IncidentsAPI) addActionItem(w http.ResponseWriter, r *http.Request) {
	var req ActionItemRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	item := incident.ActionItem{}
	if req.Title != nil {
		item.Title = *req.Title
	}
	if req.Owner != nil {
		item.Owner = *req.Owner
	}
	if req.State != nil {
		item.State = incident.ActionItemState(*req.State)
	}
	if req.Due != "" {
		t, err := parseTime(req.Due)
		if err != nil {
			Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("due: %w", err))
			return
		}
		item.DueAt = &t
	}
	if strings.TrimSpace(item.Title) == "" {
		Error(w, http.StatusBadRequest, "bad_data", errors.New(`"title" must not be empty`))
		return
	}
	if item.State != "" {
		if _, err := incident.ParseActionItemState(string(item.State)); err != nil {
			Error(w, http.StatusBadRequest, "bad_data", err)
			return
		}
	}
	out, err := a.Service.AddActionItem(r.Context(), r.PathValue("id"), actorOf(r, req.Actor), item)
	if err != nil {
		ServiceError(w, err)
		return
	}
	JSON(w, http.StatusCreated, out)
}

func (a *IncidentsAPI) updateActionItem(w http.ResponseWriter, r *http.Request) {
	itemID, err := strconv.ParseInt(r.PathValue("item"), 10, 64)
	if err != nil || itemID <= 0 {
		Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("invalid action item id %s", limits.Quote(r.PathValue("item"))))
		return
	}
	var req ActionItemRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	if req.Due != "" {
		// Nothing updates a due date: taken and ignored, the caller would
		// believe it set (and the rest of the body applied).
		Error(w, http.StatusBadRequest, "bad_data", errors.New(`"due" is set when the action item is created (POST) and cannot be changed: leave it out`))
		return
	}
	u := incident.ActionItemUpdate{Owner: req.Owner, Title: req.Title}
	if req.State != nil {
		st, err := incident.ParseActionItemState(*req.State)
		if err != nil {
			Error(w, http.StatusBadRequest, "bad_data", err)
			return
		}
		u.State = &st
	}
	if req.Title != nil && strings.TrimSpace(*req.Title) == "" {
		Error(w, http.StatusBadRequest, "bad_data", errors.New(`"title" must not be empty`))
		return
	}
	out, err := a.Service.UpdateActionItem(r.Context(), r.PathValue("id"), itemID, actorOf(r, req.Actor), u)
	if err != nil {
		ServiceError(w, err)
		return
	}
	JSON(w, http.StatusOK, out)
}

// StatusUpdateRequest is the body of POST .../status-updates.
type StatusUpdateRequest struct {
	Actor   string `json:"actor,omitempty"`
	Impact  string `json:"impact,omitempty"`
	Actions string `json:"actions,omitempty"`
	// NextUpdate is an RFC 3339 time or a duration from now ("30m").
	NextUpdate string `json:"next_update,omitempty"`
	StatusPage string `json:"status_page,omitempty"`
	// Public shows the update on the public status page, as
	// PublicMessage (default: the impact and actions).
	Public        bool   `json:"public,omitempty"`
	PublicMessage string `json:"public_message,omitempty"`
}

func (a *IncidentsAPI) statusUpdate(w http.ResponseWriter, r *http.Request) {
	var req StatusUpdateRequest
	// An empty body posts the template with its defaults.
	if r.ContentLength != 0 {
		if err := DecodeJSON(w, r, &req); err != nil && !(r.ContentLength < 0 && errors.Is(err, io.EOF)) {
			Error(w, http.StatusBadRequest, "bad_data", err)
			return
		}
	}
	if req.PublicMessage != "" && !req.Public {
		Error(w, http.StatusBadRequest, "bad_data", errors.New("public_message: set public: true to publish it on the status page"))
		return
	}
	u := incident.StatusUpdate{Actor: actorOf(r, req.Actor), Impact: req.Impact, Actions: req.Actions, StatusPage: req.StatusPage,
		Public: req.Public, PublicMessage: req.PublicMessage}
	if req.NextUpdate != "" {
		if d, err := time.ParseDuration(req.NextUpdate); err == nil && d > 0 {
			u.NextUpdate = a.Service.Clock.Now().Add(d).UTC()
		} else if t, err := limits.ParseTime("next_update", req.NextUpdate); err == nil {
			u.NextUpdate = t
		} else {
			Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("next_update: cannot parse %s as a duration or RFC 3339 time", limits.Quote(req.NextUpdate)))
			return
		}
	}
	text, err := a.Service.PostStatusUpdate(r.Context(), r.PathValue("id"), u)
	if err != nil {
		ServiceError(w, err)
		return
	}
	JSON(w, http.StatusCreated, map[string]string{"text": text})
}

// CreateRequest is the body of POST /api/v1/incidents: an incident opened
// by hand.
type CreateRequest struct {
	Title       string `json:"title"`
	Service     string `json:"service"`
	Severity    string `json:"severity"`
	Description string `json:"description,omitempty"`
	// Actor is used only without an authenticated principal.
	Actor string `json:"actor,omitempty"`
}

func (a *IncidentsAPI) create(w http.ResponseWriter, r *http.Request) {
	p, authed := auth.FromContext(r.Context())
	if authed && !p.Role.Allows(auth.RoleResponder) {
		Error(w, http.StatusForbidden, "forbidden", fmt.Errorf("opening an incident needs the responder role; %q is %s", p.Name, p.Role))
		return
	}
	var req CreateRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New(`missing body: want {"title": ..., "service": ..., "severity": ...}`)
		}
		Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	actor := actorOf(r, req.Actor)
	if authed && p.Name != "" {
		actor = p.Name
	}
	m := incident.ManualIncident{Title: req.Title, Service: req.Service, Severity: incident.Severity(req.Severity),
		Description: req.Description, Actor: actor}
	if err := m.Check(); err != nil {
		Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	inc, err := a.Service.Create(r.Context(), m)
	if err != nil {
		ServiceError(w, err)
		return
	}
	w.Header().Set("Location", "/api/v1/incidents/"+inc.ID)
	JSON(w, http.StatusCreated, inc)
}
