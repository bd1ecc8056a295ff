package budget

import (
	"crypto/subtle"
	"fmt"
	"time"

	"github.com/rootuip/sre/pkg/slo"
)

// Change kinds the gate knows.
const (
	ChangeNormal   = "normal"
	ChangeCritical = "critical"
)

// GateRequest asks whether a change to a service may ship.
type GateRequest struct {
	Service string
	Change  string // normal (default) or critical
	// OverrideToken, when it matches a configured token, allows the change
	// whatever the budget (emergency override); OverrideReason is required then.
	OverrideToken  string
	OverrideReason string
	Actor          string
}

// Decision is the gate's answer.
type Decision struct {
	ID      int64           `json:"id"`
	Time    time.Time       `json:"time"`
	Service string          `json:"service"`
	Change  string          `json:"change"`
	Allowed bool            `json:"allowed"`
	Answer  string          `json:"decision"` // allow | deny
	State   slo.BudgetState `json:"state"`
	// SLO names the SLO that decided (the one in the worst state).
	SLO            string   `json:"slo,omitempty"`
	Group          string   `json:"group,omitempty"`
	Remaining      *float64 `json:"remaining_ratio,omitempty"`
	Reason         string   `json:"reason"`
	Override       bool     `json:"override"`
	OverrideReason string   `json:"override_reason,omitempty"`
	Actor          string   `json:"actor,omitempty"`
	// PrometheusError is set when the answer is the configured fail mode
	// because Prometheus could not be queried.
	PrometheusError string    `json:"prometheus_error,omitempty"`
	SLOs            []GateSLO `json:"slos"`
}

// GateSLO is the state of one SLO (group) considered by the gate.
type GateSLO struct {
	SLO       string          `json:"slo"`
	Group     string          `json:"group,omitempty"`
	State     slo.BudgetState `json:"state"`
	Remaining *float64        `json:"remaining_ratio"`
}

// Allows reports whether the policy lets a change of this kind ship in a
// state: green and yellow allow every change (yellow asks to deploy less
// often), red freezes non-critical changes, exhausted allows emergency
// changes only (the override).
func Allows(state slo.BudgetState, change string) bool {
	switch state {
	case slo.BudgetGreen, slo.BudgetYellow:
		return true
	case slo.BudgetRed:
		return change == ChangeCritical
	}
	return false
}

// decide applies the policy to the statuses of one service's SLOs.
func decide(cfg GateConfig, req GateRequest, sts []Status) Decision {
	d := Decision{Service: req.Service, Change: req.Change}
	for _, st := range sts {
		d.SLOs = append(d.SLOs, GateSLO{SLO: st.SLO, Group: st.GroupString(), State: st.State, Remaining: st.Budget.RemainingRatio})
	}
	worst, which := Worst(sts)
	d.State = worst
	if which == nil {
		d.Allowed = cfg.OnNoData == FailAllow
		d.Reason = fmt.Sprintf("no SLO of service %q has data yet; gate configured to %s without data", req.Service, cfg.OnNoData)
		return d
	}
	d.SLO, d.Group, d.Remaining = which.SLO, which.GroupString(), which.Budget.RemainingRatio
	name := which.SLO
	if d.Group != "" {
		name += "{" + d.Group + "}"
	}
	rem := fmt.Sprintf("%.2f%%", *which.Budget.RemainingRatio*100)
	d.Allowed = Allows(worst, req.Change)
	verb := "allowed"
	if !d.Allowed {
		verb = "denied"
	}
	d.Reason = fmt.Sprintf("%s change %s: error budget of SLO %s is %s (%s remaining): %s", req.Change, verb, name, worst, rem, policyAction(worst))
	return d
}

// checkToken compares a presented token with the configured ones in constant time.
func checkToken(tokens []string, presented string) bool {
	ok := false
	for _, t := range tokens {
		if t != "" && subtle.ConstantTimeCompare([]byte(t), []byte(presented)) == 1 {
			ok = true
		}
	}
	return ok
}

func (d *Decision) finish() {
	d.Answer = "deny"
	if d.Allowed {
		d.Answer = "allow"
	}
}
