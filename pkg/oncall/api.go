package oncall

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/web"
)

// API serves the on-call HTTP endpoints.
type API struct {
	dir    *Directory
	clock  clock.Clock
	logger *slog.Logger
}

// NewAPI returns the on-call API over dir. clk may be nil (the wall clock).
func NewAPI(dir *Directory, clk clock.Clock, logger *slog.Logger) *API {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &API{dir: dir, clock: clock.OrReal(clk), logger: logger}
}

// Register mounts the routes on mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/oncall", a.who)
	mux.HandleFunc("GET /api/v1/oncall/schedules", a.schedules)
	mux.HandleFunc("GET /api/v1/oncall/schedules/{name}/shifts", a.shifts)
	mux.HandleFunc("GET /api/v1/oncall/schedules/{name}/gaps", a.gaps)
	mux.HandleFunc("GET /api/v1/oncall/schedules/{name}/overrides", a.listOverrides)
	mux.HandleFunc("PUT /api/v1/oncall/schedules/{name}/overrides", a.putOverrides)
	mux.HandleFunc("DELETE /api/v1/oncall/schedules/{name}/overrides/{id}", a.deleteOverride)
	mux.HandleFunc("PUT /api/oncall/schedule", a.putShiftSchedule)
}

// OnCallEntry answers "who is on call" for one schedule.
type OnCallEntry struct {
	Schedule string `json:"schedule"`
	Service  string `json:"service,omitempty"`
	Role     string `json:"role,omitempty"` // primary | backup
	At       string `json:"at"`
	User     string `json:"user,omitempty"`
	// TimeZone is the schedule's zone (IANA name), the zone of its shifts.
	TimeZone string  `json:"time_zone,omitempty"`
	Shifts   []Shift `json:"shifts,omitempty"`
}

func parseTimeParam(r *http.Request, name string, def time.Time) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	return limits.ParseTime(name, v)
}

// windowEnd refuses a window of shifts that ends after the last time
// the API takes (limits.MaxParamTime): from 9999-12-30 with the default 7
// days, whose shifts of the year 10000 JSON cannot encode.
func windowEnd(from, to time.Time) error {
	if to.After(limits.MaxParamTime) {
		return fmt.Errorf("window from %s to %s ends after %s", from.UTC().Format(time.RFC3339Nano),
			to.UTC().Format(time.RFC3339Nano), limits.MaxParamTime.Format(time.RFC3339))
	}
	return nil
}

// parseDays reads the days parameter: def when absent, else an integer
// from min to 366 (a window of shifts or gaps needs at least one day).
func parseDays(r *http.Request, def, min int) (int, error) {
	v := r.URL.Query().Get("days")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > 366 {
		return 0, fmt.Errorf("invalid days %s: want an integer from %d to 366", limits.Quote(v), min)
	}
	return n, nil
}

// ErrUnknown is the error of Who for a service or schedule that is not
// configured.
var ErrUnknown = errors.New("unknown")

// Who answers who is on call for a service or schedule (all schedules when
// both are empty) at t, with the next `days` days of shifts.
func (d *Directory) Who(ctx context.Context, service, schedule string, at time.Time, days int) ([]OnCallEntry, error) {
	cfg := d.Config()
	type target struct{ schedule, service, role string }
	var targets []target
	switch {
	case service != "":
		svc := cfg.Service(service)
		if svc == nil {
			return nil, fmt.Errorf("%w service %s", ErrUnknown, limits.Quote(service))
		}
		targets = append(targets, target{svc.Primary, svc.Name, "primary"})
		if svc.Backup != "" {
			targets = append(targets, target{svc.Backup, svc.Name, "backup"})
		}
	case schedule != "":
		if cfg.Schedule(schedule) == nil {
			return nil, fmt.Errorf("%w schedule %s", ErrUnknown, limits.Quote(schedule))
		}
		targets = append(targets, target{schedule: schedule})
	default:
		for _, s := range cfg.Schedules {
			targets = append(targets, target{schedule: s.Name})
		}
	}
	out := []OnCallEntry{}
	for _, t := range targets {
		u, err := d.OnCall(ctx, nil, t.schedule, at)
		if err != nil {
			return nil, err
		}
		e := OnCallEntry{Schedule: t.schedule, Service: t.service, Role: t.role, At: at.UTC().Format(time.RFC3339), User: u}
		if s := cfg.Schedule(t.schedule); s != nil {
			e.TimeZone = s.Location().String()
		}
		if days > 0 {
			if e.Shifts, err = d.Shifts(ctx, nil, t.schedule, at, at.Add(time.Duration(days)*24*time.Hour)); err != nil {
				return nil, err
			}
		}
		out = append(out, e)
	}
	return out, nil
}

