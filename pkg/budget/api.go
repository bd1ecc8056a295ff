package budget

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/rootuip/sre/pkg/web"
)

// OverrideHeader carries the emergency override token of a gate request.
const OverrideHeader = "X-SRE-Override-Token"

// Register mounts the budget and gate routes on mux.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/slos", s.handleList)
	mux.HandleFunc("GET /api/v1/slos/{service}/{slo}", s.handleDetail)
	mux.HandleFunc("GET /api/v1/gate", s.handleGate)
}

// SLOList is the answer of GET /api/v1/slos.
type SLOList struct {
	Time time.Time `json:"time"`
	SLOs []Status  `json:"slos"`
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) {
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

func (s *Service) handleGate(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := GateRequest{
		Service:        q.Get("service"),
		Change:         q.Get("change"),
		OverrideToken:  r.Header.Get(OverrideHeader),
		OverrideReason: q.Get("reason"),
		Actor:          q.Get("actor"),
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
		writeErr(w, err)
		return
	}
	web.JSON(w, http.StatusOK, d)
}

func writeErr(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		web.Error(w, http.StatusNotFound, "not_found", err)
	case errors.Is(err, ErrBadOverrideToken):
		web.Error(w, http.StatusForbidden, "forbidden", err)
	case IsUnavailable(err), errors.Is(err, ErrNoPrometheus):
		web.Error(w, http.StatusServiceUnavailable, "unavailable", err)
	case errors.Is(err, ErrBadRequest):
		web.Error(w, http.StatusBadRequest, "bad_data", err)
	default:
		web.Error(w, http.StatusInternalServerError, "internal", err)
	}
}

// ParseTime reads a time parameter as RFC 3339 or Unix seconds, like the
// Prometheus API. Empty gives the zero time.
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
			return time.Time{}, fmt.Errorf("invalid time %q", s)
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid time %q: want RFC 3339 or Unix seconds", s)
	}
	return t.UTC(), nil
}
