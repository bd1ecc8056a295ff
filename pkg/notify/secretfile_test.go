package notify

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestReadSecretFile: a secret file's content is kept between reads only
// while the file is the same, unchanged and settled; a rotation in place,
// by rename or of a file just written is read again.
func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	old := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	now := old.Add(time.Hour)
	write := func(content string, mod time.Time) {
		t.Helper()
		require.NoError(t, os.WriteFile(file, []byte(content), 0o600))
		require.NoError(t, os.Chtimes(file, mod, mod))
	}
	read := func(now time.Time) string {
		t.Helper()
		v, err := readSecretFile(file, now)
		require.NoError(t, err)
		return v
	}

	write("key-1\n", old)
	require.Equal(t, "key-1", read(now))
	// Same file, size and modification time: the kept content, which
	// shows that a read is a stat only.
	write("key-X\n", old)
	require.Equal(t, "key-1", read(now), "unchanged by size, time and file: kept")

	write("key-2\n", old.Add(time.Second))
	require.Equal(t, "key-2", read(now), "a new modification time")
	write("key-33\n", old.Add(time.Second))
	require.Equal(t, "key-33", read(now), "a new size")

	// Rotated by renaming a new file into place, with the old time and size.
	next := filepath.Join(dir, "token.new")
	require.NoError(t, os.WriteFile(next, []byte("key-44\n"), 0o600))
	require.NoError(t, os.Chtimes(next, old.Add(time.Second), old.Add(time.Second)))
	require.NoError(t, os.Rename(next, file))
	require.Equal(t, "key-44", read(now), "a new file at the path")

	// Written just now: read again at every use until it has settled, as
	// a rewrite within the timestamp granularity would not show.
	fresh := now.Add(-time.Second)
	write("key-5\n", fresh)
	require.Equal(t, "key-5", read(now))
	write("key-6\n", fresh)
	require.Equal(t, "key-6", read(now), "not kept: modified within secretSettle")
	require.Equal(t, "key-6", read(fresh.Add(secretSettle)))
	write("key-7\n", fresh)
	require.Equal(t, "key-6", read(fresh.Add(secretSettle)), "settled: kept")

	require.NoError(t, os.Remove(file))
	_, err := readSecretFile(file, now)
	require.ErrorContains(t, err, "read secret file")
}
