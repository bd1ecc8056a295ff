package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/testutil"
)

// tourBlocks returns the code blocks of README.md fenced as ```sh tour.
func tourBlocks(t *testing.T, readme string) []string {
	t.Helper()
	f, err := os.Open(readme)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []string
	var cur *strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```sh tour":
			cur = &strings.Builder{}
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatal("README.md: unterminated ```sh tour block")
	}
	return blocks
}

// tourConfig returns examples/sred.yml as the tour's sred loads it, with
// prometheus.url pointing at a port where nothing listens: the sred of
// `make run` reads its error budgets from http://localhost:9090, and a
// Prometheus there (a `make demo` running beside the tests, the machine's
// own) would open budget incidents that join the tour's. The file is
// written into a copy of examples/, so that its relative paths (secrets,
// SLO specs, runbooks, ...) resolve as they do there.
func tourConfig(t *testing.T, root string) string {
	t.Helper()
	examples := filepath.Join(root, "examples")
	b, err := os.ReadFile(filepath.Join(examples, "sred.yml"))
	if err != nil {
		t.Fatal(err)
	}
	const promURL = "\n  url: http://localhost:9090\n"
	if n := strings.Count(string(b), promURL); n != 1 {
		t.Fatalf("examples/sred.yml has %q %d times, want once (prometheus.url)", promURL, n)
	}
	nowhere := "\n  url: http://127.0.0.1:" + strconv.Itoa(testutil.FreePort(t)) + "\n"
	dir := filepath.Join(t.TempDir(), "examples")
	if err := os.CopyFS(dir, os.DirFS(examples)); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "sred.yml")
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(b), promURL, nowhere, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestReadmeTour runs the README's five-minute tour (its ```sh tour blocks)
// as written, with bash in the repository root, against a fresh sred
// started as `make run` starts it (examples/sred.yml, SQLite; its
// Prometheus out of reach, tourConfig), on a free port: bin/srectl is the
// srectl under test and localhost:8095 that sred's address. Every command
// must succeed (curl with -f: an error page fails it), the addresses and
// files its comments name must answer and exist (tourComments), and the
// incident the tour opens must be detected now (not days ago),
// acknowledged, snoozed and resolved.
func TestReadmeTour(t *testing.T) {
	root := testutil.RepoRoot(t)
	bin := binaries(t)
	blocks := tourBlocks(t, filepath.Join(root, "README.md"))
	if len(blocks) < 2 {
		t.Fatalf("README.md has %d ```sh tour blocks, want the tour", len(blocks))
	}
	addr := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	dir := t.TempDir()
	sred := testutil.StartProcess(t, "sred", filepath.Join(bin, "sred"), []string{
		"--config.file=" + tourConfig(t, root),
		"--storage.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
		"--web.no-auth",
	}, dir, "http://"+addr, "/-/ready")

	start := time.Now()
	for i, b := range blocks {
		// curl -s prints an error page and exits 0: -f makes a 4xx or
		// 5xx answer fail the block.
		script := strings.NewReplacer("bin/srectl", filepath.Join(bin, "srectl"), "localhost:8095", addr, "curl -s ", "curl -sfS ").Replace(b)
		cmd := exec.Command("bash", "-e", "-u", "-o", "pipefail", "-c", script)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "SRECTL_SRED_URL=http://"+addr, "USER=tour")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("tour block %d failed: %v\n--- block ---\n%s--- output ---\n%s", i+1, err, b, out)
		}
		t.Logf("tour block %d:\n%s", i+1, out)
	}

	id := fmt.Sprintf("INC-%d-0001", time.Now().Year())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tourComments(ctx, t, root, sred.URL, blocks)
	var inc incident.Incident
	if err := sredGet(ctx, sred.URL, "/api/v1/incidents/"+id, &inc); err != nil {
		t.Fatal(err)
	}
	if inc.Status != incident.StatusResolved {
		t.Errorf("%s status %s, want resolved (srectl alert resolve)", id, inc.Status)
	}
	if inc.Severity != incident.SeverityCritical || inc.Labels["slo"] != "availability" {
		t.Errorf("%s severity %s labels %v, want the CRITICAL page of api/availability", id, inc.Severity, inc.Labels)
	}
	if d := inc.DetectedAt.Sub(start); d < -time.Second || time.Since(inc.DetectedAt) > 5*time.Minute {
		t.Errorf("%s detected at %s, want during the tour (started %s)", id, inc.DetectedAt, start)
	}
	if want := "api/availability burning 14.4x: page"; inc.Title != want {
		t.Errorf("%s title %q, want %q (title_template of examples/sred.yml)", id, inc.Title, want)
	}
	if inc.AcknowledgedAt == nil {
		t.Errorf("%s was not acknowledged", id)
	}
	var tl []incident.TimelineEntry
	if err := sredGet(ctx, sred.URL, "/api/v1/incidents/"+id+"/timeline", &tl); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, e := range tl {
		kinds[e.Kind] = true
	}
	for _, k := range []string{"alert_fired", "alert_resolved"} {
		if !kinds[k] {
			t.Errorf("%s timeline has no %s entry: %v", id, k, kinds)
		}
	}
}

var (
	// tourURL is an address of the tour's sred that a comment of the
	// tour names for a browser, curl -N or a WebSocket client.
	tourURL = regexp.MustCompile(`(http|ws)://localhost:8095(/[^\s)]*)`)
	// tourFile is a file of the repository that a comment names.
	tourFile = regexp.MustCompile(`\b(?:docs|examples|dashboards|rules)/[\w./-]*[\w/]`)
)

// tourComments checks what the comments of the tour blocks point at, which
// bash does not run: every sred address answers (a page 200, the event
// stream its headers, the WebSocket stream 101 Switching Protocols) and
// every file of the repository exists.
func tourComments(ctx context.Context, t *testing.T, root, base string, blocks []string) {
	t.Helper()
	year := strconv.Itoa(time.Now().Year())
	n := 0
	for _, b := range blocks {
		for _, line := range strings.Split(b, "\n") {
			_, comment, ok := strings.Cut(line, "#")
			if !ok {
				continue
			}
			for _, m := range tourURL.FindAllStringSubmatch(comment, -1) {
				n++
				path := strings.ReplaceAll(m[2], "<year>", year)
				if code := tourStatus(ctx, t, base+path, m[1] == "ws"); code != http.StatusOK && !(m[1] == "ws" && code == http.StatusSwitchingProtocols) {
					t.Errorf("README tour names %s: GET %s answers %d", m[0], path, code)
				}
			}
			for _, f := range tourFile.FindAllString(comment, -1) {
				if _, err := os.Stat(filepath.Join(root, f)); err != nil {
					t.Errorf("README tour names %s: %v", f, err)
				}
			}
		}
	}
	if n == 0 {
		t.Error("no comment of the tour names an address of sred (the console, the status page, the event streams)")
	}
}

// tourStatus returns the status code of a GET of url, as a WebSocket
// handshake when ws is set; the body (an event stream never ends) is not
// read.
func tourStatus(ctx context.Context, t *testing.T, url string, ws bool) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ws {
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	return resp.StatusCode
}
