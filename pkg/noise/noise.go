// Package noise reports how noisy each alert is: per alert rule (alert
// name), service and SLO (for the generated SLO alerts), the pages it caused over a period, how many resolved
// by themselves within minutes, were acknowledged and closed without any
// action, flapped, or came at night, how long acknowledging took, and a
// concrete suggestion for the noisiest (raise `for:`, move to the ticket
// tier, raise the SLO's `minEvents`, review its objective).
package noise

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/store"
)

// Options select and tune a report.
type Options struct {
	// Since and Until bound the incidents' creation times.
	Since, Until time.Time
	// ShortAfter: a page resolved automatically within this long counts
	// as resolved by itself (default 10m).
	ShortAfter time.Duration
	// NightStart and NightEnd are the night's hours (UTC, default 22 to 6).
	NightStart, NightEnd int
	// Limit keeps the noisiest rows (0: all).
	Limit int
}

// Row is one alert rule of one service and, for the generated SLO alerts
// (which share their alert names across SLOs), of one SLO.
type Row struct {
	Alertname string `json:"alertname"`
	Service   string `json:"service"`
	// SLO is the slo label of its incidents (generated SLO alerts), if any:
	// that of the alert that raised each to its peak, else of the labels
	// it opened with.
	SLO string `json:"slo,omitempty"`
	// Pages are the incidents it opened (each paged).
	Pages        int     `json:"pages"`
	PagesPerWeek float64 `json:"pages_per_week"`
	// AutoResolvedShort: pages resolved automatically within ShortAfter.
	AutoResolvedShort int `json:"auto_resolved_short"`
	// AckedWithoutAction: pages acknowledged, then resolved automatically
	// with no note, runbook, status update, assignment or action item.
	AckedWithoutAction int `json:"acked_without_action"`
	Acked              int `json:"acked"`
	// MeanTimeToAck over the acknowledged pages (seconds).
	MeanTimeToAckSeconds float64 `json:"mean_time_to_ack_seconds"`
	NightPages           int     `json:"night_pages"`
	NightShare           float64 `json:"night_share"`
	Flapping             int     `json:"flapping"`
	// Suggestions say what to change, the most useful first.
	Suggestions []string `json:"suggestions"`

	ackTotal float64
}

// Report is the noise report of a period.
type Report struct {
	Since      time.Time `json:"since"`
	Until      time.Time `json:"until"`
	ShortAfter string    `json:"short_after"`
	Pages      int       `json:"pages"`
	Rows       []Row     `json:"rows"`
}

// actionKinds are the timeline entries that show somebody acted.
var actionKinds = map[string]bool{
	"note": true, "action_item": true, "status_update": true, "runbook_run": true, "runbook_step": true,
	"impact": true, "assignment": true, "mitigated": true,
}

