// Package oncall answers "who is on call": users and their contact methods,
// teams, layered rotation schedules in IANA time zones, overrides (from the
// configuration and, at runtime, from the database) and coverage gaps.
package oncall

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/limits"
)

// Config is the `oncall` section of sred.yml.
type Config struct {
	Users     []*User     `yaml:"users,omitempty" json:"users,omitempty"`
	Teams     []*Team     `yaml:"teams,omitempty" json:"teams,omitempty"`
	Schedules []*Schedule `yaml:"schedules,omitempty" json:"schedules,omitempty"`
	Services  []*Service  `yaml:"services,omitempty" json:"services,omitempty"`
	// GapHorizon is how far ahead coverage gaps are looked for (config-load
	// warnings, the coverage gap metric).
	GapHorizon model.Duration `yaml:"gap_horizon,omitempty" json:"gap_horizon,omitempty"`
}

// DefaultGapHorizon is the default of gap_horizon.
const DefaultGapHorizon = model.Duration(14 * 24 * time.Hour)

// MaxGapHorizon bounds gap_horizon as the API bounds its windows (366
// days): the shifts of a window are computed handoff by handoff.
const MaxGapHorizon = model.Duration(366 * 24 * time.Hour)

// User is a person who can be paged, with a contact per channel.
type User struct {
	Name     string `yaml:"name" json:"name"`
	FullName string `yaml:"full_name,omitempty" json:"full_name,omitempty"`
	Email    string `yaml:"email,omitempty" json:"email,omitempty"`
	// Phone (E.164) is used by the sms and phone channels.
	Phone string `yaml:"phone,omitempty" json:"phone,omitempty"`
	// Push is the user's device or subscriber ID at the push provider.
	Push string `yaml:"push,omitempty" json:"push,omitempty"`
	// Slack is the member ID mentioned in chat messages (e.g. U024BE7LH).
	Slack string `yaml:"slack,omitempty" json:"slack,omitempty"`
	// Teams is the Microsoft Teams user principal name mentioned in Teams
	// messages (usually the work email, e.g. alice@example.com).
	Teams string `yaml:"teams,omitempty" json:"teams,omitempty"`
	// Mattermost is the username @-mentioned in Mattermost messages.
	Mattermost string `yaml:"mattermost,omitempty" json:"mattermost,omitempty"`
}

// Team is a named group of users; paging a team pages every member.
type Team struct {
	Name    string   `yaml:"name" json:"name"`
	Members []string `yaml:"members" json:"members"`
}

// Service maps a service to its primary and backup schedules, for "who is
// on call for service X" and for PUT /api/oncall/schedule.
type Service struct {
	Name    string `yaml:"name" json:"name"`
	Primary string `yaml:"primary" json:"primary"`
	Backup  string `yaml:"backup,omitempty" json:"backup,omitempty"`
}

// Schedule is a set of rotation layers in one time zone. Where several layers
// have someone on call, the last layer wins; overrides win over every layer.
type Schedule struct {
	Name      string      `yaml:"name" json:"name"`
	TimeZone  string      `yaml:"time_zone" json:"time_zone"`
	Layers    []*Layer    `yaml:"layers" json:"layers"`
	Overrides []*Override `yaml:"overrides,omitempty" json:"overrides,omitempty"`

	loc *time.Location
}

// Location is the schedule's time zone.
func (s *Schedule) Location() *time.Location {
	if s.loc == nil {
		return time.UTC
	}
	return s.loc
}

// Rotation kinds.
const (
	RotationDaily  = "daily"
	RotationWeekly = "weekly"
	RotationCustom = "custom"
)

// Layer is one rotation: users take turns, in order, each for one shift.
type Layer struct {
	Name     string `yaml:"name,omitempty" json:"name,omitempty"`
	Rotation string `yaml:"rotation" json:"rotation"`
	// ShiftLength is the length of a custom shift. Multiples of 24h are
	// counted in calendar days (the handoff keeps its wall-clock time across
	// DST changes); other lengths are exact durations.
	ShiftLength model.Duration `yaml:"shift_length,omitempty" json:"shift_length,omitempty"`
	// Start is the first handoff, as wall-clock time in the schedule's zone:
	// "2026-01-05T09:00". Its time of day is the handoff time.
	Start string `yaml:"start" json:"start"`
	// End, if set, is when the layer stops (same format).
	End   string   `yaml:"end,omitempty" json:"end,omitempty"`
	Users []string `yaml:"users" json:"users"`
	// Restrictions limit the layer to windows of the day (e.g. business
	// hours); outside them the layer has nobody on call.
	Restrictions []*Restriction `yaml:"restrictions,omitempty" json:"restrictions,omitempty"`

	start, end time.Time
	days       int           // shift length in calendar days, or 0
	length     time.Duration // exact shift length when days == 0
}

