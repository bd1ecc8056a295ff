// Package change records deployments and infrastructure changes, gates
// them through the deploy gate, links them to the incidents that follow
// them and exports the four DORA measures (docs/changes.md).
package change

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/store"
)

// Kind says what changed.
type Kind string

// Kinds of change.
const (
	KindDeploy Kind = "deploy"
	KindConfig Kind = "config"
	KindInfra  Kind = "infra"
)

// Kinds lists the kinds, as the kind label of sre_deployments_total.
var Kinds = []Kind{KindDeploy, KindConfig, KindInfra}

// ParseKind validates a kind name; empty means deploy.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case "":
		return KindDeploy, nil
	case KindDeploy, KindConfig, KindInfra:
		return k, nil
	}
	return "", fmt.Errorf("unknown change kind %s (want deploy, config or infra)", limits.Quote(s))
}

// Outcome is where a change stands.
type Outcome string

// Outcomes of a change. InProgress is the only one that is not final.
const (
	InProgress Outcome = "in_progress"
	Succeeded  Outcome = "succeeded"
	Failed     Outcome = "failed"
	RolledBack Outcome = "rolled_back"
	// Refused: the deploy gate denied the change; it did not ship.
	Refused Outcome = "refused"
)

// Outcomes lists the final outcomes, as the result label of
// sre_deployments_total.
var Outcomes = []Outcome{Succeeded, Failed, RolledBack, Refused}

// ParseOutcome validates an outcome name; empty means succeeded.
func ParseOutcome(s string) (Outcome, error) {
	switch o := Outcome(s); o {
	case "":
		return Succeeded, nil
	case InProgress, Succeeded, Failed, RolledBack, Refused:
		return o, nil
	}
	return "", fmt.Errorf("unknown outcome %s (want in_progress, succeeded, failed, rolled_back or refused)", limits.Quote(s))
}

// Final reports whether the outcome is final (the change is finished).
func (o Outcome) Final() bool { return o != InProgress }

// Sources of changes.
const (
	SourceAPI          = "api"
	SourceRollout      = "rollout"
	SourceArgoRollouts = "argo-rollouts"
	SourceFlagger      = "flagger"
)

// Change is one recorded deployment or configuration or infrastructure
// change of a service.
type Change struct {
	ID      int64  `json:"id"`
	Service string `json:"service"`
	Kind    Kind   `json:"kind"`
	// Source says who recorded it: api (CI, Terraform, Argo CD, Flux,
	// srectl), rollout (the stage runner), argo-rollouts, flagger.
	Source string `json:"source"`
	// Ref identifies the rollout that recorded it across notifications
	// (flagger:<namespace>/<name>); empty for one-shot records.
	Ref string `json:"ref,omitempty"`
	// Key is an idempotency key: recording a change with the key of one
	// recorded before records nothing and returns that one (a CI job that
	// retries). Empty: every record is a new change.
	Key         string     `json:"key,omitempty"`
	Version     string     `json:"version,omitempty"`
	Commit      string     `json:"commit,omitempty"`
	CommitTime  *time.Time `json:"commit_time,omitempty"`
	Description string     `json:"description,omitempty"`
	Actor       string     `json:"actor,omitempty"`
	Outcome     Outcome    `json:"outcome"`
	StartedAt   time.Time  `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	// RolledBackAt is when a change that had failed was rolled back (its
	// outcome is then rolled_back; FinishedAt stays when it failed).
	RolledBackAt *time.Time `json:"rolled_back_at,omitempty"`
	// LeadTime is commit time to finish (seconds), for a change that
	// succeeded with a commit time.
	LeadTime *float64 `json:"lead_time_seconds,omitempty"`
	// Gate is the deploy gate's answer when the change was gated.
	Gate *Gate `json:"gate,omitempty"`
	// Failed is set when the change failed: its outcome is failed or
	// rolled_back, or an incident was linked to it.
	Failed bool `json:"failed"`
	// Incidents are the incidents linked to it (likely caused by it).
	Incidents []Link `json:"incidents,omitempty"`
}

// Gate is the deploy gate's answer recorded with a change.
type Gate struct {
	Decision       string `json:"decision"` // allow | deny | skipped
	State          string `json:"state,omitempty"`
	Reason         string `json:"reason"`
	Override       bool   `json:"override,omitempty"`
	OverrideReason string `json:"override_reason,omitempty"`
}

// Link is an incident linked to a change.
type Link struct {
	ChangeID   int64  `json:"change_id"`
	IncidentID string `json:"incident_id"`
	Service    string `json:"service"`
	// OpenedAt is when the failure started: the incident's first alert
	// (its creation when that is later, a sender's clock ahead). The time
	// to restore runs from it to ResolvedAt.
	OpenedAt   time.Time  `json:"opened_at"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
}

