package cli

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rootuip/sre/pkg/testutil"
)

var (
	// docFence is a fenced code block of Markdown; docInline an inline code span.
	docFence  = regexp.MustCompile("(?ms)^\\s*```[^\n]*\n(.*?)^\\s*```")
	docInline = regexp.MustCompile("`([^`\n]+)`")
	// docSubst is a shell command substitution: one word for the parser.
	docSubst = regexp.MustCompile(`\$\([^)]*\)`)
	// docCommand is the start of an srectl command line.
	docCommand = regexp.MustCompile(`(?:^|[\s(;&|])((?:\./)?(?:bin/)?srectl\s+[a-z].*)`)
)

// docCommands returns the srectl command lines of a Markdown text: those
// of its code blocks and inline code that start with srectl or
// bin/srectl, cut at the end of the command (a comment, pipe, redirection
// or the next command).
func docCommands(text string) []string {
	var spans []string
	for _, m := range docFence.FindAllStringSubmatch(text, -1) {
		spans = append(spans, strings.Split(m[1], "\n")...)
	}
	rest := docFence.ReplaceAllString(text, "")
	for _, m := range docInline.FindAllStringSubmatch(rest, -1) {
		spans = append(spans, m[1])
	}
	var out []string
	for _, s := range spans {
		m := docCommand.FindStringSubmatch(s)
		if m == nil {
			continue
		}
		line := m[1]
		for _, stop := range []string{" #", " |", " >", " 2>", ";", " &&", " ||", " [", " ─>"} {
			if i := strings.Index(line, stop); i >= 0 {
				line = line[:i]
			}
		}
		out = append(out, strings.TrimSpace(line))
	}
	return out
}

// shellWords splits a command line as a shell would for these commands:
// on blanks, with '...' and "..." quoting, a command substitution one word.
func shellWords(line string) []string {
	line = docSubst.ReplaceAllString(line, "X")
	var words []string
	var cur strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(c)
		case c == '\'' || c == '"':
			quote, in = c, true
		case c == ' ' || c == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case c == '\\':
			// a line continuation or an escaped character: the next one
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// docIncomplete reports whether a parse error is only about what a
// mention in prose leaves out (`srectl gate`, `srectl check config`): a
// required argument or flag, a subcommand, or a flag's value.
func docIncomplete(err error) bool {
	msg := err.Error()
	for _, s := range []string{"required argument", "required flag", "must select a subcommand", "expected argument for flag"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// TestDocCommandsParse parses every srectl command that the README and
// docs/ show (code blocks and inline code) with srectl's own command
// model, without running it: a command, subcommand or flag the docs name
// that srectl does not have fails here, not in a reader's first minutes.
// Placeholders (INC-..., <id>) are arguments like any other.
func TestDocCommandsParse(t *testing.T) {
	root := testutil.RepoRoot(t)
	files := []string{filepath.Join(root, "README.md")}
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, docs...)
	more, err := filepath.Glob(filepath.Join(root, "examples", "*", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, more...)
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		for _, line := range docCommands(string(b)) {
			words := shellWords(line)
			if len(words) < 2 || strings.ContainsAny(line, "|") || slices.Contains(words, "...") {
				// an alternation or ellipsis of prose: srectl runbook validate|list|...
				continue
			}
			n++
			app, _, _ := newApp(io.Discard, io.Discard)
			if _, done, _, err := parse(app, words[1:]); err != nil && !done && !docIncomplete(err) {
				t.Errorf("%s: `%s`: %v", rel, line, cutParseError(err))
			}
		}
	}
	if n < 20 {
		t.Fatalf("found %d srectl commands in the README and docs/, want the tour's and more", n)
	}
	t.Logf("%d srectl commands parsed", n)
}
