// Package escalation pages the right people when an incident opens and keeps
// paging up the chain until somebody acknowledges it. Policies come from the
// configuration, are selected by Alertmanager label matchers, and are frozen
// onto the incident when it triggers. Every step is a durable timer (a row in
// the jobs table, fired by a worker inside a transaction), so a restart or a
// dead replica neither loses nor repeats a step.
package escalation

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/common/model"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/oncall"
	"github.com/rootuip/sre/pkg/yamlerr"
)

// Config is the `escalation` section of sred.yml.
type Config struct {
	// AckTimeout re-escalates an acknowledged incident that is still not
	// resolved after this long (0 disables). Policies may override it.
	AckTimeout model.Duration `yaml:"ack_timeout,omitempty" json:"ack_timeout,omitempty"`
	// AckReminder reminds whoever acknowledged an incident, every this long,
	// that it is still not resolved (0, the default, disables). Reminders go
	// through AckReminderChannels, which need no chat tool.
	AckReminder         model.Duration `yaml:"ack_reminder,omitempty" json:"ack_reminder,omitempty"`
	AckReminderChannels []string       `yaml:"ack_reminder_channels,omitempty" json:"ack_reminder_channels,omitempty"`
	// Severities decide channels and pace per severity (the severity table).
	Severities map[incident.Severity]*SeverityRule `yaml:"severities,omitempty" json:"severities,omitempty"`
	// Policies are tried in order; the first whose matchers all match the
	// incident's labels (plus "service" and "severity") wins.
	Policies []*Policy `yaml:"policies,omitempty" json:"policies,omitempty"`
	// MaintenanceWindows page nobody for matching incidents while active.
	MaintenanceWindows []*MaintenanceWindow `yaml:"maintenance_windows,omitempty" json:"maintenance_windows,omitempty"`

	// defaulted are the severities Validate gave their default row: a
	// warning about one names no value of the file.
	defaulted map[incident.Severity]bool
	// sevKeys are the keys of severities in the order of the file (set
	// when the section is decoded from YAML): checks and warnings about
	// the severities follow it.
	sevKeys []incident.Severity
}

// SeverityRule is one row of the severity table.
type SeverityRule struct {
	// Channels used for every level unless the level sets its own.
	Channels []string `yaml:"channels" json:"channels"`
	// EscalateAfter, when set, is how long level 0 has to acknowledge before
	// level 1 is paged; later levels keep their spacing from the policy.
	// Zero keeps the policy's own timing.
	EscalateAfter model.Duration `yaml:"escalate_after,omitempty" json:"escalate_after,omitempty"`
}

// Policy is an escalation chain.
type Policy struct {
	Name     string   `yaml:"name" json:"name"`
	Matchers []string `yaml:"matchers,omitempty" json:"matchers,omitempty"`
	Levels   []*Level `yaml:"levels" json:"levels"`
	// Repeat runs the whole chain again this many times if nobody acknowledges,
	// RepeatAfter after the last level.
	Repeat      int             `yaml:"repeat,omitempty" json:"repeat,omitempty"`
	RepeatAfter model.Duration  `yaml:"repeat_after,omitempty" json:"repeat_after,omitempty"`
	AckTimeout  *model.Duration `yaml:"ack_timeout,omitempty" json:"ack_timeout,omitempty"`
	AckReminder *model.Duration `yaml:"ack_reminder,omitempty" json:"ack_reminder,omitempty"`

	matchers labels.Matchers
}

// Level is one step of a chain: its targets are paged After the start.
type Level struct {
	After     model.Duration `yaml:"after" json:"after"`
	Users     []string       `yaml:"users,omitempty" json:"users,omitempty"`
	Schedules []string       `yaml:"schedules,omitempty" json:"schedules,omitempty"`
	Teams     []string       `yaml:"teams,omitempty" json:"teams,omitempty"`
	// Channels overrides the severity's channels for this level.
	Channels []string `yaml:"channels,omitempty" json:"channels,omitempty"`
}