// Build computes the report from the incident store: incidents opened by
// Alertmanager notifications (not manual nor sred's own) created in the
// period.
func Build(ctx context.Context, db *store.DB, o Options) (*Report, error) {
	if o.ShortAfter <= 0 {
		o.ShortAfter = 10 * time.Minute
	}
	if o.NightStart == 0 && o.NightEnd == 0 {
		o.NightStart, o.NightEnd = 22, 6
	}
	if o.Until.IsZero() {
		o.Until = time.Now()
	}
	if !o.Since.Before(o.Until) {
		return nil, fmt.Errorf("noise report: since (%s) must be before until (%s)", o.Since.UTC().Format(time.RFC3339), o.Until.UTC().Format(time.RFC3339))
	}
	since, until := o.Since.UnixMilli(), o.Until.UnixMilli()
	type inc struct {
		row                        *Row
		labels                     map[string]string
		service, peak              string
		created                    int64
		acked, resolved            *int64
		flapping                   bool
		auto, acted, investigating bool
		// first is the incident's first severity change (its from is the
		// severity it opened with); peaked the first that set its peak
		// severity, and peakName the alert rule that did (its entry's
		// alertname).
		first, peaked int64
		opened        string
		peakName      string
		peakSLO       string // the slo label of that alert, if any
	}
	incs := map[string]*inc{}
	rows := map[string]*Row{}
	rs, err := db.QueryContext(ctx, `SELECT id, service, labels, created_at, acknowledged_at, resolved_at, investigating_at, flapping,
		CASE WHEN peak_severity = '' THEN severity ELSE peak_severity END
		FROM incidents WHERE created_at >= $1 AND created_at < $2 AND group_key NOT LIKE 'manual:%' AND group_key NOT LIKE 'sred:%'`, since, until)
	if err != nil {
		return nil, fmt.Errorf("noise report: %w", err)
	}
	for rs.Next() {
		var id, service, labels, peak string
		var created int64
		var acked, resolved, investigating *int64
		var flapping int
		if err := rs.Scan(&id, &service, &labels, &created, &acked, &resolved, &investigating, &flapping, &peak); err != nil {
			rs.Close()
			return nil, fmt.Errorf("noise report: %w", err)
		}
		var ls map[string]string
		_ = json.Unmarshal([]byte(labels), &ls)
		incs[id] = &inc{labels: ls, service: service, peak: peak, created: created, acked: acked, resolved: resolved,
			flapping: flapping != 0, investigating: investigating != nil}
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("noise report: %w", err)
	}
	// The timeline's actions and automatic resolutions, and its severity
	// changes: an incident counts for the alert rule that raised it to its
	// peak severity (a ticket's incident raised by a page is the page's).
	tl, err := db.QueryContext(ctx, `SELECT t.id, t.incident_id, t.kind, t.message, t.data FROM incident_timeline t
		JOIN incidents i ON i.id = t.incident_id
		WHERE i.created_at >= $1 AND i.created_at < $2 AND t.kind IN ('status', 'severity', 'note', 'action_item', 'status_update',
			'runbook_run', 'runbook_step', 'impact', 'assignment', 'mitigated')`, since, until)
	if err != nil {
		return nil, fmt.Errorf("noise report: %w", err)
	}
	for tl.Next() {
		var tid int64
		var id, kind, msg string
		var data *string
		if err := tl.Scan(&tid, &id, &kind, &msg, &data); err != nil {
			tl.Close()
			return nil, fmt.Errorf("noise report: %w", err)
		}
		in := incs[id]
		if in == nil {
			continue
		}
		switch {
		case kind == "severity":
			var d struct{ From, To, Alertname, SLO string }
			if data != nil {
				_ = json.Unmarshal([]byte(*data), &d)
			}
			if in.first == 0 || tid < in.first {
				in.first, in.opened = tid, d.From
			}
			if d.To == in.peak && (in.peaked == 0 || tid < in.peaked) {
				in.peaked, in.peakName, in.peakSLO = tid, d.Alertname, d.SLO
			}
		case kind == "status" && strings.HasPrefix(msg, "resolved automatically"):
			in.auto = true
		case actionKinds[kind]:
			in.acted = true
		}
	}
	tl.Close()
	if err := tl.Err(); err != nil {
		return nil, fmt.Errorf("noise report: %w", err)
	}
	for _, in := range incs {
		name, slo := in.labels["alertname"], in.labels["slo"]
		// Raised to its peak after it opened, by an alert rule the entry
		// names (and its SLO); else (it opened at its peak, an exhausted
		// budget raised it, an entry of an older sred) the labels it
		// opened with.
		if in.peaked != 0 && in.opened != in.peak && in.peakName != "" {
			name, slo = in.peakName, in.peakSLO
		}
		if name == "" {
			name = "(several)"
		}
		// The generated SLO alerts share their names (SLOBurnRatePage):
		// each SLO of a service is a row of its own.
		key := name + "\x00" + in.service + "\x00" + slo
		r := rows[key]
		if r == nil {
			r = &Row{Alertname: name, Service: in.service, SLO: slo, Suggestions: []string{}}
			rows[key] = r
		}
		in.row = r
		r.Pages++
		if in.flapping {
			r.Flapping++
		}
		if isNight(time.UnixMilli(in.created).UTC().Hour(), o.NightStart, o.NightEnd) {
			r.NightPages++
		}
	}
	rep := &Report{Since: o.Since.UTC(), Until: o.Until.UTC(), ShortAfter: formatDuration(o.ShortAfter), Rows: []Row{}}
	for _, in := range incs {
		r := in.row
		if in.auto && in.resolved != nil && *in.resolved-in.created <= o.ShortAfter.Milliseconds() {
			r.AutoResolvedShort++
		}
		if in.acked != nil {
			r.Acked++
			r.ackTotal += float64(*in.acked-in.created) / 1000
			if in.auto && !in.acted && !in.investigating {
				r.AckedWithoutAction++
			}
		}
	}
	weeks := o.Until.Sub(o.Since).Hours() / (24 * 7)
	for _, r := range rows {
		rep.Pages += r.Pages
		r.PagesPerWeek = round2(float64(r.Pages) / weeks)
		r.NightShare = round2(float64(r.NightPages) / float64(r.Pages))
		if r.Acked > 0 {
			r.MeanTimeToAckSeconds = round2(r.ackTotal / float64(r.Acked))
		}
		r.Suggestions = suggest(r, rep.ShortAfter)
		rep.Rows = append(rep.Rows, *r)
	}
	sort.Slice(rep.Rows, func(i, j int) bool {
		a, b := rep.Rows[i], rep.Rows[j]
		if a.Pages != b.Pages {
			return a.Pages > b.Pages
		}
		if len(a.Suggestions) != len(b.Suggestions) {
			return len(a.Suggestions) > len(b.Suggestions)
		}
		if a.Alertname != b.Alertname {
			return a.Alertname < b.Alertname
		}
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		return a.SLO < b.SLO
	})
	if o.Limit > 0 && len(rep.Rows) > o.Limit {
		rep.Rows = rep.Rows[:o.Limit]
	}
	return rep, nil
}

