package escalation

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/bidi"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/oncall"
	"github.com/rootuip/sre/pkg/web"
)

// Acknowledger acknowledges incidents and reads them (the incident
// service).
type Acknowledger interface {
	Acknowledge(ctx context.Context, id, actor string) (*incident.Incident, error)
	Get(ctx context.Context, id string) (*incident.Incident, error)
}

// Annotator marks the messages held back by a paused channel
// (notify.Sender.Annotate), from memory at read time.
type Annotator interface {
	Annotate(recs []notify.Record)
}

// API serves the escalation endpoints and the acknowledge links.
type API struct {
	Engine *Engine
	Acks   Acknowledger
	// Pauses, if set, marks the notifications of a status that their
	// paused channel holds back (their queued field).
	Pauses Annotator
}

// Register mounts the routes on mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/escalation/incidents/{id}", a.status)
	mux.HandleFunc("POST /api/v1/escalation/incidents/{id}/escalate", a.escalate)
	mux.HandleFunc("GET /api/v1/escalation/maintenance", a.listMaintenance)
	mux.HandleFunc("POST /api/v1/escalation/maintenance", a.addMaintenance)
	mux.HandleFunc("DELETE /api/v1/escalation/maintenance/{id}", a.deleteMaintenance)
	mux.HandleFunc("POST /api/v1/escalation/simulate", a.simulate)
	mux.HandleFunc("GET /ack/ack.css", ackCSS)
	mux.HandleFunc("GET /ack/{token}", a.ackPage)
	mux.HandleFunc("POST /ack/{token}", a.ack)
}

func (a *API) status(w http.ResponseWriter, r *http.Request) {
	st, err := a.Engine.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		web.Error(w, http.StatusInternalServerError, "internal", err)
		return
	}
	if st == nil {
		web.Error(w, http.StatusNotFound, "not_found", fmt.Errorf("incident %s has no escalation", limits.Quote(r.PathValue("id"))))
		return
	}
	if a.Pauses != nil {
		a.Pauses.Annotate(st.Notices)
	}
	web.JSON(w, http.StatusOK, StatusFor(r.Context(), st))
}

// StatusFor returns st as the principal of ctx may read it: for a caller
// who is not an admin, the server's file paths in its notifications' last
// errors (a channel's secret file that cannot be read: "open
// /etc/sred/secrets/slack-url: permission denied") are cut to their base
// names (auth.Redact). st is not changed; an admin gets it as it is.
func StatusFor(ctx context.Context, st *Status) *Status {
	return auth.View(ctx, st, func(c *Status) {
		c.Notices = auth.CutEach(c.Notices, func(n *notify.Record) { auth.CutPaths(&n.LastError) })
	})
}

// MaxEscalateReason bounds the reason of an escalate-now, in characters.
const MaxEscalateReason = 500

func (a *API) escalate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Reason string `json:"reason"`
	}
	if err := web.DecodeJSON(w, r, &req); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	// The reason goes into the timeline and into every page of the level
	// (an SMS among them): a body of up to 1 MiB went there whole.
	if n := utf8.RuneCountInString(req.Reason); n > MaxEscalateReason {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("reason: at most %d characters, got %d", MaxEscalateReason, n))
		return
	}
	// The reason is the caller's text, shown in the timeline and the
	// pages as sred's ("Escalated now (<reason>)"): it is recorded after
	// the authenticated user who escalated, so that nobody can pass for
	// another ("escalated from the console by alice") or for a runbook.
	reason := req.Reason
	if who := auth.ActorOf(r.Context(), "", ""); who != "" {
		reason = "by " + who
		if req.Reason != "" {
			reason += ": " + req.Reason
		}
	}
	// Calls at once page once: the others are told which escalation
	// they were merged into (409), not answered as if they had paged.
	if err := a.Engine.EscalateNowOnce(r.Context(), r.PathValue("id"), reason); err != nil {
		code, typ := http.StatusInternalServerError, "internal"
		var inFlight *InFlightError
		switch {
		case errors.Is(err, ErrUnknownIncident):
			code, typ = http.StatusNotFound, "not_found"
		case errors.Is(err, ErrNoEscalation), errors.As(err, &inFlight):
			code, typ = http.StatusConflict, "conflict"
		}
		web.Error(w, code, typ, err)
		return
	}
	web.JSON(w, http.StatusAccepted, map[string]string{"incident_id": r.PathValue("id")})
}

