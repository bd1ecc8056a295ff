package notify

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/english"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/store"
)

// Migrations create the outbox table, then move it into the jobs queue.
var Migrations = []store.Migration{{
	ID: "notify/0001_outbox",
	SQLite: `CREATE TABLE notify_outbox (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	dedup_key       TEXT NOT NULL UNIQUE,
	incident_id     TEXT NOT NULL,
	channel         TEXT NOT NULL,
	user_name       TEXT NOT NULL DEFAULT '',
	message         TEXT NOT NULL,
	state           TEXT NOT NULL DEFAULT 'pending',
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at BIGINT NOT NULL,
	lease_owner     TEXT NOT NULL DEFAULT '',
	lease_until     BIGINT NOT NULL DEFAULT 0,
	last_error      TEXT NOT NULL DEFAULT '',
	created_at      BIGINT NOT NULL,
	delivered_at    BIGINT
);
CREATE INDEX notify_outbox_due ON notify_outbox (state, next_attempt_at);
CREATE INDEX notify_outbox_incident ON notify_outbox (incident_id);`,
	Postgres: `CREATE TABLE notify_outbox (
	id              BIGSERIAL PRIMARY KEY,
	dedup_key       TEXT NOT NULL UNIQUE,
	incident_id     TEXT NOT NULL,
	channel         TEXT NOT NULL,
	user_name       TEXT NOT NULL DEFAULT '',
	message         TEXT NOT NULL,
	state           TEXT NOT NULL DEFAULT 'pending',
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at BIGINT NOT NULL,
	lease_owner     TEXT NOT NULL DEFAULT '',
	lease_until     BIGINT NOT NULL DEFAULT 0,
	last_error      TEXT NOT NULL DEFAULT '',
	created_at      BIGINT NOT NULL,
	delivered_at    BIGINT
);
CREATE INDEX notify_outbox_due ON notify_outbox (state, next_attempt_at);
CREATE INDEX notify_outbox_incident ON notify_outbox (incident_id);`,
}, moveToJobs}

// The outbox moves into the jobs queue (queue "notify", kind = channel,
// group = incident): one queue, one lease and retry implementation.
// Migrations of pkg/jobs must run first.
var moveToJobs = store.Migration{
	ID: "notify/0002_outbox_to_jobs",
	SQLite: `INSERT INTO jobs (queue, kind, dedup_key, grp, run_at, payload, state, attempts, last_error, created_at, finished_at, lease_owner, lease_until)
SELECT 'notify', channel, dedup_key, incident_id, next_attempt_at, message,
	CASE state WHEN 'sending' THEN 'running' WHEN 'delivered' THEN 'done' ELSE state END,
	attempts, last_error, created_at,
	CASE state WHEN 'delivered' THEN delivered_at WHEN 'failed' THEN next_attempt_at END,
	lease_owner, lease_until
FROM notify_outbox ORDER BY id;
DROP TABLE notify_outbox;`,
}

// Queue is the jobs queue of notifications.
const Queue = "notify"

// Kinds are the job kinds of the notify queue: one per channel.
func Kinds() []jobs.Kind {
	out := make([]jobs.Kind, len(Channels))
	for i, ch := range Channels {
		out[i] = jobs.Kind(ch)
	}
	return out
}

// Outbox states, as the API shows them.
const (
	StatePending   = "pending"
	StateSending   = "sending"
	StateDelivered = "delivered"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
)

func outboxState(jobState string) string {
	switch jobState {
	case jobs.StateRunning:
		return StateSending
	case jobs.StateDone:
		return StateDelivered
	}
	return jobState
}

// Execer is satisfied by *sql.DB and *sql.Tx.
type Execer = jobs.Execer

// Enqueue writes a message to the outbox (usually inside the transaction of
// the escalation step that decided it). A message whose dedupKey is already
// in the outbox is dropped; it reports whether the message was new.
func Enqueue(ctx context.Context, ex Execer, now time.Time, dedupKey string, m *Message) (bool, error) {
	j, err := Pending{Key: dedupKey, Message: m}.job(now)
	if err != nil {
		return false, err
	}
	ok, err := jobs.Enqueue(ctx, ex, now, j)
	if err != nil {
		return false, fmt.Errorf("enqueue notification: %w", err)
	}
	return ok, nil
}

// Pending is a message to write to the outbox with its deduplication key.
type Pending struct {
	Key     string
	Message *Message
}

// job is p as a job of the notify queue, due at now.
func (p Pending) job(now time.Time) (jobs.New, error) {
	m := p.Message
	if !slices.Contains(Channels, m.Channel) {
		return jobs.New{}, fmt.Errorf("enqueue notification %s: unknown channel %q", p.Key, m.Channel)
	}
	return jobs.New{Queue: Queue, Kind: jobs.Kind(m.Channel), Key: p.Key, Group: m.IncidentID, RunAt: now, Payload: m}, nil
}

// Jobs are the jobs of the notify queue that EnqueueAll writes for ms,
// for a caller that writes them in one statement with jobs of its own
// (jobs.EnqueueAll).
func Jobs(now time.Time, ms []Pending) ([]jobs.New, error) {
	js := make([]jobs.New, len(ms))
	for i, p := range ms {
		j, err := p.job(now)
		if err != nil {
			return nil, err
		}
		js[i] = j
	}
	return js, nil
}

// EnqueueAll writes messages to the outbox as Enqueue does each, in one
// statement (jobs.EnqueueAll); it reports how many were new.
func EnqueueAll(ctx context.Context, ex Execer, now time.Time, ms []Pending) (int64, error) {
	js, err := Jobs(now, ms)
	if err != nil {
		return 0, err
	}
	n, err := jobs.EnqueueAll(ctx, ex, now, js)
	if err != nil {
		return 0, fmt.Errorf("enqueue notifications: %w", err)
	}
	return n, nil
}

// Withdrawable says whether a message of event is withdrawn (Withdraw)
// once its incident is acknowledged or resolved: a page (trigger), and
// on resolve a reminder to resolve it. Acknowledge, resolve and all-clear
// notices always go out.
func Withdrawable(event string, resolved bool) bool {
	return event == EventTrigger || resolved && event == EventReminder
}

