package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/rootuip/sre/pkg/store"
)

// Measurement is one sample of the score's inputs; nil means no data.
type Measurement struct {
	// Availability is the share (0-1) of the target's instances up.
	Availability *float64 `json:"availability"`
	// ErrorRatio is the share (0-1) of failed requests.
	ErrorRatio *float64 `json:"error_ratio"`
	// LatencySeconds is the latency the experiment's latency query returns.
	LatencySeconds *float64 `json:"latency_seconds"`
}

// worst combines two measurements keeping the worst of each term.
func (m Measurement) worst(o Measurement) Measurement {
	pick := func(a, b *float64, higherIsWorse bool) *float64 {
		switch {
		case a == nil:
			return b
		case b == nil:
			return a
		case (*b > *a) == higherIsWorse:
			return b
		}
		return a
	}
	return Measurement{
		Availability:   pick(m.Availability, o.Availability, false),
		ErrorRatio:     pick(m.ErrorRatio, o.ErrorRatio, true),
		LatencySeconds: pick(m.LatencySeconds, o.LatencySeconds, true),
	}
}

func (s *Service) measure(ctx context.Context, e *Experiment) Measurement {
	var m Measurement
	aq := e.Measure.AvailabilityQuery
	if aq == "" {
		aq = `avg(up{` + labels.MustNewMatcher(labels.MatchEqual, "job", e.Target.Service).String() + `})`
	}
	m.Availability, _ = s.scalar(ctx, aq)
	m.ErrorRatio, _ = s.errorRate(ctx, e)
	if e.Measure.LatencyQuery != "" {
		m.LatencySeconds, _ = s.scalar(ctx, e.Measure.LatencyQuery)
	}
	return m
}

// Score is the resilience score of a run and its terms.
//
//	score = 100 - availabilityDegradation*10 - latencyIncrease/10
//	            - errorRateIncrease/2 + recoveryBonus*10, clamped to 0..100
type Score struct {
	Value float64 `json:"value"`
	// AvailabilityDegradation is in percentage points of instances up
	// (before minus the worst during the faults, never negative).
	AvailabilityDegradation float64 `json:"availability_degradation_pp"`
	// LatencyIncrease is in milliseconds (worst during minus before).
	LatencyIncrease float64 `json:"latency_increase_ms"`
	// ErrorRateIncrease is in percentage points of failed requests.
	ErrorRateIncrease float64 `json:"error_rate_increase_pp"`
	// RecoveryBonus is 1 when, after the rollback, the steady state holds
	// again and the error rate is back within 1 percentage point of before.
	RecoveryBonus float64     `json:"recovery_bonus"`
	Before        Measurement `json:"before"`
	During        Measurement `json:"during"`
	After         Measurement `json:"after"`
}

func diff(during, before *float64, scale float64) float64 {
	if during == nil || before == nil {
		return 0
	}
	return math.Max(0, (*during-*before)*scale)
}

// ComputeScore applies the resilience score formula.
func ComputeScore(before, during, after Measurement, steadyAfter bool) Score {
	s := Score{Before: before, During: during, After: after}
	s.AvailabilityDegradation = diff(before.Availability, during.Availability, 100)
	s.LatencyIncrease = diff(during.LatencySeconds, before.LatencySeconds, 1000)
	s.ErrorRateIncrease = diff(during.ErrorRatio, before.ErrorRatio, 100)
	recovered := steadyAfter
	if after.ErrorRatio != nil && before.ErrorRatio != nil && *after.ErrorRatio > *before.ErrorRatio+0.01 {
		recovered = false
	}
	if recovered {
		s.RecoveryBonus = 1
	}
	v := 100 - s.AvailabilityDegradation*10 - s.LatencyIncrease/10 - s.ErrorRateIncrease/2 + s.RecoveryBonus*10
	s.Value = math.Round(math.Max(0, math.Min(100, v))*10) / 10
	return s
}

// Report is the JSON report of a run.
type Report struct {
	Run            RunInfo  `json:"run"`
	Hypothesis     string   `json:"hypothesis"`
	HypothesisHeld bool     `json:"hypothesis_held"`
	Violations     []string `json:"violations"`
	AbortReason    string   `json:"abort_reason,omitempty"`
	Errors         []string `json:"errors,omitempty"`
	// Score is null when the run has none, NoScore saying why.
	Score   *Score `json:"score"`
	NoScore string `json:"no_score,omitempty"`
	// Incidents are the incidents of the target opened since the start;
	// NotNoted, those of them that could not take the run's timeline
	// note (they have the most notes an incident can have).
	Incidents []string `json:"incidents"`
	NotNoted  []string `json:"incidents_not_noted,omitempty"`
}

