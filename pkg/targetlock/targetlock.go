// Package targetlock holds one lease-based lock per target (an environment
// and service) in the store, shared by every subsystem that changes a
// target: chaos experiments, rollouts and scaling. While one holds the lock
// the others are refused, on one sred or across replicas on PostgreSQL. A
// holder renews its lease; a lock whose lease expired (its holder died) can
// be taken by anyone.
package targetlock

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/store"
)

// Migrations create the lock table.
var Migrations = []store.Migration{{
	ID: "targetlock/0001_init",
	SQLite: `CREATE TABLE target_locks (
		target TEXT PRIMARY KEY,
		kind TEXT NOT NULL,
		holder TEXT NOT NULL,
		acquired_ms BIGINT NOT NULL,
		expires_ms BIGINT NOT NULL
	)`,
}}

// ServiceKey is the target of a service in an environment,
// "environment/service", the one lock that chaos experiments, rollouts and
// scaling share. It is lower-cased: the safety checks compare service and
// environment names without regard to case ("Staging/API" is "staging/api"),
// and so must the lock, or a target written in another case would be
// locked apart. Other targets (a fault's resource: a proxy, a PID file's
// path) are compared as they are.
func ServiceKey(environment, service string) string {
	return strings.ToLower(environment + "/" + service)
}

// Lock is a held lock.
type Lock struct {
	Target   string    `json:"target"`
	Kind     string    `json:"kind"` // chaos, rollout, scaling
	Holder   string    `json:"holder"`
	Acquired time.Time `json:"acquired"`
	Expires  time.Time `json:"expires"`
}

// HeldError is returned when another holder has the lock.
type HeldError struct{ Lock Lock }

func (e *HeldError) Error() string {
	return fmt.Sprintf("target %s is locked by %s %s until %s", e.Lock.Target, e.Lock.Kind, e.Lock.Holder,
		e.Lock.Expires.UTC().Format(time.RFC3339))
}

// ErrNotHeld is returned by Renew when the holder lost the lock.
var ErrNotHeld = errors.New("target lock not held")

// Locks is the lock table.
type Locks struct{ db *store.DB }

// New returns the locks of db (migrated with Migrations).
func New(db *store.DB) *Locks { return &Locks{db: db} }

// Acquire takes the lock of target for holder, or renews it if holder has it.
func (l *Locks) Acquire(ctx context.Context, target, kind, holder string, now time.Time, ttl time.Duration) error {
	res, err := l.db.ExecContext(ctx, `INSERT INTO target_locks (target, kind, holder, acquired_ms, expires_ms)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (target) DO UPDATE SET kind = excluded.kind, holder = excluded.holder,
			acquired_ms = excluded.acquired_ms, expires_ms = excluded.expires_ms
		WHERE target_locks.expires_ms < $4 OR target_locks.holder = excluded.holder`,
		target, kind, holder, now.UnixMilli(), now.Add(ttl).UnixMilli())
	if err != nil {
		return fmt.Errorf("acquire target lock %s: %w", target, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	cur, err := l.Get(ctx, target)
	if err != nil {
		return err
	}
	if cur == nil {
		return fmt.Errorf("acquire target lock %s: lost a race, try again", target)
	}
	return &HeldError{Lock: *cur}
}

// Renew extends holder's lease.
func (l *Locks) Renew(ctx context.Context, target, holder string, now time.Time, ttl time.Duration) error {
	res, err := l.db.ExecContext(ctx, `UPDATE target_locks SET expires_ms = $1 WHERE target = $2 AND holder = $3`,
		now.Add(ttl).UnixMilli(), target, holder)
	if err != nil {
		return fmt.Errorf("renew target lock %s: %w", target, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrNotHeld
	}
	return nil
}

// Release drops holder's lock (no error when it is not held).
func (l *Locks) Release(ctx context.Context, target, holder string) error {
	if _, err := l.db.ExecContext(ctx, `DELETE FROM target_locks WHERE target = $1 AND holder = $2`, target, holder); err != nil {
		return fmt.Errorf("release target lock %s: %w", target, err)
	}
	return nil
}

// ReleaseHolder drops every lock of holder, whatever their targets: those
// of a holder that died, whose targets may no longer be named as they were
// when it took them (a process that has gone away).
func (l *Locks) ReleaseHolder(ctx context.Context, holder string) error {
	if _, err := l.db.ExecContext(ctx, `DELETE FROM target_locks WHERE holder = $1`, holder); err != nil {
		return fmt.Errorf("release the target locks of %s: %w", holder, err)
	}
	return nil
}

// Get returns the lock of target, or nil when none is recorded.
func (l *Locks) Get(ctx context.Context, target string) (*Lock, error) {
	var k Lock
	var acq, exp int64
	err := l.db.QueryRowContext(ctx, `SELECT target, kind, holder, acquired_ms, expires_ms FROM target_locks WHERE target = $1`, target).
		Scan(&k.Target, &k.Kind, &k.Holder, &acq, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read target lock %s: %w", target, err)
	}
	k.Acquired, k.Expires = time.UnixMilli(acq).UTC(), time.UnixMilli(exp).UTC()
	return &k, nil
}
