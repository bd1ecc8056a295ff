package change

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/limits"
)

// Gater is the deploy gate (*budget.Service).
type Gater interface {
	Gate(ctx context.Context, req budget.GateRequest) (*budget.Decision, error)
}

// GateInput is what Submit passes to the deploy gate besides the service.
type GateInput struct {
	// Change is normal (default) or critical.
	Change         string
	OverrideToken  string
	OverrideReason string
	// Client is what a wrong override token counts against
	// (budget.OverrideClient of the request).
	Client string
}

// RefusedError is returned by Submit when the deploy gate denied the
// change: the change is recorded as refused.
type RefusedError struct {
	Change Change
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("change refused by the deploy gate (recorded as change %d): %s", e.Change.ID, e.Change.Gate.Reason)
}

// Submit gates a change through the deploy gate, then records it: a change
// the gate denies is recorded as refused and Submit returns a
// *RefusedError; an override token (with its reason) lets it through as
// the gate does. A service with no SLO is not gated (the gate has nothing
// to say): the change is recorded with the decision "skipped".
// This is POST /api/v1/changes.
func (s *Service) Submit(ctx context.Context, c Change, in GateInput) (Change, error) {
	out, _, err := s.submit(ctx, c, in)
	return out, err
}

// submit is Submit; existed reports a retry: c.Key named a change recorded
// before, or c has no key and gives its StartedAt and says what a change
// recorded before without a key says (same), which it returns as it was
// (the gate is not asked again).
func (s *Service) submit(ctx context.Context, c Change, in GateInput) (Change, bool, error) {
	started := !c.StartedAt.IsZero()
	// A change that says when it finished, not after now, is recorded
	// after the fact (history replayed, a CI step that reports at its
	// end): it shipped already, and the gate has nothing left to stop.
	shipped := c.FinishedAt != nil && c.Outcome != InProgress && !c.FinishedAt.After(s.clock.Now())
	if err := c.normalise(s.clock.Now()); err != nil {
		return Change{}, false, err
	}
	var (
		prev *Change
		err  error
	)
	switch {
	case c.Key != "":
		prev, err = byKey(ctx, s.db, c.Key)
		if err == nil {
			// A retry is of the same service and kind; a change of another
			// one under the key (a job number that is per repository,
			// shared by two services' pipelines) would be lost behind a 200.
			err = keyReused(prev, &c)
		}
	case started:
		// No key, but the change says when it started: a request that
		// says the same of a change recorded before is a retry of it (a
		// CI step retried after a timeout), as an alert sent again is
		// the same alert to Alertmanager.
		prev, err = same(ctx, s.db, &c)
	default:
		err = ErrNotFound
	}
	switch {
	case err == nil:
		out, err := s.Get(ctx, prev.ID)
		if err == nil && out.Outcome == Refused && out.Gate != nil && out.Gate.Decision == "deny" {
			err = &RefusedError{Change: out}
		}
		return out, true, err
	case !errors.Is(err, ErrNotFound):
		return Change{}, false, err
	}
	_, gater := s.config()
	g := &Gate{Decision: "skipped", Reason: "no deploy gate configured"}
	var slot int64
	switch {
	case shipped:
		g = &Gate{Decision: "skipped", Reason: fmt.Sprintf("finished at %s, before it was recorded: not gated", c.FinishedAt.Format(time.RFC3339))}
	case gater != nil:
		// The change is recorded next: an allowed normal change under the
		// yellow quota takes its slot of the quota at once (Reserve), and
		// recording it consumes the slot.
		d, err := gater.Gate(ctx, budget.GateRequest{Service: c.Service, Change: in.Change, OverrideToken: in.OverrideToken,
			OverrideReason: in.OverrideReason, Actor: c.Actor, Client: in.Client, Reserve: true})
		switch {
		case errors.Is(err, budget.ErrNotFound):
			g = &Gate{Decision: "skipped", Reason: fmt.Sprintf("service %q has no SLO: not gated", c.Service)}
		case err != nil:
			return Change{}, false, fmt.Errorf("deploy gate: %w", err)
		default:
			g = &Gate{Decision: d.Answer, State: string(d.State), Reason: d.Reason, Override: d.Override, OverrideReason: d.OverrideReason}
			slot = d.QuotaSlot
			if !d.Allowed {
				c.Outcome, c.Failed = Refused, false
				t := c.StartedAt
				c.FinishedAt = &t
			}
		}
	}
	c.Gate = g
	out, existed, err := s.record(ctx, c, slot)
	if err != nil {
		return Change{}, false, err
	}
	if out.Outcome == Refused && out.Gate != nil && out.Gate.Decision == "deny" {
		return out, existed, &RefusedError{Change: out}
	}
	return out, existed, nil
}

// keyReused is ErrKeyReused when prev, the change recorded with c's key,
// is of another service or kind than c: not a retry of c.
func keyReused(prev, c *Change) error {
	if prev.Service == c.Service && prev.Kind == c.Kind {
		return nil
	}
	return fmt.Errorf("%w: key %s is change %d, a %s of %s, not a %s of %s: give each service's changes their own keys",
		ErrKeyReused, limits.Quote(c.Key), prev.ID, prev.Kind, prev.Service, c.Kind, c.Service)
}
