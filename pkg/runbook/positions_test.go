package runbook

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDuplicateRunbookPosition: a runbook name used twice is positioned
// at the name of the second file, as sred.yml's checks are (golden file
// testdata/dup.golden).
func TestDuplicateRunbookPosition(t *testing.T) {
	var rbs []*Runbook
	for _, f := range []string{"testdata/dup/a.yml", "testdata/dup/b.yml"} {
		rb, err := LoadFile(f)
		require.NoError(t, err)
		rbs = append(rbs, rb)
	}
	_, err := NewSet(Config{}, rbs...)
	require.Error(t, err)
	want, rerr := os.ReadFile("testdata/dup.golden")
	require.NoError(t, rerr)
	require.Equal(t, strings.TrimSuffix(string(want), "\n"), err.Error())
}
