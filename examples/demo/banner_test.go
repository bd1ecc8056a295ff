package main

import (
	"bytes"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rootuip/sre/pkg/testutil"
)

// TestBannerNamesOtherAddresses: with the default addresses the banner
// suggests make demo-break, srectl's default --sred.url and make
// demo-heal; with others (bin/demo up --sred.listen-address=...) it names
// them, since those commands would reach the default ones. The break
// command it prints goes to the address it names.
func TestBannerNamesOtherAddresses(t *testing.T) {
	var b bytes.Buffer
	printBanner(&b, options{demoAddr: defaultDemoAddr, sredAddr: defaultSredAddr, dataDir: "data/demo"})
	for _, want := range []string{
		"  make demo-break                 # every request of the demo fails",
		"  bin/srectl incidents list       # one incident for the outage, severity CRITICAL",
		"  make demo-heal                  # the incident turns",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("default banner lacks %q:\n%s", want, b.String())
		}
	}

	demo := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	sred := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	b.Reset()
	printBanner(&b, options{demoAddr: demo, sredAddr: sred, dataDir: "data/demo"})
	for _, want := range []string{
		"  bin/demo break --demo.listen-address=" + demo + " # every request",
		"  bin/srectl incidents list --sred.url=http://" + sred + " # one incident",
		"  bin/demo heal --demo.listen-address=" + demo + " # the incident turns",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("banner for %s and %s lacks %q:\n%s", demo, sred, want, b.String())
		}
	}
	if strings.Contains(b.String(), "make demo-break") {
		t.Errorf("banner for other addresses suggests make demo-break:\n%s", b.String())
	}

	// Nothing listens at demo: the printed command fails naming it.
	brk := strings.Fields(bannerCommands(options{demoAddr: demo, sredAddr: sred})[0][0])
	var stdout, stderr bytes.Buffer
	if code := runMain(brk[1:], &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), demo) {
		t.Errorf("%v: exit %d, stderr %q; want 1 naming %s", brk, code, stderr.String(), demo)
	}
}

// TestBreakNamesSredAsStarted: demo break and heal reach the demo service
// `demo up` recorded in its data directory, and break names the sred it
// started (bin/demo up --sred.listen-address=...), not srectl's default.
func TestBreakNamesSredAsStarted(t *testing.T) {
	var posts []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts = append(posts, r.Method+" "+r.URL.RequestURI())
	}))
	defer srv.Close()
	demo := strings.TrimPrefix(srv.URL, "http://")
	sred := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))

	for _, tc := range []struct {
		name, sred, wantList string
	}{
		{"other sred", sred, "bin/srectl incidents list --sred.url=http://" + sred},
		{"default sred", defaultSredAddr, "bin/srectl incidents list."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := writeAddresses(options{dataDir: dir, demoAddr: demo, sredAddr: tc.sred}); err != nil {
				t.Fatal(err)
			}
			posts = nil
			var stdout, stderr bytes.Buffer
			if code := runMain([]string{"break", "--data.dir=" + dir}, &stdout, &stderr); code != 0 {
				t.Fatalf("demo break exited %d: %s", code, stderr.String())
			}
			if !strings.Contains(stdout.String(), "watch "+tc.wantList) {
				t.Errorf("demo break printed %q; want it to name %q", stdout.String(), tc.wantList)
			}
			if code := runMain([]string{"heal", "--data.dir=" + dir}, &stdout, &stderr); code != 0 {
				t.Fatalf("demo heal exited %d: %s", code, stderr.String())
			}
			if want := []string{"POST /admin/errors?rate=1", "POST /admin/heal"}; !slices.Equal(posts, want) {
				t.Errorf("demo service got %q, want %q", posts, want)
			}
		})
	}

	// Another data directory: the banner's commands name it.
	cmds := bannerCommands(options{demoAddr: defaultDemoAddr, sredAddr: sred, dataDir: "/tmp/other"})
	if cmds[0][0] != "bin/demo break --data.dir=/tmp/other" || cmds[2][0] != "bin/demo heal --data.dir=/tmp/other" {
		t.Errorf("banner commands for another data directory: %q", cmds)
	}
}

