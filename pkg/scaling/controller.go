package scaling

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/common/model"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/audit"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/runbook"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/targetlock"
)

// Config is the `scaling` section of sred.yml.
type Config struct {
	// Policies are policy files and directories (relative to sred.yml).
	Policies []string `yaml:"policies"`
	// MaxActionsPerHour bounds the actions of one policy in any hour
	// (decisions past it are reported, not acted on).
	MaxActionsPerHour int `yaml:"max_actions_per_hour"`
	// LockLease is the lease of the per-target lock taken for an action.
	LockLease model.Duration `yaml:"lock_lease"`
	// ActionTimeout bounds a kubernetes scale action (exec and http
	// actions carry their own timeout).
	ActionTimeout model.Duration `yaml:"action_timeout"`
	// DryRun makes every policy decide and report without acting.
	DryRun bool `yaml:"dry_run"`
	// Kubernetes is the cluster whose HPAs sred observes for the policies
	// whose controller is kubernetes (nil: not observed).
	Kubernetes *KubernetesConfig `yaml:"kubernetes,omitempty"`
}

// KubernetesConfig names a cluster.
type KubernetesConfig struct {
	Kubeconfig string `yaml:"kubeconfig,omitempty"`
	Context    string `yaml:"context,omitempty"`
}

// DefaultConfig is the section's defaults.
var DefaultConfig = Config{MaxActionsPerHour: 12, LockLease: model.Duration(2 * time.Minute), ActionTimeout: model.Duration(time.Minute)}

// UnmarshalYAML implements yaml.Unmarshaler: strict fields, defaults, checks.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	if err := checkKeys(n, "scaling", "policies", "max_actions_per_hour", "lock_lease", "action_timeout", "dry_run", "kubernetes"); err != nil {
		return err
	}
	type plain Config
	v := plain(DefaultConfig)
	if err := n.Decode(&v); err != nil {
		return err
	}
	*c = Config(v)
	if c.MaxActionsPerHour < 1 {
		return lineErr(n, "scaling: max_actions_per_hour must be at least 1")
	}
	if c.LockLease <= 0 || c.ActionTimeout <= 0 {
		return lineErr(n, "scaling: lock_lease and action_timeout must be positive")
	}
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (k *KubernetesConfig) UnmarshalYAML(n *yaml.Node) error {
	if err := checkKeys(n, "scaling.kubernetes", "kubeconfig", "context"); err != nil {
		return err
	}
	type plain KubernetesConfig
	return n.Decode((*plain)(k))
}

// Migrations create the controller's tables: the state of each policy
// and the decisions that acted (or would have, in dry run).
var Migrations = []store.Migration{{
	ID: "scaling/0001_init",
	SQLite: `CREATE TABLE scaling_state (
		policy TEXT PRIMARY KEY,
		instances INTEGER NOT NULL,
		last_action_ms BIGINT NOT NULL
	);
	CREATE TABLE scaling_decisions (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		policy TEXT NOT NULL, service TEXT NOT NULL, at_ms BIGINT NOT NULL,
		direction TEXT NOT NULL, from_n INTEGER NOT NULL, to_n INTEGER NOT NULL,
		value DOUBLE PRECISION NOT NULL, reason TEXT NOT NULL, result TEXT NOT NULL, detail TEXT NOT NULL
	);
	CREATE INDEX scaling_decisions_policy ON scaling_decisions (policy, at_ms)`,
	Postgres: `CREATE TABLE scaling_state (
		policy TEXT PRIMARY KEY,
		instances INTEGER NOT NULL,
		last_action_ms BIGINT NOT NULL
	);
	CREATE TABLE scaling_decisions (
		id BIGSERIAL PRIMARY KEY,
		policy TEXT NOT NULL, service TEXT NOT NULL, at_ms BIGINT NOT NULL,
		direction TEXT NOT NULL, from_n INTEGER NOT NULL, to_n INTEGER NOT NULL,
		value DOUBLE PRECISION NOT NULL, reason TEXT NOT NULL, result TEXT NOT NULL, detail TEXT NOT NULL
	);
	CREATE INDEX scaling_decisions_policy ON scaling_decisions (policy, at_ms)`,
}, {
	// The evaluation time a replica claimed last: several sred replicas on
	// PostgreSQL evaluate each policy once per interval.
	ID:     "scaling/0002_last_eval",
	SQLite: `ALTER TABLE scaling_state ADD COLUMN last_eval_ms BIGINT NOT NULL DEFAULT 0`,
}}

