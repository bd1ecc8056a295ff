package auth

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

// TestHoldChecksTheUsersInForce: a stream authenticated just before a
// reload that revokes it, and registered just after, is ended at once.
func TestHoldChecksTheUsersInForce(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("rita-pw"), bcrypt.MinCost)
	require.NoError(t, err)
	a := NewAuthenticator(&UsersFile{Users: map[string]User{"rita": {PasswordHash: string(h), Role: RoleResponder}}}, Limits{})
	r := httptest.NewRequest("GET", "/api/v1/events", nil)
	r.SetBasicAuth("rita", "rita-pw")
	v, err := a.authenticate(r)
	require.NoError(t, err)

	a.SetUsers(&UsersFile{})
	ctx, end := a.hold(context.Background(), v)
	defer end()
	require.ErrorIs(t, context.Cause(ctx), ErrRevoked)
	require.Zero(t, a.Sessions())
}
