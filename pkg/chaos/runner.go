package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/english"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/rulegen"
	"github.com/rootuip/sre/pkg/targetlock"
)

// The steps of the workflow, in order.
var Steps = []string{"plan", "validate", "execute", "monitor", "analyze", "rollback", "report"}

// Plan is what a run would do.
type Plan struct {
	Experiment string         `json:"experiment"`
	Target     Target         `json:"target"`
	Duration   string         `json:"duration"`
	Faults     []PlannedFault `json:"faults"`
	Probes     []string       `json:"probes"`
	Abort      []string       `json:"abort_conditions"`
	Rollback   []string       `json:"rollback"`
	// Refusal lists why the experiment would be refused now (empty: allowed).
	Refusal []string `json:"refusal"`
}

// PlannedFault is one fault of a plan.
type PlannedFault struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Driver      string `json:"driver"`
	Description string `json:"description"`
}

func describe(f Fault) string {
	switch f.Type {
	case FaultLatency:
		return fmt.Sprintf("add %v (+-%v) on proxy %s", f.Latency, f.Jitter, f.Proxy)
	case FaultTimeout:
		return fmt.Sprintf("stall connections, close after %v, on proxy %s", f.Timeout, f.Proxy)
	case FaultReset:
		return fmt.Sprintf("reset %v%% of connections on proxy %s", f.Percent, f.Proxy)
	case FaultBandwidth:
		return fmt.Sprintf("limit to %d KB/s on proxy %s", f.RateKBps, f.Proxy)
	case FaultPartition:
		return fmt.Sprintf("cut proxy %s", f.Proxy)
	case FaultHTTPDelay:
		return fmt.Sprintf("delay %v%% of requests to %v by %v on proxy %s", f.Percent, pathsOrAll(f.Paths), f.Delay, f.Proxy)
	case FaultHTTPError:
		return fmt.Sprintf("answer %v%% of requests to %v with %d on proxy %s", f.Percent, pathsOrAll(f.Paths), f.Status, f.Proxy)
	case FaultProcessStop:
		if f.Driver == DriverChaosMesh {
			return "kill one pod"
		}
		return "stop the process of " + f.PIDFile + " (SIGSTOP, SIGCONT at rollback)"
	case FaultCPUStress:
		return fmt.Sprintf("%s at %d%% CPU", english.Count(f.Workers, "worker", "workers"), f.CPUPercent)
	case FaultMemoryStress:
		return "allocate up to " + f.Size
	case FaultDiskFill:
		return "fill " + f.Path + " with up to " + f.Size
	}
	return f.Type
}

func pathsOrAll(p []string) string {
	if len(p) == 0 {
		return "all paths"
	}
	return strings.Join(p, ", ")
}

// Plan returns what a run of e would do and whether it would be refused now.
func (s *Service) Plan(ctx context.Context, e *Experiment) (*Plan, error) {
	p := &Plan{Experiment: e.Name, Target: e.Target, Duration: e.Duration.String(), Refusal: []string{}}
	for _, f := range e.Faults {
		p.Faults = append(p.Faults, PlannedFault{f.Name, f.Type, f.Driver, describe(f)})
	}
	for _, pr := range e.Hypothesis.SteadyState {
		p.Probes = append(p.Probes, pr.Name)
	}
	p.Abort = s.abortNames(e)
	for _, r := range e.Rollback {
		p.Rollback = append(p.Rollback, r.Name+": "+strings.Join(r.Command, " "))
	}
	_, err := s.validate(ctx, e)
	var ref *Refusal
	if errors.As(err, &ref) {
		p.Refusal = ref.Reasons
	} else if err != nil {
		return nil, err
	}
	return p, nil
}

func (s *Service) abortNames(e *Experiment) []string {
	var out []string
	if *e.Abort.BurnRate {
		out = append(out, "SLO fast burn above its page threshold")
	}
	out = append(out, fmt.Sprintf("error rate above %v%%", e.Abort.MaxErrorRate*100))
	for _, c := range e.Abort.PromQL {
		out = append(out, "promql "+c.Name)
	}
	if *e.Abort.CriticalIncident {
		out = append(out, "open critical incident on "+e.Target.Service)
	}
	if e.MaxBudgetShare > 0 {
		out = append(out, fmt.Sprintf("%v%% of the remaining error budget spent", e.MaxBudgetShare*100))
	}
	return append(out, "manual stop (API, CLI, SIGTERM)")
}