// ErrEvaluated is returned by Evaluate when another replica (or an earlier
// call) already evaluated the policy at that time, or is acting on it.
var ErrEvaluated = errors.New("already evaluated by another replica")

// Results of an acting decision.
const (
	ResultOK          = "ok"
	ResultFailed      = "failed"
	ResultDryRun      = "dry_run"
	ResultLocked      = "locked"
	ResultRateLimited = "rate_limited"
)

// Actuator runs actions (the runbook engine's, runbook.Actuator).
type Actuator interface {
	Actuate(ctx context.Context, act *runbook.Action, vars map[string]string) runbook.ActionResult
}

// HPAStatus is what the HPA of a policy reports.
type HPAStatus struct {
	CurrentReplicas int32     `json:"current_replicas"`
	DesiredReplicas int32     `json:"desired_replicas"`
	LastScaleTime   time.Time `json:"last_scale_time"`
}

// HPAReader reads the status of an HPA (pkg/kube/hpa).
type HPAReader interface {
	HPAStatus(ctx context.Context, namespace, name string) (HPAStatus, error)
}

// Auditor records audit entries (audit.Log).
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
}

// Options are the controller's dependencies.
type Options struct {
	DB         *store.DB // migrated with Migrations and targetlock.Migrations
	Prometheus RangeQuerier
	Actuator   Actuator
	HPA        HPAReader
	Bus        *events.Bus
	Audit      Auditor
	Clock      clock.Timer
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Owner names this replica in target locks.
	Owner string
}

// Record is an acting decision as stored.
type Record struct {
	ID int64 `json:"id"`
	Decision
	// Result is ok, failed, dry_run, locked or rate_limited.
	Result string `json:"result"`
	Detail string `json:"detail,omitempty"`
}

// Controller is sred's own scaling controller for targets off Kubernetes
// (and Kubernetes targets whose controller is sred): it decides every
// interval and acts through the actuator, under the per-target lock and a
// rate limit. For targets the HPA or KEDA scales it only observes.
type Controller struct {
	o      Options
	locks  *targetlock.Locks
	m      metrics
	evalMu sync.Mutex // one evaluation round at a time
	mu     sync.RWMutex
	cfg    Config
	byName map[string]*Policy
	order  []string
	next   map[string]time.Time
	hpa    map[string]HPAStatus
	// queryDown is set while the metric source (Prometheus) fails the
	// policies' queries: it is logged once when it goes down and once when
	// it answers again, not on every evaluation of every policy.
	queryDown bool
}

type metrics struct {
	decisions *prometheus.CounterVec
	desired   *prometheus.GaugeVec
	value     *prometheus.GaugeVec
	actions   *prometheus.CounterVec
	queryErrs prometheus.Counter
}

// queryError is a failed query of the metric source.
type queryError struct{ error }

func (e queryError) Unwrap() error { return e.error }

// New returns a controller; SetConfig gives it its policies.
func New(o Options) *Controller {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	f := promauto.With(o.Registerer)
	return &Controller{
		o:     o,
		locks: targetlock.New(o.DB),
		m: metrics{
			decisions: f.NewCounterVec(prometheus.CounterOpts{Name: "sre_scaling_decisions_total",
				Help: "Evaluations of the policies sred scales, by the direction decided (up, down, none: in bounds, in a cooldown, no data)."}, []string{"service", "direction"}),
			desired: f.NewGaugeVec(prometheus.GaugeOpts{Name: "sre_scaling_desired_instances",
				Help: "Instances the scaling policy wants now (after the last action, or as the dry run would have left them); for a target Kubernetes scales, the HPA's desired replicas as sred observes them."}, []string{"service"}),
			value: f.NewGaugeVec(prometheus.GaugeOpts{Name: "sre_scaling_metric_value",
				Help: "The scaling policy's metric at its last evaluation."}, []string{"service"}),
			actions: f.NewCounterVec(prometheus.CounterOpts{Name: "sre_scaling_actions_total",
				Help: "Acting scaling decisions by result: ok, failed, dry_run, locked (another subsystem held the target), rate_limited (scaling.max_actions_per_hour)."}, []string{"service", "result"}),
			queryErrs: f.NewCounter(prometheus.CounterOpts{Name: "sre_scaling_query_failures_total",
				Help: "Queries of a scaling policy's metric that failed (Prometheus down or refusing the query); that evaluation is skipped."}),
		},
		byName: map[string]*Policy{}, next: map[string]time.Time{}, hpa: map[string]HPAStatus{},
	}
}

