package change

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/kube"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/web"
)

// FlaggerEvent is the body of Flagger's event webhook (the
// -event-webhook flag, or a Canary webhook of type "event"): Flagger's
// CanaryWebhookPayload with the event in its metadata.
type FlaggerEvent struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Phase     string            `json:"phase"`
	Checksum  string            `json:"checksum,omitempty"`
	BuildID   string            `json:"buildId,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// ArgoRolloutsNotification is the body of the Argo Rollouts notification
// template of docs/changes.md (Argo Rollouts' webhook notification
// service posts what the template renders).
type ArgoRolloutsNotification struct {
	Rollout   string `json:"rollout"`
	Namespace string `json:"namespace"`
	// Phase is the rollout's .status.phase: Progressing, Paused, Healthy,
	// Degraded.
	Phase string `json:"phase"`
	// Aborted is .status.abort: true or "true" (the template renders it
	// as a string, as the field is absent until a rollout is aborted).
	Aborted  flexBool `json:"aborted,omitempty"`
	Revision string   `json:"revision,omitempty"`
	Image    string   `json:"image,omitempty"`
	// Service, Commit and CommitTime are optional: the service defaults
	// to the rollout's name; commit and commit time usually come from
	// annotations the CI sets on the rollout.
	Service    string `json:"service,omitempty"`
	Commit     string `json:"commit,omitempty"`
	CommitTime string `json:"commit_time,omitempty"`
}

// NotificationResult is the answer of the notification endpoints.
type NotificationResult struct {
	// Action is recorded, finished or ignored.
	Action string  `json:"action"`
	Reason string  `json:"reason,omitempty"`
	Change *Change `json:"change,omitempty"`
	// Warnings name what the notification said that was not recorded
	// (a commit time after the change started).
	Warnings []string `json:"warnings,omitempty"`
}

// Progress records what a rollout engine reports about one rollout (its
// ref): started opens an in-progress change (once: a repeated start is
// ignored); a final outcome finishes the open one, or records a finished
// change when none is open, unless the last change of the ref already
// ended so for the same version (a repeated notification: Flagger posts
// every event of a canary with its phase, Succeeded until the next
// revision, and retries; notifications are redelivered).
func (s *Service) Progress(ctx context.Context, c Change, outcome Outcome) (NotificationResult, error) {
	return s.progress(ctx, c, outcome, "")
}

// progress is Progress; notShipped, when not empty, says why a success
// with no change open is not a deployment (Flagger's Succeeded of a
// canary it only initialised), and it records nothing.
func (s *Service) progress(ctx context.Context, c Change, outcome Outcome, notShipped string) (NotificationResult, error) {
	open, err := s.openByRef(ctx, c.Ref)
	if err != nil {
		return NotificationResult{}, err
	}
	if outcome != InProgress && open == nil && c.Version != "" {
		last, err := s.lastByRef(ctx, c.Ref)
		if err != nil {
			return NotificationResult{}, err
		}
		if last != nil && last.Outcome == outcome && last.Version == c.Version {
			last.fill()
			return NotificationResult{Action: "ignored", Reason: fmt.Sprintf("change %d of %s version %s is already %s", last.ID, c.Ref, c.Version, outcome), Change: last}, nil
		}
		if last != nil && last.Outcome == Failed && outcome == RolledBack && last.Version == c.Version {
			// The version that failed is rolled back (an Argo Rollouts
			// rollout Degraded, then aborted): the same change.
			out, err := s.FinishAt(ctx, last.ID, RolledBack, c.StartedAt)
			return NotificationResult{Action: "finished", Change: &out}, err
		}
	}
	if open != nil && c.Version != "" && c.Version != open.Version {
		// The rollout now ships another version: Flagger's first event of
		// a revision carries the checksum of the one before it, and a
		// revision may replace another mid-rollout. The open change is
		// the rollout of the version it ships.
		if err := s.supersede(ctx, open, c); err != nil {
			return NotificationResult{}, err
		}
	}
	switch {
	case outcome == InProgress && open != nil:
		return NotificationResult{Action: "ignored", Reason: fmt.Sprintf("change %d of %s is already in progress", open.ID, c.Ref), Change: open}, nil
	case outcome == InProgress:
		c.Outcome = InProgress
		out, err := s.Record(ctx, c)
		return NotificationResult{Action: "recorded", Change: &out}, err
	case open != nil:
		var at time.Time
		if !c.StartedAt.IsZero() {
			at = c.StartedAt // the notification's time
		}
		out, err := s.FinishAt(ctx, open.ID, outcome, at)
		return NotificationResult{Action: "finished", Change: &out}, err
	}
	if outcome == Succeeded && notShipped != "" {
		return NotificationResult{Action: "ignored", Reason: fmt.Sprintf("no change of %s in progress and %s: not a deployment", limits.Cut(c.Ref), notShipped)}, nil
	}
	// The end of a rollout whose start was not seen: it started and
	// finished when the notification says.
	c.Outcome = outcome
	if !c.StartedAt.IsZero() {
		t := c.StartedAt
		c.FinishedAt = &t
	}
	out, err := s.Record(ctx, c)
	return NotificationResult{Action: "recorded", Change: &out}, err
}

// supersede makes the open change the rollout of c's version, commit and
// commit time.
func (s *Service) supersede(ctx context.Context, open *Change, c Change) error {
	for name, v := range map[string]string{"version": c.Version, "commit": c.Commit} {
		if len(v) > maxField {
			return fmt.Errorf("%w: %s longer than %d bytes", ErrBadRequest, name, maxField)
		}
	}
	var commitAt *time.Time
	if c.CommitTime != nil {
		t := c.CommitTime.UTC().Truncate(time.Millisecond)
		commitAt = &t
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE changes SET version = $1, commit_sha = $2, commit_at = $3 WHERE id = $4 AND outcome = $5`,
		c.Version, c.Commit, nullMS(commitAt), open.ID, string(InProgress)); err != nil {
		return fmt.Errorf("change %d of %s: record version %s: %w", open.ID, c.Ref, c.Version, err)
	}
	s.logger.Info("Change ships another version", "id", open.ID, "ref", c.Ref, "from", open.Version, "to", c.Version)
	open.Version, open.Commit, open.CommitTime = c.Version, c.Commit, commitAt
	return nil
}

