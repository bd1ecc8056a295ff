package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/slo"
	// The SLO directory may hold Sloth, OpenSLO and Pyrra specs too.
	_ "github.com/rootuip/sre/pkg/slo/openslo"
	_ "github.com/rootuip/sre/pkg/slo/pyrra"
	_ "github.com/rootuip/sre/pkg/slo/sloth"
)

// demoJob is the scrape job of examples/prometheus.yml that scrapes the
// demo service: it is named after the service of examples/slos/api.yml, so
// that the shipped SLOs (selecting job="api") measure the demo.
const demoJob = "api"

// options are the inputs of a demo stack.
type options struct {
	examples string // examples/ of the repository
	rules    string // the generated rule files (rules/)
	// slos holds the SLO specs the rules were generated from (default
	// examples/slos): sred gets a copy, the inhibit rules come from them.
	slos    string
	dataDir string // everything the stack writes; emptied at start

	sred, demoService, prometheus, alertmanager string // binaries

	demoAddr, prometheusAddr, alertmanagerAddr, sredAddr string

	readyTimeout time.Duration
	logger       *slog.Logger

	// edit, when set, changes each configuration before it is written
	// (file is prometheus.yml, alertmanager.yml or sred.yml): tests use it
	// to shorten intervals and capture notifications.
	edit func(file string, doc *yaml.Node) error
}

func (o options) sloDir() string {
	if o.slos != "" {
		return o.slos
	}
	return filepath.Join(o.examples, "slos")
}

