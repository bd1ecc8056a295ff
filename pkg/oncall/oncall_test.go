package oncall

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"
)

func loadGood(t *testing.T) *Config {
	t.Helper()
	b, err := os.ReadFile("testdata/good.yml")
	require.NoError(t, err)
	var c Config
	dec := yaml.NewDecoder(bytesReader(b))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&c))
	return &c
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return v
}

// Europe/Berlin moves from CET (+01) to CEST (+02) on 2026-03-29 at 02:00;
// America/New_York from EST (-05) to EDT (-04) on 2026-03-08 at 02:00.
func TestRotationAcrossDST(t *testing.T) {
	c := loadGood(t)
	berlin := c.Schedule("api-primary")
	ny := c.Schedule("api-backup")
	for _, tc := range []struct {
		sched *Schedule
		at    string
		want  string
	}{
		{berlin, "2026-03-27T08:00:00Z", "alice"}, // 09:00 CET, first handoff
		{berlin, "2026-03-27T07:59:59Z", ""},      // before the layer starts
		{berlin, "2026-03-28T07:59:00Z", "alice"}, // 08:59 CET
		{berlin, "2026-03-28T08:00:00Z", "bob"},   // 09:00 CET
		{berlin, "2026-03-29T07:00:00Z", "carol"}, // 09:00 CEST: handoff keeps 09:00 local
		{berlin, "2026-03-29T06:59:59Z", "bob"},   // 08:59:59 CEST, still bob
		{berlin, "2026-03-30T07:00:00Z", "alice"}, // wraps around
		{berlin, "2026-10-25T08:00:00Z", "carol"}, // 09:00 CET after the autumn change (212 days after start)
		{ny, "2026-03-02T15:00:00Z", "carol"},     // Mon 10:00 EST
		{ny, "2026-03-09T13:59:00Z", "carol"},     // Mon 09:59 EDT
		{ny, "2026-03-09T14:00:00Z", "dave"},      // Mon 10:00 EDT: a week of 167 hours
		{ny, "2026-03-16T14:00:00Z", "carol"},     //
	} {
		got, _ := tc.sched.At(mustTime(t, tc.at), nil)
		require.Equal(t, tc.want, got, "%s at %s", tc.sched.Name, tc.at)
	}
	sh := berlin.Shifts(mustTime(t, "2026-03-28T00:00:00Z"), mustTime(t, "2026-03-30T00:00:00Z"), nil)
	require.Equal(t, []Shift{
		{Start: mustTime(t, "2026-03-28T00:00:00Z"), End: mustTime(t, "2026-03-28T08:00:00Z"), User: "alice", Layer: "daily"},
		{Start: mustTime(t, "2026-03-28T08:00:00Z"), End: mustTime(t, "2026-03-29T07:00:00Z"), User: "bob", Layer: "daily"},
		{Start: mustTime(t, "2026-03-29T07:00:00Z"), End: mustTime(t, "2026-03-30T00:00:00Z"), User: "carol", Layer: "daily"},
	}, utcShifts(sh))
	require.Equal(t, 23*time.Hour, sh[1].End.Sub(sh[1].Start), "the shift across the spring change is 23 hours")
}

func utcShifts(in []Shift) []Shift {
	out := make([]Shift, len(in))
	for i, s := range in {
		s.Start, s.End = s.Start.UTC(), s.End.UTC()
		out[i] = s
	}
	return out
}