// lastByRef returns the latest change of a rollout (nil without one).
func (s *Service) lastByRef(ctx context.Context, ref string) (*Change, error) {
	if ref == "" {
		return nil, nil
	}
	c, err := scan(s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM changes WHERE ref = $1 ORDER BY id DESC LIMIT 1`, ref))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find the last change of %s: %w", ref, err)
	}
	return c, nil
}

func (s *Service) openByRef(ctx context.Context, ref string) (*Change, error) {
	if ref == "" {
		return nil, nil
	}
	c, err := scan(s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM changes WHERE ref = $1 AND outcome = $2 ORDER BY id DESC LIMIT 1`, ref, string(InProgress)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find the open change of %s: %w", ref, err)
	}
	return c, nil
}

// flaggerOutcome maps a Flagger canary phase to a change outcome; ok is
// false for the phases that change nothing.
func flaggerOutcome(phase string) (Outcome, bool) {
	switch phase {
	case "Progressing":
		return InProgress, true
	case "Succeeded":
		return Succeeded, true
	case "Failed":
		// Flagger rolls a failed canary back to the primary.
		return RolledBack, true
	}
	return "", false
}

func (s *Service) handleFlagger(w http.ResponseWriter, r *http.Request) {
	var ev FlaggerEvent
	if !readJSON(w, r, &ev) {
		return
	}
	if ev.Name == "" || ev.Namespace == "" {
		web.Error(w, http.StatusBadRequest, "bad_data", errors.New("a Flagger event needs name and namespace"))
		return
	}
	// The ref is flagger:<namespace>/<name>: a '/' in either made two
	// canaries one, whose events finished each other's change.
	if err := kube.CheckObject("canary", "name", ev.Name, "namespace", ev.Namespace); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("flagger event: %w", err))
		return
	}
	outcome, ok := flaggerOutcome(ev.Phase)
	if !ok {
		web.JSON(w, http.StatusOK, NotificationResult{Action: "ignored", Reason: fmt.Sprintf("phase %s records nothing", limits.Quote(ev.Phase))})
		return
	}
	svc, err := serviceOf(r, ev.Metadata["service"], "metadata.service", ev.Name, "name")
	if err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("flagger event: %w", err))
		return
	}
	c := Change{Service: svc, Kind: KindDeploy, Source: SourceFlagger,
		Ref: "flagger:" + ev.Namespace + "/" + ev.Name, Version: firstOf(ev.BuildID, ev.Metadata["lastBuildId"], ev.Checksum),
		Commit: ev.Metadata["commit"], Description: ev.Metadata["eventMessage"], Actor: auth.ActorOf(r.Context(), "", "flagger")}
	var warnings []string
	if t, err := flaggerTime(ev.Metadata["timestamp"]); err != nil {
		// A time the API could not answer (year -1200: every list of
		// changes holding it was a 500) is no time of the event: recorded
		// at its arrival, as a notification is not refused.
		warnings = append(warnings, s.timeWarning(c, err))
	} else if !t.IsZero() && !t.After(s.clock.Now()) {
		c.StartedAt = t
	}
	ct, w2 := s.commitTime(c, ev.Metadata["commit_time"])
	c.CommitTime, warnings = ct, append(warnings, w2...)
	// Flagger posts Succeeded for a canary it only initialised, or that is
	// suspended, as for one it promoted; its event message tells them
	// apart. Without a change in progress, only a promotion is one.
	var notShipped string
	if msg := ev.Metadata["eventMessage"]; !strings.HasPrefix(msg, flaggerPromoted) {
		notShipped = fmt.Sprintf("the event (%s) is not a promotion", limits.Quote(msg))
	}
	s.answerProgress(w, r, c, outcome, notShipped, warnings)
}