// Errors.
var (
	ErrNotFound   = errors.New("change not found")
	ErrBadRequest = errors.New("bad request")
	// ErrFinished is returned by Finish for a change already finished
	// with another outcome.
	ErrFinished = errors.New("change already finished")
	// ErrKeyReused is returned for an idempotency key that names a
	// change of another service or kind: not a retry.
	ErrKeyReused = errors.New("idempotency key already used")
)

// Options build a Service.
type Options struct {
	DB         *store.DB
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Bus        *events.Bus
	// Clock is the clock (clock.Real by default).
	Clock clock.Clock
	// Gate answers the deploy gate for Submit (nil: changes are not gated).
	Gate Gater
}

// Service records changes and links them to incidents.
type Service struct {
	db     *store.DB
	logger *slog.Logger
	bus    *events.Bus
	clock  clock.Clock

	mu   sync.RWMutex
	cfg  Config
	gate Gater
}

// New returns a Service with the default configuration.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{db: o.DB, logger: o.Logger, bus: o.Bus, clock: clock.OrReal(o.Clock), cfg: DefaultConfig, gate: o.Gate}
	if o.Registerer != nil {
		o.Registerer.MustRegister(&collector{s: s})
	}
	return s
}

// SetConfig installs a configuration (reload).
func (s *Service) SetConfig(c Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg = c
}

// SetGate installs the deploy gate Submit asks.
func (s *Service) SetGate(g Gater) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = g
}

func (s *Service) config() (Config, Gater) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cfg, s.gate
}

// Field limits. A ref or key names a Kubernetes object (a namespace of up
// to 63 bytes, a name of up to 253, a kind, a revision): maxKey.
const (
	maxField = 200
	maxKey   = 512
	maxText  = 4000
)

