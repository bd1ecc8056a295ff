// Package statusupdate posts incident status updates: text rendered from
// the configured template (incidents.status_update_template, by default the
// guide's "Incident Status Updates" template) with the incident's fields and
// what the responder says, recorded in the incident's timeline and published
// on the event stream for notifiers and the UI.
package statusupdate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/web"
)

// Path is the status-update route.
const Path = "/api/v1/incidents/{id}/status-update"

// Request is the body of POST /api/v1/incidents/{id}/status-update.
type Request struct {
	Actor string `json:"actor,omitempty"`
	// Impact overrides the incident's impact statement for this update.
	Impact string `json:"impact,omitempty"`
	// Actions says what responders are doing.
	Actions string `json:"actions,omitempty"`
	// NextUpdate is an RFC 3339 time or a duration from now ("30m").
	NextUpdate string `json:"next_update,omitempty"`
	// StatusPage links to the public status page.
	StatusPage string `json:"status_page,omitempty"`
}

// Update is a posted status update.
type Update struct {
	IncidentID string    `json:"incident_id"`
	Text       string    `json:"text"`
	Actor      string    `json:"actor"`
	Time       time.Time `json:"time"`
}

const maxField = 2000

// Post renders a status update for incident id and records it in the
// timeline (kind "status_update").
func Post(ctx context.Context, svc *incident.Service, id string, req Request, now time.Time) (*Update, error) {
	for name, v := range map[string]string{"impact": req.Impact, "actions": req.Actions, "status_page": req.StatusPage} {
		if len(v) > maxField {
			return nil, badRequest{fmt.Errorf("%q is longer than %d bytes", name, maxField)}
		}
	}
	var next time.Time
	if s := strings.TrimSpace(req.NextUpdate); s != "" {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			next = t
		} else if d, err := model.ParseDuration(s); err == nil {
			next = now.Add(time.Duration(d))
		} else {
			return nil, badRequest{fmt.Errorf(`"next_update" %q is neither an RFC 3339 time nor a duration like 30m`, s)}
		}
	}
	inc, err := svc.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	opts := svc.Options()
	url := ""
	if opts.ExternalURL != "" {
		url = strings.TrimRight(opts.ExternalURL, "/") + "/api/v1/incidents/" + inc.ID
	}
	text, err := incident.RenderStatusUpdate(opts.StatusUpdateTemplate, incident.StatusUpdateData{
		Incident: inc, Impact: strings.TrimSpace(req.Impact), Actions: strings.TrimSpace(req.Actions),
		NextUpdate: next, StatusPage: strings.TrimSpace(req.StatusPage), URL: url,
	})
	if err != nil {
		return nil, fmt.Errorf("render status update of %s: %w", id, err)
	}
	u := &Update{IncidentID: inc.ID, Text: text, Actor: req.Actor, Time: now.UTC()}
	if err := svc.AddTimeline(ctx, nil, incident.TimelineEntry{IncidentID: inc.ID, Time: u.Time, Kind: "status_update",
		Actor: req.Actor, Message: text}); err != nil {
		return nil, err
	}
	return u, nil
}

type badRequest struct{ error }

// Handler serves POST /api/v1/incidents/{id}/status-update.
type Handler struct {
	Service *incident.Service
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Register mounts the route on mux.
func (h *Handler) Register(mux *http.ServeMux) { mux.Handle("POST "+Path, h) }

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req Request
	if err := web.DecodeJSON(w, r, 64<<10, &req); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	if req.Actor == "" {
		if u, _, ok := r.BasicAuth(); ok && u != "" {
			req.Actor = u
		} else {
			req.Actor = "api"
		}
	}
	now := time.Now()
	if h.Now != nil {
		now = h.Now()
	}
	u, err := Post(r.Context(), h.Service, r.PathValue("id"), req, now)
	if err != nil {
		var bad badRequest
		if errors.As(err, &bad) {
			web.Error(w, http.StatusBadRequest, "bad_data", err)
			return
		}
		web.ServiceError(w, err)
		return
	}
	web.JSON(w, http.StatusOK, u)
}
