package change

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names (docs/metrics.md).
const (
	MetricDeployments          = "sre_deployments_total"
	MetricRollbacks            = "sre_rollbacks_total"
	MetricFailures             = "sre_change_failures_total"
	MetricFailureRatio         = "sre_change_failure_ratio"
	MetricFrequency            = "sre_deployment_frequency_per_day"
	MetricLeadTime             = "sre_change_lead_time_seconds"
	MetricRestoreTime          = "sre_change_restore_time_seconds"
	MetricInProgress           = "sre_changes_in_progress"
	MetricCollectorSuccess     = "sre_change_metrics_success"
	metricsQueryTimeout        = 10 * time.Second
	secondsPerDay          int = 86400
)

const (
	// MaxMetricServices is how many services the metrics name: the
	// services with the most changes; the others count as OtherService.
	// Any responder may record a change of any service, so the series of
	// /metrics are bounded whatever it records.
	MaxMetricServices = 100
	// OtherService is the service label of the changes of the services
	// beyond MaxMetricServices.
	OtherService = "other"
)

// Buckets of the DORA histograms, in seconds.
var (
	LeadTimeBuckets    = []float64{300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 604800, 2592000}
	RestoreTimeBuckets = []float64{60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 604800}
)

var (
	descDeployments = prometheus.NewDesc(MetricDeployments,
		"Changes finished, by kind (deploy, config, infra) and result: succeeded, failed, rolled_back, refused (the deploy gate denied it; it did not ship).",
		[]string{"service", "kind", "result"}, nil)
	descRollbacks = prometheus.NewDesc(MetricRollbacks, "Changes rolled back: the rolled_back result, and the changes that failed and were rolled back later (those stay under result=\"failed\" of sre_deployments_total, the outcome they finished with, so that no counter goes down).", []string{"service"}, nil)
	descFailures  = prometheus.NewDesc(MetricFailures,
		"Changes that failed: failed, rolled back, or linked to an incident that opened within changes.incident_link_window after them.", []string{"service"}, nil)
	descRatio = prometheus.NewDesc(MetricFailureRatio,
		"Change failure rate: failed changes / changes that shipped, among those finished within changes.dora_window (7d by default); 0 without changes in the window.", []string{"service"}, nil)
	descFrequency = prometheus.NewDesc(MetricFrequency,
		"Deployment frequency: deployments (changes of kind deploy) that succeeded within changes.dora_window, per day.", []string{"service"}, nil)
	descLeadTime = prometheus.NewDesc(MetricLeadTime,
		"Lead time for changes: commit time to the change's success, for the changes recorded with a commit time.", []string{"service"}, nil)
	descRestore = prometheus.NewDesc(MetricRestoreTime,
		"Time to restore: incidents linked to a change, from the failure's start (the incident's first alert) to its resolution.", []string{"service"}, nil)
	descInProgress = prometheus.NewDesc(MetricInProgress, "Changes recorded as in progress (a rollout under way).", []string{"service"}, nil)
	descSuccess    = prometheus.NewDesc(MetricCollectorSuccess, "1 when the change metrics were read from the store at this scrape, 0 when that failed (the other change series are then absent).", nil, nil)
)

