package rollout

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/runbook"
	"github.com/rootuip/sre/pkg/targetlock"
)

const phaseGate = "gate"

// step does the rollout's transition for its phase. jobID is the claimed
// job (0 when called inline, by Start).
func (s *Service) step(ctx context.Context, ro *Rollout, jobID int64) {
	switch ro.Phase {
	case phaseGate:
		s.gate(ctx, ro, jobID)
	case phaseAct:
		s.act(ctx, ro, jobID)
	case phaseHold:
		s.hold(ctx, ro, jobID)
	case phaseRollback:
		s.rollBack(ctx, ro, jobID)
	default:
		if jobID > 0 {
			_ = jobs.Complete(ctx, s.db, jobID, s.o.Owner, s.now())
		}
	}
}

// gate asks the deploy gate, takes the target lock, records the
// deployment and enters the first stage. The gate's slot of the yellow
// quota (ans.QuotaSlot) is consumed by the deployment's record; a step that
// records none (target lock refused, step tried again) gives it back, and
// a slot left by a sred that stopped in between expires
// (change.QuotaSlotTTL).
func (s *Service) gate(ctx context.Context, ro *Rollout, jobID int64) {
	cfg := s.config()
	t := s.begin(ro)
	var ans GateAnswer
	if s.o.Gate == nil {
		ans = GateAnswer{Reason: "no deploy gate is configured (the budgets subsystem is off)"}
	} else {
		var err error
		if ans, err = s.o.Gate.Ask(ctx, ro.Service, ro.def.Change, ro.Actor); err != nil {
			ans = GateAnswer{Reason: fmt.Sprintf("the deploy gate did not answer: %v", err)}
		}
	}
	detail := map[string]any{"allowed": ans.Allowed, "state": ans.State, "reason": ans.Reason}
	s.mu.RLock()
	rec := s.recorder
	s.mu.RUnlock()
	if !ans.Allowed {
		t.finish(StateDenied, "deploy gate denied: "+ans.Reason)
		t.event(Event{Kind: "denied", Status: "deny", Actor: "gate", Stage: "-", Message: t.ro.Reason, Detail: detail})
		if s.commit(ctx, t, jobID) && rec != nil {
			if _, err := rec.Started(ctx, Deployment{Service: ro.Service, Version: ro.Version, Rollout: ro.Name, RolloutID: ro.ID,
				Actor: ro.Actor, Gate: ans, Refused: true, Started: ro.Created}); err != nil {
				s.logger.Warn("record refused rollout as a change", "rollout", ro.ID, "err", err)
			}
		}
		return
	}
	t.event(Event{Kind: "gate", Status: "allow", Actor: "gate", Stage: "-", Message: "deploy gate allowed: " + ans.Reason, Detail: detail})
	err := s.locks.Acquire(ctx, ro.def.Target(), LockKind, holderOf(ro.ID), t.now, time.Duration(cfg.LockTTL))
	var held *targetlock.HeldError
	if err != nil {
		s.releaseSlot(ctx, rec, ro.ID, ans.QuotaSlot)
	}
	switch {
	case errors.As(err, &held):
		t.finish(StateRefused, err.Error())
		t.event(Event{Kind: "refused", Status: "locked", Actor: "system", Stage: "-", Message: err.Error(),
			Detail: map[string]any{"lock_kind": held.Lock.Kind, "lock_holder": held.Lock.Holder}})
		s.commit(ctx, t, jobID)
		return
	case err != nil:
		s.logger.Warn("take rollout target lock", "rollout", ro.ID, "err", err)
		if jobID > 0 {
			_ = jobs.Retry(ctx, s.db, jobID, s.o.Owner, t.now.Add(time.Duration(cfg.RetryInterval)), err.Error())
		}
		return
	}
	if rec != nil && ro.ChangeID == 0 {
		id, err := rec.Started(ctx, Deployment{Service: ro.Service, Version: ro.Version, Rollout: ro.Name, RolloutID: ro.ID,
			Actor: ro.Actor, Gate: ans, Started: ro.Created, QuotaSlot: ans.QuotaSlot})
		if err != nil {
			// The rollout goes on unrecorded: its slot counts in the
			// quota until it expires.
			s.logger.Warn("record rollout as a change", "rollout", ro.ID, "err", err)
		}
		t.ro.ChangeID = id
	} else {
		// No record (no recorder, or the deployment's change is recorded
		// already and counts): the slot is not needed.
		s.releaseSlot(ctx, rec, ro.ID, ans.QuotaSlot)
	}
	t.enter(0)
	t.event(Event{Kind: "stage", Status: "entered", Actor: "system", Message: fmt.Sprintf("stage %s entered", s.stageName(t.ro))})
	if !s.commit(ctx, t, jobID) {
		_ = s.locks.Release(context.WithoutCancel(ctx), ro.def.Target(), holderOf(ro.ID))
		if t.ro.ChangeID != 0 && ro.ChangeID == 0 {
			s.closeOrphan(context.WithoutCancel(ctx), ro.ID, t.ro.ChangeID)
		}
	}
}

