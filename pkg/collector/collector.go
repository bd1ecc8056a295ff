// Package collector exports aggregate incident statistics of the sred store
// to Prometheus: open incidents, incidents created, time to detect,
// acknowledge, resolve and recover as histograms, MTBF per service,
// post-mortem completion and automation coverage.
//
// A scrape never scans the incidents table. The collector keeps aggregate
// rows (collector_* tables) that a rollup updates from the incidents changed
// since its last pass, so the cost of a scrape depends on the number of
// services and severities and on recent activity, not on the number of
// stored incidents. Every replica reads the same tables, so every replica
// exports the same values: aggregate with max by (...) before sum across
// instances.
package collector

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
)

// Metric names exported by the collector.
const (
	MetricIncidentsOpen        = "sre_incidents_open"
	MetricIncidentsStored      = "sre_incidents_stored_total"
	MetricDetection            = "sre_incident_detection_seconds"
	MetricTimeToAcknowledge    = "sre_incident_time_to_acknowledge_seconds"
	MetricTimeToResolve        = "sre_incident_time_to_resolve_seconds"
	MetricTimeToRecover        = "sre_incident_time_to_recover_seconds"
	MetricMTBF                 = "sre_incident_mtbf_seconds"
	MetricLastDetected         = "sre_incident_last_detected_timestamp_seconds"
	MetricPostmortemsCompleted = "sre_incident_postmortems_completed_total"
	MetricPostmortemRatio      = "sre_incident_postmortem_completion_ratio"
	MetricAutomated            = "sre_incidents_automated_total"
	MetricAutomationCoverage   = "sre_automation_coverage_ratio"
	MetricToil                 = "sre_toil_ratio"
	MetricAutomationRun        = "sre_automation_run_ratio"
	MetricScrapeDuration       = "sre_collector_scrape_duration_seconds"
	MetricScrapeSuccess        = "sre_collector_scrape_success"
	MetricQueryDuration        = "sre_collector_query_duration_seconds"
)

// DefaultBuckets are the upper bounds (seconds) of the duration histograms:
// from 10s to 7d, with the targets (5m detection, 10m response,
// 15m resolution) as bounds.
var DefaultBuckets = []float64{10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200, 604800}

// Automation reports automation coverage and toil, e.g. from the runbook
// engine's records. Ratios are in [0, 1]; ok is false when there is nothing
// to report yet (no incidents), in which case no sample is exported. A toil
// of NaN (no incident resolved yet: 0/0) exports coverage without toil.
type Automation interface {
	AutomationRatios(ctx context.Context) (coverage, toil float64, ok bool, err error)
}

// AutomationRuns is an Automation source that also knows the share of
// incidents where a runbook ran (mitigating or not); with one, the collector
// exports sre_automation_run_ratio too, from the same single read.
type AutomationRuns interface {
	Automation
	AutomationRunRatios(ctx context.Context) (coverage, run, toil float64, ok bool, err error)
}

// Options configure a Collector.
type Options struct {
	// Buckets of the duration histograms in seconds (DefaultBuckets if nil).
	Buckets []float64
	// Lag is how far back each rollup pass re-reads updates, to see
	// transactions that committed after a later one (default 5m).
	Lag time.Duration
	// Batch is the number of incidents read per rollup page (default 2000).
	Batch int
	// Timeout bounds one scrape's store access (default 10s).
	Timeout time.Duration
	// Automation, when set, supplies automation coverage and toil; when
	// nil they are computed from the incidents (see docs/metrics.md).
	Automation Automation
	// AutomationMaxAge is how long ratios read from an AutomationVersioner
	// source are served while its version does not change (default 1m):
	// changes its version does not reflect, and incidents leaving its
	// window, show up within this time.
	AutomationMaxAge time.Duration
	// Services bounds the service label values (nil: DefaultMaxServices
	// services): it returns the configured services, which alone keep
	// their name when not empty, and the maximum number of services that
	// keep their name otherwise (the ones with the most incidents). Every
	// other service counts under OtherService. Called on every scrape, so
	// a reloaded configuration applies at once.
	Services func() (named []string, max int)
	// RollupInterval is the time between two rounds of Run (default
	// DefaultRollupInterval).
	RollupInterval time.Duration
	// Clock times Run's rounds, the age of cached automation ratios and
	// the rollup's look-back (Lag) (the wall clock when nil): with a clock.Manual, a round runs when the
	// clock is moved past RollupInterval after the previous one.
	Clock clock.Timer
}

