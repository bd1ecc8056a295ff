package budget

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/web"
)

// OverrideHeader carries the emergency override token of a gate request.
const OverrideHeader = "X-SRE-Override-Token"

// Register mounts the budget and gate routes on mux.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/slos", s.handleList)
	mux.HandleFunc("GET /api/v1/slos/{service}/{slo}", s.handleDetail)
	mux.HandleFunc("GET /api/v1/gate", s.handleGate)
	mux.HandleFunc("GET /api/v1/services/{service}/events", s.handleTimeline)
}

// Timeline is the answer of GET /api/v1/services/{service}/events: one page
// of the service's budget state changes, newest first.
type Timeline struct {
	Service string  `json:"service"`
	Events  []Event `json:"events"`
	// Next is the cursor of the next (older) page, passed as ?before=;
	// empty on the last page.
	Next string `json:"next,omitempty"`
}

// Page sizes of the timeline.
const (
	DefaultTimelineLimit = 100
	MaxTimelineLimit     = 1000
)

func (s *Service) handleTimeline(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		if k != "limit" && k != "before" && k != "slo" {
			web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("unknown parameter %s (want limit, before or slo)", limits.Quote(k)))
			return
		}
	}
	limit := DefaultTimelineLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxTimelineLimit {
			web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("limit must be an integer between 1 and %d, got %s", MaxTimelineLimit, limits.Quote(v)))
			return
		}
		limit = n
	}
	if s.db == nil {
		web.Error(w, http.StatusServiceUnavailable, "unavailable", errors.New("no store"))
		return
	}
	service := r.PathValue("service")
	evs, next, err := ListEventsPage(r.Context(), s.db, EventQuery{Service: service, SLO: q.Get("slo"), Limit: limit, Before: q.Get("before")})
	switch {
	case errors.Is(err, ErrBadCursor):
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	case err != nil:
		web.Error(w, http.StatusInternalServerError, "internal", err)
		return
	}
	// A service that has no SLO and never had a recorded state is unknown;
	// one whose SLOs were removed keeps its history.
	if len(evs) == 0 && q.Get("before") == "" && len(s.find(service, "")) == 0 {
		web.Error(w, http.StatusNotFound, "not_found", fmt.Errorf("service %s has no SLO: %w", limits.Quote(service), ErrNotFound))
		return
	}
	web.JSON(w, http.StatusOK, Timeline{Service: service, Events: evs, Next: next})
}

// SLOList is the answer of GET /api/v1/slos.
type SLOList struct {
	Time time.Time `json:"time"`
	SLOs []Status  `json:"slos"`
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) {
	// ?time=1&time=2 was read as its first value, a misspelt ?tme= as now.
	if err := web.CheckParams(r.URL.Query(), "time", "service"); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	at, err := ParseTime(r.URL.Query().Get("time"))
	if err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	if at.IsZero() {
		at = s.now()
	}
	sts, err := s.Statuses(r.Context(), at)
	if err != nil {
		writeErr(w, err)
		return
	}
	if svc := r.URL.Query().Get("service"); svc != "" {
		var keep []Status
		for _, st := range sts {
			if st.Service == svc {
				keep = append(keep, st)
			}
		}
		sts = keep
	}
	if sts == nil {
		sts = []Status{}
	}
	web.JSON(w, http.StatusOK, SLOList{Time: at.UTC(), SLOs: sts})
}

func (s *Service) handleDetail(w http.ResponseWriter, r *http.Request) {
	if err := web.CheckParams(r.URL.Query(), "time"); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	at, err := ParseTime(r.URL.Query().Get("time"))
	if err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	d, err := s.Detail(r.Context(), r.PathValue("service"), r.PathValue("slo"), at)
	if err != nil {
		writeErr(w, err)
		return
	}
	web.JSON(w, http.StatusOK, d)
}

// gateParams are the parameters of GET /api/v1/gate: a misspelt
// ?chnage=emergency would be decided, and recorded, as a normal change,
// ?service=api&service=db for api alone (web.CheckParams refuses both).
var gateParams = []string{"service", "change", "actor", "reason"}

