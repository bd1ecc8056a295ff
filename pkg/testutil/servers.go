package testutil

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Process is a real server started by a test. Its output is kept and printed
// when the test fails.
type Process struct {
	Name string
	URL  string // http://127.0.0.1:port
	Dir  string // working/data directory
	cmd  *exec.Cmd
	out  *SyncBuffer
	done chan struct{}
}

// SyncBuffer is a bytes.Buffer that goroutines write to while a test
// reads it (a process's output, a logger's destination).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Output returns what the process has written so far.
func (p *Process) Output() string { return p.out.String() }

// Stop terminates the process (SIGTERM, then SIGKILL after 5s).
func (p *Process) Stop() {
	if p.cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Kill sends SIGKILL (no shutdown at all, as in a crash) and waits for the
// process to exit.
func (p *Process) Kill() {
	if p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// StartProcess runs bin with args, waits until GET url+readyPath answers 200
// (at most 60s) and stops the process at test cleanup.
func StartProcess(t testing.TB, name, bin string, args []string, dir, url, readyPath string) *Process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out := &SyncBuffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &Process{Name: name, URL: url, Dir: dir, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("--- %s output ---\n%s", name, tail(out.String(), 8000))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.done:
			t.Fatalf("%s exited during start:\n%s", name, tail(out.String(), 8000))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+readyPath, nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready at %s after 60s:\n%s", name, url+readyPath, tail(out.String(), 8000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}

// PrometheusOptions configures StartPrometheus.
type PrometheusOptions struct {
	// Config is the prometheus.yml text. Rule files it names are resolved
	// against DataDir's parent (the process's working directory).
	Config string
	// Files are extra files (name -> content) written next to prometheus.yml,
	// e.g. rule files.
	Files map[string]string
	// DataDir, if set, is used as --storage.tsdb.path (e.g. pre-filled with
	// blocks from `promtool tsdb create-blocks-from`). Default: a temp dir.
	DataDir string
	// Args are extra flags.
	Args []string
}

// StartPrometheus runs the pinned Prometheus on 127.0.0.1 with a free port
// and waits until it is ready. The lifecycle API (/-/reload) is enabled.
func StartPrometheus(t testing.TB, o PrometheusOptions) *Process {
	t.Helper()
	bin := Tool(t, "prometheus")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(o.Config), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, content := range o.Files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data := o.DataDir
	if data == "" {
		data = filepath.Join(dir, "data")
	}
	port := FreePort(t)
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	args := append([]string{
		"--config.file=" + filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path=" + data,
		"--web.listen-address=127.0.0.1:" + strconv.Itoa(port),
		"--web.enable-lifecycle",
		"--log.level=warn",
	}, o.Args...)
	return StartProcess(t, "prometheus", bin, args, dir, url, "/-/ready")
}

// AlertmanagerOptions configures StartAlertmanager.
type AlertmanagerOptions struct {
	Config string // alertmanager.yml text
	// Peers are cluster peer addresses (host:port); with ClusterPort set the
	// instance joins an HA cluster. Without them clustering is disabled.
	Peers       []string
	ClusterPort int
	Args        []string
}

// StartAlertmanager runs the pinned Alertmanager on 127.0.0.1 with a free port.
func StartAlertmanager(t testing.TB, o AlertmanagerOptions) *Process {
	t.Helper()
	bin := Tool(t, "alertmanager")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte(o.Config), 0o644); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	args := []string{
		"--config.file=" + filepath.Join(dir, "alertmanager.yml"),
		"--storage.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:" + strconv.Itoa(port),
		"--log.level=warn",
	}
	if o.ClusterPort == 0 {
		args = append(args, "--cluster.listen-address=")
	} else {
		args = append(args, fmt.Sprintf("--cluster.listen-address=127.0.0.1:%d", o.ClusterPort),
			fmt.Sprintf("--cluster.advertise-address=127.0.0.1:%d", o.ClusterPort))
		for _, p := range o.Peers {
			args = append(args, "--cluster.peer="+p)
		}
	}
	args = append(args, o.Args...)
	return StartProcess(t, "alertmanager", bin, args, dir, url, "/-/ready")
}

// PID returns the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }
