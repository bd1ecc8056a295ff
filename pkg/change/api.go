package change

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/web"
)

// Register mounts the change routes on mux.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/changes", s.handleSubmit)
	mux.HandleFunc("GET /api/v1/changes", s.handleList)
	mux.HandleFunc("GET /api/v1/changes/{id}", s.handleGet)
	mux.HandleFunc("POST /api/v1/changes/{id}/finish", s.handleFinish)
	mux.HandleFunc("POST /api/v1/changes/flagger", s.handleFlagger)
	mux.HandleFunc("POST /api/v1/changes/argo-rollouts", s.handleArgo)
	mux.HandleFunc("POST /api/v1/changes/flux", s.handleFlux)
}

// maxSkew is how far in the future a recorded change may say it started.
const maxSkew = 5 * time.Minute

// maxUntold is how long before now a change recorded as finished may say
// it started without saying when it finished (finished_at, now by
// default): a deploy recorded at the end of its CI job. One that started
// earlier is a record after the fact (a CI replay, a history imported):
// finished now, it counted as a deployment of today in the deployment
// frequency and the failure rate, with a lead time running to now.
const maxUntold = 24 * time.Hour

// Request is the body of POST /api/v1/changes. The override token travels in the
// X-SRE-Override-Token header, as for GET /api/v1/gate.
type Request struct {
	Service     string     `json:"service"`
	Kind        string     `json:"kind,omitempty"`    // deploy (default), config, infra
	Outcome     string     `json:"outcome,omitempty"` // succeeded (default), in_progress, failed, rolled_back
	Version     string     `json:"version,omitempty"`
	Commit      string     `json:"commit,omitempty"`
	CommitTime  *time.Time `json:"commit_time,omitempty"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	Description string     `json:"description,omitempty"`
	Actor       string     `json:"actor,omitempty"`
	// Source names the tool that recorded it (ci, terraform, argocd,
	// flux, ...); "api" by default.
	Source string `json:"source,omitempty"`
	// Key is an idempotency key (e.g. the CI job's id): a retry with the
	// key of a change recorded before returns that change (200) and records
	// nothing.
	Key string `json:"key,omitempty"`
	// Change is the gate's kind of change: normal (default) or critical.
	Change         string `json:"change,omitempty"`
	OverrideReason string `json:"override_reason,omitempty"`
}

func (s *Service) handleSubmit(w http.ResponseWriter, r *http.Request) {
	var req Request
	if err := web.DecodeJSON(w, r, &req); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	if req.Outcome == string(Refused) {
		web.Error(w, http.StatusBadRequest, "bad_data", errors.New("outcome refused is the deploy gate's answer, not one to record"))
		return
	}
	c := Change{Service: req.Service, Kind: Kind(req.Kind), Outcome: Outcome(req.Outcome), Version: req.Version, Commit: req.Commit,
		CommitTime: req.CommitTime, FinishedAt: req.FinishedAt, Description: req.Description, Source: req.Source, Key: req.Key,
		Actor: auth.ActorOf(r.Context(), req.Actor, "")}
	// CI runners' clocks drift, but not by more than maxSkew: a change
	// that says it ends in the future would count in the DORA window for
	// ever.
	// A time at the Unix epoch or before is what a template renders for a
	// time it does not have: Go's zero time was taken as now, and
	// 1970-01-01 recorded a change of 1970.
	for i, t := range []*time.Time{req.StartedAt, req.FinishedAt} {
		name := []string{"started_at", "finished_at"}[i]
		switch {
		case t == nil:
		case t.After(s.clock.Now().Add(maxSkew)):
			web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("%s %s is in the future", name, t.UTC().Format(time.RFC3339)))
			return
		case unsetTime(*t):
			web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("%s %s is no time (%s): leave it out for now", name, t.UTC().Format(time.RFC3339), unsetTimeWhy))
			return
		}
	}
	if req.StartedAt != nil {
		c.StartedAt = *req.StartedAt
		if req.FinishedAt == nil && req.Outcome != string(InProgress) && req.StartedAt.Before(s.clock.Now().Add(-maxUntold)) {
			web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("started_at %s is more than %d hours ago and finished_at is not given: "+
				"give the change's finished_at (recorded as finished now, it would count as a deployment of today, with a lead time to now)",
				req.StartedAt.UTC().Format(time.RFC3339), int(maxUntold.Hours())))
			return
		}
	}
	out, existed, err := s.submit(r.Context(), c, GateInput{Change: req.Change, OverrideToken: r.Header.Get(budget.OverrideHeader), OverrideReason: req.OverrideReason,
		Client: budget.OverrideClient(r)})
	if err != nil {
		writeErr(w, err)
		return
	}
	code := http.StatusCreated
	if existed {
		code = http.StatusOK
	}
	web.JSON(w, code, *ChangeFor(r.Context(), &out))
}

// ChangeFor returns c as the principal of ctx may read it: for a caller
// who is not an admin, the server's file paths in the deploy gate's reason
// (sred's text, which holds Prometheus' error when the gate could not read
// the budgets: "open /etc/sred/secrets/prom-token: ...") are cut to their
// base names (auth.RedactPaths). What the caller who recorded the change
// wrote is left as it is. c is not changed; an admin gets it as it is.
func ChangeFor(ctx context.Context, c *Change) *Change {
	return auth.View(ctx, c, cutChange)
}

func cutChange(c *Change) {
	if c.Gate != nil {
		g := *c.Gate
		auth.CutPaths(&g.Reason)
		c.Gate = &g
	}
}

func writeErr(w http.ResponseWriter, err error) {
	var refused *RefusedError
	var limited *auth.LimitedError
	switch {
	case errors.As(err, &refused):
		web.Error(w, http.StatusConflict, "refused", err)
	case errors.Is(err, ErrNotFound):
		web.Error(w, http.StatusNotFound, "not_found", err)
	case errors.Is(err, ErrKeyReused):
		// As the IETF's Idempotency-Key draft: a key reused for another
		// request is 422 (409 is the gate's refusal).
		web.Error(w, http.StatusUnprocessableEntity, "bad_data", err)
	case errors.Is(err, ErrFinished):
		web.Error(w, http.StatusConflict, "conflict", err)
	case errors.Is(err, ErrBadRequest), errors.Is(err, budget.ErrBadRequest):
		web.Error(w, http.StatusBadRequest, "bad_data", err)
	case errors.Is(err, budget.ErrBadOverrideToken):
		web.Error(w, http.StatusForbidden, "forbidden", err)
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", strconv.FormatInt(limited.RetryAfterSeconds(), 10))
		web.Error(w, http.StatusTooManyRequests, "too_many_requests", fmt.Errorf("too many wrong override tokens from this address: retry in %ds", limited.RetryAfterSeconds()))
	case errors.Is(err, budget.ErrOverrideTokenUnavailable):
		web.Error(w, http.StatusServiceUnavailable, "unavailable", err)
	default:
		web.Error(w, http.StatusInternalServerError, "internal", err)
	}
}

// List is the answer of GET /api/v1/changes.
type List struct {
	Changes []Change `json:"changes"`
	// Next is the cursor of the next (older) page, passed as ?before=.
	Next string `json:"next,omitempty"`
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var query Query
	if !onlyParams(w, q, "service", "kind", "outcome", "since", "until", "before", "limit") {
		return
	}
	query.Service = q.Get("service")
	if v := q.Get("kind"); v != "" {
		k, err := ParseKind(v)
		if err != nil {
			web.Error(w, http.StatusBadRequest, "bad_data", err)
			return
		}
		query.Kind = k
	}
	if v := q.Get("outcome"); v != "" {
		o, err := ParseOutcome(v)
		if err != nil {
			web.Error(w, http.StatusBadRequest, "bad_data", err)
			return
		}
		query.Outcome = o
	}
	for name, into := range map[string]*time.Time{"since": &query.Since, "until": &query.Until} {
		if v := q.Get(name); v != "" {
			t, err := limits.ParseTime(name, v)
			if err != nil {
				web.Error(w, http.StatusBadRequest, "bad_data", err)
				return
			}
			*into = t
		}
	}
	if !query.Since.IsZero() && !query.Until.IsZero() && !query.Until.After(query.Since) {
		// A reversed window answered an empty list, as if nothing had
		// changed.
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("until %s must be after since %s",
			query.Until.Format(time.RFC3339Nano), query.Since.Format(time.RFC3339Nano)))
		return
	}
	query.Limit = DefaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("limit must be an integer between 1 and %d, got %s", MaxLimit, limits.Quote(v)))
			return
		}
		query.Limit = n
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("before must be a change id, got %s", limits.Quote(v)))
			return
		}
		query.Before = n
	}
	cs, err := s.List(r.Context(), query)
	if err != nil {
		writeErr(w, err)
		return
	}
	out := List{Changes: cs}
	if out.Changes == nil {
		out.Changes = []Change{}
	}
	out.Changes = auth.ViewEach(r.Context(), out.Changes, cutChange)
	if len(cs) == query.Limit {
		out.Next = strconv.FormatInt(cs[len(cs)-1].ID, 10)
	}
	web.JSON(w, http.StatusOK, out)
}

// onlyParams answers 400 naming the first parameter of q (sorted) that is
// not one of names, or one given twice (web.CheckParams): a misspelt
// ?servce= would widen a list to every service, or record a notification's
// change under the rollout's name; ?service=a&service=b read as a alone.
func onlyParams(w http.ResponseWriter, q url.Values, names ...string) bool {
	if err := web.CheckParams(q, names...); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return false
	}
	return true
}

func pathID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("change id must be a positive integer, got %s", limits.Quote(r.PathValue("id"))))
		return 0, false
	}
	return id, true
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	c, err := s.Get(r.Context(), id)
	if err != nil {
		writeErr(w, err)
		return
	}
	web.JSON(w, http.StatusOK, ChangeFor(r.Context(), &c))
}

// FinishRequest is the body of POST /api/v1/changes/{id}/finish.
type FinishRequest struct {
	Outcome string `json:"outcome"`
}

func (s *Service) handleFinish(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var req FinishRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	c, err := s.Finish(r.Context(), id, Outcome(req.Outcome))
	if err != nil {
		writeErr(w, err)
		return
	}
	web.JSON(w, http.StatusOK, ChangeFor(r.Context(), &c))
}

// readJSON decodes a third-party notification body leniently: those
// tools add fields between versions.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	// The URL is the tool's configuration: ?service= alone.
	if !onlyParams(w, r.URL.Query(), "service") {
		return false
	}
	b, err := web.ReadBody(w, r)
	if err == nil {
		// Not strict: the tools add fields to their payloads; a key
		// given twice or in another case is refused all the same.
		err = web.UnmarshalLenient(b, v)
	}
	if err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("invalid JSON body: %w", err))
		return false
	}
	// What the store cannot keep (NUL bytes, invalid UTF-8), by field.
	if err := limits.Check(v); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return false
	}
	return true
}