// Tx is satisfied by *sql.Tx.
type Tx interface {
	Querier
	Execer
}

// Withdraw cancels the messages of an incident that were not delivered
// yet and that its acknowledgement (or, resolved, its resolution) makes
// moot (Withdrawable): pending ones, and those claimed by a sender that
// has not begun sending them (it checks before sending, see deliverAll,
// and skips them). They show in the outbox as cancelled; it returns how
// many (withdrawn). A message whose send has begun cannot be recalled:
// it is left to finish (sending counts them), and reads as delivered if
// it was, cancelled (never retried) if the send failed. A message whose
// send had begun and whose sender's lease ended by now without an
// outcome (the sender died or stalled during the send) is withdrawn too,
// never sent again, but counted apart (unknown, not in withdrawn): it
// is not one not yet delivered, its outcome is not known (a stalled
// sender may still record a delivery: LateDelivery). The three counts
// are the cancellation's own (jobs.CancelIDs): a message whose sender
// records its outcome after the list and before the cancellation is
// neither withdrawn nor counted.
func Withdraw(ctx context.Context, tx Tx, now time.Time, incidentID string, resolved bool) (withdrawn, sending, unknown int64, err error) {
	js, err := jobs.List(ctx, tx, jobs.Filter{Queue: Queue, Group: incidentID, States: []string{jobs.StatePending, jobs.StateRunning}})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("withdraw notifications of %s: %w", incidentID, err)
	}
	var ids []int64
	for _, j := range js {
		var m Message
		if err := j.Decode(&m); err != nil {
			continue // never deliverable: the sender fails it
		}
		if Withdrawable(m.Event, resolved) {
			ids = append(ids, j.ID)
		}
	}
	// What each message had become is read by the cancellation itself: a
	// sender may record its outcome between the list and it.
	c, err := jobs.CancelIDs(ctx, tx, now, ids)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("withdraw notifications of %s: %w", incidentID, err)
	}
	return c.NotBegun, c.Underway, c.Ended, nil
}

