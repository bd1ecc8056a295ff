package escalation

import (
	"fmt"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/oncall"
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
}

// Simulate shows who would be paged when, if an incident with these labels
// triggered at start and nobody acknowledged it. It reads only the
// configuration (no database): stored overrides and maintenance windows are
// not taken into account.
func Simulate(cfg *Config, oc *oncall.Config, nc *notify.Config, lbls map[string]string, start time.Time) (*Simulation, error) {
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
	sim := &Simulation{Labels: lbls, Severity: string(sev), Start: start, Steps: []PlannedPage{}}
	p := cfg.Select(ls)
	if p == nil {
		return sim, nil
	}
	sim.Policy = p.Name
	f := cfg.Freeze(p, sev)
	sim.Frozen = f
	for cycle := 0; cycle <= f.Repeat; cycle++ {
		span := time.Duration(cycle) * (f.Levels[len(f.Levels)-1].Offset - f.Levels[0].Offset + f.RepeatAfter)
		for i, l := range f.Levels {
			at := start.Add(l.Offset + span)
			step := PlannedPage{At: at, Cycle: cycle, Level: i, Users: []string{}}
			for _, w := range cfg.MaintenanceWindows {
				if w.Active(at) && w.Matches(ls) {
					step.Notes = append(step.Notes, fmt.Sprintf("maintenance window %q until %s: paged when it ends", w.Name, w.End.UTC().Format(time.RFC3339)))
				}
			}
			add := func(u string) {
				for _, x := range step.Users {
					if x == u {
						return
					}
				}
				step.Users = append(step.Users, u)
			}
			for _, u := range l.Users {
				add(u)
			}
			for _, s := range l.Schedules {
				sch := oc.Schedule(s)
				if sch == nil {
					step.Notes = append(step.Notes, fmt.Sprintf("unknown schedule %s", s))
					continue
				}
				u, _ := sch.At(at, nil)
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
		}
	}
	return sim, nil
}