// SetConfig installs the section and its policies (on start and reload).
func (c *Controller) SetConfig(cfg Config, policies []*Policy) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cfg = cfg
	c.byName = map[string]*Policy{}
	c.order = nil
	for _, p := range policies {
		c.byName[p.Name] = p
		c.order = append(c.order, p.Name)
	}
	sort.Strings(c.order)
}

// Policies returns the policies in force.
func (c *Controller) Policies() []*Policy {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*Policy, 0, len(c.order))
	for _, n := range c.order {
		out = append(out, c.byName[n])
	}
	return out
}

// Policy returns the policy named name (nil if none).
func (c *Controller) Policy(name string) *Policy {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.byName[name]
}

func (c *Controller) config() Config {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cfg
}

// Run evaluates the policies at their intervals until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	for {
		c.EvaluateDue(ctx)
		wait := time.Second
		now := c.o.Clock.Now()
		c.mu.RLock()
		for _, n := range c.order {
			if at, ok := c.next[n]; ok && at.Sub(now) < wait {
				wait = max(at.Sub(now), time.Millisecond)
			}
		}
		c.mu.RUnlock()
		select {
		case <-ctx.Done():
			return nil
		case <-c.o.Clock.After(wait):
		}
	}
}

// EvaluateDue evaluates every policy whose evaluation time (a multiple of
// its interval) has come, and returns their decisions.
func (c *Controller) EvaluateDue(ctx context.Context) []Record {
	c.evalMu.Lock()
	defer c.evalMu.Unlock()
	now := c.o.Clock.Now().UTC()
	var out []Record
	for _, p := range c.Policies() {
		iv := time.Duration(p.Interval)
		c.mu.Lock()
		due, ok := c.next[p.Name]
		if ok && now.Before(due) {
			c.mu.Unlock()
			continue
		}
		c.next[p.Name] = now.Truncate(iv).Add(iv)
		c.mu.Unlock()
		at := now.Truncate(iv)
		if p.Target.Controller == ControllerKubernetes {
			c.observe(ctx, p)
			continue
		}
		r, err := c.Evaluate(ctx, p, at)
		if errors.Is(err, ErrEvaluated) {
			continue
		}
		if qe := (queryError{}); errors.As(err, &qe) {
			continue // logged once by queryResult, counted
		}
		if err != nil {
			c.o.Logger.Warn("Scaling evaluation failed", "policy", p.Name, "err", err)
			continue
		}
		out = append(out, r)
	}
	return out
}

// queryResult counts a failed query of the metric source and logs when the
// source goes down (a warning) and when it answers again (info): once each,
// however many policies and evaluations fail meanwhile.
func (c *Controller) queryResult(err error) {
	if errors.Is(err, context.Canceled) {
		return // shutting down, not the source's failure
	}
	c.mu.Lock()
	was := c.queryDown
	c.queryDown = err != nil
	c.mu.Unlock()
	switch {
	case err != nil:
		c.m.queryErrs.Inc()
		if !was {
			c.o.Logger.Warn("Scaling queries fail; policies are not evaluated until the metric source answers", "err", err)
		}
	case was:
		c.o.Logger.Info("Scaling queries answer again")
	}
}

