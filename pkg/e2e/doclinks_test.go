package e2e

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rootuip/sre/pkg/testutil"
)

var (
	// mdFence and mdCode are code, whose brackets are not links.
	mdFence = regexp.MustCompile("(?ms)^\\s*```.*?^\\s*```")
	mdCode  = regexp.MustCompile("`[^`\n]*`")
	// mdLink is the target of an inline link or image: [text](target).
	mdLink    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	mdHeading = regexp.MustCompile(`(?m)^#{1,6}\s+(.*?)\s*#*\s*$`)
	mdAnchor  = regexp.MustCompile(`<a\s+(?:name|id)="([^"]+)"`)
	// slugDrop is what GitHub leaves out of a heading's anchor.
	slugDrop = regexp.MustCompile(`[^\p{L}\p{N}_\- ]`)
)

// docFiles returns the Markdown files a reader follows links between: the
// README, docs/ and the READMEs of examples/.
func docFiles(t *testing.T, root string) []string {
	t.Helper()
	files := []string{filepath.Join(root, "README.md")}
	for _, dir := range []string{"docs", "examples"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(p, ".md") && !strings.Contains(p, string(filepath.Separator)+"testdata"+string(filepath.Separator)) {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// anchors returns the anchors of a Markdown file as GitHub makes them:
// each heading lower-cased, without punctuation, spaces as hyphens, a
// repeated one suffixed -1, -2, ...; and the explicit <a name|id>.
func anchors(text string) map[string]bool {
	text = mdFence.ReplaceAllString(text, "")
	out := map[string]bool{}
	seen := map[string]int{}
	for _, m := range mdHeading.FindAllStringSubmatch(text, -1) {
		slug := strings.ReplaceAll(slugDrop.ReplaceAllString(strings.ToLower(m[1]), ""), " ", "-")
		if n := seen[slug]; n > 0 {
			out[slug+"-"+strconv.Itoa(n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	for _, m := range mdAnchor.FindAllStringSubmatch(text, -1) {
		out[m[1]] = true
	}
	return out
}

// TestDocLinks follows every relative link of the README, docs/ and the
// READMEs of examples/: the file or directory it names exists, and an
// anchor into a Markdown file names one of its headings.
func TestDocLinks(t *testing.T) {
	root := testutil.RepoRoot(t)
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	anchorsOf := map[string]map[string]bool{}
	hasAnchor := func(p, anchor string) bool {
		if anchorsOf[p] == nil {
			anchorsOf[p] = anchors(read(p))
		}
		return anchorsOf[p][anchor]
	}
	n := 0
	for _, f := range docFiles(t, root) {
		prose := mdCode.ReplaceAllString(mdFence.ReplaceAllString(read(f), ""), "")
		rel, _ := filepath.Rel(root, f)
		for _, m := range mdLink.FindAllStringSubmatch(prose, -1) {
			link := m[1]
			if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
				continue
			}
			n++
			path, anchor, _ := strings.Cut(link, "#")
			target := f
			if path != "" {
				target = filepath.Join(filepath.Dir(f), path)
				if _, err := os.Stat(target); err != nil {
					t.Errorf("%s: link %s: %v", rel, link, err)
					continue
				}
			}
			if anchor != "" && strings.HasSuffix(target, ".md") && !hasAnchor(target, anchor) {
				t.Errorf("%s: link %s: no heading of %s has the anchor #%s", rel, link, filepath.Base(target), anchor)
			}
		}
	}
	if n < 100 {
		t.Fatalf("%d relative links found: the pattern no longer matches the documentation", n)
	}
}