// flaggerPromoted starts the message of Flagger's event for a promotion
// ("Promotion completed! Scaling down <target>.<namespace>", and "...
// Canary analysis was skipped for ..." with skipAnalysis).
const flaggerPromoted = "Promotion completed!"

// commitTime reads a notification's commit_time (empty: none). One that
// is not RFC 3339, or is an unset time (unsetTime), is no lead time: POST /api/v1/changes refuses it, but a
// notification is recorded without it and the warning says so (a refused
// notification is redelivered, and the rollout would not be recorded at
// all).
func (s *Service) commitTime(c Change, raw string) (*time.Time, []string) {
	if raw == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, raw)
	if err == nil && unsetTime(t) {
		s.logger.Warn("Commit time unset: recorded without a lead time", "ref", c.Ref, "service", c.Service,
			"commit", c.Commit, "commit_time", t.UTC())
		return nil, []string{fmt.Sprintf("commit_time %s is no commit time (%s): recorded without commit_time, no lead time",
			t.UTC().Format(time.RFC3339), unsetTimeWhy)}
	}
	if err == nil {
		return &t, nil
	}
	shown := raw
	if len(shown) > maxShownCommitTime {
		shown = shown[:maxShownCommitTime] + "..."
	}
	s.logger.Warn("Commit time not RFC 3339: recorded without a lead time", "ref", c.Ref, "service", c.Service,
		"commit", c.Commit, "commit_time", shown)
	return nil, []string{fmt.Sprintf("commit_time %q is not RFC 3339: recorded without commit_time, no lead time", shown)}
}

// maxShownCommitTime caps a bad commit_time in warnings and logs.
const maxShownCommitTime = 64

func (s *Service) answerProgress(w http.ResponseWriter, r *http.Request, c Change, outcome Outcome, notShipped string, warnings []string) {
	// A commit time after the start (a committer's clock ahead) is no lead
	// time. POST /api/v1/changes refuses it; a notification is recorded
	// without it and says so (a refused notification is redelivered, and
	// the rollout would not be recorded at all).
	start := c.StartedAt
	if start.IsZero() {
		start = s.clock.Now()
	}
	if c.CommitTime != nil && c.CommitTime.After(start) {
		warnings = append(warnings, fmt.Sprintf("commit_time %s is after the change started (%s): recorded without commit_time, no lead time",
			c.CommitTime.UTC().Format(time.RFC3339), start.UTC().Format(time.RFC3339)))
		s.logger.Warn("Commit time after the change started: recorded without a lead time", "ref", c.Ref, "service", c.Service,
			"commit", c.Commit, "commit_time", c.CommitTime.UTC(), "started_at", start.UTC())
		c.CommitTime = nil
	}
	res, err := s.progress(r.Context(), c, outcome, notShipped)
	if err != nil {
		writeErr(w, err)
		return
	}
	res.Warnings = warnings
	res.Change = ChangeFor(r.Context(), res.Change)
	code := http.StatusOK
	if res.Action == "recorded" {
		code = http.StatusCreated
	}
	web.JSON(w, code, res)
}

// flaggerTime reads Flagger's timestamp metadata (unix milliseconds); one
// that is not a number, or is outside the years limits.Time takes, is an
// error naming it.
func flaggerTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("metadata.timestamp %s is not Unix milliseconds", limits.Quote(s))
	}
	t := time.UnixMilli(n).UTC()
	if err := limits.Time("metadata.timestamp", t); err != nil {
		return time.Time{}, err
	}
	return t, nil
}

