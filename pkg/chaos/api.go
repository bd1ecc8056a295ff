package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/envelope"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/runbook"
	"github.com/rootuip/sre/pkg/web"
)

// Routes mounts the chaos API (see docs/chaos.md) on mux.
func (s *Service) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/chaos/experiments", s.need(auth.RoleViewer, s.handleExperiments))
	mux.HandleFunc("POST /api/v1/chaos/validate", s.need(auth.RoleViewer, s.handleValidate))
	mux.HandleFunc("GET /api/v1/chaos/experiments/{name}/plan", s.need(auth.RoleViewer, s.handlePlan))
	mux.HandleFunc("POST /api/v1/chaos/experiments/{name}/run", s.need(auth.RoleAdmin, s.handleRun))
	mux.HandleFunc("GET /api/v1/chaos/runs", s.need(auth.RoleViewer, s.handleRuns))
	mux.HandleFunc("GET /api/v1/chaos/runs/{id}", s.need(auth.RoleViewer, s.handleStatus))
	mux.HandleFunc("POST /api/v1/chaos/runs/{id}/stop", s.need(auth.RoleAdmin, s.handleStop))
	mux.HandleFunc("POST /api/v1/chaos/runs/{id}/approve", s.needP(auth.RoleResponder, s.handleApprove))
	mux.HandleFunc("GET /api/v1/chaos/runs/{id}/report", s.need(auth.RoleViewer, s.handleReport))
	mux.HandleFunc("POST /api/v1/chaos/halt", s.need(auth.RoleAdmin, s.handleHalt))
}

// need checks the caller's role. Without a principal in the context the
// request is refused unless the app runs in the explicit no-auth mode.
func (s *Service) need(min auth.Role, h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return s.needP(min, func(w http.ResponseWriter, r *http.Request, p auth.Principal) { h(w, r, p.Name) })
}

// needP is need for handlers that need the caller's role too.
func (s *Service) needP(min auth.Role, h func(http.ResponseWriter, *http.Request, auth.Principal)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := auth.FromContext(r.Context())
		switch {
		case !ok && s.o.NoAuth:
			p = auth.Principal{Name: "anonymous", Role: auth.RoleAdmin, NoAuth: true}
		case !ok:
			web.Error(w, http.StatusUnauthorized, "unauthorized", errors.New("authentication required"))
			return
		case !p.Role.Allows(min):
			web.Error(w, http.StatusForbidden, "forbidden", fmt.Errorf("role %s may not do this (needs %s)", p.Role, min))
			return
		}
		h(w, r, p)
	}
}

// ExperimentSummary is one loaded experiment.
type ExperimentSummary struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Service     string `json:"service"`
	Environment string `json:"environment"`
	Duration    string `json:"duration"`
	Faults      int    `json:"faults"`
	File        string `json:"file"`
}

