package auth_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/auth"
)

// TestUsersFileErrors: every problem of a users file reads "users file
// file:line:col: msg", one a line, without the decoder's Go types, as the
// errors of sred.yml and the SLO specs do (golden files in
// testdata/usersfile; -update rewrites them).
func TestUsersFileErrors(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "usersfile", "*.yml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := auth.LoadUsersFile(f)
			require.Error(t, err)
			golden := strings.TrimSuffix(f, ".yml") + ".golden"
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(err.Error()+"\n"), 0o644))
			}
			want, rerr := os.ReadFile(golden)
			require.NoError(t, rerr)
			require.Equal(t, strings.TrimSuffix(string(want), "\n"), err.Error())
			for _, line := range strings.Split(err.Error(), "\n") {
				require.Regexp(t, `^(users file )?`+regexp.QuoteMeta(f)+`:\d+:\d+: `, line)
			}
			require.NotRegexp(t, `\b(auth|map|\[\])[\w.]*\.?[A-Z]|\[\]string|line \d+:`, err.Error())
		})
	}
}