// Restriction is a daily window "HH:MM"-"HH:MM" in the schedule's zone on the
// given weekdays (all days if empty). A window whose end is before its start
// runs overnight into the next day.
type Restriction struct {
	Days []string `yaml:"days,omitempty" json:"days,omitempty"`
	From string   `yaml:"from" json:"from"`
	To   string   `yaml:"to" json:"to"`

	days     map[time.Weekday]bool
	from, to int // minutes after midnight
}

// Override puts User on call for [Start, End), above every layer.
type Override struct {
	User   string    `yaml:"user" json:"user"`
	Start  time.Time `yaml:"start" json:"start"`
	End    time.Time `yaml:"end" json:"end"`
	Reason string    `yaml:"reason,omitempty" json:"reason,omitempty"`
	// ID is set for overrides stored in the database.
	ID int64 `yaml:"-" json:"id,omitempty"`
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.@-]*$`)

func checkName(kind, name string) error {
	if name == "" {
		return fmt.Errorf("%s without a name", kind)
	}
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%s name %q: only letters, digits and _.@- are allowed", kind, name)
	}
	return nil
}

// UnmarshalYAML sets defaults and validates the section.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	type plain Config
	*c = Config{}
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("oncall: %w", err)
	}
	return nil
}

// Validate sets defaults and checks references. It is idempotent.
func (c *Config) Validate() error {
	if c.GapHorizon == 0 {
		c.GapHorizon = DefaultGapHorizon
	}
	if c.GapHorizon < 0 {
		return errors.New("gap_horizon must be positive")
	}
	if c.GapHorizon > MaxGapHorizon {
		return fmt.Errorf("gap_horizon %s is longer than %s", c.GapHorizon, MaxGapHorizon)
	}
	users := map[string]bool{}
	for _, u := range c.Users {
		if u == nil {
			return errors.New("empty user entry")
		}
		if err := checkName("user", u.Name); err != nil {
			return err
		}
		if users[u.Name] {
			return fmt.Errorf("duplicate user %q", u.Name)
		}
		users[u.Name] = true
		if u.Email != "" && !strings.Contains(u.Email, "@") {
			return fmt.Errorf("user %q: invalid email %q", u.Name, u.Email)
		}
		if u.Phone != "" && !regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`).MatchString(u.Phone) {
			return fmt.Errorf("user %q: phone %q is not in E.164 form (+15551234567)", u.Name, u.Phone)
		}
	}
	teams := map[string]bool{}
	for _, t := range c.Teams {
		if t == nil {
			return errors.New("empty team entry")
		}
		if err := checkName("team", t.Name); err != nil {
			return err
		}
		if teams[t.Name] {
			return fmt.Errorf("duplicate team %q", t.Name)
		}
		teams[t.Name] = true
		if len(t.Members) == 0 {
			return fmt.Errorf("team %q has no members", t.Name)
		}
		for _, m := range t.Members {
			if !users[m] {
				return fmt.Errorf("team %q: unknown user %q", t.Name, m)
			}
		}
	}
	scheds := map[string]bool{}
	for _, s := range c.Schedules {
		if s == nil {
			return errors.New("empty schedule entry")
		}
		if err := checkName("schedule", s.Name); err != nil {
			return err
		}
		if scheds[s.Name] {
			return fmt.Errorf("duplicate schedule %q", s.Name)
		}
		scheds[s.Name] = true
		if err := s.validate(users); err != nil {
			return fmt.Errorf("schedule %q: %w", s.Name, err)
		}
	}
	svcs := map[string]bool{}
	for _, s := range c.Services {
		if s == nil {
			return errors.New("empty service entry")
		}
		if s.Name == "" {
			return errors.New("service without a name")
		}
		if svcs[s.Name] {
			return fmt.Errorf("duplicate service %q", s.Name)
		}
		svcs[s.Name] = true
		if !scheds[s.Primary] {
			return fmt.Errorf("service %q: unknown primary schedule %q", s.Name, s.Primary)
		}
		if s.Backup != "" && !scheds[s.Backup] {
			return fmt.Errorf("service %q: unknown backup schedule %q", s.Name, s.Backup)
		}
	}
	return nil
}

const wallLayout = "2006-01-02T15:04"

func parseWall(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.ParseInLocation(wallLayout, s, loc); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.In(loc), nil
	}
	return time.Time{}, fmt.Errorf("invalid time %q (want %s in the schedule's time zone, or RFC 3339)", s, wallLayout)
}

