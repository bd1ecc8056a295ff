// Package ui serves sred's minimal server-rendered pages: the list of open
// incidents (GET /incidents) and one incident with its alerts, timeline and
// Acknowledge and Resolve buttons (GET /incidents/{id}). Every message sred
// sends links to the incident's page. Pages are html/template, so label
// values and timeline text are escaped; the buttons are plain forms posted to
// this package's handlers, which call the incident service and redirect back
// (cross-origin posts are refused by http.CrossOriginProtection).
package ui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/incident"
)

//go:embed templates/*.html
var templatesFS embed.FS

// Incidents is what the pages need from the incident service.
type Incidents interface {
	Get(ctx context.Context, id string) (*incident.Incident, error)
	List(ctx context.Context, f incident.Filter) (*incident.Page, error)
	Timeline(ctx context.Context, id string) ([]incident.TimelineEntry, error)
	Acknowledge(ctx context.Context, id, actor string) (*incident.Incident, error)
	Resolve(ctx context.Context, id, actor, note string) (*incident.Incident, error)
}

// UI serves the pages.
type UI struct {
	incidents Incidents
	logger    *slog.Logger
	tmpl      *template.Template
	csrf      *http.CrossOriginProtection
}

// New returns the pages over the incident service. logger may be nil.
func New(incidents Incidents, logger *slog.Logger) *UI {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	funcs := template.FuncMap{
		"ts": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"tsp": func(t *time.Time) string {
			if t == nil {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04:05 UTC")
		},
		"sorted":   sortedLabels,
		"open":     func(s incident.Status) bool { return s.Open() },
		"ackable":  func(s incident.Status) bool { return s == incident.StatusTriggered },
		"pathid":   url.PathEscape,
		"severity": func(s incident.Severity) string { return strings.ToLower(string(s)) },
	}
	return &UI{
		incidents: incidents,
		logger:    logger,
		tmpl:      template.Must(template.New("ui").Funcs(funcs).ParseFS(templatesFS, "templates/*.html")),
		csrf:      http.NewCrossOriginProtection(),
	}
}

// Register mounts the pages on mux.
func (u *UI) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /incidents", u.list)
	mux.HandleFunc("GET /incidents/{id}", u.show)
	mux.Handle("POST /incidents/{id}/ack", u.csrf.Handler(http.HandlerFunc(u.ack)))
	mux.Handle("POST /incidents/{id}/resolve", u.csrf.Handler(http.HandlerFunc(u.resolve)))
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

func (u *UI) render(w http.ResponseWriter, code int, name string, data any) {
	var b strings.Builder
	if err := u.tmpl.ExecuteTemplate(&b, name, data); err != nil {
		u.logger.Error("render page", "page", name, "err", err)
		http.Error(w, "render page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(b.String()))
}

func (u *UI) fail(w http.ResponseWriter, err error) {
	code := http.StatusServiceUnavailable
	switch {
	case errors.Is(err, incident.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, incident.ErrInvalidTransition):
		code = http.StatusConflict
	}
	u.render(w, code, "error.html", map[string]any{"Code": code, "Status": http.StatusText(code), "Error": err.Error()})
}

func (u *UI) list(w http.ResponseWriter, r *http.Request) {
	page, err := u.incidents.List(r.Context(), incident.Filter{
		Status: []incident.Status{incident.StatusTriggered, incident.StatusAcknowledged, incident.StatusInvestigating},
		Limit:  1000,
	})
	if err != nil {
		u.fail(w, err)
		return
	}
	sort.SliceStable(page.Incidents, func(i, j int) bool {
		return page.Incidents[i].Severity.Rank() < page.Incidents[j].Severity.Rank()
	})
	u.render(w, http.StatusOK, "list.html", page)
}

func (u *UI) show(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	inc, err := u.incidents.Get(r.Context(), id)
	if err != nil {
		u.fail(w, err)
		return
	}
	tl, err := u.incidents.Timeline(r.Context(), id)
	if err != nil {
		u.fail(w, err)
		return
	}
	u.render(w, http.StatusOK, "incident.html", map[string]any{
		"Incident": inc, "Timeline": tl, "Done": r.URL.Query().Get("done"),
	})
}

const maxForm = 16 << 10

// actor is the authenticated user; the form's actor field only in the
// no-auth mode; else "web".
func actor(r *http.Request) string {
	return auth.ActorOf(r.Context(), strings.TrimSpace(r.PostFormValue("actor")), "web")
}

func (u *UI) form(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		u.render(w, http.StatusBadRequest, "error.html", map[string]any{"Code": http.StatusBadRequest,
			"Status": http.StatusText(http.StatusBadRequest), "Error": fmt.Sprintf("invalid form: %v", err)})
		return false
	}
	if len(actor(r)) > 200 {
		u.render(w, http.StatusBadRequest, "error.html", map[string]any{"Code": http.StatusBadRequest,
			"Status": http.StatusText(http.StatusBadRequest), "Error": "actor longer than 200 characters"})
		return false
	}
	return true
}

func (u *UI) done(w http.ResponseWriter, r *http.Request, id, what string) {
	http.Redirect(w, r, "/incidents/"+url.PathEscape(id)+"?done="+what, http.StatusSeeOther)
}

func (u *UI) ack(w http.ResponseWriter, r *http.Request) {
	if !u.form(w, r) {
		return
	}
	id := r.PathValue("id")
	if _, err := u.incidents.Acknowledge(r.Context(), id, actor(r)); err != nil {
		u.fail(w, err)
		return
	}
	u.done(w, r, id, "acknowledged")
}

func (u *UI) resolve(w http.ResponseWriter, r *http.Request) {
	if !u.form(w, r) {
		return
	}
	id := r.PathValue("id")
	if _, err := u.incidents.Resolve(r.Context(), id, actor(r), strings.TrimSpace(r.PostFormValue("note"))); err != nil {
		u.fail(w, err)
		return
	}
	u.done(w, r, id, "resolved")
}
