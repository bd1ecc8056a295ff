package yamlerr

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestUnclosed: a quote, "[" or "{" left open is reported where it opened,
// with the line where the decoder noticed, for each testdata/unclosed/*.yml
// as its .golden file says (line:column: message, then Located's error).
// The last files are problems no open quote or bracket explains: they keep
// the decoder's message at the line of the problem.
func TestUnclosed(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "unclosed", "*.yml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yml"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			dec := yaml.NewDecoder(strings.NewReader(string(data)))
			for err == nil {
				var n yaml.Node
				err = dec.Decode(&n)
			}
			msg, line, col, ok := Syntax(data, err)
			require.True(t, ok, "decoder said: %v", err)
			got := fmt.Sprintf("%d:%d: %s\n%s\n", line, col, msg, Located(data, err))
			golden := strings.TrimSuffix(f, ".yml") + ".golden"
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			require.Equal(t, string(want), got)
		})
	}
}

// TestCloseFlowBounded: a line with many " #" (a posted spec of up to
// 1 MiB) gives at most maxCloseFlow documents to decode again, not one per
// " #".
func TestCloseFlowBounded(t *testing.T) {
	line := "objective: [99.9" + strings.Repeat(" #x", 10000)
	data := []byte("service: api\n" + line + "\nname: a\n")
	got := closeFlow(data, 2, ']')
	require.Len(t, got, maxCloseFlow)
	require.Equal(t, "service: api\nobjective: [99.9] #x", string(got[1][:len("service: api\nobjective: [99.9] #x")]))
}

// TestLineAt: lineAt over lineStarts reads each line as lineOf does,
// with and without a final line break, blank lines and "\r\n".
func TestLineAt(t *testing.T) {
	for _, data := range []string{"", "a", "a\n", "a\nb", "a\n\nb\n", "a\r\nb\r\n\r\n", "\n\n\n"} {
		starts := lineStarts([]byte(data))
		require.Len(t, starts, lineCount([]byte(data)), "%q", data)
		for n := 1; n <= lineCount([]byte(data)); n++ {
			require.Equal(t, string(lineOf([]byte(data), n)), string(lineAt([]byte(data), starts, n)), "%q line %d", data, n)
		}
	}
}

// TestUnclosedQuoteManyLines: a quote left open above a document marker
// 100,000 lines below (a posted spec can hold that many) is named, the
// lines read once.
func TestUnclosedQuoteManyLines(t *testing.T) {
	data := []byte("name: \"checkout\n" + strings.Repeat("\n", 100000) + "---\nname: b\n")
	var n yaml.Node
	err := yaml.Unmarshal(data, &n)
	require.Error(t, err)
	msg, line, col, ok := Syntax(data, err)
	require.True(t, ok, "decoder said: %v", err)
	require.Equal(t, "quoted string opened here is not closed before line 100002", msg)
	require.Equal(t, 1, line)
	require.Equal(t, 7, col)
}

// TestQuoteSearchBounded: looking above a problem for the quote left open
// decodes a large document again a bounded number of times (a posted spec
// of 1 MiB whose 200 lines above the problem each open a quote), not once
// per line.
func TestQuoteSearchBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("pad: |\n")
	for b.Len() < 1<<20 {
		b.WriteString("  " + strings.Repeat("x", 78) + "\n")
	}
	for i := range 100 {
		// A quoted string over two lines: its first line opens a quote.
		fmt.Fprintf(&b, "k%d: \"a\n  b\"\n", i)
	}
	b.WriteString("bad: a: b\n")
	data := []byte(b.String())
	var n yaml.Node
	err := yaml.Unmarshal(data, &n)
	require.Error(t, err)
	redecoded.Store(0)
	Syntax(data, err)
	require.LessOrEqual(t, redecoded.Load(), int64(maxSearchBytes+4*len(data)), "decoded %d bytes again for a document of %d", redecoded.Load(), len(data))
}
