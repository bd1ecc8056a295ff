package e2e

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/reconcile"
)

// pageAlert is the alert rulegen names burn-rate pages with.
const pageAlert = "SLOBurnRatePage"

// level0User is the user of level 0 of policy "demo" (testdata/sred.yml.tmpl).
const level0User = "alice"

// Step timeouts. The slowest step is the page resolving: the failed
// requests must leave the 5m base window of the SLO rules first.
const (
	timeoutHealthy         = 90 * time.Second
	timeoutCluster         = time.Minute
	timeoutFire            = 3 * time.Minute
	timeoutDeliver         = time.Minute
	timeoutNotify          = time.Minute
	timeoutHeal            = time.Minute
	timeoutAlertResolved   = 8 * time.Minute
	timeoutIncidentResolve = 2 * time.Minute
	timeoutMTTR            = time.Minute
)

// TestIncidentLifecycle is the whole product on one replica of each
// component, sred on SQLite.
func TestIncidentLifecycle(t *testing.T) {
	t.Parallel()
	runScenario(t, scenario{Alertmanagers: 1, Sreds: 1})
}

// TestIncidentLifecycleHA runs Alertmanager as a two-peer cluster sending
// every delivery to two sred replicas that share one PostgreSQL schema: the
// replicas must open exactly one incident, run the runbook once and send
// each notification once.
func TestIncidentLifecycleHA(t *testing.T) {
	t.Parallel()
	runScenario(t, scenario{Alertmanagers: 2, Sreds: 2})
}

