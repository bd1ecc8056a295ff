package runbook

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/procexec"
	"github.com/rootuip/sre/pkg/secretfile"
)

// Step result statuses.
const (
	StepOK      = "ok"
	StepFailed  = "failed"
	StepDryRun  = "dry_run"
	StepTimeout = "timeout"
)

type execution struct {
	run      *Run
	rb       *Runbook
	cfg      Config
	data     TemplateData
	step     int
	verified bool
	// globalDry is the step from which the run is a dry-run because
	// runbooks.dry_run was turned on after it was created (-2: never).
	globalDry int
	// leaseLost is set when the run ended interrupted because another
	// run took its target lock over (counted as lease_lost, not as
	// interrupted): decided with the run's status, not read again from
	// its context at the end, which a renewal may cancel after the run
	// ended for another reason.
	leaseLost bool
}

type stepResult struct {
	Status   string
	Input    map[string]any
	Output   string
	ExitCode *int
	Error    string
	// Dropped counts the output bytes a step read and did not keep; more
	// says that there were yet more it did not read.
	Dropped int64
	more    bool
}

// keepOutput cuts the output to max bytes, says how much was cut, and
// makes it valid UTF-8 without NUL bytes, so that any backend stores it.
func (r *stepResult) keepOutput(max int) {
	if max > 0 && len(r.Output) > max {
		r.Dropped += int64(len(r.Output) - max)
		r.Output = r.Output[:max]
	}
	r.Output = strings.ReplaceAll(strings.ToValidUTF8(r.Output, "\uFFFD"), "\x00", "\uFFFD")
	switch {
	case r.more:
		r.Output += fmt.Sprintf("\n[... more than %d bytes truncated]", r.Dropped)
	case r.Dropped > 0:
		r.Output += fmt.Sprintf("\n[... %d bytes truncated]", r.Dropped)
	}
}

func failed(format string, args ...any) stepResult {
	return stepResult{Status: StepFailed, Error: fmt.Sprintf(format, args...)}
}

// runStep renders the step's templates (checking label values against the
// allow-list), executes it unless the run is a dry-run, and records it in
// the audit log, the timeline and the metrics.
func (e *Engine) runStep(ctx context.Context, x *execution, idx int, s *Step) stepResult {
	x.step = idx
	if !x.run.DryRun {
		// runbooks.dry_run turned on (reload) while the run was queued,
		// waiting for approval or running: no step executes from here.
		if cfg, _ := e.config(); cfg.DryRun {
			e.turnDry(ctx, x, idx, s)
		}
	}
	begin := time.Now()
	rendered, env, err := renderStep(s, x.data)
	var res stepResult
	switch {
	case err != nil:
		res = failed("%v", err)
	case x.run.DryRun && x.globalDry != noGlobalDry:
		res = stepResult{Status: StepDryRun, Output: "dry-run (runbooks.dry_run turned on after the run was created): not executed"}
	case x.run.DryRun:
		res = stepResult{Status: StepDryRun, Output: "dry-run: not executed"}
	default:
		sctx, cancel := context.WithTimeoutCause(ctx, time.Duration(s.Timeout), fmt.Errorf("step timed out after %s", time.Duration(s.Timeout)))
		res = e.execStep(sctx, x, idx, s, rendered, env)
		if res.Status == StepFailed && sctx.Err() != nil {
			if errors.Is(context.Cause(sctx), context.Canceled) || ctx.Err() != nil {
				res.Error = strings.TrimPrefix(res.Error+"; run "+context.Cause(ctx).Error(), "; ")
			} else {
				res.Status = StepTimeout
				res.Error = context.Cause(sctx).Error()
			}
		}
		cancel()
	}
	d := time.Since(begin)
	if res.Input == nil {
		res.Input = map[string]any{}
	}
	for k, v := range rendered {
		res.Input[k] = v
	}
	res.keepOutput(x.cfg.MaxOutputBytes)
	e.metrics.stepDuration.WithLabelValues(x.run.Runbook, string(s.typ)).Observe(d.Seconds())
	e.metrics.steps.WithLabelValues(x.run.Runbook, string(s.typ), res.Status).Inc()
	msg := fmt.Sprintf("step %s (%s) %s in %s", s.Name, s.typ, res.Status, d.Round(time.Millisecond))
	if res.Error != "" {
		msg += ": " + res.Error
	}
	e.record(ctx, x.run, &AuditEntry{Event: "step", StepIndex: idx, StepName: s.Name, StepType: string(s.typ), Status: res.Status,
		Input: res.Input, Output: res.Output, ExitCode: res.ExitCode, Duration: d, Error: res.Error}, msg)
	return res
}

