package noise

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/store"
)

// Collector exports the noise report of the last Window (default 7 days)
// on /metrics, per alert rule, service and SLO (label slo, empty for the
// alerts of no SLO), for the MaxRows noisiest. The
// report is computed at most once per CacheFor (default 5m), not on every
// scrape.
type Collector struct {
	DB       *store.DB
	Clock    clock.Clock // clock.Real when nil
	Window   time.Duration
	CacheFor time.Duration
	MaxRows  int
	Logger   *slog.Logger

	mu     sync.Mutex
	at     time.Time
	cached *Report
}

var (
	labelNames = []string{"alertname", "service", "slo"}
	descPages  = prometheus.NewDesc("sre_noise_pages", "Pages (incidents opened by Alertmanager groups) in the last 7 days.", labelNames, nil)
	descSelf   = prometheus.NewDesc("sre_noise_self_resolved_pages", "Pages of the last 7 days resolved automatically within 10 minutes.", labelNames, nil)
	descNoAct  = prometheus.NewDesc("sre_noise_acked_without_action_pages", "Pages of the last 7 days acknowledged, then resolved automatically with no note, runbook, status update, assignment or action item.", labelNames, nil)
	descNight  = prometheus.NewDesc("sre_noise_night_pages", "Pages of the last 7 days opened between 22:00 and 06:00 UTC.", labelNames, nil)
	descFlap   = prometheus.NewDesc("sre_noise_flapping_incidents", "Incidents of the last 7 days flagged flapping.", labelNames, nil)
	descAck    = prometheus.NewDesc("sre_noise_mean_time_to_ack_seconds", "Mean time from opening to acknowledgement of the acknowledged pages of the last 7 days.", labelNames, nil)
)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPages, descSelf, descNoAct, descNight, descFlap, descAck} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	r := c.report()
	if r == nil {
		return
	}
	for _, row := range r.Rows {
		for _, m := range []struct {
			d *prometheus.Desc
			v float64
		}{
			{descPages, float64(row.Pages)}, {descSelf, float64(row.AutoResolvedShort)}, {descNoAct, float64(row.AckedWithoutAction)},
			{descNight, float64(row.NightPages)}, {descFlap, float64(row.Flapping)},
		} {
			ch <- prometheus.MustNewConstMetric(m.d, prometheus.GaugeValue, m.v, row.Alertname, row.Service, row.SLO)
		}
		if row.Acked > 0 {
			ch <- prometheus.MustNewConstMetric(descAck, prometheus.GaugeValue, row.MeanTimeToAckSeconds, row.Alertname, row.Service, row.SLO)
		}
	}
}

func (c *Collector) report() *Report {
	now := clock.OrReal(c.Clock).Now()
	cacheFor := c.CacheFor
	if cacheFor <= 0 {
		cacheFor = 5 * time.Minute
	}
	window := c.Window
	if window <= 0 {
		window = 7 * 24 * time.Hour
	}
	max := c.MaxRows
	if max <= 0 {
		max = 100
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cached != nil && now.Sub(c.at) < cacheFor && !now.Before(c.at) {
		return c.cached
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := Build(ctx, c.DB, Options{Since: now.Add(-window), Until: now.Add(time.Millisecond), Limit: max})
	if err != nil {
		if c.Logger != nil {
			c.Logger.Warn("Compute the noise report for /metrics", "err", err)
		}
		return c.cached
	}
	c.cached, c.at = r, now
	return r
}