func TestOverridesAndHandoff(t *testing.T) {
	c := loadGood(t)
	s := c.Schedule("api-primary")
	swap := []*Override{{User: "dave", Start: mustTime(t, "2026-03-28T12:00:00Z"), End: mustTime(t, "2026-03-28T18:00:00Z")}}
	u, layer := s.At(mustTime(t, "2026-03-28T13:00:00Z"), swap)
	require.Equal(t, "dave", u)
	require.Equal(t, "override", layer)
	u, _ = s.At(mustTime(t, "2026-03-28T18:00:00Z"), swap)
	require.Equal(t, "bob", u, "override end is exclusive")

	// A later override wins over an earlier one.
	two := append(swap, &Override{User: "carol", Start: mustTime(t, "2026-03-28T14:00:00Z"), End: mustTime(t, "2026-03-28T15:00:00Z")})
	sh := utcShifts(s.Shifts(mustTime(t, "2026-03-28T10:00:00Z"), mustTime(t, "2026-03-28T20:00:00Z"), two))
	require.Equal(t, []Shift{
		{Start: mustTime(t, "2026-03-28T10:00:00Z"), End: mustTime(t, "2026-03-28T12:00:00Z"), User: "bob", Layer: "daily"},
		{Start: mustTime(t, "2026-03-28T12:00:00Z"), End: mustTime(t, "2026-03-28T14:00:00Z"), User: "dave", Layer: "override"},
		{Start: mustTime(t, "2026-03-28T14:00:00Z"), End: mustTime(t, "2026-03-28T15:00:00Z"), User: "carol", Layer: "override"},
		{Start: mustTime(t, "2026-03-28T15:00:00Z"), End: mustTime(t, "2026-03-28T18:00:00Z"), User: "dave", Layer: "override"},
		{Start: mustTime(t, "2026-03-28T18:00:00Z"), End: mustTime(t, "2026-03-28T20:00:00Z"), User: "bob", Layer: "daily"},
	}, sh)

	next, ok := s.NextHandoff(mustTime(t, "2026-03-28T20:00:00Z"), 48*time.Hour, nil)
	require.True(t, ok)
	require.Equal(t, mustTime(t, "2026-03-29T07:00:00Z"), next.UTC())
}

func TestRestrictionsAndGaps(t *testing.T) {
	c := loadGood(t)
	s := c.Schedule("business-hours")
	// Friday 2026-03-06 and the weekend.
	gaps := utcShifts(s.Gaps(mustTime(t, "2026-03-06T00:00:00Z"), mustTime(t, "2026-03-09T12:00:00Z"), nil))
	require.Equal(t, []Shift{
		{Start: mustTime(t, "2026-03-06T00:00:00Z"), End: mustTime(t, "2026-03-06T09:00:00Z")},
		{Start: mustTime(t, "2026-03-06T17:00:00Z"), End: mustTime(t, "2026-03-09T09:00:00Z")},
	}, gaps)
	// 12h custom shifts from 00:00: alice 00-12, bob 12-24.
	sh := utcShifts(s.Shifts(mustTime(t, "2026-03-06T09:00:00Z"), mustTime(t, "2026-03-06T17:00:00Z"), nil))
	require.Equal(t, []Shift{
		{Start: mustTime(t, "2026-03-06T09:00:00Z"), End: mustTime(t, "2026-03-06T12:00:00Z"), User: "alice", Layer: "layer-1"},
		{Start: mustTime(t, "2026-03-06T12:00:00Z"), End: mustTime(t, "2026-03-06T17:00:00Z"), User: "bob", Layer: "layer-1"},
	}, sh)

	// Config-load warnings: only the business-hours schedule has gaps.
	c.GapHorizon = DefaultGapHorizon
	w := c.GapWarnings(mustTime(t, "2026-04-01T00:00:00Z"))
	require.Len(t, w, 1)
	require.Contains(t, w, "business-hours")
}