// process is one running program of the stack.
type process struct {
	name string
	url  string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// stack is the running demo: the processes in start order.
type stack struct {
	opts  options
	procs []*process
}

// start writes the configurations into o.dataDir and starts the demo
// service, Alertmanager, sred and Prometheus, each ready before the next
// starts. On error everything started is stopped.
// binariesExist checks that every program's binary is an executable file,
// saying how to get the one that is not.
func binariesExist(o options) error {
	for _, b := range []struct{ name, path, fix string }{
		{"demo-service", o.demoService, "make build builds it into bin/, or give --bin.dir=DIR"},
		{"alertmanager", o.alertmanager, "make bin/alertmanager builds it, or give --alertmanager=PATH ($SRE_ALERTMANAGER)"},
		{"sred", o.sred, "make build builds it into bin/, or give --bin.dir=DIR"},
		{"prometheus", o.prometheus, "make bin/prometheus builds it, or give --prometheus=PATH ($SRE_PROMETHEUS)"},
	} {
		st, err := os.Stat(b.path)
		var pe *fs.PathError
		switch {
		case errors.As(err, &pe):
			return fmt.Errorf("%s binary %s: %w (%s; make demo builds every program it runs)", b.name, b.path, pe.Err, b.fix)
		case err != nil:
			return fmt.Errorf("%s binary: %w", b.name, err)
		case st.IsDir() || st.Mode().Perm()&0o111 == 0:
			return fmt.Errorf("%s binary %s is not an executable file (%s)", b.name, b.path, b.fix)
		}
	}
	return nil
}

func start(ctx context.Context, o options) (_ *stack, err error) {
	// The programs run in the data directory (run) and are given paths
	// inside it: a relative one, as the default data/demo, would be
	// resolved from there a second time.
	if o.dataDir, err = filepath.Abs(o.dataDir); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	// A stack already running (a second `make demo`) holds the ports: it
	// is found before its data directory is emptied under it, and before
	// a program is taken ready for answering on another's port.
	if err := portsFree([]listener{
		{o.demoAddr, "demo.listen-address"},
		{o.alertmanagerAddr, "alertmanager.listen-address"},
		{o.sredAddr, "sred.listen-address"},
		{o.prometheusAddr, "prometheus.listen-address"},
	}); err != nil {
		return nil, err
	}
	// A binary missing is found before any program starts or the data
	// directory is emptied: the demo started three programs, then
	// stopped them with "exec: ...: no such file or directory".
	if err := binariesExist(o); err != nil {
		return nil, err
	}
	s := &stack{opts: o}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	if err := os.RemoveAll(o.dataDir); err != nil {
		return nil, fmt.Errorf("clean %s: %w", o.dataDir, err)
	}
	for _, d := range []string{"logs", "prometheus", "alertmanager", "sred"} {
		if err := os.MkdirAll(filepath.Join(o.dataDir, d), 0o755); err != nil {
			return nil, err
		}
	}
	if err := writeAddresses(o); err != nil {
		return nil, err
	}
	specs, err := slo.LoadFiles(o.sloDir())
	if err != nil {
		return nil, fmt.Errorf("load SLO specs: %w", err)
	}
	rules, err := filepath.Glob(filepath.Join(o.rules, "*.yml"))
	if err != nil || len(rules) == 0 {
		return nil, fmt.Errorf("no rule files in %s (run `make generate`)", o.rules)
	}
	promCfg := filepath.Join(o.dataDir, "prometheus", "prometheus.yml")
	if err := writePrometheusConfig(o, promCfg); err != nil {
		return nil, fmt.Errorf("prometheus configuration: %w", err)
	}
	amCfg := filepath.Join(o.dataDir, "alertmanager", "alertmanager.yml")
	if err := writeAlertmanagerConfig(o, specs, amCfg); err != nil {
		return nil, fmt.Errorf("alertmanager configuration: %w", err)
	}
	sredDir := filepath.Join(o.dataDir, "sred")
	if err := writeSredConfig(o, sredDir); err != nil {
		return nil, fmt.Errorf("sred configuration: %w", err)
	}

	for _, p := range []struct {
		name, bin, addr string
		args            []string
	}{
		{"demo-service", o.demoService, o.demoAddr, []string{"--web.listen-address=" + o.demoAddr}},
		{"alertmanager", o.alertmanager, o.alertmanagerAddr, []string{
			"--config.file=" + amCfg,
			"--storage.path=" + filepath.Join(o.dataDir, "alertmanager", "data"),
			"--web.listen-address=" + o.alertmanagerAddr,
			"--cluster.listen-address=", // one Alertmanager: no gossip port
		}},
		{"sred", o.sred, o.sredAddr, []string{
			"--config.file=" + filepath.Join(sredDir, "sred.yml"),
			"--storage.path=" + filepath.Join(sredDir, "data"),
			"--web.listen-address=" + o.sredAddr,
			"--web.no-auth", // a local trial: see docs/security.md
		}},
		{"prometheus", o.prometheus, o.prometheusAddr, []string{
			"--config.file=" + promCfg,
			"--storage.tsdb.path=" + filepath.Join(o.dataDir, "prometheus", "data"),
			"--web.listen-address=" + o.prometheusAddr,
			"--enable-feature=created-timestamp-zero-ingestion",
		}},
	} {
		proc, err := s.run(ctx, p.name, p.bin, p.addr, p.args)
		if err != nil {
			return nil, err
		}
		o.logger.Info("Started", "program", p.name, "url", proc.url, "log", proc.log)
	}
	return s, nil
}

// listener is an address of the stack and the flag of `demo up` that
// sets it.
type listener struct {
	addr, flag string
}

// portsFree returns an error naming the first address that something
// already listens on, and the two ways out: stop what listens there, or
// move the program with its flag, which `make demo` passes in DEMO_FLAGS.
func portsFree(ls []listener) error {
	for _, l := range ls {
		nl, err := net.Listen("tcp", l.addr)
		if err != nil {
			return fmt.Errorf("%s is in use (another `make demo` or `make run`? stop it with Ctrl-C first, "+
				"or move this one: make demo DEMO_FLAGS=--%s=127.0.0.1:<port>): %w", l.addr, l.flag, err)
		}
		if err := nl.Close(); err != nil {
			return fmt.Errorf("%s: %w", l.addr, err)
		}
	}
	return nil
}

// run starts one program with its output in logs/<name>.log and waits
// until GET /-/ready answers 200.
func (s *stack) run(ctx context.Context, name, bin, addr string, args []string) (*process, error) {
	// The programs run in the data directory: a relative binary path
	// would be resolved there.
	bin, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath(bin); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	logPath := filepath.Join(s.opts.dataDir, "logs", name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = s.opts.dataDir
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, url: "http://" + addr, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	s.procs = append(s.procs, p)

	deadline := time.Now().Add(s.opts.readyTimeout)
	for {
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited during start (%v); last lines of %s:\n%s", name, p.err, logPath, tailFile(logPath, 20))
		case <-ctx.Done():
			return nil, ctx.Err()
		default:
		}
		if ready(ctx, p.url+"/-/ready") {
			return p, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s not ready at %s/-/ready within %s; last lines of %s:\n%s", name, p.url, s.opts.readyTimeout, logPath, tailFile(logPath, 20))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-p.done:
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func ready(ctx context.Context, u string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

// exited is closed when the first process of the stack exits.
func (s *stack) exited() (<-chan *process, int) {
	ch := make(chan *process, len(s.procs))
	for _, p := range s.procs {
		go func() {
			<-p.done
			ch <- p
		}()
	}
	return ch, len(s.procs)
}

// stop stops the processes in reverse start order: SIGTERM (Prometheus
// and Alertmanager flush their data), SIGKILL after 10s. It then removes
// addresses.json: break and heal must not take the stopped programs'
// addresses for a running demo's.
func (s *stack) stop() {
	defer func() {
		if err := removeAddresses(s.opts.dataDir); err != nil && s.opts.logger != nil {
			s.opts.logger.Warn("Stopping the demo", "err", err)
		}
	}()
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		select {
		case <-p.done:
			continue
		default:
		}
		_ = p.cmd.Process.Signal(sigterm)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

func tailFile(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// post sends an empty POST to the demo service's admin API.
func post(ctx context.Context, u string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var ue interface{ Timeout() bool }
		if errors.As(err, &ue) && ue.Timeout() {
			return fmt.Errorf("POST %s: %w", u, err)
		}
		return fmt.Errorf("POST %s: %w (is `make demo` running?)", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s: %s", u, resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}
