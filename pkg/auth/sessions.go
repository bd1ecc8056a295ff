package auth

import (
	"context"
	"errors"
	"fmt"
)

// ErrRevoked is the cause of the end of a live stream whose credentials a
// reload of the users revoked (see Access.Stream).
var ErrRevoked = errors.New("credentials revoked")

// session is a long-lived request (a live stream) of a grant, ended when a
// reload revokes it.
type session struct {
	g      grant
	need   Role
	cancel context.CancelCauseFunc
}

// hold returns the context of a long-lived request authenticated by v on a
// route that needs role need, and the function to call when the request
// ends. The context is canceled, with a cause wrapping ErrRevoked, when
// the users change so that v's entry no longer exists, has another secret
// (a changed password or token) or a role below need.
func (a *Authenticator) hold(ctx context.Context, v verdict, need Role) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	s := &session{g: v.g, need: need, cancel: cancel}
	a.sessMu.Lock()
	defer a.sessMu.Unlock()
	// The users may have changed since v was given: check it against those
	// in force now, as SetUsers checks the sessions it finds.
	if err := a.Users().allows(v.g, need); err != nil {
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

// allows returns why g may no longer make a request that needs role need
// under f (nil when it may).
func (f *UsersFile) allows(g grant, need Role) error {
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
	if !role.Allows(need) {
		return fmt.Errorf("%w: %s has role %s, the stream needs %s", ErrRevoked, g.name, role, need)
	}
	return nil
}