func runScenario(t *testing.T, sc scenario) {
	s := startStack(t, sc)
	ctx := context.Background()

	// 1. Healthy: Prometheus scrapes the demo and every sred, and the SLO
	// recording rules report an error ratio of 0. Nothing fires, no incident.
	s.waitFor("healthy", timeoutHealthy, func(ctx context.Context) (bool, string, error) {
		up, err := s.query(ctx, `up{job=~"demo|sred"} == 1`)
		if err != nil {
			return false, "", err
		}
		ratio, err := s.query(ctx, `slo:sli_error:ratio_rate5m{service="demo",slo="availability"}`)
		if err != nil {
			return false, "", err
		}
		obs := fmt.Sprintf("%d/%d targets up, error ratio %v", len(up), 1+sc.Sreds, ratio)
		return len(up) == 1+sc.Sreds && len(ratio) == 1 && ratio[0].Value == 0, obs, nil
	})
	if as, err := s.promAlerts(ctx, pageAlert); err != nil || len(as) != 0 {
		t.Fatalf("healthy demo: want no %s alert, got %v (%v)", pageAlert, as, err)
	}
	for _, sred := range s.sreds {
		if incs, err := s.incidents(ctx, sred); err != nil || len(incs) != 0 {
			t.Fatalf("healthy demo: want no incident on %s, got %v (%v)", sred.Name, incs, err)
		}
	}

	// In HA, the two Alertmanagers must have formed their cluster before
	// the page fires: otherwise each notifies on its own and the test would
	// not exercise the deduplication of peers' notifications.
	if len(s.ams) > 1 {
		s.waitFor("Alertmanager cluster formed", timeoutCluster, func(ctx context.Context) (bool, string, error) {
			var obs []string
			formed := true
			for i, am := range s.ams {
				st, err := amClusterStatus(ctx, am)
				if err != nil {
					return false, "", err
				}
				obs = append(obs, fmt.Sprintf("am%d: %q with %d peer(s)", i, st.Cluster.Status, len(st.Cluster.Peers)))
				if st.Cluster.Status != "ready" || len(st.Cluster.Peers) != len(s.ams) {
					formed = false
				}
			}
			return formed, strings.Join(obs, "; "), nil
		})
	}

	// 2. Inject errors: every request fails.
	if b, code, err := do(ctx, http.MethodPost, s.demo.URL+"/admin/errors?rate=1", nil); err != nil || code != http.StatusOK {
		t.Fatalf("inject errors: %d %s %v", code, b, err)
	}
	injected := s.steps.mark("errors injected", "POST /admin/errors?rate=1")

	// 3. The burn-rate page fires in Prometheus.
	var fired model.LabelSet
	var activeAt time.Time
	// lastFiring is the latest time Prometheus was asked for its alerts and
	// answered that the page fires: the incident must resolve after it.
	var lastFiring time.Time
	s.waitFor("page fires in Prometheus", timeoutFire, func(ctx context.Context) (bool, string, error) {
		asked := time.Now()
		as, err := s.promAlerts(ctx, pageAlert)
		if err != nil {
			return false, "", err
		}
		for _, a := range as {
			if a.State == "firing" {
				fired, activeAt, lastFiring = a.Labels, a.ActiveAt, asked
				return true, fmt.Sprintf("%s value %s", a.Labels, a.Value), nil
			}
		}
		burn, _ := s.query(ctx, `slo:burn_rate:ratio_rate5m{service="demo"} or slo:burn_rate:ratio_rate30m{service="demo"}`)
		return false, fmt.Sprintf("alerts %v, burn rates %v", as, burn), nil
	})
	for name, want := range map[model.LabelName]model.LabelValue{"service": "demo", "slo": "availability", "severity": "page", "burn_tier": "page_fast"} {
		if fired[name] != want {
			t.Errorf("fired alert: label %s = %q, want %q (labels %s)", name, fired[name], want, fired)
		}
	}

	// 4. Every Alertmanager holds the alert (Prometheus sends to all of them).
	// amActive[i] is the latest time Alertmanager i was asked and held the
	// page as active (not yet ended): at least one Alertmanager must have
	// resolved it before sred resolves the incident.
	amActive := make([]time.Time, len(s.ams))
	holding := func(ctx context.Context) (n int, obs []string, err error) {
		for i, am := range s.ams {
			asked := time.Now()
			as, err := amAlerts(ctx, am, pageAlert)
			if err != nil {
				return 0, nil, err
			}
			for _, a := range as {
				if a.Status.State == "active" && (a.EndsAt.IsZero() || a.EndsAt.After(asked)) {
					n++
					amActive[i] = asked
					obs = append(obs, fmt.Sprintf("am%d: active since %s", i, a.StartsAt.UTC().Format(time.RFC3339)))
				}
			}
		}
		return n, obs, nil
	}
	s.waitFor("Alertmanager holds the page", timeoutDeliver, func(ctx context.Context) (bool, string, error) {
		n, obs, err := holding(ctx)
		return err == nil && n == len(s.ams), strings.Join(obs, "; "), err
	})

	// 5. sred opens one incident for the page.
	var inc incident.Incident
	s.waitFor("sred opens an incident", timeoutDeliver, func(ctx context.Context) (bool, string, error) {
		incs, err := s.incidents(ctx, s.sreds[0])
		if err != nil {
			return false, "", err
		}
		if len(incs) == 0 {
			return false, "no incident", nil
		}
		inc = incs[0]
		return true, fmt.Sprintf("%s %s %s %q", inc.ID, inc.Status, inc.Severity, inc.Title), nil
	})
	if inc.Service != "demo" || inc.Severity != incident.SeverityCritical || inc.Labels["alertname"] != pageAlert {
		t.Errorf("incident %s: service %q severity %q labels %v; want service demo, severity CRITICAL, alertname %s",
			inc.ID, inc.Service, inc.Severity, inc.Labels, pageAlert)
	}

	// 6. Level 0 of the escalation policy is notified at the sink. The
	// webhook channel sends one message per level, not one per user, so the
	// message has no user or address; its acknowledge link is signed for
	// the user it pages, which must be level 0's user of policy "demo".
	var paged time.Time
	s.waitFor("level 0 notified", timeoutNotify, func(context.Context) (bool, string, error) {
		msgs, bad := s.sink.messages()
		if len(bad) > 0 {
			return false, "", fmt.Errorf("sink rejected a notification: %s", bad[0])
		}
		for _, m := range msgs {
			if m.Msg.IncidentID == inc.ID && m.Msg.Level == 0 && m.Msg.Event == notify.EventTrigger {
				claims, err := s.ackClaims(m.Msg.AckURL)
				if err != nil {
					return false, "", violationf("level-0 message %s: %v", m.key(), err)
				}
				if claims.User != level0User || claims.IncidentID != inc.ID {
					return false, "", violationf("level-0 message %s pages %q for incident %q, want %q for %s",
						m.key(), claims.User, claims.IncidentID, level0User, inc.ID)
				}
				paged = m.At
				return true, fmt.Sprintf("%s: %q, acknowledge link for %s", m.key(), m.Msg.Subject, claims.User), nil
			}
		}
		return false, fmt.Sprintf("%d message(s), none for level 0 of %s", len(msgs), inc.ID), nil
	})

	// 7. The runbook's http step heals the demo.
	var healed run
	s.waitFor("runbook heals the demo", timeoutHeal, func(ctx context.Context) (bool, string, error) {
		st, err := s.demoState(ctx)
		if err != nil {
			return false, "", err
		}
		rs, err := s.runs(ctx, inc.ID)
		if err != nil {
			return false, fmt.Sprintf("demo error rate %v", st.ErrorRate), err
		}
		obs := fmt.Sprintf("demo error rate %v, runs %+v", st.ErrorRate, rs)
		if st.ErrorRate == 0 && len(rs) == 1 && rs[0].Status == "succeeded" && rs[0].FinishedAt != nil {
			healed = rs[0]
			return true, obs, nil
		}
		return false, obs, nil
	})

	// 8. The page resolves in Prometheus once the errors left the windows.
	// Meanwhile the incident stays open on every replica: each poll reads
	// the incident first and Prometheus' alerts after, so an incident seen
	// resolved while the page still fires resolved too early (the heal, the
	// runbook or a timer must not resolve it; only the alert resolving does).
	s.waitFor("page resolves in Prometheus", timeoutAlertResolved, func(ctx context.Context) (bool, string, error) {
		var closed []string
		for _, sred := range s.sreds {
			got, err := s.incidentOn(ctx, sred, inc.ID)
			if err != nil {
				return false, "", err
			}
			if !got.Status.Open() {
				closed = append(closed, fmt.Sprintf("%s on %s", got.Status, sred.Name))
			}
		}
		asked := time.Now()
		as, err := s.promAlerts(ctx, pageAlert)
		if err != nil {
			return false, "", err
		}
		if len(as) > 0 {
			if len(closed) > 0 {
				return false, "", violationf("incident %s is %s while Prometheus still fires the page %s",
					inc.ID, strings.Join(closed, ", "), as[0].Labels)
			}
			lastFiring = asked
		}
		if _, _, err := holding(ctx); err != nil {
			return false, "", err
		}
		burn, _ := s.query(ctx, `slo:burn_rate:ratio_rate5m{service="demo"}`)
		return len(as) == 0, fmt.Sprintf("alerts %d, 5m burn rate %v, incident open on every replica", len(as), burn), nil
	})

	// 9. Alertmanager delivers the resolve; sred resolves the incident.
	var resolved *incident.Incident
	s.waitFor("sred resolves the incident", timeoutIncidentResolve, func(ctx context.Context) (bool, string, error) {
		got, err := s.incident(ctx, inc.ID)
		if err != nil {
			return false, "", err
		}
		resolved = got
		return got.Status == incident.StatusResolved && got.ResolvedAt != nil, fmt.Sprintf("%s %s", got.ID, got.Status), nil
	})
	mttr := resolved.ResolvedAt.Sub(resolved.CreatedAt).Seconds()

	// The resolution came from Alertmanager (its resolved delivery, or the
	// reconciler finding the alert gone from Alertmanager), not from the
	// runbook or a person: exactly one status entry of the timeline resolves
	// the incident, with actor alertmanager or reconciler.
	tl, err := s.timeline(ctx, s.sreds[0], inc.ID)
	if err != nil {
		t.Fatalf("timeline of %s: %v", inc.ID, err)
	}
	var resolving []incident.TimelineEntry
	for _, e := range tl {
		if e.Kind == "status" && e.Data["to"] == string(incident.StatusResolved) {
			resolving = append(resolving, e)
		}
	}
	switch {
	case len(resolving) != 1:
		t.Errorf("timeline of %s: %d entries resolve the incident, want 1: %+v", inc.ID, len(resolving), resolving)
	case resolving[0].Actor != "alertmanager" && resolving[0].Actor != reconcile.Actor:
		t.Errorf("timeline of %s: resolved by %q (%s), want alertmanager or %s", inc.ID, resolving[0].Actor, resolving[0].Message, reconcile.Actor)
	default:
		s.steps.mark("resolved by "+resolving[0].Actor, resolving[0].Message)
	}

	// The components' own timestamps tell the same story, in order:
	// injection <= alert active <= incident detected <= created <= paged,
	// created <= runbook finished <= page last seen firing in Prometheus <=
	// incident resolved; and some Alertmanager stopped holding the page
	// before the incident resolved.
	const slack = time.Second // Prometheus stamps alerts with its evaluation time
	order := []struct {
		name string
		at   time.Time
	}{
		{"errors injected", injected.Add(-slack)},
		{"alert active in Prometheus", activeAt},
		{"incident detected (alert startsAt)", inc.DetectedAt},
		{"incident created", inc.CreatedAt},
		{"runbook run finished", *healed.FinishedAt},
		{"page last seen firing in Prometheus", lastFiring},
		{"incident resolved", *resolved.ResolvedAt},
	}
	for i := 1; i < len(order); i++ {
		// sred keeps milliseconds; Prometheus reports nanoseconds.
		if order[i].at.Truncate(time.Millisecond).Before(order[i-1].at.Truncate(time.Millisecond)) {
			t.Errorf("%s at %s is before %s at %s", order[i].name, order[i].at.UTC().Format(time.RFC3339Nano),
				order[i-1].name, order[i-1].at.UTC().Format(time.RFC3339Nano))
		}
	}
	firstEnded := slices.MinFunc(amActive, func(a, b time.Time) int { return a.Compare(b) })
	if resolved.ResolvedAt.Truncate(time.Millisecond).Before(firstEnded.Truncate(time.Millisecond)) {
		t.Errorf("incident resolved at %s, while every Alertmanager still held the page (the first one last seen holding it at %s)",
			resolved.ResolvedAt.UTC().Format(time.RFC3339Nano), firstEnded.UTC().Format(time.RFC3339Nano))
	}
	if paged.Before(inc.CreatedAt) {
		t.Errorf("level 0 paged at %s, before the incident was created at %s", paged, inc.CreatedAt)
	}

	// 10. The MTTR histogram has the incident, through a Prometheus query
	// (Prometheus scrapes every sred replica; each exports the same values).
	s.waitFor("MTTR metric in Prometheus", timeoutMTTR, func(ctx context.Context) (bool, string, error) {
		count, err := s.query(ctx, `sre_incident_time_to_resolve_seconds_count{service="demo",severity="CRITICAL"}`)
		if err != nil {
			return false, "", err
		}
		sum, err := s.query(ctx, `sre_incident_time_to_resolve_seconds_sum{service="demo",severity="CRITICAL"}`)
		if err != nil {
			return false, "", err
		}
		obs := fmt.Sprintf("count %v, sum %v (incident MTTR %.3fs)", count, sum, mttr)
		if len(count) != sc.Sreds || len(sum) != sc.Sreds {
			return false, obs, nil
		}
		for i := range count {
			if count[i].Value != 1 || math.Abs(float64(sum[i].Value)-mttr) > 1 {
				return false, obs, nil
			}
		}
		return true, obs, nil
	})

	// Final checks over the whole run.
	for _, sred := range s.sreds {
		incs, err := s.incidents(ctx, sred)
		if err != nil {
			t.Fatalf("%s: list incidents: %v", sred.Name, err)
		}
		if len(incs) != 1 {
			var ids []string
			for _, i := range incs {
				ids = append(ids, i.ID+" "+string(i.Status))
			}
			t.Errorf("%s: want exactly one incident, got %d: %v", sred.Name, len(incs), ids)
		}
	}
	msgs, bad := s.sink.messages()
	if len(bad) > 0 {
		t.Errorf("sink rejected %d notification(s): %v", len(bad), bad)
	}
	seen := map[string]int{}
	for _, m := range msgs {
		seen[m.key()]++
	}
	var keys []string
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if seen[k] != 1 {
			t.Errorf("notification %s arrived %d times, want once", k, seen[k])
		}
	}
	for _, m := range msgs {
		if m.Msg.Level > 0 && m.Msg.Event == notify.EventTrigger {
			t.Errorf("level %d was paged (%s) although the incident resolved before its 10m delay", m.Msg.Level, m.key())
		}
	}
	// Every replica received deliveries (each Alertmanager sends to all of
	// them), and across replicas exactly one incident was created.
	reqs, err := s.query(ctx, `sum by (instance) (sre_webhook_requests_total{job="sred",code="200"})`)
	if err != nil || len(reqs) != sc.Sreds {
		t.Errorf("webhook requests per sred replica: %v (%v), want a series for each of %d replicas", reqs, err, sc.Sreds)
	}
	for _, r := range reqs {
		if r.Value < 1 {
			t.Errorf("sred %s answered no webhook delivery with 200", r.Metric["instance"])
		}
	}
	created, err := s.query(ctx, `sum(sre_incidents_created_total{job="sred"})`)
	if err != nil || len(created) != 1 || created[0].Value != 1 {
		t.Errorf("sum(sre_incidents_created_total) over the replicas = %v (%v), want 1", created, err)
	}
	heals, err := s.query(ctx, `demo_heals_total`)
	if err != nil || len(heals) != 1 || heals[0].Value != 1 {
		t.Errorf("demo_heals_total = %v (%v), want 1: the runbook must run exactly once", heals, err)
	}
	t.Logf("incident %s: MTTR %.1fs; %d notification(s): %v", inc.ID, mttr, len(msgs), keys)
}