func (c *Change) normalise(now time.Time) error {
	c.Service = strings.TrimSpace(c.Service)
	if c.Service == "" {
		return fmt.Errorf("%w: service is required", ErrBadRequest)
	}
	// The service is a label of the DORA measures and the gate's key:
	// named as an SLO spec names it.
	if err := limits.ServiceName("service", c.Service); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	k, err := ParseKind(string(c.Kind))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	c.Kind = k
	o, err := ParseOutcome(string(c.Outcome))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	c.Outcome = o
	if c.Source == "" {
		c.Source = SourceAPI
	}
	for name, v := range map[string]string{"service": c.Service, "source": c.Source, "version": c.Version, "commit": c.Commit, "actor": c.Actor} {
		if len(v) > maxField {
			return fmt.Errorf("%w: %s longer than %d bytes", ErrBadRequest, name, maxField)
		}
	}
	for name, v := range map[string]string{"ref": c.Ref, "key": c.Key} {
		if len(v) > maxKey {
			return fmt.Errorf("%w: %s longer than %d bytes", ErrBadRequest, name, maxKey)
		}
	}
	if len(c.Description) > maxText {
		return fmt.Errorf("%w: description longer than %d bytes", ErrBadRequest, maxText)
	}
	for name, v := range map[string]string{"service": c.Service, "source": c.Source, "ref": c.Ref, "key": c.Key, "version": c.Version,
		"commit": c.Commit, "actor": c.Actor, "description": c.Description} {
		if err := limits.Text(name, v); err != nil {
			return fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
	}
	if c.StartedAt.IsZero() {
		c.StartedAt = now
	}
	c.StartedAt = c.StartedAt.UTC().Truncate(time.Millisecond)
	if c.CommitTime != nil {
		t := c.CommitTime.UTC().Truncate(time.Millisecond)
		if unsetTime(t) {
			return fmt.Errorf("%w: commit_time %s is no commit time (%s): leave it out when it is not known", ErrBadRequest, t.Format(time.RFC3339), unsetTimeWhy)
		}
		if t.After(c.StartedAt) {
			return fmt.Errorf("%w: commit_time %s is after the change started (%s)", ErrBadRequest, t.Format(time.RFC3339), c.StartedAt.Format(time.RFC3339))
		}
		c.CommitTime = &t
	}
	if c.Outcome.Final() {
		if c.FinishedAt == nil {
			t := c.StartedAt
			if now.After(t) {
				t = now.UTC().Truncate(time.Millisecond)
			}
			c.FinishedAt = &t
		}
	} else {
		c.FinishedAt = nil
	}
	if c.FinishedAt != nil {
		t := c.FinishedAt.UTC().Truncate(time.Millisecond)
		if t.Before(c.StartedAt) {
			return fmt.Errorf("%w: finished_at is before started_at", ErrBadRequest)
		}
		c.FinishedAt = &t
	}
	c.ID, c.Incidents, c.LeadTime, c.RolledBackAt = 0, nil, nil, nil
	c.Failed = c.Outcome == Failed || c.Outcome == RolledBack
	return nil
}

// unsetTimeWhy says why unsetTime refuses a time.
const unsetTimeWhy = "the Unix epoch or before, as a tool renders a time it does not have"

// unsetTime reports whether a commit time is the Unix epoch or before it:
// Go's zero time (0001-01-01T00:00:00Z) or 1970-01-01T00:00:00Z, what a
// CI template renders for a time it does not have. Its lead time would
// be decades, and the lead time histogram's sum, a counter, would carry
// it for ever.
func unsetTime(t time.Time) bool { return t.UnixMilli() <= 0 }

// Record records a change as it is (no gate): the stage runner, which
// asked the gate itself, records its deployment with Outcome InProgress
// (RecordReserved, with the gate's slot of the yellow quota) and calls
// Finish at the end. An empty Outcome means succeeded, an empty Kind
// deploy, an empty Source "api", a zero StartedAt now.
func (s *Service) Record(ctx context.Context, c Change) (Change, error) {
	out, _, err := s.record(ctx, c, 0)
	return out, err
}

// RecordReserved is Record for a change the deploy gate allowed with a
// slot of the yellow quota (budget.GateRequest.Reserve, Decision.QuotaSlot;
// 0: none): recording the change consumes the slot in the transaction that
// inserts it, so that the change counts in the quota once, before its
// record and after it. The stage runner records its deployment with the
// slot its gate step took.
func (s *Service) RecordReserved(ctx context.Context, c Change, slot int64) (Change, error) {
	out, _, err := s.record(ctx, c, slot)
	return out, err
}

// record is Record; existed reports that c.Key named a change recorded
// before, which it returns. slot, when not 0, is the slot of the yellow
// quota the gate took for c (ReserveChange): it is consumed in the
// transaction that inserts c (also when c.Key names a change recorded
// before, which counts already).
func (s *Service) record(ctx context.Context, c Change, slot int64) (Change, bool, error) {
	if err := c.normalise(s.clock.Now()); err != nil {
		return Change{}, false, err
	}
	var existed bool
	want := c
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if existed, err = insert(ctx, tx, &c); err != nil {
			return err
		}
		return consumeSlot(ctx, tx, slot)
	})
	if err != nil {
		return Change{}, false, err
	}
	if existed {
		// The key names a change of another service or kind (the stage
		// runner's and the notifications' records, which Submit's check
		// does not see, or a request that raced another past it): not
		// a retry, and not to be answered with that change. The slot
		// taken for it is given back (consumed above): it records nothing.
		if err := keyReused(&c, &want); err != nil {
			return Change{}, false, err
		}
		out, err := s.Get(ctx, c.ID)
		return out, true, err
	}
	c.fill()
	s.publish("change.recorded", c)
	s.logger.Info("Change recorded", "id", c.ID, "service", c.Service, "kind", c.Kind, "source", c.Source, "outcome", c.Outcome)
	return c, false, nil
}