func (a *API) listMaintenance(w http.ResponseWriter, r *http.Request) {
	ws, err := a.Engine.Maintenance(r.Context(), a.Engine.clock.Now())
	if err != nil {
		web.Error(w, http.StatusInternalServerError, "internal", err)
		return
	}
	if ws == nil {
		ws = []*MaintenanceWindow{}
	}
	web.JSON(w, http.StatusOK, ws)
}

func (a *API) addMaintenance(w http.ResponseWriter, r *http.Request) {
	var req struct {
		MaintenanceWindow
		// Duration may replace End for a window starting at Start (or now).
		Duration string `json:"duration,omitempty"`
		By       string `json:"by,omitempty"`
	}
	if err := web.DecodeJSON(w, r, &req); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	mw := req.MaintenanceWindow
	switch {
	case req.Duration != "" && !mw.End.IsZero():
		// One of them was ignored: the duration won, without a word.
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("maintenance window %s: end and duration both given: give one of them", limits.Quote(mw.Name)))
		return
	case req.Duration == "" && mw.End.IsZero():
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("maintenance window %s: end or duration is required", limits.Quote(mw.Name)))
		return
	}
	if mw.Start.IsZero() {
		mw.Start = a.Engine.clock.Now()
	}
	if req.Duration != "" {
		d, err := time.ParseDuration(req.Duration)
		if err != nil || d <= 0 {
			web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("invalid duration %s", limits.Quote(req.Duration)))
			return
		}
		mw.End = mw.Start.Add(d)
		if err := limits.Time("duration", mw.End); err != nil {
			web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("the window's end (start plus duration): %w", err))
			return
		}
	}
	// The store keeps times to the millisecond: check them as stored, so
	// that no window is stored ending where it starts (which the list and
	// the simulation refused to read, answering 500).
	after := mw.End.After(mw.Start)
	mw.Start, mw.End = mw.Start.Truncate(time.Millisecond), mw.End.Truncate(time.Millisecond)
	if err := mw.Validate(); err != nil {
		if after && !mw.End.After(mw.Start) {
			err = fmt.Errorf("%w (times are kept to the millisecond)", err)
		}
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	id, err := a.Engine.AddMaintenance(r.Context(), &mw, auth.ActorOf(r.Context(), req.By, ""))
	if err != nil {
		// Valid, so the store failed.
		web.Error(w, http.StatusInternalServerError, "internal", err)
		return
	}
	mw.ID = id
	web.JSON(w, http.StatusCreated, mw)
}

func (a *API) deleteMaintenance(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("invalid maintenance window id %s", limits.Quote(r.PathValue("id"))))
		return
	}
	ok, err := a.Engine.DeleteMaintenance(r.Context(), id)
	if err != nil {
		web.Error(w, http.StatusInternalServerError, "internal", err)
		return
	}
	if !ok {
		web.Error(w, http.StatusNotFound, "not_found", fmt.Errorf("no stored maintenance window %d", id))
		return
	}
	web.JSON(w, http.StatusOK, map[string]int64{"deleted": id})
}