// timeWarning is the warning of a notification whose time (err) is not
// taken: the change is recorded at the time it arrived. It is logged too.
func (s *Service) timeWarning(c Change, err error) string {
	s.logger.Warn("Notification time not taken: recorded at its arrival", "ref", c.Ref, "service", c.Service, "err", err)
	return err.Error() + ": recorded at the time the notification arrived"
}

// argoOutcome maps an Argo Rollouts phase to a change outcome.
func argoOutcome(n ArgoRolloutsNotification) (Outcome, bool) {
	if n.Aborted {
		return RolledBack, true
	}
	switch n.Phase {
	case "Progressing", "Paused":
		return InProgress, true
	case "Healthy":
		return Succeeded, true
	case "Degraded":
		return Failed, true
	}
	return "", false
}

func (s *Service) handleArgo(w http.ResponseWriter, r *http.Request) {
	var n ArgoRolloutsNotification
	if !readJSON(w, r, &n) {
		return
	}
	for _, f := range []*string{&n.Rollout, &n.Namespace, &n.Phase, &n.Revision, &n.Image, &n.Service, &n.Commit, &n.CommitTime} {
		*f = unrendered(*f)
	}
	if n.Rollout == "" || n.Namespace == "" {
		web.Error(w, http.StatusBadRequest, "bad_data", errors.New("an Argo Rollouts notification needs rollout and namespace"))
		return
	}
	if err := kube.CheckObject("rollout", "rollout", n.Rollout, "namespace", n.Namespace); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("argo rollouts notification: %w", err))
		return
	}
	outcome, ok := argoOutcome(n)
	if !ok {
		web.JSON(w, http.StatusOK, NotificationResult{Action: "ignored", Reason: fmt.Sprintf("phase %s records nothing", limits.Quote(n.Phase))})
		return
	}
	svc, err := serviceOf(r, n.Service, "service", n.Rollout, "rollout")
	if err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("argo rollouts notification: %w", err))
		return
	}
	c := Change{Service: svc, Kind: KindDeploy, Source: SourceArgoRollouts,
		Ref: "argo-rollouts:" + n.Namespace + "/" + n.Rollout, Version: firstOf(n.Revision, n.Image), Commit: n.Commit,
		Actor: auth.ActorOf(r.Context(), "", "argo-rollouts")}
	if n.Image != "" && n.Revision != "" {
		c.Description = "revision " + n.Revision + ": " + n.Image
	}
	var warnings []string
	c.CommitTime, warnings = s.commitTime(c, n.CommitTime)
	s.answerProgress(w, r, c, outcome, "", warnings)
}

// serviceOf is the service a notification is about: ?service= first,
// then what the payload says, then the rollout's name.
// It refuses a service name an SLO spec could not name, naming where it
// came from: bodyField or nameField of the body, or ?service=.
func serviceOf(r *http.Request, fromBody, bodyField, name, nameField string) (string, error) {
	v, field := strings.TrimSpace(r.URL.Query().Get("service")), "?service="
	switch {
	case v != "":
	case fromBody != "":
		v, field = fromBody, bodyField
	default:
		v, field = name, nameField
	}
	return v, limits.ServiceName(field, v)
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// flexBool reads a JSON boolean or its string form: true or "true";
// false, "false", null, "" or "<no value>" (what a template renders for a
// field the rollout lacks) for false. Anything else is an error: "yes",
// "True" or 1 read as false, and an aborted rollout was recorded by its
// phase instead of as rolled back.
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	switch string(data) {
	case "true", `"true"`:
		*b = true
	case "false", `"false"`, "null", `""`, `"<no value>"`:
		*b = false
	default:
		return fmt.Errorf("want true or false, got %s", limits.Cut(string(data)))
	}
	return nil
}

// unrendered clears what a Go template renders for a missing value.
func unrendered(s string) string {
	s = strings.TrimSpace(s)
	if s == "<no value>" {
		return ""
	}
	return s
}

