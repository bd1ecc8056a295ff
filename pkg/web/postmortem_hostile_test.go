package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// live reports whether the byte at i of a Markdown text is syntax, not
// escaped: preceded by an even number of backslashes (each pair an
// escaped backslash).
func live(md string, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && md[j] == '\\'; j-- {
		n++
	}
	return n%2 == 0
}

// livePipes counts the pipes of a table row that separate its cells.
func livePipes(row string) int {
	n := 0
	for i := range len(row) {
		if row[i] == '|' && live(row, i) {
			n++
		}
	}
	return n
}

// TestPostmortemBackslashes: an alert's labels, an action item and a
// note written with backslashes before Markdown syntax ("\[", "\|") reach
// the drafted post-mortem over HTTP as text: no link, and every table row
// keeps its columns. Before, a value's backslash was left as it was, so
// "\[x\](javascript:...)" read an escaped backslash and a live link, and
// "\|" a pipe that ended the cell. On SQLite and PostgreSQL.
func TestPostmortemBackslashes(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc := newIncidentService(t, db)
		const link = `\[click\](javascript:alert(1))`
		n := notification("g1", `checkout\|x`, "critical")
		n.Alerts[0].Labels["alertname"] = `Down` + link + `\|`
		_, err := svc.Ingest(context.Background(), n)
		require.NoError(t, err)
		srv := incidentsServer(t, svc)
		page, err := svc.List(context.Background(), incident.Filter{})
		require.NoError(t, err)
		require.Len(t, page.Incidents, 1)
		inc := srv.URL + "/api/v1/incidents/" + page.Incidents[0].ID
		for _, c := range []struct{ path, body string }{
			{"/action-items", `{"title":"fix ` + strings.ReplaceAll(link, `\`, `\\`) + `","owner":"bob\\|x"}`},
			{"/notes", `{"actor":"al\\|ice","text":"see ` + strings.ReplaceAll(link, `\`, `\\`) + ` \\| done"}`},
			{"/resolve", `{"note":"rolled back ` + strings.ReplaceAll(link, `\`, `\\`) + `"}`},
		} {
			code, resp := call(t, "POST", inc+c.path, c.body)
			require.Less(t, code, 300, "%s: %+v", c.path, resp)
		}

		resp, err := http.Get(inc + "/postmortem?format=markdown")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		md := string(b)
		require.Contains(t, md, "javascript:alert(1)", "the values are in the draft")

		for i := 0; i+1 < len(md); i++ {
			if md[i] == ']' && md[i+1] == '(' && live(md, i) {
				line := md[strings.LastIndexByte(md[:i], '\n')+1:]
				line, _, _ = strings.Cut(line, "\n")
				t.Fatalf("a live link in the post-mortem: %s", line)
			}
		}
		section := ""
		for _, line := range strings.Split(md, "\n") {
			if strings.HasPrefix(line, "## ") || strings.HasPrefix(line, "# ") {
				section = line
			}
			if !strings.HasPrefix(line, "|") {
				continue
			}
			want := map[string]int{"## Timeline": 4, "## Action items": 5}[section]
			if want == 0 {
				want = 3 // the two-column tables
			}
			require.Equal(t, want, livePipes(line), "%s: %s", section, line)
		}
	})
}

// TestPostmortemImpactIsText: the impact statement a responder posts
// (POST .../impact) is drafted into the post-mortem as text, its lines
// kept: it can add no heading or section (a "## Root cause" of its own, a
// line underlined "==="), no HTML and no link. Before, it was written as
// it came, the one value of the draft left raw. On SQLite and PostgreSQL.
func TestPostmortemImpactIsText(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc := newIncidentService(t, db)
		_, err := svc.Ingest(context.Background(), notification("g1", "checkout", "critical"))
		require.NoError(t, err)
		srv := incidentsServer(t, svc)
		page, err := svc.List(context.Background(), incident.Filter{})
		require.NoError(t, err)
		require.Len(t, page.Incidents, 1)
		inc := srv.URL + "/api/v1/incidents/" + page.Incidents[0].ID

		const impact = "Checkouts failed.\n\n## Root cause\n\nBob did it\n===\n   # again\n<img src=x onerror=alert(1)>\n[click](javascript:alert(1))\n```\n---"
		code, resp := call(t, "POST", inc+"/impact", `{"impact":`+jsonString(impact)+`}`)
		require.Equal(t, http.StatusOK, code, "%+v", resp)

		r, err := http.Get(inc + "/postmortem?format=markdown")
		require.NoError(t, err)
		defer r.Body.Close()
		require.Equal(t, http.StatusOK, r.StatusCode)
		b, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		md := string(b)
		var headings []string
		for _, line := range strings.Split(md, "\n") {
			if strings.HasPrefix(strings.TrimLeft(line, " "), "#") || strings.HasPrefix(line, "=") || strings.HasPrefix(line, "---") || strings.HasPrefix(line, "```") {
				headings = append(headings, line)
			}
		}
		require.Equal(t, []string{"# Post-mortem: " + page.Incidents[0].ID + " — Down on checkout", "## Summary", "## Impact",
			"## Timeline", "## Detection, response and resolution", "## Root cause", "## Action items", "## Lessons learned"}, headings, md)
		require.NotContains(t, md, "<img", md)
		require.NotContains(t, md, "[click]", md)
		_, after, _ := strings.Cut(md, "## Impact\n\n")
		text, _, _ := strings.Cut(after, "\n\n## Timeline")
		require.Equal(t, "Checkouts failed.\n\n\\## Root cause\n\nBob did it\n\\===\n\\# again\n&lt;img src=x onerror=alert(1)&gt;\n\\[click\\](javascript:alert(1))\n\\```\n\\---", text)
	})
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
