package rollout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rootuip/sre/pkg/analysis"
	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/clock"
)

// SpecAnalyzer judges stages with the analysis engine (pkg/analysis): the
// definition's spec, evaluated for its canary and baseline label sets.
type SpecAnalyzer struct {
	// Spec returns a loaded spec by name.
	Spec      func(name string) (*analysis.Spec, bool)
	Evaluator *analysis.Evaluator
	// Clock is the time of the queries: Prometheus' (the wall clock when nil).
	Clock clock.Clock
}

// Analyze implements Analyzer.
func (a SpecAnalyzer) Analyze(ctx context.Context, r AnalysisRequest) (Verdict, error) {
	spec, ok := a.Spec(r.Spec)
	if !ok {
		return Verdict{}, fmt.Errorf("no analysis spec %q is loaded (see analysis.spec_files)", r.Spec)
	}
	// The whole stage, from its start (a stage held for data is judged
	// over all of it), at least the spec's interval.
	var stage time.Duration
	if !r.Start.IsZero() && r.End.After(r.Start) {
		stage = r.End.Sub(r.Start)
	}
	res, err := a.Evaluator.Evaluate(ctx, spec, analysis.Target{Service: r.Service, Canary: r.Canary, Baseline: r.Baseline, Window: stage},
		clock.OrReal(a.Clock).Now())
	if err != nil {
		return Verdict{}, err
	}
	checks := make([]map[string]any, 0, len(res.Checks))
	measuredFail := false
	for _, c := range res.Checks {
		m := map[string]any{"name": c.Name, "type": string(c.Type), "verdict": string(c.Verdict), "threshold": c.Threshold, "reason": c.Reason}
		if c.Value != nil {
			m["value"] = *c.Value
		}
		if c.NoData {
			m["no_data"] = true
		}
		measuredFail = measuredFail || (c.Verdict == analysis.Fail && !c.NoData)
		checks = append(checks, m)
	}
	// A fail that comes only from no-data policies is told apart, as the
	// Flagger rollback hook does.
	return Verdict{Result: string(res.Verdict), Reason: res.Reason, NoData: res.Verdict == analysis.Fail && !measuredFail, Detail: map[string]any{
		"analysis": res.Analysis, "requests": res.Requests, "min_requests": res.MinRequests, "checks": checks,
	}}, nil
}

// BudgetGate is the deploy gate of pkg/budget.
type BudgetGate struct{ Budgets *budget.Service }

// Ask implements Gate: the budget service decides and records the
// decision. The gate step records the deployment next, so the request
// reserves (budget.GateRequest.Reserve): an allowed normal change in the
// yellow state takes its slot of the quota in the transaction that counts
// the service's changes, as POST /api/v1/changes does, and rollouts and
// recorded changes gated at once never pass beyond the quota.
func (g BudgetGate) Ask(ctx context.Context, service, change, actor string) (GateAnswer, error) {
	if g.Budgets == nil {
		return GateAnswer{}, errors.New("the budgets subsystem is not set up")
	}
	d, err := g.Budgets.Gate(ctx, budget.GateRequest{Service: service, Change: change, Actor: "rollout:" + actor, Reserve: true})
	if err != nil {
		return GateAnswer{}, err
	}
	return GateAnswer{Allowed: d.Allowed, State: string(d.State), Reason: d.Reason, QuotaSlot: d.QuotaSlot}, nil
}
