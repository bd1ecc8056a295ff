package specfiles

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	write("b.yaml", "beta")
	write("a.yml", "alpha")
	write("notes.txt", "ignored")
	load := func(f string) (string, error) {
		b, err := os.ReadFile(f)
		if string(b) == "broken" {
			return "", errors.New(f + ": broken")
		}
		return string(b), err
	}
	id := func(s string) string { return s }

	got, err := Load("thing", load, id, dir)
	require.NoError(t, err)
	require.Equal(t, []string{"alpha", "beta"}, got, "*.yml and *.yaml in name order, other files ignored")

	single := filepath.Join(dir, "a.yml")
	got, err = Load("thing", load, id, single)
	require.NoError(t, err)
	require.Equal(t, []string{"alpha"}, got, "a file is read as it is")

	c := write("c.yml", "alpha")
	_, err = Load("thing", load, id, dir)
	require.EqualError(t, err, c+`:1:1: thing "alpha" already defined in `+single, "at the name in the second file")
	require.NoError(t, os.Remove(c))

	write("d.yml", "broken")
	_, err = Load("thing", load, id, dir)
	require.ErrorContains(t, err, "d.yml: broken")

	_, err = Load("thing", load, id, filepath.Join(dir, "missing"))
	require.True(t, errors.Is(err, os.ErrNotExist), "%v", err)
	require.True(t, strings.Contains(err.Error(), "missing"))
}
