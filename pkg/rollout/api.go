package rollout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/web"
)

// Routes mounts the rollout API (docs/rollout-runner.md) on mux.
func (s *Service) Routes(mux *http.ServeMux, noAuth bool) {
	h := handlers{s: s, noAuth: noAuth}
	mux.HandleFunc("GET /api/v1/rollouts/definitions", h.need(auth.RoleViewer, h.definitions))
	mux.HandleFunc("GET /api/v1/rollouts", h.need(auth.RoleViewer, h.list))
	mux.HandleFunc("POST /api/v1/rollouts", h.need(auth.RoleAdmin, h.run))
	mux.HandleFunc("GET /api/v1/rollouts/{id}", h.need(auth.RoleViewer, h.get))
	mux.HandleFunc("POST /api/v1/rollouts/{id}/promote", h.need(auth.RoleAdmin, h.op(s.Promote)))
	mux.HandleFunc("POST /api/v1/rollouts/{id}/pause", h.need(auth.RoleResponder, h.op(s.Pause)))
	mux.HandleFunc("POST /api/v1/rollouts/{id}/abort", h.need(auth.RoleResponder, h.op(s.Abort)))
}

type handlers struct {
	s      *Service
	noAuth bool
}

// need checks the caller's role; without a principal the request is
// refused unless the app runs in the explicit no-auth mode.
func (h handlers) need(min auth.Role, fn func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := auth.FromContext(r.Context())
		switch {
		case !ok && h.noAuth:
			p = auth.Principal{Name: "anonymous", Role: auth.RoleAdmin, NoAuth: true}
		case !ok:
			web.Error(w, http.StatusUnauthorized, "unauthorized", errors.New("authentication required"))
			return
		case !p.Role.Allows(min):
			web.Error(w, http.StatusForbidden, "forbidden", fmt.Errorf("role %s may not do this (needs %s)", p.Role, min))
			return
		}
		fn(w, r, p.Name)
	}
}

func writeErr(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		web.Error(w, http.StatusNotFound, "not_found", err)
	case errors.Is(err, ErrBadRequest):
		web.Error(w, http.StatusBadRequest, "bad_data", err)
	case errors.Is(err, ErrConflict):
		web.Error(w, http.StatusConflict, "conflict", err)
	default:
		web.Error(w, http.StatusInternalServerError, "internal", err)
	}
}

// DefinitionSummary is one loaded definition.
type DefinitionSummary struct {
	Name        string       `json:"name"`
	Description string       `json:"description,omitempty"`
	Service     string       `json:"service"`
	Environment string       `json:"environment"`
	Strategy    string       `json:"strategy"`
	Analysis    *AnalysisRef `json:"analysis,omitempty"`
	Stages      []Stage      `json:"stages"`
	File        string       `json:"file"`
}

func (h handlers) definitions(w http.ResponseWriter, r *http.Request, _ string) {
	out := []DefinitionSummary{}
	for _, d := range h.s.Definitions() {
		out = append(out, DefinitionSummary{d.Name, d.Description, d.Service, d.Environment, d.Strategy(), d.Analysis, d.Plan(), auth.FilePath(r.Context(), d.File)})
	}
	web.JSON(w, http.StatusOK, out)
}

// listParams are the query parameters of GET /api/v1/rollouts.
var listParams = []string{"active", "name", "limit"}

func (h handlers) list(w http.ResponseWriter, r *http.Request, _ string) {
	q := r.URL.Query()
	if err := web.CheckParams(q, listParams...); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	f := ListFilter{Name: q.Get("name")}
	if v := q.Get("active"); v != "" {
		// ?active=1 or yes read as false: every rollout, as a typo did.
		b, err := strconv.ParseBool(v)
		if err != nil {
			web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("active: want true or false, got %s", limits.Quote(v)))
			return
		}
		f.Active = b
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("limit: want an integer from 1 to 1000, got %s", limits.Quote(v)))
			return
		}
		f.Limit = n
	}
	out, err := h.s.List(r.Context(), f)
	if err != nil {
		writeErr(w, err)
		return
	}
	if out == nil {
		out = []*Rollout{}
	}
	for i, ro := range out {
		out[i] = RolloutFor(r.Context(), ro)
	}
	web.JSON(w, http.StatusOK, out)
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := web.ReadBody(w, r)
	if err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("read body: %w", err))
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return true
	}
	// Strict, as the other API bodies: one JSON value, and no text the
	// store cannot keep (a NUL byte fails a PostgreSQL insert).
	err = web.UnmarshalStrict(body, v)
	if err == nil {
		err = limits.Check(v)
	}
	if err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("body: %w", err))
		return false
	}
	return true
}

