package secretfile

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRead: a secret file's content is kept between reads only while the
// file is the same, unchanged and settled; a rotation in place, by rename
// or of a file just written is read again.
func TestRead(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	old := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	now := old.Add(time.Hour)
	write := func(content string, mod time.Time) {
		t.Helper()
		require.NoError(t, os.WriteFile(file, []byte(content), 0o600))
		require.NoError(t, os.Chtimes(file, mod, mod))
	}
	get := func(now time.Time) string {
		t.Helper()
		v, err := read(file, now)
		require.NoError(t, err)
		return v
	}

	write("key-1\n", old)
	require.Equal(t, "key-1", get(now))
	// Same file, size and modification time: the kept content, which
	// shows that a read is a stat only.
	write("key-X\n", old)
	require.Equal(t, "key-1", get(now), "unchanged by size, time and file: kept")

	write("key-2\n", old.Add(time.Second))
	require.Equal(t, "key-2", get(now), "a new modification time")
	write("key-33\n", old.Add(time.Second))
	require.Equal(t, "key-33", get(now), "a new size")

	// Rotated by renaming a new file into place, with the old time and size.
	next := filepath.Join(dir, "token.new")
	require.NoError(t, os.WriteFile(next, []byte("key-44\n"), 0o600))
	require.NoError(t, os.Chtimes(next, old.Add(time.Second), old.Add(time.Second)))
	require.NoError(t, os.Rename(next, file))
	require.Equal(t, "key-44", get(now), "a new file at the path")

	// Written just now: read again at every use until it has settled, as
	// a rewrite within the timestamp granularity would not show.
	fresh := now.Add(-time.Second)
	write("key-5\n", fresh)
	require.Equal(t, "key-5", get(now))
	write("key-6\n", fresh)
	require.Equal(t, "key-6", get(now), "not kept: modified within Settle")
	require.Equal(t, "key-6", get(fresh.Add(Settle)))
	write("key-7\n", fresh)
	require.Equal(t, "key-6", get(fresh.Add(Settle)), "settled: kept")

	require.NoError(t, os.Remove(file))
	_, err := read(file, now)
	require.ErrorContains(t, err, "read secret file")
}

// TestSource: an inline secret is its value; a file's is read at each
// Get, and a missing or empty file is an error (a check against it fails
// closed), not "".
func TestSource(t *testing.T) {
	require.True(t, Source{}.IsZero())
	v, err := Source{}.Get()
	require.NoError(t, err)
	require.Empty(t, v)
	v, err = Inline("s3cret").Get()
	require.NoError(t, err)
	require.Equal(t, "s3cret", v)

	file := filepath.Join(t.TempDir(), "token")
	src := FromFile(file)
	require.False(t, src.IsZero())
	_, err = src.Get()
	require.ErrorIs(t, err, os.ErrNotExist)

	require.NoError(t, os.WriteFile(file, []byte("token-1\n"), 0o600))
	v, err = src.Get()
	require.NoError(t, err)
	require.Equal(t, "token-1", v)
	require.NoError(t, os.WriteFile(file, []byte("token-22\n"), 0o600))
	v, err = src.Get()
	require.NoError(t, err)
	require.Equal(t, "token-22", v, "rotated: read again")

	require.NoError(t, os.WriteFile(file, []byte(" \n"), 0o600))
	_, err = src.Get()
	require.ErrorIs(t, err, ErrEmpty)
	require.ErrorContains(t, err, file)
}

// BenchmarkRead is a use of an unchanged, settled secret file: the cost a
// webhook delivery pays to check its bearer token.
func BenchmarkRead(b *testing.B) {
	file := filepath.Join(b.TempDir(), "token")
	require.NoError(b, os.WriteFile(file, []byte("0123456789abcdef0123456789abcdef\n"), 0o600))
	old := time.Now().Add(-time.Hour)
	require.NoError(b, os.Chtimes(file, old, old))
	src := FromFile(file)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := src.Get(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEqual: the configured secret is accepted; a presented secret of
// another length, one of the same length that differs, a prefix and an
// empty one are refused.
func TestEqual(t *testing.T) {
	const want = "s3cret-webhook-token"
	for _, tc := range []struct {
		presented string
		ok        bool
	}{
		{want, true},
		{"s3cret-webhook-tokeX", false},
		{"s3cret-webhook-token-and-more", false},
		{"s3cret", false},
		{"", false},
		{" " + want, false},
	} {
		require.Equal(t, tc.ok, Equal(tc.presented, want), "%q", tc.presented)
	}
}

// TestSecretsComparedByDigest: no code of sred compares secrets with
// subtle.ConstantTimeCompare but Equal, whose digests are of one size: on
// the secrets themselves it returns at once when the lengths differ, and
// the time of a refusal tells the secret's length.
func TestSecretsComparedByDigest(t *testing.T) {
	root := filepath.Join("..", "..")
	var offenders []string
	for _, dir := range []string{"pkg", "cmd"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "ConstantTimeCompare" {
					return true
				}
				if fn := enclosingFunc(f, sel.Pos()); filepath.Base(filepath.Dir(path)) == "secretfile" && fn == "Equal" {
					return true
				}
				offenders = append(offenders, filepath.ToSlash(path))
				return true
			})
			return nil
		})
		require.NoError(t, err)
	}
	require.Empty(t, offenders, "compare a presented secret with secretfile.Equal")
}

// enclosingFunc is the name of the top-level function of f around pos.
func enclosingFunc(f *ast.File, pos token.Pos) string {
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Pos() <= pos && pos < fd.End() {
			return fd.Name.Name
		}
	}
	return ""
}