// validate runs the safety checks; it returns the SLOs of the target.
func (s *Service) validate(ctx context.Context, e *Experiment) ([]SLOInfo, error) {
	var slos []SLOInfo
	var reasons []string
	if s.o.Budgets != nil {
		var err error
		slos, err = s.budgetSLOs(ctx, e.Target.Service)
		if err != nil {
			reasons = append(reasons, "cannot read the error budgets of "+e.Target.Service+": "+err.Error())
		}
	}
	bs := make([]BudgetState, len(slos))
	for i, x := range slos {
		bs[i] = x.BudgetState
	}
	err := CheckSafety(s.config().Safety, e, bs, s.o.Clock.Now())
	var ref *Refusal
	if errors.As(err, &ref) {
		reasons = append(reasons, ref.Reasons...)
	}
	proxies := map[string]string{}
	for _, p := range s.config().Proxies {
		proxies[p.Name] = p.Kind
	}
	for _, f := range e.Faults {
		if _, ok := s.o.Drivers[f.Driver]; !ok {
			reasons = append(reasons, fmt.Sprintf("fault %s: driver %q is not available in this sred", f.Name, f.Driver))
		}
		want := map[string]string{DriverToxiproxy: "tcp", DriverHTTPProxy: "http"}[f.Driver]
		if want != "" && proxies[f.Proxy] != want {
			reasons = append(reasons, fmt.Sprintf("fault %s: no %s proxy %q in chaos.proxies", f.Name, want, f.Proxy))
		} else if b, ok := s.o.Drivers[f.Driver].(ProxyBinder); ok && want != "" {
			if err := b.Bind(f.Proxy); err != nil {
				reasons = append(reasons, fmt.Sprintf("fault %s: %v", f.Name, err))
			}
		}
	}
	if len(reasons) > 0 {
		return slos, &Refusal{Reasons: reasons}
	}
	return slos, nil
}

// run is the state of one run in progress.
type run struct {
	info     RunInfo
	e        *Experiment
	slos     []SLOInfo
	seq      int
	before   Measurement
	during   Measurement
	after    Measurement
	budget0  map[string]float64
	probeBad []string
	aborted  string
	faults   []FaultRecord
	errs     []string
	// window is the maintenance window of expectAlerts (0: none);
	// tagged, the incidents already noted as expected.
	window int64
	tagged map[string]bool
	// full, the incidents that refused a note as having the most they can
	// have (incident.ErrFull): not tried again this run, listed in its
	// report as opened during it but not noted.
	full map[string]bool
	// locks are the targetlock keys the run holds (its target), renewed
	// with its lease until the rollback ends and released then.
	locks []string
	// noScore says why the run has no resilience score ("": it has one).
	noScore string
}

// Start validates e and, unless refused, runs it in the background. A
// refusal is recorded and returned as a *Refusal. An experiment with an
// approval gate is checked for safety, then waits in the background (status
// waiting_approval) for Approve before the full validation and the faults.
func (s *Service) Start(ctx context.Context, e *Experiment, actor string) (*RunInfo, error) {
	now := s.o.Clock.Now()
	lease := time.Duration(s.config().Lease)
	r := &run{e: e, info: RunInfo{ID: "chx-" + now.UTC().Format("20060102-150405") + "-" + randomID(), Experiment: e.Name,
		Service: e.Target.Service, Environment: e.Target.Environment, Actor: actor, Status: StatusRunning, Started: now.UTC()}}
	if e.Approval != nil {
		r.info.Status = StatusWaiting
	}
	spec, _ := json.Marshal(e)
	if err := s.j.insertRun(ctx, &r.info, spec, s.o.Owner, now.Add(lease)); err != nil {
		return nil, err
	}
	// 1. plan
	plan, err := s.Plan(ctx, e)
	if err != nil {
		return nil, err
	}
	pj, _ := json.Marshal(plan.Faults)
	s.step(ctx, r, "plan", func() (string, error) { return string(pj), nil })
	if e.Approval != nil {
		// What no approval can make safe is refused at once.
		err := s.step(ctx, r, "validate", func() (string, error) {
			if _, err := s.validate(ctx, e); err != nil {
				return "", err
			}
			return fmt.Sprintf("safety checks passed; waiting for the approval of a %s (at most %v); "+
				"the steady state and the target lock are checked once approved", e.Approval.Role, e.Approval.Timeout), nil
		})
		if err != nil {
			return s.endEarly(ctx, r, err)
		}
		s.launch(ctx, r, func(ctx context.Context) {
			if err := s.awaitApproval(ctx, r); err != nil {
				_, _ = s.endEarly(ctx, r, err)
				return
			}
			r.info.Status = StatusRunning
			if err := s.j.setStatus(context.WithoutCancel(ctx), r.info.ID, StatusRunning); err != nil {
				_, _ = s.endEarly(ctx, r, err)
				return
			}
			if err := s.validateStep(ctx, r); err != nil {
				_, _ = s.endEarly(ctx, r, err)
				return
			}
			s.execute(ctx, r)
		})
		return &r.info, nil
	}
	// 2. validate: safety, budgets, steady state before, target lock.
	if err := s.validateStep(ctx, r); err != nil {
		return s.endEarly(ctx, r, err)
	}
	s.launch(ctx, r, func(ctx context.Context) { s.execute(ctx, r) })
	return &r.info, nil
}

