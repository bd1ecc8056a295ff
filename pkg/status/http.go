package status

import (
	"bytes"
	"embed"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/bidi"
	"github.com/rootuip/sre/pkg/english"
	"github.com/rootuip/sre/pkg/web"
)

//go:embed templates
var assets embed.FS

var page = template.Must(template.New("status.html").Funcs(template.FuncMap{
	"utc":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"pct":   func(r float64) string { return Percent(r, 2) },
	"join":  func(s []string) string { return joinNames(s) },
	"count": english.Count,
}).ParseFS(assets, "templates/status.html"))

// Percent formats an uptime ratio as a percentage with decimals digits,
// cut rather than rounded (after removing float noise), so that an uptime
// with an outage never reads 100%: 0.99996 is "99.99%", not "100.00%".
func Percent(r float64, decimals int) string {
	scale := math.Pow10(decimals)
	return strconv.FormatFloat(math.Floor(math.Round(r*100*scale*1e4)/1e4)/scale, 'f', decimals, 64) + "%"
}

// Routes are the public routes of the status page, and the API route.
var Routes = []string{"GET /status", "GET /status.json", "GET /status/feed.atom", "GET /status/status.css", "GET /status/favicon.svg"}

// APIRoute serves the page in the API envelope (GET /api/v1/status).
const APIRoute = "GET /api/v1/status"

// Handler serves the status page.
type Handler struct {
	s      *Service
	logger *slog.Logger
}

// NewHandler returns the handler of s.
func NewHandler(s *Service, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{s: s, logger: logger}
}

// Register mounts the status page's routes on mux. The public ones read
// no query parameter: a request with a query string is redirected to the
// same path without it (withoutQuery).
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /status", withoutQuery(h.html))
	mux.HandleFunc("GET /status.json", withoutQuery(h.serveJSON))
	mux.HandleFunc("GET /status/feed.atom", withoutQuery(h.atom))
	mux.HandleFunc("GET /status/status.css", withoutQuery(h.css))
	mux.HandleFunc("GET /status/favicon.svg", withoutQuery(h.icon))
	mux.HandleFunc(APIRoute, h.api)
}

// withoutQuery answers a request with a query string (even an empty one,
// "/status?") by a permanent redirect to its path alone, itself cached an
// hour, and passes the others to next. The public routes read no query
// parameter, so the query only changes the key a shared cache (a CDN) files
// the answer under: without the redirect, every query string was a copy of
// its own, and a random one reached sred on every request.
func withoutQuery(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery == "" && !r.URL.ForceQuery {
			next(w, r)
			return
		}
		hd := w.Header()
		hd.Set("Location", r.URL.EscapedPath())
		hd.Set("Cache-Control", "public, max-age=3600")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		w.WriteHeader(http.StatusMovedPermanently)
	}
}

func headers(w http.ResponseWriter, ct string) {
	hd := w.Header()
	hd.Set("Content-Type", ct)
	hd.Set("Cache-Control", "public, max-age=15")
	hd.Set("Referrer-Policy", "no-referrer")
	// Not framed by another site either (X-Frame-Options: DENY with the
	// policy's frame-ancestors 'none'): a site that shows the state reads
	// /status.json or the feed, or links the page.
	web.HTMLSecurityHeaders(hd, CSP)
}

// CSP is the Content-Security-Policy of the public status page: its own
// stylesheet and icon only, no script, no form, no framing.
const CSP = "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; form-action 'none'"