func (s *Service) report(ctx context.Context, r *run, held bool) (string, error) {
	e := r.e
	// After: one abort interval after the rollback, the steady state again.
	select {
	case <-ctx.Done():
	case <-s.o.Clock.After(time.Duration(e.Abort.Interval)):
	}
	steadyAfter := len(s.probe(ctx, e)) == 0
	r.after = s.measure(ctx, e)
	var during = r.during
	if during == (Measurement{}) {
		during = r.before
	}
	var sc *Score
	if r.noScore == "" {
		v := ComputeScore(r.before, during, r.after, steadyAfter)
		sc = &v
	}
	var incs, notNoted []string
	if s.o.Incidents != nil {
		ids, err := s.o.Incidents.OpenedSince(ctx, e.Target.Service, r.info.Started)
		if err == nil {
			for _, id := range ids {
				// Opened during the run whether or not it takes the note:
				// a full incident (r.full) is counted, not noted again.
				incs = append(incs, id)
				if r.full[id] {
					notNoted = append(notNoted, id)
					continue
				}
				note := fmt.Sprintf("Opened during chaos experiment %s (run %s).", e.Name, r.info.ID)
				if e.ExpectAlerts && !r.tagged[id] {
					note += " " + ExpectedNote(r.info.ID) + "."
				}
				if err := s.o.Incidents.Tag(ctx, id, note); err != nil {
					s.noteRefused(r, id, err)
					if r.full[id] {
						notNoted = append(notNoted, id)
					}
				}
			}
		}
	}
	if incs == nil {
		incs = []string{}
	}
	info, _, err := s.j.run(ctx, r.info.ID)
	if err != nil {
		return "", err
	}
	info.Status = r.info.Status
	rep := Report{Run: *info, Hypothesis: e.Hypothesis.Description, HypothesisHeld: held, Violations: uniq(r.probeBad),
		AbortReason: r.aborted, Errors: r.errs, Score: sc, NoScore: r.noScore, Incidents: incs, NotNoted: notNoted}
	if rep.Violations == nil {
		rep.Violations = []string{}
	}
	js, _ := json.MarshalIndent(rep, "", "  ")
	md := Markdown(rep)
	reason := r.aborted
	if reason == "" && len(r.errs) > 0 {
		reason = strings.Join(r.errs, "; ")
	}
	if sc == nil {
		if err := s.j.finishRun(ctx, r.info.ID, s.o.Owner, r.info.Status, reason, nil, md, string(js), s.o.Clock.Now()); err != nil {
			return "", err
		}
		s.publish(r, nil)
		return fmt.Sprintf("%s; no resilience score: %s", r.info.Status, r.noScore), nil
	}
	if err := s.j.finishRun(ctx, r.info.ID, s.o.Owner, r.info.Status, reason, &sc.Value, md, string(js), s.o.Clock.Now()); err != nil {
		return "", err
	}
	s.publish(r, sc)
	return fmt.Sprintf("%s; resilience score %.1f", r.info.Status, sc.Value), nil
}

func fmtPtr(v *float64, scale float64, unit string) string {
	if v == nil {
		return "no data"
	}
	return fmt.Sprintf("%.2f%s", *v*scale, unit)
}