// observe reads the HPA of a policy Kubernetes scales and reports it.
func (c *Controller) observe(ctx context.Context, p *Policy) {
	if c.o.HPA == nil {
		return
	}
	k := p.Target.Kubernetes
	st, err := c.o.HPA.HPAStatus(ctx, k.Namespace, p.Name)
	if err != nil {
		c.o.Logger.Warn("Read HPA status", "policy", p.Name, "namespace", k.Namespace, "err", err)
		return
	}
	c.m.desired.WithLabelValues(p.Service).Set(float64(st.DesiredReplicas))
	c.mu.Lock()
	prev, seen := c.hpa[p.Name]
	c.hpa[p.Name] = st
	c.mu.Unlock()
	if !seen || prev.DesiredReplicas != st.DesiredReplicas {
		c.o.Bus.Publish(events.Event{Type: "scaling.observed", Time: c.o.Clock.Now().UTC(), Service: p.Service, Data: map[string]any{
			"policy": p.Name, "controller": ControllerKubernetes, "current_replicas": st.CurrentReplicas,
			"desired_replicas": st.DesiredReplicas, "previous_desired_replicas": prev.DesiredReplicas}})
	}
}

// HPAStatuses returns the last observed HPA status of each policy Kubernetes scales.
func (c *Controller) HPAStatuses() map[string]HPAStatus {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[string]HPAStatus, len(c.hpa))
	for k, v := range c.hpa {
		out[k] = v
	}
	return out
}

// State returns the stored state of a policy (its initial instances and
// no action when none is stored).
func (c *Controller) State(ctx context.Context, p *Policy) (State, error) {
	var n int
	var ms int64
	err := c.o.DB.QueryRowContext(ctx, `SELECT instances, last_action_ms FROM scaling_state WHERE policy = $1`, p.Name).Scan(&n, &ms)
	if errors.Is(err, sql.ErrNoRows) {
		return State{Instances: p.InitialInstances}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("read scaling state of %s: %w", p.Name, err)
	}
	st := State{Instances: n}
	if ms > 0 {
		st.LastAction = time.UnixMilli(ms).UTC()
	}
	return st, nil
}

func (c *Controller) saveState(ctx context.Context, p *Policy, st State) error {
	var ms int64
	if !st.LastAction.IsZero() {
		ms = st.LastAction.UnixMilli()
	}
	_, err := c.o.DB.ExecContext(ctx, `INSERT INTO scaling_state (policy, instances, last_action_ms, last_eval_ms) VALUES ($1, $2, $3, 0)
		ON CONFLICT (policy) DO UPDATE SET instances = excluded.instances, last_action_ms = excluded.last_action_ms`,
		p.Name, st.Instances, ms)
	if err != nil {
		return fmt.Errorf("save scaling state of %s: %w", p.Name, err)
	}
	return nil
}

