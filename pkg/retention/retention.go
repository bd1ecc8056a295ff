// Package retention deletes old data in small batches (compaction) so the
// store does not grow forever, without blocking ingestion: each batch is
// one short transaction. It exports sre_store_rows{table} and
// sre_store_deleted_rows_total{table}.
package retention

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/store"
)

// Config is the `retention` section of sred.yml.
type Config struct {
	// ResolvedIncidents deletes incidents resolved (or post-mortem done)
	// longer ago than this, with their alerts, timeline, links and action
	// items. 0 (the default) keeps them forever.
	ResolvedIncidents model.Duration `yaml:"resolved_incidents,omitempty"`
	// Interval between compaction runs (default 10m).
	Interval model.Duration `yaml:"interval,omitempty"`
	// BatchSize is the number of incidents deleted per transaction (default 100).
	BatchSize int `yaml:"batch_size,omitempty"`
}

// UnmarshalYAML implements yaml.Unmarshaler: defaults and validation.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = Config{Interval: model.Duration(10 * time.Minute), BatchSize: 100}
	type plain Config
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	if c.ResolvedIncidents < 0 {
		return errors.New("retention: resolved_incidents must not be negative")
	}
	if c.ResolvedIncidents > 0 && time.Duration(c.ResolvedIncidents) < time.Hour {
		return fmt.Errorf("retention: resolved_incidents must be 0 (keep) or at least 1h, got %s", c.ResolvedIncidents)
	}
	if c.Interval <= 0 {
		return errors.New("retention: interval must be positive")
	}
	if c.BatchSize <= 0 || c.BatchSize > 10000 {
		return fmt.Errorf("retention: batch_size must be between 1 and 10000, got %d", c.BatchSize)
	}
	return nil
}

// Tables are the tables whose rows are counted on /metrics.
var Tables = []string{"incidents", "incident_alerts", "incident_timeline", "incident_links", "alert_groups"}

// childTables hold rows of an incident, deleted with it (before it).
var childTables = []string{"incident_action_items", "incident_timeline", "incident_links", "incident_alerts"}

// Compactor deletes expired data.
type Compactor struct {
	db      *store.DB
	logger  *slog.Logger
	deleted *prometheus.CounterVec
	rows    *prometheus.Desc
	// Now is the clock (tests replace it).
	Now func() time.Time
}

// New returns a compactor; its metrics register on reg.
func New(db *store.DB, logger *slog.Logger, reg prometheus.Registerer) (*Compactor, error) {
	c := &Compactor{db: db, logger: logger, Now: time.Now,
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sre_store_deleted_rows_total",
			Help: "Rows deleted by retention compaction, by table.",
		}, []string{"table"}),
		rows: prometheus.NewDesc("sre_store_rows", "Rows stored, by table.", []string{"table"}, nil),
	}
	for _, t := range append(append([]string(nil), childTables...), "incidents", "alert_groups") {
		c.deleted.WithLabelValues(t)
	}
	if err := reg.Register(c.deleted); err != nil {
		return nil, err
	}
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	return c, nil
}

// Describe implements prometheus.Collector (sre_store_rows).
func (c *Compactor) Describe(ch chan<- *prometheus.Desc) { ch <- c.rows }

// Collect implements prometheus.Collector: one COUNT(*) per table.
func (c *Compactor) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, t := range Tables {
		var n float64
		if err := c.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+t).Scan(&n); err != nil {
			c.logger.Warn("Count rows", "table", t, "err", err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.rows, prometheus.GaugeValue, n, t)
	}
}

// Run compacts every interval until ctx ends; cfg returns the config in force.
func (c *Compactor) Run(ctx context.Context, cfg func() Config) error {
	for {
		conf := cfg()
		if _, err := c.Compact(ctx, conf); err != nil && ctx.Err() == nil {
			c.logger.Warn("Retention compaction", "err", err)
		}
		t := time.NewTimer(time.Duration(conf.Interval))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Compact deletes what expired, in batches of conf.BatchSize incidents,
// each in its own transaction, and returns the rows deleted by table.
func (c *Compactor) Compact(ctx context.Context, conf Config) (map[string]int64, error) {
	out := map[string]int64{}
	if conf.ResolvedIncidents <= 0 {
		return out, nil
	}
	cutoff := c.Now().Add(-time.Duration(conf.ResolvedIncidents)).UnixMilli()
	for {
		n, err := c.batch(ctx, cutoff, conf.BatchSize, out)
		if err != nil {
			return out, err
		}
		if n < conf.BatchSize {
			return out, nil
		}
	}
}

func (c *Compactor) batch(ctx context.Context, cutoff int64, size int, out map[string]int64) (int, error) {
	var ids []string
	var counts map[string]int64
	err := c.db.InTx(ctx, func(tx *sql.Tx) error {
		ids, counts = nil, map[string]int64{}
		q := `SELECT id FROM incidents WHERE status IN ('resolved', 'postmortem_done') AND resolved_at < $1
			ORDER BY resolved_at LIMIT $2`
		if c.db.Dialect == store.Postgres {
			q += ` FOR UPDATE SKIP LOCKED`
		}
		rows, err := tx.QueryContext(ctx, q, cutoff, size)
		if err != nil {
			return fmt.Errorf("select expired incidents: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		ph := make([]string, len(ids))
		args := make([]any, len(ids))
		for i, id := range ids {
			ph[i] = fmt.Sprintf("$%d", i+1)
			args[i] = id
		}
		in := "(" + strings.Join(ph, ", ") + ")"
		del := func(table, where string) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE `+where+` IN `+in, args...)
			if err != nil {
				return fmt.Errorf("delete from %s: %w", table, err)
			}
			n, _ := res.RowsAffected()
			counts[table] += n
			return nil
		}
		for _, t := range childTables {
			if err := del(t, "incident_id"); err != nil {
				return err
			}
		}
		// A group whose incident goes opens a new one on its next delivery.
		if err := del("alert_groups", "incident_id"); err != nil {
			return err
		}
		if err := del("incidents", "id"); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for t, n := range counts {
		out[t] += n
		c.deleted.WithLabelValues(t).Add(float64(n))
	}
	return len(ids), nil
}