// Markdown renders a report.
func Markdown(r Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Chaos experiment %s\n\n", r.Run.Experiment)
	fmt.Fprintf(&b, "- Run: `%s` by %s\n- Target: %s in %s\n- Result: **%s**\n", r.Run.ID, r.Run.Actor, r.Run.Service, r.Run.Environment, r.Run.Status)
	if r.AbortReason != "" {
		fmt.Fprintf(&b, "- Aborted: %s\n", r.AbortReason)
	}
	fmt.Fprintf(&b, "\n## Hypothesis\n\n%s\n\n", r.Hypothesis)
	if r.HypothesisHeld {
		b.WriteString("The hypothesis **held**.\n")
	} else {
		b.WriteString("The hypothesis **did not hold** or was not evaluated to the end.\n")
		for _, v := range r.Violations {
			fmt.Fprintf(&b, "- %s\n", v)
		}
	}
	b.WriteString("\n## Steps\n\n| step | status | started | finished | detail |\n| --- | --- | --- | --- | --- |\n")
	for _, s := range r.Run.Steps {
		fin := ""
		if s.Finished != nil {
			fin = s.Finished.Format(time.RFC3339)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", s.Name, s.Status, s.Started.Format(time.RFC3339), fin, strings.ReplaceAll(s.Detail, "|", "\\|"))
	}
	b.WriteString("\n## Faults\n\n| fault | type | driver | status |\n| --- | --- | --- | --- |\n")
	for _, f := range r.Run.Faults {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", f.Name, f.Fault.Type, f.Driver, f.Status)
	}
	if sc := r.Score; sc != nil {
		fmt.Fprintf(&b, "\n## Resilience score: %.1f\n\n| term | value | before | during | after |\n| --- | --- | --- | --- | --- |\n", sc.Value)
		fmt.Fprintf(&b, "| availability degradation | %.2f pp | %s | %s | %s |\n", sc.AvailabilityDegradation,
			fmtPtr(sc.Before.Availability, 100, "%"), fmtPtr(sc.During.Availability, 100, "%"), fmtPtr(sc.After.Availability, 100, "%"))
		fmt.Fprintf(&b, "| latency increase | %.1f ms | %s | %s | %s |\n", sc.LatencyIncrease,
			fmtPtr(sc.Before.LatencySeconds, 1000, " ms"), fmtPtr(sc.During.LatencySeconds, 1000, " ms"), fmtPtr(sc.After.LatencySeconds, 1000, " ms"))
		fmt.Fprintf(&b, "| error-rate increase | %.2f pp | %s | %s | %s |\n", sc.ErrorRateIncrease,
			fmtPtr(sc.Before.ErrorRatio, 100, "%"), fmtPtr(sc.During.ErrorRatio, 100, "%"), fmtPtr(sc.After.ErrorRatio, 100, "%"))
		fmt.Fprintf(&b, "| recovery bonus | %.0f | | | |\n", sc.RecoveryBonus)
	}
	if r.Score == nil && r.NoScore != "" {
		fmt.Fprintf(&b, "\n## Resilience score: n/a\n\n%s\n", r.NoScore)
	}
	if len(r.Errors) > 0 {
		b.WriteString("\n## Errors\n\n")
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "- %s\n", e)
		}
	}
	if len(r.Incidents) > 0 {
		fmt.Fprintf(&b, "\n## Incidents opened during the run\n\n%s\n", strings.Join(r.Incidents, ", "))
		if len(r.NotNoted) > 0 {
			fmt.Fprintf(&b, "\nNot noted on %s: the incident has the most notes it can have.\n", strings.Join(r.NotNoted, ", "))
		}
	}
	return b.String()
}

type metrics struct {
	experiments *prometheus.CounterVec
	faultActive *prometheus.GaugeVec

	mu sync.Mutex
	// active holds, by fault record ID, the labels of the series of each
	// fault this replica injected and has not reverted, and injected the
	// number of such faults per series (runs of one experiment that
	// overlap share its series).
	active   map[string][5]string
	injected map[[5]string]int
}

// faultInjected sets the series of a fault injected under the record id:
// its labels name the experiment and the fault, never the run, so every
// run of an experiment uses the same series.
func (m *metrics) faultInjected(id, experiment, service string, f Fault) {
	lv := [5]string{experiment, service, f.Name, f.Type, f.Driver}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.active[id]; ok {
		return
	}
	m.active[id] = lv
	m.injected[lv]++
	m.faultActive.WithLabelValues(lv[:]...).Set(1)
}

// faultReverted removes the series of the fault of record id once no other
// fault of this replica holds it.
func (m *metrics) faultReverted(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	lv, ok := m.active[id]
	if !ok {
		return
	}
	delete(m.active, id)
	if m.injected[lv]--; m.injected[lv] > 0 {
		return
	}
	delete(m.injected, lv)
	m.faultActive.DeleteLabelValues(lv[:]...)
}

// newMetrics registers the chaos metrics with reg; the resilience scores are
// read from db at scrape time.
func newMetrics(reg prometheus.Registerer, db *store.DB) *metrics {
	m := &metrics{
		experiments: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sre_chaos_experiments_total",
			Help: "Chaos experiment runs by result (succeeded, failed, aborted, refused)."}, []string{"result"}),
		faultActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sre_chaos_fault_active",
			Help: "1 while a chaos fault is injected."}, []string{"experiment", "service", "fault", "type", "driver"}),
		active:   map[string][5]string{},
		injected: map[[5]string]int{},
	}
	for _, r := range []string{StatusSucceeded, StatusFailed, StatusAborted, StatusRefused} {
		m.experiments.WithLabelValues(r)
	}
	reg.MustRegister(m.experiments, m.faultActive, &scoreCollector{db: db, desc: prometheus.NewDesc("sre_chaos_resilience_score",
		"Resilience score (0-100) of the last scored run of each experiment, whichever replica ran it.",
		[]string{"experiment", "service"}, nil)})
	return m
}

// scoreCollector exports the score of the last scored run of each
// experiment and service from the store at scrape time: the same on every
// replica, and after a restart. A gauge set by the replica that ran it left
// each replica with its own last run, and max across replicas showed an
// older, better score than the last run's.
type scoreCollector struct {
	db   *store.DB
	desc *prometheus.Desc
}

func (c *scoreCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *scoreCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	scores, err := journal{c.db}.lastScores(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, sc := range scores {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, sc.score, sc.experiment, sc.service)
	}
}