// FluxEvent is the body of a Flux notification-controller Provider of
// type generic (or generic-hmac): the event of a Kustomization,
// HelmRelease, ... as Flux posts it.
type FluxEvent struct {
	InvolvedObject struct {
		Kind      string `json:"kind"`
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"involvedObject"`
	Severity            string            `json:"severity"`
	Timestamp           string            `json:"timestamp"`
	Message             string            `json:"message"`
	Reason              string            `json:"reason"`
	Metadata            map[string]string `json:"metadata,omitempty"`
	ReportingController string            `json:"reportingController"`
}

// kindRE matches a Kubernetes kind (Kustomization, HelmRelease).
var kindRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{0,62}$`)

// fluxOutcome: an error event is a failed change, a successful
// reconciliation, installation or upgrade a succeeded one; the other
// events (progress, dependency waits) record nothing.
func fluxOutcome(ev FluxEvent) (Outcome, bool) {
	if ev.Severity == "error" {
		return Failed, true
	}
	switch ev.Reason {
	case "ReconciliationSucceeded", "InstallSucceeded", "UpgradeSucceeded":
		return Succeeded, true
	}
	return "", false
}

// fluxCommit is the commit of a Flux revision: main@sha1:<sha>, or the
// older main/<sha>.
func fluxCommit(rev string) string {
	if i := strings.LastIndex(rev, ":"); i >= 0 {
		return rev[i+1:]
	}
	if i := strings.LastIndex(rev, "/"); i >= 0 {
		return rev[i+1:]
	}
	return rev
}

// handleFlux records Flux's events: one change per object and revision (an
// idempotency key, as Flux repeats events), a failed one per revision that
// failed.
func (s *Service) handleFlux(w http.ResponseWriter, r *http.Request) {
	var ev FluxEvent
	if !readJSON(w, r, &ev) {
		return
	}
	obj := ev.InvolvedObject
	if obj.Kind == "" || obj.Name == "" || obj.Namespace == "" {
		web.Error(w, http.StatusBadRequest, "bad_data", errors.New("a Flux event needs involvedObject kind, name and namespace"))
		return
	}
	// The key is flux:<kind>/<namespace>/<name>:<revision>: a '/' or ':'
	// in any of them made an object's event the record of another's,
	// which then recorded nothing ("already recorded").
	err := kube.CheckObject("involved object", "involvedObject.name", obj.Name, "involvedObject.namespace", obj.Namespace)
	if err == nil && !kindRE.MatchString(obj.Kind) {
		err = fmt.Errorf("involvedObject.kind %s is not a Kubernetes kind (a letter, then letters and digits, at most 63)", limits.Quote(obj.Kind))
	}
	if err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("flux event: %w", err))
		return
	}
	outcome, ok := fluxOutcome(ev)
	rev := ev.Metadata["revision"]
	if !ok || rev == "" {
		web.JSON(w, http.StatusOK, NotificationResult{Action: "ignored", Reason: fmt.Sprintf("event %s without a revision or outcome records nothing", limits.Cut(ev.Reason))})
		return
	}
	kind := KindDeploy
	if obj.Kind == "Terraform" {
		kind = KindInfra
	}
	svc, err := serviceOf(r, ev.Metadata["service"], "metadata.service", obj.Name, "involvedObject.name")
	if err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("flux event: %w", err))
		return
	}
	c := Change{Service: svc, Kind: kind, Source: "flux", Outcome: outcome,
		Version: rev, Commit: fluxCommit(rev), Description: ev.Message, Actor: auth.ActorOf(r.Context(), "", "flux"),
		Key: "flux:" + obj.Kind + "/" + obj.Namespace + "/" + obj.Name + ":" + rev}
	if outcome == Failed {
		c.Key += ":failed"
	}
	if len(c.Description) > maxText {
		c.Description = strings.ToValidUTF8(c.Description[:maxText], "")
	}
	var warnings []string
	if t, err := time.Parse(time.RFC3339, ev.Timestamp); err == nil && !t.After(s.clock.Now()) {
		// RFC 3339 takes the year 0000, which the API answers
		// but no other path lets in.
		if err := limits.Time("timestamp", t); err != nil {
			warnings = append(warnings, s.timeWarning(c, err))
		} else {
			c.StartedAt = t
			c.FinishedAt = &t
		}
	}
	out, existed, err := s.record(r.Context(), c, 0)
	if err != nil {
		writeErr(w, err)
		return
	}
	if existed {
		web.JSON(w, http.StatusOK, NotificationResult{Action: "ignored", Reason: "already recorded", Change: ChangeFor(r.Context(), &out)})
		return
	}
	web.JSON(w, http.StatusCreated, NotificationResult{Action: "recorded", Change: ChangeFor(r.Context(), &out), Warnings: warnings})
}