// MaintenanceWindow silences paging for matching incidents in [Start, End).
type MaintenanceWindow struct {
	Name     string    `yaml:"name" json:"name"`
	Matchers []string  `yaml:"matchers" json:"matchers"`
	Start    time.Time `yaml:"start" json:"start"`
	End      time.Time `yaml:"end" json:"end"`
	// ID is set for windows stored in the database.
	ID int64 `yaml:"-" json:"id,omitempty"`

	matchers labels.Matchers
}

// DefaultSeverities is the default severity table.
func DefaultSeverities() map[incident.Severity]*SeverityRule {
	return map[incident.Severity]*SeverityRule{
		incident.SeverityCritical: {Channels: []string{notify.ChannelSMS, notify.ChannelPhone, notify.ChannelPush, notify.ChannelEmail}},
		incident.SeverityHigh:     {Channels: []string{notify.ChannelSMS, notify.ChannelPush, notify.ChannelEmail}, EscalateAfter: model.Duration(5 * time.Minute)},
		incident.SeverityMedium:   {Channels: []string{notify.ChannelPush, notify.ChannelEmail}, EscalateAfter: model.Duration(15 * time.Minute)},
		incident.SeverityLow:      {Channels: []string{notify.ChannelEmail, notify.ChannelSlack}, EscalateAfter: model.Duration(60 * time.Minute)},
	}
}

// DefaultAckReminderChannels is the default of ack_reminder_channels.
var DefaultAckReminderChannels = []string{notify.ChannelPush, notify.ChannelEmail}

// DefaultAckTimeout is the default of ack_timeout.
const DefaultAckTimeout = model.Duration(30 * time.Minute)

// UnmarshalYAML sets defaults and validates the section. A problem is
// placed at the node of the section its message names (yamlerr.AtNamed):
// the value a path reaches ("policies[0] (api): levels[2].after: 15m must
// be later ..." at the 15m), the value it quotes, else the field it names;
// one naming none, where the decoder places it.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	type plain Config
	*c = Config{AckTimeout: DefaultAckTimeout}
	// The section's node, for the position of a problem; the section
	// itself is decoded through unmarshal, which keeps the decoder's
	// strictness (unknown fields are errors).
	var n nodeOf
	if err := unmarshal(&n); err != nil {
		return err
	}
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	c.sevKeys = mappingKeys(yamlerr.Lookup(n.Node, "severities"))
	if err := c.Validate(); err != nil {
		err = fmt.Errorf("escalation: %w", err)
		// A message naming no node under the section keeps the decoder's
		// placing (the section's key).
		var at *yamlerr.NodeError
		if n.Node == nil || !errors.As(yamlerr.AtNamed(n.Node, "%w", errors.Unwrap(err)), &at) ||
			(at.Line == n.Line && at.Column == n.Column) {
			return err
		}
		return &yamlerr.NodeError{Line: at.Line, Column: at.Column, Err: err}
	}
	return nil
}

// nodeOf keeps the node it is decoded from.
type nodeOf struct{ *yaml.Node }

func (n *nodeOf) UnmarshalYAML(node *yaml.Node) error {
	n.Node = node
	return nil
}

// mappingKeys returns the keys of mapping node n as the decoder reads
// them (yamlerr.Pairs), each once: the keys a merge key ("<<: *defaults")
// brings in come at its place.
func mappingKeys(n *yaml.Node) []incident.Severity {
	pairs, _ := yamlerr.Pairs(n) // the decoder has refused a bad merge
	var out []incident.Severity
	for _, p := range pairs {
		if s := incident.Severity(p.Key.Value); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// severityKeys returns the keys of c.Severities: those of the file in its
// order, then the others in the order of incident.Severities, then any
// other key in lexical order.
func (c *Config) severityKeys() []incident.Severity {
	out := make([]incident.Severity, 0, len(c.Severities))
	for _, s := range c.sevKeys {
		if _, ok := c.Severities[s]; ok && !c.defaulted[s] && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, s := range incident.Severities {
		if _, ok := c.Severities[s]; ok && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	var rest []incident.Severity
	for s := range c.Severities {
		if !slices.Contains(out, s) {
			rest = append(rest, s)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// ParseMatchers parses Alertmanager matchers: each entry may hold one or
// more matchers ('service="api"', '{severity=~"CRITICAL|HIGH"}').
func ParseMatchers(in []string) (labels.Matchers, error) {
	var out labels.Matchers
	for _, s := range in {
		ms, err := labels.ParseMatchers(s)
		if err != nil {
			return nil, fmt.Errorf("matcher %s: %w", limits.Quote(s), limits.ParseError(err))
		}
		out = append(out, ms...)
	}
	return out, nil
}

func checkChannels(in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, c := range in {
		n, err := notify.NormalizeChannel(c)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// Validate sets defaults and checks the section on its own; CheckRefs checks
// its references to users, schedules and teams. It is idempotent.
func (c *Config) Validate() error {
	if c.AckTimeout < 0 {
		return errors.New("ack_timeout must not be negative")
	}
	if c.AckReminder < 0 {
		return errors.New("ack_reminder must not be negative")
	}
	if len(c.AckReminderChannels) == 0 {
		c.AckReminderChannels = slices.Clone(DefaultAckReminderChannels)
	}
	chs, err := checkChannels(c.AckReminderChannels)
	if err != nil {
		return fmt.Errorf("ack_reminder_channels: %w", err)
	}
	if slices.Contains(chs, notify.ChannelPagerDuty) {
		return errors.New("ack_reminder_channels: pagerduty cannot carry reminders (the incident is already acknowledged there)")
	}
	c.AckReminderChannels = chs
	def := DefaultSeverities()
	if c.Severities == nil {
		c.Severities = map[incident.Severity]*SeverityRule{}
	}
	// In the order of the file: the first problem it lists is reported.
	for _, sev := range c.severityKeys() {
		r := c.Severities[sev]
		if _, err := incident.ParseSeverity(string(sev)); err != nil || string(sev) != strings.ToUpper(string(sev)) {
			return fmt.Errorf("severities: unknown severity %q (want CRITICAL, HIGH, MEDIUM or LOW)", sev)
		}
		if r == nil {
			return fmt.Errorf("severities: %s is empty", sev)
		}
		chs, err := checkChannels(r.Channels)
		if err != nil {
			return fmt.Errorf("severities: %s: %w", sev, err)
		}
		if len(chs) == 0 {
			return fmt.Errorf("severities: %s has no channels", sev)
		}
		r.Channels = chs
		if r.EscalateAfter < 0 {
			return fmt.Errorf("severities: %s: escalate_after must not be negative", sev)
		}
	}
	for _, s := range incident.Severities {
		if c.Severities[s] == nil {
			c.Severities[s] = def[s]
			if c.defaulted == nil {
				c.defaulted = map[incident.Severity]bool{}
			}
			c.defaulted[s] = true
		}
	}
	// Each problem names the path of the value it is about, counted
	// from 0 as in the file ("policies[3]: name: \"api\" is used by
	// policies[1] too"), which places it there.
	names := map[string]int{}
	for i, p := range c.Policies {
		if p == nil {
			return fmt.Errorf("policies[%d]: empty", i)
		}
		if p.Name == "" {
			return fmt.Errorf("policies[%d]: name is required", i)
		}
		if first, ok := names[p.Name]; ok {
			return fmt.Errorf("policies[%d]: name: %q is used by policies[%d] too", i, p.Name, first)
		}
		names[p.Name] = i
		if err := p.validate(); err != nil {
			return fmt.Errorf("policies[%d] (%s): %w", i, p.Name, err)
		}
	}
	for i, w := range c.MaintenanceWindows {
		if w == nil {
			return fmt.Errorf("maintenance_windows[%d]: empty", i)
		}
		if err := checkMaintenanceName(w.Name); err != nil {
			if strings.TrimSpace(w.Name) == "" {
				return fmt.Errorf("maintenance_windows[%d]: name is required", i)
			}
			return fmt.Errorf("maintenance_windows[%d].name: %w", i, err)
		}
		if err := w.check(); err != nil {
			return fmt.Errorf("maintenance_windows[%d] (%s): %w", i, w.Name, err)
		}
	}
	return nil
}

func (p *Policy) validate() error {
	var err error
	if p.matchers, err = ParseMatchers(p.Matchers); err != nil {
		return err
	}
	if len(p.Levels) == 0 {
		return errors.New("no levels")
	}
	prev := model.Duration(-1)
	for i, l := range p.Levels {
		if l == nil {
			return fmt.Errorf("levels[%d]: empty", i)
		}
		if l.After < 0 || l.After <= prev {
			return fmt.Errorf("levels[%d].after: %s must be later than the previous level's", i, l.After)
		}
		prev = l.After
		if len(l.Users)+len(l.Schedules)+len(l.Teams) == 0 {
			return fmt.Errorf("levels[%d]: no users, schedules or teams", i)
		}
		if l.Channels, err = checkChannels(l.Channels); err != nil {
			return fmt.Errorf("levels[%d].channels: %w", i, err)
		}
	}
	if p.Repeat < 0 {
		return fmt.Errorf("repeat: %d must not be negative", p.Repeat)
	}
	if p.RepeatAfter < 0 {
		return errors.New("repeat_after must not be negative")
	}
	if p.AckTimeout != nil && *p.AckTimeout < 0 {
		return errors.New("ack_timeout must not be negative")
	}
	if p.AckReminder != nil && *p.AckReminder < 0 {
		return errors.New("ack_reminder must not be negative")
	}
	return nil
}

// MaxMaintenanceNameLen bounds the name of a maintenance window, in
// characters.
const MaxMaintenanceNameLen = 200

// checkMaintenanceName refuses a name that is not one line of printable
// characters: timeline entries, notes and pages show it.
func checkMaintenanceName(name string) error {
	if strings.TrimSpace(name) == "" {
		return errors.New("maintenance window without a name")
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("maintenance window name %q is not valid UTF-8", name)
	}
	if n := utf8.RuneCountInString(name); n > MaxMaintenanceNameLen {
		return fmt.Errorf("maintenance window name %.40q... is %d characters long: at most %d", name, n, MaxMaintenanceNameLen)
	}
	for i, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("maintenance window name %q: character %U at byte %d is not printable (a name is a single line of printable characters)", name, r, i)
		}
	}
	return nil
}

// Validate checks a maintenance window given in the configuration or the
// API.
func (w *MaintenanceWindow) Validate() error {
	if err := checkMaintenanceName(w.Name); err != nil {
		return err
	}
	return w.validate()
}

// validate checks a maintenance window but its name's characters: a window
// stored before names were checked still loads, and still silences.
func (w *MaintenanceWindow) validate() error {
	if w.Name == "" {
		return errors.New("maintenance window without a name")
	}
	if err := w.checkMatchers(); err != nil {
		return fmt.Errorf("maintenance window %q: %w", w.Name, err)
	}
	if w.Start.IsZero() || w.End.IsZero() || !w.End.After(w.Start) {
		return fmt.Errorf("maintenance window %q: end must be after start", w.Name)
	}
	return nil
}

// checkMatchers parses the window's matchers, which it requires.
func (w *MaintenanceWindow) checkMatchers() error {
	var err error
	if w.matchers, err = ParseMatchers(w.Matchers); err != nil {
		return err
	}
	if len(w.matchers) == 0 {
		return errors.New("matchers are required")
	}
	return nil
}

// check checks a window of the configuration but its name; each message
// names the field it is about ("end: 2026-06-06T20:00:00Z must be after
// start (2026-06-06T22:00:00Z)"), which places it at that field's value.
func (w *MaintenanceWindow) check() error {
	if err := w.checkMatchers(); err != nil {
		return err
	}
	switch {
	case w.Start.IsZero():
		return errors.New("start is required")
	case w.End.IsZero():
		return errors.New("end is required")
	case !w.End.After(w.Start):
		return fmt.Errorf("end: %s must be after start (%s)", w.End.Format(time.RFC3339Nano), w.Start.Format(time.RFC3339Nano))
	}
	return nil
}

// Active reports whether the window covers t.
func (w *MaintenanceWindow) Active(t time.Time) bool {
	return !t.Before(w.Start) && t.Before(w.End)
}

// Matches reports whether the window applies to an incident's label set.
func (w *MaintenanceWindow) Matches(ls model.LabelSet) bool { return w.matchers.Matches(ls) }

// CheckRefs checks that every user, schedule and team named by the policies
// exists in the on-call configuration, and that every channel they use is
// configured in notifications (unconfigured channels are returned as
// warnings: a message to them would only fail). Warnings come in the
// order of the fields they name (the severities in the order of the
// file's keys, those it leaves to their default after them in the order
// CRITICAL, HIGH, MEDIUM, LOW) and each names the path of its value
// ("severities.CRITICAL.channels[2]: channel email ..."), which places it;
// a severity the section leaves to its default reads "default
// severities.LOW.channels[1]: ...".
func (c *Config) CheckRefs(oc *oncall.Config, nc *notify.Config) (warnings []string, err error) {
	// Each unknown name is reported with the path of its value
	// ("policies[1] (db): levels[2].users[0]"), which the configuration's
	// errors are placed at: the same name elsewhere in the policy is
	// another value.
	for pi, p := range c.Policies {
		for i, l := range p.Levels {
			for j, u := range l.Users {
				if oc.User(u) == nil {
					return nil, fmt.Errorf("policies[%d] (%s): levels[%d].users[%d]: unknown user %q", pi, p.Name, i, j, u)
				}
			}
			for j, s := range l.Schedules {
				if oc.Schedule(s) == nil {
					return nil, fmt.Errorf("policies[%d] (%s): levels[%d].schedules[%d]: unknown schedule %q", pi, p.Name, i, j, s)
				}
			}
			for j, t := range l.Teams {
				if oc.Team(t) == nil {
					return nil, fmt.Errorf("policies[%d] (%s): levels[%d].teams[%d]: unknown team %q", pi, p.Name, i, j, t)
				}
			}
		}
	}
	// The warnings in the order of the section's fields (ack reminders,
	// severities as the file lists them, then each policy's levels in
	// turn, each level's users, schedules, teams and channels): a channel
	// not configured is named once, at the first value that uses it.
	seen := map[string]bool{}
	use := func(path string, chs []string) {
		for k, ch := range chs {
			if nc != nil && !nc.Configured(ch) && !seen[ch] {
				seen[ch] = true
				warnings = append(warnings, fmt.Sprintf("%s[%d]: channel %s is used by the escalation config but not configured in notifications", path, k, ch))
			}
		}
	}
	if c.AckReminder > 0 || slices.ContainsFunc(c.Policies, func(p *Policy) bool { return p.AckReminder != nil && *p.AckReminder > 0 }) {
		use("ack_reminder_channels", c.AckReminderChannels)
	}
	for _, s := range c.severityKeys() {
		if r := c.Severities[s]; r != nil {
			path := fmt.Sprintf("severities.%s.channels", s)
			if c.defaulted[s] {
				// Not in the file: no position.
				path = "default " + path
			}
			use(path, r.Channels)
		}
	}
	for pi, p := range c.Policies {
		sevs := p.severities()
		for i, l := range p.Levels {
			warnings = append(warnings, c.contactWarnings(pi, p, sevs, i, l, oc, nc)...)
			use(fmt.Sprintf("policies[%d] (%s): levels[%d].channels", pi, p.Name, i), l.Channels)
		}
	}
	return warnings, nil
}

// severities returns the severities an incident matched by p may have:
// those allowed by p's matchers on the "severity" label.
func (p *Policy) severities() []incident.Severity {
	var out []incident.Severity
	for _, sev := range incident.Severities {
		ok := true
		for _, m := range p.matchers {
			if m.Name == "severity" && !m.Matches(string(sev)) {
				ok = false
			}
		}
		if ok {
			out = append(out, sev)
		}
	}
	return out
}

// levelUser is one person a level may page, with the path of the value
// of the level that names them: "users[0]", "schedules[1] (api-primary)",
// "teams[0] (api-team)".
type levelUser struct {
	name, from string
}

// levelUsers lists everyone a level may page: its users, every participant
// of its schedules (layers and configured overrides) and its teams' members,
// each once, from the first value of the level that names them.
func levelUsers(l *Level, oc *oncall.Config) []levelUser {
	var out []levelUser
	add := func(u, from string) {
		if !slices.ContainsFunc(out, func(lu levelUser) bool { return lu.name == u }) {
			out = append(out, levelUser{u, from})
		}
	}
	for i, u := range l.Users {
		add(u, fmt.Sprintf("users[%d]", i))
	}
	for i, name := range l.Schedules {
		if s := oc.Schedule(name); s != nil {
			from := fmt.Sprintf("schedules[%d] (%s)", i, name)
			for _, ly := range s.Layers {
				for _, u := range ly.Users {
					add(u, from)
				}
			}
			for _, o := range s.Overrides {
				add(o.User, from)
			}
		}
	}
	for i, name := range l.Teams {
		if t := oc.Team(name); t != nil {
			from := fmt.Sprintf("teams[%d] (%s)", i, name)
			for _, u := range t.Members {
				add(u, from)
			}
		}
	}
	return out
}

// contactWarnings reports users level i of policy pi (of severities sevs)
// may page on a per-user channel
// (email, sms, phone, push) that is configured but for which they have no
// contact: that channel would silently skip them. Each warning names the
// path of the value that brings the user in, as the configuration's
// errors do: "policies[0] (api): levels[1].users[0]: user ...", or the
// schedule or team they come from ("levels[0].schedules[0] (api-primary)").
func (c *Config) contactWarnings(pi int, p *Policy, sevs []incident.Severity, i int, l *Level, oc *oncall.Config, nc *notify.Config) []string {
	var out []string
	// channel -> severities that use it at this level
	use := map[string][]string{}
	var order []string
	for _, sev := range sevs {
		chs := l.Channels
		if len(chs) == 0 && c.Severities[sev] != nil {
			chs = c.Severities[sev].Channels
		}
		for _, ch := range chs {
			if !notify.PerUser(ch) || (nc != nil && !nc.Configured(ch)) {
				continue
			}
			if _, ok := use[ch]; !ok {
				order = append(order, ch)
			}
			use[ch] = append(use[ch], string(sev))
		}
	}
	for _, u := range levelUsers(l, oc) {
		var missing []string
		for _, ch := range order {
			if contact(oc.User(u.name), ch) == "" {
				missing = append(missing, fmt.Sprintf("%s (%s)", ch, strings.Join(use[ch], ", ")))
			}
		}
		if len(missing) > 0 {
			out = append(out, fmt.Sprintf("policies[%d] (%s): levels[%d].%s: user %s has no contact for %s: those messages skip them",
				pi, p.Name, i, u.from, u.name, strings.Join(missing, ", ")))
		}
	}
	return out
}

// LabelSet is what policies and maintenance windows match: the incident's
// labels plus "service" and "severity".
func LabelSet(inc *incident.Incident) model.LabelSet {
	ls := model.LabelSet{}
	for k, v := range inc.Labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	if inc.Service != "" {
		ls["service"] = model.LabelValue(inc.Service)
	}
	ls["severity"] = model.LabelValue(inc.Severity)
	return ls
}

// Select returns the first policy matching ls, or nil.
func (c *Config) Select(ls model.LabelSet) *Policy {
	for _, p := range c.Policies {
		if p.matchers.Matches(ls) {
			return p
		}
	}
	return nil
}