func (s *Service) handleGate(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := web.CheckParams(q, gateParams...); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	req := GateRequest{
		Service:        q.Get("service"),
		Change:         q.Get("change"),
		OverrideToken:  r.Header.Get(OverrideHeader),
		OverrideReason: q.Get("reason"),
		Actor:          auth.ActorOf(r.Context(), q.Get("actor"), ""),
		Client:         OverrideClient(r),
		RateClient:     OverrideClient(r),
	}
	if req.Service == "" {
		web.Error(w, http.StatusBadRequest, "bad_data", errors.New("missing parameter service"))
		return
	}
	if len(req.Actor) > 200 || len(req.OverrideReason) > 1000 {
		web.Error(w, http.StatusBadRequest, "bad_data", errors.New("actor (200) or reason (1000 bytes) too long"))
		return
	}
	d, err := s.Gate(r.Context(), req)
	if err != nil {
		code := writeErr(w, err)
		// A token that was checked and refused is reported; one refused
		// unchecked over the limit (429) is not, so that looping on the
		// limit cannot grow the audit log.
		if code != http.StatusTooManyRequests && req.OverrideToken != "" && s.onOverrideRefused != nil && isOverrideRefusal(err) {
			s.onOverrideRefused(r, code)
		}
		return
	}
	web.JSON(w, http.StatusOK, DecisionFor(r.Context(), d))
}

// DecisionFor returns d as the principal of ctx may read it: for a caller
// who is not an admin, the server's file paths in its reason and its
// Prometheus error (sred's text: a credentials file that cannot be read,
// "open /etc/sred/secrets/prom-token: ...") are cut to their base names
// (auth.RedactPaths); URLs stay whole. What the caller wrote (the override
// reason, the subject) is left as it is. d is not changed; an admin gets
// it as it is.
func DecisionFor(ctx context.Context, d *Decision) *Decision {
	return auth.View(ctx, d, func(c *Decision) { auth.CutPaths(&c.Reason, &c.PrometheusError) })
}

// OverrideClient is what the wrong override tokens of r count against: its
// client (an IPv4 address or an IPv6 /64, auth.ClientOf) and its
// authenticated principal, so that a principal guessing tokens behind a
// reverse proxy does not lock out the others. Not the actor parameter,
// which the caller chooses in the no-auth mode.
func OverrideClient(r *http.Request) string {
	p, _ := auth.FromContext(r.Context())
	return auth.ClientOf(r.RemoteAddr) + "\x00" + p.Name
}

func isOverrideRefusal(err error) bool {
	return errors.Is(err, ErrBadOverrideToken) || errors.Is(err, ErrOverrideTokenUnavailable)
}

// writeErr answers err and returns the status answered.
func writeErr(w http.ResponseWriter, err error) int {
	var (
		limited  *auth.LimitedError
		requests *RequestLimitedError
	)
	code, typ := http.StatusInternalServerError, "internal"
	switch {
	case errors.Is(err, ErrNotFound):
		code, typ = http.StatusNotFound, "not_found"
	case errors.As(err, &requests):
		code, typ = http.StatusTooManyRequests, "too_many_requests"
		w.Header().Set("Retry-After", strconv.FormatInt(requests.RetryAfter, 10))
	case errors.As(err, &limited):
		code, typ = http.StatusTooManyRequests, "too_many_requests"
		w.Header().Set("Retry-After", strconv.FormatInt(limited.RetryAfterSeconds(), 10))
		err = fmt.Errorf("too many wrong override tokens from this address: retry in %ds", limited.RetryAfterSeconds())
	case errors.Is(err, ErrBadOverrideToken):
		code, typ = http.StatusForbidden, "forbidden"
	case IsUnavailable(err), errors.Is(err, ErrNoPrometheus), errors.Is(err, ErrOverrideTokenUnavailable):
		code, typ = http.StatusServiceUnavailable, "unavailable"
	case errors.Is(err, ErrBadRequest):
		code, typ = http.StatusBadRequest, "bad_data"
	}
	web.Error(w, code, typ, err)
	return code
}

// ParseTime reads a time parameter as RFC 3339 or Unix seconds, like the
// Prometheus API, from 1970-01-02 to 9999 (limits.ParseTime). Empty gives
// the zero time.
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return limits.ParseTime("time", s)
}