func (s *Service) handleExperiments(w http.ResponseWriter, r *http.Request, _ string) {
	out := []ExperimentSummary{}
	for _, e := range s.Experiments() {
		out = append(out, ExperimentSummary{e.Name, e.Description, e.Target.Service, e.Target.Environment, e.Duration.String(), len(e.Faults), auth.FilePath(r.Context(), e.File)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	web.JSON(w, http.StatusOK, out)
}

// ValidateResult answers POST /api/v1/chaos/validate.
type ValidateResult struct {
	Valid      bool        `json:"valid"`
	Error      string      `json:"error,omitempty"`
	Experiment *Experiment `json:"experiment,omitempty"`
	Plan       *Plan       `json:"plan,omitempty"`
}

// handleValidate checks an experiment file sent as the body (YAML) and plans it.
func (s *Service) handleValidate(w http.ResponseWriter, r *http.Request, _ string) {
	body, err := web.ReadBody(w, r)
	if err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("read body: %w", err))
		return
	}
	e, err := Parse(body, "request body")
	if err == nil {
		err = CheckHost(e)
	}
	if err != nil {
		web.JSON(w, http.StatusOK, ValidateResult{Valid: false, Error: auth.Redact(r.Context(), err.Error())})
		return
	}
	p, err := s.Plan(r.Context(), e)
	if err != nil {
		web.Error(w, http.StatusServiceUnavailable, "unavailable", err)
		return
	}
	web.JSON(w, http.StatusOK, ValidateResult{Valid: true, Experiment: e, Plan: PlanFor(r.Context(), p)})
}

func (s *Service) experiment(w http.ResponseWriter, r *http.Request) *Experiment {
	name := r.PathValue("name")
	e, ok := s.Experiment(name)
	if !ok {
		web.Error(w, http.StatusNotFound, "not_found", fmt.Errorf("no experiment %s is loaded (see chaos.experiment_files)", limits.Quote(name)))
		return nil
	}
	return e
}

func (s *Service) handlePlan(w http.ResponseWriter, r *http.Request, _ string) {
	e := s.experiment(w, r)
	if e == nil {
		return
	}
	p, err := s.Plan(r.Context(), e)
	if err != nil {
		web.Error(w, http.StatusServiceUnavailable, "unavailable", err)
		return
	}
	web.JSON(w, http.StatusOK, PlanFor(r.Context(), p))
}

// RefusedResult is the body of a refused run (409).
type RefusedResult struct {
	Run     *RunInfo `json:"run"`
	Reasons []string `json:"reasons"`
}

func (s *Service) handleRun(w http.ResponseWriter, r *http.Request, actor string) {
	e := s.experiment(w, r)
	if e == nil {
		return
	}
	// The experiment file is the whole run: a parameter or body asking
	// for less (?dry_run=true, {"duration": "10s"}) was ignored, and the
	// faults injected in full.
	if err := noRunInput(w, r); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("%w: the experiment file defines the run; GET /api/v1/chaos/experiments/%s/plan shows what it would do", err, e.Name))
		return
	}
	info, err := s.Start(r.Context(), e, actor)
	var ref *Refusal
	switch {
	case errors.As(err, &ref):
		envelope.ErrorData(w, http.StatusConflict, "refused", "refused: "+strings.Join(ref.Reasons, "; "), RefusedResult{Run: info, Reasons: ref.Reasons})
	case err != nil:
		web.Error(w, http.StatusInternalServerError, "internal", err)
	default:
		web.JSON(w, http.StatusAccepted, info)
	}
}

// noRunInput refuses a query parameter or a body (but white space) on a
// route that takes neither.
func noRunInput(w http.ResponseWriter, r *http.Request) error {
	if err := web.CheckParams(r.URL.Query()); err != nil {
		return err
	}
	body, err := web.ReadBody(w, r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) > 0 {
		return fmt.Errorf("the route takes no body, got %d bytes", len(body))
	}
	return nil
}

func (s *Service) handleRuns(w http.ResponseWriter, r *http.Request, _ string) {
	// A misspelt ?limt=5 answered every run.
	if err := web.CheckParams(r.URL.Query(), "limit"); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("limit %s: want an integer between 1 and 1000", limits.Quote(v)))
			return
		}
		limit = n
	}
	runs, err := s.List(r.Context(), limit)
	if err != nil {
		web.Error(w, http.StatusInternalServerError, "internal", err)
		return
	}
	out := make([]*RunInfo, len(runs))
	for i := range runs {
		out[i] = RunFor(r.Context(), &runs[i])
	}
	web.JSON(w, http.StatusOK, out)
}

func (s *Service) handleStatus(w http.ResponseWriter, r *http.Request, _ string) {
	info, err := s.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		web.Error(w, http.StatusNotFound, "not_found", err)
		return
	}
	if err != nil {
		web.Error(w, http.StatusInternalServerError, "internal", err)
		return
	}
	web.JSON(w, http.StatusOK, RunFor(r.Context(), info))
}

// RunFor returns info as the principal of ctx may read it: for a caller
// who is not an admin, the server's file paths in the run's reason, its
// steps' details and its faults' errors ("pid file /run/app/app.pid: ...")
// are cut to their base names (auth.Redact). info is not changed; an admin
// gets it as it is.
func RunFor(ctx context.Context, info *RunInfo) *RunInfo {
	return auth.View(ctx, info, func(c *RunInfo) {
		auth.CutPaths(&c.Reason)
		c.Steps = auth.CutEach(c.Steps, func(st *Step) { auth.CutPaths(&st.Detail) })
		c.Faults = auth.CutEach(c.Faults, func(f *FaultRecord) {
			auth.CutPaths(&f.Error, &f.Fault.PIDFile, &f.Fault.Path)
			f.State = auth.CutJSON(f.State)
		})
	})
}

// PlanFor returns p as the principal of ctx may read it: for a caller who
// is not an admin, the server's file paths in its faults' descriptions
// ("stop the process of /run/app/app.pid"), its refusals (a locked
// resource "process:/run/app/app.pid") and its rollback actions are cut to
// their base names (auth.Redact). p is not changed.
func PlanFor(ctx context.Context, p *Plan) *Plan {
	return auth.View(ctx, p, func(c *Plan) {
		c.Faults = auth.CutEach(c.Faults, func(f *PlannedFault) { auth.CutPaths(&f.Description) })
		c.Refusal, c.Rollback = auth.CutStrings(c.Refusal), auth.CutStrings(c.Rollback)
	})
}