// claim takes the evaluation of p at `at` for this replica: false when
// another replica (or an earlier call) has taken it or a later one.
func (c *Controller) claim(ctx context.Context, p *Policy, at time.Time) (bool, error) {
	if _, err := c.o.DB.ExecContext(ctx, `INSERT INTO scaling_state (policy, instances, last_action_ms, last_eval_ms) VALUES ($1, $2, 0, 0)
		ON CONFLICT (policy) DO NOTHING`, p.Name, p.InitialInstances); err != nil {
		return false, fmt.Errorf("claim scaling evaluation of %s: %w", p.Name, err)
	}
	res, err := c.o.DB.ExecContext(ctx, `UPDATE scaling_state SET last_eval_ms = $1 WHERE policy = $2 AND last_eval_ms < $1`, at.UnixMilli(), p.Name)
	if err != nil {
		return false, fmt.Errorf("claim scaling evaluation of %s: %w", p.Name, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Evaluate decides for p at now (reading the metric from Prometheus) and
// acts on the decision. Each (policy, time) is evaluated once across
// replicas: otherwise it returns ErrEvaluated.
func (c *Controller) Evaluate(ctx context.Context, p *Policy, now time.Time) (Record, error) {
	ok, err := c.claim(ctx, p, now)
	if err != nil {
		return Record{}, err
	}
	if !ok {
		return Record{}, ErrEvaluated
	}
	st, err := c.State(ctx, p)
	if err != nil {
		return Record{}, err
	}
	samples, err := Fetch(ctx, c.o.Prometheus, p, now, now)
	c.queryResult(err)
	if err != nil {
		return Record{}, queryError{err}
	}
	d := Decide(p, st, samples, now)
	c.m.decisions.WithLabelValues(p.Service, d.Direction).Inc()
	if !d.NoData {
		c.m.value.WithLabelValues(p.Service).Set(d.Value)
	}
	if !d.Acts() {
		c.m.desired.WithLabelValues(p.Service).Set(float64(st.Instances))
		return Record{Decision: d}, nil
	}
	r, err := c.act(ctx, p, d)
	if err != nil {
		return Record{}, err
	}
	if r.Result == ResultOK || r.Result == ResultDryRun {
		if err := c.saveState(ctx, p, State{Instances: d.To, LastAction: now}); err != nil {
			return r, err
		}
		c.m.desired.WithLabelValues(p.Service).Set(float64(d.To))
	}
	c.m.actions.WithLabelValues(p.Service, r.Result).Inc()
	if err := c.record(ctx, &r); err != nil {
		return r, err
	}
	c.report(ctx, p, r)
	return r, nil
}

// act carries out an acting decision: dry run, rate limit, target lock,
// then the actuator.
func (c *Controller) act(ctx context.Context, p *Policy, d Decision) (Record, error) {
	cfg := c.config()
	r := Record{Decision: d}
	if p.DryRun || cfg.DryRun {
		r.Result, r.Detail = ResultDryRun, "dry run: nothing was changed"
		return r, nil
	}
	var n int
	if err := c.o.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM scaling_decisions WHERE policy = $1 AND at_ms > $2 AND result IN ('ok', 'failed')`,
		p.Name, d.Time.Add(-time.Hour).UnixMilli()).Scan(&n); err != nil {
		r.Result, r.Detail = ResultFailed, fmt.Sprintf("count recent actions: %v", err)
		return r, nil
	}
	if n >= cfg.MaxActionsPerHour {
		r.Result, r.Detail = ResultRateLimited, fmt.Sprintf("%d actions in the last hour (max_actions_per_hour %d)", n, cfg.MaxActionsPerHour)
		return r, nil
	}
	holder := "scaling/" + p.Name + "@" + c.o.Owner
	if err := c.locks.Acquire(ctx, p.TargetKey(), "scaling", holder, c.o.Clock.Now().UTC(), time.Duration(cfg.LockLease)); err != nil {
		var held *targetlock.HeldError
		if errors.As(err, &held) && held.Lock.Kind == "scaling" && strings.HasPrefix(held.Lock.Holder, "scaling/"+p.Name+"@") {
			// Another replica is acting on this policy's previous decision.
			return r, ErrEvaluated
		}
		if errors.As(err, &held) {
			r.Result, r.Detail = ResultLocked, err.Error()
		} else {
			r.Result, r.Detail = ResultFailed, err.Error()
		}
		return r, nil
	}
	defer func() {
		if err := c.locks.Release(context.WithoutCancel(ctx), p.TargetKey(), holder); err != nil {
			c.o.Logger.Warn("Release target lock", "target", p.TargetKey(), "err", err)
		}
	}()
	act, err := c.action(p, d, cfg)
	if err != nil {
		r.Result, r.Detail = ResultFailed, err.Error()
		return r, nil
	}
	if c.o.Actuator == nil {
		r.Result, r.Detail = ResultFailed, "no actuator: the runbooks subsystem is not set up"
		return r, nil
	}
	res := c.o.Actuator.Actuate(ctx, act, map[string]string{
		"service": p.Service, "policy": p.Name, "replicas": fmt.Sprint(d.To), "current": fmt.Sprint(d.From), "direction": d.Direction,
	})
	if !res.OK() {
		r.Result, r.Detail = ResultFailed, res.Err().Error()
		return r, nil
	}
	r.Result, r.Detail = ResultOK, fmt.Sprintf("%s in %s", p.actionKind(), res.Duration.Round(time.Millisecond))
	return r, nil
}

func (p *Policy) actionKind() string {
	if p.Target.Action != nil {
		return string(p.Target.Action.Type())
	}
	return "kubernetes scale"
}

// action is the target's action, or a kubernetes scale to d.To.
func (c *Controller) action(p *Policy, d Decision, cfg Config) (*runbook.Action, error) {
	if p.Target.Action != nil {
		return p.Target.Action, nil
	}
	k := p.Target.Kubernetes
	if k.Kind != "Deployment" {
		return nil, fmt.Errorf("sred scales Deployments only (%s %s/%s): let the HPA or KEDA scale it", k.Kind, k.Namespace, k.Name)
	}
	to := int32(d.To)
	a, err := runbook.NewAction(time.Duration(cfg.ActionTimeout), nil, nil, &runbook.KubernetesStep{
		Action: runbook.KubeScale, Namespace: k.Namespace, Deployment: k.Name, Replicas: &to})
	if err != nil {
		return nil, err
	}
	if err := a.Compile(nil); err != nil {
		return nil, err
	}
	return a, nil
}

func (c *Controller) record(ctx context.Context, r *Record) error {
	err := c.o.DB.QueryRowContext(ctx, `INSERT INTO scaling_decisions (policy, service, at_ms, direction, from_n, to_n, value, reason, result, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
		r.Policy, r.Service, r.Time.UnixMilli(), r.Direction, r.From, r.To, r.Value, r.Reason, r.Result, r.Detail).Scan(&r.ID)
	if err != nil {
		return fmt.Errorf("record scaling decision: %w", err)
	}
	return nil
}

// report publishes the decision on the event stream and in the audit log.
func (c *Controller) report(ctx context.Context, p *Policy, r Record) {
	window := make([]map[string]any, 0, len(r.Window))
	for _, s := range r.Window {
		window = append(window, map[string]any{"time": s.Time, "value": s.Value})
	}
	c.o.Bus.Publish(events.Event{Type: "scaling.decision", Time: r.Time, Service: p.Service, Data: map[string]any{
		"policy": p.Name, "direction": r.Direction, "from": r.From, "to": r.To, "value": r.Value,
		"metric": p.Metric.Type, "query": p.Query(), "window": window, "reason": r.Reason, "result": r.Result, "detail": r.Detail,
	}})
	if c.o.Audit == nil {
		return
	}
	status := map[string]int{ResultOK: http.StatusOK, ResultDryRun: http.StatusNoContent, ResultLocked: http.StatusConflict,
		ResultRateLimited: http.StatusTooManyRequests, ResultFailed: http.StatusInternalServerError}[r.Result]
	if err := c.o.Audit.Record(ctx, audit.Entry{Time: r.Time, Actor: "scaling", Role: "system", Method: "SCALE",
		Route: "scaling/" + p.Name, Path: fmt.Sprintf("%s %s %d -> %d (%s): %s", p.Service, r.Direction, r.From, r.To, r.Result, r.Reason),
		Status: status}); err != nil {
		c.o.Logger.Warn("Record scaling decision in the audit log", "policy", p.Name, "err", err)
	}
}

// Decisions returns the stored acting decisions of policy ("" for all)
// since since, newest first, at most limit.
func (c *Controller) Decisions(ctx context.Context, policy string, since time.Time, limit int) ([]Record, error) {
	rows, err := c.o.DB.QueryContext(ctx, `SELECT id, policy, service, at_ms, direction, from_n, to_n, value, reason, result, detail
		FROM scaling_decisions WHERE ($1 = '' OR policy = $1) AND at_ms >= $2 ORDER BY at_ms DESC, id DESC LIMIT $3`,
		policy, since.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("list scaling decisions: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var r Record
		var ms int64
		if err := rows.Scan(&r.ID, &r.Policy, &r.Service, &ms, &r.Direction, &r.From, &r.To, &r.Value, &r.Reason, &r.Result, &r.Detail); err != nil {
			return nil, fmt.Errorf("list scaling decisions: %w", err)
		}
		r.Time = time.UnixMilli(ms).UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}