// collector exports the DORA measures from the store at each scrape, so
// that every replica exports the same values and a restart loses nothing.
type collector struct{ s *Service }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDeployments, descRollbacks, descFailures, descRatio, descFrequency, descLeadTime, descRestore, descInProgress, descSuccess} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), metricsQueryTimeout)
	defer cancel()
	ms, err := c.s.Metrics(ctx)
	if err != nil {
		c.s.logger.Warn("Read change metrics", "err", err)
		ch <- prometheus.MustNewConstMetric(descSuccess, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descSuccess, prometheus.GaugeValue, 1)
	for _, m := range foldServices(ms, MaxMetricServices) {
		// The created timestamp (the service's first change) lets
		// increase() see the first change of a new series.
		ct := m.Since
		for _, k := range Kinds {
			for _, o := range Outcomes {
				ch <- prometheus.MustNewConstMetricWithCreatedTimestamp(descDeployments, prometheus.CounterValue, float64(m.ByKind[k][o]), ct, m.Service, string(k), string(o))
			}
		}
		ch <- prometheus.MustNewConstMetricWithCreatedTimestamp(descRollbacks, prometheus.CounterValue, float64(m.Rollbacks), ct, m.Service)
		ch <- prometheus.MustNewConstMetricWithCreatedTimestamp(descFailures, prometheus.CounterValue, float64(m.Failures), ct, m.Service)
		ch <- prometheus.MustNewConstMetric(descRatio, prometheus.GaugeValue, m.FailureRatio, m.Service)
		ch <- prometheus.MustNewConstMetric(descFrequency, prometheus.GaugeValue, m.PerDay, m.Service)
		ch <- prometheus.MustNewConstMetric(descInProgress, prometheus.GaugeValue, float64(m.InProgress), m.Service)
		ch <- prometheus.MustNewConstHistogramWithCreatedTimestamp(descLeadTime, m.LeadTime.Count, m.LeadTime.Sum, m.LeadTime.Buckets, ct, m.Service)
		ch <- prometheus.MustNewConstHistogramWithCreatedTimestamp(descRestore, m.RestoreTime.Count, m.RestoreTime.Sum, m.RestoreTime.Buckets, ct, m.Service)
	}
}

// Histogram is a cumulative histogram read from the store.
type Histogram struct {
	Count   uint64             `json:"count"`
	Sum     float64            `json:"sum"`
	Buckets map[float64]uint64 `json:"-"`
}

// ServiceMetrics are the DORA measures of one service.
type ServiceMetrics struct {
	Service string `json:"service"`
	// Since is when the service's first change started (the counters'
	// created timestamp).
	Since time.Time `json:"since"`
	// Results counts the finished changes by the outcome they finished
	// with (all time): a change that failed and was rolled back later
	// stays counted as failed, so that no count goes down.
	Results map[Outcome]int `json:"results"`
	// ByKind is Results by kind of change (sre_deployments_total's kind
	// label): the deployment frequency counts the deploys alone.
	ByKind map[Kind]map[Outcome]int `json:"results_by_kind"`
	// Rollbacks counts the changes rolled back (all time): those that
	// finished rolled back and those that failed and were rolled back later.
	Rollbacks  int `json:"rollbacks"`
	InProgress int `json:"in_progress"`
	// Failures counts the failed changes (all time).
	Failures int `json:"failures"`
	// FailureRatio and PerDay are over changes.dora_window; PerDay counts
	// the deployments (kind deploy) that succeeded in it.
	FailureRatio float64   `json:"failure_ratio"`
	PerDay       float64   `json:"deployments_per_day"`
	LeadTime     Histogram `json:"lead_time_seconds"`
	RestoreTime  Histogram `json:"restore_time_seconds"`
	// shipped and failedWin are FailureRatio's denominator and numerator.
	shipped, failedWin int
}

// addKind counts n changes of kind k finished with o.
func (m *ServiceMetrics) addKind(k Kind, o Outcome, n int) {
	if m.ByKind[k] == nil {
		m.ByKind[k] = map[Outcome]int{}
	}
	m.ByKind[k][o] += n
}

// total is how many changes m counts.
func (m *ServiceMetrics) total() int {
	n := m.InProgress
	for _, v := range m.Results {
		n += v
	}
	return n
}

