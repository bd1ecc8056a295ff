// Package auth holds who is making a request to sred and what they may do.
//
// The HTTP layer authenticates a request (user file, API tokens, or the
// explicit no-auth mode for local trials) and stores the Principal in the
// request's context; handlers read it with FromContext and check a Role with
// Allows. The recorded actor of every write is Principal.Name, never a field
// of the request body.
package auth

import (
	"context"
	"path/filepath"
)

// Role orders what a principal may do: each role may do everything the
// roles below it may.
type Role int

const (
	// RoleNone may do nothing (unauthenticated).
	RoleNone Role = iota
	// RoleViewer may read.
	RoleViewer
	// RoleResponder may act on incidents: acknowledge, investigate, notes,
	// status updates, snooze, resolve, approve runbook steps it is allowed to.
	RoleResponder
	// RoleAdmin may also reload, flip kill switches and drive chaos,
	// rollouts and scaling.
	RoleAdmin
)

// String returns the role's name as written in the users file.
func (r Role) String() string {
	switch r {
	case RoleViewer:
		return "viewer"
	case RoleResponder:
		return "responder"
	case RoleAdmin:
		return "admin"
	default:
		return "none"
	}
}

// ParseRole reads a role name; ok is false for an unknown name.
func ParseRole(s string) (Role, bool) {
	switch s {
	case "viewer":
		return RoleViewer, true
	case "responder":
		return RoleResponder, true
	case "admin":
		return RoleAdmin, true
	}
	return RoleNone, false
}

// Allows reports whether r may do what needs min.
func (r Role) Allows(min Role) bool { return r >= min }

// Principal is the authenticated caller of a request.
type Principal struct {
	// Name is the user's (or token's) name, recorded as the actor.
	Name string
	// Role is what the principal may do.
	Role Role
	// OnCallID is the on-call identity the user maps to ("" when none).
	OnCallID string
	// NoAuth is true when sred runs in the explicit no-auth trial mode.
	NoAuth bool
}

type ctxKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal of a request, if one was set.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// FilePath returns path, a path of the server's file system (where a
// runbook, an experiment, an analysis, a rollout definition, a scaling
// policy or a service was loaded from), as the principal of ctx may see
// it: whole for an admin, who may read and change the configuration
// anyway; only its base name for the other roles and for a request
// without a principal, so that an answer tells files apart without
// showing where the server keeps its configuration and secrets. Every API
// answer and console page shows such paths through FilePath.
func FilePath(ctx context.Context, path string) string {
	if path == "" {
		return ""
	}
	if p, ok := FromContext(ctx); ok && p.Role.Allows(RoleAdmin) {
		return path
	}
	return filepath.Base(path)
}