// validateStep is the step validate: safety checks, budgets, the steady
// state before, the target lock and the "before" measurement.
func (s *Service) validateStep(ctx context.Context, r *run) error {
	e := r.e
	return s.step(ctx, r, "validate", func() (string, error) {
		slos, err := s.validate(ctx, e)
		r.slos = slos
		if err != nil {
			return "", err
		}
		if bad := s.probe(ctx, e); len(bad) > 0 {
			return "", &Refusal{Reasons: []string{"steady state does not hold before the experiment: " + strings.Join(bad, "; ")}}
		}
		now := s.o.Clock.Now()
		if err := s.locks.Acquire(ctx, e.Target.LockKey(), "chaos", r.info.ID, now, time.Duration(s.config().Lease)); err != nil {
			var held *targetlock.HeldError
			if errors.As(err, &held) {
				return "", &Refusal{Reasons: []string{err.Error()}}
			}
			return "", err
		}
		r.locks = append(r.locks, e.Target.LockKey())
		// The real resources the faults act on are locked too: two runs on
		// different targets must not stop the same process or configure the
		// same proxy.
		for _, k := range resourceLocks(e) {
			if err := s.locks.Acquire(ctx, k, "chaos", r.info.ID, now, time.Duration(s.config().Lease)); err != nil {
				s.releaseLocks(context.WithoutCancel(ctx), r)
				var held *targetlock.HeldError
				if errors.As(err, &held) {
					return "", &Refusal{Reasons: []string{"fault resource " + err.Error()}}
				}
				return "", err
			}
			r.locks = append(r.locks, k)
		}
		r.before = s.measure(ctx, e)
		r.budget0 = map[string]float64{}
		for _, x := range slos {
			if x.Remaining != nil {
				r.budget0[x.SLO] = *x.Remaining
			}
		}
		return "safety checks passed; steady state holds; locked " + strings.Join(r.locks, ", "), nil
	})
}

// endEarly closes a run that ended before any fault: refused (a *Refusal),
// aborted (a manual stop while waiting) or failed.
func (s *Service) endEarly(ctx context.Context, r *run, err error) (*RunInfo, error) {
	status := StatusFailed
	var ref *Refusal
	var stop *stopCause
	switch {
	case errors.As(err, &ref):
		status = StatusRefused
	case errors.As(err, &stop):
		status = StatusAborted
	}
	r.info.Status = status
	// A run another replica took over is closed and counted by that replica.
	if ferr := s.j.finishRun(context.WithoutCancel(ctx), r.info.ID, s.o.Owner, status, err.Error(), nil, "", "", s.o.Clock.Now()); !errors.Is(ferr, ErrRunLost) {
		s.m.experiments.WithLabelValues(status).Inc()
	}
	return &r.info, err
}

// launch runs fn in the background as the runner of r: Stop and Halt
// cancel its context, Wait waits for it.
func (s *Service) launch(ctx context.Context, r *run, fn func(context.Context)) {
	runCtx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	s.mu.Lock()
	s.running[r.info.ID] = cancel
	s.wake[r.info.ID] = make(chan struct{}, 1)
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.running, r.info.ID)
			delete(s.wake, r.info.ID)
			s.mu.Unlock()
			cancel(nil)
		}()
		fn(runCtx)
	}()
}

// awaitApproval is the step approval: it waits until the run is approved
// (Approve, by any replica), renewing the run's lease every abort interval;
// it fails with a *Refusal when the timeout passes and with the stop cause
// when the run is stopped.
func (s *Service) awaitApproval(ctx context.Context, r *run) error {
	a := r.e.Approval
	s.mu.Lock()
	wake := s.wake[r.info.ID]
	s.mu.Unlock()
	return s.step(ctx, r, "approval", func() (string, error) {
		bg := context.WithoutCancel(ctx)
		lease := time.Duration(s.config().Lease)
		deadline := s.o.Clock.Now().Add(time.Duration(a.Timeout))
		for {
			now := s.o.Clock.Now()
			stopBy, err := s.j.renewRun(bg, r.info.ID, s.o.Owner, now.Add(lease))
			if err != nil {
				return "", err
			}
			if stopBy != "" {
				return "", &stopCause{text: stopBy}
			}
			ap, err := s.j.approval(bg, r.info.ID)
			if err != nil {
				return "", err
			}
			if ap != nil {
				r.info.Approval = ap
				d := "approved by " + ap.By + " (" + ap.Role + ")"
				if ap.Comment != "" {
					d += ": " + ap.Comment
				}
				return d, nil
			}
			if !now.Before(deadline) {
				return "", &Refusal{Reasons: []string{fmt.Sprintf("not approved within %v", a.Timeout)}}
			}
			select {
			case <-ctx.Done():
				var stop *stopCause
				if errors.As(context.Cause(ctx), &stop) {
					return "", stop
				}
				return "", &stopCause{text: context.Cause(ctx).Error()}
			case <-wake:
			case <-s.o.Clock.After(min(time.Duration(r.e.Abort.Interval), lease/2, deadline.Sub(now))):
			}
		}
	})
}