// TestBreakWithoutAddressesSaysSo: run where `demo up` recorded no
// addresses (another directory, another --data.dir), demo break and heal
// do not fall back to the default demo service address, where another
// program may listen: they fail naming the file they looked for and the
// flags that point them at the demo, and post nothing. Told the demo
// service's address, they reach it without the file.
func TestBreakWithoutAddressesSaysSo(t *testing.T) {
	var posts []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts = append(posts, r.Method+" "+r.URL.RequestURI())
	}))
	defer srv.Close()
	demo := strings.TrimPrefix(srv.URL, "http://")
	cwd := t.TempDir()
	t.Chdir(cwd)
	other := t.TempDir()

	for _, tc := range []struct {
		name      string
		args      []string
		wantCode  int
		wantFile  string
		wantPosts []string
	}{
		{"break, default data directory", []string{"break"}, 1, filepath.Join(cwd, "data", "demo", addressesFile), nil},
		{"heal, default data directory", []string{"heal"}, 1, filepath.Join(cwd, "data", "demo", addressesFile), nil},
		{"break, another data directory", []string{"break", "--data.dir=" + other}, 1, filepath.Join(other, addressesFile), nil},
		{"break, demo service named", []string{"break", "--demo.listen-address=" + demo}, 0, "", []string{"POST /admin/errors?rate=1"}},
		{"heal, demo service named", []string{"heal", "--data.dir=" + other, "--demo.listen-address=" + demo}, 0, "", []string{"POST /admin/heal"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			posts = nil
			var stdout, stderr bytes.Buffer
			code := runMain(tc.args, &stdout, &stderr)
			if code != tc.wantCode {
				t.Fatalf("demo %q exited %d, want %d: %s", tc.args, code, tc.wantCode, stderr.String())
			}
			if !slices.Equal(posts, tc.wantPosts) {
				t.Errorf("demo service got %q, want %q", posts, tc.wantPosts)
			}
			if tc.wantFile == "" {
				return
			}
			for _, want := range []string{tc.wantFile, "bin/demo " + tc.args[0], "--data.dir=", "--demo.listen-address="} {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("demo %q printed %q; want it to name %q", tc.args, stderr.String(), want)
				}
			}
		})
	}
}

// TestStoppedDemoLeavesNoAddresses: `demo up` removes addresses.json when
// it stops its programs, as Ctrl-C and SIGTERM stop them, and when its
// start fails; break then says no demo is running there instead of
// reaching the stopped programs' addresses.
func TestStoppedDemoLeavesNoAddresses(t *testing.T) {
	root := testutil.RepoRoot(t)
	noAddresses := func(t *testing.T, dataDir string) {
		t.Helper()
		if _, err := os.Stat(filepath.Join(dataDir, addressesFile)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s after the demo stopped: %v, want it removed", addressesFile, err)
		}
		var stdout, stderr bytes.Buffer
		if code := runMain([]string{"break", "--data.dir=" + dataDir}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), errNoAddresses.Error()) {
			t.Errorf("demo break after the demo stopped: exit %d, stderr %q; want 1 saying %q", code, stderr.String(), errNoAddresses)
		}
		// The demo was started there: the error does not say it never was.
		if want := "no demo is running with this data directory (none was started, or it stopped)"; !strings.Contains(stderr.String(), want) {
			t.Errorf("demo break after the demo stopped: stderr %q; want it to say %q", stderr.String(), want)
		}
	}

	t.Run("stopped", func(t *testing.T) {
		o := testOptions(t, root)
		if err := writeAddresses(o); err != nil {
			t.Fatal(err)
		}
		// A program of the stack: cat, reading until it is stopped.
		cmd := exec.Command("cat")
		if _, err := cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p := &process{name: "cat", cmd: cmd, done: make(chan struct{})}
		go func() {
			p.err = cmd.Wait()
			close(p.done)
		}()
		s := &stack{opts: o, procs: []*process{p}}
		s.stop()
		<-p.done
		noAddresses(t, o.dataDir)
	})

	t.Run("failed start", func(t *testing.T) {
		o := testOptions(t, root)
		// Programs that exit at once: the start fails once addresses.json
		// is written (a missing binary stops it before: TestStartNamesMissingBinary).
		failing := filepath.Join(t.TempDir(), "failing")
		if err := os.WriteFile(failing, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		o.demoService, o.sred, o.prometheus, o.alertmanager = failing, failing, failing, failing
		if _, err := start(t.Context(), o); err == nil || !strings.Contains(err.Error(), "demo-service exited during start") {
			t.Fatalf("start with programs that exit: %v, want an error naming demo-service", err)
		}
		noAddresses(t, o.dataDir)
	})
}

// TestBreakOnStoppedDemoSaysSo: an addresses.json left by a demo that
// stopped without removing it (killed, or the machine restarted) records
// a demo service where nothing listens: break and heal say the demo is
// not running, name the file and how to start it or point them at a
// running one, rather than the refused connection alone.
func TestBreakOnStoppedDemoSaysSo(t *testing.T) {
	dir := t.TempDir()
	demo := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	if err := writeAddresses(options{dataDir: dir, demoAddr: demo, sredAddr: defaultSredAddr}); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"break", "heal"} {
		var stdout, stderr bytes.Buffer
		if code := runMain([]string{cmd, "--data.dir=" + dir}, &stdout, &stderr); code != 1 {
			t.Fatalf("demo %s exited %d, want 1: %s", cmd, code, stderr.String())
		}
		for _, want := range []string{
			"demo: demo is not running (addresses.json is from a stopped demo: nothing listens at " + demo + ", the demo service address recorded in " + filepath.Join(dir, addressesFile) + ")",
			"`make demo`", "bin/demo " + cmd, "--data.dir=DIR", "--demo.listen-address=HOST:PORT",
		} {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("demo %s printed %q; want it to name %q", cmd, stderr.String(), want)
			}
		}
	}
}
