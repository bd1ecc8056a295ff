package escalation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/oncall"
	"github.com/rootuip/sre/pkg/store"
)

// PlannedPage is one step of a simulated escalation.
type PlannedPage struct {
	At       time.Time `json:"at"`
	Cycle    int       `json:"cycle"`
	Level    int       `json:"level"`
	Users    []string  `json:"users"`
	Channels []string  `json:"channels"`
	// Skipped lists channels that are not configured in notifications.
	Skipped []string `json:"skipped,omitempty"`
	// Notes explains empty schedules and maintenance windows.
	Notes []string `json:"notes,omitempty"`
}

// Simulation is a dry run of the escalation of a hypothetical alert.
type Simulation struct {
	Labels   map[string]string `json:"labels"`
	Severity string            `json:"severity"`
	Policy   string            `json:"policy,omitempty"`
	Start    time.Time         `json:"start"`
	Frozen   *Frozen           `json:"frozen,omitempty"`
	Steps    []PlannedPage     `json:"steps"`
	// Offline is set when only the configuration was read: overrides and
	// maintenance windows stored at runtime are not taken into account.
	Offline bool `json:"offline,omitempty"`
}

// SimOptions add what a running sred knows to a simulation.
type SimOptions struct {
	// Windows are maintenance windows stored at runtime (the configured
	// ones are always used).
	Windows []*MaintenanceWindow
	// OnCall says who is on call for a schedule at t, with stored
	// overrides. Nil reads the configuration only (offline).
	OnCall func(schedule string, t time.Time) (string, error)
}

// maxDeferrals bounds the chain of back-to-back maintenance windows a
// simulated step is pushed through.
const maxDeferrals = 100

// Simulate shows who would be paged when, if an incident with these labels
// triggered at start and nobody acknowledged it. It reads only the
// configuration (offline): overrides and maintenance windows stored at
// runtime are not taken into account (Engine.Simulate does).
func Simulate(cfg *Config, oc *oncall.Config, nc *notify.Config, lbls map[string]string, start time.Time) (*Simulation, error) {
	return SimulateWith(cfg, oc, nc, lbls, start, SimOptions{})
}

// errStore marks an online dry run's failure to read the store (not a
// refused simulation).
var errStore = errors.New("the store failed")

// Simulate is the online dry run: it uses the overrides and maintenance
// windows stored in the database as well as the configuration.
func (e *Engine) Simulate(ctx context.Context, lbls map[string]string, start time.Time) (*Simulation, error) {
	cfg, nc, _ := e.config()
	stored, err := ListMaintenance(ctx, e.db, start, start.Add(100*365*24*time.Hour))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errStore, err)
	}
	// A read of the stored overrides that fails is the store's failure,
	// answered as one (its error, which can name the database's host, file
	// or SQL, goes to the log), not a line of the step's Notes field as an
	// unknown schedule is.
	var storeErr error
	sim, err := SimulateWith(cfg, e.dir.Config(), nc, lbls, start, SimOptions{
		Windows: stored,
		OnCall: func(s string, t time.Time) (string, error) {
			u, err := e.dir.OnCall(ctx, nil, s, t)
			if err != nil && storeErr == nil && store.Failed(err) {
				storeErr = err
			}
			return u, err
		},
	})
	if storeErr != nil {
		return nil, fmt.Errorf("%w: %w", errStore, storeErr)
	}
	return sim, err
}

// SimulateWith runs the dry run with o. Like the engine, a step due during a
// maintenance window that matches the incident is paged when the window
// ends, and the later steps keep their spacing from there.
func SimulateWith(cfg *Config, oc *oncall.Config, nc *notify.Config, lbls map[string]string, start time.Time, o SimOptions) (*Simulation, error) {
	sevName := lbls["severity"]
	if sevName == "" {
		sevName = string(incident.SeverityMedium)
	}
	sev, err := incident.ParseSeverity(sevName)
	if err != nil {
		return nil, err
	}
	ls := model.LabelSet{}
	for k, v := range lbls {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	ls["severity"] = model.LabelValue(sev)
	sim := &Simulation{Labels: lbls, Severity: string(sev), Start: start, Steps: []PlannedPage{}, Offline: o.OnCall == nil}
	p := cfg.Select(ls)
	if p == nil {
		return sim, nil
	}
	sim.Policy = p.Name
	f := cfg.Freeze(p, sev)
	sim.Frozen = f
	windows := slices.Concat(cfg.MaintenanceWindows, o.Windows)
	activeAt := func(t time.Time) *MaintenanceWindow {
		for _, w := range windows {
			if w.Active(t) && w.Matches(ls) {
				return w
			}
		}
		return nil
	}
	onCall := o.OnCall
	if onCall == nil {
		onCall = func(s string, t time.Time) (string, error) {
			sch := oc.Schedule(s)
			if sch == nil {
				return "", fmt.Errorf("unknown schedule %s", s)
			}
			u, _ := sch.At(t, nil)
			return u, nil
		}
	}
	at := start.Add(f.Levels[0].Offset)
	cycle, level := 0, 0
	for {
		l := f.Levels[level]
		step := PlannedPage{Cycle: cycle, Level: level, Users: []string{}}
		for range maxDeferrals {
			w := activeAt(at)
			if w == nil {
				break
			}
			step.Notes = append(step.Notes, fmt.Sprintf("maintenance window %q: deferred from %s to its end", w.Name, at.UTC().Format(time.RFC3339)))
			at = w.End
		}
		step.At = at
		add := func(u string) {
			if !slices.Contains(step.Users, u) {
				step.Users = append(step.Users, u)
			}
		}
		for _, u := range l.Users {
			add(u)
		}
		for _, s := range l.Schedules {
			u, err := onCall(s, at)
			if err != nil {
				step.Notes = append(step.Notes, err.Error())
				continue
			}
			if u == "" {
				step.Notes = append(step.Notes, fmt.Sprintf("schedule %s has nobody on call", s))
				continue
			}
			add(u)
		}
		for _, t := range l.Teams {
			if team := oc.Team(t); team != nil {
				for _, m := range team.Members {
					add(m)
				}
			}
		}
		for _, ch := range l.Channels {
			if nc != nil && !nc.Configured(ch) {
				step.Skipped = append(step.Skipped, ch)
				continue
			}
			step.Channels = append(step.Channels, ch)
		}
		sim.Steps = append(sim.Steps, step)
		switch {
		case level+1 < len(f.Levels):
			at = at.Add(f.Levels[level+1].Offset - l.Offset)
			level++
		case cycle < f.Repeat:
			at = at.Add(f.RepeatAfter)
			cycle, level = cycle+1, 0
		default:
			return sim, nil
		}
	}
}