func (a *API) who(w http.ResponseWriter, r *http.Request) {
	// A misspelt ?servce=api would answer every schedule's on-call.
	if err := web.CheckParams(r.URL.Query(), "service", "schedule", "at", "days"); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	at, err := parseTimeParam(r, "at", a.clock.Now())
	if err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	days, err := parseDays(r, 0, 0)
	if err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	if err := windowEnd(at, at.Add(time.Duration(days)*24*time.Hour)); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	out, err := a.dir.Who(r.Context(), r.URL.Query().Get("service"), r.URL.Query().Get("schedule"), at, days)
	if err != nil {
		// An unknown name is the request's; anything else (the stored
		// overrides could not be read) is sred's.
		code, typ := http.StatusInternalServerError, "internal"
		if errors.Is(err, ErrUnknown) {
			code, typ = http.StatusNotFound, "not_found"
		}
		web.Error(w, code, typ, err)
		return
	}
	web.JSON(w, http.StatusOK, out)
}

func (a *API) schedules(w http.ResponseWriter, r *http.Request) {
	now := a.clock.Now()
	type sched struct {
		Name     string `json:"name"`
		TimeZone string `json:"time_zone"`
		Layers   int    `json:"layers"`
		OnCall   string `json:"on_call,omitempty"`
	}
	out := []sched{}
	for _, s := range a.dir.Config().Schedules {
		u, err := a.dir.OnCall(r.Context(), nil, s.Name, now)
		if err != nil {
			web.Error(w, http.StatusInternalServerError, "internal", err)
			return
		}
		out = append(out, sched{Name: s.Name, TimeZone: s.TimeZone, Layers: len(s.Layers), OnCall: u})
	}
	web.JSON(w, http.StatusOK, out)
}

func (a *API) window(w http.ResponseWriter, r *http.Request) (from, to time.Time, ok bool) {
	// A misspelt ?form= would answer the window from now.
	if err := web.CheckParams(r.URL.Query(), "from", "to", "days"); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return from, to, false
	}
	from, err := parseTimeParam(r, "from", a.clock.Now())
	if err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return from, to, false
	}
	days, err := parseDays(r, 7, 1)
	if err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return from, to, false
	}
	to, err = parseTimeParam(r, "to", from.Add(time.Duration(days)*24*time.Hour))
	if err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return from, to, false
	}
	if !to.After(from) {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("to %s is not after from %s", to.UTC().Format(time.RFC3339Nano), from.UTC().Format(time.RFC3339Nano)))
		return from, to, false
	}
	if to.Sub(from) > 366*24*time.Hour {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("window from %s to %s is longer than 366 days",
			from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano)))
		return from, to, false
	}
	if err := windowEnd(from, to); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return from, to, false
	}
	return from, to, true
}

func (a *API) schedule(w http.ResponseWriter, r *http.Request) *Schedule {
	s := a.dir.Config().Schedule(r.PathValue("name"))
	if s == nil {
		// The name is the caller's: cut, never echoed whole.
		web.Error(w, http.StatusNotFound, "not_found", fmt.Errorf("unknown schedule %s", limits.Quote(r.PathValue("name"))))
	}
	return s
}

// scheduleWindow resolves the {name} schedule and the from/to window of
// the request, writing the error response and returning ok false when
// either is bad.
func (a *API) scheduleWindow(w http.ResponseWriter, r *http.Request) (s *Schedule, from, to time.Time, ok bool) {
	if s = a.schedule(w, r); s == nil {
		return nil, from, to, false
	}
	from, to, ok = a.window(w, r)
	return s, from, to, ok
}