// suggest gives the concrete changes that would make r page less.
func suggest(r *Row, short string) []string {
	out := []string{}
	share := func(n int) float64 { return float64(n) / float64(r.Pages) }
	if r.Pages < 2 {
		return out
	}
	if share(r.AutoResolvedShort) >= 0.5 {
		if r.SLO != "" {
			out = append(out, fmt.Sprintf("raise minEvents of SLO %s (or the alert's `for:`): %d of %d pages resolved by themselves within %s",
				r.SLO, r.AutoResolvedShort, r.Pages, short))
		} else {
			out = append(out, fmt.Sprintf("raise `for:` of alert %s: %d of %d pages resolved by themselves within %s",
				r.Alertname, r.AutoResolvedShort, r.Pages, short))
		}
	}
	if share(r.AckedWithoutAction) >= 0.5 {
		out = append(out, fmt.Sprintf("move it to the ticket tier: %d of %d pages were acknowledged and closed without any action",
			r.AckedWithoutAction, r.Pages))
	}
	if share(r.Flapping) >= 0.3 {
		out = append(out, fmt.Sprintf("it flaps (%d of %d incidents): raise `for:` or `keep_firing_for:`", r.Flapping, r.Pages))
	}
	if r.SLO != "" && r.PagesPerWeek >= 3 && len(out) == 0 {
		out = append(out, fmt.Sprintf("fix the SLO objective of %s: it pages %.1f times a week and responders act on it", r.SLO, r.PagesPerWeek))
	}
	if r.NightShare >= 0.5 && r.NightPages >= 2 && share(r.AckedWithoutAction) >= 0.25 {
		out = append(out, fmt.Sprintf("%d of %d pages came at night and some needed no action: page at night only for what cannot wait (ticket tier otherwise)",
			r.NightPages, r.Pages))
	}
	return out
}

func isNight(h, start, end int) bool {
	if start > end {
		return h >= start || h < end
	}
	return h >= start && h < end
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

func formatDuration(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}