// serve answers a public form of the page from the snapshot: rendered
// once per snapshot, with its entity tag, 304 Not Modified to a request
// that has it (If-None-Match), and a max-age of what is left of the
// snapshot's life, so that a cache in front of sred (a CDN, a browser)
// never keeps it longer than CacheTTL after it was computed.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, f Form, ct, what string, render func(*Page) ([]byte, error)) {
	sn, err := h.s.Snapshot(r.Context())
	if err != nil {
		// The cause (a store error) stays in the log: the page is public.
		h.logger.Error("Compute status page", "err", err)
		http.Error(w, "status temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	b, etag, err := sn.Render(f, render)
	if err != nil {
		h.logger.Error("Render status "+what, "err", err)
		http.Error(w, "status temporarily unavailable", http.StatusInternalServerError)
		return
	}
	headers(w, ct)
	hd := w.Header()
	hd.Set("Cache-Control", "public, max-age="+strconv.Itoa(maxAge(h.s.ttl(), h.s.o.Clock.Now().Sub(sn.At))))
	hd.Set("ETag", etag)
	if f == FormJSON {
		hd.Set("Access-Control-Allow-Origin", "*") // public data, for widgets
	}
	if etagMatch(r.Header.Get("If-None-Match"), etag) {
		hd.Del("Content-Type")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}

// maxAge is the max-age in whole seconds of a snapshot computed age ago
// and served for ttl: what is left, rounded down.
func maxAge(ttl, age time.Duration) int {
	return max(int((ttl-max(age, 0))/time.Second), 0)
}

// etagMatch reports whether an If-None-Match header value lists etag (or
// is "*"), comparing weakly as RFC 9110 asks: a CDN may have marked it
// W/ after compressing the answer.
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

type view struct {
	*Page
	Active, Past []PublicIncident
}

func (h *Handler) html(w http.ResponseWriter, r *http.Request) {
	h.serve(w, r, FormHTML, "text/html; charset=utf-8", "page", renderHTML)
}

// renderHTML renders the page as HTML.
func renderHTML(p *Page) ([]byte, error) {
	v := view{Page: p}
	for _, i := range p.Incidents {
		if i.ResolvedAt == nil {
			v.Active = append(v.Active, i)
		} else {
			v.Past = append(v.Past, i)
		}
	}
	var b bytes.Buffer
	if err := page.Execute(&b, v); err != nil {
		return nil, err
	}
	// Bidirectional control characters of titles, components and updates
	// are shown, not applied.
	return bidi.HTML(b.Bytes()), nil
}

func (h *Handler) serveJSON(w http.ResponseWriter, r *http.Request) {
	h.serve(w, r, FormJSON, "application/json", "JSON", func(p *Page) ([]byte, error) {
		b, err := json.Marshal(p)
		return append(b, '\n'), err
	})
}

func (h *Handler) api(w http.ResponseWriter, r *http.Request) {
	p, err := h.s.Page(r.Context())
	if err != nil {
		web.Error(w, http.StatusServiceUnavailable, "unavailable", err)
		return
	}
	web.JSON(w, http.StatusOK, p)
}

func (h *Handler) css(w http.ResponseWriter, _ *http.Request) {
	b, err := assets.ReadFile("templates/status.css")
	if err != nil {
		http.Error(w, "no stylesheet", http.StatusInternalServerError)
		return
	}
	headers(w, "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(b)
}

// icon serves the page's icon: without one, browsers ask for /favicon.ico,
// which the status listener answers 404 (a console error on every visit).
func (h *Handler) icon(w http.ResponseWriter, _ *http.Request) {
	b, err := assets.ReadFile("templates/favicon.svg")
	if err != nil {
		http.Error(w, "no icon", http.StatusInternalServerError)
		return
	}
	headers(w, "image/svg+xml")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(b)
}

// Atom (RFC 4287).
type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	Title   string      `xml:"title"`
	ID      string      `xml:"id"`
	Updated string      `xml:"updated"`
	Link    []atomLink  `xml:"link"`
	Author  atomAuthor  `xml:"author"`
	Entries []atomEntry `xml:"entry"`
}

type atomLink struct {
	Href string `xml:"href,attr"`
	Rel  string `xml:"rel,attr,omitempty"`
	Type string `xml:"type,attr,omitempty"`
}

type atomAuthor struct {
	Name string `xml:"name"`
}

type atomEntry struct {
	Title   string    `xml:"title"`
	ID      string    `xml:"id"`
	Updated string    `xml:"updated"`
	Link    *atomLink `xml:"link,omitempty"`
	Content atomText  `xml:"content"`
}

type atomText struct {
	Type string `xml:"type,attr"`
	Body string `xml:",chardata"`
}

// Feed renders the page as an Atom feed: one entry per public update,
// newest first, then one per scheduled maintenance.
func Feed(p *Page) ([]byte, error) {
	if p == nil {
		return nil, errors.New("no page")
	}
	base := strings.TrimSuffix(p.URL, "/")
	self := "/status"
	if base != "" {
		self = base
	}
	f := atomFeed{Title: p.Title, ID: "tag:sred,2026:status:" + feedID(p.Title), Updated: p.UpdatedAt.Format(time.RFC3339),
		Link: []atomLink{{Href: self}, {Href: self + "/feed.atom", Rel: "self", Type: "application/atom+xml"}}, Author: atomAuthor{Name: p.Title}}
	link := &atomLink{Href: self}
	// The incidents' updates newest first across incidents (equal times
	// keep their order), as feed readers expect; the maintenance windows
	// after them, as on the page.
	type update struct {
		at    time.Time
		entry atomEntry
	}
	var updates []update
	for _, i := range p.Incidents {
		for _, u := range i.Updates {
			updates = append(updates, update{u.Time, atomEntry{
				Title: fmt.Sprintf("%s (%s)", i.Title, i.Stage), ID: updateFeedID(i, u),
				Updated: u.Time.Format(time.RFC3339), Link: link, Content: atomText{Type: "text", Body: u.Message},
			}})
		}
	}
	slices.SortStableFunc(updates, func(a, b update) int { return b.at.Compare(a.at) })
	for _, u := range updates {
		f.Entries = append(f.Entries, u.entry)
	}
	for _, m := range p.Maintenance {
		body := fmt.Sprintf("%s to %s: %s", m.Start.Format(time.RFC3339), m.End.Format(time.RFC3339), joinNames(m.Components))
		if m.Description != "" {
			body += ". " + m.Description
		}
		f.Entries = append(f.Entries, atomEntry{Title: "Scheduled maintenance: " + m.Title,
			ID: fmt.Sprintf("tag:sred,2026:status:maintenance:%s:%d", feedID(m.Title), m.Start.Unix()), Updated: m.Start.Format(time.RFC3339),
			Link: link, Content: atomText{Type: "text", Body: body}})
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(f); err != nil {
		return nil, err
	}
	b.WriteString("\n")
	return bidi.XML(b.Bytes()), nil
}

// updateFeedID is the Atom ID of a public update: its incident's key and
// its own, so that two updates posted in the same instant are two entries.
// An update without a key (a page not read from the store) falls back to
// its time.
func updateFeedID(i PublicIncident, u PublicUpdate) string {
	if u.ID == "" {
		return fmt.Sprintf("tag:sred,2026:status:%s:%d", i.ID, u.Time.UnixMilli())
	}
	return fmt.Sprintf("tag:sred,2026:status:%s:update:%s", i.ID, u.ID)
}

func (h *Handler) atom(w http.ResponseWriter, r *http.Request) {
	h.serve(w, r, FormAtom, "application/atom+xml; charset=utf-8", "feed", Feed)
}