// Record is one outbox row, as listed by the API.
type Record struct {
	ID          int64      `json:"id"`
	Key         string     `json:"key"`
	IncidentID  string     `json:"incident_id"`
	Channel     string     `json:"channel"`
	User        string     `json:"user,omitempty"`
	Event       string     `json:"event"`
	To          string     `json:"to,omitempty"`
	State       string     `json:"state"`
	Attempts    int        `json:"attempts"`
	NextAttempt time.Time  `json:"next_attempt_at"`
	LastError   string     `json:"last_error,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
	// Queued is set, when the record is read through a sender
	// (Sender.Annotate), on a message that is due but held back by its
	// channel's pause: nothing of it is stored.
	Queued  *Pause   `json:"queued,omitempty"`
	Message *Message `json:"-"`
	// attempt holds what tells whether its send has begun and its
	// outcome is not recorded (jobs.Job.AttemptUnderway), also when it
	// was withdrawn meanwhile: state, lease and start.
	attempt jobs.Job
}

// Reaches reports whether r's message reached its destination or still
// may at now: delivered; pending or being sent (not withdrawn: it goes
// out or is retried); or withdrawn (Withdraw) while it was being sent,
// its send not over at now (it may well be delivered, and then reads
// delivered). It does not for a message that failed for good (failed),
// one withdrawn before its send began, one whose send, withdrawn
// meanwhile, failed (cancelled), nor one withdrawn while it was being
// sent whose sender's lease ended by now without an outcome (the sender
// died or stalled during the send: it never reported a delivery, and
// the message is not sent again): none of those is known to have
// reached anyone. The escalation sends its PagerDuty acknowledge and
// resolve events, and its all-clear, only where a page Reaches.
func (r Record) Reaches(now time.Time) bool {
	switch r.State {
	case StateDelivered, StatePending, StateSending:
		return true
	case StateCancelled:
		return r.attempt.AttemptUnderway(now)
	}
	return false
}

// Querier is satisfied by *sql.DB and *sql.Tx.
type Querier = jobs.Querier

// List returns the outbox rows of an incident, oldest first.
func List(ctx context.Context, q Querier, incidentID string) ([]Record, error) {
	js, err := jobs.List(ctx, q, jobs.Filter{Queue: Queue, Group: incidentID})
	if err != nil {
		return nil, fmt.Errorf("list notifications of %s: %w", incidentID, err)
	}
	slices.SortFunc(js, func(a, b jobs.Job) int { return cmp.Compare(a.ID, b.ID) })
	out := make([]Record, 0, len(js))
	for _, j := range js {
		r := Record{ID: j.ID, Key: j.Key, IncidentID: j.Group, Channel: string(j.Kind), State: outboxState(j.State),
			Attempts: j.Attempts, NextAttempt: j.RunAt, LastError: j.LastError, CreatedAt: j.CreatedAt, Message: &Message{},
			attempt: jobs.Job{State: j.State, Owner: j.Owner, LeaseUntil: j.LeaseUntil, StartedAt: j.StartedAt}}
		if err := j.Decode(r.Message); err != nil {
			return nil, fmt.Errorf("notification %d: %w", r.ID, err)
		}
		r.User, r.Event, r.To = r.Message.User, r.Message.Event, r.Message.To
		if j.State == jobs.StateDone {
			r.DeliveredAt = j.FinishedAt
		}
		out = append(out, r)
	}
	return out, nil
}

// Count returns how many messages of an incident were ever queued on channel
// (in any state).
func Count(ctx context.Context, q jobs.RowQuerier, incidentID, channel string) (int, error) {
	return jobs.Count(ctx, q, jobs.Filter{Queue: Queue, Group: incidentID, Kind: jobs.Kind(channel)})
}

// Sender drains the outbox. Several senders (replicas) may run against one
// database: each claims jobs of the notify queue under a lease, so a message
// is sent by one sender at a time, and a sender that dies mid-send leaves its
// messages to be retried when the lease (notifications.lease) expires:
// delivery is at least once (PagerDuty dedups by key).
type Sender struct {
	db       *store.DB
	clock    clock.Clock
	logger   *slog.Logger
	timeline incident.TimelineWriter
	owner    string
	client   *http.Client

	// Tick is how often Run looks for due messages; Batch bounds one claim.
	Tick  time.Duration
	Batch int
	// NoPrune leaves finished messages to another component (sred's
	// retention compaction, which deletes them in batches); set it before Run.
	NoPrune bool
	// OnLateDelivery, if set (before Run), makes up for a late delivery
	// (see LateDelivery); sred gives it escalation.Engine.LateDelivery.
	OnLateDelivery LateDelivery

	mu  sync.RWMutex
	cfg *Config

	// write runs the outbox's writes: the incident service's batched
	// writer when the timeline writer is one (see Writer), else a
	// transaction of its own.
	write func(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error

	// chMu guards channels: the channels whose endpoint failed (see
	// channelHealth).
	chMu     sync.Mutex
	channels map[string]*channelHealth

	poke    chan struct{}
	rounds  atomic.Int64 // claim rounds of Run, for tests to wait on
	sent    *prometheus.CounterVec
	metrics *jobs.Metrics
}

// LateDelivery is called, in the transaction that records it, with a
// page withdrawn (Withdraw) while it was being sent whose delivery is
// recorded after its sender's lease had ended (jobs.CompleteAttempt reports
// it late): from that end until now the page read as one that reached
// nobody (Record.Reaches), so whatever follows a page (PagerDuty's
// acknowledge and resolve events, the all-clear) was not written for it.
// id is the page's outbox row, m its message, now the time of the record.
type LateDelivery func(ctx context.Context, tx *sql.Tx, id int64, m *Message, now time.Time) error

// Poke makes Run look for due messages now instead of at its next tick
// (called after a transaction wrote to the outbox). It never blocks.
func (s *Sender) Poke() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// Writer runs fn in a write transaction shared with other writes:
// incident.Service.Write, which on SQLite applies it in the single writer's
// next batch, so that the outbox's claims and outcomes do not take the
// write lock (and an fsync) on their own while deliveries are ingested.
type Writer interface {
	Write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error
}

// channelHealth is the state of a channel whose endpoint failed: after a
// retryable failure (refused connection, timeout, 5xx, 429) the channel
// pauses for the retry backoff of its consecutive failures; its messages
// wait in the outbox without attempts, and reads show those due as queued
// behind the pause (Annotate, QueuedTimeline). When the pause ends one
// message probes the endpoint, the one due first; a delivery ends the
// pause, a failure doubles it.
type channelHealth struct {
	failures int
	until    time.Time
	since    time.Time // the first failure of the pause
	reason   string    // the last failure, in a few fixed words (shortReason)
}

// NewSender returns a sender. timeline may be nil; reg may be nil. When
// timeline is also a Writer, the outbox writes go through it.
func NewSender(db *store.DB, cfg *Config, clk clock.Clock, timeline incident.TimelineWriter, logger *slog.Logger, reg prometheus.Registerer) *Sender {
	clk = clock.OrReal(clk)
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Sender{
		db: db, clock: clk, logger: logger, timeline: timeline, cfg: cfg,
		owner:  jobs.Owner(),
		poke:   make(chan struct{}, 1),
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		Tick:   time.Second, Batch: 32,
		channels: map[string]*channelHealth{},
	}
	s.write = func(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
		return db.InTx(ctx, func(tx *sql.Tx) error { return fn(ctx, tx) })
	}
	if w, ok := timeline.(Writer); ok {
		s.write = w.Write
	}
	s.sent = promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Namespace: "sre",
		Name:      "notifications_total",
		Help:      "Notification delivery attempts by channel (email, sms, phone, push, slack, webhook, pagerduty, teams, mattermost; every pair is exported from 0) and result (delivered, retry, failed).",
	}, []string{"channel", "result"})
	for _, ch := range Channels {
		for _, r := range []string{"delivered", "retry", "failed"} {
			s.sent.WithLabelValues(ch, r)
		}
	}
	s.metrics = jobs.NewMetrics(db, Queue, Kinds(), clk, reg)
	if reg != nil {
		reg.MustRegister(pendingCollector{db: db, desc: prometheus.NewDesc("sre_notifications_pending",
			"Notifications waiting in the outbox (pending or being sent), counted in the store at each scrape: the same on every replica (take max, not sum).", nil, nil)})
	}
	return s
}

// pendingCollector exports sre_notifications_pending, counted in the
// outbox at scrape time. A count that fails is reported as an invalid
// metric: the series is left out of that scrape (and the failure logged),
// rather than exported as -1 notifications.
type pendingCollector struct {
	db   *store.DB
	desc *prometheus.Desc
}

// Describe implements prometheus.Collector.
func (c pendingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c pendingCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := jobs.Count(ctx, c.db, jobs.Filter{Queue: Queue, AllGroups: true, States: []string{jobs.StatePending, jobs.StateRunning}})
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, fmt.Errorf("count notifications pending: %w", err))
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n))
}

// SetConfig swaps the channel configuration (on reload).
func (s *Sender) SetConfig(cfg *Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg = cfg
}

func (s *Sender) config() *Config {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cfg
}

// DefaultLease is how long a claimed message stays exclusive to its sender
// unless notifications.lease says otherwise; a delivery attempt
// (notifications.timeout) must end well before it.
const DefaultLease = 2 * time.Minute

// Run delivers due messages every Tick until ctx is cancelled. Each channel
// is a lane of its own: while a channel's batch is being sent (a provider
// that hangs until the timeout, say), the other channels' messages keep
// being claimed and sent on every tick.
func (s *Sender) Run(ctx context.Context) error {
	t := time.NewTicker(s.Tick)
	defer t.Stop()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		busy   = map[string]bool{}
		pruned time.Time
	)
	defer wg.Wait()
	for {
		mu.Lock()
		exclude := make([]jobs.Kind, 0, len(busy))
		for ch := range busy {
			exclude = append(exclude, jobs.Kind(ch))
		}
		mu.Unlock()
		cfg := s.config()
		now := s.clock.Now()
		// Paused channels are left out; a failing channel whose pause
		// ended gets one message, its probe.
		paused, probes := s.channelStates(now, exclude)
		// Claims write (on SQLite they take the one write lock): look
		// first, with a read, whether any message of a free lane is due,
		// so that an idle or paused outbox costs no write on every tick
		// and does not crowd out the writes of the deliveries' outcomes.
		// The free lanes are named (Kinds), not the others left out:
		// the index jobs_kind_due then seeks each free channel's due
		// messages, where leaving the paused ones out walked every due
		// message of their backlog on every tick.
		free := freeKinds(append(exclude, paused...))
		var due bool
		var err error
		if len(free) > 0 {
			due, err = jobs.Due(ctx, s.db, jobs.ClaimOptions{Queue: Queue, Now: now, Kinds: free})
			if err != nil && ctx.Err() == nil {
				s.logger.Warn("deliver notifications", "err", err)
			}
		}
		var batch []claimed
		if due {
			if sendable := freeKinds(append(exclude, append(paused, probes...)...)); len(sendable) > 0 {
				batch, err = s.claim(ctx, now, jobs.ClaimOptions{Kinds: sendable})
				if err != nil && ctx.Err() == nil {
					s.logger.Warn("deliver notifications", "err", err)
				}
			}
		} else {
			probes = nil
		}
		for _, ch := range probes {
			// The probe is the message due first (run_at, then id), on
			// both backends: a page queued behind the pause does not
			// wait behind one due later, whatever the index's order.
			probe, err := s.claim(ctx, now, jobs.ClaimOptions{Kinds: []jobs.Kind{ch}, Limit: 1, First: true})
			if err != nil && ctx.Err() == nil {
				s.logger.Warn("deliver notifications", "channel", ch, "err", err)
			}
			batch = append(batch, probe...)
		}
		s.rounds.Add(1)
		lanes := map[string][]claimed{}
		for _, c := range batch {
			lanes[c.msg.Channel] = append(lanes[c.msg.Channel], c)
		}
		for ch, rows := range lanes {
			mu.Lock()
			busy[ch] = true
			mu.Unlock()
			wg.Go(func() {
				s.deliverAll(ctx, cfg, rows)
				mu.Lock()
				delete(busy, ch)
				mu.Unlock()
			})
		}
		if !s.NoPrune && now.Sub(pruned) >= time.Hour {
			if _, err := s.Prune(ctx); err != nil && ctx.Err() == nil {
				s.logger.Warn("prune delivered notifications", "err", err)
			}
			pruned = now
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.poke:
		}
	}
}

// Prune deletes the messages that were delivered, failed or cancelled
// longer than notifications.retention ago.
func (s *Sender) Prune(ctx context.Context) (int64, error) {
	keep := time.Duration(s.config().Retention)
	if keep <= 0 { // a config that skipped Validate keeps the default
		keep = jobs.DefaultRetention
	}
	return jobs.Prune(ctx, s.db, Queue, s.clock.Now().Add(-keep))
}

type claimed struct {
	id       int64
	key      string
	attempts int
	// unattempted are the claims before this one whose lease ended
	// before the send began (jobs.Job.Unattempted): a page's begin
	// (jobs.Start) gives their attempts back.
	unattempted int
	msg         Message
	// leaseUntil is when the claim's lease ends: another sender may
	// claim the message then.
	leaseUntil time.Time
	// next is when the message is due again after its outcome (prepare):
	// the retry of a failed attempt, or the outcome's time. The messages
	// of its chain that were not sent are put back due then.
	next time.Time
}

// channelStates returns the failing channels not in busy: paused ones, and
// freeKinds is every kind a notification can have (its channel, and ""
// of messages stored before jobs had kinds) but those of busy.
func freeKinds(busy []jobs.Kind) []jobs.Kind {
	free := make([]jobs.Kind, 0, len(Channels)+1)
	for _, k := range append([]string{""}, Channels...) {
		if !slices.Contains(busy, jobs.Kind(k)) {
			free = append(free, jobs.Kind(k))
		}
	}
	return free
}

// those whose pause is over and that send one message to probe.
func (s *Sender) channelStates(now time.Time, busy []jobs.Kind) (paused, probes []jobs.Kind) {
	s.chMu.Lock()
	defer s.chMu.Unlock()
	for ch, h := range s.channels {
		switch {
		case slices.Contains(busy, jobs.Kind(ch)):
		case now.Before(h.until):
			paused = append(paused, jobs.Kind(ch))
		default:
			probes = append(probes, jobs.Kind(ch))
		}
	}
	return paused, probes
}

// channelResult records a delivery's outcome in its channel's health and
// returns the channel's pause (zero when it is healthy).
func (s *Sender) channelResult(cfg *Config, ch string, now time.Time, derr error) time.Duration {
	var de *DeliveryError
	s.chMu.Lock()
	defer s.chMu.Unlock()
	switch {
	case derr == nil:
		if _, ok := s.channels[ch]; ok {
			delete(s.channels, ch)
			s.logger.Info("notification channel delivers again", "channel", ch)
		}
		return 0
	case errors.As(derr, &de) && de.Retryable:
		h := s.channels[ch]
		if h == nil {
			h = &channelHealth{since: now}
			s.channels[ch] = h
		}
		h.reason = shortReason(derr)
		if !now.Before(h.until) {
			// The first failure, or a probe's: the messages of one batch
			// failing together count once.
			h.failures++
			if h.failures == 1 {
				s.logger.Warn("notification channel failing, pausing it", "channel", ch, "err", derr)
			}
		}
		pause := backoff(cfg, h.failures)
		if de.RetryAfter > 0 {
			// The receiver said when to come back (429 Retry-After).
			pause = min(de.RetryAfter, time.Duration(cfg.MaxBackoff))
		}
		if until := now.Add(pause); until.After(h.until) {
			h.until = until
		}
		return h.until.Sub(now)
	}
	// A message the endpoint refused for its own sake says nothing of
	// the channel.
	return 0
}

// orderedChannels are the channels whose messages of one incident are
// sent in the order they were written, one at a time: PagerDuty keeps
// the incident's state from its events, and an acknowledge or resolve
// that overtook a trigger still being retried would be dropped (no such
// incident yet), leaving the trigger to open an incident nobody closes.
var orderedChannels = map[jobs.Kind]bool{jobs.Kind(ChannelPagerDuty): true}

// failureOrderedChannels are the channels whose messages of one incident
// reach the receiver in the order they were written, without waiting for
// earlier ones that are not due: a webhook receiver (a ticket system, a
// bot keeping a thread per incident) keeps state from the events as
// PagerDuty does, and an acknowledge or resolve that arrived before its
// trigger (sent at the same moment, or delivered while the trigger backs
// off) would reach it first. Fresh messages of an incident claimed
// together are sent one after another in job ID order, each once the
// previous one was answered (deliverAll's chains; the chains of different
// incidents run concurrently, in one batch); the chain stops at its first
// failure, and its messages not sent are put back behind the failed one.
// A message with an earlier one of its incident that failed at least
// once waits until that one is delivered or given up (holdOrdered), and
// such messages are then sent one claim at a time behind each other while
// they carry a failure of their own.
var failureOrderedChannels = map[jobs.Kind]bool{jobs.Kind(ChannelWebhook): true}

// chains splits a claimed batch into the messages to send one after
// another: those of one incident on an ordered or failure-ordered channel
// form one chain, in job ID order (the order they were written); every
// other message is a chain of its own. The chains keep the order of their
// first messages in the batch.
func chains(batch []claimed) [][]*claimed {
	type lane struct{ incident, channel string }
	var out [][]*claimed
	at := map[lane]int{}
	for i := range batch {
		c := &batch[i]
		k := jobs.Kind(c.msg.Channel)
		if c.msg.IncidentID == "" || !orderedChannels[k] && !failureOrderedChannels[k] {
			out = append(out, []*claimed{c})
			continue
		}
		l := lane{c.msg.IncidentID, c.msg.Channel}
		if n, ok := at[l]; ok {
			out[n] = append(out[n], c)
			continue
		}
		at[l] = len(out)
		out = append(out, []*claimed{c})
	}
	for _, ch := range out {
		slices.SortFunc(ch, func(a, b *claimed) int { return cmp.Compare(a.id, b.id) })
	}
	return out
}

// holdOrdered returns the claimed jobs that may be sent now. A message of
// an ordered channel written after another of the same incident that is
// not sent yet (pending, being retried, or being sent) is put back, due
// when that one is (at least a second from now), without counting the
// claim as an attempt. A message of a failure-ordered channel is put back
// the same way only behind an earlier one of its incident and channel
// that has failed at least once: due when that one is retried if it backs
// off, at once (after it in the claims' order: the next claim) if it is
// due or being sent in this claim, a second from now if another claim
// holds it.
func (s *Sender) holdOrdered(ctx context.Context, q jobs.RowQuerier, tx *sql.Tx, now time.Time, js []jobs.Job) ([]jobs.Job, error) {
	out := js[:0]
	claimedNow := make(map[int64]bool, len(js))
	for _, j := range js {
		claimedNow[j.ID] = true
	}
	for _, j := range js {
		var (
			at    time.Time
			found bool
			err   error
		)
		switch {
		case j.Group == "":
		case orderedChannels[j.Kind]:
			at, found, err = jobs.EarlierLive(ctx, q, Queue, j.Group, j.Kind, j.ID, now)
			if next := now.Add(time.Second); found && at.Before(next) {
				at = next
			}
		case failureOrderedChannels[j.Kind]:
			var b jobs.Job
			b, found, err = jobs.EarlierFailed(ctx, q, Queue, j.Group, j.Kind, j.ID)
			switch {
			case !found:
			case b.State == jobs.StatePending:
				at = b.RunAt
			case claimedNow[b.ID]:
				at = now
			default: // being sent by another claim
				at = now.Add(time.Second)
			}
			if found && at.Before(now) {
				at = now
			}
		}
		if err != nil {
			return nil, err
		}
		if !found {
			out = append(out, j)
			continue
		}
		if err := jobs.Postpone(ctx, tx, j.ID, s.owner, at); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// claim leases due messages: up to Batch, or as o says.
func (s *Sender) claim(ctx context.Context, now time.Time, o jobs.ClaimOptions) ([]claimed, error) {
	o.Queue, o.Owner, o.Now, o.Lease = Queue, s.owner, now, time.Duration(s.config().Lease)
	if o.Limit == 0 {
		o.Limit = s.Batch
	}
	var js []jobs.Job
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		q := store.TxQueries(ctx, tx)
		claimedJobs, err := jobs.ClaimIn(ctx, q, s.db.Dialect, o)
		if err != nil {
			return err
		}
		js, err = s.holdOrdered(ctx, q, tx, now, claimedJobs)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim notifications: %w", err)
	}
	out := make([]claimed, 0, len(js))
	var errs []error
	for _, j := range js {
		c := claimed{id: j.ID, key: j.Key, attempts: j.Attempts, unattempted: j.Unattempted, leaseUntil: now.Add(o.Lease)}
		if err := j.Decode(&c.msg); err != nil {
			// A message that cannot be read is never deliverable.
			errs = append(errs, err)
			if ferr := jobs.Fail(ctx, s.db, j.ID, s.owner, now, err.Error()); ferr != nil {
				errs = append(errs, ferr)
			}
			s.metrics.Failed(j.Kind)
			continue
		}
		out = append(out, c)
	}
	return out, errors.Join(errs...)
}

// DeliverDue claims every message due now (up to Batch), sends them as
// deliverAll does and waits for the outcomes; it returns how many were
// attempted. Run does not wait: see its lanes.
func (s *Sender) DeliverDue(ctx context.Context) (int, error) {
	cfg := s.config()
	batch, err := s.claim(ctx, s.clock.Now(), jobs.ClaimOptions{})
	if len(batch) == 0 {
		return 0, err
	}
	return s.deliverAll(ctx, cfg, batch), err
}

// deliverAll sends claimed messages (at most Batch, as claimed), each
// within cfg.Timeout, shorter than the lease, and returns how many it
// attempted. The chains (see chains) are sent concurrently, the messages
// of a chain one after another, each once the previous one was answered.
// A chain stops at its first failure: its messages not sent are put back
// without an attempt, due when the failed one is (see holdOrdered for
// what happens then). It stops too before a message whose lease would
// end within cfg.Timeout, which is put back due at once, so that no other
// sender claims it while it is being sent. The outcomes are recorded as
// they come, those that are in by the time the previous ones are
// recorded together in one write (see record).
func (s *Sender) deliverAll(ctx context.Context, cfg *Config, batch []claimed) int {
	d := &deliverer{cfg: cfg, client: s.client, now: s.clock.Now}
	results := make(chan []outcome, len(batch))
	var attempted atomic.Int64
	for _, chain := range chains(batch) {
		go func() {
			for i, c := range chain {
				if i > 0 && !s.clock.Now().Add(time.Duration(cfg.Timeout)).Before(c.leaseUntil) {
					results <- held(chain[i:], nil)
					return
				}
				switch s.begin(ctx, c) {
				case beginWithdrawn:
					results <- []outcome{{c: c, withdrawn: true}}
					continue
				case beginFailed:
					// Not sent: it stays claimed and is claimed again
					// when its lease ends; the chain's messages after
					// it are put back due then, behind it.
					c.next = c.leaseUntil
					results <- append([]outcome{{c: c, unstarted: true}}, held(chain[i+1:], c)...)
					return
				}
				sctx, cancel := context.WithTimeout(ctx, time.Duration(cfg.Timeout))
				err := d.deliver(sctx, &c.msg)
				cancel()
				attempted.Add(1)
				outs := []outcome{{c: c, derr: err}}
				if err != nil {
					// The outcome and the messages put back behind it in
					// one write.
					results <- append(outs, held(chain[i+1:], c)...)
					return
				}
				results <- outs
			}
		}()
	}
	for left := len(batch); left > 0; {
		ready := <-results
		for more := true; more; {
			select {
			case o := <-results:
				ready = append(ready, o...)
			default:
				more = false
			}
		}
		left -= len(ready)
		// A message left claimed has nothing to record.
		ready = slices.DeleteFunc(ready, func(o outcome) bool { return o.unstarted })
		if len(ready) > 0 {
			s.record(ctx, cfg, ready)
		}
	}
	return int(attempted.Load())
}

// What begin found.
const (
	beginSend      = iota // send it
	beginWithdrawn        // withdrawn after its claim: not sent, its cancellation is its outcome
	beginFailed           // the send-begun mark could not be written: not sent, left claimed
)

// begin says whether c may be sent now. A page or reminder withdrawn
// (Withdraw) after it was claimed (its incident acknowledged or resolved
// meanwhile) is not sent. Otherwise its send begins (jobs.Start, one
// statement with the check): a withdrawal from then on leaves it to
// finish and does not count it. The statement runs on its own, not in
// the shared writer's next batch, so that the page does not wait for it.
// A page whose mark could not be written (the store failed) is not sent
// in this claim: sent unmarked, an acknowledgement meanwhile would
// withdraw it as not begun and its delivery would be lost (read
// cancelled, no timeline entry). It stays claimed, and is claimed again
// once its lease ends (still sent at least once, unless withdrawn by
// then); that claim counts no attempt (the mark gives it back, see
// jobs.Start). Should the mark have been written all the same (the
// answer to its commit lost), it is taken back (unstart). The other
// messages are never withdrawn and need no mark.
func (s *Sender) begin(ctx context.Context, c *claimed) int {
	if !Withdrawable(c.msg.Event, true) {
		return beginSend
	}
	ok, err := jobs.Start(ctx, s.db, c.id, s.owner, s.clock.Now())
	switch {
	case err != nil:
		s.logger.Warn("notification not sent: its send could not be marked as begun; sent when claimed again after its lease",
			"incident", c.msg.IncidentID, "channel", c.msg.Channel, "user", c.msg.User, "event", c.msg.Event, "key", c.key,
			"lease_until", c.leaseUntil, "err", err)
		s.unstart(ctx, c, err)
		return beginFailed
	case !ok:
		return beginWithdrawn
	}
	c.attempts -= c.unattempted
	return beginSend
}

// unstart takes back the send-begun mark of c, whose jobs.Start failed
// and which is not sent in this claim, in case the mark was written all
// the same (jobs.Unstart): marked, its next claim would count an attempt
// that was not made, and an acknowledgement meanwhile would take it for
// a page being sent (left to finish, PagerDuty's acknowledge waiting for
// it until the lease ends). If this write fails too, the mark stays
// where it is.
func (s *Sender) unstart(ctx context.Context, c *claimed, cause error) {
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return jobs.Unstart(ctx, tx, c.id, s.owner, "not sent: its send could not be marked as begun: "+cause.Error())
	})
	if err != nil {
		s.logger.Warn("take back the send-begun mark of a notification not sent", "incident", c.msg.IncidentID, "key", c.key, "err", err)
	}
}

// held are the outcomes of a chain's messages that were not sent: each is
// put back without an attempt, due when behind is due again (behind's
// outcome is prepared first, in the same write), or at once without one.
func held(rest []*claimed, behind *claimed) []outcome {
	out := make([]outcome, len(rest))
	for i, c := range rest {
		out[i] = outcome{c: c, behind: behind, held: true}
	}
	return out
}

// backoff is min_backoff * 2^(attempt-1), capped at max_backoff.
func backoff(cfg *Config, attempt int) time.Duration {
	return jobs.Backoff(time.Duration(cfg.MinBackoff), time.Duration(cfg.MaxBackoff), attempt)
}

// outcome is a delivery attempt's result, or a message of a chain put
// back unsent (held), and what recording it writes.
type outcome struct {
	c    *claimed
	derr error
	// held: the message was not sent, and goes back to the queue without
	// an attempt, due when behind is due again (at once when nil).
	held   bool
	behind *claimed
	// withdrawn: the message was cancelled after its claim (Withdraw)
	// and not sent; the cancellation is its outcome, already stored.
	withdrawn bool
	// unstarted: the message was not sent, its send-begun mark not
	// written (begin); it stays claimed and nothing is recorded.
	unstarted bool

	result string                                      // delivered, retry, failed or held
	apply  func(ctx context.Context, tx *sql.Tx) error // the job's move to its next state
	entry  *incident.TimelineEntry                     // nil: folded (foldRetry)
	err    error                                       // apply's: jobs.ErrLeaseLost
	// withdrawnEntry is the timeline entry of a failed send (retry or
	// failed) when the message turns out to have been withdrawn while
	// it was being sent (withdrawnSend: jobs.AbandonAttempt).
	withdrawnEntry *incident.TimelineEntry
	withdrawnSend  bool
	// late: delivered, withdrawn while it was being sent, and recorded
	// after the sender's lease had ended (see LateDelivery).
	late bool
}

// stored is the timeline entry the outcome's write stored.
func (o *outcome) stored() *incident.TimelineEntry {
	if o.withdrawnSend {
		return o.withdrawnEntry
	}
	return o.entry
}

// timelinePublisher is a timeline writer that announces entries written in
// a caller's transaction once it has committed (incident.Service).
type timelinePublisher interface {
	PublishTimeline(e incident.TimelineEntry)
}

// record writes the outcomes of delivery attempts in one write: each
// message's move to done, back to pending or to failed, with its timeline
// entry in the same transaction, so that a delivered message and the entry
// that says so are stored together (or neither is, and the message is sent
// again after its lease: at least once). A burst of deliveries to a
// working channel is a few writes instead of two per message (on SQLite
// each a write in the writer's batch; on PostgreSQL a transaction each).
func (s *Sender) record(ctx context.Context, cfg *Config, outs []outcome) {
	for i := range outs {
		s.prepare(cfg, &outs[i])
	}
	lockIDs := s.incidentsToLock(outs)
	write := func(ctx context.Context, tx *sql.Tx) error {
		if err := lockIncidents(ctx, tx, lockIDs); err != nil {
			return err
		}
		for i := range outs {
			o := &outs[i]
			o.withdrawnSend, o.late = false, false
			if o.err = o.apply(ctx, tx); o.err != nil {
				if !errors.Is(o.err, jobs.ErrLeaseLost) {
					return o.err
				}
				if o.withdrawnEntry == nil {
					continue // another sender owns it now: its outcome is that sender's
				}
				// A failed send of a message withdrawn while it was
				// being sent (Withdraw): it stays cancelled, never
				// retried, and its send is recorded as over.
				ok, err := jobs.AbandonAttempt(ctx, tx, o.c.id, s.owner, o.derr.Error())
				if err != nil {
					return err
				}
				if !ok {
					continue // another sender owns it now: its outcome is that sender's
				}
				o.err, o.withdrawnSend = nil, true
			}
			entry := o.stored()
			if entry == nil || s.timeline == nil {
				continue
			}
			if err := s.timeline.AddTimeline(ctx, tx, *entry); err != nil {
				if errors.Is(err, incident.ErrNotFound) {
					// The incident is gone (deleted by retention):
					// the message's outcome still counts.
					s.logger.Warn("write notification to timeline", "incident", entry.IncidentID, "err", err)
					o.entry, o.withdrawnEntry = nil, nil
					continue
				}
				return fmt.Errorf("write notification to timeline of %s: %w", entry.IncidentID, err)
			}
		}
		return nil
	}
	err := s.write(ctx, write)
	// The connection broke under the write (a PostgreSQL restart, a
	// dropped session), or none could be made (the server restarting):
	// the messages were sent, so write their outcomes again, at once on
	// another connection and then after growing waits while the server
	// comes back, rather than send them again once their lease ends. Had
	// a write committed, the leases are gone and the next writes nothing.
	// The tries stop at the first lease's end: another sender may have
	// claimed the message by then, and its outcome is that sender's.
	leaseEnd := outs[0].c.leaseUntil
	for _, o := range outs[1:] {
		if o.c.leaseUntil.Before(leaseEnd) {
			leaseEnd = o.c.leaseUntil
		}
	}
	for wait := time.Duration(0); store.ConnectionLost(err); wait = min(max(2*wait, outcomeRetryMin), outcomeRetryMax) {
		if !s.clock.Now().Add(wait).Before(leaseEnd) {
			break
		}
		s.logger.Warn("record notification outcomes: connection lost, writing again", "in", wait, "err", err)
		if wait > 0 && !s.sleep(ctx, wait) {
			break
		}
		err = s.write(ctx, write)
	}
	for i := range outs {
		o := &outs[i]
		if err != nil || o.err != nil {
			e := o.err
			if err != nil {
				e = err
			}
			s.logger.Error("record notification outcome", "key", o.c.key, "result", o.result, "err", e)
			continue
		}
		s.recorded(o)
	}
}

// incidentsToLock are the incidents whose rows the write of outs locks
// first, on PostgreSQL (lockIncidents): those of the outcomes that may add
// a timeline entry, sorted, each once; none on SQLite (one writer).
func (s *Sender) incidentsToLock(outs []outcome) []string {
	if s.db.Dialect != store.Postgres || s.timeline == nil {
		return nil
	}
	var ids []string
	for i := range outs {
		o := &outs[i]
		if o.entry != nil || o.withdrawnEntry != nil {
			ids = append(ids, o.c.msg.IncidentID)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// lockIncidents locks the rows of the incidents ids (sorted) FOR KEY
// SHARE, the lock the timeline entries' foreign key takes anyway, before
// the write of outcomes touches any job row. One lock order with an
// acknowledgement or resolution, which locks its incident FOR UPDATE and
// then withdraws the incident's pages (Withdraw, their job rows): the
// write used to lock a job row first (its move to done) and then wait
// for the incident's row (its timeline entry), and a page's outcome
// written while its incident was acknowledged deadlocked with the
// acknowledgement (SQLSTATE 40P01). An incident gone (retention) is
// simply not locked.
func lockIncidents(ctx context.Context, tx *sql.Tx, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT id FROM incidents WHERE id = ANY($1::text[]) ORDER BY id FOR KEY SHARE`, ids)
	if err != nil {
		return fmt.Errorf("lock incidents of notification outcomes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("lock incidents of notification outcomes: %w", err)
	}
	return nil
}

// recordedWithdrawn counts and logs the failed send of a message that was
// withdrawn while it was being sent, and announces its timeline entry: an
// expected end (the incident was acknowledged or resolved), not an error.
func (s *Sender) recordedWithdrawn(o *outcome) {
	m := &o.c.msg
	s.sent.WithLabelValues(m.Channel, "failed").Inc()
	s.logger.Info("notification withdrawn while being sent, and the send failed: not retried (the incident was acknowledged or resolved)",
		"incident", m.IncidentID, "channel", m.Channel, "user", m.User, "event", m.Event, "key", o.c.key, "err", o.derr)
	if p, ok := s.timeline.(timelinePublisher); ok && o.withdrawnEntry != nil {
		p.PublishTimeline(*o.withdrawnEntry)
	}
}

// The waits between writes of outcomes while the database is unreachable.
const (
	outcomeRetryMin = 250 * time.Millisecond
	outcomeRetryMax = 4 * time.Second
)

// sleep waits d on the sender's clock (a Manual clock in tests); false
// when ctx ended first.
func (s *Sender) sleep(ctx context.Context, d time.Duration) bool {
	var after <-chan time.Time
	if t, ok := s.clock.(clock.Timer); ok {
		after = t.After(d)
	} else {
		tm := time.NewTimer(d)
		defer tm.Stop()
		after = tm.C
	}
	select {
	case <-after:
		return true
	case <-ctx.Done():
		return false
	}
}

