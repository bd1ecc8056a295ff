package chaos

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Refusal is the reason an experiment may not start.
type Refusal struct {
	Reasons []string `json:"reasons"`
}

func (r *Refusal) Error() string { return "experiment refused: " + strings.Join(r.Reasons, "; ") }

// BudgetState is what the chaos runner needs of one SLO's error budget.
type BudgetState struct {
	SLO string `json:"slo"`
	// State is green, yellow, red, exhausted or unknown.
	State string `json:"state"`
	// Remaining is the remaining budget ratio (0-1), nil without data.
	Remaining *float64 `json:"remaining"`
}

// excluded says whether name is in list, ignoring case and surrounding
// whitespace on both sides ("Payment" and "payment " are payment).
func excluded(list []string, name string) bool {
	name = strings.TrimSpace(name)
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(strings.TrimSpace(x), name) })
}

// CheckSafety applies the blast-radius limits, the game-day schedule and the
// budget policy to e; budgets are the target service's SLOs. It returns a
// *Refusal listing every violation, or nil.
func CheckSafety(s Safety, e *Experiment, budgets []BudgetState, now time.Time) error {
	var reasons []string
	if excluded(s.ExcludedServices, e.Target.Service) {
		reasons = append(reasons, fmt.Sprintf("service %q is excluded from chaos experiments", e.Target.Service))
	}
	if excluded(s.ExcludedEnvironments, e.Target.Environment) {
		reasons = append(reasons, fmt.Sprintf("environment %q is excluded from chaos experiments", e.Target.Environment))
	}
	if frac := float64(e.Target.Instances) / float64(e.Target.Total); frac > s.MaxInstanceFraction {
		reasons = append(reasons, fmt.Sprintf("blast radius %d of %d instances (%.0f%%) exceeds the maximum of %.0f%%",
			e.Target.Instances, e.Target.Total, frac*100, s.MaxInstanceFraction*100))
	}
	if e.Duration > s.MaxDuration {
		reasons = append(reasons, fmt.Sprintf("duration %v exceeds the maximum of %v", e.Duration, model.Duration(s.MaxDuration)))
	}
	if !e.Schedule.Allows(now) {
		reasons = append(reasons, fmt.Sprintf("%s is outside every game-day window of the schedule", now.UTC().Format(time.RFC3339)))
	}
	for _, b := range budgets {
		switch b.State {
		case "red", "exhausted":
			reasons = append(reasons, fmt.Sprintf("error budget of SLO %q is %s", b.SLO, b.State))
		}
		if e.MaxBudgetShare > 0 && b.Remaining != nil && *b.Remaining <= 0 {
			reasons = append(reasons, fmt.Sprintf("SLO %q has no remaining error budget to spend", b.SLO))
		}
	}
	if len(reasons) > 0 {
		return &Refusal{Reasons: reasons}
	}
	return nil
}