// releaseSlot gives back a slot of the yellow quota the gate step will
// not record a deployment with; one that cannot be given back expires.
func (s *Service) releaseSlot(ctx context.Context, rec Recorder, id, slot int64) {
	if slot == 0 || rec == nil {
		return
	}
	if err := rec.ReleaseSlot(context.WithoutCancel(ctx), slot); err != nil {
		s.logger.Warn("give back the rollout's slot of the yellow quota", "rollout", id, "slot", slot, "err", err)
	}
}

// closeOrphan finishes the change recorded by a gate transition that lost
// to a manual command: a rollout aborted while its gate answered ended
// without that change, which would otherwise stay in progress for ever
// (and be the likely cause of every later incident of the service).
func (s *Service) closeOrphan(ctx context.Context, id, changeID int64) {
	cur, err := getRollout(ctx, s.db, id)
	if err != nil || !Final(cur.State) || cur.ChangeID != 0 {
		return
	}
	cur.ChangeID = changeID
	s.recordOutcome(ctx, cur)
}

// actuate runs an action of ro and records its outcome in t.
func (s *Service) actuate(ctx context.Context, t *transition, what string, a *runbook.Action, weight int) runbook.ActionResult {
	var res runbook.ActionResult
	if s.o.Actuator == nil {
		res = runbook.ActionResult{Status: runbook.StepFailed, Error: "no actuator is available (the runbooks subsystem is off)"}
	} else {
		res = s.o.Actuator.Actuate(ctx, a, vars(t.ro, weight))
	}
	t.actions = append(t.actions, [2]string{what, res.Status})
	detail := map[string]any{"type": string(a.Type()), "input": res.Input, "output": res.Output, "duration_seconds": res.Duration.Seconds()}
	if res.Code != nil {
		detail["code"] = *res.Code
	}
	if res.Error != "" {
		detail["error"] = res.Error
	}
	msg := fmt.Sprintf("%s action (%s) %s", what, a.Type(), res.Status)
	if res.Error != "" {
		msg += ": " + res.Error
	}
	t.event(Event{Kind: "action", Status: res.Status, Actor: "system", Message: msg, Detail: detail})
	return res
}

// failedAction retries a failed action later or gives up with giveUp.
func (s *Service) failedAction(t *transition, res runbook.ActionResult, giveUp func(reason string)) {
	cfg := s.config()
	t.ro.attempts++
	if t.ro.attempts < cfg.ActionAttempts {
		next := t.now.Add(time.Duration(cfg.RetryInterval))
		t.next = &next
		return
	}
	giveUp(fmt.Sprintf("stage %s: action failed %d times: %s", s.stageName(t.ro), t.ro.attempts, res.Error))
}

