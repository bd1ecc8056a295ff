package ui

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/rootuip/sre/pkg/audit"
	"github.com/rootuip/sre/pkg/limits"
)

// Audit is the audit log of write actions; *audit.Log implements it.
type Audit interface {
	List(ctx context.Context, q audit.Query) ([]audit.Entry, error)
}

type auditData struct {
	Disabled bool
	Actor    string
	Entries  []audit.Entry
	// Older is the ID to page from (before=), 0 when this is the last page.
	Older int64
}

// auditPageSize is the number of entries per page.
const auditPageSize = 100

// auditPage serves GET /audit (admin, auth.Routes): the write actions,
// newest first, filtered by actor, 100 per page.
func (u *UI) auditPage(w http.ResponseWriter, r *http.Request) {
	var d auditData
	if u.src.Audit == nil {
		d.Disabled = true
		u.render(w, r, http.StatusOK, "audit.html", "Audit log", "audit", d)
		return
	}
	q := audit.Query{Actor: r.URL.Query().Get("actor"), Limit: auditPageSize}
	if v := r.URL.Query().Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			u.errorPage(w, r, http.StatusBadRequest, fmt.Errorf("before: want a non-negative integer, got %s", limits.Quote(v)))
			return
		}
		q.Before = n
	}
	entries, err := u.src.Audit.List(r.Context(), q)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	d.Actor, d.Entries = q.Actor, entries
	if len(entries) == auditPageSize {
		d.Older = entries[len(entries)-1].ID
	}
	u.render(w, r, http.StatusOK, "audit.html", "Audit log", "audit", d)
}