func TestOvernightRestriction(t *testing.T) {
	r := &Restriction{Days: []string{"fri"}, From: "22:00", To: "06:00"}
	require.NoError(t, r.validate())
	for _, tc := range []struct {
		at   string
		want bool
	}{
		{"2026-03-06T23:00:00Z", true},  // Fri 23:00
		{"2026-03-07T05:59:00Z", true},  // Sat 05:59, window began Friday
		{"2026-03-07T06:00:00Z", false}, // Sat 06:00
		{"2026-03-07T23:00:00Z", false}, // Sat 23:00
		{"2026-03-06T05:00:00Z", false}, // Fri 05:00, window began Thursday
	} {
		require.Equal(t, tc.want, r.contains(mustTime(t, tc.at)), tc.at)
	}
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name, yml, err string
	}{
		{"unknown field", "users: [{name: a, mail: x}]", "field mail not found in type oncall.User"},
		{"duplicate user", "users: [{name: a}, {name: a}]", "oncall: duplicate user \"a\""},
		{"bad phone", "users: [{name: a, phone: '555-1234'}]", "oncall: user \"a\": phone \"555-1234\" is not in E.164 form (+15551234567)"},
		{"hostile name", "users: [{name: 'a;rm -rf'}]", "oncall: user name \"a;rm -rf\": only letters, digits and _.@- are allowed"},
		{"unknown team member", "users: [{name: a}]\nteams: [{name: t, members: [b]}]", "oncall: team \"t\": unknown user \"b\""},
		{"bad zone", "users: [{name: a}]\nschedules: [{name: s, time_zone: Mars/Olympus, layers: [{rotation: daily, start: '2026-01-01T09:00', users: [a]}]}]", "oncall: schedule \"s\": unknown time_zone \"Mars/Olympus\""},
		{"bad rotation", "users: [{name: a}]\nschedules: [{name: s, layers: [{rotation: hourly, start: '2026-01-01T09:00', users: [a]}]}]", "oncall: schedule \"s\": layer \"layer-1\": unknown rotation \"hourly\" (want daily, weekly or custom)"},
		{"custom without length", "users: [{name: a}]\nschedules: [{name: s, layers: [{rotation: custom, start: '2026-01-01T09:00', users: [a]}]}]", "oncall: schedule \"s\": layer \"layer-1\": custom rotation needs shift_length of at least 1m, got 0s"},
		{"bad start", "users: [{name: a}]\nschedules: [{name: s, layers: [{rotation: daily, start: 'monday', users: [a]}]}]", "oncall: schedule \"s\": layer \"layer-1\": start: invalid time \"monday\" (want 2006-01-02T15:04 in the schedule's time zone, or RFC 3339)"},
		{"unknown layer user", "users: [{name: a}]\nschedules: [{name: s, layers: [{rotation: daily, start: '2026-01-01T09:00', users: [z]}]}]", "oncall: schedule \"s\": layer \"layer-1\": unknown user \"z\""},
		{"bad restriction", "users: [{name: a}]\nschedules: [{name: s, layers: [{rotation: daily, start: '2026-01-01T09:00', users: [a], restrictions: [{from: '9am', to: '17:00'}]}]}]", "oncall: schedule \"s\": layer \"layer-1\": restriction: invalid time of day \"9am\" (want HH:MM)"},
		{"override backwards", "users: [{name: a}]\nschedules: [{name: s, layers: [{rotation: daily, start: '2026-01-01T09:00', users: [a]}], overrides: [{user: a, start: 2026-01-02T00:00:00Z, end: 2026-01-01T00:00:00Z}]}]", "oncall: schedule \"s\": override for \"a\": end 2026-01-01T00:00:00Z is not after start 2026-01-02T00:00:00Z"},
		{"gap horizon too long", "gap_horizon: 400d", "oncall: gap_horizon 400d is longer than 366d"},
		{"unknown service schedule", "services: [{name: api, primary: nope}]", "oncall: service \"api\": unknown primary schedule \"nope\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			dec := yaml.NewDecoder(bytesReader([]byte(tc.yml)))
			dec.KnownFields(true)
			err := dec.Decode(&c)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.err)
		})
	}
}