func (s *Schedule) validate(users map[string]bool) error {
	if s.TimeZone == "" {
		s.TimeZone = "UTC"
	}
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		return fmt.Errorf("unknown time_zone %q", s.TimeZone)
	}
	s.loc = loc
	if len(s.Layers) == 0 {
		return errors.New("no layers")
	}
	for i, l := range s.Layers {
		if l == nil {
			return fmt.Errorf("layer %d is empty", i+1)
		}
		if l.Name == "" {
			l.Name = fmt.Sprintf("layer-%d", i+1)
		}
		if err := l.validate(loc, users); err != nil {
			return fmt.Errorf("layer %q: %w", l.Name, err)
		}
	}
	for _, o := range s.Overrides {
		if o == nil {
			return errors.New("empty override entry")
		}
		if err := o.Validate(users); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks an override against the known users.
func (o *Override) Validate(users map[string]bool) error {
	if o.User == "" {
		return errors.New("override without a user")
	}
	if users != nil && !users[o.User] {
		return fmt.Errorf("override: unknown user %s", limits.Quote(o.User))
	}
	if o.Start.IsZero() || o.End.IsZero() {
		return fmt.Errorf("override for %q: start and end are required", o.User)
	}
	if !o.End.After(o.Start) {
		return fmt.Errorf("override for %q: end %s is not after start %s", o.User, o.End.Format(time.RFC3339Nano), o.Start.Format(time.RFC3339Nano))
	}
	if n := utf8.RuneCountInString(o.Reason); n > MaxOverrideReason {
		return fmt.Errorf("override for %q: reason: at most %d characters, got %d", o.User, MaxOverrideReason, n)
	}
	return nil
}

// MaxOverrideReason bounds an override's reason, in characters: it is
// listed with every shift and gap the override changes (a request body
// of up to 1 MiB was stored whole).
const MaxOverrideReason = 500

func (l *Layer) validate(loc *time.Location, users map[string]bool) error {
	switch l.Rotation {
	case RotationDaily:
		l.days = 1
	case RotationWeekly:
		l.days = 7
	case RotationCustom:
		d := time.Duration(l.ShiftLength)
		if d < time.Minute {
			return fmt.Errorf("custom rotation needs shift_length of at least 1m, got %s", l.ShiftLength)
		}
		if d%(24*time.Hour) == 0 {
			l.days = int(d / (24 * time.Hour))
		} else {
			l.length = d
		}
	case "":
		return errors.New("rotation is required (daily, weekly or custom)")
	default:
		return fmt.Errorf("unknown rotation %q (want daily, weekly or custom)", l.Rotation)
	}
	if l.Rotation != RotationCustom && l.ShiftLength != 0 {
		return fmt.Errorf("shift_length is only allowed with rotation custom")
	}
	var err error
	if l.start, err = parseWall(l.Start, loc); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if l.End != "" {
		if l.end, err = parseWall(l.End, loc); err != nil {
			return fmt.Errorf("end: %w", err)
		}
		if !l.end.After(l.start) {
			return errors.New("end is not after start")
		}
	}
	if len(l.Users) == 0 {
		return errors.New("no users")
	}
	for _, u := range l.Users {
		if !users[u] {
			return fmt.Errorf("unknown user %q", u)
		}
	}
	for _, r := range l.Restrictions {
		if r == nil {
			return errors.New("empty restriction")
		}
		if err := r.validate(); err != nil {
			return err
		}
	}
	return nil
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

func parseClock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("invalid time of day %q (want HH:MM)", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

func (r *Restriction) validate() error {
	var err error
	if r.from, err = parseClock(r.From); err != nil {
		return fmt.Errorf("restriction: %w", err)
	}
	if r.to, err = parseClock(r.To); err != nil {
		return fmt.Errorf("restriction: %w", err)
	}
	if r.from == r.to {
		return fmt.Errorf("restriction %s-%s is empty", r.From, r.To)
	}
	r.days = map[time.Weekday]bool{}
	for _, d := range r.Days {
		wd, ok := weekdays[strings.ToLower(d)]
		if !ok {
			return fmt.Errorf("restriction: unknown day %q (want mon, tue, wed, thu, fri, sat or sun)", d)
		}
		r.days[wd] = true
	}
	if len(r.Days) == 0 {
		for _, wd := range weekdays {
			r.days[wd] = true
		}
	}
	return nil
}

// User returns the named user or nil.
func (c *Config) User(name string) *User {
	for _, u := range c.Users {
		if u.Name == name {
			return u
		}
	}
	return nil
}

// Team returns the named team or nil.
func (c *Config) Team(name string) *Team {
	for _, t := range c.Teams {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Schedule returns the named schedule or nil.
func (c *Config) Schedule(name string) *Schedule {
	for _, s := range c.Schedules {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Service returns the named service or nil.
func (c *Config) Service(name string) *Service {
	for _, s := range c.Services {
		if s.Name == name {
			return s
		}
	}
	return nil
}
