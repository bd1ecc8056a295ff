package rollout

import (
	"context"
	"fmt"

	"github.com/rootuip/sre/pkg/change"
)

// ChangeRecorder records the runner's deployments as changes (pkg/change).
type ChangeRecorder struct{ Changes *change.Service }

// Started implements Recorder: the deployment is a change in progress (or
// refused), recorded with the gate's slot of the yellow quota, which the
// record consumes.
func (r ChangeRecorder) Started(ctx context.Context, d Deployment) (int64, error) {
	g := &change.Gate{Decision: "allow", State: d.Gate.State, Reason: d.Gate.Reason}
	outcome := change.InProgress
	if d.Refused {
		g.Decision, outcome = "deny", change.Refused
	}
	c, err := r.Changes.RecordReserved(ctx, change.Change{Service: d.Service, Kind: change.KindDeploy, Source: change.SourceRollout,
		Ref: fmt.Sprintf("rollout:%d", d.RolloutID), Version: d.Version, Actor: d.Actor, Outcome: outcome, Gate: g, StartedAt: d.Started,
		Description: fmt.Sprintf("rollout %d of %s (srectl rollout status %d)", d.RolloutID, d.Rollout, d.RolloutID)}, d.QuotaSlot)
	if err != nil {
		return 0, err
	}
	return c.ID, nil
}

// Finished implements Recorder.
func (r ChangeRecorder) Finished(ctx context.Context, id int64, outcome string) error {
	_, err := r.Changes.Finish(ctx, id, change.Outcome(outcome))
	return err
}

// ReleaseSlot implements Recorder.
func (r ChangeRecorder) ReleaseSlot(ctx context.Context, slot int64) error {
	return r.Changes.ReleaseSlot(ctx, slot)
}