// foldServices returns ms with at most limit services: the limit with the
// most changes (by name when even), and the others summed as OtherService.
func foldServices(ms []ServiceMetrics, limit int) []ServiceMetrics {
	if len(ms) <= limit {
		return ms
	}
	ranked := slices.Clone(ms)
	slices.SortStableFunc(ranked, func(a, b ServiceMetrics) int {
		if c := cmp.Compare(b.total(), a.total()); c != 0 {
			return c
		}
		return strings.Compare(a.Service, b.Service)
	})
	keep := map[string]bool{}
	for _, m := range ranked[:limit] {
		keep[m.Service] = true
	}
	other := ServiceMetrics{Service: OtherService, Results: map[Outcome]int{}, ByKind: map[Kind]map[Outcome]int{},
		LeadTime: Histogram{Buckets: map[float64]uint64{}}, RestoreTime: Histogram{Buckets: map[float64]uint64{}}}
	out := make([]ServiceMetrics, 0, limit+1)
	for _, m := range ms {
		if keep[m.Service] && m.Service != OtherService {
			out = append(out, m)
			continue
		}
		if other.Since.IsZero() || (!m.Since.IsZero() && m.Since.Before(other.Since)) {
			other.Since = m.Since
		}
		for o, n := range m.Results {
			other.Results[o] += n
		}
		for k, r := range m.ByKind {
			if other.ByKind[k] == nil {
				other.ByKind[k] = map[Outcome]int{}
			}
			for o, n := range r {
				other.ByKind[k][o] += n
			}
		}
		other.InProgress += m.InProgress
		other.Rollbacks += m.Rollbacks
		other.Failures += m.Failures
		other.shipped += m.shipped
		other.failedWin += m.failedWin
		other.PerDay += m.PerDay
		for _, h := range []struct{ into, from *Histogram }{{&other.LeadTime, &m.LeadTime}, {&other.RestoreTime, &m.RestoreTime}} {
			h.into.Count += h.from.Count
			h.into.Sum += h.from.Sum
			for b, n := range h.from.Buckets {
				h.into.Buckets[b] += n
			}
		}
	}
	if other.shipped > 0 {
		other.FailureRatio = float64(other.failedWin) / float64(other.shipped)
	}
	return append(out, other)
}

