package runbook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/web"
)

// RunbookInfo is a runbook as the API lists it.
type RunbookInfo struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	File        string   `json:"file"`
	Matchers    []string `json:"matchers,omitempty"`
	URLs        []string `json:"urls,omitempty"`
	Severities  []string `json:"severities,omitempty"`
	States      []string `json:"states"`
	Target      string   `json:"target"`
	// DryRun is the effective mode: the runbook's own dry_run, or the
	// runbooks section's (sred.yml) that makes every runbook a dry run.
	DryRun            bool     `json:"dry_run"`
	RequireApproval   bool     `json:"require_approval"`
	ContinueOnResolve bool     `json:"continue_on_resolve"`
	ResolveOnVerify   bool     `json:"resolve_on_verify"`
	ApprovalTimeout   string   `json:"approval_timeout"`
	Steps             []string `json:"steps"`
}

// Info describes rb for the API and the CLI.
func (rb *Runbook) Info() RunbookInfo {
	i := RunbookInfo{Name: rb.Name, Description: rb.Description, File: rb.File, Matchers: rb.Matchers, URLs: rb.URLs,
		Target: rb.Target, DryRun: rb.DryRun, RequireApproval: rb.RequireApproval,
		ContinueOnResolve: rb.ContinueOnResolve, ResolveOnVerify: rb.ResolveOnVerify, ApprovalTimeout: rb.ApprovalTimeout.String()}
	for _, s := range rb.Severities {
		i.Severities = append(i.Severities, string(s))
	}
	for _, s := range rb.States {
		i.States = append(i.States, string(s))
	}
	for _, s := range rb.Steps {
		i.Steps = append(i.Steps, fmt.Sprintf("%s (%s)", s.Name, s.typ))
	}
	return i
}

// ApproveRequest is the body of POST /api/v1/runbooks/runs/{id}/approve.
type ApproveRequest struct {
	By      string `json:"by"`
	Comment string `json:"comment,omitempty"`
}

// Check bounds the approval's text as an incident action's (the approver
// as incident.MaxActor, the comment as a note, incident.MaxNote
// characters): it is stored with the run and shown to every viewer.
func (r ApproveRequest) Check() error {
	if n := utf8.RuneCountInString(r.By); n > incident.MaxActor {
		return fmt.Errorf("by: at most %d characters, got %d", incident.MaxActor, n)
	}
	if n := utf8.RuneCountInString(r.Comment); n > incident.MaxNote {
		return fmt.Errorf("comment: at most %d characters, got %d", incident.MaxNote, n)
	}
	return nil
}

// CancelRequest is the body of POST /api/v1/runbooks/runs/{id}/cancel.
type CancelRequest struct {
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
}

// KillSwitchRequest is the body of PUT /api/v1/runbooks/kill-switch.
type KillSwitchRequest struct {
	// Enabled is required: a body without it (only a reason, a typo) must
	// not release an engaged switch.
	Enabled *bool  `json:"enabled"`
	By      string `json:"by"`
	Reason  string `json:"reason,omitempty"`
}

// Register mounts the runbook API on mux.
func (e *Engine) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/runbooks", e.handleList)
	mux.HandleFunc("GET /api/v1/runbooks/runs", e.handleRuns)
	mux.HandleFunc("GET /api/v1/runbooks/runs/{id}", e.handleRun)
	mux.HandleFunc("POST /api/v1/runbooks/runs/{id}/approve", e.handleApprove)
	mux.HandleFunc("POST /api/v1/runbooks/runs/{id}/cancel", e.handleCancel)
	mux.HandleFunc("GET /api/v1/runbooks/kill-switch", e.handleGetKillSwitch)
	mux.HandleFunc("PUT /api/v1/runbooks/kill-switch", e.handlePutKillSwitch)
	mux.HandleFunc("GET /api/v1/runbooks/locks", e.handleLocks)
	mux.HandleFunc("GET /api/v1/runbooks/coverage", e.handleCoverage)
}

func (e *Engine) handleList(w http.ResponseWriter, r *http.Request) {
	out := []RunbookInfo{}
	cfg, set := e.config()
	for _, rb := range set.List() {
		info := rb.Info()
		info.DryRun = info.DryRun || cfg.DryRun
		info.File = auth.FilePath(r.Context(), info.File)
		out = append(out, info)
	}
	web.JSON(w, http.StatusOK, out)
}

func (e *Engine) handleRuns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// A misspelt ?incidnet= would list every incident's runs.
	if err := web.CheckParams(q, "incident", "runbook", "status", "limit"); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	f := RunFilter{IncidentID: q.Get("incident"), Runbook: q.Get("runbook"), Status: q.Get("status")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 || n > 1000 {
			web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("limit %s: want an integer between 1 and 1000", limits.Quote(l)))
			return
		}
		f.Limit = n
	}
	runs, err := e.ListRuns(r.Context(), f)
	if err != nil {
		web.Error(w, http.StatusInternalServerError, "internal", err)
		return
	}
	web.JSON(w, http.StatusOK, RunsFor(r.Context(), runs))
}