// scheduleShifts returns the shifts of the {name} schedule within the
// request's window, writing the error response and returning ok false on
// failure.
func (a *API) scheduleShifts(w http.ResponseWriter, r *http.Request) ([]Shift, bool) {
	s, from, to, ok := a.scheduleWindow(w, r)
	if !ok {
		return nil, false
	}
	sh, err := a.dir.Shifts(r.Context(), nil, s.Name, from, to)
	if err != nil {
		web.Error(w, http.StatusInternalServerError, "internal", err)
		return nil, false
	}
	return sh, true
}

func (a *API) shifts(w http.ResponseWriter, r *http.Request) {
	sh, ok := a.scheduleShifts(w, r)
	if !ok {
		return
	}
	web.JSON(w, http.StatusOK, sh)
}

func (a *API) gaps(w http.ResponseWriter, r *http.Request) {
	sh, ok := a.scheduleShifts(w, r)
	if !ok {
		return
	}
	gaps := []Shift{}
	for _, x := range sh {
		if x.User == "" {
			gaps = append(gaps, x)
		}
	}
	web.JSON(w, http.StatusOK, gaps)
}

func (a *API) listOverrides(w http.ResponseWriter, r *http.Request) {
	s, from, to, ok := a.scheduleWindow(w, r)
	if !ok {
		return
	}
	ovs, err := a.dir.Overrides(r.Context(), nil, s.Name, from, to)
	if err != nil {
		web.Error(w, http.StatusInternalServerError, "internal", err)
		return
	}
	if ovs == nil {
		ovs = []*Override{}
	}
	web.JSON(w, http.StatusOK, ovs)
}

// OverridesRequest is the body of PUT /api/v1/oncall/schedules/{name}/overrides:
// the stored overrides overlapping [from, to) are replaced by Overrides.
// From and To default to the span of Overrides.
type OverridesRequest struct {
	From      *time.Time  `json:"from,omitempty"`
	To        *time.Time  `json:"to,omitempty"`
	Overrides []*Override `json:"overrides"`
	By        string      `json:"by,omitempty"`
}

func (a *API) userSet() map[string]bool {
	users := map[string]bool{}
	for _, u := range a.dir.Config().Users {
		users[u.Name] = true
	}
	return users
}

func span(ovs []*Override, from, to *time.Time) (time.Time, time.Time, error) {
	var f, t time.Time
	for _, o := range ovs {
		if f.IsZero() || o.Start.Before(f) {
			f = o.Start
		}
		if o.End.After(t) {
			t = o.End
		}
	}
	if from != nil {
		f = *from
	}
	if to != nil {
		t = *to
	}
	if f.IsZero() || t.IsZero() {
		return f, t, errors.New("from and to are required when no overrides are given")
	}
	if !t.After(f) {
		return f, t, fmt.Errorf("to %s is not after from %s", t.UTC().Format(time.RFC3339Nano), f.UTC().Format(time.RFC3339Nano))
	}
	for i, o := range ovs {
		if o.Start.Before(f) || o.End.After(t) {
			return f, t, fmt.Errorf("override %d (%s to %s) is not within from %s and to %s", i,
				o.Start.UTC().Format(time.RFC3339), o.End.UTC().Format(time.RFC3339), f.UTC().Format(time.RFC3339), t.UTC().Format(time.RFC3339))
		}
	}
	return f, t, nil
}

