package chaos

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// triedIncidents is IncidentReader on a real incident store, counting the
// notes tried on each incident.
type triedIncidents struct {
	IncidentReader
	mu    sync.Mutex
	tried map[string]int
}

func (c *triedIncidents) Tag(ctx context.Context, id, note string) error {
	c.mu.Lock()
	c.tried[id]++
	c.mu.Unlock()
	return c.IncidentReader.Tag(ctx, id, note)
}

func (c *triedIncidents) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tried[id]
}

// TestFullIncidentNotedOnce: an incident of the target opened during a run
// that has the most notes it can have (incident.MaxNotes) refuses the
// run's notes. It is tried once, not at every check of the run, and the
// report still lists it among the incidents opened during the run, as
// not noted. Another incident takes both notes (expected, and opened
// during the run). Before, the runner tried the full incident at every
// check and the report left it out.
func TestFullIncidentNotedOnce(t *testing.T) {
	tu.Backends(t, append(migrations(), incident.Migrations), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		h := newHarness(t, db, "r1")
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		// Its own clock: the runner's (h.clock) counts only the runner's waits.
		svc.Clock = clock.NewManual(h.clock.Now())
		t.Cleanup(func() { svc.Close() })

		start := h.clock.Now()
		const full = "OLD-2026-0001"
		rec := incident.ExportRecord{Incident: incident.Incident{
			ID: full, Title: "imported", Service: "api", Severity: incident.SeverityHigh, Status: incident.StatusInvestigating,
			GroupKey: "{}:" + full, DetectedAt: start, CreatedAt: start, UpdatedAt: start}}
		for range incident.MaxNotes {
			rec.Timeline = append(rec.Timeline, incident.ExportTimelineEntry{Time: start, Kind: "note", Actor: "alice", Message: "x"})
		}
		line, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Import(ctx, strings.NewReader(string(line)+"\n")); err != nil {
			t.Fatal(err)
		}
		other, err := svc.Create(ctx, incident.ManualIncident{Title: "slow", Service: "api", Severity: incident.SeverityHigh, Actor: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		inc := &triedIncidents{IncidentReader: IncidentReader{Service: svc}, tried: map[string]int{}}
		h.s.o.Incidents = inc

		info, err := h.s.Start(ctx, load(t, testExp+"expectAlerts: true\n"), "alice")
		if err != nil {
			t.Fatal(err)
		}
		for range 12 { // 12 checks of 5s
			h.tick(t, 5*time.Second)
		}
		h.drain(t, 5*time.Second)
		r, err := h.s.Get(ctx, info.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != StatusSucceeded {
			t.Fatalf("status %s (%s): a full incident does not fail the run", r.Status, r.Reason)
		}
		if n := inc.count(full); n != 1 {
			t.Errorf("notes tried on the full incident: %d, want 1 (refused once, then remembered)", n)
		}
		if n := inc.count(other.ID); n != 2 {
			t.Errorf("notes tried on %s: %d, want 2 (expected, opened during the run)", other.ID, n)
		}
		md, js, err := h.s.Report(ctx, info.ID)
		if err != nil {
			t.Fatal(err)
		}
		var rep Report
		if err := json.Unmarshal([]byte(js), &rep); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(rep.Incidents, " "); got != full+" "+other.ID && got != other.ID+" "+full {
			t.Errorf("report incidents %v, want %s and %s", rep.Incidents, full, other.ID)
		}
		if strings.Join(rep.NotNoted, " ") != full {
			t.Errorf("report incidents_not_noted %v, want [%s]", rep.NotNoted, full)
		}
		if want := "Not noted on " + full + ": the incident has the most notes it can have."; !strings.Contains(md, want) {
			t.Errorf("report does not say %q:\n%s", want, md)
		}
		notes := func(id string) (n int, chaos []string) {
			tl, err := svc.Timeline(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range tl {
				if e.Kind == "note" {
					n++
					if e.Actor == "chaos" {
						chaos = append(chaos, e.Message)
					}
				}
			}
			return n, chaos
		}
		if n, chaos := notes(full); n != incident.MaxNotes || len(chaos) != 0 {
			t.Errorf("full incident: %d notes, chaos notes %q; want %d and none", n, chaos, incident.MaxNotes)
		}
		if _, chaos := notes(other.ID); len(chaos) != 2 || !strings.HasPrefix(chaos[0], ExpectedNote(info.ID)) ||
			!strings.HasPrefix(chaos[1], "Opened during chaos experiment api-latency (run "+info.ID+").") {
			t.Errorf("%s: chaos notes %q, want the expected note then the run's", other.ID, chaos)
		}
	})
}
