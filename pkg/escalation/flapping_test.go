package escalation_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestFlappingHoldsEscalation: a damped flapping re-opening (the second
// within the flap window, incidents.flap_threshold 2) does not page at
// once, so an alert that fires and resolves over and over pages no more;
// but when the alert then stays firing for the flap window, that is an
// outage and the escalation pages again. A resolve within the hold ends it
// without a page.
func TestFlappingHoldsEscalation(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
		clock := clock.NewManual(t0)
		r := newRig(t, db, clock, escalationYAML, notifyConfig(t, sms, push, email, slack))
		deliver := diskDeliveries(t, r, clock)
		flap := func() time.Time {
			t.Helper()
			starts := clock.Now()
			deliver("firing", starts)
			r.tick(t)
			return starts
		}

		// Opened: paged. Resolved, fired again (re-opened once): paged.
		starts := flap()
		res := deliver("firing", starts)
		require.Len(t, res.Incidents, 1)
		inc := res.Incidents[0]
		require.Len(t, r.paged(t, inc), 1)
		clock.Advance(2 * time.Minute)
		deliver("resolved", starts)
		clock.Advance(5 * time.Minute)
		starts = flap()
		require.Len(t, r.paged(t, inc), 2, "the first re-opening restarts the escalation")

		// The second re-opening is damped: no page at once, nor a minute
		// before the hold ends; resolved within the hold, it never pages.
		clock.Advance(2 * time.Minute)
		deliver("resolved", starts)
		clock.Advance(5 * time.Minute)
		starts = flap()
		require.Len(t, r.paged(t, inc), 2, "a damped re-opening does not page at once")
		require.Len(t, r.timeline(t, inc, `Escalation policy "default" frozen onto the incident`), 3)
		require.Len(t, r.timeline(t, inc, `Escalation policy "default" frozen onto the incident (4 levels, level 0 at +0s, level 1 at +1h0m0s, level 2 at +1h15m0s, level 3 at +1h45m0s), held back 1h for flapping: it pages if the incident is still open at 2026-03-02 11:44:00 UTC`), 1, "%q", r.timeline(t, inc, "Escalation policy"))
		clock.Advance(30 * time.Minute)
		r.tick(t)
		deliver("resolved", starts)
		clock.Advance(35 * time.Minute) // past the hold's end (11:44), within the flap window
		r.tick(t)
		require.Len(t, r.paged(t, inc), 2, "resolved within the hold: no page")

		// Damped again, and this time it stays firing: the escalation pages
		// once the hold is over.
		flap()
		require.Len(t, r.paged(t, inc), 2)
		clock.Advance(time.Hour - time.Second)
		r.tick(t)
		require.Len(t, r.paged(t, inc), 2, "held back for the flap window")
		clock.Advance(time.Second)
		r.tick(t)
		require.Len(t, r.paged(t, inc), 3, "still firing after the flap window: paged")
	})
}

// TestReopenTimelineOrder: the entries a re-opening delivery writes read
// cause before effect: the re-open, then the alert that fired again,
// then what the escalation did about it (its policy frozen for the new
// run, or held back when damped). The escalation's entries used to come
// first, written by its hook before the delivery's own entries.
func TestReopenTimelineOrder(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
		clock := clock.NewManual(t0)
		r := newRig(t, db, clock, escalationYAML, notifyConfig(t, sms, push, email, slack))
		deliverDisk := diskDeliveries(t, r, clock)
		deliver := func(status string, starts time.Time) string {
			t.Helper()
			res := deliverDisk(status, starts)
			require.Len(t, res.Incidents, 1)
			return res.Incidents[0]
		}
		// written lists the kind and message of the entries written at
		// the clock's time, in the order the timeline reads.
		written := func(id string) []string {
			t.Helper()
			tl, err := r.svc.Timeline(ctx, id)
			require.NoError(t, err)
			var out []string
			for _, e := range tl {
				if e.Time.Equal(clock.Now()) {
					out = append(out, e.Kind+" "+e.Message)
				}
			}
			return out
		}
		starts := clock.Now()
		id := deliver("firing", starts)
		// A new incident's entries read so already (the hook's entries
		// join the delivery's statement after its own).
		first := []string{"status incident created", "alert_fired alert fired", `escalation Escalation policy "default" frozen`}
		require.Equal(t, first, prefixes(written(id), first))
		r.tick(t)

		for _, want := range [][]string{
			// Re-opened once: the escalation starts a new run.
			{"status re-opened", "alert_fired alert fired", `escalation Escalation policy "default" frozen`},
			// Re-opened twice within the flap window: damped.
			{"status re-opened: fired again within the flap window of 1h (flapping, re-opened 2 times: damped", "alert_fired alert fired", `escalation Escalation policy "default" frozen`},
		} {
			clock.Advance(2 * time.Minute)
			deliver("resolved", starts)
			clock.Advance(5 * time.Minute)
			starts = clock.Now()
			deliver("firing", starts)
			require.Equal(t, want, prefixes(written(id), want))
			r.tick(t)
		}
	})
}

// prefixes cuts each of got to the length of the want at its index, for
// comparing the starts of timeline entries; entries past want are left
// out, and missing ones read "".
func prefixes(got, want []string) []string {
	out := make([]string, len(want))
	for i, w := range want {
		if i < len(got) {
			out[i] = got[i][:min(len(got[i]), len(w))]
		}
	}
	return out
}

// diskDeliveries returns a function delivering the DiskIOSaturated alert
// of service storage (severity low) to r's incident service, firing or
// resolved at clock's time, as Alertmanager's group of it.
func diskDeliveries(t *testing.T, r *rig, clock *clock.Manual) func(status string, starts time.Time) *incident.IngestResult {
	labels := map[string]string{"alertname": "DiskIOSaturated", "service": "storage", "severity": "low"}
	return func(status string, starts time.Time) *incident.IngestResult {
		t.Helper()
		a := incident.NotifiedAlert{Status: status, Fingerprint: "fp-disk", StartsAt: starts, Labels: labels}
		if status == "resolved" {
			a.EndsAt = clock.Now()
		}
		res, err := r.svc.Ingest(context.Background(), incident.Notification{Receiver: "sred", Status: status, GroupKey: "{}:{alertname=\"DiskIOSaturated\"}",
			CommonLabels: labels, Alerts: []incident.NotifiedAlert{a}})
		require.NoError(t, err)
		return res
	}
}