// A restriction's edges are wall-clock times. When Europe/Berlin's clocks go
// back (2026-10-25, 03:00 CEST -> 02:00 CET) 02:30 happens twice, and the
// layer is in its 02:30-06:00 window from the first 02:30, out of it again
// from 02:00 CET (the clock shows 02:00-02:29) and in from the second 02:30.
// Shifts, Gaps and NextHandoff must say what At says at every minute, on
// both changes of the year.
func TestRestrictionAcrossDST(t *testing.T) {
	c := &Config{
		Users: []*User{{Name: "alice"}, {Name: "bob"}},
		Schedules: []*Schedule{{Name: "night", TimeZone: "Europe/Berlin", Layers: []*Layer{
			{Name: "base", Rotation: RotationWeekly, Start: "2026-01-05T09:00", Users: []string{"alice"}},
			{Name: "night", Rotation: RotationDaily, Start: "2026-01-05T09:00", Users: []string{"bob"},
				Restrictions: []*Restriction{{From: "02:30", To: "06:00"}}},
		}}},
	}
	require.NoError(t, c.Validate())
	s := c.Schedule("night")
	sh := utcShifts(s.Shifts(mustTime(t, "2026-10-24T22:00:00Z"), mustTime(t, "2026-10-25T06:00:00Z"), nil))
	require.Equal(t, []Shift{
		{Start: mustTime(t, "2026-10-24T22:00:00Z"), End: mustTime(t, "2026-10-25T00:30:00Z"), User: "alice", Layer: "base"},
		{Start: mustTime(t, "2026-10-25T00:30:00Z"), End: mustTime(t, "2026-10-25T01:00:00Z"), User: "bob", Layer: "night"},  // 02:30-03:00 CEST
		{Start: mustTime(t, "2026-10-25T01:00:00Z"), End: mustTime(t, "2026-10-25T01:30:00Z"), User: "alice", Layer: "base"}, // 02:00-02:30 CET
		{Start: mustTime(t, "2026-10-25T01:30:00Z"), End: mustTime(t, "2026-10-25T05:00:00Z"), User: "bob", Layer: "night"},  // 02:30-06:00 CET
		{Start: mustTime(t, "2026-10-25T05:00:00Z"), End: mustTime(t, "2026-10-25T06:00:00Z"), User: "alice", Layer: "base"},
	}, sh)
	next, ok := s.NextHandoff(mustTime(t, "2026-10-25T00:40:00Z"), 24*time.Hour, nil)
	require.True(t, ok)
	require.Equal(t, mustTime(t, "2026-10-25T01:00:00Z"), next.UTC())

	for _, day := range []string{"2026-03-28T22:00:00Z", "2026-10-24T22:00:00Z"} {
		from := mustTime(t, day)
		to := from.Add(10 * time.Hour)
		shifts := s.Shifts(from, to, nil)
		for at := from; at.Before(to); at = at.Add(time.Minute) {
			want, _ := s.At(at, nil)
			var got string
			for _, x := range shifts {
				if !at.Before(x.Start) && at.Before(x.End) {
					got = x.User
				}
			}
			require.Equal(t, want, got, "shift at %s (%s)", at.UTC().Format(time.RFC3339), at.In(s.Location()).Format("15:04 MST"))
		}
	}
}

// A custom rotation of short shifts has more handoffs in a long window
// (a year of shifts from the API, 366 days at most) than a fixed cap of
// 100,000 allowed: past the cap, whoever was on call then stayed on call
// to the window's end. Every handoff counts, to the last one.
func TestShortShiftsOverALongWindow(t *testing.T) {
	var c Config
	require.NoError(t, yaml.Unmarshal([]byte(`
users: [{name: a}, {name: b}]
schedules:
  - name: s
    layers: [{rotation: custom, shift_length: 5m, start: "2027-01-01T00:00", users: [a, b]}]
`), &c))
	s := c.Schedule("s")
	from := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.Add(366 * 24 * time.Hour)
	sh := s.Shifts(from, to, nil)
	require.Equal(t, 366*24*12, len(sh), "one shift per 5 minutes")
	for i, x := range sh {
		if x.End.Sub(x.Start) != 5*time.Minute || x.User != []string{"a", "b"}[i%2] {
			require.Failf(t, "wrong shift", "shift %d: %+v", i, x)
		}
	}
	at := to.Add(-time.Minute)
	h, ok := s.NextHandoff(to.Add(-7*time.Minute), time.Hour, nil)
	require.True(t, ok)
	require.Equal(t, to.Add(-5*time.Minute), h.UTC())
	u, _ := s.At(at, nil)
	require.Equal(t, sh[len(sh)-1].User, u)
}
