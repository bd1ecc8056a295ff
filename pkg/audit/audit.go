// Package audit keeps the log of every write action sred served: who (the
// authenticated principal), what (method, route, path, status), from where
// (the client address) and when. The HTTP middleware of package auth records
// every state-changing request; GET /api/v1/audit reads the log.
package audit

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/web"
)

// auditSchema is the schema of both backends; %[1]s is the id column's type.
const auditSchema = `CREATE TABLE audit_log (
	id      %[1]s,
	at      BIGINT NOT NULL,
	actor   TEXT NOT NULL,
	role    TEXT NOT NULL,
	method  TEXT NOT NULL,
	route   TEXT NOT NULL,
	path    TEXT NOT NULL,
	remote  TEXT NOT NULL,
	status  INTEGER NOT NULL
);
CREATE INDEX audit_log_actor ON audit_log (actor, id);`

// Migrations create the audit table and the index by time that retention
// (retention.audit_log) deletes the oldest entries by.
var Migrations = []store.Migration{{
	ID:       "audit/0001_init",
	SQLite:   fmt.Sprintf(auditSchema, "INTEGER PRIMARY KEY AUTOINCREMENT"),
	Postgres: fmt.Sprintf(auditSchema, "BIGSERIAL PRIMARY KEY"),
}, {
	ID:     "audit/0002_at",
	SQLite: `CREATE INDEX audit_log_at ON audit_log (at);`,
}}

// Entry is one write action.
type Entry struct {
	ID int64 `json:"id"`
	// Time is when the action was answered.
	Time time.Time `json:"time"`
	// Actor is the authenticated principal ("anonymous" in the no-auth
	// mode, "webhook" for Alertmanager deliveries, "link" for the
	// acknowledgement links of notifications).
	Actor string `json:"actor"`
	Role  string `json:"role"`
	// Method and Route (the ServeMux pattern) say what was done; Path is
	// the request's path (with the incident or run ID). The path of an
	// acknowledgement link keeps the link's claims (base64url JSON: the
	// incident, the user, the expiry) and drops its signature, so that the
	// log holds no link anyone could use.
	Method string `json:"method"`
	Route  string `json:"route"`
	Path   string `json:"path"`
	// Remote is the client's address (the TCP peer).
	Remote string `json:"remote"`
	// Status is the HTTP status code answered.
	Status int `json:"status"`
}

// Log is the stored audit log.
type Log struct {
	db    *store.DB
	clock clock.Clock
}

// New returns the log stored in db; clk tells the time (clock.Real when nil).
func New(db *store.DB, clk clock.Clock) *Log {
	return &Log{db: db, clock: clock.OrReal(clk)}
}

// maxField bounds every stored text field.
const maxField = 1024

func clip(s string) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	if len(s) > maxField {
		s = strings.ToValidUTF8(s[:maxField], "")
	}
	return s
}