// prepare works out what recording o writes: the job's next state, after
// the backoff of a retry, and the timeline entry; it updates the channel's
// health.
func (s *Sender) prepare(cfg *Config, o *outcome) {
	now, c, derr := s.clock.Now(), o.c, o.derr
	if o.withdrawn {
		c.next = now
		o.result = "withdrawn"
		o.apply = func(context.Context, *sql.Tx) error { return nil }
		return
	}
	if o.held {
		at := now
		if o.behind != nil && o.behind.next.After(at) {
			at = o.behind.next
		}
		o.result = "held"
		o.apply = func(ctx context.Context, tx *sql.Tx) error { return jobs.Postpone(ctx, tx, c.id, s.owner, at) }
		return
	}
	c.next = now
	m := &c.msg
	data := map[string]any{"channel": m.Channel, "event": m.Event, "attempt": c.attempts}
	if m.User != "" {
		data["user"] = m.User
	}
	var kindMsg string
	who := m.Channel
	if m.User != "" {
		who = m.Channel + " to " + m.User
	}
	pause := s.channelResult(cfg, m.Channel, now, derr)
	switch {
	case derr == nil:
		o.result = "delivered"
		// Delivered also when withdrawn while it was being sent: it was,
		// also after its lease ended (late: what follows a page is
		// written for it then).
		o.apply = func(ctx context.Context, tx *sql.Tx) error {
			late, err := jobs.CompleteAttempt(ctx, tx, c.id, s.owner, now)
			if err != nil || !late {
				return err
			}
			o.late = true
			if s.OnLateDelivery == nil {
				return nil
			}
			return s.OnLateDelivery(ctx, tx, c.id, m, now)
		}
		kindMsg = fmt.Sprintf("Notification (%s) sent by %s", m.Event, who)
		if c.attempts > 1 {
			kindMsg += fmt.Sprintf(" after %d attempts", c.attempts)
		}
	default:
		var de *DeliveryError
		retry := errors.As(derr, &de) && de.Retryable && c.attempts < cfg.MaxAttempts
		data["error"] = derr.Error()
		if retry {
			wait := backoff(cfg, c.attempts)
			if de.RetryAfter > 0 {
				wait = min(de.RetryAfter, time.Duration(cfg.MaxBackoff))
			}
			// Not before the channel's pause ends.
			wait = max(wait, pause)
			o.result = "retry"
			c.next = now.Add(wait)
			o.apply = func(ctx context.Context, tx *sql.Tx) error {
				return jobs.Retry(ctx, tx, c.id, s.owner, now.Add(wait), derr.Error())
			}
			data["retry_in"] = wait.String()
			kindMsg = fmt.Sprintf("Notification (%s) by %s failed (attempt %d), retrying in %s: %v", m.Event, who, c.attempts, wait, derr)
		} else {
			o.result = "failed"
			o.apply = func(ctx context.Context, tx *sql.Tx) error {
				return jobs.Fail(ctx, tx, c.id, s.owner, now, derr.Error())
			}
			kindMsg = fmt.Sprintf("Notification (%s) by %s failed after %s, giving up: %v", m.Event, who, english.Count(c.attempts, "attempt", "attempts"), derr)
		}
	}
	if derr != nil && Withdrawable(m.Event, true) {
		// Should the message have been withdrawn while it was being
		// sent (its incident acknowledged or resolved), the failure
		// ends it: it is not retried.
		wdata := maps.Clone(data)
		wdata["withdrawn"] = true
		o.withdrawnEntry = &incident.TimelineEntry{IncidentID: m.IncidentID, Time: now, Kind: "notification", Actor: "sred",
			Message: fmt.Sprintf("Notification (%s) by %s failed while it was being withdrawn (the incident was acknowledged or resolved during the send), not retried: %v",
				m.Event, who, derr), Data: wdata}
	}
	// The timeline gets the first failure and the outcome, which counts the
	// attempts (foldRetries): not one entry per retry.
	if !foldRetry(o.result, c.attempts) {
		o.entry = &incident.TimelineEntry{IncidentID: m.IncidentID, Time: now, Kind: "notification", Actor: "sred", Message: kindMsg, Data: data}
	}
}

// recorded counts and logs an outcome that was stored, and announces its
// timeline entry.
func (s *Sender) recorded(o *outcome) {
	if o.held || o.withdrawn {
		return // not sent: no attempt to count
	}
	if o.withdrawnSend {
		s.recordedWithdrawn(o)
		return
	}
	m := &o.c.msg
	jr := o.result
	if jr == "delivered" {
		jr = jobs.StateDone
	}
	s.metrics.Run(jr)
	if o.result == "failed" {
		s.metrics.Failed(jobs.Kind(m.Channel))
	}
	s.sent.WithLabelValues(m.Channel, o.result).Inc()
	if o.late {
		s.logger.Warn("notification withdrawn while being sent was delivered after its sender's lease had ended; what follows the page is written now",
			"incident", m.IncidentID, "channel", m.Channel, "user", m.User, "event", m.Event, "key", o.c.key, "lease_until", o.c.leaseUntil)
	}
	if o.result != "delivered" {
		s.logger.Warn("notification not delivered", "incident", m.IncidentID, "channel", m.Channel, "user", m.User, "result", o.result, "err", o.derr)
	}
	if p, ok := s.timeline.(timelinePublisher); ok && o.entry != nil {
		p.PublishTimeline(*o.entry)
	}
}