// act runs the stage's action, then holds the stage or moves on.
func (s *Service) act(ctx context.Context, ro *Rollout, jobID int64) {
	st := ro.Stages[ro.Stage]
	t := s.begin(ro)
	if st.action != nil {
		res := s.actuate(ctx, t, "stage", st.action, st.Weight)
		if !res.OK() {
			s.failedAction(t, res, func(reason string) {
				t.rollback(StateRolledBack, reason)
				t.event(Event{Kind: "rollback", Status: "started", Actor: "system", Message: "rolling back: " + reason})
			})
			s.commit(ctx, t, jobID)
			return
		}
		t.ro.Weight = st.Weight
	}
	if st.Duration > 0 || st.Analyze {
		due := t.now.Add(st.Duration)
		t.ro.Phase, t.ro.Due, t.next = phaseHold, &due, &due
		t.event(Event{Kind: "stage", Status: "holding", Actor: "system",
			Message: fmt.Sprintf("stage %s: weight %d%% held for %s, until %s", st.Name, t.ro.Weight, st.Duration, due.Format(time.RFC3339))})
	} else {
		t.enter(ro.Stage + 1)
		if !Final(t.ro.State) {
			t.event(Event{Kind: "stage", Status: "entered", Actor: "system", Message: fmt.Sprintf("stage %s entered", s.stageName(t.ro))})
		}
	}
	s.commit(ctx, t, jobID)
}

// hold ends a held stage: its analysis decides.
func (s *Service) hold(ctx context.Context, ro *Rollout, jobID int64) {
	st := ro.Stages[ro.Stage]
	t := s.begin(ro)
	if st.Analyze {
		v := s.analyze(ctx, ro, st, t.now)
		s.m.analyses.WithLabelValues(v.Result).Inc()
		waiting := ro.NoDataSince != nil
		stillNoData := v.Result == VerdictFail && v.NoData
		if !waiting || !stillNoData {
			// During a no-data wait, another fail on no data is no news:
			// the history says when the wait began and when it ended.
			t.event(Event{Kind: "analysis", Status: v.Result, Actor: "analysis", Message: fmt.Sprintf("stage %s analysis: %s: %s", st.Name, v.Result, v.Reason),
				Detail: v.Detail})
		}
		cfg := s.config()
		wait := time.Duration(cfg.NoDataWait)
		if waiting && !stillNoData {
			t.ro.NoDataSince = nil
			t.event(Event{Kind: "stage", Status: "data", Actor: "analysis",
				Message: fmt.Sprintf("stage %s: the analysis has data after %s of waiting (since %s): %s",
					st.Name, t.now.Sub(*ro.NoDataSince), ro.NoDataSince.Format(time.RFC3339), v.Result)})
		}
		switch v.Result {
		case VerdictPass:
		case VerdictFail:
			reason := fmt.Sprintf("stage %s analysis failed: %s", st.Name, v.Reason)
			if v.NoData {
				// No check failed on measured data: no evidence against
				// the canary, nor for promoting it. The stage stays held
				// and is analysed again until no_data_wait after its hold.
				since := t.now
				if ro.NoDataSince != nil {
					since = *ro.NoDataSince
				} else if ro.Due != nil {
					since = *ro.Due
				}
				if deadline := since.Add(wait); t.now.Before(deadline) {
					next := t.now.Add(time.Duration(cfg.RetryInterval))
					if next.After(deadline) {
						next = deadline
					}
					t.ro.NoDataSince, t.ro.Due, t.next = &since, &next, &next
					if !waiting {
						t.event(Event{Kind: "stage", Status: "no_data", Actor: "analysis",
							Message: fmt.Sprintf("stage %s: no data yet, no check failed on measured data: analysed again every %s, rolled back if there is still no data at %s",
								st.Name, time.Duration(cfg.RetryInterval), deadline.Format(time.RFC3339))})
					}
					s.commit(ctx, t, jobID)
					return
				}
				reason = fmt.Sprintf("stage %s analysis failed on no data: still none %s after the stage's hold (rollouts.no_data_wait): %s", st.Name, wait, v.Reason)
				if waiting {
					t.ro.NoDataSince = nil
					t.event(Event{Kind: "stage", Status: "no_data_timeout", Actor: "analysis",
						Message: fmt.Sprintf("stage %s: still no data at %s, %s after the hold (since %s): %s",
							st.Name, t.now.Format(time.RFC3339), wait, since.Format(time.RFC3339), v.Reason)})
				}
			}
			t.rollback(StateRolledBack, reason)
			t.event(Event{Kind: "rollback", Status: "started", Actor: "system", Message: "rolling back: " + reason})
			s.commit(ctx, t, jobID)
			return
		default:
			t.ro.State = StatePaused
			t.ro.Reason = fmt.Sprintf("stage %s analysis inconclusive: %s; promote to go on, abort to roll back", st.Name, v.Reason)
			t.next = nil
			t.event(Event{Kind: "paused", Status: StatePaused, Actor: "analysis", Message: t.ro.Reason})
			s.commit(ctx, t, jobID)
			return
		}
	}
	t.enter(ro.Stage + 1)
	if !Final(t.ro.State) {
		t.event(Event{Kind: "stage", Status: "entered", Actor: "system", Message: fmt.Sprintf("stage %s entered", s.stageName(t.ro))})
	}
	s.commit(ctx, t, jobID)
}

