package auth_test

import (
	"path/filepath"
	"regexp"
	"testing"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestUsersFileErrors: every problem of a users file reads "users file
// file:line:col: msg", one a line, without the decoder's Go types, as the
// errors of sred.yml and the SLO specs do (golden files in
// testdata/usersfile; -update rewrites them).
func TestUsersFileErrors(t *testing.T) {
	testutil.ErrorGoldens(t, filepath.Join("testdata", "usersfile"), *update, func(f string) error {
		_, err := auth.LoadUsersFile(f)
		return err
	}, "users file ", regexp.MustCompile(`\b(auth|map|\[\])[\w.]*\.?[A-Z]|\[\]string|line \d+:`))
}
