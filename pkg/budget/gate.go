package budget

import (
	"context"
	"fmt"
	"time"

	"github.com/rootuip/sre/pkg/secretfile"
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
	// Client is what wrong override tokens are counted against (the
	// request's client and principal, see handleGate).
	Client string
	// RateClient, when set, is the client and principal (OverrideClient)
	// whose requests slos.gate.request_limit bounds: the gate endpoints
	// (GET /api/v1/gate, the Flagger pre-rollout hook) set it, sred's own
	// callers (a rollout's gate step, a recorded change) do not.
	RateClient string
	// Actor is who asks: the authenticated principal (recorded).
	Actor string
	// Subject names the change asked about when the request is not the
	// change itself, for the record: "flagger canary <namespace>/<name>".
	// It is answered as the decision's subject and recorded in a column
	// of its own and at the end of its reason ("... (for flagger canary
	// shop/checkout)").
	Subject string
	// Reserve says that the caller records the change next (a change
	// recorded with POST /api/v1/changes, the gate step of one of sred's
	// own rollouts, which gives the slot back when it records no
	// deployment): a normal change the yellow
	// quota lets through takes its slot of the quota in the transaction
	// that counts the changes (Decision.QuotaSlot), so that changes gated
	// at once, on one replica or several, never pass beyond the quota.
	// Without it the answer is a question's: it counts, takes nothing.
	Reserve bool
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
	// Subject is the request's Subject.
	Subject string `json:"subject,omitempty"`
	// PrometheusError is set when the answer is the configured fail mode
	// because Prometheus could not be queried.
	PrometheusError string    `json:"prometheus_error,omitempty"`
	SLOs            []GateSLO `json:"slos"`
	// YellowQuota is the quota of changes a day while the budget is
	// yellow, and ChangesLast24h how many the service had, when the quota
	// applied to this decision (a normal change in the yellow state).
	YellowQuota    int  `json:"yellow_quota,omitempty"`
	ChangesLast24h *int `json:"changes_last_24h,omitempty"`
	// QuotaSlot is the slot of the yellow quota a request with Reserve
	// took (0: none): the change recorded with it consumes it.
	QuotaSlot int64 `json:"-"`
}

// ChangeCounter counts the changes recorded for a service (pkg/change):
// the gate enforces the yellow state's quota with it.
type ChangeCounter interface {
	// CountChanges counts the changes of service since a time, with the
	// slots taken by changes allowed and not recorded yet.
	CountChanges(ctx context.Context, service string, since time.Time) (int, error)
	// ReserveChange counts as CountChanges and, below quota, takes a slot
	// of the quota (its id; 0 when the quota is used), in one atomic
	// decision of the database.
	ReserveChange(ctx context.Context, service string, since time.Time, quota int) (n int, slot int64, err error)
}

// SetChangeQuota makes the gate deny a normal change while the service's
// budget is yellow once the service had perDay changes in the last 24
// hours, as counted by c ("reduce deployment frequency" as a quota).
// perDay 0 or a nil counter remove the quota.
func (s *Service) SetChangeQuota(c ChangeCounter, perDay int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.changes, s.yellowQuota = c, perDay
}

// applyQuota denies an allowed normal change in the yellow state when the
// service used its quota of changes for the last 24 hours. For a request
// with Reserve, the change it allows takes its slot of the quota in the
// transaction of the count (d.QuotaSlot).
func (s *Service) applyQuota(ctx context.Context, d *Decision, req GateRequest, now time.Time) error {
	s.mu.RLock()
	counter, quota := s.changes, s.yellowQuota
	s.mu.RUnlock()
	if counter == nil || quota <= 0 || d.State != slo.BudgetYellow || req.Change == ChangeCritical || !d.Allowed {
		return nil
	}
	var (
		n   int
		err error
	)
	since := now.Add(-24 * time.Hour)
	if req.Reserve {
		n, d.QuotaSlot, err = counter.ReserveChange(ctx, req.Service, since, quota)
	} else {
		n, err = counter.CountChanges(ctx, req.Service, since)
	}
	if err != nil {
		return fmt.Errorf("deploy gate: count the changes of %s: %w", req.Service, err)
	}
	d.YellowQuota, d.ChangesLast24h = quota, &n
	if n >= quota {
		d.Allowed = false
		d.Reason = fmt.Sprintf("%s change denied: error budget of SLO %s is yellow and service %s had %d changes in the last 24h, its quota while yellow (changes.yellow_max_changes_per_day: %d): reduce deployment frequency; critical changes still ship",
			req.Change, d.SLO, req.Service, n, quota)
	} else {
		d.Reason += fmt.Sprintf(" (%d of %d changes a day used)", n, quota)
	}
	return nil
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
	rem := which.RemainingText(2)
	d.Allowed = Allows(worst, req.Change)
	verb := "allowed"
	if !d.Allowed {
		verb = "denied"
	}
	d.Reason = fmt.Sprintf("%s change %s: error budget of SLO %s is %s (%s): %s", req.Change, verb, name, worst, rem, PolicyAction(worst))
	return d
}

// MinOverrideTokenLen is the shortest override token accepted.
const MinOverrideTokenLen = 16

// checkOverride checks a presented override token against the configured
// ones by digest in constant time (secretfile.Equal), reading the token
// files now (a rotated file is in force at once). A file that cannot be read, is empty or holds a
// token shorter than MinOverrideTokenLen matches nothing: when no other
// token matches, the error says so (ErrOverrideTokenUnavailable), rather
// than calling a token that may be the right one invalid.
func (s *Service) checkOverride(tokens []secretfile.Source, presented string) error {
	ok := false
	var errs []error
	for _, src := range tokens {
		t, err := src.Get()
		if err == nil && len(t) < MinOverrideTokenLen {
			err = fmt.Errorf("override token in %s must be at least %d characters", src.File, MinOverrideTokenLen)
		}
		if err != nil {
			s.logger.Error("deploy gate override token file", "err", err)
			errs = append(errs, err)
			continue
		}
		if secretfile.Equal(presented, t) {
			ok = true
		}
	}
	switch {
	case ok:
		return nil
	case errs != nil:
		return ErrOverrideTokenUnavailable
	}
	return ErrBadOverrideToken
}

func (d *Decision) finish() {
	d.Answer = "deny"
	if d.Allowed {
		d.Answer = "allow"
	}
}
