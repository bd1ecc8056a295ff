package scaling

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/web"
)

// PolicyStatus is a policy with the state of its target.
type PolicyStatus struct {
	*Policy
	State State `json:"state"`
	// HPA is the last observed status of the HPA of a policy Kubernetes
	// scales (nil when not observed).
	HPA *HPAStatus `json:"hpa,omitempty"`
}

// Register serves the scaling API (roles in auth.Routes):
//
//	GET /api/v1/scaling/policies   the policies and the state of their targets
//	GET /api/v1/scaling/decisions  the stored actions (?policy=, ?limit=)
//	GET /api/v1/scaling/backtest   ?policy=&from=&to= (RFC 3339 or a duration before now)
func (c *Controller) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/scaling/policies", c.servePolicies)
	mux.HandleFunc("GET /api/v1/scaling/decisions", c.serveDecisions)
	mux.HandleFunc("GET /api/v1/scaling/backtest", c.serveBacktest)
}

// Statuses returns every policy with its state.
func (c *Controller) Statuses(ctx context.Context) ([]PolicyStatus, error) {
	hpa := c.HPAStatuses()
	out := []PolicyStatus{}
	for _, p := range c.Policies() {
		st, err := c.State(ctx, p)
		if err != nil {
			return nil, err
		}
		ps := PolicyStatus{Policy: p, State: st}
		if h, ok := hpa[p.Name]; ok {
			ps.HPA = &h
		}
		out = append(out, ps)
	}
	return out, nil
}

// onlyParams answers 400 for a parameter the route does not take or one
// given twice (a typo such as ?polcy= would otherwise widen the answer to
// every policy), as the other routes do (web.CheckParams).
func onlyParams(w http.ResponseWriter, r *http.Request, names ...string) bool {
	if err := web.CheckParams(r.URL.Query(), names...); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return false
	}
	return true
}

func (c *Controller) servePolicies(w http.ResponseWriter, r *http.Request) {
	if !onlyParams(w, r) {
		return
	}
	out, err := c.Statuses(r.Context())
	if err != nil {
		web.Error(w, http.StatusInternalServerError, "internal", err)
		return
	}
	for i, ps := range out {
		p := *ps.Policy
		p.File = auth.FilePath(r.Context(), p.File)
		out[i].Policy = &p
	}
	web.JSON(w, http.StatusOK, out)
}

func (c *Controller) serveDecisions(w http.ResponseWriter, r *http.Request) {
	if !onlyParams(w, r, "policy", "limit") {
		return
	}
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			web.Error(w, http.StatusBadRequest, "bad_data", errBadLimit)
			return
		}
		limit = n
	}
	out, err := c.Decisions(r.Context(), r.URL.Query().Get("policy"), time.Time{}, limit)
	if err != nil {
		web.Error(w, http.StatusInternalServerError, "internal", err)
		return
	}
	if out == nil {
		out = []Record{}
	}
	web.JSON(w, http.StatusOK, RecordsFor(r.Context(), out))
}

// Backtest replays the named policy over [from, to] against Prometheus.
func (c *Controller) Backtest(ctx context.Context, name, fromS, toS string) (BacktestResult, int, error) {
	p := c.Policy(name)
	if p == nil {
		return BacktestResult{}, http.StatusNotFound, errNoPolicy(name)
	}
	now := c.o.Clock.Now().UTC()
	if fromS == "" {
		fromS = "6h"
	}
	from, err := ParseTime(fromS, now)
	if err != nil {
		return BacktestResult{}, http.StatusBadRequest, err
	}
	to, err := ParseTime(toS, now)
	if err != nil {
		return BacktestResult{}, http.StatusBadRequest, err
	}
	if !to.After(from) {
		return BacktestResult{}, http.StatusBadRequest, errOrder
	}
	if n := to.Sub(from) / time.Duration(p.Interval); n > 11000 {
		return BacktestResult{}, http.StatusBadRequest, errTooLong(int(n))
	}
	res, err := RunBacktest(ctx, c.o.Prometheus, p, from, to, p.InitialInstances)
	if err != nil {
		return BacktestResult{}, http.StatusBadGateway, err
	}
	return res, http.StatusOK, nil
}

func (c *Controller) serveBacktest(w http.ResponseWriter, r *http.Request) {
	if !onlyParams(w, r, "policy", "from", "to") {
		return
	}
	q := r.URL.Query()
	if q.Get("policy") == "" {
		web.Error(w, http.StatusBadRequest, "bad_data", errors.New("policy is required: the name of a scaling policy (GET /api/v1/scaling/policies lists them)"))
		return
	}
	res, code, err := c.Backtest(r.Context(), q.Get("policy"), q.Get("from"), q.Get("to"))
	if err != nil {
		kind := map[int]string{http.StatusNotFound: "not_found", http.StatusBadRequest: "bad_data"}[code]
		if kind == "" {
			kind = "unavailable"
		}
		web.Error(w, code, kind, err)
		return
	}
	web.JSON(w, http.StatusOK, res)
}

// RecordsFor returns recs as the principal of ctx may read them: for a
// caller who is not an admin, the server's file paths in each record's
// detail (a failed action: "fork/exec /usr/local/bin/scale: ...") are cut
// to their base names (auth.Redact). recs is not changed; an admin gets it
// as it is.
func RecordsFor(ctx context.Context, recs []Record) []Record {
	return auth.ViewEach(ctx, recs, func(rec *Record) { auth.CutPaths(&rec.Detail) })
}
