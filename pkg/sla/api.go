package sla

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/envelope"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/web"
)

// Reporter answers SLA report requests.
type Reporter struct {
	clock clock.Clock

	mu     sync.RWMutex
	cfg    Config
	prom   Querier
	lookup SLOLookup
}

// NewReporter returns a Reporter; clk tells the time (clock.Real when nil).
func NewReporter(clk clock.Clock) *Reporter {
	return &Reporter{clock: clock.OrReal(clk), lookup: func(string, string) (*slo.SLO, bool) { return nil, false }}
}

// Update installs a configuration. It fails if a contract names an SLO
// missing from the specs.
func (s *Reporter) Update(cfg Config, prom Querier, lookup SLOLookup) error {
	if err := cfg.Check(lookup); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg, s.prom, s.lookup = cfg, prom, lookup
	return nil
}

// Report computes the report of a customer for a period ("30d") or a
// calendar month ("2026-10"); both empty means the customer's period.
func (s *Reporter) Report(r *http.Request, customer, period, month string) (*Report, error) {
	s.mu.RLock()
	cfg, prom, lookup := s.cfg, s.prom, s.lookup
	s.mu.RUnlock()
	cu, ok := cfg.Customer(customer)
	if !ok {
		return nil, fmt.Errorf("customer %s: %w", limits.Quote(customer), ErrNotFound)
	}
	rng, err := ParseRange(period, month, time.Duration(cu.Period), s.clock.Now())
	if err != nil {
		return nil, err
	}
	if prom == nil {
		return nil, budget.ErrNoPrometheus
	}
	return Compute(r.Context(), prom, lookup, cu, rng)
}

// Register mounts GET /api/v1/sla/report/{customer}.
func (s *Reporter) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/sla/report/{customer}", s.handleReport)
}

func (s *Reporter) handleReport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// A misspelt ?perod=7d answered the customer's default period, and a
	// parameter given twice was read as its first value.
	if err := web.CheckParams(q, "period", "month", "format"); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	format := q.Get("format")
	if format == "" {
		format = "json"
	}
	if ContentType(format) == "application/json" && format != "json" {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("unknown format %s (want one of json, md, csv, html)", limits.Quote(format)))
		return
	}
	rep, err := s.Report(r, r.PathValue("customer"), q.Get("period"), q.Get("month"))
	switch {
	case err == nil:
	case errors.Is(err, ErrNotFound):
		web.Error(w, http.StatusNotFound, "not_found", err)
		return
	case errors.Is(err, ErrBadRange):
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	case budget.IsUnavailable(err), errors.Is(err, budget.ErrNoPrometheus):
		web.Error(w, http.StatusServiceUnavailable, "unavailable", err)
		return
	default:
		web.Error(w, http.StatusInternalServerError, "internal", err)
		return
	}
	if format == "json" {
		web.JSON(w, http.StatusOK, rep)
		return
	}
	var buf bytes.Buffer
	if err := Render(&buf, rep, format); err != nil {
		web.Error(w, http.StatusInternalServerError, "internal", err)
		return
	}
	w.Header().Set("Content-Type", ContentType(format))
	envelope.Private(w.Header())
	if format == "html" {
		// The report's values (customer, service and SLO names) are
		// escaped; the policy also keeps anything that escaped them from
		// running, loading or framing the report.
		web.HTMLSecurityHeaders(w.Header(), web.DocumentCSP)
		w.Header().Set("Referrer-Policy", "no-referrer")
	}
	_, _ = w.Write(buf.Bytes())
}