// reportFor returns a run's report (Markdown or JSON text) as the
// principal of ctx may read it (auth.Redact). JSON stays JSON: should cutting
// a path in its text leave it invalid, the report is decoded, its strings
// cut, and encoded again.
func reportFor(ctx context.Context, text string, isJSON bool) string {
	out := auth.Redact(ctx, text)
	if !isJSON || out == text || json.Valid([]byte(out)) {
		return out
	}
	var v any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		return out
	}
	b, err := json.MarshalIndent(auth.RedactValue(ctx, v), "", "  ")
	if err != nil {
		return out
	}
	return string(b)
}

func (s *Service) handleStop(w http.ResponseWriter, r *http.Request, actor string) {
	err := s.Stop(r.Context(), r.PathValue("id"), actor)
	if errors.Is(err, ErrNotFound) {
		web.Error(w, http.StatusNotFound, "not_found", err)
		return
	}
	if err != nil {
		web.Error(w, http.StatusInternalServerError, "internal", err)
		return
	}
	web.JSON(w, http.StatusAccepted, map[string]string{"run": r.PathValue("id"), "stop_requested_by": actor})
}

// HaltResult answers POST /api/v1/chaos/halt.
type HaltResult struct {
	Stopped int    `json:"stopped"`
	Error   string `json:"error,omitempty"`
}

func (s *Service) handleHalt(w http.ResponseWriter, r *http.Request, actor string) {
	n, err := s.Halt(r.Context(), actor)
	res := HaltResult{Stopped: n}
	code := http.StatusOK
	if err != nil {
		res.Error, code = err.Error(), http.StatusInternalServerError
	}
	web.JSON(w, code, res)
}

func (s *Service) handleReport(w http.ResponseWriter, r *http.Request, _ string) {
	if err := web.CheckParams(r.URL.Query(), "format"); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	switch f := r.URL.Query().Get("format"); f {
	case "", "json", "markdown":
	default:
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("format %s: want markdown or json", limits.Quote(f)))
		return
	}
	md, js, err := s.Report(r.Context(), r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		web.Error(w, http.StatusNotFound, "not_found", err)
		return
	}
	if err != nil {
		web.Error(w, http.StatusInternalServerError, "internal", err)
		return
	}
	if js == "" {
		web.Error(w, http.StatusConflict, "conflict", errors.New("the run has no report yet (still running, or refused)"))
		return
	}
	if r.URL.Query().Get("format") == "markdown" {
		w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
		envelope.Private(w.Header())
		_, _ = io.WriteString(w, reportFor(r.Context(), md, false))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	envelope.Private(w.Header())
	_, _ = io.WriteString(w, `{"status":"success","data":`+reportFor(r.Context(), js, true)+"}\n")
}

// handleApprove approves a run waiting for approval. The body is optional:
// {"comment": "..."} (and "by", used only without authentication, as for
// runbook approvals).
func (s *Service) handleApprove(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	var req runbook.ApproveRequest
	body, err := web.ReadBody(w, r)
	if err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("read body: %w", err))
		return
	}
	if len(bytes.TrimSpace(body)) > 0 {
		// As every JSON body of the API: one value, no unknown field, no
		// NUL byte nor invalid UTF-8, text within its limits.
		err := web.UnmarshalStrict(body, &req)
		if err == nil {
			err = limits.Check(&req)
		}
		if err == nil {
			err = req.Check()
		}
		if err != nil {
			web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("body: want {\"comment\": \"...\"}: %w", err))
			return
		}
	}
	by := auth.ActorOf(r.Context(), req.By, p.Name)
	info, err := s.Approve(r.Context(), r.PathValue("id"), by, p.Role, req.Comment)
	switch {
	case errors.Is(err, ErrNotFound):
		web.Error(w, http.StatusNotFound, "not_found", err)
	case errors.Is(err, ErrForbidden):
		web.Error(w, http.StatusForbidden, "forbidden", err)
	case errors.Is(err, ErrConflict):
		web.Error(w, http.StatusConflict, "conflict", err)
	case err != nil:
		web.Error(w, http.StatusInternalServerError, "internal", err)
	default:
		web.JSON(w, http.StatusOK, RunFor(r.Context(), info))
	}
}
