package oncall

import (
	"container/heap"
	"sort"
	"time"
)

// Shift is a span of time with one person (or nobody) on call.
type Shift struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// User is empty for a gap in coverage.
	User string `json:"user,omitempty"`
	// Layer names the layer the user comes from, or "override".
	Layer string `json:"layer,omitempty"`
}

// shiftIndex returns the index of the shift containing t and its bounds;
// k < 0 means t is before the first shift.
func (l *Layer) shiftAt(t time.Time) (k int, start, end time.Time) {
	if l.days > 0 {
		loc := l.start.Location()
		y, m, d := l.start.Date()
		hh, mm, ss := l.start.Clock()
		at := func(k int) time.Time { return time.Date(y, m, d+k*l.days, hh, mm, ss, 0, loc) }
		k = int(t.Sub(l.start) / (time.Duration(l.days) * 24 * time.Hour))
		if t.Before(l.start) {
			k--
		}
		for at(k).After(t) {
			k--
		}
		for !at(k + 1).After(t) {
			k++
		}
		return k, at(k), at(k + 1)
	}
	d := t.Sub(l.start)
	k = int(d / l.length)
	if d < 0 && d%l.length != 0 {
		k--
	}
	start = l.start.Add(time.Duration(k) * l.length)
	return k, start, start.Add(l.length)
}

// userAt returns who the layer has on call at t ("" for nobody).
func (l *Layer) userAt(t time.Time) string {
	if t.Before(l.start) || (!l.end.IsZero() && !t.Before(l.end)) {
		return ""
	}
	if len(l.Restrictions) > 0 {
		in := false
		for _, r := range l.Restrictions {
			if r.contains(t.In(l.start.Location())) {
				in = true
				break
			}
		}
		if !in {
			return ""
		}
	}
	k, _, _ := l.shiftAt(t)
	return l.Users[k%len(l.Users)]
}

func (r *Restriction) contains(local time.Time) bool {
	tod := local.Hour()*60 + local.Minute()
	wd := local.Weekday()
	if r.from < r.to {
		return r.days[wd] && tod >= r.from && tod < r.to
	}
	// Overnight: from today's `from` until tomorrow's `to`.
	if tod >= r.from {
		return r.days[wd]
	}
	if tod < r.to {
		return r.days[(wd+6)%7]
	}
	return false
}

// At returns who is on call at t, taking overrides (config ones first, then
// extra, later entries winning) over the layers (the last layer with someone
// on call wins). layer is "override" or the winning layer's name.
func (s *Schedule) At(t time.Time, extra []*Override) (user, layer string) {
	// Later entries win: extra from its end, then the configured ones
	// (no copy of both: Shifts used to ask this at every change point,
	// and a copy of thousands of stored overrides each time made one
	// request allocate gigabytes).
	for _, ovs := range [2][]*Override{extra, s.Overrides} {
		for i := len(ovs) - 1; i >= 0; i-- {
			if o := ovs[i]; !t.Before(o.Start) && t.Before(o.End) {
				return o.User, "override"
			}
		}
	}
	return s.layerAt(t)
}

// layerAt is At without overrides.
func (s *Schedule) layerAt(t time.Time) (user, layer string) {
	for i := len(s.Layers) - 1; i >= 0; i-- {
		if u := s.Layers[i].userAt(t); u != "" {
			return u, s.Layers[i].Name
		}
	}
	return "", ""
}

// overrideSweep answers At's overrides for ascending instants, each
// override pushed once and popped once: Shifts over n overrides costs
// O(n log n), not At's O(n) at each of its 2n change points.
type overrideSweep struct {
	all     []*Override // configured ones first, later entries winning
	byStart []int       // indexes of all, by start
	next    int         // of byStart, the first not yet begun
	active  intMaxHeap  // indexes of the begun ones (some may have ended)
}

func newOverrideSweep(s *Schedule, extra []*Override) *overrideSweep {
	all := append(append(make([]*Override, 0, len(s.Overrides)+len(extra)), s.Overrides...), extra...)
	byStart := make([]int, len(all))
	for i := range byStart {
		byStart[i] = i
	}
	sort.SliceStable(byStart, func(i, j int) bool { return all[byStart[i]].Start.Before(all[byStart[j]].Start) })
	return &overrideSweep{all: all, byStart: byStart}
}

// at returns the override in force at t, nil for none; t must not be
// before the instant of the call before.
func (w *overrideSweep) at(t time.Time) *Override {
	for ; w.next < len(w.byStart) && !w.all[w.byStart[w.next]].Start.After(t); w.next++ {
		heap.Push(&w.active, w.byStart[w.next])
	}
	// The latest begun one wins unless it has ended, and an ended one
	// never applies again.
	for len(w.active) > 0 {
		if o := w.all[w.active[0]]; t.Before(o.End) {
			return o
		}
		heap.Pop(&w.active)
	}
	return nil
}

// intMaxHeap is a container/heap of ints, the largest first.
type intMaxHeap []int

