package noise

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/web"
)

// API serves GET /api/v1/reports/noise.
type API struct {
	DB *store.DB
	// Clock tells the time (clock.Real when nil).
	Clock clock.Clock
}

// Register adds the route to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/reports/noise", a.serve)
}

// parseSince accepts a Prometheus duration back from now (30d) or an RFC
// 3339 time, from 1970-01-02 to 9999 (limits.MinParamTime, MaxParamTime):
// since=0001-01-01T00:00:00Z or since=100y read the store from the year 1
// or 1926.
func parseSince(v string, now time.Time) (time.Time, error) {
	if d, err := model.ParseDuration(v); err == nil {
		t := now.Add(-time.Duration(d))
		if t.Before(limits.MinParamTime) {
			return time.Time{}, fmt.Errorf("%s before now is %s, before %s: want a shorter duration", limits.Quote(v),
				t.Format(time.RFC3339), limits.MinParamTime.Format(time.RFC3339))
		}
		return t, nil
	}
	if _, err := time.Parse(time.RFC3339, v); err != nil {
		return time.Time{}, fmt.Errorf("want a duration (30d) or an RFC 3339 time, got %s", limits.Quote(v))
	}
	t, err := limits.ParseTime("", v)
	var fe *limits.FieldError
	if errors.As(err, &fe) {
		return time.Time{}, fe.Err
	}
	return t, err
}

func (a *API) serve(w http.ResponseWriter, r *http.Request) {
	now := clock.OrReal(a.Clock).Now()
	q := r.URL.Query()
	// A misspelt ?sinc=7d would answer the default 30 days.
	if err := web.CheckParams(q, "since", "until", "short", "limit"); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	o := Options{Until: now, Since: now.Add(-30 * 24 * time.Hour)}
	bad := func(field string, err error) {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("%s: %w", field, err))
	}
	if v := q.Get("until"); v != "" {
		t, err := parseSince(v, now)
		if err != nil {
			bad("until", err)
			return
		}
		o.Until = t
	}
	if v := q.Get("since"); v != "" {
		t, err := parseSince(v, now)
		if err != nil {
			bad("since", err)
			return
		}
		o.Since = t
	}
	if !o.Since.Before(o.Until) {
		bad("since", errors.New("must be before until"))
		return
	}
	if v := q.Get("short"); v != "" {
		d, err := model.ParseDuration(v)
		if err != nil || d <= 0 {
			bad("short", fmt.Errorf("want a positive duration (10m), got %s", limits.Quote(v)))
			return
		}
		o.ShortAfter = time.Duration(d)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			bad("limit", fmt.Errorf("want a number, got %s", limits.Quote(v)))
			return
		}
		o.Limit = n
	}
	rep, err := Build(r.Context(), a.DB, o)
	if err != nil {
		web.Error(w, http.StatusServiceUnavailable, "unavailable", err)
		return
	}
	web.JSON(w, http.StatusOK, rep)
}
