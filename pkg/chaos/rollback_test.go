package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rootuip/sre/pkg/store"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// withRollback is testExp with a 5s duration and the given rollback actions.
func withRollback(actions string) string {
	return strings.Replace(testExp, "duration: 1m\n", "duration: 5s\nrollback:\n"+actions, 1)
}

// gone says whether pid has exited (no process, or a zombie nobody reaped).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err != nil || strings.Contains(string(b), ") Z ")
}

// TestRollbackActionsAreBounded: a rollback action is killed with its whole
// process group at its timeout, a child it leaves holding its output ends
// the action (and dies) instead of holding the rollback until it exits, and
// its output is capped with a note of what was cut.
func TestRollbackActionsAreBounded(t *testing.T) {
	for _, tc := range []struct {
		name    string
		command string // %s is a file the action writes a child's PID to
		timeout string
		want    []string
		maxLen  int
	}{
		{
			name:    "background child holds the output",
			command: `[/bin/sh, -c, 'echo start; /bin/sleep 1111 & echo $! > %s']`,
			timeout: "1h",
			want:    []string{"rollback action bg: /bin/sh: exec: WaitDelay expired before I/O complete: start"},
		},
		{
			name:    "timeout kills the group",
			command: `[/bin/sh, -c, '/bin/sleep 1111 & echo $! > %s; wait']`,
			timeout: "1s",
			want:    []string{"rollback action bg: /bin/sh killed: rollback action bg timed out after 1s"},
		},
		{
			name:    "output is capped",
			command: `[/bin/sh, -c, 'echo $$ > %s; head -c 100000 /dev/zero | tr "\0" a; exit 3']`,
			timeout: "1h",
			want:    []string{"rollback action bg: /bin/sh: exit status 3: aaaa", fmt.Sprintf("\n[... %d bytes truncated]", 100000-maxRollbackOutput)},
			maxLen:  maxRollbackOutput + 1000,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
				h := newHarness(t, db, "r1")
				ctx := context.Background()
				pidFile := filepath.Join(t.TempDir(), "pid")
				exp := withRollback(fmt.Sprintf("  - {name: bg, timeout: %s, command: %s}\n", tc.timeout, fmt.Sprintf(tc.command, pidFile)))
				info, err := h.s.Start(ctx, load(t, exp), "alice")
				if err != nil {
					t.Fatal(err)
				}
				h.drain(t, 5*time.Second)
				r, err := h.s.Get(ctx, info.ID)
				if err != nil {
					t.Fatal(err)
				}
				var detail string
				for _, s := range r.Steps {
					if s.Name == "rollback" {
						detail = s.Detail
						if s.Status != "failed" {
							t.Errorf("rollback step %s, want failed", s.Status)
						}
					}
				}
				for _, w := range tc.want {
					if !strings.Contains(detail, w) {
						t.Errorf("rollback step detail lacks %q:\n%.2000s", w, detail)
					}
				}
				if tc.maxLen > 0 && len(detail) > tc.maxLen {
					t.Errorf("rollback step detail of %d bytes, want at most %d", len(detail), tc.maxLen)
				}
				if r.Status != StatusFailed {
					t.Errorf("status %s, want failed", r.Status)
				}
				b, err := os.ReadFile(pidFile)
				if err != nil {
					t.Fatal(err)
				}
				var pid int
				if _, err := fmt.Sscan(string(b), &pid); err != nil {
					t.Fatal(err)
				}
				deadline := time.Now().Add(20 * time.Second)
				for !gone(pid) {
					if time.Now().After(deadline) {
						t.Fatalf("child %d of the rollback action still alive", pid)
					}
					time.Sleep(10 * time.Millisecond)
				}
			})
		})
	}
}
