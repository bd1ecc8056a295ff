package notify

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
)

// Migrations create the outbox table.
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
}}

// Outbox states.
const (
	StatePending   = "pending"
	StateSending   = "sending"
	StateDelivered = "delivered"
	StateFailed    = "failed"
)

// Execer is satisfied by *sql.DB and *sql.Tx.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Enqueue writes a message to the outbox (usually inside the transaction of
// the escalation step that decided it). A message whose dedupKey is already
// in the outbox is dropped; it reports whether the message was new.
func Enqueue(ctx context.Context, ex Execer, now time.Time, dedupKey string, m *Message) (bool, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return false, fmt.Errorf("enqueue notification: %w", err)
	}
	res, err := ex.ExecContext(ctx, `INSERT INTO notify_outbox (dedup_key, incident_id, channel, user_name, message, state, next_attempt_at, created_at)
VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6) ON CONFLICT (dedup_key) DO NOTHING`,
		dedupKey, m.IncidentID, m.Channel, m.User, string(b), now.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("enqueue notification %s: %w", dedupKey, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
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
	Message     *Message   `json:"-"`
}

// Querier is satisfied by *sql.DB and *sql.Tx.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// List returns the outbox rows of an incident, oldest first.
func List(ctx context.Context, q Querier, incidentID string) ([]Record, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, dedup_key, incident_id, channel, user_name, message, state, attempts, next_attempt_at, last_error, created_at, delivered_at
FROM notify_outbox WHERE incident_id = $1 ORDER BY id`, incidentID)
	if err != nil {
		return nil, fmt.Errorf("list notifications of %s: %w", incidentID, err)
	}
	defer rows.Close()
	out := []Record{}
	for rows.Next() {
		var (
			r         Record
			msg       string
			next, cr  int64
			delivered sql.NullInt64
		)
		if err := rows.Scan(&r.ID, &r.Key, &r.IncidentID, &r.Channel, &r.User, &msg, &r.State, &r.Attempts, &next, &r.LastError, &cr, &delivered); err != nil {
			return nil, fmt.Errorf("list notifications of %s: %w", incidentID, err)
		}
		r.Message = &Message{}
		if err := json.Unmarshal([]byte(msg), r.Message); err != nil {
			return nil, fmt.Errorf("notification %d: %w", r.ID, err)
		}
		r.Event, r.To = r.Message.Event, r.Message.To
		r.NextAttempt, r.CreatedAt = time.UnixMilli(next).UTC(), time.UnixMilli(cr).UTC()
		if delivered.Valid {
			t := time.UnixMilli(delivered.Int64).UTC()
			r.DeliveredAt = &t
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Clock tells the time.
type Clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Sender drains the outbox. Several senders (replicas) may run against one
// database: each claims rows under a lease, so a row is sent by one sender at
// a time, and a sender that dies mid-send leaves its rows to be retried when
// the lease expires (delivery is at least once; PagerDuty dedups by key).
type Sender struct {
	db       *store.DB
	clock    Clock
	logger   *slog.Logger
	timeline incident.TimelineWriter
	owner    string
	client   *http.Client

	// Tick is how often Run looks for due messages; Batch bounds one claim;
	// Lease is how long a claim stays exclusive.
	Tick  time.Duration
	Batch int
	Lease time.Duration

	mu  sync.RWMutex
	cfg *Config

	poke chan struct{}
	sent *prometheus.CounterVec
}

// Poke makes Run look for due messages now instead of at its next tick
// (called after a transaction wrote to the outbox). It never blocks.
func (s *Sender) Poke() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// NewSender returns a sender. timeline may be nil; reg may be nil.
func NewSender(db *store.DB, cfg *Config, clock Clock, timeline incident.TimelineWriter, logger *slog.Logger, reg prometheus.Registerer) *Sender {
	if clock == nil {
		clock = systemClock{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	s := &Sender{
		db: db, clock: clock, logger: logger, timeline: timeline, cfg: cfg,
		owner:  hex.EncodeToString(rnd[:]),
		poke:   make(chan struct{}, 1),
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		Tick:   time.Second, Batch: 32, Lease: Lease,
	}
	s.sent = promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Namespace: "sre",
		Name:      "notifications_total",
		Help:      "Notification delivery attempts by channel and result (delivered, retry, failed).",
	}, []string{"channel", "result"})
	for _, ch := range Channels {
		for _, r := range []string{"delivered", "retry", "failed"} {
			s.sent.WithLabelValues(ch, r)
		}
	}
	promauto.With(reg).NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "sre",
		Name:      "notifications_pending",
		Help:      "Notifications waiting in the outbox (pending or being sent).",
	}, func() float64 {
		var n int64
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM notify_outbox WHERE state IN ('pending', 'sending')`).Scan(&n); err != nil {
			return -1
		}
		return float64(n)
	})
	return s
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