// RunFor returns run as the principal of ctx may read it: for a caller who
// is not an admin, the server's file paths in the run's reason and in its
// steps' output, error and input ("fork/exec /usr/local/bin/restart: no
// such file or directory") are cut to their base names (auth.Redact). run
// is not changed; an admin gets it as it is.
func RunFor(ctx context.Context, run *Run) *Run {
	return auth.View(ctx, run, func(c *Run) {
		auth.CutPaths(&c.Reason)
		if c.Audit != nil {
			c.Audit = auth.CutEach(c.Audit, func(a *AuditEntry) {
				auth.CutPaths(&a.Output, &a.Error)
				a.Input = auth.CutMap(a.Input)
			})
		}
	})
}

// RunsFor is RunFor of each run.
func RunsFor(ctx context.Context, runs []*Run) []*Run {
	out := make([]*Run, len(runs))
	for i, run := range runs {
		out[i] = RunFor(ctx, run)
	}
	return out
}

func runID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("run id %s: want a positive integer", limits.Quote(r.PathValue("id"))))
		return 0, false
	}
	return id, true
}

func writeErr(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		web.Error(w, http.StatusNotFound, "not_found", err)
	case errors.Is(err, ErrConflict):
		web.Error(w, http.StatusConflict, "conflict", err)
	default:
		web.Error(w, http.StatusInternalServerError, "internal", err)
	}
}

// decodeBy decodes the request body into req and sets the "by" field
// (pointed to by by) to the authenticated user; the body's "by" is used only
// when no one is authenticated (the no-auth mode), and is then required
// (a 400 with msg when it is missing).
func decodeBy(w http.ResponseWriter, r *http.Request, req any, by *string, msg string) bool {
	if err := web.DecodeJSON(w, r, req); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return false
	}
	*by = auth.ActorOf(r.Context(), strings.TrimSpace(*by), "")
	if *by == "" {
		web.Error(w, http.StatusBadRequest, "bad_data", errors.New(msg))
		return false
	}
	return true
}

// writeResult writes v as a 200 response, or err mapped by writeErr.
func writeResult(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeErr(w, err)
		return
	}
	web.JSON(w, http.StatusOK, v)
}

func (e *Engine) handleRun(w http.ResponseWriter, r *http.Request) {
	id, ok := runID(w, r)
	if !ok {
		return
	}
	run, err := e.GetRun(r.Context(), id)
	writeResult(w, RunFor(r.Context(), run), err)
}

func (e *Engine) handleApprove(w http.ResponseWriter, r *http.Request) {
	id, ok := runID(w, r)
	if !ok {
		return
	}
	var req ApproveRequest
	if !decodeBy(w, r, &req, &req.By, `"by" (the approver) is required`) {
		return
	}
	if err := req.Check(); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	if _, err := e.Approve(r.Context(), id, req.By, req.Comment); err != nil {
		writeErr(w, err)
		return
	}
	run, err := e.GetRun(r.Context(), id)
	writeResult(w, RunFor(r.Context(), run), err)
}

func (e *Engine) handleCancel(w http.ResponseWriter, r *http.Request) {
	id, ok := runID(w, r)
	if !ok {
		return
	}
	var req CancelRequest
	if !decodeBy(w, r, &req, &req.By, `"by" is required`) {
		return
	}
	run, err := e.Cancel(r.Context(), id, req.By, req.Reason)
	writeResult(w, RunFor(r.Context(), run), err)
}

func (e *Engine) handleGetKillSwitch(w http.ResponseWriter, r *http.Request) {
	ks, err := e.KillSwitch(r.Context())
	writeResult(w, ks, err)
}

func (e *Engine) handlePutKillSwitch(w http.ResponseWriter, r *http.Request) {
	var req KillSwitchRequest
	if !decodeBy(w, r, &req, &req.By, `"by" is required`) {
		return
	}
	if req.Enabled == nil {
		web.Error(w, http.StatusBadRequest, "bad_data", errors.New(`"enabled" is required: true engages the kill switch, false releases it`))
		return
	}
	ks, err := e.SetKillSwitch(r.Context(), *req.Enabled, req.By, req.Reason)
	writeResult(w, ks, err)
}

func (e *Engine) handleLocks(w http.ResponseWriter, r *http.Request) {
	locks, err := e.Locks(r.Context())
	writeResult(w, locks, err)
}

func (e *Engine) handleCoverage(w http.ResponseWriter, r *http.Request) {
	if err := web.CheckParams(r.URL.Query(), "from", "to"); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	to := e.now()
	from := to.Add(-30 * 24 * time.Hour)
	for name, dst := range map[string]*time.Time{"from": &from, "to": &to} {
		if v := r.URL.Query().Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("%s %s: want an RFC 3339 time", name, limits.Quote(v)))
				return
			}
			if err := limits.Time(name, t); err != nil {
				web.Error(w, http.StatusBadRequest, "bad_data", err)
				return
			}
			*dst = t
		}
	}
	if !to.After(from) {
		// A reversed window counted nothing and answered zeros.
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("to %s must be after from %s", to.Format(time.RFC3339), from.Format(time.RFC3339)))
		return
	}
	c, err := AutomationCoverage(r.Context(), e.db, from, to)
	if err != nil {
		writeErr(w, err)
		return
	}
	web.JSON(w, http.StatusOK, map[string]any{"from": from, "to": to, "coverage": c,
		"run_ratio": c.RunRatio(), "mitigated_ratio": c.MitigatedRatio(), "toil_ratio": c.ToilRatio()})
}
