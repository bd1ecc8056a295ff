package chaos

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/slo"
)

// LoadExperiments loads the experiment files and directories of cfg;
// resolve makes a path relative to the configuration file absolute.
func LoadExperiments(cfg Config, resolve func(string) string) ([]*Experiment, error) {
	var out []*Experiment
	seen := map[string]string{}
	for _, p := range cfg.ExperimentFiles {
		p = resolve(p)
		var exps []*Experiment
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			es, err := LoadDir(p)
			if err != nil {
				return nil, fmt.Errorf("chaos: %w", err)
			}
			exps = es
		} else {
			e, err := LoadFile(p)
			if err != nil {
				return nil, fmt.Errorf("chaos: %w", err)
			}
			exps = []*Experiment{e}
		}
		for _, e := range exps {
			// What this host cannot run is an error now, not at the run
			// (placed in e.File).
			if err := CheckHost(e); err != nil {
				return nil, fmt.Errorf("chaos: %w", err)
			}
			if prev, ok := seen[e.Name]; ok {
				return nil, fmt.Errorf("chaos: %s: experiment %q already defined in %s", e.File, e.Name, prev)
			}
			seen[e.Name] = e.File
			out = append(out, e)
		}
	}
	return out, nil
}

// BudgetReader reads the target's SLOs from the budget service.
type BudgetReader struct{ Service *budget.Service }

// SLOs implements Budgets: the state and remaining budget of each SLO of
// service (the worst group of a grouped SLO) at time at, and its fastest
// page tier.
func (b BudgetReader) SLOs(ctx context.Context, service string, at time.Time) ([]SLOInfo, error) {
	sts, err := b.Service.Statuses(ctx, at)
	if err != nil {
		return nil, err
	}
	byName := map[string][]budget.Status{}
	for _, st := range sts {
		if st.Service == service {
			byName[st.SLO] = append(byName[st.SLO], st)
		}
	}
	var out []SLOInfo
	for _, o := range b.Service.Objectives() {
		if o.Service != service {
			continue
		}
		info := SLOInfo{BudgetState: BudgetState{SLO: o.SLO.Name, State: string(budget.StateUnknown)}}
		if group := byName[o.SLO.Name]; len(group) > 0 {
			state, worst := budget.Worst(group)
			info.State = string(state)
			if worst != nil {
				info.Remaining = worst.Budget.RemainingRatio
			}
		}
		s := o.SLO
		s.Period = model.Duration(o.Period())
		for _, w := range s.Windows() {
			if w.Severity == slo.SeverityPage {
				info.FastLong, info.FastShort, info.FastFactor = w.Long, w.Short, w.BurnRate
				break
			}
		}
		out = append(out, info)
	}
	return out, nil
}

// IncidentReader reads and tags incidents of the incident service.
type IncidentReader struct{ Service *incident.Service }

var openStatuses = []incident.Status{incident.StatusTriggered, incident.StatusAcknowledged, incident.StatusInvestigating}

// OpenCritical implements Incidents.
func (r IncidentReader) OpenCritical(ctx context.Context, service string) ([]string, error) {
	p, err := r.Service.List(ctx, incident.Filter{Service: service, Status: openStatuses,
		Severity: []incident.Severity{incident.SeverityCritical}, Limit: 100})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, i := range p.Incidents {
		ids = append(ids, i.ID)
	}
	return ids, nil
}

// OpenedSince implements Incidents.
func (r IncidentReader) OpenedSince(ctx context.Context, service string, t time.Time) ([]string, error) {
	p, err := r.Service.List(ctx, incident.Filter{Service: service, Since: t, Limit: 1000})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, i := range p.Incidents {
		ids = append(ids, i.ID)
	}
	return ids, nil
}

// Tag implements Incidents with a timeline note by "chaos".
func (r IncidentReader) Tag(ctx context.Context, id, note string) error {
	_, err := r.Service.AddNote(ctx, id, "chaos", note)
	return err
}

// EscalationWindows implements ExpectedAlerts with the escalation engine's
// stored maintenance windows.
type EscalationWindows struct{ Engine *escalation.Engine }

// Expect implements ExpectedAlerts.
func (w EscalationWindows) Expect(ctx context.Context, name string, matchers []string, start, end time.Time, by string) (int64, error) {
	return w.Engine.AddMaintenance(ctx, &escalation.MaintenanceWindow{Name: name, Matchers: matchers, Start: start, End: end}, by)
}

// Unexpect implements ExpectedAlerts.
func (w EscalationWindows) Unexpect(ctx context.Context, id int64) error {
	_, err := w.Engine.DeleteMaintenance(ctx, id)
	return err
}