func (a *API) putOverrides(w http.ResponseWriter, r *http.Request) {
	s := a.schedule(w, r)
	if s == nil {
		return
	}
	var req OverridesRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	users := a.userSet()
	for i, o := range req.Overrides {
		if o == nil {
			web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("override %d is null", i))
			return
		}
		if err := validateStored(o, users); err != nil {
			web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("override %d: %w", i, err))
			return
		}
	}
	for _, f := range []struct {
		name string
		t    *time.Time
	}{{"from", req.From}, {"to", req.To}} {
		if f.t == nil {
			continue
		}
		// Given, but the zero time (or within its millisecond): span
		// would take it for absent and say it is required.
		if t := f.t.Truncate(time.Millisecond); t.IsZero() {
			web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("%s: %s is out of range: the zero time (0001-01-01T00:00:00Z, to the millisecond) reads as no time; give a later one",
				f.name, f.t.UTC().Format(time.RFC3339Nano)))
			return
		}
		*f.t = f.t.Truncate(time.Millisecond)
	}
	from, to, err := span(req.Overrides, req.From, req.To)
	if err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	if err := a.dir.ReplaceOverrides(r.Context(), s.Name, from, to, req.Overrides, auth.ActorOf(r.Context(), req.By, ""), a.clock.Now()); err != nil {
		web.Error(w, http.StatusInternalServerError, "internal", err)
		return
	}
	a.logger.Info("on-call overrides replaced", "schedule", s.Name, "count", len(req.Overrides), "from", from, "to", to)
	ovs, err := a.dir.Overrides(r.Context(), nil, s.Name, from, to)
	if err != nil {
		web.Error(w, http.StatusInternalServerError, "internal", err)
		return
	}
	if ovs == nil {
		ovs = []*Override{}
	}
	web.JSON(w, http.StatusOK, ovs)
}

// validateStored validates o as the store keeps it: its times to the
// millisecond (the store's precision), so that an override is never stored
// ending where it starts (end a nanosecond after start passed Validate and
// was stored with end equal to start).
func validateStored(o *Override, users map[string]bool) error {
	after := o.End.After(o.Start)
	o.Start, o.End = o.Start.Truncate(time.Millisecond), o.End.Truncate(time.Millisecond)
	err := o.Validate(users)
	if err != nil && after && !o.End.After(o.Start) {
		err = fmt.Errorf("%w (times are kept to the millisecond)", err)
	}
	return err
}

func (a *API) deleteOverride(w http.ResponseWriter, r *http.Request) {
	s := a.schedule(w, r)
	if s == nil {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("invalid override id %s", limits.Quote(r.PathValue("id"))))
		return
	}
	ok, err := a.dir.DeleteOverride(r.Context(), s.Name, id, a.clock.Now())
	if err != nil {
		web.Error(w, http.StatusInternalServerError, "internal", err)
		return
	}
	if !ok {
		web.Error(w, http.StatusNotFound, "not_found", fmt.Errorf("schedule %q has no override %d", s.Name, id))
		return
	}
	web.JSON(w, http.StatusOK, map[string]int64{"deleted": id})
}

// ShiftScheduleRequest is the PUT /api/oncall/schedule body. Each
// shift becomes an override of the service's primary schedule (primary) and
// of its backup schedule (backup). Start and end are RFC 3339 times, or
// wall-clock times without a UTC offset ("2026-03-28T09:00") in the
// schedule's timezone (required for those).
type ShiftScheduleRequest struct {
	Service  string `json:"service"`
	Schedule struct {
		TimeZone string `json:"timezone"`
		Shifts   []struct {
			Start   string `json:"start"`
			End     string `json:"end"`
			Primary string `json:"primary"`
			Backup  string `json:"backup,omitempty"`
		} `json:"shifts"`
	} `json:"schedule"`
}

// localLayouts are the accepted forms of a time without a UTC offset.
var localLayouts = []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04"}

// parseShiftTime reads an RFC 3339 time, or a wall-clock time in loc (nil
// when the request named no timezone).
func parseShiftTime(field, v string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, limits.Time(field, t)
	}
	for _, l := range localLayouts {
		wall, err := time.Parse(l, v)
		if err != nil {
			continue
		}
		if loc == nil {
			return time.Time{}, fmt.Errorf("%s %s has no UTC offset: add one or set schedule.timezone", field, limits.Quote(v))
		}
		t, _ := time.ParseInLocation(l, v, loc)
		// A wall-clock time the clocks skip (a spring-forward gap) does
		// not exist there: Go moves it by the gap, which would make a
		// shift start or end an hour off without a word.
		if y, mo, d := t.Date(); y != wall.Year() || mo != wall.Month() || d != wall.Day() || t.Hour() != wall.Hour() || t.Minute() != wall.Minute() {
			return time.Time{}, fmt.Errorf("%s %s does not exist in %s (the clocks skip it): give a UTC offset or another time", field, limits.Quote(v), loc)
		}
		return t, limits.Time(field, t)
	}
	return time.Time{}, fmt.Errorf("%s %s: want RFC 3339 (2026-03-28T09:00:00Z) or a wall-clock time in schedule.timezone (2026-03-28T09:00)", field, limits.Quote(v))
}

