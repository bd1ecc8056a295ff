package auth_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/auth"
)

const goodHash = "$2a$10$xigoqRvU4BahZJSXUNJZS.tyMBem4B3t/FeNUHi81.dtUoRxzOmE6"

func TestParseUsersErrors(t *testing.T) {
	for _, c := range []struct{ name, in, err string }{
		{"unknown field", "users:\n  a: {password: '" + goodHash + "', role: viewer, admin: true}\n", "field admin not found"},
		{"unknown role", "users:\n  a: {password: '" + goodHash + "', role: root}\n", `unknown role "root" (want viewer, responder or admin)`},
		{"missing role", "users:\n  a: {password: '" + goodHash + "'}\n", "users: a: role is required (viewer, responder or admin)"},
		{"clear-text password", "users:\n  a: {password: hunter2, role: viewer}\n", "users: a: password: not a bcrypt hash (store hashes, never clear-text secrets"},
		{"missing password", "users:\n  a: {role: viewer}\n", "users: a: password: missing bcrypt hash"},
		{"colon in name", "users:\n  'a:b': {password: '" + goodHash + "', role: viewer}\n", `users: invalid user name "a:b"`},
		{"token without name", "tokens:\n  - {hash: '" + goodHash + "', role: viewer}\n", "tokens[0]: name is required"},
		{"token named like a user", "users:\n  a: {password: '" + goodHash + "', role: viewer}\ntokens:\n  - {name: a, hash: '" + goodHash + "', role: viewer}\n", `tokens[0]: name "a" is already used`},
		{"clear-text token", "tokens:\n  - {name: ci, hash: abc, role: viewer}\n", "tokens[0] (ci): hash: not a bcrypt hash"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := auth.ParseUsers([]byte(c.in))
			require.ErrorContains(t, err, c.err)
		})
	}
	f, err := auth.ParseUsers(nil)
	require.NoError(t, err, "an empty file lists nobody")
	require.True(t, auth.NewAuthenticator(f).Empty())
}

func TestAuthenticatorReloadAndWebConfigUsers(t *testing.T) {
	a := auth.NewAuthenticator(testUsers(t))
	p, ok := a.Password("rita", "rita-pw")
	require.True(t, ok)
	require.Equal(t, auth.Principal{Name: "rita", Role: auth.RoleResponder, OnCallID: "rita-oncall"}, p)
	require.NoError(t, a.AddUsers(map[string]string{"legacy": hash(t, "legacy-pw")}, auth.RoleAdmin))
	p, ok = a.Password("legacy", "legacy-pw")
	require.True(t, ok)
	require.Equal(t, auth.RoleAdmin, p.Role)
	require.ErrorContains(t, a.AddUsers(map[string]string{"rita": hash(t, "x")}, auth.RoleAdmin),
		`user "rita" is defined both in the users file and in basic_auth_users of the web config file`)
	// A reload that removes rita ends her access, cached or not.
	a.SetUsers(&auth.UsersFile{})
	_, ok = a.Password("rita", "rita-pw")
	require.False(t, ok)
	_, ok = a.Token("tok-admin")
	require.False(t, ok)
}