func (a *API) simulate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Labels map[string]string `json:"labels"`
		At     *time.Time        `json:"at,omitempty"`
	}
	if err := web.DecodeJSON(w, r, &req); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	at := a.Engine.clock.Now()
	if req.At != nil {
		at = *req.At
	}
	sim, err := a.Engine.Simulate(r.Context(), req.Labels, at)
	if err != nil {
		code, typ := http.StatusBadRequest, "bad_data"
		if errors.Is(err, errStore) {
			code, typ = http.StatusInternalServerError, "internal"
		}
		web.Error(w, code, typ, err)
		return
	}
	if err := limits.Check(sim); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("at %s: the escalation's steps would fall after the year %d: %w", at.UTC().Format(time.RFC3339), limits.MaxYear, err))
		return
	}
	web.JSON(w, http.StatusOK, sim)
}

var ackTmpl = template.Must(template.New("ack").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ if .ID }}Acknowledge {{ .ID }}{{ else }}Acknowledge link{{ end }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/ack/ack.css">
</head>
<body><main><h1>{{ if .ID }}Acknowledge incident {{ .ID }}{{ else }}Acknowledge link{{ end }}</h1>
{{ with .Title }}<p class="title">{{ . }}</p>{{ end }}{{ with .Severity }}<p>{{ . }}, {{ $.Status }}{{ with $.Service }} · service {{ . }}{{ end }}</p>{{ end }}
{{ if .Error }}<p class="error">{{ .Error }}</p>{{ else if .Message }}<p>{{ .Message }}</p>{{ else }}
<p>Acknowledging stops the escalation; you become the responder.</p>
<form method="post"><button type="submit">Acknowledge as {{ .User }}</button></form>{{ end }}
</main></body></html>`))

// ackStylesheet is the acknowledge page's stylesheet: rules of the
// console's (pkg/ui/static/console.css), among them the one that shows a
// bidirectional control character as a marked <U+202E>. The page links it
// from sred itself, as PageCSP's style-src 'self' allows; the console's
// own stylesheet needs a console login, which the holder of a link may
// not have.
//
//go:embed ack.css
var ackStylesheet []byte

// ackCSS serves GET /ack/ack.css, public like the acknowledge page.
func ackCSS(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/css; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(ackStylesheet)
}

// ackHeaders are the console's page headers (web.PageHeaders: CSP with
// frame-ancestors 'none', so no other site can frame the button and trick
// a click; nosniff; no-store), with no referrer at all: the page's URL
// carries the acknowledge token.
func ackHeaders(h http.Header) {
	web.PageHeaders(h)
	h.Set("Referrer-Policy", "no-referrer")
}

// ErrAckKeyUnavailable answers an acknowledge link while the key that signs
// the links (notifications.ack_secret_file) cannot be read.
var ErrAckKeyUnavailable = errors.New("acknowledge links cannot be checked now: the signing key cannot be read (notifications.ack_secret_file; see sred's log)")

// ErrAckFailed answers an acknowledge link that could not be applied for
// another reason than the incident's (the store failing): the error itself
// is logged, not shown to whoever holds the link.
var ErrAckFailed = errors.New("the incident could not be acknowledged now; try again, or acknowledge it in the console (see sred's log)")

func (a *API) claims(w http.ResponseWriter, r *http.Request) (notify.AckClaims, bool) {
	_, nc, _ := a.Engine.config()
	key, err := nc.AckKey()
	if err != nil {
		// Anyone may call this route: the error (the key file's path) goes
		// to the log only.
		a.Engine.logger.Error("Acknowledge link: read the signing key", "err", err)
		a.ackError(w, r, "", http.StatusServiceUnavailable, "unavailable", ErrAckKeyUnavailable)
		return notify.AckClaims{}, false
	}
	c, err := notify.VerifyAck(key, r.PathValue("token"), a.Engine.clock.Now())
	if err != nil {
		a.ackError(w, r, "", http.StatusForbidden, "forbidden", err)
		return c, false
	}
	return c, true
}

// ackPage shows a confirmation form: a GET must not change state, because
// link previews and mail scanners fetch links.
func (a *API) ackPage(w http.ResponseWriter, r *http.Request) {
	c, ok := a.claims(w, r)
	if !ok {
		return
	}
	data := map[string]string{"ID": c.IncidentID, "User": c.User}
	// What is acknowledged: the person paged sees the incident's title,
	// severity and state before pressing the button.
	if a.Acks != nil {
		inc, err := a.Acks.Get(r.Context(), c.IncidentID)
		switch {
		case errors.Is(err, incident.ErrNotFound):
			a.ackError(w, r, c.IncidentID, http.StatusNotFound, "not_found", err)
			return
		case err != nil:
			// The form still works; the store's error goes to the log
			// only (the route needs no credentials).
			a.Engine.logger.Error("Acknowledge link: read the incident", "incident", c.IncidentID, "err", err)
		default:
			data["Title"], data["Severity"], data["Status"], data["Service"] = inc.Title, string(inc.Severity), string(inc.Status), inc.Service
		}
	}
	a.renderAck(w, data)
}

func (a *API) ack(w http.ResponseWriter, r *http.Request) {
	c, ok := a.claims(w, r)
	if !ok {
		return
	}
	_, err := a.Acks.Acknowledge(r.Context(), c.IncidentID, c.User)
	if errors.Is(err, incident.ErrInvalidTransition) {
		// Already acknowledged (e.g. re-escalated after an ack timeout):
		// stop or renew the escalation. A resolved incident keeps the
		// core's refusal.
		if aerr := a.Engine.Acknowledge(r.Context(), c.IncidentID, c.User); !errors.Is(aerr, ErrNoEscalation) {
			err = aerr
		}
	}
	if err != nil {
		code, typ := http.StatusInternalServerError, "ack_failed"
		switch {
		case errors.Is(err, incident.ErrNotFound):
			code, typ = http.StatusNotFound, "not_found"
		case errors.Is(err, incident.ErrInvalidTransition):
			code, typ = http.StatusConflict, "conflict"
		default:
			// The route needs no credentials: the store's error (its
			// host, a file path, SQL) goes to the log only.
			a.Engine.logger.Error("Acknowledge link", "incident", c.IncidentID, "user", c.User, "err", err)
			err = ErrAckFailed
		}
		a.ackError(w, r, c.IncidentID, code, typ, err)
		return
	}
	a.renderAck(w, map[string]string{"ID": c.IncidentID, "User": c.User, "Message": "Acknowledged by " + c.User + "."})
}

// ackError answers an acknowledge link that cannot be shown or applied
// (forged, expired, an incident resolved since): a browser, which opened
// the link from a page or pressed the button, gets the acknowledge page
// saying why with the same status; any other client the API's JSON error.
// id is the incident the link names, "" when the token was not read.
func (a *API) ackError(w http.ResponseWriter, r *http.Request, id string, code int, typ string, err error) {
	if !strings.Contains(r.Header.Get("Accept"), "text/html") {
		web.Error(w, code, typ, err)
		return
	}
	a.renderAckStatus(w, code, map[string]string{"ID": id, "Error": err.Error()})
}

// renderAck writes the acknowledge page with its headers. Bidirectional
// control characters of the incident's ID or the user's name are shown,
// not applied (bidi.HTML), as on the console.
func (a *API) renderAck(w http.ResponseWriter, data map[string]string) {
	a.renderAckStatus(w, http.StatusOK, data)
}

// renderAckStatus is renderAck answering code.
func (a *API) renderAckStatus(w http.ResponseWriter, code int, data map[string]string) {
	var b bytes.Buffer
	if err := ackTmpl.Execute(&b, data); err != nil {
		a.Engine.logger.Error("Render the acknowledge page", "err", err)
		http.Error(w, "render the acknowledge page", http.StatusInternalServerError)
		return
	}
	ackHeaders(w.Header())
	w.WriteHeader(code)
	_, _ = w.Write(bidi.HTML(b.Bytes()))
}

// Directory exposes the engine's on-call directory.
func (e *Engine) Directory() *oncall.Directory { return e.dir }
