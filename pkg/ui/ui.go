// Package ui is the SRE console of sred, served on its web listener: the
// home page (every service with its SLOs, open incidents, who is on call,
// MTTA/MTTR, deploy gate answers), one page per SLO (burn-down chart, burn
// rates against the alert thresholds, policy history), the incident list
// and incident pages with their action buttons, a form to open an incident
// by hand, the on-call page, the runbooks page, the chaos pages
// (experiments, runs with their step timeline and report links, approvals),
// the service dependency graph with the likely root of what fails, and the
// alert noise report.
//
// Pages render on the server with html/template (label values and timeline
// text are escaped) and work without JavaScript: buttons are plain forms
// posted to this package's handlers, which call the same services as the
// JSON API and redirect back (cross-origin posts are refused by
// http.CrossOriginProtection). The embedded console.js adds live updates:
// it listens to the event stream (GET /api/v1/events) and refreshes the
// page's main element when something it shows changed. Charts are SVG drawn
// on the server. Nothing is loaded from outside sred.
//
// A principal whose role is below responder (package auth) sees no action
// buttons, and the action handlers refuse it anyway.
package ui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/bidi"
	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/chaos"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/correlation"
	"github.com/rootuip/sre/pkg/english"
	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/oncall"
	"github.com/rootuip/sre/pkg/runbook"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/web"
)

//go:embed templates/*.html
var templatesFS embed.FS

//go:embed static
var staticFS embed.FS

// Incidents is what the pages need from the incident service.
type Incidents interface {
	// ResolveID is the stored form of an incident ID typed in any case
	// (incident.Service.ResolveID).
	ResolveID(ctx context.Context, id string) (string, error)
	Get(ctx context.Context, id string) (*incident.Incident, error)
	List(ctx context.Context, f incident.Filter) (*incident.Page, error)
	// OpenWithServices is every open incident (at most limit) with the
	// services of its alert groups, in one query.
	OpenWithServices(ctx context.Context, limit int) ([]incident.Incident, bool, error)
	// TimelineView is the timeline with the entries of the incident's
	// state at read time (incident.Service.TimelineView).
	TimelineView(ctx context.Context, id string) ([]incident.TimelineEntry, error)
	Stats(ctx context.Context, since time.Time) (*incident.Stats, error)
	OpenCounts(ctx context.Context) (map[incident.Severity]int, error)
	Create(ctx context.Context, m incident.ManualIncident) (*incident.Incident, error)
	Acknowledge(ctx context.Context, id, actor string) (*incident.Incident, error)
	Investigate(ctx context.Context, id, actor, assignee string) (*incident.Incident, error)
	Resolve(ctx context.Context, id, actor, note string) (*incident.Incident, error)
	Snooze(ctx context.Context, id, actor string, d time.Duration) (*incident.Incident, error)
	AddNote(ctx context.Context, id, actor, text string) (*incident.TimelineEntry, error)
	PostStatusUpdate(ctx context.Context, id string, u incident.StatusUpdate) (string, error)
	CompletePostmortem(ctx context.Context, id, actor string) (*incident.Incident, error)
	ActionItems(ctx context.Context, id string) ([]incident.ActionItem, error)
	UpdateActionItem(ctx context.Context, id string, itemID int64, actor string, u incident.ActionItemUpdate) (*incident.ActionItem, error)
}

// Budgets is what the pages need from the error budget service.
type Budgets interface {
	// Objectives lists the configured SLOs.
	Objectives() []budget.Objective
	// Snapshot is the budget of every SLO as of the last poll.
	Snapshot() []budget.Status
	// Detail is one SLO with its history (queries Prometheus).
	Detail(ctx context.Context, service, slo string, at time.Time) (*budget.Detail, error)
	// AlertRules reads the generated alert rules with their state from
	// Prometheus' rules API.
	AlertRules(ctx context.Context) ([]budget.AlertRule, error)
	// AlertSnapshot is the generated alert rules as of the last poll.
	AlertSnapshot() []budget.AlertRule
	// LastPollFailure is why the last poll could not read the budgets
	// (nil when it succeeded).
	LastPollFailure() *budget.PollFailure
}