// analyze asks the analyzer about the stage; every doubt is inconclusive.
func (s *Service) analyze(ctx context.Context, ro *Rollout, st Stage, now time.Time) Verdict {
	if ro.def.Analysis == nil {
		return Verdict{Result: VerdictPass, Reason: "the definition names no analysis: the stage was timed only"}
	}
	s.mu.RLock()
	a := s.analyzer
	s.mu.RUnlock()
	if a == nil {
		return Verdict{Result: VerdictInconclusive, Reason: "no analysis engine is available to run analysis " + ro.def.Analysis.Spec}
	}
	start := now.Add(-st.Duration)
	if ro.StageStarted != nil {
		start = *ro.StageStarted
	}
	v, err := a.Analyze(ctx, AnalysisRequest{Spec: ro.def.Analysis.Spec, Service: ro.Service, Rollout: ro.Name, RolloutID: ro.ID, Stage: st.Name,
		Weight: ro.Weight, Version: ro.Version, Stable: ro.Stable, Canary: ro.def.Analysis.Canary, Baseline: ro.def.Analysis.Baseline,
		Start: start, End: now})
	if err != nil {
		return Verdict{Result: VerdictInconclusive, Reason: fmt.Sprintf("analysis error: %v", err)}
	}
	switch v.Result {
	case VerdictPass, VerdictFail, VerdictInconclusive:
	default:
		return Verdict{Result: VerdictInconclusive, Reason: fmt.Sprintf("analysis answered %q (want pass, fail or inconclusive): %s", v.Result, v.Reason), Detail: v.Detail}
	}
	return v
}

// rollBack runs the rollback action and ends the rollout.
func (s *Service) rollBack(ctx context.Context, ro *Rollout, jobID int64) {
	t := s.begin(ro)
	res := s.actuate(ctx, t, "rollback", ro.def.rollbackAction(), 0)
	if !res.OK() {
		s.failedAction(t, res, func(reason string) {
			r := fmt.Sprintf("rollback failed after %d attempts (%s); %s: finish the rollback by hand", t.ro.attempts, res.Error, ro.Reason)
			t.finish(StateFailed, r)
			t.event(Event{Kind: "failed", Status: StateFailed, Actor: "system", Message: r})
		})
		s.commit(ctx, t, jobID)
		return
	}
	ending := ro.ending
	if ending == "" {
		ending = StateRolledBack
	}
	t.ro.Weight = 0
	t.finish(ending, ro.Reason)
	t.event(Event{Kind: "rolled_back", Status: ending, Actor: "system",
		Message: fmt.Sprintf("rolled back to %s: %s", ro.Stable, ro.Reason)})
	s.commit(ctx, t, jobID)
}

