package ui

import (
	"context"
	"net/http"
	"time"

	"github.com/rootuip/sre/pkg/change"
)

// Changes is what the changes page needs from the change records.
type Changes interface {
	List(ctx context.Context, q change.Query) ([]change.Change, error)
	Metrics(ctx context.Context) ([]change.ServiceMetrics, error)
}

// changeRow is one change as the page shows it.
type changeRow struct {
	change.Change
	Lead string
}

// doraRow is one service's DORA measures.
type doraRow struct {
	change.ServiceMetrics
	Shipped, RolledBack, Refused int
	MeanLead, MeanTR             string
}

type changesData struct {
	Disabled bool
	Service  string
	Services []doraRow
	Changes  []changeRow
}

// changesPage serves GET /changes[?service=]: the DORA measures of each
// service and the last 100 changes, failed ones marked, with the
// incidents linked to them.
func (u *UI) changesPage(w http.ResponseWriter, r *http.Request) {
	d := changesData{Service: r.URL.Query().Get("service")}
	if u.src.Changes == nil {
		d.Disabled = true
		u.render(w, r, http.StatusOK, "changes.html", "Changes", "changes", d)
		return
	}
	ms, err := u.src.Changes.Metrics(r.Context())
	if err != nil {
		u.fail(w, r, err)
		return
	}
	for _, m := range ms {
		if d.Service != "" && m.Service != d.Service {
			continue
		}
		row := doraRow{ServiceMetrics: m, MeanLead: meanSeconds(m.LeadTime), MeanTR: meanSeconds(m.RestoreTime)}
		for _, o := range []change.Outcome{change.Succeeded, change.Failed, change.RolledBack} {
			row.Shipped += m.Results[o]
		}
		// A change that failed and was rolled back later stays counted as
		// failed in Results; Rollbacks counts it too, as sre_rollbacks_total.
		row.RolledBack, row.Refused = m.Rollbacks, m.Results[change.Refused]
		d.Services = append(d.Services, row)
	}
	cs, err := u.src.Changes.List(r.Context(), change.Query{Service: d.Service, Limit: 100})
	if err != nil {
		u.fail(w, r, err)
		return
	}
	for _, c := range cs {
		row := changeRow{Change: c, Lead: "–"}
		if c.LeadTime != nil {
			row.Lead = humanDuration(time.Duration(*c.LeadTime * float64(time.Second)))
		}
		d.Changes = append(d.Changes, row)
	}
	u.render(w, r, http.StatusOK, "changes.html", "Changes", "changes", d)
}

func meanSeconds(h change.Histogram) string {
	if h.Count == 0 {
		return "–"
	}
	return humanDuration(time.Duration(h.Sum / float64(h.Count) * float64(time.Second)))
}