// Lease is how long a claimed message stays exclusive to its sender; a
// delivery attempt (notifications.timeout) must end well before it.
const Lease = 2 * time.Minute

// Run delivers due messages every Tick until ctx is cancelled. Each channel
// is a lane of its own: while a channel's batch is being sent (a provider
// that hangs until the timeout, say), the other channels' messages keep
// being claimed and sent on every tick.
func (s *Sender) Run(ctx context.Context) error {
	t := time.NewTicker(s.Tick)
	defer t.Stop()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		busy = map[string]bool{}
	)
	defer wg.Wait()
	for {
		mu.Lock()
		exclude := make([]string, 0, len(busy))
		for ch := range busy {
			exclude = append(exclude, ch)
		}
		mu.Unlock()
		cfg := s.config()
		batch, err := s.claim(ctx, s.clock.Now(), exclude)
		if err != nil && ctx.Err() == nil {
			s.logger.Warn("deliver notifications", "err", err)
		}
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
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.poke:
		}
	}
}

type claimed struct {
	id       int64
	key      string
	attempts int
	msg      Message
}

// claim leases up to Batch due rows, leaving out the channels in exclude.
func (s *Sender) claim(ctx context.Context, now time.Time, exclude []string) ([]claimed, error) {
	args := []any{s.owner, now.Add(s.Lease).UnixMilli(), now.UnixMilli(), s.Batch}
	skip := ""
	if len(exclude) > 0 {
		ph := make([]string, len(exclude))
		for i, ch := range exclude {
			args = append(args, ch)
			ph[i] = fmt.Sprintf("$%d", len(args))
		}
		skip = ` AND channel NOT IN (` + strings.Join(ph, ", ") + `)`
	}
	inner := `SELECT id FROM notify_outbox
WHERE ((state = 'pending' AND next_attempt_at <= $3) OR (state = 'sending' AND lease_until <= $3))` + skip + `
ORDER BY next_attempt_at, id LIMIT $4`
	if s.db.Dialect == store.Postgres {
		inner += ` FOR UPDATE SKIP LOCKED`
	}
	rows, err := s.db.QueryContext(ctx, `UPDATE notify_outbox SET state = 'sending', lease_owner = $1, lease_until = $2, attempts = attempts + 1
WHERE id IN (`+inner+`) RETURNING id, dedup_key, attempts, message`, args...)
	if err != nil {
		return nil, fmt.Errorf("claim notifications: %w", err)
	}
	defer rows.Close()
	var out []claimed
	for rows.Next() {
		var c claimed
		var msg string
		if err := rows.Scan(&c.id, &c.key, &c.attempts, &msg); err != nil {
			return nil, fmt.Errorf("claim notifications: %w", err)
		}
		if err := json.Unmarshal([]byte(msg), &c.msg); err != nil {
			return nil, fmt.Errorf("notification %d: %w", c.id, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// DeliverDue claims every message due now (up to Batch), sends them all
// concurrently and waits for the outcomes; it returns how many were
// attempted. Run does not wait: see its lanes.
func (s *Sender) DeliverDue(ctx context.Context) (int, error) {
	cfg := s.config()
	batch, err := s.claim(ctx, s.clock.Now(), nil)
	if err != nil || len(batch) == 0 {
		return 0, err
	}
	s.deliverAll(ctx, cfg, batch)
	return len(batch), nil
}

// deliverAll sends claimed messages concurrently (at most Batch, as
// claimed), each within cfg.Timeout, shorter than the lease.
func (s *Sender) deliverAll(ctx context.Context, cfg *Config, batch []claimed) {
	d := &deliverer{cfg: cfg, client: s.client, now: s.clock.Now}
	var wg sync.WaitGroup
	for i := range batch {
		c := &batch[i]
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, time.Duration(cfg.Timeout))
			err := d.deliver(sctx, &c.msg)
			cancel()
			s.record(ctx, cfg, c, err)
		})
	}
	wg.Wait()
}

// backoff is min_backoff * 2^(attempt-1), capped at max_backoff.
func backoff(cfg *Config, attempt int) time.Duration {
	d := time.Duration(cfg.MinBackoff)
	for i := 1; i < attempt && d < time.Duration(cfg.MaxBackoff); i++ {
		d *= 2
	}
	return min(d, time.Duration(cfg.MaxBackoff))
}

func (s *Sender) record(ctx context.Context, cfg *Config, c *claimed, derr error) {
	now := s.clock.Now()
	m := &c.msg
	data := map[string]any{"channel": m.Channel, "event": m.Event, "attempt": c.attempts}
	if m.User != "" {
		data["user"] = m.User
	}
	var (
		q, result, kindMsg string
		args               []any
	)
	who := m.Channel
	if m.User != "" {
		who = m.Channel + " to " + m.User
	}
	switch {
	case derr == nil:
		result = "delivered"
		q = `UPDATE notify_outbox SET state = 'delivered', delivered_at = $1, last_error = '' WHERE id = $2 AND lease_owner = $3`
		args = []any{now.UnixMilli(), c.id, s.owner}
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
			result = "retry"
			q = `UPDATE notify_outbox SET state = 'pending', next_attempt_at = $1, last_error = $2 WHERE id = $3 AND lease_owner = $4`
			args = []any{now.Add(wait).UnixMilli(), derr.Error(), c.id, s.owner}
			data["retry_in"] = wait.String()
			kindMsg = fmt.Sprintf("Notification (%s) by %s failed (attempt %d), retrying in %s: %v", m.Event, who, c.attempts, wait, derr)
		} else {
			result = "failed"
			q = `UPDATE notify_outbox SET state = 'failed', last_error = $1 WHERE id = $2 AND lease_owner = $3`
			args = []any{derr.Error(), c.id, s.owner}
			kindMsg = fmt.Sprintf("Notification (%s) by %s failed after %d attempt(s), giving up: %v", m.Event, who, c.attempts, derr)
		}
	}
	if _, err := s.db.ExecContext(ctx, q, args...); err != nil {
		s.logger.Error("record notification outcome", "key", c.key, "err", err)
		return
	}
	s.sent.WithLabelValues(m.Channel, result).Inc()
	if result != "delivered" {
		s.logger.Warn("notification not delivered", "incident", m.IncidentID, "channel", m.Channel, "user", m.User, "result", result, "err", derr)
	}
	// The timeline gets the first failure and the outcome, which counts the
	// attempts (foldRetries): not one entry per retry.
	if s.timeline != nil && !foldRetry(result, c.attempts) {
		if err := s.timeline.AddTimeline(ctx, nil, incident.TimelineEntry{
			IncidentID: m.IncidentID, Time: now, Kind: "notification", Actor: "sred", Message: kindMsg, Data: data,
		}); err != nil {
			s.logger.Warn("write notification to timeline", "incident", m.IncidentID, "err", err)
		}
	}
}