func (h intMaxHeap) Len() int           { return len(h) }
func (h intMaxHeap) Less(i, j int) bool { return h[i] > h[j] }
func (h intMaxHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intMaxHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intMaxHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// changePoints returns every instant in (from, to) at which the answer of At
// may change.
func (s *Schedule) changePoints(from, to time.Time, extra []*Override) []time.Time {
	var pts []time.Time
	add := func(t time.Time) {
		if t.After(from) && t.Before(to) {
			pts = append(pts, t)
		}
	}
	loc := s.Location()
	for _, l := range s.Layers {
		add(l.start)
		if !l.end.IsZero() {
			add(l.end)
		}
		cur := from
		if cur.Before(l.start) {
			cur = l.start
		}
		// Every handoff of the window: a shift is at least a minute,
		// and windows at most 366 days (the API's, gap_horizon), so
		// this ends; no cap that would leave the rest of a long window
		// to whoever was on call at the cap.
		for {
			_, _, end := l.shiftAt(cur)
			if !end.Before(to) || !end.After(cur) {
				break
			}
			add(end)
			cur = end
		}
		if len(l.Restrictions) > 0 {
			// A window's edge is a wall-clock time: it may happen twice
			// (clocks going back) or never (going forward), and at a
			// change of the zone's offset the local time jumps over an
			// edge or back across one.
			for t := from; t.Before(to); {
				_, end := t.In(loc).ZoneBounds()
				if end.IsZero() || !end.After(t) {
					break
				}
				add(end)
				t = end
			}
			y, m, d := from.In(loc).Date()
			for day := time.Date(y, m, d-1, 0, 0, 0, 0, loc); day.Before(to); day = time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, loc) {
				for _, r := range l.Restrictions {
					for _, t := range wallInstants(day, r.from, loc) {
						add(t)
					}
					for _, t := range wallInstants(day, r.to, loc) {
						add(t)
					}
				}
			}
		}
	}
	for _, o := range append(append([]*Override(nil), s.Overrides...), extra...) {
		add(o.Start)
		add(o.End)
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].Before(pts[j]) })
	return pts
}

// wallInstants returns the instants at which the clock in loc shows the
// minute min (after midnight) of day: one, two when the clocks go back
// over it, and none but time.Date's normalised one when they skip it.
func wallInstants(day time.Time, min int, loc *time.Location) []time.Time {
	t := time.Date(day.Year(), day.Month(), day.Day(), min/60, min%60, 0, 0, loc)
	out := []time.Time{t}
	wall := time.Date(day.Year(), day.Month(), day.Day(), min/60, min%60, 0, 0, time.UTC)
	for _, probe := range []time.Time{t.Add(-6 * time.Hour), t.Add(6 * time.Hour)} {
		_, off := probe.Zone()
		c := wall.Add(-time.Duration(off) * time.Second)
		if l := c.In(loc); !c.Equal(t) && l.Hour()*60+l.Minute() == min && l.Day() == day.Day() {
			out = append(out, c)
		}
	}
	return out
}

// Shifts returns the on-call spans covering [from, to), merged where the
// same person stays on call; spans with nobody on call have an empty User.
func (s *Schedule) Shifts(from, to time.Time, extra []*Override) []Shift {
	if !to.After(from) {
		return nil
	}
	pts := append([]time.Time{from}, s.changePoints(from, to, extra)...)
	sweep := newOverrideSweep(s, extra)
	var out []Shift
	for i, p := range pts {
		if i > 0 && p.Equal(pts[i-1]) {
			continue
		}
		var u, layer string
		if o := sweep.at(p); o != nil {
			u, layer = o.User, "override"
		} else {
			u, layer = s.layerAt(p)
		}
		if n := len(out); n > 0 && out[n-1].User == u {
			continue
		}
		if n := len(out); n > 0 {
			out[n-1].End = p
		}
		out = append(out, Shift{Start: p, User: u, Layer: layer})
	}
	if n := len(out); n > 0 {
		out[n-1].End = to
	}
	for i := range out {
		out[i].Start = out[i].Start.In(s.Location())
		out[i].End = out[i].End.In(s.Location())
	}
	return out
}

// Gaps returns the spans of [from, to) with nobody on call.
func (s *Schedule) Gaps(from, to time.Time, extra []*Override) []Shift {
	var gaps []Shift
	for _, sh := range s.Shifts(from, to, extra) {
		if sh.User == "" {
			gaps = append(gaps, sh)
		}
	}
	return gaps
}

// NextHandoff returns the first instant after t at which someone else goes
// on call, and whether there is one before t+horizon.
func (s *Schedule) NextHandoff(t time.Time, horizon time.Duration, extra []*Override) (time.Time, bool) {
	sh := s.Shifts(t, t.Add(horizon), extra)
	if len(sh) < 2 {
		return time.Time{}, false
	}
	return sh[1].Start, true
}

// GapWarnings lists the coverage gaps of every schedule within the horizon
// from now, using only the configured overrides. It is logged at config load.
func (c *Config) GapWarnings(now time.Time) map[string][]Shift {
	out := map[string][]Shift{}
	for _, s := range c.Schedules {
		if g := s.Gaps(now, now.Add(time.Duration(c.GapHorizon)), nil); len(g) > 0 {
			out[s.Name] = g
		}
	}
	return out
}
