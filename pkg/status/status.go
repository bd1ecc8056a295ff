package status

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/slo"
)

// State is the state of a component, worst last.
type State string

// States, from best to worst.
const (
	Operational      State = "operational"
	UnderMaintenance State = "under_maintenance"
	Degraded         State = "degraded_performance"
	PartialOutage    State = "partial_outage"
	MajorOutage      State = "major_outage"
)

var rank = map[State]int{Operational: 0, UnderMaintenance: 1, Degraded: 2, PartialOutage: 3, MajorOutage: 4}

func worst(a, b State) State {
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// Label is the state as the page says it.
func (s State) Label() string {
	switch s {
	case UnderMaintenance:
		return "Under maintenance"
	case Degraded:
		return "Degraded performance"
	case PartialOutage:
		return "Partial outage"
	case MajorOutage:
		return "Major outage"
	}
	return "Operational"
}

// stateOf is the impact of an open incident of this severity.
func stateOf(sev incident.Severity) State {
	switch sev {
	case incident.SeverityCritical:
		return MajorOutage
	case incident.SeverityHigh:
		return PartialOutage
	}
	return Degraded
}

// Page is the public status page: what /status, /status.json and the feed show.
type Page struct {
	Title       string            `json:"title"`
	URL         string            `json:"url,omitempty"`
	UpdatedAt   time.Time         `json:"updated_at"`
	Status      State             `json:"status"`
	Components  []ComponentStatus `json:"components"`
	Incidents   []PublicIncident  `json:"incidents"`
	Maintenance []MaintenanceInfo `json:"maintenance"`
}

// ComponentStatus is one component now and over the uptime days.
// UptimeRatio is over the days with data (DataDays); with none (the
// instant of a fresh install) it is 0 and null in JSON: no figure, not 100%.
type ComponentStatus struct {
	Name        string  `json:"name"`
	Description string  `json:"description,omitempty"`
	Status      State   `json:"status"`
	UptimeRatio float64 `json:"uptime_ratio"`
	Uptime      []Day   `json:"uptime"`
}

// MarshalJSON writes the uptime ratio of a component without a day of
// data as null, as the uptime of a day without data.
func (c ComponentStatus) MarshalJSON() ([]byte, error) {
	type plain ComponentStatus
	if c.DataDays() > 0 {
		return json.Marshal(plain(c))
	}
	return json.Marshal(struct {
		Name        string   `json:"name"`
		Description string   `json:"description,omitempty"`
		Status      State    `json:"status"`
		UptimeRatio *float64 `json:"uptime_ratio"`
		Uptime      []Day    `json:"uptime"`
	}{Name: c.Name, Description: c.Description, Status: c.Status, Uptime: c.Uptime})
}

// DataDays is the number of its uptime days that have data (Source not
// "none"): those its UptimeRatio is over.
func (c ComponentStatus) DataDays() int {
	n := 0
	for _, d := range c.Uptime {
		if d.Source != SourceNone {
			n++
		}
	}
	return n
}

// Day is one uptime bar. Uptime is the worst SLI the component's services
// achieved that day, from Prometheus (Source "sli"); on a day without SLI
// data, the share of the day without a major or partial outage (Source
// "incidents"); on a day before the component was first monitored, nothing
// (Source "none", uptime null in JSON, left out of the component's uptime).
// Incidents and Worst annotate it: how many incidents of the component's
// services were open that day and the worst impact among them.
type Day struct {
	Date      string  `json:"date"` // YYYY-MM-DD, UTC
	Uptime    float64 `json:"uptime"`
	Source    string  `json:"source"` // sli, incidents or none
	Incidents int     `json:"incidents"`
	Worst     State   `json:"worst"`
}

// MarshalJSON writes the uptime of a day without data as null.
func (d Day) MarshalJSON() ([]byte, error) {
	type plain Day
	if d.Source != SourceNone {
		return json.Marshal(plain(d))
	}
	return json.Marshal(struct {
		Date      string   `json:"date"`
		Uptime    *float64 `json:"uptime"`
		Source    string   `json:"source"`
		Incidents int      `json:"incidents"`
		Worst     State    `json:"worst"`
	}{Date: d.Date, Source: d.Source, Incidents: d.Incidents, Worst: d.Worst})
}

// Uptime sources.
const (
	SourceSLI       = "sli"
	SourceIncidents = "incidents"
	SourceNone      = "none"
)

// PublicIncident is an incident as customers see it: the components it
// affects, its impact and stage, and the status updates posted as public.
type PublicIncident struct {
	// ID is an opaque key (not the internal incident ID).
	ID         string     `json:"id"`
	Title      string     `json:"title"`
	Stage      string     `json:"stage"` // investigating, monitoring, resolved
	Impact     State      `json:"impact"`
	Components []string   `json:"components"`
	StartedAt  time.Time  `json:"started_at"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
	// Updates are the latest MaxPublicUpdates public updates, newest
	// first; EarlierUpdates counts those left out, older than them.
	Updates        []PublicUpdate `json:"updates"`
	EarlierUpdates int            `json:"earlier_updates,omitempty"`
}

// MaxPublicUpdates bounds the public updates the page, status.json and the
// feed show of one incident: the latest ones. An incident holds at most
// incident.MaxStatusUpdates updates; the page shows every incident open or
// resolved in the recent days, and one with many updates would make it
// long for every visitor (and every poll of status.json).
const MaxPublicUpdates = 25

// PublicUpdate is a status update a responder marked public.
type PublicUpdate struct {
	// ID is an opaque key of the stored update, unique and stable: the
	// Atom feed's entry ID (not in the JSON).
	ID      string    `json:"-"`
	Time    time.Time `json:"time"`
	Message string    `json:"message"`
}

// MaintenanceInfo is a maintenance window not yet over.
type MaintenanceInfo struct {
	Title       string    `json:"title"`
	Description string    `json:"description,omitempty"`
	Components  []string  `json:"components"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	InProgress  bool      `json:"in_progress"`
}

// Incidents is what the page reads of the incident service: the incidents,
// and of their timelines only the latest public status updates.
type Incidents interface {
	List(ctx context.Context, f incident.Filter) (*incident.Page, error)
	PublicStatusUpdates(ctx context.Context, ids []string, latest int) (map[string]incident.PublicUpdates, error)
}

// Options configure a Service.
type Options struct {
	Incidents Incidents
	// Budgets returns the last budget statuses (nil: no SLOs).
	Budgets func() []budget.Status
	// Clock tells the time (clock.Real when nil).
	Clock clock.Clock
	// CacheTTL is how long a computed page is served (unless an incident
	// or budget change drops it first), and the longest a cache in front
	// of sred may keep it (the answers' max-age counts down from it).
	// It also bounds how often Prometheus is asked for the uptime bars.
	// Default 15s.
	CacheTTL time.Duration
	// RecentDays is how long resolved incidents stay on the page and in
	// the feed. Default 7.
	RecentDays int
	// DailySLI returns per UTC date (YYYY-MM-DD) the worst SLI the
	// services achieved that day, from the midnight from to the day of now
	// (budget.Service.DailySLI: the recording rules in Prometheus). Nil,
	// or an error, leaves the bars to the incidents.
	DailySLI func(ctx context.Context, services []string, from, now time.Time) (map[string]float64, error)
	// FirstStart is when sred first started on the store (Load). A
	// component is monitored from then, or from the first day of SLI data
	// of its services or of one of their incidents if earlier; the days
	// before have no data. Zero: every day counts as monitored.
	FirstStart time.Time
	// Logger reports a failed DailySLI.
	Logger *slog.Logger
	// Key is the secret of the incidents' public keys (Load); a random
	// one when empty.
	Key []byte
}

// Service computes the page.
type Service struct {
	o     Options
	cfgMu sync.RWMutex
	cfg   Config
	// gen counts the changes (Invalidate): a snapshot of an earlier
	// generation is not served. Invalidate only adds to it, so that the
	// incident changes that call it (in their transaction) never wait for
	// a page being computed.
	gen atomic.Uint64
	// mu serialises the computations: the requests that find the snapshot
	// out of date wait for one computation and share it.
	mu   sync.Mutex
	snap atomic.Pointer[Snapshot]
	// sli caches the daily SLI of each component (per services and first
	// day) for CacheTTL; under mu. Incident changes do not drop it: it
	// comes from Prometheus.
	sli map[string]sliEntry
}

type sliEntry struct {
	at  time.Time
	sli map[string]float64
}

// Snapshot is a computed page and its rendered forms, each rendered once
// (on its first request) and served until the snapshot is out of date.
type Snapshot struct {
	Page *Page
	// At is when the page was computed.
	At    time.Time
	gen   uint64
	forms [numForms]form
	// content is contentKey of Page.
	content string
}

type form struct {
	once sync.Once
	body []byte
	etag string
	err  error
}

// Form is one rendered form of the page.
type Form int

// Forms of the page.
const (
	FormHTML Form = iota
	FormJSON
	FormAtom
	numForms
)

// Render returns the form f of the page, rendered by render on its first
// call, and its entity tag (a hash of the bytes, quoted).
func (sn *Snapshot) Render(f Form, render func(*Page) ([]byte, error)) ([]byte, string, error) {
	fm := &sn.forms[f]
	fm.once.Do(func() {
		fm.body, fm.err = render(sn.Page)
		if fm.err == nil {
			sum := sha256.Sum256(fm.body)
			fm.etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
		}
	})
	return fm.body, fm.etag, fm.err
}

// New returns a Service.
func New(cfg Config, o Options) *Service {
	o.Clock = clock.OrReal(o.Clock)
	if o.CacheTTL <= 0 {
		o.CacheTTL = 15 * time.Second
	}
	if o.RecentDays <= 0 {
		o.RecentDays = 7
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if len(o.Key) == 0 {
		o.Key = make([]byte, 32)
		_, _ = rand.Read(o.Key) // never fails (crypto/rand)
	}
	return &Service{o: o, cfg: cfg}
}

// SetConfig installs a reloaded configuration.
func (s *Service) SetConfig(cfg Config) {
	s.cfgMu.Lock()
	s.cfg = cfg
	s.cfgMu.Unlock()
	s.Invalidate()
}

// Config returns the configuration in force.
func (s *Service) Config() Config {
	s.cfgMu.RLock()
	defer s.cfgMu.RUnlock()
	return s.cfg
}

// ttl is how long a computed page is served (Options.CacheTTL).
func (s *Service) ttl() time.Duration { return s.o.CacheTTL }

// Page returns the page, computed at most once per CacheTTL unless a
// change (Invalidate) drops it.
func (s *Service) Page(ctx context.Context) (*Page, error) {
	sn, err := s.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return sn.Page, nil
}

// fresh reports whether sn may be served at now: computed less than
// CacheTTL ago (and not in the future of a clock set back), with no
// change since.
func (s *Service) fresh(sn *Snapshot, now time.Time) bool {
	return sn != nil && sn.gen == s.gen.Load() && s.young(sn, now)
}

// young reports whether sn was computed less than CacheTTL before now,
// whatever changed since.
func (s *Service) young(sn *Snapshot, now time.Time) bool {
	age := now.Sub(sn.At)
	return age >= 0 && age < s.o.CacheTTL
}

// Snapshot returns the page with its rendered forms: the last one while
// it is fresh, otherwise a new one, computed once for all the requests
// waiting for it. After a change, while one request computes the new
// page, the others are answered the last one if it is younger than
// CacheTTL rather than wait: during an outage every alert delivery is a
// change, and the page's visitors would otherwise queue behind one
// computation after another.
func (s *Service) Snapshot(ctx context.Context) (*Snapshot, error) {
	last := s.snap.Load()
	if now := s.o.Clock.Now(); last != nil && s.young(last, now) {
		if last.gen == s.gen.Load() {
			return last, nil
		}
		if !s.mu.TryLock() {
			return last, nil // being computed again
		}
	} else {
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	now := s.o.Clock.Now()
	if sn := s.snap.Load(); sn != nil && s.fresh(sn, now) {
		return sn, nil // computed while this request waited
	}
	// The generation before reading: a change during the computation
	// leaves the snapshot out of date.
	gen := s.gen.Load()
	p, err := s.compute(ctx, s.Config(), now)
	if err != nil {
		return nil, err
	}
	sn := &Snapshot{Page: p, At: now, gen: gen, content: contentKey(p)}
	if prev := s.snap.Load(); prev != nil && prev.content != "" && prev.content == sn.content {
		// Nothing shown changed: the page keeps the time of its last
		// change, so that its forms are the same bytes with the same
		// entity tags and a poller's If-None-Match is answered 304.
		p.UpdatedAt = prev.Page.UpdatedAt
	}
	s.snap.Store(sn)
	return sn, nil
}

// contentKey is a hash of what p shows, its time of computation
// (UpdatedAt) aside: the JSON form and the feed's update IDs, which the
// JSON leaves out. "" when p cannot be encoded (never the same as another).
func contentKey(p *Page) string {
	c := *p
	c.UpdatedAt = time.Time{}
	b, err := json.Marshal(&c)
	if err != nil {
		return ""
	}
	h := sha256.New()
	h.Write(b)
	for _, i := range p.Incidents {
		for _, u := range i.Updates {
			h.Write([]byte{0})
			h.Write([]byte(u.ID))
		}
	}
	return string(h.Sum(nil))
}

// Invalidate drops the cached page (after an incident or budget change):
// the next request computes it again. It never waits.
func (s *Service) Invalidate() {
	s.gen.Add(1)
}

// dailySLI is Options.DailySLI, each answer kept for CacheTTL: Prometheus
// is asked at most once per CacheTTL per component, however often
// incident changes make the page be computed again. Under mu.
func (s *Service) dailySLI(ctx context.Context, services []string, from, now time.Time) (map[string]float64, error) {
	key := strings.Join(services, "\x00") + "\x00" + from.Format(time.DateOnly)
	if e, ok := s.sli[key]; ok && now.Sub(e.at) >= 0 && now.Sub(e.at) < s.o.CacheTTL {
		return e.sli, nil
	}
	sli, err := s.o.DailySLI(ctx, services, from, now)
	if err != nil {
		return nil, err
	}
	if s.sli == nil || len(s.sli) > 4096 {
		s.sli = map[string]sliEntry{} // keys of old days and configurations go
	}
	s.sli[key] = sliEntry{at: now, sli: sli}
	return sli, nil
}

var openStatuses = []incident.Status{incident.StatusTriggered, incident.StatusAcknowledged, incident.StatusInvestigating}

// list pages through every incident matching f.
func (s *Service) list(ctx context.Context, f incident.Filter) ([]incident.Incident, error) {
	var out []incident.Incident
	f.Limit = 1000
	for {
		p, err := s.o.Incidents.List(ctx, f)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Incidents...)
		if len(p.Incidents) < f.Limit || f.Offset+len(p.Incidents) >= p.Total {
			return out, nil
		}
		f.Offset += len(p.Incidents)
	}
}

func (s *Service) compute(ctx context.Context, cfg Config, now time.Time) (*Page, error) {
	now = now.UTC()
	p := &Page{Title: cfg.Title, URL: cfg.URL, UpdatedAt: now, Status: Operational,
		Components: []ComponentStatus{}, Incidents: []PublicIncident{}, Maintenance: []MaintenanceInfo{}}
	byService := map[string][]string{} // service -> components
	for _, c := range cfg.Components {
		for _, svc := range c.Services {
			byService[svc] = append(byService[svc], c.Name)
		}
	}
	days := cfg.UptimeDays
	if days <= 0 {
		days = DefaultUptimeDays
	}
	today := now.Truncate(24 * time.Hour)
	from := today.AddDate(0, 0, -(days - 1))
	open, err := s.list(ctx, incident.Filter{Status: openStatuses})
	if err != nil {
		return nil, fmt.Errorf("status page: open incidents: %w", err)
	}
	recent := now.AddDate(0, 0, -s.o.RecentDays)
	// The incidents resolved since the first bar or the recent days began,
	// however long ago they opened.
	past, err := s.list(ctx, incident.Filter{Status: []incident.Status{incident.StatusResolved}, ResolvedSince: minTime(from, recent)})
	if err != nil {
		return nil, fmt.Errorf("status page: past incidents: %w", err)
	}
	compState := map[string]State{}
	// outages[component] are the intervals of major or partial outages.
	type span struct {
		from, to time.Time
		state    State
	}
	outages := map[string][]span{}
	type shownIncident struct {
		inc   incident.Incident
		comps []string
		st    State
	}
	var shown []shownIncident
	var ids []string
	for _, inc := range append(open, past...) {
		comps := byService[inc.Service]
		if len(comps) == 0 {
			continue
		}
		st := stateOf(inc.Severity)
		end := now
		if inc.ResolvedAt != nil {
			end = *inc.ResolvedAt
		}
		for _, c := range comps {
			outages[c] = append(outages[c], span{startOf(inc), end, st})
			if inc.ResolvedAt == nil {
				compState[c] = worst(compState[c], st)
			}
		}
		if inc.ResolvedAt != nil && inc.ResolvedAt.Before(recent) {
			continue
		}
		shown = append(shown, shownIncident{inc, comps, st})
		ids = append(ids, inc.ID)
	}
	// Of their timelines, only the public updates shown.
	updates, err := s.o.Incidents.PublicStatusUpdates(ctx, ids, MaxPublicUpdates)
	if err != nil {
		return nil, fmt.Errorf("status page: public updates: %w", err)
	}
	for _, sh := range shown {
		pi := s.public(sh.inc, sh.comps, sh.st, updates[sh.inc.ID])
		if sh.inc.ResolvedAt != nil && len(pi.Updates) == 0 {
			continue // resolved without a public word: nothing to tell
		}
		p.Incidents = append(p.Incidents, pi)
	}
	slices.SortFunc(p.Incidents, func(a, b PublicIncident) int {
		if (a.ResolvedAt == nil) != (b.ResolvedAt == nil) {
			if a.ResolvedAt == nil {
				return -1
			}
			return 1
		}
		return b.StartedAt.Compare(a.StartedAt)
	})
	// Error budgets spent: degraded performance.
	if s.o.Budgets != nil {
		for _, st := range s.o.Budgets() {
			if st.State == slo.BudgetRed || st.State == slo.BudgetExhausted {
				for _, c := range byService[st.Service] {
					compState[c] = worst(compState[c], Degraded)
				}
			}
		}
	}
	inMaint := map[string]bool{}
	for _, m := range cfg.Maintenance {
		if !m.End.After(now) {
			continue
		}
		mi := MaintenanceInfo{Title: m.Title, Description: m.Description, Components: m.Components,
			Start: m.Start.UTC(), End: m.End.UTC(), InProgress: !m.Start.After(now)}
		if mi.InProgress {
			for _, c := range m.Components {
				inMaint[c] = true
			}
		}
		p.Maintenance = append(p.Maintenance, mi)
	}
	slices.SortFunc(p.Maintenance, func(a, b MaintenanceInfo) int { return a.Start.Compare(b.Start) })
	for _, c := range cfg.Components {
		st := cmp.Or(compState[c.Name], Operational)
		if st == Operational && inMaint[c.Name] {
			st = UnderMaintenance
		}
		cs := ComponentStatus{Name: c.Name, Description: c.Description, Status: st}
		var sli map[string]float64
		if s.o.DailySLI != nil {
			if sli, err = s.dailySLI(ctx, c.Services, from, now); err != nil {
				s.o.Logger.Warn("status page: daily SLI from Prometheus; uptime bars from incidents", "component", c.Name, "err", err)
				sli = nil
			}
		}
		// since: when the component was first monitored.
		since := s.o.FirstStart.UTC()
		if !since.IsZero() {
			for date := range sli {
				if t, err := time.Parse(time.DateOnly, date); err == nil && t.Before(since) {
					since = t
				}
			}
			for _, o := range outages[c.Name] {
				if o.from.Before(since) {
					since = o.from.UTC().Truncate(24 * time.Hour)
				}
			}
		}
		var up, total float64
		for d := from; !d.After(today); d = d.AddDate(0, 0, 1) {
			dayEnd := d.Add(24 * time.Hour)
			if dayEnd.After(now) {
				dayEnd = now
			}
			day := Day{Date: d.Format("2006-01-02"), Worst: Operational, Source: SourceIncidents}
			v, hasSLI := sli[day.Date]
			if !hasSLI && !since.Before(dayEnd) {
				day.Source = SourceNone
				cs.Uptime = append(cs.Uptime, day)
				continue
			}
			// The day counts from when it was first monitored.
			dayStart := maxTime(d, since)
			var ivs [][2]time.Time
			for _, o := range outages[c.Name] {
				if !o.from.Before(dayEnd) || !o.to.After(d) {
					continue
				}
				day.Incidents++
				day.Worst = worst(day.Worst, o.state)
				if o.state == Degraded {
					continue // degraded is not down
				}
				ivs = append(ivs, [2]time.Time{maxTime(o.from, dayStart), minTime(o.to, dayEnd)})
			}
			length := dayEnd.Sub(dayStart)
			down := union(ivs)
			if length > 0 {
				day.Uptime = 1 - float64(down)/float64(length)
			} else {
				day.Uptime = 1
			}
			if hasSLI {
				day.Uptime, day.Source = min(max(v, 0), 1), SourceSLI
				length = dayEnd.Sub(d)
			}
			up += day.Uptime * float64(length)
			total += float64(length)
			cs.Uptime = append(cs.Uptime, day)
		}
		switch {
		case total > 0:
			cs.UptimeRatio = up / total
		case cs.DataDays() > 0:
			cs.UptimeRatio = 1 // today's bar, at midnight: no time has passed
		}
		p.Components = append(p.Components, cs)
		p.Status = worst(p.Status, st)
	}
	return p, nil
}

// public turns an incident into what customers see, with its latest
// public updates (incident.Service.PublicStatusUpdates).
func (s *Service) public(inc incident.Incident, comps []string, st State, updates incident.PublicUpdates) PublicIncident {
	pi := PublicIncident{ID: publicID(s.o.Key, inc.ID), Impact: st, Components: comps, StartedAt: startOf(inc).UTC(),
		Stage: "investigating", Updates: []PublicUpdate{}}
	if inc.MitigatedBy != "" {
		pi.Stage = "monitoring"
	}
	if inc.ResolvedAt != nil {
		t := inc.ResolvedAt.UTC()
		pi.ResolvedAt, pi.Stage = &t, "resolved"
	}
	pi.Title = st.Label() + " of " + joinNames(comps)
	for _, e := range updates.Latest[:min(len(updates.Latest), MaxPublicUpdates)] {
		msg, _ := e.Data["public_message"].(string)
		pi.Updates = append(pi.Updates, PublicUpdate{ID: publicID(s.o.Key, "update:"+strconv.FormatInt(e.ID, 10)), Time: e.Time.UTC(), Message: msg})
	}
	pi.EarlierUpdates = max(updates.Total-len(pi.Updates), 0)
	return pi
}

// startOf is when the incident started: its detection, or its creation
// when its first alert claims to start later (an Alertmanager clock ahead).
func startOf(inc incident.Incident) time.Time {
	if inc.DetectedAt.After(inc.CreatedAt) {
		return inc.CreatedAt
	}
	return inc.DetectedAt
}

func joinNames(n []string) string {
	switch len(n) {
	case 0:
		return ""
	case 1:
		return n[0]
	}
	out := ""
	for i, s := range n {
		switch {
		case i == 0:
		case i == len(n)-1:
			out += " and "
		default:
			out += ", "
		}
		out += s
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// union is the total length of intervals that may overlap.
func union(ivs [][2]time.Time) time.Duration {
	slices.SortFunc(ivs, func(a, b [2]time.Time) int { return a[0].Compare(b[0]) })
	var total time.Duration
	var cur [2]time.Time
	for i, iv := range ivs {
		if !iv[1].After(iv[0]) {
			continue
		}
		if i == 0 || cur[1].IsZero() || iv[0].After(cur[1]) {
			if !cur[1].IsZero() {
				total += cur[1].Sub(cur[0])
			}
			cur = iv
			continue
		}
		if iv[1].After(cur[1]) {
			cur[1] = iv[1]
		}
	}
	if !cur[1].IsZero() {
		total += cur[1].Sub(cur[0])
	}
	return total
}
