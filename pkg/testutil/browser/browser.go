// Package browser runs the console's browser tests in headless Chromium
// (Debian's chromium: `apt-get install -y chromium`): the browser with its
// flags and a fresh profile, its first tab with a safety-net deadline, and
// the screenshots they leave. A missing chromium fails the test; it is
// never skipped. It is a package of its own so that only the tests that
// drive a browser link chromedp.
package browser

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium returns the path of chromium, failing the test when it is
// missing. Tab calls it; a test with a long set-up calls it first to fail
// before it.
func Chromium(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is required (apt-get install -y chromium): %v", err)
	}
	return bin
}

// Tab returns the first tab of a headless Chromium (1200x900, its own
// profile in a temporary directory) that starts with the tab's first
// action. limit bounds the whole tab, a safety net only: every step waits
// on a condition. done closes the tab and the browser; defer it, so that
// the browser ends before the test's servers close. A second tab of the
// same browser is chromedp.NewContext(tab), after the first tab's first
// action.
func Tab(t testing.TB, limit time.Duration) (tab context.Context, done func()) {
	t.Helper()
	bin := Chromium(t)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), chromedp.ExecPath(bin),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.NoFirstRun, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1200, 900))
	tab, cancelTab := chromedp.NewContext(actx)
	tab, cancelLimit := context.WithTimeout(tab, limit)
	done = func() {
		cancelLimit()
		cancelTab()
		cancelAlloc()
	}
	t.Cleanup(done) // when the test stopped before its deferred done
	return tab, done
}

// Artifacts is where screenshots go: $SRE_TEST_ARTIFACTS when set (made
// if missing), else a temporary directory of the test.
func Artifacts(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("SRE_TEST_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// Screenshot writes the whole page of tab as a JPEG (quality 80) to
// dir/name.
func Screenshot(t testing.TB, tab context.Context, dir, name string) {
	t.Helper()
	shot, err := chromedp.Run(tab, chromedp.FullScreenshot(80))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), shot, 0o644); err != nil {
		t.Fatal(err)
	}
}