// Finish sets the final outcome of an in-progress change, now. Finishing
// a change again with the outcome it has is a no-op; with another one it
// is ErrFinished, but for a change that failed and is then rolled back:
// its outcome becomes rolled_back, at RolledBackAt, and it stays one
// failed change.
func (s *Service) Finish(ctx context.Context, id int64, outcome Outcome) (Change, error) {
	return s.FinishAt(ctx, id, outcome, time.Time{})
}

// FinishAt is Finish at a given time (zero: now), as a notification that
// says when the rollout ended reports it; a time before the change started
// is taken as its start.
func (s *Service) FinishAt(ctx context.Context, id int64, outcome Outcome, at time.Time) (Change, error) {
	if outcome != Succeeded && outcome != Failed && outcome != RolledBack {
		return Change{}, fmt.Errorf("%w: outcome must be succeeded, failed or rolled_back, got %s", ErrBadRequest, limits.Quote(string(outcome)))
	}
	if at.IsZero() {
		at = s.clock.Now()
	}
	now := at.UTC().Truncate(time.Millisecond)
	var out Change
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		c, err := get(ctx, tx, id)
		if err != nil {
			return err
		}
		if now.Before(c.StartedAt) {
			now = c.StartedAt
		}
		if c.Outcome.Final() {
			if c.Outcome == outcome {
				out = *c
				return nil
			}
			if c.Outcome == Failed && outcome == RolledBack {
				if c.FinishedAt != nil && now.Before(*c.FinishedAt) {
					now = *c.FinishedAt
				}
				if err := rollBack(ctx, tx, id, now); err != nil {
					return err
				}
				c.Outcome, c.RolledBackAt, c.Failed = RolledBack, &now, true
				out = *c
				return nil
			}
			return fmt.Errorf("%w: change %d is %s", ErrFinished, id, c.Outcome)
		}
		if err := finish(ctx, tx, id, outcome, now); err != nil {
			return err
		}
		c.Outcome, c.FinishedAt = outcome, &now
		c.Failed = c.Failed || outcome == Failed || outcome == RolledBack
		out = *c
		return nil
	})
	if err != nil {
		return Change{}, err
	}
	out.fill()
	s.publish("change.finished", out)
	s.logger.Info("Change finished", "id", id, "service", out.Service, "outcome", outcome)
	return out, nil
}

// Get returns a change with its linked incidents.
func (s *Service) Get(ctx context.Context, id int64) (Change, error) {
	c, err := get(ctx, s.db, id)
	if err != nil {
		return Change{}, err
	}
	c.Incidents, err = links(ctx, s.db, "change_id = $1", id)
	if err != nil {
		return Change{}, err
	}
	c.fill()
	return *c, nil
}

// fill computes the derived fields.
func (c *Change) fill() {
	c.LeadTime = nil
	if c.Outcome == Succeeded && c.CommitTime != nil && c.FinishedAt != nil {
		v := c.FinishedAt.Sub(*c.CommitTime).Seconds()
		c.LeadTime = &v
	}
}

func (s *Service) publish(typ string, c Change) {
	if s.bus == nil {
		return
	}
	s.bus.Publish(events.Event{Type: typ, Time: s.clock.Now(), Service: c.Service, Data: map[string]any{
		"id": c.ID, "kind": string(c.Kind), "source": c.Source, "outcome": string(c.Outcome), "commit": c.Commit, "version": c.Version,
	}})
}