// OnCall is what the on-call page needs from the on-call directory.
type OnCall interface {
	Config() *oncall.Config
	Who(ctx context.Context, service, schedule string, at time.Time, days int) ([]oncall.OnCallEntry, error)
}

// Escalation is what the pages need from the escalation engine.
type Escalation interface {
	Simulate(ctx context.Context, lbls map[string]string, start time.Time) (*escalation.Simulation, error)
	EscalateNow(ctx context.Context, incidentID, reason string) error
}

// Runbooks is what the runbooks page needs from the runbook engine.
type Runbooks interface {
	Runbooks() []*runbook.Runbook
	// DryRun reports whether runbooks.dry_run makes every runbook a dry
	// run: the runbooks page shows the effective mode, as the API does.
	DryRun() bool
	ListRuns(ctx context.Context, f runbook.RunFilter) ([]*runbook.Run, error)
	GetRun(ctx context.Context, id int64) (*runbook.Run, error)
	Approve(ctx context.Context, runID int64, by, comment string) (*runbook.Run, error)
	Cancel(ctx context.Context, runID int64, by, reason string) (*runbook.Run, error)
}

// Sources are the services the console reads and acts on. Only Incidents
// is required; a page whose source is nil says the subsystem is not
// configured.
type Sources struct {
	Incidents  Incidents
	Budgets    Budgets
	OnCall     OnCall
	Escalation Escalation
	Runbooks   Runbooks
	Chaos      Chaos
	Audit      Audit
	Changes    Changes
	Scaling    Scaling
	Rollouts   Rollouts
	// Graph returns the service dependency graph in force (nil: none).
	Graph func() *correlation.Graph
	// Noise builds the alert noise report.
	Noise NoiseReport
}

// Options configure the console.
type Options struct {
	Logger *slog.Logger
	// AllowAnonymous lets requests without an authenticated principal act
	// (sred's explicit no-auth mode); otherwise they only read.
	AllowAnonymous bool
	// Clock tells the time (clock.Real when nil).
	Clock clock.Clock
	// Extra adds navigation entries (e.g. Chaos, Rollouts, Scaling) served
	// by other packages; an entry with an empty Path shows as "soon".
	Extra []NavItem
}

// NavItem is one navigation entry.
type NavItem struct{ Name, Path string }

// DefaultExtra are the places left for the pages other subsystems add.
var DefaultExtra = []NavItem{{Name: "Chaos"}, {Name: "Rollouts"}, {Name: "Scaling"}}

// UI serves the console.
type UI struct {
	src    Sources
	opts   Options
	logger *slog.Logger
	tmpl   *template.Template
	csrf   *http.CrossOriginProtection
	static http.Handler

	statsMu sync.Mutex
	cached  *incident.Stats
	statsAt time.Time
}

// statsTTL is how long the 30-day MTTA/MTTR figures are reused: they
// aggregate tens of thousands of incidents and barely move in a minute.
const statsTTL = time.Minute

// stats returns the 30-day figures (cached for statsTTL) with the open
// incident counts of now.
func (u *UI) stats(ctx context.Context) (*incident.Stats, error) {
	now := u.opts.Clock.Now()
	u.statsMu.Lock()
	cached, at := u.cached, u.statsAt
	u.statsMu.Unlock()
	if cached == nil || now.Sub(at) >= statsTTL || now.Before(at) {
		st, err := u.src.Incidents.Stats(ctx, now.Add(-30*24*time.Hour))
		if err != nil {
			return nil, err
		}
		u.statsMu.Lock()
		u.cached, u.statsAt = st, now
		u.statsMu.Unlock()
		return st, nil
	}
	open, err := u.src.Incidents.OpenCounts(ctx)
	if err != nil {
		return nil, err
	}
	st := *cached
	st.Open = open
	return &st, nil
}