// DefaultRollupInterval is how often Run folds changed incidents into the
// aggregate tables by default. Scrapes do it too: the background rounds
// only keep scrapes short after bursts of changes.
const DefaultRollupInterval = 15 * time.Second

// OtherService is the service label value that stands for every service
// beyond Options.Services.
const OtherService = "other"

// DefaultMaxServices is the number of services that keep their name when
// Options.Services is nil.
const DefaultMaxServices = 100

// serviceNamer maps stored service names to exported label values.
type serviceNamer func(string) string

// namer returns the label value of each service, given the incidents count
// of every service (from collector_services).
func (c *Collector) namer(counts map[string]int64) serviceNamer {
	named, max := []string(nil), DefaultMaxServices
	if c.opts.Services != nil {
		named, max = c.opts.Services()
	}
	keep := map[string]bool{}
	if len(named) > 0 {
		for _, s := range named {
			keep[s] = true
		}
	} else {
		if len(counts) <= max {
			return func(s string) string { return s }
		}
		all := make([]string, 0, len(counts))
		for s := range counts {
			all = append(all, s)
		}
		sort.Slice(all, func(i, j int) bool {
			if counts[all[i]] != counts[all[j]] {
				return counts[all[i]] > counts[all[j]]
			}
			return all[i] < all[j]
		})
		for _, s := range all[:max] {
			keep[s] = true
		}
	}
	return func(s string) string {
		if keep[s] {
			return s
		}
		return OtherService
	}
}

