package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/incident"
)

// IncidentsAPI serves /api/v1/incidents (see docs/api.md).
type IncidentsAPI struct {
	Service *incident.Service
}

// Register mounts the routes on mux.
func (a *IncidentsAPI) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/incidents", a.list)
	mux.HandleFunc("GET /api/v1/incidents/{id}", a.get)
	mux.HandleFunc("GET /api/v1/incidents/{id}/timeline", a.timeline)
	mux.HandleFunc("POST /api/v1/incidents/{id}/ack", a.ack)
	mux.HandleFunc("POST /api/v1/incidents/{id}/investigate", a.investigate)
	mux.HandleFunc("POST /api/v1/incidents/{id}/assign", a.assign)
	mux.HandleFunc("POST /api/v1/incidents/{id}/resolve", a.resolve)
	mux.HandleFunc("POST /api/v1/incidents/{id}/notes", a.note)
	mux.HandleFunc("POST /api/v1/incidents/{id}/impact", a.impact)
	mux.HandleFunc("POST /api/v1/incidents/{id}/postmortem/complete", a.postmortemDone)
}

// ActionRequest is the body of the incident actions. Actor defaults to the
// basic-auth user name, then to "api".
type ActionRequest struct {
	Actor    string `json:"actor,omitempty"`
	Assignee string `json:"assignee,omitempty"`
	Note     string `json:"note,omitempty"`
	Text     string `json:"text,omitempty"`
	Impact   string `json:"impact,omitempty"`
}

const maxActionBody = 64 << 10

// ServiceError maps an incident service error to an HTTP answer: 404 for an
// unknown incident, 409 for an invalid transition, 503 for store failures.
func ServiceError(w http.ResponseWriter, err error) {
	var te *incident.TransitionError
	switch {
	case errors.Is(err, incident.ErrNotFound):
		Error(w, http.StatusNotFound, "not_found", err)
	case errors.As(err, &te):
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

func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.UnixMilli(int64(f * 1000)).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q as RFC 3339 time or unix timestamp", s)
}

// ParseFilter reads list filters from a query string.
func ParseFilter(r *http.Request) (incident.Filter, error) {
	q := r.URL.Query()
	var f incident.Filter
	for _, s := range parseList(q, "status") {
		st := incident.Status(strings.ToLower(s))
		switch st {
		case incident.StatusTriggered, incident.StatusAcknowledged, incident.StatusInvestigating,
			incident.StatusResolved, incident.StatusPostmortemDone:
			f.Status = append(f.Status, st)
		case "open":
			f.Status = append(f.Status, incident.StatusTriggered, incident.StatusAcknowledged, incident.StatusInvestigating)
		default:
			return f, fmt.Errorf("unknown status %q", s)
		}
	}
	for _, s := range parseList(q, "severity") {
		sv, err := incident.ParseSeverity(s)
		if err != nil {
			return f, err
		}
		f.Severity = append(f.Severity, sv)
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
				return f, fmt.Errorf("%s: want a non-negative integer, got %q", name, v)
			}
			*dst = n
		}
	}
	if f.Limit > 1000 {
		return f, fmt.Errorf("limit: at most 1000, got %d", f.Limit)
	}
	f.WithAlerts = q.Get("alerts") == "true"
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
	tl, err := a.Service.Timeline(r.Context(), r.PathValue("id"))
	if err != nil {
		ServiceError(w, err)
		return
	}
	JSON(w, http.StatusOK, tl)
}

// readAction decodes an optional action body; an empty body is allowed.
func readAction(w http.ResponseWriter, r *http.Request) (ActionRequest, bool) {
	var req ActionRequest
	if r.ContentLength != 0 {
		if err := DecodeJSON(w, r, maxActionBody, &req); err != nil {
			if !(r.ContentLength < 0 && strings.Contains(err.Error(), "EOF")) {
				Error(w, http.StatusBadRequest, "bad_data", err)
				return req, false
			}
		}
	}
	if req.Actor == "" {
		if u, _, ok := r.BasicAuth(); ok && u != "" {
			req.Actor = u
		} else {
			req.Actor = "api"
		}
	}
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
		return a.Service.SetImpact(r.Context(), id, req.Actor, req.Impact)
	})
}

func (a *IncidentsAPI) postmortemDone(w http.ResponseWriter, r *http.Request) {
	a.act(w, r, func(req ActionRequest, id string) (any, error) {
		return a.Service.CompletePostmortem(r.Context(), id, req.Actor)
	})
}