// run starts a rollout: {"name": ..., "version": ..., "stable": ...}. A
// rollout the gate denied or a held lock refused is answered 409 with the
// reason (the rollout is recorded: GET /api/v1/rollouts/{id}).
func (h handlers) run(w http.ResponseWriter, r *http.Request, actor string) {
	var req StartRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Name == "" || req.Version == "" {
		web.Error(w, http.StatusBadRequest, "bad_data", errors.New(`body: want {"name": "<definition>", "version": "<new version>"} (and "stable")`))
		return
	}
	req.Actor = actor
	ro, err := h.s.Start(r.Context(), req)
	if err != nil {
		writeErr(w, err)
		return
	}
	if ro.State == StateDenied || ro.State == StateRefused {
		web.Error(w, http.StatusConflict, "conflict", fmt.Errorf("rollout %d %s: %s", ro.ID, ro.State, ro.Reason))
		return
	}
	web.JSON(w, http.StatusAccepted, RolloutFor(r.Context(), ro))
}

func pathID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("rollout id %s: want a positive integer", limits.Quote(r.PathValue("id"))))
		return 0, false
	}
	return id, true
}

func (h handlers) get(w http.ResponseWriter, r *http.Request, _ string) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	ro, err := h.s.Get(r.Context(), id)
	if err != nil {
		writeErr(w, err)
		return
	}
	web.JSON(w, http.StatusOK, RolloutFor(r.Context(), ro))
}

// RolloutFor returns ro as the principal of ctx may read it: for a caller
// who is not an admin, the server's file paths in its reason and in the
// message and detail of the events sred wrote (SredActor: an action's
// error, output and argv, "fork/exec /usr/local/bin/set-weight: ...";
// the deploy gate's reason and the analysis' error, Prometheus' error
// naming a credentials file) are cut to their base names (auth.Redact).
// What people wrote (a reason given to pause or abort) is left as it is.
// ro is not changed; an admin gets it as it is.
func RolloutFor(ctx context.Context, ro *Rollout) *Rollout {
	return auth.View(ctx, ro, func(c *Rollout) {
		auth.CutPaths(&c.Reason)
		if c.Events != nil {
			c.Events = auth.CutEach(c.Events, func(e *Event) {
				if SredActor(e.Actor) {
					auth.CutPaths(&e.Message)
					e.Detail = auth.CutMap(e.Detail)
				}
			})
		}
	})
}

// SredActor tells the actors of the events sred writes from its own work
// ("system": the stages and actions; "gate": the deploy gate's answer;
// "analysis": a stage's analysis), whose text can hold the server's
// paths, from the people who start, pause, promote and abort rollouts.
func SredActor(actor string) bool {
	return actor == "system" || actor == "gate" || actor == "analysis"
}

// OpRequest is the optional body of promote, pause and abort.
type OpRequest struct {
	Reason string `json:"reason,omitempty"`
}

func (h handlers) op(fn func(context.Context, int64, string, string) (*Rollout, error)) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, r *http.Request, actor string) {
		id, ok := pathID(w, r)
		if !ok {
			return
		}
		var req OpRequest
		if !decodeBody(w, r, &req) {
			return
		}
		ro, err := fn(r.Context(), id, actor, req.Reason)
		if err != nil {
			writeErr(w, err)
			return
		}
		web.JSON(w, http.StatusOK, RolloutFor(r.Context(), ro))
	}
}