// New returns the console over its sources.
func New(src Sources, o Options) *UI {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Clock = clock.OrReal(o.Clock)
	if o.Extra == nil {
		o.Extra = DefaultExtra
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	return &UI{
		src:    src,
		opts:   o,
		logger: o.Logger,
		tmpl:   template.Must(template.New("ui").Funcs(funcs).ParseFS(templatesFS, "templates/*.html")),
		csrf:   http.NewCrossOriginProtection(),
		static: staticHandler(sub),
	}
}

// staticHandler serves the console's stylesheet and script: files only
// (no directory listing), nosniff like every console answer.
func staticHandler(files fs.FS) http.Handler {
	fh := http.StripPrefix("/console/static/", http.FileServerFS(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		fh.ServeHTTP(w, r)
	})
}

// webLink reports whether s, a URL an alert gave (its runbook_url
// annotation), is an http or https one, which the console renders as a
// link; any other (javascript:, data:, vbscript:, a relative path) is shown
// as text. html/template would replace such a URL by "#ZgotmplZ", still a
// link, which looks like one that works.
func webLink(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

var funcs = template.FuncMap{
	"ts": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"tsp": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	// zoned is a shift's time in its schedule's zone, as srectl oncall
	// writes it: "2026-03-28 09:00 +01:00 CET".
	"zoned":   oncall.TimeText,
	"sorted":  sortedLabels,
	"open":    func(s incident.Status) bool { return s.Open() },
	"ackable": func(s incident.Status) bool { return s == incident.StatusTriggered },
	"snoozable": func(s incident.Status) bool {
		return s == incident.StatusAcknowledged || s == incident.StatusInvestigating
	},
	"resolved": func(s incident.Status) bool { return s == incident.StatusResolved },
	"weblink":  webLink,
	"pathid":   url.PathEscape,
	// gateclass is the CSS class of a deploy gate answer: "no data" is
	// one class, gate-no-data, not the two classes gate-no and data.
	"gateclass": func(answer string) string { return "gate-" + strings.ReplaceAll(answer, " ", "-") },
	"query":     url.QueryEscape,
	"severity":  func(s incident.Severity) string { return strings.ToLower(string(s)) },
	"pct":       pct,
	"remaining": remainingText,
	"pctp": func(f *float64) string {
		if f == nil {
			return "–"
		}
		return pct(*f)
	},
	"objective": func(f float64) string { return trimFloat(f*100, 4) + "%" },
	"rate": func(f *float64) string {
		if f == nil {
			return "–"
		}
		return trimFloat(*f, 2) + "×"
	},
	"dur": func(d *time.Duration) string {
		if d == nil {
			return "–"
		}
		return humanDuration(*d)
	},
	"score": func(f *float64) string {
		if f == nil {
			return "–"
		}
		return trimFloat(*f, 1)
	},
	"list":  func(v ...string) []string { return v },
	"count": count,
	"add":   func(a, b int) int { return a + b },
	"sub":   func(a, b int) int { return a - b },
}

// count is english.Count: "1 SLO", "2 SLOs".
var count = english.Count

func pct(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "–"
	}
	return trimFloat(f*100, 2) + "%"
}

func trimFloat(f float64, prec int) string {
	s := fmt.Sprintf("%.*f", prec, f)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func humanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

// Register mounts the console on mux. Each page refuses a query string
// web.ReadQuery cannot read with the console's error page (consolePage).
func (u *UI) Register(mux *http.ServeMux) {
	handle := func(pattern string, h http.Handler) { mux.Handle(pattern, consolePage{u: u, h: h}) }
	handle("GET /{$}", http.HandlerFunc(u.home))
	handle("GET /console/static/", u.static)
	handle("GET /slos/{service}/{slo}", http.HandlerFunc(u.sloPage))
	handle("GET /incidents", http.HandlerFunc(u.list))
	handle("GET /incidents/new", http.HandlerFunc(u.newForm))
	handle("POST /incidents", u.csrf.Handler(http.HandlerFunc(u.create)))
	handle("GET /incidents/{id}", http.HandlerFunc(u.show))
	handle("POST /incidents/{id}/{action}", u.csrf.Handler(http.HandlerFunc(u.act)))
	handle("POST /incidents/{id}/action-items/{item}/done", u.csrf.Handler(http.HandlerFunc(u.itemDone)))
	handle("GET /oncall", http.HandlerFunc(u.oncallPage))
	handle("GET /runbooks", http.HandlerFunc(u.runbooksPage))
	handle("POST /runbooks/runs/{id}/{action}", u.csrf.Handler(http.HandlerFunc(u.runAction)))
	handle("GET /chaos", http.HandlerFunc(u.chaosPage))
	handle("GET /scaling", http.HandlerFunc(u.scalingPage))
	handle("GET /rollouts", http.HandlerFunc(u.rolloutsPage))
	handle("GET /audit", http.HandlerFunc(u.auditPage))
	handle("GET /changes", http.HandlerFunc(u.changesPage))
	handle("GET /graph", http.HandlerFunc(u.graphPage))
	handle("GET /noise", http.HandlerFunc(u.noisePage))
	handle("GET /chaos/runs/{id}", http.HandlerFunc(u.chaosRunPage))
	handle("POST /chaos/runs/{id}/approve", u.csrf.Handler(http.HandlerFunc(u.chaosApprove)))
}

// consolePage is a console route's handler. A query string web.ReadQuery
// refuses (a bad % escape, a ';') is a 400 error page naming it:
// r.URL.Query() drops such a pair, and the page showed as if the filter
// were not given. sred's middleware refuses it before the route
// (web.QueryRefuser); the page checks it as well when served on its own.
type consolePage struct {
	u *UI
	h http.Handler
}

func (p consolePage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, err := web.ReadQuery(r); err != nil {
		p.RefuseQuery(w, r, err)
		return
	}
	p.h.ServeHTTP(w, r)
}

// RefuseQuery answers the console's 400 error page naming err.
func (p consolePage) RefuseQuery(w http.ResponseWriter, r *http.Request, err error) {
	p.u.errorPage(w, r, http.StatusBadRequest, err)
}

type label struct{ Name, Value string }

func sortedLabels(m map[string]string) []label {
	out := make([]label, 0, len(m))
	for k, v := range m {
		out = append(out, label{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// page is what every page template gets.
type page struct {
	Title  string
	Nav    string
	Extra  []NavItem
	CanAct bool
	// Admin: the principal may read the audit log.
	Admin bool
	User  string
	// NoAuth: sred runs without authentication (--web.no-auth), which
	// the header says next to the user.
	NoAuth bool
	// Done is the banner of a completed action: the text of a known
	// ?done= code (doneBanners), never text from the URL.
	Done string
	Data any
}

// doneBanners are the banners the console shows after an action
// redirected back with ?done=<code>. The text is fixed here: a link with
// ?done=<anything else> shows no banner, so nobody can make the trusted
// console display words of their choosing ("session expired, re-enter
// your password at ...").
var doneBanners = map[string]string{
	"acknowledged":     "Incident acknowledged.",
	"assigned":         "Incident assigned.",
	"resolved":         "Incident resolved.",
	"noted":            "Note added.",
	"updated":          "Status update posted.",
	"snoozed":          "Incident snoozed.",
	"escalated":        "Incident escalated.",
	"closed":           "Incident closed with its post-mortem.",
	"action-item-done": "Action item done.",
	"opened":           "Incident opened.",
	"approved":         "Run approved.",
	"denied":           "Run denied.",
}

// doneBanner is the banner of the request's ?done= code, "" for none or
// an unknown one.
func doneBanner(r *http.Request) string {
	return doneBanners[r.URL.Query().Get("done")]
}

// canAct reports whether the request's principal may act on incidents.
func (u *UI) canAct(r *http.Request) bool {
	p, ok := auth.FromContext(r.Context())
	if !ok {
		return u.opts.AllowAnonymous
	}
	return p.NoAuth || p.Role.Allows(auth.RoleResponder)
}

func (u *UI) render(w http.ResponseWriter, r *http.Request, code int, name, title, nav string, data any) {
	p := page{Title: title, Nav: nav, Extra: u.opts.Extra, CanAct: u.canAct(r), Done: doneBanner(r), Data: data}
	if pr, ok := auth.FromContext(r.Context()); ok {
		p.User, p.NoAuth = pr.Name, pr.NoAuth
		p.Admin = pr.NoAuth || pr.Role.Allows(auth.RoleAdmin)
	} else {
		p.Admin = u.opts.AllowAnonymous
	}
	var b strings.Builder
	if err := u.tmpl.ExecuteTemplate(&b, name, p); err != nil {
		u.logger.Error("render page", "page", name, "err", err)
		http.Error(w, "render page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	web.PageHeaders(w.Header())
	w.WriteHeader(code)
	// Bidirectional control characters of the data (a title that reads
	// otherwise than it is) are shown, not applied.
	_, _ = w.Write(bidi.HTML([]byte(b.String())))
}

func (u *UI) errorPage(w http.ResponseWriter, r *http.Request, code int, err error) {
	msg := auth.Redact(r.Context(), err.Error())
	if code >= http.StatusInternalServerError {
		msg = u.errText(r, err)
	}
	u.render(w, r, code, "error.html", http.StatusText(code), "", map[string]any{"Code": code, "Status": http.StatusText(code), "Error": msg})
}

// errText is the text of err as a console page shows it to the principal
// of r: the store's own error (its host, a file path, SQL) as web.ErrStore's
// fixed text, the error going to the log, as the API answers it
// (web.Error); for a viewer or responder, the server's paths cut to their
// base names (auth.Redact).
func (u *UI) errText(r *http.Request, err error) string {
	if store.Failed(err) {
		u.logger.Error("Console page: the store failed", "path", r.URL.Path, "err", err)
		err = web.ErrStore
	}
	return auth.Redact(r.Context(), err.Error())
}

func (u *UI) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusServiceUnavailable
	var te *incident.TransitionError
	switch {
	case errors.Is(err, incident.ErrNotFound), errors.Is(err, incident.ErrActionItemNotFound), errors.Is(err, incident.ErrGroupNotFound),
		errors.Is(err, budget.ErrNotFound), errors.Is(err, runbook.ErrNotFound), errors.Is(err, chaos.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, chaos.ErrForbidden):
		code = http.StatusForbidden
	case errors.As(err, &te), errors.Is(err, incident.ErrInvalidTransition), errors.Is(err, incident.ErrFull), errors.Is(err, runbook.ErrConflict), errors.Is(err, chaos.ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, errBadRequest), errors.Is(err, incident.ErrInvalid):
		code = http.StatusBadRequest
	}
	u.errorPage(w, r, code, err)
}

var errBadRequest = errors.New("bad request")

// badRequestError is a request's problem, errBadRequest for errors.Is (the
// status code), whose text is the reason alone: the error page's heading
// already says "400 Bad Request".
type badRequestError struct{ reason string }

func (e *badRequestError) Error() string        { return e.reason }
func (e *badRequestError) Is(target error) bool { return target == errBadRequest }

func badRequest(format string, args ...any) error {
	return &badRequestError{reason: fmt.Sprintf(format, args...)}
}

// actor is the authenticated user; the form's actor field only in the
// no-auth mode; else "web".
func actor(r *http.Request) string {
	return auth.ActorOf(r.Context(), strings.TrimSpace(r.PostFormValue("actor")), "web")
}

// form parses a posted form and checks that the principal may act.
func (u *UI) form(w http.ResponseWriter, r *http.Request) bool {
	if !u.canAct(r) {
		u.errorPage(w, r, http.StatusForbidden, errors.New("this action needs the responder role"))
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, web.MaxBody)
	if err := r.ParseForm(); err != nil {
		u.errorPage(w, r, http.StatusBadRequest, fmt.Errorf("invalid form: %v", err))
		return false
	}
	if len(actor(r)) > 200 {
		u.errorPage(w, r, http.StatusBadRequest, errors.New("actor longer than 200 characters"))
		return false
	}
	return true
}