// noGlobalDry is execution.globalDry of a run that runbooks.dry_run did
// not turn into a dry-run.
const noGlobalDry = -2

// turnDry makes the run a dry-run from step idx on, because the global
// runbooks.dry_run is on: in memory, in the database (a replica resuming
// the run reads it) and in the audit log and timeline.
func (e *Engine) turnDry(ctx context.Context, x *execution, idx int, s *Step) {
	x.run.DryRun, x.globalDry = true, idx
	err := e.recordWith(ctx, x.run, &AuditEntry{Event: "run_dry_run", StepIndex: idx, StepName: s.Name, Status: RunRunning,
		Input: map[string]any{"reason": "runbooks.dry_run"}},
		fmt.Sprintf("runbook %s run %d is a dry-run from step %s on: runbooks.dry_run was turned on after the run was created", x.run.Runbook, x.run.ID, s.Name),
		func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE runbook_runs SET dry_run = 1 WHERE id = $1`, x.run.ID)
			return err
		})
	if err != nil {
		e.logger.Error("record the run turned dry-run", "run", x.run.ID, "err", err)
	}
}

// renderStep renders every template of the step; the keys name the fields.
// An exec step's environment and an http step's headers are returned
// apart, by variable or header name (a step has one or the other): what is
// shown (audit, timeline, event stream, an Action's Input) holds the env
// names only, each value replaced by SecretShown, since an env value may
// be a token, and the headers with the value of each credential-like one
// (secretHeader) replaced by SecretShown.
func renderStep(s *Step, d TemplateData) (map[string]any, map[string]string, error) {
	out := map[string]any{}
	keys := make([]string, 0, len(s.tmpls))
	for k := range s.tmpls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var argv []string
	env := map[string]string{}
	for _, k := range keys {
		v, err := s.tmpls[k].render(d)
		if err != nil {
			return out, nil, fmt.Errorf("%s: %w", k, err)
		}
		switch {
		case strings.HasPrefix(k, "command["):
		case strings.HasPrefix(k, "env."):
			env[strings.TrimPrefix(k, "env.")] = v
		case strings.HasPrefix(k, "headers."):
			name := strings.TrimPrefix(k, "headers.")
			env[name] = v
			out[k] = shownHeader(name, v)
		default:
			out[k] = v
		}
	}
	if s.Exec != nil {
		for i := range s.Exec.Command {
			argv = append(argv, mustGet(s, d, fmt.Sprintf("command[%d]", i)))
		}
		out["argv"] = argv
		out["env"] = shownEnv(s.Exec)
		if s.Exec.Dir != "" {
			out["dir"] = s.Exec.Dir
		}
	}
	if s.HTTP != nil {
		out["endpoint"], out["method"] = s.HTTP.Endpoint, s.HTTP.Method
	}
	if s.Kubernetes != nil {
		out["action"] = s.Kubernetes.Action
	}
	return out, env, nil
}

// SecretShown stands for the value of an exec step's environment variable,
// and of an http step's credential-like header (secretHeader), wherever the
// step is shown.
const SecretShown = "<secret>"

// secretHeaderNames are headers whose values are credentials; a header
// whose name holds one of secretHeaderParts (any case) is one too.
var (
	secretHeaderNames = []string{"authorization", "proxy-authorization", "cookie", "x-api-key"}
	secretHeaderParts = []string{"token", "secret", "password", "apikey", "api-key", "api_key"}
)

// secretHeader reports whether the header name carries a credential.
func secretHeader(name string) bool {
	n := strings.ToLower(name)
	if slices.Contains(secretHeaderNames, n) {
		return true
	}
	return slices.ContainsFunc(secretHeaderParts, func(p string) bool { return strings.Contains(n, p) })
}

// shownHeader is the value of an http step's header as it is shown.
func shownHeader(name, value string) string {
	if secretHeader(name) {
		return SecretShown
	}
	return value
}

// shownEnv is the environment of an exec step as it is shown: the names of
// env and env_files, with their values hidden.
func shownEnv(x *ExecStep) map[string]string {
	out := make(map[string]string, len(x.Env)+len(x.EnvFiles))
	for k := range x.Env {
		out[k] = SecretShown
	}
	for k := range x.EnvFiles {
		out[k] = SecretShown
	}
	return out
}

// execEnv is the environment an exec step runs with: env as rendered, and
// each variable of env_files set to its file's content, read now
// (secretfile: a rotated secret is used by the next step). A file that
// cannot be read or holds nothing fails the step before it starts.
func execEnv(x *ExecStep, env map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(env)+len(x.EnvFiles))
	for k, v := range env {
		out[k] = v
	}
	names := make([]string, 0, len(x.EnvFiles))
	for k := range x.EnvFiles {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v, err := secretfile.FromFile(x.EnvFiles[k]).Get()
		if err != nil {
			return nil, fmt.Errorf("env_files.%s: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

func mustGet(s *Step, d TemplateData, key string) string {
	v, _ := s.tmpls[key].render(d)
	return v
}

func truncate(s string, n int) string {
	if n <= 0 || len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("\n[... %d bytes truncated]", len(s)-n)
}

func (e *Engine) execStep(ctx context.Context, x *execution, idx int, s *Step, in map[string]any, env map[string]string) stepResult {
	switch s.typ {
	case StepExec, StepHTTP, StepKubernetes:
		return e.act.exec(ctx, s, in, env, x.cfg.MaxOutputBytes)
	case StepPromQL:
		return e.runPromQL(ctx, s, in["query"].(string))
	case StepWait:
		t := time.NewTimer(time.Duration(s.Wait.Duration))
		defer t.Stop()
		select {
		case <-t.C:
			return stepResult{Status: StepOK, Output: "waited " + s.Wait.Duration.String()}
		case <-ctx.Done():
			return failed("wait interrupted: %v", context.Cause(ctx))
		}
	case StepNotify:
		return e.runNotify(ctx, x, s, in["message"].(string))
	case StepApproval:
		msg, _ := in["message"].(string)
		return e.waitApproval(ctx, x, idx, s.Name, msg)
	}
	return failed("unknown step type %q", s.typ)
}

// runExec runs argv directly (no shell) in its own process group, with only
// PATH and the declared environment; on timeout or cancellation the whole
// group is killed, so children the program started die with it
// (pkg/procexec, shared with chaos rollback actions).
func runExec(ctx context.Context, argv []string, env map[string]string, dir string, maxOutput int) stepResult {
	cenv := []string{"PATH=" + os.Getenv("PATH")}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cenv = append(cenv, k+"="+env[k])
	}
	r := procexec.Run(ctx, argv, cenv, dir, maxOutput)
	if !r.Started {
		return failed("%v", r.Err)
	}
	code := r.ExitCode
	res := stepResult{Output: string(r.Output), Dropped: r.Dropped, ExitCode: &code, Status: StepOK}
	if r.Err != nil {
		res.Status, res.Error = StepFailed, r.Err.Error()
	}
	return res
}

// newHTTPClient returns the client of the endpoint name. It follows no
// redirect unless the endpoint sets follow_redirects, and then only to the
// endpoint's own scheme, host and port: the allow-list is of URLs, and a
// redirect elsewhere would send the step's request (body, headers,
// credentials) to a host that is not in it.
func newHTTPClient(name string, ep HTTPEndpoint) (*http.Client, error) {
	c, err := commoncfg.NewClientFromConfig(ep.HTTPConfig, "runbook_"+name)
	if err != nil {
		return nil, err
	}
	base, err := url.Parse(ep.URL)
	if err != nil {
		return nil, err
	}
	follow := ep.HTTPConfig.FollowRedirects
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !follow {
			return http.ErrUseLastResponse
		}
		if req.URL.Scheme != base.Scheme || canonicalHost(req.URL) != canonicalHost(base) {
			return fmt.Errorf("redirect to %s://%s refused: not the endpoint %q (%s://%s)", req.URL.Scheme, req.URL.Host, name, base.Scheme, base.Host)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return c, nil
}

// canonicalHost is u's host and port, the port made explicit.
func canonicalHost(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return strings.ToLower(u.Hostname()) + ":" + port
}

// maxHTTPBodyCount bounds how many bytes of a response body beyond
// max_output_bytes an http step reads to count them.
const maxHTTPBodyCount = 16 << 20

// runHTTP sends an http step's request; headers are its rendered header
// values by name (renderStep: in shows the credential-like ones hidden).
func (a *Actuator) runHTTP(ctx context.Context, s *Step, in map[string]any, headers map[string]string, maxOutput int) stepResult {
	a.mu.RLock()
	client := a.clients[s.HTTP.Endpoint]
	ep, ok := a.cfg.HTTPEndpoints[s.HTTP.Endpoint]
	a.mu.RUnlock()
	if !ok || client == nil {
		return failed("http endpoint %q is not configured", s.HTTP.Endpoint)
	}
	path, _ := in["path"].(string)
	body, _ := in["body"].(string)
	url := strings.TrimSuffix(ep.URL, "/") + path
	in["url"] = url
	req, err := http.NewRequestWithContext(ctx, s.HTTP.Method, url, strings.NewReader(body))
	if err != nil {
		return failed("build request: %v", err)
	}
	for k := range s.HTTP.Headers {
		req.Header.Set(k, headers[k])
	}
	if body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return failed("%s %s: %v", s.HTTP.Method, url, err)
	}
	defer resp.Body.Close()
	// The body is read to count what is not kept, up to a bound: a larger
	// one is reported as "more than N bytes truncated".
	kept := &procexec.CapWriter{Max: maxOutput}
	_, rerr := io.Copy(kept, io.LimitReader(resp.Body, int64(maxOutput)+maxHTTPBodyCount))
	more := false
	if rerr == nil {
		n, _ := io.CopyN(io.Discard, resp.Body, 1)
		more = n > 0
	}
	code := resp.StatusCode
	res := stepResult{Status: StepOK, Output: kept.Buf.String(), Dropped: kept.Dropped, more: more, ExitCode: &code}
	if rerr != nil {
		in["body_error"] = fmt.Sprintf("read response body: %v", rerr)
	}
	okCode := code >= 200 && code < 300
	if len(s.HTTP.ExpectStatus) > 0 {
		okCode = false
		for _, c := range s.HTTP.ExpectStatus {
			okCode = okCode || c == code
		}
	}
	if !okCode {
		res.Status, res.Error = StepFailed, fmt.Sprintf("%s %s: unexpected status %d", s.HTTP.Method, url, code)
	}
	return res
}

// Kubernetes is what kubernetes steps do on a cluster; pkg/kube implements
// it with client-go, and cmd/sred passes it in, so that this package does
// not link client-go.
type Kubernetes interface {
	// Scale sets a deployment's replicas to desired(current) and returns
	// the counts before and after.
	Scale(ctx context.Context, namespace, deployment string, desired func(current int32) int32) (from, to int32, err error)
	// RolloutRestart restarts a deployment's pods, stamped with the time at.
	RolloutRestart(ctx context.Context, namespace, deployment, at string) error
	// DeletePod deletes a pod.
	DeletePod(ctx context.Context, namespace, pod string) error
	// Patch applies a JSON merge patch to a deployment or a service
	// (kind "deployment" or "service").
	Patch(ctx context.Context, namespace, kind, name string, patch []byte) error
}

// kubeClient returns the Kubernetes client for the settings in force,
// building it on first use and again after a reload changed them (another
// kubeconfig, context or in-cluster): runs never act on a cluster the
// configuration no longer names.
func (a *Actuator) kubeClient() (Kubernetes, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.kube != nil && a.kubeCfg == a.cfg.Kubernetes {
		return a.kube, nil
	}
	if a.newKube == nil {
		return nil, errors.New("no Kubernetes client is configured")
	}
	c, err := a.newKube(a.cfg.Kubernetes)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	a.kube, a.kubeCfg = c, a.cfg.Kubernetes
	return c, nil
}

func (a *Actuator) runKubernetes(ctx context.Context, s *Step, in map[string]any) stepResult {
	kc, err := a.kubeClient()
	if err != nil {
		return failed("%v", err)
	}
	k := s.Kubernetes
	ns, _ := in["namespace"].(string)
	switch k.Action {
	case KubeScale:
		name, _ := in["deployment"].(string)
		from, to, err := kc.Scale(ctx, ns, name, func(current int32) int32 { return desiredReplicas(k, current) })
		if err != nil {
			return failed("scale deployment %s/%s: %v", ns, name, err)
		}
		in["replicas_before"], in["replicas_after"] = from, to
		if to == from {
			return stepResult{Status: StepOK, Output: fmt.Sprintf("deployment %s/%s already at %d replicas (bounds reached)", ns, name, to)}
		}
		return stepResult{Status: StepOK, Output: fmt.Sprintf("deployment %s/%s scaled from %d to %d replicas", ns, name, from, to)}
	case KubeRolloutRestart:
		name, _ := in["deployment"].(string)
		at := a.clock.Now().UTC().Format(time.RFC3339)
		if err := kc.RolloutRestart(ctx, ns, name, at); err != nil {
			return failed("rollout restart deployment %s/%s: %v", ns, name, err)
		}
		return stepResult{Status: StepOK, Output: fmt.Sprintf("deployment %s/%s restarted at %s", ns, name, at)}
	case KubePatch:
		kind, name := "deployment", in["deployment"].(string)
		if k.Service != "" {
			kind, name = "service", in["service"].(string)
		}
		patch, _ := in["patch"].(string)
		var obj map[string]any
		if err := json.Unmarshal([]byte(patch), &obj); err != nil {
			return failed("patch of %s %s/%s is not a JSON object: %v", kind, ns, name, err)
		}
		if err := kc.Patch(ctx, ns, kind, name, []byte(patch)); err != nil {
			return failed("patch %s %s/%s: %v", kind, ns, name, err)
		}
		return stepResult{Status: StepOK, Output: fmt.Sprintf("%s %s/%s patched", kind, ns, name)}
	case KubeDeletePod:
		name, _ := in["pod"].(string)
		if err := kc.DeletePod(ctx, ns, name); err != nil {
			return failed("delete pod %s/%s: %v", ns, name, err)
		}
		return stepResult{Status: StepOK, Output: fmt.Sprintf("pod %s/%s deleted", ns, name)}
	}
	return failed("unknown kubernetes action %q", k.Action)
}

// desiredReplicas applies a scale step to the current replica count.
func desiredReplicas(k *KubernetesStep, current int32) int32 {
	to := current
	if k.Replicas != nil {
		to = *k.Replicas
	} else if k.By != nil {
		to = current + *k.By
	}
	if k.Min != nil && to < *k.Min {
		to = *k.Min
	}
	if k.Max != nil && to > *k.Max {
		to = *k.Max
	}
	if to < 0 {
		to = 0
	}
	return to
}

// runPromQL polls query until its expectation holds or ctx ends. No data
// counts as an empty result: a non_empty expectation is not met by a
// missing series.
func (e *Engine) runPromQL(ctx context.Context, s *Step, query string) stepResult {
	if e.opts.Prometheus == nil {
		return failed("no Prometheus is configured for promql steps (set prometheus.url)")
	}
	interval := time.Duration(s.PromQL.Interval)
	var last string
	for attempt := 1; ; attempt++ {
		v, warnings, _, err := e.opts.Prometheus.Query(ctx, query, e.now())
		if err != nil {
			last = fmt.Sprintf("attempt %d: query error: %v", attempt, err)
		} else {
			n := resultSize(v)
			last = fmt.Sprintf("attempt %d: %d series: %s", attempt, n, truncate(v.String(), 512))
			if len(warnings) > 0 {
				last += " (warnings: " + strings.Join(warnings, "; ") + ")"
			}
			if (s.PromQL.Expect == ExpectNonEmpty) == (n > 0) {
				return stepResult{Status: StepOK, Output: last}
			}
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return stepResult{Status: StepFailed, Output: last,
				Error: fmt.Sprintf("condition %s of %q not met: %v", s.PromQL.Expect, query, context.Cause(ctx))}
		case <-t.C:
		}
	}
}

func resultSize(v model.Value) int {
	switch v := v.(type) {
	case model.Vector:
		return len(v)
	case model.Matrix:
		return len(v)
	case *model.Scalar, *model.String:
		return 1
	}
	return 0
}

func (e *Engine) runNotify(ctx context.Context, x *execution, s *Step, message string) stepResult {
	if err := e.opts.Incidents.AddTimeline(ctx, nil, incident.TimelineEntry{
		IncidentID: x.run.IncidentID, Kind: "runbook_notify", Actor: "runbook:" + x.run.Runbook, Message: message,
		Data: map[string]any{"run_id": x.run.ID},
	}); err != nil {
		return failed("write timeline: %v", err)
	}
	if e.opts.Bus != nil {
		e.opts.Bus.Publish(events.Event{Type: "runbook.notify", IncidentID: x.run.IncidentID,
			Data: map[string]any{"run_id": x.run.ID, "runbook": x.run.Runbook, "message": message}})
	}
	if e.opts.Notifier == nil {
		return failed("no notifier is configured: the message is on the timeline and the event stream only")
	}
	to, err := e.opts.Notifier.NotifyResponders(ctx, Notification{IncidentID: x.run.IncidentID, Runbook: x.run.Runbook, RunID: x.run.ID,
		Step: s.Name, Message: message, Channels: s.Notify.Channels})
	if err != nil {
		return failed("notify: %v", err)
	}
	return stepResult{Status: StepOK, Output: to}
}

// waitApproval pauses the run until a responder approves it through the API
// or the step times out.
func (e *Engine) waitApproval(ctx context.Context, x *execution, idx int, step, message string) stepResult {
	if message == "" {
		message = "approve to continue"
	}
	// The status and its audit entry in one write: whoever sees the run
	// waiting sees why.
	if err := e.recordWith(ctx, x.run, &AuditEntry{Event: "approval_requested", StepIndex: idx, StepName: step, StepType: string(StepApproval), Status: RunWaitingApproval,
		Input: map[string]any{"message": message}},
		fmt.Sprintf("runbook %s run %d waits for approval: %s (POST /api/v1/runbooks/runs/%d/approve)", x.run.Runbook, x.run.ID, message, x.run.ID),
		func(ctx context.Context, tx *sql.Tx) error {
			return setStatusTx(ctx, tx, x.run.ID, RunRunning, RunWaitingApproval)
		}); err != nil {
		return failed("wait for approval: %v", err)
	}
	cfg, _ := e.config()
	for {
		var by, comment string
		err := e.db.QueryRowContext(ctx, `SELECT approved_by, comment FROM runbook_approvals WHERE run_id = $1 AND step_index = $2`,
			x.run.ID, idx).Scan(&by, &comment)
		if err == nil {
			bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			err = e.setStatus(bctx, x.run.ID, RunWaitingApproval, RunRunning)
			cancel()
			if err != nil {
				return failed("resume after approval: %v", err)
			}
			return stepResult{Status: StepOK, Output: "approved by " + by, Input: map[string]any{"approved_by": by, "comment": comment}}
		}
		t := time.NewTimer(time.Duration(cfg.PollInterval))
		select {
		case <-ctx.Done():
			t.Stop()
			bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			_ = e.setStatus(bctx, x.run.ID, RunWaitingApproval, RunRunning)
			cancel()
			return failed("no approval: %v", context.Cause(ctx))
		case <-t.C:
		}
	}
}

// setStatus moves run id from status from to status to (running and
// waiting_approval) through the engine's writer.
func (e *Engine) setStatus(ctx context.Context, id int64, from, to string) error {
	return e.write(ctx, func(ctx context.Context, tx *sql.Tx) error { return setStatusTx(ctx, tx, id, from, to) })
}

// setStatusTx moves run id from status from to status to within tx.
func setStatusTx(ctx context.Context, tx *sql.Tx, id int64, from, to string) error {
	_, err := tx.ExecContext(ctx, `UPDATE runbook_runs SET status = $1 WHERE id = $2 AND status = $3`, to, id, from)
	return err
}
