package app

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/config"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/status"
)

// StatusPage is the public status page (docs/status-page.md): it owns the
// status_page section, serves /status, /status.json, /status/feed.atom and
// GET /api/v1/status, and delivers the status updates posted on incidents
// to the channels of status_page.notify through the notification outbox.
var StatusPage = Spec[status.Config]{
	Name:       "status page",
	Sections:   []string{"status_page"},
	Load:       LoadStatusPage,
	Build:      buildStatusPage,
	Migrations: status.Migrations,
}

// LoadStatusPage decodes and checks the status_page section.
func LoadStatusPage(cfg *config.Config) (status.Config, error) {
	var c status.Config
	if err := cfg.Decode("status_page", &c); err != nil {
		return c, err
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("status_page: %w", err)
	}
	for i, ch := range c.Notify {
		n, err := notify.NormalizeChannel(ch)
		if err != nil || notify.PerUser(n) && n != notify.ChannelEmail {
			return c, fmt.Errorf("status_page: notify[%d]: %q is not a channel for status updates (want slack, email, webhook, teams, mattermost or chat)", i, ch)
		}
		c.Notify[i] = n
	}
	if len(c.NotifyTo) > 0 && !slices.Contains(c.Notify, notify.ChannelEmail) {
		return c, fmt.Errorf("status_page: notify_to lists email recipients but notify has no email channel")
	}
	if slices.Contains(c.Notify, notify.ChannelEmail) && len(c.NotifyTo) == 0 {
		return c, fmt.Errorf("status_page: notify has the email channel: list the recipients in notify_to")
	}
	return c, nil
}

func buildStatusPage(ctx context.Context, a *App, c status.Config) (func(context.Context, status.Config), error) {
	var budgets func() []budget.Status
	if a.Budgets != nil {
		budgets = a.Budgets.Snapshot
	}
	stored, err := status.Load(ctx, a.DB, time.Now())
	if err != nil {
		return nil, err
	}
	o := status.Options{Incidents: a.Incidents, Budgets: budgets, Logger: a.Logger.With("component", "status"), Key: stored.Key, FirstStart: stored.FirstStart}
	if a.Budgets != nil {
		o.DailySLI = a.Budgets.DailySLI
	}
	svc := status.New(c, o)
	a.Status = svc
	status.NewHandler(svc, a.Logger.With("component", "status")).Register(a.Mux)
	// Status updates link to the page (the template's Status Page line).
	a.Incidents.SetStatusPage(func() string { return svc.Config().URL })
	a.Incidents.AddStatusUpdateHook(func(ctx context.Context, tx *sql.Tx, inc *incident.Incident, u incident.StatusUpdate, text string, now time.Time) error {
		defer svc.Invalidate()
		return enqueueStatusUpdate(ctx, tx, svc.Config(), inc, text, now)
	})
	// The page is cached (status.Options.CacheTTL); incident changes drop
	// it in their transaction, and again once committed (their events).
	a.AddHook(incident.HookFunc(func(context.Context, *sql.Tx, incident.Change) error {
		svc.Invalidate()
		return nil
	}))
	evs, cancel := a.Bus.Subscribe()
	a.AddActor(Actor{Name: "status page", Execute: func(ctx context.Context) error {
		defer cancel()
		for {
			select {
			case <-ctx.Done():
				return nil
			case ev := <-evs:
				if strings.HasPrefix(ev.Type, "incident.") || ev.Type == budget.EventStateChanged {
					svc.Invalidate()
				}
			}
		}
	}})
	return func(_ context.Context, c status.Config) { svc.SetConfig(c) }, nil
}

// enqueueStatusUpdate writes one outbox message per channel (per recipient
// for email) of status_page.notify, in the status update's transaction.
func enqueueStatusUpdate(ctx context.Context, tx *sql.Tx, c status.Config, inc *incident.Incident, text string, now time.Time) error {
	base := fmt.Sprintf("status/%s/%d", inc.ID, jobs.Millis(now))
	for _, ch := range c.Notify {
		m := notify.Message{IncidentID: inc.ID, Channel: ch, Event: "status_update", Subject: firstLine(text), Body: text,
			Title: inc.Title, Service: inc.Service, Severity: string(inc.Severity), URL: c.URL, Time: now}
		if ch != notify.ChannelEmail {
			if _, err := notify.Enqueue(ctx, tx, now, base+"/"+ch, &m); err != nil {
				return err
			}
			continue
		}
		for _, to := range c.NotifyTo {
			m.To = to
			if _, err := notify.Enqueue(ctx, tx, now, base+"/"+ch+"/"+to, &m); err != nil {
				return err
			}
		}
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// StatusHandler serves only the public status page (/status, /status.json,
// /status/feed.atom, its stylesheet and icon), for a listener of its own that
// may face the internet (cmd/sred's --web.status-address).
func (a *App) StatusHandler() http.Handler {
	h := a.Handler()
	public := map[string]bool{}
	for _, route := range status.Routes {
		public[strings.TrimPrefix(route, "GET ")] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !public[r.URL.Path] {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}