// Pause stops a running rollout where it is (its weight stays).
func (s *Service) Pause(ctx context.Context, id int64, actor, reason string) (*Rollout, error) {
	return s.manual(ctx, id, actor, "pause", reason)
}

// Promote moves a running or paused rollout to its next stage at once,
// skipping what is left of the current stage and its analysis.
func (s *Service) Promote(ctx context.Context, id int64, actor, reason string) (*Rollout, error) {
	return s.manual(ctx, id, actor, "promote", reason)
}

// Abort rolls a running or paused rollout back.
func (s *Service) Abort(ctx context.Context, id int64, actor, reason string) (*Rollout, error) {
	return s.manual(ctx, id, actor, "abort", reason)
}

// MaxReason bounds the reason given to promote, pause or abort a rollout,
// in characters (Unicode code points), as the deploy gate's override
// reason is bounded.
const MaxReason = 1000

// manual applies a manual command; a transition finishing at the same
// moment makes it read the rollout again (a few times) and retry.
func (s *Service) manual(ctx context.Context, id int64, actor, op, reason string) (*Rollout, error) {
	// The reason is stored twice (the rollout's reason and its event) and
	// shown on every read of the rollout.
	if n := utf8.RuneCountInString(reason); n > MaxReason {
		return nil, fmt.Errorf("%w: reason is %d characters, longer than %d", ErrBadRequest, n, MaxReason)
	}
	var err error
	for range 5 {
		var ro *Rollout
		if ro, err = s.manualOnce(ctx, id, actor, op, reason); !errors.Is(err, errMoved) {
			return ro, err
		}
	}
	return nil, fmt.Errorf("%w: rollout %d moved on meanwhile; look at it and try again", ErrConflict, id)
}

var errMoved = errors.New("moved on")

func (s *Service) manualOnce(ctx context.Context, id int64, actor, op, reason string) (*Rollout, error) {
	ro, err := getRollout(ctx, s.db, id)
	if err != nil {
		return nil, err
	}
	if Final(ro.State) {
		return nil, fmt.Errorf("%w: rollout %d is %s", ErrConflict, id, ro.State)
	}
	if ro.Phase == phaseGate && op != "abort" {
		return nil, fmt.Errorf("%w: rollout %d is waiting for the deploy gate", ErrConflict, id)
	}
	if ro.Phase == phaseRollback {
		return nil, fmt.Errorf("%w: rollout %d is rolling back", ErrConflict, id)
	}
	by := op + "d by " + actor
	if op == "abort" {
		by = "aborted by " + actor
	}
	if reason != "" {
		by += ": " + reason
	}
	t := s.begin(ro)
	switch op {
	case "pause":
		if ro.State == StatePaused {
			return nil, fmt.Errorf("%w: rollout %d is already paused", ErrConflict, id)
		}
		t.ro.State, t.ro.Reason, t.next = StatePaused, by, nil
		t.event(Event{Kind: "paused", Status: StatePaused, Actor: actor, Message: by})
	case "promote":
		t.ro.Reason = ""
		t.event(Event{Kind: "promoted", Status: "promoted", Actor: actor, Message: fmt.Sprintf("stage %s %s", s.stageName(ro), by)})
		t.enter(ro.Stage + 1)
		if !Final(t.ro.State) {
			t.event(Event{Kind: "stage", Status: "entered", Actor: "system", Message: fmt.Sprintf("stage %s entered", s.stageName(t.ro))})
		}
	case "abort":
		if ro.Phase == phaseGate {
			t.finish(StateAborted, by)
		} else {
			t.rollback(StateAborted, by)
		}
		t.event(Event{Kind: "aborted", Status: "rollback", Actor: actor, Message: by})
	}
	if !s.commit(ctx, t, 0) {
		return nil, errMoved
	}
	s.logger.Info("Rollout "+op, "rollout", id, "actor", actor, "reason", reason)
	return s.Get(ctx, id)
}