func (a *API) putShiftSchedule(w http.ResponseWriter, r *http.Request) {
	var req ShiftScheduleRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	svc := a.dir.Config().Service(req.Service)
	if svc == nil {
		web.Error(w, http.StatusNotFound, "not_found", fmt.Errorf("unknown service %s", limits.Quote(req.Service)))
		return
	}
	var loc *time.Location
	if req.Schedule.TimeZone != "" {
		var err error
		if loc, err = time.LoadLocation(req.Schedule.TimeZone); err != nil {
			web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("unknown timezone %s", limits.Quote(req.Schedule.TimeZone)))
			return
		}
	}
	if len(req.Schedule.Shifts) == 0 {
		web.Error(w, http.StatusBadRequest, "bad_data", errors.New("no shifts"))
		return
	}
	users := a.userSet()
	var primary, backup []*Override
	for i, sh := range req.Schedule.Shifts {
		start, err := parseShiftTime("start", sh.Start, loc)
		var end time.Time
		if err == nil {
			end, err = parseShiftTime("end", sh.End, loc)
		}
		if err != nil {
			web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("shift %d: %w", i, err))
			return
		}
		p := &Override{User: sh.Primary, Start: start, End: end, Reason: "PUT /api/oncall/schedule"}
		if err := validateStored(p, users); err != nil {
			web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("shift %d primary: %w", i, err))
			return
		}
		primary = append(primary, p)
		if sh.Backup != "" {
			if svc.Backup == "" {
				web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("shift %d: service %q has no backup schedule", i, svc.Name))
				return
			}
			b := &Override{User: sh.Backup, Start: start, End: end, Reason: "PUT /api/oncall/schedule"}
			if err := validateStored(b, users); err != nil {
				web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("shift %d backup: %w", i, err))
				return
			}
			backup = append(backup, b)
		}
	}
	now := a.clock.Now()
	from, to, _ := span(primary, nil, nil)
	err := a.dir.db.InTx(r.Context(), func(tx *sql.Tx) error {
		locked := []string{svc.Primary}
		if len(backup) > 0 {
			locked = append(locked, svc.Backup)
		}
		if err := lockSchedules(r.Context(), tx, a.dir.db.Dialect, locked...); err != nil {
			return err
		}
		if err := replaceOverrides(r.Context(), tx, svc.Primary, from, to, primary, "api", now); err != nil {
			return err
		}
		changed := []string{svc.Primary}
		if len(backup) > 0 {
			if err := replaceOverrides(r.Context(), tx, svc.Backup, from, to, backup, "api", now); err != nil {
				return err
			}
			changed = append(changed, svc.Backup)
		}
		return a.dir.changed(r.Context(), tx, changed, now)
	})
	if err != nil {
		web.Error(w, http.StatusInternalServerError, "internal", err)
		return
	}
	out, err := a.dir.Who(r.Context(), svc.Name, "", from, 0)
	if err != nil {
		web.Error(w, http.StatusInternalServerError, "internal", err)
		return
	}
	web.JSON(w, http.StatusOK, out)
}

// Collector exports sre_oncall_coverage_gap_seconds per schedule.
type Collector struct {
	dir   *Directory
	clock clock.Clock
	desc  *prometheus.Desc
}

// NewCollector returns the coverage collector.
func NewCollector(dir *Directory, clk clock.Clock) *Collector {
	return &Collector{dir: dir, clock: clock.OrReal(clk), desc: prometheus.NewDesc("sre_oncall_coverage_gap_seconds",
		"Seconds without anybody on call within the gap horizon from now.",
		[]string{"schedule"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	cfg := c.dir.Config()
	now := c.clock.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range cfg.Schedules {
		sh, err := c.dir.Shifts(ctx, nil, s.Name, now, now.Add(time.Duration(cfg.GapHorizon)))
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.desc, err)
			continue
		}
		var gap time.Duration
		for _, x := range sh {
			if x.User == "" {
				gap += x.End.Sub(x.Start)
			}
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, gap.Seconds(), s.Name)
	}
}