// Approve approves a run waiting for approval. The role is the approver's:
// it must allow the experiment's approval.role.
func (s *Service) Approve(ctx context.Context, id, by string, role auth.Role, comment string) (*RunInfo, error) {
	e, err := s.j.spec(ctx, id)
	if err != nil {
		return nil, err
	}
	if e.Approval == nil {
		return nil, fmt.Errorf("experiment %s of run %s needs no approval: %w", e.Name, id, ErrConflict)
	}
	if need, _ := auth.ParseRole(e.Approval.Role); !role.Allows(need) {
		return nil, fmt.Errorf("role %s may not approve run %s (experiment %s needs %s): %w", role, id, e.Name, e.Approval.Role, ErrForbidden)
	}
	if err := s.j.approve(ctx, id, ApprovalRecord{By: by, Role: role.String(), Comment: comment, At: s.o.Clock.Now().UTC()}); err != nil {
		return nil, err
	}
	s.logger.Info("chaos run approved", "run", id, "experiment", e.Name, "by", by)
	if s.o.Bus != nil {
		s.o.Bus.Publish(events.Event{Type: "chaos.approved", Time: s.o.Clock.Now().UTC(), Service: e.Target.Service,
			Data: map[string]any{"run": id, "experiment": e.Name, "by": by, "comment": comment}})
	}
	s.mu.Lock()
	if ch, ok := s.wake[id]; ok {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
	return s.Get(ctx, id)
}

// step records one step around fn.
func (s *Service) step(ctx context.Context, r *run, name string, fn func() (string, error)) error {
	bg := context.WithoutCancel(ctx)
	r.seq++
	seq := r.seq
	if err := s.j.startStep(bg, r.info.ID, seq, name, s.o.Clock.Now()); err != nil {
		s.logger.Error("record chaos step", "run", r.info.ID, "step", name, "err", err)
	}
	detail, err := fn()
	status := "ok"
	if err != nil {
		status, detail = "failed", err.Error()
	}
	if err := s.j.finishStep(bg, r.info.ID, seq, status, detail, s.o.Clock.Now()); err != nil {
		s.logger.Error("record chaos step", "run", r.info.ID, "step", name, "err", err)
	}
	return err
}

func (s *Service) execute(ctx context.Context, r *run) {
	e := r.e
	bg := context.WithoutCancel(ctx)
	lease := time.Duration(s.config().Lease)
	// 3. execute: journal each fault before it takes effect.
	injectErr := s.step(ctx, r, "execute", func() (string, error) {
		expected, err := s.expectAlerts(bg, r)
		if err != nil {
			return "", err
		}
		for i, f := range e.Faults {
			if err := context.Cause(ctx); ctx.Err() != nil {
				return "", fmt.Errorf("stopped before injecting %s: %w", f.Name, err)
			}
			now := s.o.Clock.Now()
			rec := FaultRecord{ID: r.info.ID + "-" + f.Name, RunID: r.info.ID, Name: f.Name, Driver: f.Driver, Fault: f,
				Status: FaultPending, Owner: s.o.Owner, Lease: now.Add(lease), Created: now}
			if err := s.j.insertFault(bg, &rec); err != nil {
				return "", err
			}
			r.faults = append(r.faults, rec)
			state, err := s.o.Drivers[f.Driver].Inject(WithInstances(WithLifetime(ctx, faultLifetime(e, i, lease)), e.Target.Instances), rec.ID, f)
			r.faults[len(r.faults)-1].State = state
			if err != nil {
				return "", fmt.Errorf("inject %s: %w", f.Name, err)
			}
			if err := s.j.setFault(bg, rec.ID, FaultActive, state, "", nil); err != nil {
				return "", err
			}
			s.m.faultInjected(rec.ID, e.Name, e.Target.Service, f)
		}
		return english.Count(len(e.Faults), "fault", "faults") + " active" + expected, nil
	})
	// 4. monitor
	if injectErr == nil {
		_ = s.step(ctx, r, "monitor", func() (string, error) { return s.monitor(ctx, r) })
	} else {
		r.aborted = injectErr.Error()
		// Nothing was measured under the faults: a score would only
		// compare the target with itself and read 100.
		r.noScore = "the faults were not all injected, nothing was measured under them: " + injectErr.Error()
	}
	// 5. analyze
	held := len(r.probeBad) == 0 && r.aborted == "" && injectErr == nil
	_ = s.step(bg, r, "analyze", func() (string, error) {
		if held {
			return "hypothesis held: " + e.Hypothesis.Description, nil
		}
		if len(r.probeBad) > 0 {
			return "hypothesis did not hold: " + strings.Join(uniq(r.probeBad), "; "), nil
		}
		return "hypothesis not evaluated to the end: " + r.aborted, nil
	})
	// 6. rollback: always, every fault, in reverse order; the leases and
	// the locks are renewed until it ends, so that no other run takes the
	// target (nor another replica the faults) while it rolls back.
	s.renewDuring(bg, r, func() { s.rollback(bg, r) })
	s.releaseLocks(bg, r)
	// 7. report
	status := StatusSucceeded
	switch {
	case r.aborted != "":
		status = StatusAborted
	case !held || len(r.errs) > 0:
		status = StatusFailed
	}
	r.info.Status = status
	// The report waits one abort interval: the run's lease is renewed
	// meanwhile, or another sred would close the run as abandoned.
	s.renewDuring(bg, r, func() {
		_ = s.step(bg, r, "report", func() (string, error) { return s.report(bg, r, held) })
	})
	if r.window != 0 {
		if err := s.o.Alerts.Unexpect(bg, r.window); err != nil {
			s.logger.Warn("end the maintenance window of a chaos run", "run", r.info.ID, "window", r.window, "err", err)
		}
	}
	if s.j.holds(bg, r.info.ID, s.o.Owner) == nil { // else counted by the replica that took it over
		s.m.experiments.WithLabelValues(status).Inc()
	}
}

// faultLifetime bounds fault i of e for a driver that can end it by itself
// (stress-ng's --timeout) if its runner dies and no sred rolls it back: the
// run's duration, counted from the end of the injections (each later fault
// may take up to 2 minutes: Chaos Mesh's wait for AllInjected is at most 1),
// one abort interval and one lease, so that it never ends before the run's
// rollback while the runner lives.
func faultLifetime(e *Experiment, i int, lease time.Duration) time.Duration {
	later := time.Duration(len(e.Faults)-1-i) * 2 * time.Minute
	return time.Duration(e.Duration) + later + time.Duration(e.Abort.Interval) + lease
}

// rollback is the step rollback: revert every fault in reverse order, then
// run the rollback actions.
func (s *Service) rollback(bg context.Context, r *run) {
	e := r.e
	_ = s.step(bg, r, "rollback", func() (string, error) {
		// A fault another replica took over (its lease expired while this
		// runner was blocked) is that replica's to revert, and so are the
		// rollback actions of a run it took over: this runner leaves them.
		owners := map[string]string{}
		if fs, err := s.j.faults(bg, `WHERE run_id = $1`, r.info.ID); err == nil {
			for _, f := range fs {
				owners[f.ID] = f.Owner
			}
		}
		var errs []error
		var left []string
		reverted := 0
		for i := len(r.faults) - 1; i >= 0; i-- {
			f := r.faults[i]
			if o, ok := owners[f.ID]; ok && o != s.o.Owner {
				left = append(left, f.Name+" (taken over by "+o+")")
				s.m.faultReverted(f.ID) // no longer injected by this replica
				continue
			}
			if err := s.revert(bg, f); err != nil {
				errs = append(errs, err)
			}
			reverted++
		}
		actions := 0
		if lost := s.j.holds(bg, r.info.ID, s.o.Owner); lost != nil {
			left = append(left, "the rollback actions: "+lost.Error())
		} else {
			for _, a := range e.Rollback {
				if err := runRollback(bg, a); err != nil {
					errs = append(errs, err)
				}
			}
			actions = len(e.Rollback)
		}
		if err := errors.Join(errs...); err != nil {
			r.errs = append(r.errs, err.Error())
			return "", err
		}
		d := english.Count(reverted, "fault", "faults") + " reverted, " + english.Count(actions, "rollback action", "rollback actions") + " run"
		if len(left) > 0 {
			d += "; left to the replica that took them over: " + strings.Join(left, "; ")
		}
		return d, nil
	})
}

// renewDuring runs fn, renewing the run's lease, its faults' leases and its
// locks every abort interval (at most half the lease) until fn returns. A
// renewal that fails is logged; fn goes on.
func (s *Service) renewDuring(bg context.Context, r *run, fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	lease := time.Duration(s.config().Lease)
	every := min(time.Duration(r.e.Abort.Interval), lease/2)
	for {
		select {
		case <-done:
			return
		case <-s.o.Clock.After(every):
		}
		if _, err := s.renewLeases(bg, r); err != nil {
			s.logger.Warn("renew the leases of a chaos run rolling back", "run", r.info.ID, "err", err)
		}
	}
}

// renewLeases extends the leases of the run, its faults and its locks; it
// returns the stop request recorded for the run, if any.
func (s *Service) renewLeases(bg context.Context, r *run) (stopBy string, err error) {
	now := s.o.Clock.Now()
	lease := time.Duration(s.config().Lease)
	stopBy, err = s.j.renewRun(bg, r.info.ID, s.o.Owner, now.Add(lease))
	if err != nil {
		return "", err
	}
	for _, k := range r.locks {
		if err := s.locks.Renew(bg, k, r.info.ID, now, lease); err != nil {
			return stopBy, fmt.Errorf("%s: %w", k, err)
		}
	}
	return stopBy, nil
}

// resourceLocks returns the targetlock keys of the resources e's faults act
// on, each once: proxy:<name> (toxiproxy, httpproxy), pidfile:<absolute
// path> and, while the file names a live process, process:<pid>@<start>
// (process: two pid files naming one process are one target),
// chaosmesh:<namespace>/<label selector> (Chaos Mesh).
func resourceLocks(e *Experiment) []string {
	var keys []string
	add := func(k string) {
		if k != "" && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	for _, f := range e.Faults {
		switch {
		case f.Driver == DriverChaosMesh && f.Kubernetes != nil:
			sel := make([]string, 0, len(f.Kubernetes.Labels))
			for l, v := range f.Kubernetes.Labels {
				sel = append(sel, l+"="+v)
			}
			sort.Strings(sel)
			add("chaosmesh:" + f.Kubernetes.Namespace + "/" + strings.Join(sel, ","))
		case f.Proxy != "":
			add("proxy:" + f.Proxy)
		case f.PIDFile != "":
			p, err := filepath.Abs(f.PIDFile)
			if err != nil {
				p = filepath.Clean(f.PIDFile)
			}
			add("pidfile:" + p)
			add(processKey(f.PIDFile))
		}
	}
	return keys
}

// processKey names the process the pid in pidFile belongs to (a thread ID
// stands for its process, as for the process driver), "process:<pid>@<start>"
// with its start time (field 22 of /proc/<pid>/stat, clock ticks since boot),
// so that a pid reused by another process is another key; "" when the file
// names no live process (the driver refuses such a fault).
func processKey(pidFile string) string {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return ""
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return ""
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ""
	}
	tgid := 0
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "Tgid:"); ok {
			tgid, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if tgid <= 0 {
		return ""
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", tgid))
	if err != nil {
		return ""
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields from 3 on follow the last ')'.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return ""
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 20 {
		return ""
	}
	return fmt.Sprintf("process:%d@%s", tgid, fields[19])
}

// releaseLocks releases the run's locks.
func (s *Service) releaseLocks(bg context.Context, r *run) {
	for _, k := range r.locks {
		if err := s.locks.Release(bg, k, r.info.ID); err != nil {
			s.logger.Warn("release a lock of a chaos run", "run", r.info.ID, "lock", k, "err", err)
		}
	}
	r.locks = nil
}

// monitor waits for the duration, checking the abort conditions every
// interval and renewing the leases every interval, at most half the lease:
// an abort interval longer than the lease must not let the faults' leases
// expire, or any sred (this one too) would roll them back while the run
// goes on.
func (s *Service) monitor(ctx context.Context, r *run) (string, error) {
	e := r.e
	start := s.o.Clock.Now()
	end := start.Add(time.Duration(e.Duration))
	interval := time.Duration(e.Abort.Interval)
	renewEvery := min(interval, time.Duration(s.config().Lease)/2)
	next := start.Add(interval) // the next abort check
	checks := 0
	for {
		now := s.o.Clock.Now()
		if !now.Before(end) {
			return fmt.Sprintf("ran for %v; %d abort checks passed", e.Duration, checks), nil
		}
		wait := min(next.Sub(now), end.Sub(now), renewEvery)
		select {
		case <-ctx.Done():
			r.aborted = "manual stop: " + context.Cause(ctx).Error()
			return "", errors.New(r.aborted)
		case <-s.o.Clock.After(wait):
		}
		if ctx.Err() != nil {
			r.aborted = "manual stop: " + context.Cause(ctx).Error()
			return "", errors.New(r.aborted)
		}
		bg := context.WithoutCancel(ctx)
		now = s.o.Clock.Now()
		stopBy, err := s.renewLeases(bg, r)
		if err != nil {
			r.aborted = "cannot renew the leases: " + err.Error()
			return "", errors.New(r.aborted)
		}
		if stopBy != "" {
			r.aborted = "manual stop: " + stopBy
			return "", errors.New(r.aborted)
		}
		// A runner blocked longer than the lease (a Prometheus that does
		// not answer) finds its faults rolled back by the recovery of
		// expired leases: the run no longer injects anything.
		if gone, err := s.j.faults(bg, `WHERE run_id = $1 AND status NOT IN ('pending', 'active')`, r.info.ID); err != nil {
			r.aborted = "cannot read the fault journal: " + err.Error()
			return "", errors.New(r.aborted)
		} else if len(gone) > 0 {
			var names []string
			for _, f := range gone {
				names = append(names, fmt.Sprintf("%s (%s by %s)", f.Name, f.Status, f.Owner))
			}
			r.aborted = "faults rolled back while the run went on, their lease expired: " + strings.Join(names, ", ")
			return "", errors.New(r.aborted)
		}
		if now.Before(next) && now.Before(end) {
			continue // a renewal only
		}
		next = now.Add(interval)
		// Measured first: the check that aborts the run is the one that
		// saw the target suffer, and the score must count it.
		r.during = r.during.worst(s.measure(ctx, e))
		if reason := s.checkAbort(ctx, r); reason != "" {
			r.aborted = reason
			return "", errors.New("aborted: " + reason)
		}
		s.tagExpected(ctx, r)
		bad := s.probe(ctx, e)
		r.probeBad = append(r.probeBad, bad...)
		if len(bad) > 0 && e.Abort.SteadyState {
			r.aborted = "steady state deviated: " + strings.Join(bad, "; ")
			return "", errors.New("aborted: " + r.aborted)
		}
		checks++
	}
}

// expectAlerts opens the maintenance window of an experiment with
// expectAlerts: incidents of the target (service, and environment when the
// incident has one) page nobody until the planned end of the run (its
// duration and the report's interval); the window closes with the run.
// Pages deferred by it fire at that planned end if the incident is still
// open. It returns a note for the execute step.
func (s *Service) expectAlerts(ctx context.Context, r *run) (string, error) {
	e := r.e
	if !e.ExpectAlerts || s.o.Alerts == nil {
		return "", nil
	}
	now := s.o.Clock.Now()
	end := now.Add(time.Duration(e.Duration) + time.Duration(e.Abort.Interval))
	matchers := []string{
		labels.MustNewMatcher(labels.MatchEqual, "service", e.Target.Service).String(),
		labels.MustNewMatcher(labels.MatchRegexp, "environment", regexp.QuoteMeta(e.Target.Environment)+"|").String(),
	}
	id, err := s.o.Alerts.Expect(ctx, ExpectedNote(r.info.ID), matchers, now, end, "chaos")
	if err != nil {
		return "", fmt.Errorf("expectAlerts: cannot open a maintenance window, nothing injected: %w", err)
	}
	r.window = id
	return fmt.Sprintf("; alerts of %s are expected: maintenance window %d until %s", e.Target.Key(), id, end.UTC().Format(time.RFC3339)), nil
}

// ExpectedNote is the name of the maintenance window of a run with
// expectAlerts and the start of the timeline note of its incidents.
func ExpectedNote(runID string) string { return "expected: chaos run " + runID }

// tagExpected notes on each incident of the target opened since the start
// of a run with expectAlerts that it is expected.
func (s *Service) tagExpected(ctx context.Context, r *run) {
	e := r.e
	if !e.ExpectAlerts || s.o.Incidents == nil {
		return
	}
	ids, err := s.o.Incidents.OpenedSince(ctx, e.Target.Service, r.info.Started)
	if err != nil {
		s.logger.Warn("read incidents opened during a chaos run", "run", r.info.ID, "err", err)
		return
	}
	if r.tagged == nil {
		r.tagged = map[string]bool{}
	}
	for _, id := range ids {
		if r.tagged[id] || r.full[id] {
			continue
		}
		note := fmt.Sprintf("%s (experiment %s on %s): not paged while the run lasts.", ExpectedNote(r.info.ID), e.Name, e.Target.Key())
		if s.o.Alerts == nil {
			note = fmt.Sprintf("%s (experiment %s on %s).", ExpectedNote(r.info.ID), e.Name, e.Target.Key())
		}
		if err := s.o.Incidents.Tag(ctx, id, note); err != nil {
			s.noteRefused(r, id, err)
			continue
		}
		r.tagged[id] = true
	}
}

// noteRefused logs a note the incident id refused. An incident with the
// most notes it can have (incident.ErrFull) refuses every later one as
// well: it is remembered in r.full, logged once and not tried again this
// run; another error is tried again at the next check.
func (s *Service) noteRefused(r *run, id string, err error) {
	if !errors.Is(err, incident.ErrFull) {
		s.logger.Warn("note a chaos run on an incident", "run", r.info.ID, "incident", id, "err", err)
		return
	}
	if r.full == nil {
		r.full = map[string]bool{}
	}
	r.full[id] = true
	s.logger.Warn("incident has the most notes it can have: this chaos run is not noted on it", "run", r.info.ID, "incident", id, "err", err)
}

// checkAbort evaluates the abort conditions; it returns the reason to abort or "".
func (s *Service) checkAbort(ctx context.Context, r *run) string {
	e := r.e
	svc := e.Target.Service
	if s.o.Prom == nil {
		return "no Prometheus configured to evaluate the abort conditions"
	}
	if *e.Abort.BurnRate {
		for _, x := range r.slos {
			if x.FastFactor <= 0 {
				continue
			}
			sel := `{` + labels.MustNewMatcher(labels.MatchEqual, rulegen.LabelService, svc).String() + `,` +
				labels.MustNewMatcher(labels.MatchEqual, rulegen.LabelSLO, x.SLO).String() + `}`
			q := fmt.Sprintf(`(%s%s > %g) and (%s%s > %g)`, rulegen.BurnRateRecord(x.FastLong), sel, x.FastFactor,
				rulegen.BurnRateRecord(x.FastShort), sel, x.FastFactor)
			v, err := s.instant(ctx, q)
			if err != nil {
				return "cannot evaluate the burn rate of SLO " + x.SLO + ": " + err.Error()
			}
			if len(v) > 0 {
				return fmt.Sprintf("SLO %s burns its error budget at %.1fx over %s (page threshold %gx)",
					x.SLO, float64(v[0].Value), x.FastLong, x.FastFactor)
			}
		}
	}
	er, err := s.errorRate(ctx, e)
	if err != nil {
		return "cannot evaluate the error rate: " + err.Error()
	}
	if er != nil && *er > e.Abort.MaxErrorRate {
		return fmt.Sprintf("error rate %.2f%% above %.2f%%", *er*100, e.Abort.MaxErrorRate*100)
	}
	for _, c := range e.Abort.PromQL {
		v, err := s.instant(ctx, c.Expr)
		if err != nil {
			return "cannot evaluate abort condition " + c.Name + ": " + err.Error()
		}
		if len(v) > 0 {
			return "abort condition " + c.Name + " is true"
		}
	}
	if *e.Abort.CriticalIncident && s.o.Incidents != nil {
		ids, err := s.o.Incidents.OpenCritical(ctx, svc)
		if err != nil {
			return "cannot read incidents: " + err.Error()
		}
		if len(ids) > 0 {
			return "critical incident " + strings.Join(ids, ", ") + " is open on " + svc
		}
	}
	if e.MaxBudgetShare > 0 && s.o.Budgets != nil {
		slos, err := s.budgetSLOs(ctx, svc)
		if err != nil {
			return "cannot read the error budgets: " + err.Error()
		}
		for _, x := range slos {
			r0, ok := r.budget0[x.SLO]
			if !ok || x.Remaining == nil || r0 <= 0 {
				continue
			}
			if spent := (r0 - *x.Remaining) / r0; spent >= e.MaxBudgetShare {
				return fmt.Sprintf("experiment spent %.1f%% of the remaining error budget of SLO %s (cap %.1f%%)",
					spent*100, x.SLO, e.MaxBudgetShare*100)
			}
		}
	}
	return ""
}

func defaultErrorRateQuery(svc string) string {
	return `max(slo:sli_error:ratio_rate5m{` + labels.MustNewMatcher(labels.MatchEqual, rulegen.LabelService, svc).String() + `})`
}

func (s *Service) errorRate(ctx context.Context, e *Experiment) (*float64, error) {
	q := e.Abort.ErrorRateQuery
	if q == "" {
		q = defaultErrorRateQuery(e.Target.Service)
	}
	return s.scalar(ctx, q)
}

func (s *Service) scalar(ctx context.Context, q string) (*float64, error) {
	if s.o.Prom == nil {
		return nil, errors.New("no Prometheus configured")
	}
	v, err := s.instant(ctx, q)
	if err != nil {
		return nil, err
	}
	if len(v) == 0 || math.IsNaN(float64(v[0].Value)) {
		return nil, nil
	}
	f := float64(v[0].Value)
	return &f, nil
}

// instant runs a PromQL query bounded by chaos.query_timeout on the
// runner's clock: a Prometheus that accepts the query and never answers
// fails it (an abort check then aborts the run) instead of holding the run
// "running" with its faults in place.
func (s *Service) instant(ctx context.Context, q string) (model.Vector, error) {
	return bounded(s, ctx, "Prometheus", func(ctx context.Context) (model.Vector, error) {
		return s.o.Prom.Instant(ctx, q, time.Time{})
	})
}

// budgetSLOs reads the SLOs and error budgets of service, bounded by
// chaos.query_timeout like every query of a run: the budget service's own
// bound (slos.query_timeout) may be longer, and a Prometheus that never
// answers must not hold the run.
func (s *Service) budgetSLOs(ctx context.Context, service string) ([]SLOInfo, error) {
	return bounded(s, ctx, "the error budgets (Prometheus)", func(ctx context.Context) ([]SLOInfo, error) {
		return s.o.Budgets.SLOs(ctx, service, s.o.Clock.Now())
	})
}

// bounded runs fn bounded by chaos.query_timeout on the runner's clock; fn's
// context is cancelled when the bound passes, and what names the source in
// the error.
func bounded[T any](s *Service, ctx context.Context, what string, fn func(context.Context) (T, error)) (T, error) {
	timeout := time.Duration(s.config().QueryTimeout)
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	timer, stop := clock.Bound(s.o.Clock, timeout)
	defer stop()
	done := make(chan result, 1)
	go func() {
		v, err := fn(qctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-timer:
		var zero T
		return zero, fmt.Errorf("no answer from %s within chaos.query_timeout (%v)", what, timeout)
	}
}

// probe evaluates the steady-state probes; it returns the failures.
func (s *Service) probe(ctx context.Context, e *Experiment) []string {
	var bad []string
	for _, p := range e.Hypothesis.SteadyState {
		if p.PromQL != "" {
			if s.o.Prom == nil {
				bad = append(bad, p.Name+": no Prometheus configured")
				continue
			}
			v, err := s.instant(ctx, p.PromQL)
			if err != nil {
				bad = append(bad, p.Name+": "+err.Error())
			} else if len(v) == 0 {
				bad = append(bad, p.Name+": condition is false")
			}
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, time.Duration(p.HTTP.Timeout))
		req, _ := http.NewRequestWithContext(pctx, http.MethodGet, p.HTTP.URL, nil)
		resp, err := s.http.Do(req)
		cancel()
		if err != nil {
			bad = append(bad, p.Name+": "+err.Error())
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != p.HTTP.ExpectStatus {
			bad = append(bad, fmt.Sprintf("%s: status %d, want %d", p.Name, resp.StatusCode, p.HTTP.ExpectStatus))
		}
	}
	return bad
}

func uniq(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// publish sends the annotation event of a finished run.
func (s *Service) publish(r *run, score *Score) {
	data := map[string]any{"run": r.info.ID, "experiment": r.e.Name, "status": r.info.Status,
		"environment": r.e.Target.Environment, "started": r.info.Started, "annotation": true,
		"text": fmt.Sprintf("chaos experiment %s %s", r.e.Name, r.info.Status), "tags": []string{"chaos", r.e.Name}}
	if score != nil {
		data["resilience_score"] = score.Value
	}
	s.o.Bus.Publish(events.Event{Type: "chaos.finished", Time: s.o.Clock.Now().UTC(), Service: r.e.Target.Service, Data: data})
}
