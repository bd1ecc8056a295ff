package cli

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/slo/slobench"
)

// BenchmarkGenerateFiles is `srectl generate -i DIR -o OUT` in-process, with
// the cost estimate on, on 1,000 SLOs in 500 files (pkg/slo/slobench): the
// Sloth import path (sloth) and the native format (native). One operation
// reads, validates, compiles, checks and writes all of them; the outputs are
// removed between operations so that every one writes the 500 rule files.
// cmd/bench-generate runs the same command as a process beside Sloth.
func BenchmarkGenerateFiles(b *testing.B) {
	dir := b.TempDir()
	slothDir, nativeDir := filepath.Join(dir, "sloth"), filepath.Join(dir, "native")
	require.NoError(b, slobench.Write(slothDir, nativeDir, 500))
	for _, in := range []struct{ name, dir string }{{"sloth", slothDir}, {"native", nativeDir}} {
		b.Run(in.name, func(b *testing.B) {
			out := filepath.Join(dir, "out-"+in.name)
			for b.Loop() {
				b.StopTimer()
				require.NoError(b, os.RemoveAll(out))
				b.StartTimer()
				if code := Main([]string{"generate", "-i", in.dir, "-o", out}, io.Discard, io.Discard); code != 0 {
					b.Fatalf("srectl generate exited %d", code)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N)/1000, "ms/SLO")
			entries, err := os.ReadDir(out)
			require.NoError(b, err)
			require.Len(b, entries, 500)
		})
	}
}
