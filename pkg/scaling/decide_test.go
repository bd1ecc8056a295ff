package scaling

import (
	"math"
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, s string) *Policy {
	t.Helper()
	p, err := Parse([]byte(s), "test.yml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const thresholdPolicy = `
service: api
target: {action: {exec: {command: [scale, "{{ .Vars.replicas }}"]}}}
min_instances: 2
max_instances: 6
metric: {type: cpu}
interval: 1m
scale_up: {threshold: 80, step: 2, cooldown: 5m, stabilization: 2m}
scale_down: {threshold: 30, step: 1, cooldown: 5m, stabilization: 3m}
schedules:
- {name: business, days: [mon, tue, wed, thu, fri], start: "09:00", end: "18:00", min_instances: 3}
`

const targetPolicy = `
service: mlPipeline
target: {action: {exec: {command: [scale, "{{ .Vars.replicas }}"]}}}
min_instances: 1
max_instances: 10
metric: {type: memory}
interval: 1m
target_value: 70
scale_up: {threshold: 80, cooldown: 10m}
scale_down: {cooldown: 10m, stabilization: 2m}
`

// series returns samples one minute apart ending at end.
func series(end time.Time, vs ...float64) []Sample {
	out := make([]Sample, len(vs))
	for i, v := range vs {
		out[i] = Sample{Time: end.Add(-time.Duration(len(vs)-1-i) * time.Minute), Value: v}
	}
	return out
}

func TestDecide(t *testing.T) {
	sat := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC) // a Saturday: no schedule
	mon := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC) // a Monday at 10:00: business hours
	thr, tgt := mustParse(t, thresholdPolicy), mustParse(t, targetPolicy)
	for _, tc := range []struct {
		name      string
		p         *Policy
		st        State
		samples   []Sample
		now       time.Time
		dir, held string
		to        int
		reason    string
	}{
		{"steady", thr, State{Instances: 3}, series(sat, 50, 50, 50), sat, None, "", 3, "cpu between 30 and 80: 3 instances"},
		{"up after the window", thr, State{Instances: 3}, series(sat, 85, 90, 95), sat, Up, "", 5, "cpu 95 > 80 for 2m0s: 3 -> 5"},
		{"up not held long enough", thr, State{Instances: 3}, series(sat, 70, 90, 95), sat, None, "", 3, "not for the whole 2m0s stabilization window (70, 90, 95)"},
		{"noisy: no flapping", thr, State{Instances: 3}, series(sat, 85, 20, 85), sat, None, "", 3, "not for the whole"},
		{"up capped at max", thr, State{Instances: 5}, series(sat, 90, 90, 90), sat, Up, "", 6, "5 -> 6"},
		{"at max", thr, State{Instances: 6}, series(sat, 90, 90, 90), sat, None, "", 6, "at max_instances 6"},
		{"down", thr, State{Instances: 4}, series(sat, 10, 10, 10, 10), sat, Down, "", 3, "cpu 10 < 30 for 3m0s: 4 -> 3"},
		{"down window not covered", thr, State{Instances: 4}, series(sat, 10, 10), sat, None, "", 4, "not for the whole 3m0s"},
		{"at min", thr, State{Instances: 2}, series(sat, 10, 10, 10, 10), sat, None, "", 2, "at the floor of 2, min_instances"},
		{"cooldown holds up", thr, State{Instances: 3, LastAction: sat.Add(-2 * time.Minute)}, series(sat, 85, 90, 95), sat, None, Up, 3, "cooldown: would scale up 3 -> 5"},
		{"cooldown over", thr, State{Instances: 3, LastAction: sat.Add(-5 * time.Minute)}, series(sat, 85, 90, 95), sat, Up, "", 5, "3 -> 5"},
		{"schedule floor", thr, State{Instances: 2}, series(mon, 50, 50, 50), mon, Up, "", 3, "below the floor of 3 (schedule business)"},
		{"schedule floor ignores cooldown", thr, State{Instances: 2, LastAction: mon.Add(-time.Minute)}, series(mon, 50), mon, Up, "", 3, "schedule business"},
		{"no scale down under the schedule floor", thr, State{Instances: 3}, series(mon, 10, 10, 10, 10), mon, None, "", 3, "at the floor of 3, schedule business"},
		{"above max after a change", thr, State{Instances: 9}, nil, sat, Down, "", 6, "above max_instances 6"},
		{"no data", thr, State{Instances: 3}, nil, sat, None, "", 3, "no data"},
		{"stale data", thr, State{Instances: 3}, series(sat.Add(-time.Minute), 95, 95, 95), sat, None, "", 3, "no data"},
		{"target: up proportional", tgt, State{Instances: 2}, series(sat, 90), sat, Up, "", 3, "memory 90, target 70, > 80: 2 -> 3"},
		{"target: below the up threshold", tgt, State{Instances: 2}, series(sat, 78), sat, None, "", 2, "memory near target 70"},
		{"target: within tolerance", tgt, State{Instances: 4}, series(sat, 65, 65, 65), sat, None, "", 4, "near target"},
		{"target: down takes the highest recommendation", tgt, State{Instances: 4}, series(sat, 30, 50, 20), sat, Down, "", 3, "memory 20, target 70 for 2m0s: 4 -> 3"},
		{"target: cooldown", tgt, State{Instances: 4, LastAction: sat.Add(-9 * time.Minute)}, series(sat, 20, 20, 20), sat, None, Down, 4, "cooldown: would scale down 4 -> 2"},
		{"target: capped at max", tgt, State{Instances: 8}, series(sat, 100), sat, Up, "", 10, "8 -> 10"},
		{"target: NaN is no data", tgt, State{Instances: 4}, series(sat, math.NaN(), math.NaN(), math.NaN()), sat, None, "", 4, "no data"},
		{"target: infinity is no data", tgt, State{Instances: 4}, series(sat, 100, math.Inf(1)), sat, None, "", 4, "no data"},
		{"target: a huge value scales up to max", tgt, State{Instances: 4}, series(sat, 1e300), sat, Up, "", 10, "4 -> 10"},
		{"NaN is no data", thr, State{Instances: 3}, series(sat, 95, 95, math.NaN()), sat, None, "", 3, "no data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.p, tc.st, tc.samples, tc.now)
			if d.Direction != tc.dir || d.To != tc.to || d.Held != tc.held {
				t.Fatalf("got %s to %d (held %q), want %s to %d (held %q): %s", d.Direction, d.To, d.Held, tc.dir, tc.to, tc.held, d.Reason)
			}
			if !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("reason %q does not say %q", d.Reason, tc.reason)
			}
			if d.From != tc.st.Instances {
				t.Fatalf("from %d, want %d", d.From, tc.st.Instances)
			}
		})
	}
}
