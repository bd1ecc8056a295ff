package auth_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/auth"
)

const goodHash = "$2a$10$xigoqRvU4BahZJSXUNJZS.tyMBem4B3t/FeNUHi81.dtUoRxzOmE6"

func TestParseUsersErrors(t *testing.T) {
	for _, c := range []struct{ name, in, err string }{
		{"unknown field", "users:\n  a: {password: '" + goodHash + "', role: viewer, admin: true}\n", `line 2: unknown field "admin"`},
		{"unknown role", "users:\n  a: {password: '" + goodHash + "', role: root}\n", `unknown role "root" (want viewer, responder or admin)`},
		{"missing role", "users:\n  a: {password: '" + goodHash + "'}\n", "users: a: role is required (viewer, responder or admin)"},
		{"clear-text password", "users:\n  a: {password: hunter2, role: viewer}\n", "users: a: password: not a bcrypt hash (store hashes, never clear-text secrets"},
		{"missing password", "users:\n  a: {role: viewer}\n", "users: a: password: missing bcrypt hash"},
		{"colon in name", "users:\n  'a:b': {password: '" + goodHash + "', role: viewer}\n", `users: invalid user name "a:b"`},
		{"token without name", "tokens:\n  - {hash: '" + goodHash + "', role: viewer}\n", "tokens[0]: name is required"},
		{"token named like a user", "users:\n  a: {password: '" + goodHash + "', role: viewer}\ntokens:\n  - {name: a, hash: '" + goodHash + "', role: viewer}\n", `tokens[0]: name "a" is already used`},
		{"clear-text token", "tokens:\n  - {name: ci, hash: abc, role: viewer}\n", "tokens[0] (ci): hash: not a bcrypt hash"},
		{"token without secret", "tokens:\n  - {name: ci, role: viewer}\n", "tokens[0] (ci): sha256 (the token's SHA-256) is required"},
		{"token with sha256 and hash", "tokens:\n  - {name: ci, sha256: " + sha("t") + ", hash: '" + goodHash + "', role: viewer}\n", "tokens[0] (ci): give sha256 or hash, not both"},
		{"clear-text token as sha256", "tokens:\n  - {name: ci, sha256: my-secret-token, role: viewer}\n", "tokens[0] (ci): sha256: want the 64 hexadecimal digits of the token's SHA-256"},
		{"long sha256", "tokens:\n  - {name: ci, sha256: " + sha("t") + "00, role: viewer}\n", "tokens[0] (ci): sha256: want the 64 hexadecimal digits"},
		{"short sha256", "tokens:\n  - {name: ci, sha256: " + sha("t")[:62] + ", role: viewer}\n", "tokens[0] (ci): sha256: want the 64 hexadecimal digits"},
		{"same token twice", "tokens:\n  - {name: ci, sha256: " + sha("t") + ", role: viewer}\n  - {name: bot, sha256: " + strings.ToUpper(sha("t")) + ", role: admin}\n", "tokens[1] (bot): the same token as tokens[0] (ci)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := auth.ParseUsers([]byte(c.in))
			require.ErrorContains(t, err, c.err)
		})
	}
	f, err := auth.ParseUsers(nil)
	require.NoError(t, err, "an empty file lists nobody")
	require.True(t, auth.NewAuthenticator(f, auth.Limits{}).Empty())
}

// TestLoadUsersFileErrors: the users file's errors name it, a syntax error
// at its line and column ("file:line:col: invalid YAML: ..."), as those of
// sred.yml, the SLO specs and the web config file read; no Go type names.
func TestLoadUsersFileErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ name, in, want string }{
		{"unclosed flow mapping", "users:\n  rita: {password: '" + goodHash + "', role: viewer\ntokens: []\n",
			`:2:9: invalid YAML: "{" opened here is not closed before line 3`},
		{"bad indentation", "users:\n  rita:\n    role: viewer\n   password: x\n",
			":4:4: invalid YAML: did not find expected key"},
		{"tab indentation", "users:\n\trita: {role: viewer}\n",
			":2:1: invalid YAML: found character that cannot start any token"},
		{"unknown field", "users:\n  a: {password: '" + goodHash + "', role: viewer, admin: true}\n",
			":2:95: unknown field \"admin\""},
		{"not a map", "users: [rita]\n",
			":1:8: cannot use a list here: want a mapping"},
		{"missing role", "users:\n  a: {password: '" + goodHash + "'}\n",
			":2:3: users: a: role is required (viewer, responder or admin)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".yml")
			require.NoError(t, os.WriteFile(path, []byte(c.in), 0o600))
			_, err := auth.LoadUsersFile(path)
			require.EqualError(t, err, "users file "+path+c.want)
		})
	}
}

func TestAuthenticatorReloadAndWebConfigUsers(t *testing.T) {
	a := auth.NewAuthenticator(testUsers(t), auth.Limits{})
	p, err := login(a, "192.0.2.1:1234", "rita", "rita-pw")
	require.NoError(t, err)
	require.Equal(t, auth.Principal{Name: "rita", Role: auth.RoleResponder, OnCallID: "rita-oncall"}, p)
	require.NoError(t, a.AddUsers(map[string]string{"legacy": hash(t, "legacy-pw")}, auth.RoleAdmin))
	p, err = login(a, "192.0.2.1:1234", "legacy", "legacy-pw")
	require.NoError(t, err)
	require.Equal(t, auth.RoleAdmin, p.Role)
	require.ErrorContains(t, a.AddUsers(map[string]string{"rita": hash(t, "x")}, auth.RoleAdmin),
		`user "rita" is defined both in the users file and in basic_auth_users of the web config file`)
	// A reload that removes rita ends her access, cached or not.
	a.SetUsers(&auth.UsersFile{})
	_, err = login(a, "192.0.2.1:1234", "rita", "rita-pw")
	require.ErrorIs(t, err, auth.ErrUnauthenticated)
	_, err = bearer(a, "192.0.2.1:1234", "tok-admin")
	require.ErrorIs(t, err, auth.ErrUnauthenticated)
}
