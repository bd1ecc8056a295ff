package auth

import (
	"context"
	"errors"
	"fmt"
)

// ErrRevoked is the cause of the end of a live stream whose credentials a
// reload of the users revoked (see Access.Stream).
var ErrRevoked = errors.New("credentials revoked")

// session is a long-lived request (a live stream) of a grant, opened with
// role role, ended when a reload revokes it.
type session struct {
	g      grant
	role   Role
	cancel context.CancelCauseFunc
}

// hold returns the context of a long-lived request authenticated by v, and
// the function to call when the request ends. The context is canceled,
// with a cause wrapping ErrRevoked, when the users change so that v's
// entry no longer exists, has another secret (a changed password or token)
// or another role than v's, lower or higher: what a stream shows was
// decided by the role it was opened with (an admin's stream carries the
// server's paths whole, RedactEvent), so a stream whose role changed ends
// and its client reconnects under the role it has now.
func (a *Authenticator) hold(ctx context.Context, v verdict) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	s := &session{g: v.g, role: v.p.Role, cancel: cancel}
	a.sessMu.Lock()
	defer a.sessMu.Unlock()
	// The users may have changed since v was given: check it against those
	// in force now, as SetUsers checks the sessions it finds.
	if err := a.Users().allows(s.g, s.role); err != nil {
		a.revoked.Inc()
		cancel(err)
		return ctx, func() {}
	}
	a.sessions[s] = struct{}{}
	return ctx, func() {
		a.sessMu.Lock()
		delete(a.sessions, s)
		a.sessMu.Unlock()
		cancel(context.Canceled)
	}
}

// Sessions returns the number of live streams held (see Access.Stream).
func (a *Authenticator) Sessions() int {
	a.sessMu.Lock()
	defer a.sessMu.Unlock()
	return len(a.sessions)
}

// allows returns why a stream of g opened with role opened may no longer
// go on under f (nil when it may): g's entry is gone, has another secret,
// or another role.
func (f *UsersFile) allows(g grant, opened Role) error {
	var role Role
	if u, ok := f.Users[g.name]; ok {
		if u.PasswordHash != g.secret {
			return fmt.Errorf("%w: the password of %s changed", ErrRevoked, g.name)
		}
		role = u.Role
	} else {
		found := false
		for _, t := range f.Tokens {
			if t.Name != g.name {
				continue
			}
			if t.secret() != g.secret {
				return fmt.Errorf("%w: token %s changed", ErrRevoked, g.name)
			}
			found, role = true, t.Role
			break
		}
		if !found {
			return fmt.Errorf("%w: %s no longer exists", ErrRevoked, g.name)
		}
	}
	if role != opened {
		return fmt.Errorf("%w: the role of %s changed from %s to %s", ErrRevoked, g.name, opened, role)
	}
	return nil
}