// serviceCounts reads the incidents count of every service.
func (c *Collector) serviceCounts(ctx context.Context) (map[string]int64, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT service, incidents FROM collector_services`)
	if err != nil {
		return nil, fmt.Errorf("read services: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var s string
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			return nil, fmt.Errorf("read services: %w", err)
		}
		out[s] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read services: %w", err)
	}
	return out, nil
}

// AutomationVersioner is an Automation source that can tell cheaply whether
// its ratios may have changed. The collector then reads the ratios (an
// expensive query over many incidents) only when the version changed or
// Options.AutomationMaxAge passed, in the background rollup (Run) and, if
// that has not caught up yet, in a scrape; other scrapes serve the ratios
// read last.
type AutomationVersioner interface {
	Automation
	AutomationVersion(ctx context.Context) (string, error)
}

// automationRatios is one read of the Automation source.
type automationRatios struct {
	coverage, run, toil float64
	hasRun, ok          bool
}

// automationCache holds the last read of an AutomationVersioner source.
type automationCache struct {
	mu      sync.Mutex // held during a read, so concurrent callers wait for it
	filled  bool
	version string
	at      time.Time
	ratios  automationRatios
}

// Collector is a prometheus.Collector over the sred store.
type Collector struct {
	db      *store.DB
	logger  *slog.Logger
	opts    Options
	rollup  *rollup
	buckets []float64

	open, stored, mtbf, lastDetected, postmortems, pmRatio, automated *prometheus.Desc
	coverage, toil, duration, success                                 *prometheus.Desc
	automationRun                                                     *prometheus.Desc
	histograms                                                        map[string]*prometheus.Desc
	// queries times each part's store access, in scrapes and in the
	// background rollup.
	queries *prometheus.HistogramVec
	auto    automationCache
}

// New returns a collector reading db, which must have incident.Migrations
// and Migrations applied.
func New(db *store.DB, opts Options, logger *slog.Logger) (*Collector, error) {
	if opts.Buckets == nil {
		opts.Buckets = DefaultBuckets
	}
	if !sort.Float64sAreSorted(opts.Buckets) || len(opts.Buckets) == 0 || opts.Buckets[0] <= 0 {
		return nil, fmt.Errorf("collector buckets must be positive and ascending, got %v", opts.Buckets)
	}
	if opts.Lag == 0 {
		opts.Lag = 5 * time.Minute
	}
	if opts.Lag < 0 {
		return nil, fmt.Errorf("collector lag must not be negative, got %s", opts.Lag)
	}
	if opts.Batch == 0 {
		opts.Batch = 2000
	}
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.AutomationMaxAge == 0 {
		opts.AutomationMaxAge = time.Minute
	}
	if opts.AutomationMaxAge < 0 {
		return nil, fmt.Errorf("collector automation max age must not be negative, got %s", opts.AutomationMaxAge)
	}
	if opts.RollupInterval == 0 {
		opts.RollupInterval = DefaultRollupInterval
	}
	if opts.RollupInterval < 0 {
		return nil, fmt.Errorf("collector rollup interval must not be negative, got %s", opts.RollupInterval)
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	ss := []string{"service", "severity"}
	c := &Collector{
		db:      db,
		logger:  logger,
		opts:    opts,
		buckets: opts.Buckets,
		rollup:  &rollup{db: db, lag: opts.Lag, batch: opts.Batch, buckets: opts.Buckets, now: opts.Clock.Now},
		open: prometheus.NewDesc(MetricIncidentsOpen,
			"Incidents open now (triggered, acknowledged or investigating), by their highest severity.", ss, nil),
		stored: prometheus.NewDesc(MetricIncidentsStored,
			"Incidents ever created, counted from the store.", ss, nil),
		mtbf: prometheus.NewDesc(MetricMTBF,
			"Mean time between failures: (last detection - first detection) / (incidents - 1); services with two incidents or more.", []string{"service"}, nil),
		lastDetected: prometheus.NewDesc(MetricLastDetected,
			"Unix time the last incident of the service was detected.", []string{"service"}, nil),
		postmortems: prometheus.NewDesc(MetricPostmortemsCompleted,
			"Incidents whose post-mortem was completed.", ss, nil),
		pmRatio: prometheus.NewDesc(MetricPostmortemRatio,
			"For CRITICAL and HIGH (SEV1/2, by the incident's highest severity): completed post-mortems / resolved incidents.", []string{"severity"}, nil),
		automated: prometheus.NewDesc(MetricAutomated,
			"Incidents mitigated by runbook automation (mitigated_by = automation).", ss, nil),
		coverage: prometheus.NewDesc(MetricAutomationCoverage,
			"Share of incidents mitigated by automation.", nil, nil),
		automationRun: prometheus.NewDesc(MetricAutomationRun,
			"Share of incidents where a runbook ran (dry-runs excluded), whether or not it mitigated them.", nil, nil),
		toil: prometheus.NewDesc(MetricToil,
			"Share of resolved incidents resolved by hand (no automation mitigated them).", nil, nil),
		duration: prometheus.NewDesc(MetricScrapeDuration,
			"Time each part of the store collector (rollup, open, aggregates, automation) took in this scrape.", []string{"collector"}, nil),
		success: prometheus.NewDesc(MetricScrapeSuccess,
			"1 if a part of the store collector succeeded in this scrape, 0 if it failed (it then exports nothing, never zeros).", []string{"collector"}, nil),
		queries: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricQueryDuration,
			Help: "Time the store queries of each part took (rollup, open, aggregates, automation), in scrapes and in the background rollup (rollup): the store latency the exporter sees.",
			// 0.5ms to 8s.
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8),
		}, []string{"collector"}),
		histograms: map[string]*prometheus.Desc{
			aggDetection: prometheus.NewDesc(MetricDetection,
				"Detection time: from the first alert's startsAt to the incident's creation.", ss, nil),
			aggAcknowledge: prometheus.NewDesc(MetricTimeToAcknowledge,
				"Time to acknowledge (MTTA = _sum / _count): creation to first acknowledgement.", ss, nil),
			aggResolve: prometheus.NewDesc(MetricTimeToResolve,
				"Time to resolve (MTTR): creation to first resolution.", ss, nil),
			aggRecover: prometheus.NewDesc(MetricTimeToRecover,
				"Time to recover: from the first alert's start until every alert of the incident resolved (the outage as users saw it).", ss, nil),
		},
	}
	return c, nil
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.open, c.stored, c.mtbf, c.lastDetected, c.postmortems, c.pmRatio,
		c.automated, c.coverage, c.automationRun, c.toil, c.duration, c.success} {
		ch <- d
	}
	for _, a := range histogramAggs {
		ch <- c.histograms[a]
	}
	c.queries.Describe(ch)
}

// Collect implements prometheus.Collector. Each part reports its own
// success and duration; a failing part exports nothing else, so a broken
// store never shows as zero incidents.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	defer cancel()
	c.part(ctx, ch, "rollup", func(ctx context.Context) error { return c.rollup.run(ctx) })
	c.part(ctx, ch, "open", func(ctx context.Context) error { return c.collectOpen(ctx, ch) })
	var tot map[totalKey]total
	c.part(ctx, ch, "aggregates", func(ctx context.Context) error {
		var err error
		tot, err = c.collectAggregates(ctx, ch)
		return err
	})
	c.part(ctx, ch, "automation", func(ctx context.Context) error { return c.collectAutomation(ctx, ch, tot) })
	c.queries.Collect(ch)
}

// Rollup brings the aggregate tables up to date; Collect does it too, so
// calling it from a background loop (Run) only keeps scrapes short after
// bursts of changes.
func (c *Collector) Rollup(ctx context.Context) error {
	start := time.Now()
	err := c.rollup.run(ctx)
	c.queries.WithLabelValues("rollup").Observe(time.Since(start).Seconds())
	return err
}

// Run calls Rollup at once and then Options.RollupInterval (on
// Options.Clock) after the end of each round, until ctx is done, logging
// failures; with an AutomationVersioner source it also re-reads the
// automation ratios when they may have changed, so that scrapes find them
// current.
func (c *Collector) Run(ctx context.Context) error {
	_, versioned := c.opts.Automation.(AutomationVersioner)
	for {
		if err := c.Rollup(ctx); err != nil && ctx.Err() == nil {
			c.logger.Warn("roll up incident statistics", "err", err)
		}
		if versioned {
			start := time.Now()
			_, err := c.automationRatios(ctx)
			c.queries.WithLabelValues("automation").Observe(time.Since(start).Seconds())
			if err != nil && ctx.Err() == nil {
				c.logger.Warn("read automation ratios", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.opts.Clock.After(c.opts.RollupInterval):
		}
	}
}

func (c *Collector) part(ctx context.Context, ch chan<- prometheus.Metric, name string, fn func(context.Context) error) {
	start := time.Now()
	err := fn(ctx)
	took := time.Since(start).Seconds()
	c.queries.WithLabelValues(name).Observe(took)
	ch <- prometheus.MustNewConstMetric(c.duration, prometheus.GaugeValue, took, name)
	ok := 1.0
	if err != nil {
		ok = 0
		c.logger.Error("collect incident statistics", "collector", name, "err", err)
	}
	ch <- prometheus.MustNewConstMetric(c.success, prometheus.GaugeValue, ok, name)
}

// peakSeverity is the severity the metrics count an incident under: its
// highest, as incident.PeakSeverityExpr reads it.
var peakSeverity = incident.PeakSeverityExpr("")

// collectOpen counts open incidents, by their highest severity; the status
// index keeps it proportional to the number of open incidents.
func (c *Collector) collectOpen(ctx context.Context, ch chan<- prometheus.Metric) error {
	rows, err := c.db.QueryContext(ctx, `SELECT service, `+peakSeverity+`, COUNT(*) FROM incidents
		WHERE status IN ($1, $2, $3) GROUP BY service, `+peakSeverity,
		string(incident.StatusTriggered), string(incident.StatusAcknowledged), string(incident.StatusInvestigating))
	if err != nil {
		return fmt.Errorf("count open incidents: %w", err)
	}
	defer rows.Close()
	open := map[seriesKey]int64{}
	for rows.Next() {
		var k seriesKey
		var n int64
		if err := rows.Scan(&k.service, &k.severity, &n); err != nil {
			return fmt.Errorf("count open incidents: %w", err)
		}
		open[k] += n
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("count open incidents: %w", err)
	}
	rows.Close()
	counts, err := c.serviceCounts(ctx)
	if err != nil {
		return err
	}
	name := c.namer(counts)
	merged := map[seriesKey]int64{}
	for k, n := range open {
		merged[seriesKey{name(k.service), k.severity}] += n
	}
	withOpen := map[string]bool{}
	for k, n := range merged {
		ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(n), k.service, k.severity)
		withOpen[k.severity] = true
	}
	// A severity without open incidents is 0 (without a service), not
	// absent: sum by (severity) and alerts on it are defined at once.
	for _, sev := range incident.Severities {
		if !withOpen[string(sev)] {
			ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, 0, "", string(sev))
		}
	}
	return nil
}

type seriesKey struct{ service, severity string }

// collectAggregates exports the rollup tables. It returns the totals for
// the automation ratios.
func (c *Collector) collectAggregates(ctx context.Context, ch chan<- prometheus.Metric) (map[totalKey]total, error) {
	tot := map[totalKey]total{}
	rows, err := c.db.QueryContext(ctx, `SELECT metric, service, severity, n, sum_ms, created_ms FROM collector_totals`)
	if err != nil {
		return nil, fmt.Errorf("read totals: %w", err)
	}
	for rows.Next() {
		var k totalKey
		var t total
		if err := rows.Scan(&k.agg, &k.service, &k.severity, &t.n, &t.sumMS, &t.createdMS); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read totals: %w", err)
		}
		tot[k] = t
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read totals: %w", err)
	}

	// Bucket rows, non-cumulative, keyed by aggregate and series.
	type bucketRow struct {
		le int64
		n  int64
	}
	buckets := map[string]map[seriesKey][]bucketRow{}
	rows, err = c.db.QueryContext(ctx, `SELECT metric, service, severity, le_ms, n FROM collector_histograms`)
	if err != nil {
		return nil, fmt.Errorf("read histograms: %w", err)
	}
	for rows.Next() {
		var agg string
		var k seriesKey
		var b bucketRow
		if err := rows.Scan(&agg, &k.service, &k.severity, &b.le, &b.n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read histograms: %w", err)
		}
		if buckets[agg] == nil {
			buckets[agg] = map[seriesKey][]bucketRow{}
		}
		buckets[agg][k] = append(buckets[agg][k], b)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read histograms: %w", err)
	}

	type svc struct {
		name           string
		n, first, last int64
	}
	var services []svc
	rows, err = c.db.QueryContext(ctx, `SELECT service, incidents, first_detected, last_detected FROM collector_services`)
	if err != nil {
		return nil, fmt.Errorf("read services: %w", err)
	}
	for rows.Next() {
		var s svc
		if err := rows.Scan(&s.name, &s.n, &s.first, &s.last); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read services: %w", err)
		}
		services = append(services, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read services: %w", err)
	}

	// Services beyond Options.Services count under OtherService.
	counts := make(map[string]int64, len(services))
	for _, sv := range services {
		counts[sv.name] = sv.n
	}
	name := c.namer(counts)
	mergedTot := make(map[totalKey]total, len(tot))
	for k, t := range tot {
		k.service = name(k.service)
		if m, ok := mergedTot[k]; ok {
			t.n += m.n
			t.sumMS += m.sumMS
			if m.createdMS >= 0 && (t.createdMS < 0 || m.createdMS < t.createdMS) {
				t.createdMS = m.createdMS
			}
		}
		mergedTot[k] = t
	}
	tot = mergedTot
	for agg, series := range buckets {
		merged := make(map[seriesKey][]bucketRow, len(series))
		for k, rs := range series {
			k.service = name(k.service)
			merged[k] = append(merged[k], rs...)
		}
		buckets[agg] = merged
	}
	byName := map[string]int{}
	var mergedServices []svc
	for _, sv := range services {
		sv.name = name(sv.name)
		i, ok := byName[sv.name]
		if !ok {
			byName[sv.name] = len(mergedServices)
			mergedServices = append(mergedServices, sv)
			continue
		}
		m := &mergedServices[i]
		m.n += sv.n
		m.first, m.last = min(m.first, sv.first), max(m.last, sv.last)
	}
	services = mergedServices

	// Everything read: export. seen[desc] holds the severities exported for
	// a family by service and severity; zeros() fills in the others.
	seen := map[*prometheus.Desc]map[string]bool{}
	mark := func(d *prometheus.Desc, severity string) {
		if seen[d] == nil {
			seen[d] = map[string]bool{}
		}
		seen[d][severity] = true
	}
	for _, agg := range histogramAggs {
		for k, rs := range buckets[agg] {
			mark(c.histograms[agg], k.severity)
			t := tot[totalKey{agg, k.service, k.severity}]
			cum := make(map[float64]uint64, len(c.buckets))
			for _, b := range c.buckets {
				le := int64(b * 1000)
				var n uint64
				for _, r := range rs {
					if r.le != -1 && r.le <= le {
						n += uint64(r.n)
					}
				}
				cum[b] = n
			}
			if ct, ok := t.created(); ok {
				ch <- prometheus.MustNewConstHistogramWithCreatedTimestamp(c.histograms[agg], uint64(t.n), float64(t.sumMS)/1000, cum, ct, k.service, k.severity)
			} else {
				ch <- prometheus.MustNewConstHistogram(c.histograms[agg], uint64(t.n), float64(t.sumMS)/1000, cum, k.service, k.severity)
			}
		}
	}
	pmDone := map[string]int64{}
	resolved := map[string]int64{}
	for k, t := range tot {
		switch k.agg {
		case aggCreated:
			ch <- t.counter(c.stored, k)
			mark(c.stored, k.severity)
		case aggPostmortem:
			ch <- t.counter(c.postmortems, k)
			mark(c.postmortems, k.severity)
			pmDone[k.severity] += t.n
		case aggAutomated:
			ch <- t.counter(c.automated, k)
			mark(c.automated, k.severity)
		case aggResolve:
			resolved[k.severity] += t.n
		}
	}
	c.zeros(ch, seen)
	for _, sev := range []incident.Severity{incident.SeverityCritical, incident.SeverityHigh} {
		if n := resolved[string(sev)]; n > 0 {
			ch <- prometheus.MustNewConstMetric(c.pmRatio, prometheus.GaugeValue,
				min(float64(pmDone[string(sev)])/float64(n), 1), string(sev))
		}
	}
	for _, s := range services {
		ch <- prometheus.MustNewConstMetric(c.lastDetected, prometheus.GaugeValue, float64(s.last)/1000, s.name)
		if s.n >= 2 {
			ch <- prometheus.MustNewConstMetric(c.mtbf, prometheus.GaugeValue,
				float64(s.last-s.first)/1000/float64(s.n-1), s.name)
		}
	}
	return tot, nil
}

// zeros exports, for every severity that a counter or histogram by service
// and severity has no series of yet, a zero series without a service: on a
// fresh store every family a dashboard or alert reads exists from the start
// (as Alertmanager's counters do), so panels show 0 instead of "No data"
// and sums by severity are defined. A severity's zero series gives way to
// its real ones once it has incidents.
func (c *Collector) zeros(ch chan<- prometheus.Metric, seen map[*prometheus.Desc]map[string]bool) {
	cum := make(map[float64]uint64, len(c.buckets))
	for _, b := range c.buckets {
		cum[b] = 0
	}
	for _, sev := range incident.Severities {
		for _, agg := range histogramAggs {
			if d := c.histograms[agg]; !seen[d][string(sev)] {
				ch <- prometheus.MustNewConstHistogram(d, 0, 0, cum, "", string(sev))
			}
		}
		for _, d := range []*prometheus.Desc{c.stored, c.postmortems, c.automated} {
			if !seen[d][string(sev)] {
				ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, 0, "", string(sev))
			}
		}
	}
}

// created returns the created timestamp of the series of t, if it has one.
func (t total) created() (time.Time, bool) {
	if t.createdMS < 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(t.createdMS), true
}

// counter exports t as a counter with its created timestamp, so that
// Prometheus (with created-timestamp-zero-ingestion) sees a new series start
// from 0 and increase() counts its first event.
func (t total) counter(desc *prometheus.Desc, k totalKey) prometheus.Metric {
	if ct, ok := t.created(); ok {
		return prometheus.MustNewConstMetricWithCreatedTimestamp(desc, prometheus.CounterValue, float64(t.n), ct, k.service, k.severity)
	}
	return prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(t.n), k.service, k.severity)
}

// automationRatios returns the ratios of the Automation source: read now,
// or, for an AutomationVersioner, the last read while the version is the
// same and the read is younger than AutomationMaxAge.
func (c *Collector) automationRatios(ctx context.Context) (automationRatios, error) {
	v, versioned := c.opts.Automation.(AutomationVersioner)
	if !versioned {
		return c.readAutomation(ctx)
	}
	c.auto.mu.Lock()
	defer c.auto.mu.Unlock()
	version, err := v.AutomationVersion(ctx)
	if err != nil {
		return automationRatios{}, fmt.Errorf("read automation version: %w", err)
	}
	now := c.opts.Clock.Now()
	if c.auto.filled && c.auto.version == version && now.Sub(c.auto.at) < c.opts.AutomationMaxAge {
		return c.auto.ratios, nil
	}
	r, err := c.readAutomation(ctx)
	if err != nil {
		c.auto.filled = false
		return r, err
	}
	c.auto.filled, c.auto.version, c.auto.at, c.auto.ratios = true, version, now, r
	return r, nil
}

// readAutomation reads the ratios from the Automation source.
func (c *Collector) readAutomation(ctx context.Context) (automationRatios, error) {
	var r automationRatios
	var err error
	if ar, isRuns := c.opts.Automation.(AutomationRuns); isRuns {
		r.hasRun = true
		r.coverage, r.run, r.toil, r.ok, err = ar.AutomationRunRatios(ctx)
	} else {
		r.coverage, r.toil, r.ok, err = c.opts.Automation.AutomationRatios(ctx)
	}
	if err != nil {
		return automationRatios{}, fmt.Errorf("read automation ratios: %w", err)
	}
	return r, nil
}

// collectAutomation exports coverage and toil, from the Automation source
// when there is one, else from the incidents: coverage is the share of
// incidents mitigated by automation, toil the share that needed a person.
func (c *Collector) collectAutomation(ctx context.Context, ch chan<- prometheus.Metric, tot map[totalKey]total) error {
	var coverage, toil float64
	if c.opts.Automation != nil {
		r, err := c.automationRatios(ctx)
		if err != nil {
			return err
		}
		if !r.ok {
			return nil
		}
		coverage, toil = r.coverage, r.toil
		if r.hasRun {
			ch <- prometheus.MustNewConstMetric(c.automationRun, prometheus.GaugeValue, r.run)
		}
	} else {
		if tot == nil {
			return fmt.Errorf("automation ratios need the aggregates, which failed")
		}
		var automated, created int64
		for k, t := range tot {
			switch k.agg {
			case aggAutomated:
				automated += t.n
			case aggCreated:
				created += t.n
			}
		}
		if created == 0 {
			return nil
		}
		coverage = min(float64(automated)/float64(created), 1)
		toil = 1 - coverage
	}
	ch <- prometheus.MustNewConstMetric(c.coverage, prometheus.GaugeValue, coverage)
	if !math.IsNaN(toil) {
		ch <- prometheus.MustNewConstMetric(c.toil, prometheus.GaugeValue, toil)
	}
	return nil
}