// Metrics reads the DORA measures of every service that has changes.
func (s *Service) Metrics(ctx context.Context) ([]ServiceMetrics, error) {
	cfg, _ := s.config()
	now := s.clock.Now()
	since := ms(now.Add(-time.Duration(cfg.DORAWindow)))
	by := map[string]*ServiceMetrics{}
	var order []string
	get := func(svc string) *ServiceMetrics {
		m := by[svc]
		if m == nil {
			m = &ServiceMetrics{Service: svc, Results: map[Outcome]int{}, ByKind: map[Kind]map[Outcome]int{},
				LeadTime: Histogram{Buckets: map[float64]uint64{}}, RestoreTime: Histogram{Buckets: map[float64]uint64{}}}
			for _, b := range LeadTimeBuckets {
				m.LeadTime.Buckets[b] = 0
			}
			for _, b := range RestoreTimeBuckets {
				m.RestoreTime.Buckets[b] = 0
			}
			by[svc] = m
			order = append(order, svc)
		}
		return m
	}

	// Results and failures, all time; shipped and failed within the
	// window, and the deployments (kind deploy) that succeeded in it: the
	// deployment frequency, as DORA defines it, counts deployments, not
	// configuration or infrastructure changes (those count among the
	// changes of the failure rate). A change that failed and was rolled
	// back later is one change: counted under failed, the outcome it
	// finished with, and once among the rollbacks.
	rows, err := s.db.QueryContext(ctx, `SELECT service, kind, result, MIN(started_at), COUNT(*), SUM(failed),
		SUM(CASE WHEN finished_at >= $1 THEN 1 ELSE 0 END), SUM(CASE WHEN finished_at >= $1 THEN failed ELSE 0 END),
		SUM(CASE WHEN finished_at >= $1 AND kind = $3 THEN 1 ELSE 0 END), SUM(later)
		FROM (SELECT service, kind, started_at, finished_at, failed,
			CASE WHEN rolled_back_at IS NULL THEN outcome ELSE $2 END AS result,
			CASE WHEN rolled_back_at IS NULL THEN 0 ELSE 1 END AS later FROM changes) t
		GROUP BY service, kind, result ORDER BY service, kind, result`, since, string(Failed), string(KindDeploy))
	if err != nil {
		return nil, fmt.Errorf("read change counts: %w", err)
	}
	type window struct{ shipped, failed, deployed int }
	win := map[string]*window{}
	for rows.Next() {
		var (
			svc, kind, outcome          string
			first                       int64
			n, failed, inWin, failedWin int
			deployWin, later            int
		)
		if err := rows.Scan(&svc, &kind, &outcome, &first, &n, &failed, &inWin, &failedWin, &deployWin, &later); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read change counts: %w", err)
		}
		m := get(svc)
		if t := fromMS(first); m.Since.IsZero() || t.Before(m.Since) {
			m.Since = t
		}
		w := win[svc]
		if w == nil {
			w = &window{}
			win[svc] = w
		}
		m.Rollbacks += later
		if Outcome(outcome) == RolledBack {
			m.Rollbacks += n
		}
		switch o := Outcome(outcome); o {
		case InProgress:
			m.InProgress += n
		case Refused:
			m.Results[o] += n
			m.addKind(Kind(kind), o, n)
		default:
			m.Results[o] += n
			m.addKind(Kind(kind), o, n)
			m.Failures += failed
			w.shipped += inWin
			w.failed += failedWin
			if o == Succeeded {
				w.deployed += deployWin
			}
		}
		if Outcome(outcome) == InProgress {
			// An in-progress change linked to an incident already failed.
			m.Failures += failed
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read change counts: %w", err)
	}
	days := time.Duration(cfg.DORAWindow).Hours() / 24
	for svc, w := range win {
		m := by[svc]
		m.shipped, m.failedWin = w.shipped, w.failed
		if w.shipped > 0 {
			m.FailureRatio = float64(w.failed) / float64(w.shipped)
		}
		m.PerDay = float64(w.deployed) / days
	}

	// Lead time: commit to success.
	if err := s.histogram(ctx, `SELECT service, %s FROM (SELECT service, (finished_at - commit_at) / 1000.0 AS v FROM changes
		WHERE outcome = 'succeeded' AND commit_at IS NOT NULL AND finished_at IS NOT NULL) t GROUP BY service`,
		LeadTimeBuckets, func(svc string) *Histogram { return &get(svc).LeadTime }); err != nil {
		return nil, fmt.Errorf("read lead times: %w", err)
	}
	// Time to restore: incidents linked to changes, opened to resolved.
	if err := s.histogram(ctx, `SELECT service, %s FROM (SELECT service, (resolved_at - opened_at) / 1000.0 AS v FROM change_incidents
		WHERE resolved_at IS NOT NULL) t GROUP BY service`,
		RestoreTimeBuckets, func(svc string) *Histogram { return &get(svc).RestoreTime }); err != nil {
		return nil, fmt.Errorf("read restore times: %w", err)
	}
	out := make([]ServiceMetrics, 0, len(order))
	for _, svc := range order {
		out = append(out, *by[svc])
	}
	return out, nil
}

// histogram reads one cumulative histogram per service; query has a %s
// where the aggregates of v go.
func (s *Service) histogram(ctx context.Context, query string, buckets []float64, into func(string) *Histogram) error {
	aggs := []string{"COUNT(*)", "COALESCE(SUM(v), 0)"}
	for _, b := range buckets {
		aggs = append(aggs, fmt.Sprintf("SUM(CASE WHEN v <= %g THEN 1 ELSE 0 END)", b))
	}
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf(query, strings.Join(aggs, ", ")))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			svc   string
			count int64
			sum   float64
		)
		counts := make([]int64, len(buckets))
		dest := []any{&svc, &count, &sum}
		for i := range counts {
			dest = append(dest, &counts[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		h := into(svc)
		h.Count, h.Sum = uint64(count), sum
		for i, b := range buckets {
			h.Buckets[b] = uint64(counts[i])
		}
	}
	return rows.Err()
}