// Record stores e (its ID and, when zero, its Time are set).
func (l *Log) Record(ctx context.Context, e Entry) error {
	if e.Time.IsZero() {
		e.Time = l.clock.Now()
	}
	_, err := l.db.ExecContext(ctx, `INSERT INTO audit_log (at, actor, role, method, route, path, remote, status)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, e.Time.UnixMilli(), clip(e.Actor), clip(e.Role), clip(e.Method),
		clip(e.Route), clip(e.Path), clip(e.Remote), e.Status)
	if err != nil {
		return fmt.Errorf("record audit entry: %w", err)
	}
	return nil
}

// Query selects entries, newest first.
type Query struct {
	// Actor, when set, keeps the entries of one actor.
	Actor string
	// Since, when set, keeps the entries at or after it.
	Since time.Time
	// Before, when positive, keeps the entries with a smaller ID (paging).
	Before int64
	// Limit bounds the answer (default 100, at most 1000).
	Limit int
}

// List returns the entries q selects, newest first.
func (l *Log) List(ctx context.Context, q Query) ([]Entry, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	q.Limit = min(q.Limit, 1000)
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.Actor != "" {
		where = append(where, "actor = "+arg(q.Actor))
	}
	if !q.Since.IsZero() {
		where = append(where, "at >= "+arg(q.Since.UnixMilli()))
	}
	if q.Before > 0 {
		where = append(where, "id < "+arg(q.Before))
	}
	sqlText := `SELECT id, at, actor, role, method, route, path, remote, status FROM audit_log`
	if len(where) > 0 {
		sqlText += " WHERE " + strings.Join(where, " AND ")
	}
	sqlText += " ORDER BY id DESC LIMIT " + arg(q.Limit)
	rows, err := l.db.QueryContext(ctx, sqlText, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit entries: %w", err)
	}
	defer rows.Close()
	out := []Entry{}
	for rows.Next() {
		var (
			e  Entry
			at int64
		)
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Role, &e.Method, &e.Route, &e.Path, &e.Remote, &e.Status); err != nil {
			return nil, fmt.Errorf("list audit entries: %w", err)
		}
		e.Time = time.UnixMilli(at).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// Path is where the log is read.
const Path = "/api/v1/audit"

// Register mounts GET /api/v1/audit?actor=&since=&before=&limit= on mux.
func (l *Log) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+Path, l.serveList)
}

func (l *Log) serveList(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r)
	if err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	out, err := l.List(r.Context(), q)
	if err != nil {
		web.Error(w, http.StatusServiceUnavailable, "unavailable", err)
		return
	}
	web.JSON(w, http.StatusOK, out)
}

// queryParams are the parameters of GET /api/v1/audit: a misspelt
// ?user=alice would list every actor's entries, ?actor=alice&actor=bob
// alice's alone (web.CheckParams refuses both).
var queryParams = []string{"actor", "since", "before", "limit"}

func parseQuery(r *http.Request) (Query, error) {
	v := r.URL.Query()
	q := Query{Actor: v.Get("actor")}
	if err := web.CheckParams(v, queryParams...); err != nil {
		return q, err
	}
	if s := v.Get("since"); s != "" {
		// The API's rule for time parameters (RFC 3339 or Unix seconds,
		// 1970-01-02 to 9999), as on every other route.
		t, err := limits.ParseTime("since", s)
		if err != nil {
			return q, err
		}
		q.Since = t
	}
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"before", &q.Before}} {
		if s := v.Get(p.name); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 {
				return q, fmt.Errorf("%s: want a non-negative integer, got %s", p.name, limits.Quote(s))
			}
			*p.dst = n
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return q, fmt.Errorf("limit: want an integer from 1 to 1000, got %s", limits.Quote(s))
		}
		q.Limit = n
	}
	return q, nil
}

// Recorder returns the function the auth middleware calls after each write
// (auth.Options.OnWrite). A failure to record is reported to onErr; the
// action itself is already done.
func (l *Log) Recorder(onErr func(error)) func(r *http.Request, p auth.Principal, route string, code int) {
	return func(r *http.Request, p auth.Principal, route string, code int) {
		e := Entry{Actor: p.Name, Role: p.Role.String(), Method: r.Method, Route: route, Path: redact(route, r.URL.Path), Remote: r.RemoteAddr, Status: code}
		if e.Actor == "" {
			if pp, ok := auth.FromContext(r.Context()); ok {
				e.Actor, e.Role = pp.Name, pp.Role.String()
			}
		}
		if e.Actor == "" {
			e.Actor = anonymousActor(route)
		}
		ctx := context.WithoutCancel(r.Context())
		if err := l.Record(ctx, e); err != nil && onErr != nil {
			onErr(err)
		}
	}
}

// redact returns the path to record of a request to route: an
// acknowledgement link's token is a credential (it acknowledges as its user
// until it expires), so only its claims are kept, without the signature.
func redact(route, path string) string {
	if !strings.HasPrefix(route, "POST /ack/") {
		return path
	}
	tok, ok := strings.CutPrefix(path, "/ack/")
	if !ok {
		return "/ack/…"
	}
	claims, _, _ := strings.Cut(tok, ".")
	return "/ack/" + claims + ".…"
}

func anonymousActor(route string) string {
	switch {
	case strings.Contains(route, "/webhook/"):
		return "webhook"
	case strings.HasPrefix(route, "POST /ack/"):
		return "link"
	}
	return "unauthenticated"
}
