package escalation

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/jobs"
)

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func labelSetOf(m map[string]string) model.LabelSet {
	ls := model.LabelSet{}
	for k, v := range m {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls
}

// ListMaintenance returns the stored maintenance windows overlapping [from, to).
// A window stored ending where it starts (an end less than a millisecond
// after its start was once stored so) covers nothing and is left out.
func ListMaintenance(ctx context.Context, q querier, from, to time.Time) ([]*MaintenanceWindow, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, name, matchers, starts_at, ends_at FROM escalation_maintenance
WHERE ends_at > $1 AND starts_at < $2 AND ends_at > starts_at ORDER BY starts_at, id`, jobs.Millis(from), jobs.Millis(to))
	if err != nil {
		return nil, fmt.Errorf("list maintenance windows: %w", err)
	}
	defer rows.Close()
	out := []*MaintenanceWindow{}
	for rows.Next() {
		var (
			w        MaintenanceWindow
			matchers string
			s, e     int64
		)
		if err := rows.Scan(&w.ID, &w.Name, &matchers, &s, &e); err != nil {
			return nil, fmt.Errorf("list maintenance windows: %w", err)
		}
		if err := w.stored(matchers, s, e); err != nil {
			return nil, err
		}
		out = append(out, &w)
	}
	return out, rows.Err()
}

// stored completes w, read with its ID and name, from its stored matchers
// (JSON) and times (milliseconds), and validates it.
func (w *MaintenanceWindow) stored(matchers string, start, end int64) error {
	if err := json.Unmarshal([]byte(matchers), &w.Matchers); err != nil {
		return fmt.Errorf("maintenance window %d: %w", w.ID, err)
	}
	w.Start, w.End = jobs.FromMillis(start), jobs.FromMillis(end)
	return w.validate()
}

// AddMaintenance stores a maintenance window (it may start now or later).
func (e *Engine) AddMaintenance(ctx context.Context, w *MaintenanceWindow, by string) (int64, error) {
	// Checked as stored, to the millisecond.
	w.Start, w.End = w.Start.Truncate(time.Millisecond), w.End.Truncate(time.Millisecond)
	if err := w.Validate(); err != nil {
		return 0, err
	}
	b, _ := json.Marshal(w.Matchers)
	var id int64
	err := e.db.QueryRowContext(ctx, `INSERT INTO escalation_maintenance (name, matchers, starts_at, ends_at, created_by, created_at)
VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, w.Name, string(b), jobs.Millis(w.Start), jobs.Millis(w.End), by, jobs.Millis(e.clock.Now())).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("store maintenance window %q: %w", w.Name, err)
	}
	return id, nil
}

// DeleteMaintenance removes a stored maintenance window.
func (e *Engine) DeleteMaintenance(ctx context.Context, id int64) (bool, error) {
	res, err := e.db.ExecContext(ctx, `DELETE FROM escalation_maintenance WHERE id = $1`, id)
	if err != nil {
		return false, fmt.Errorf("delete maintenance window %d: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// Maintenance lists configured and stored windows that have not ended at now.
func (e *Engine) Maintenance(ctx context.Context, now time.Time) ([]*MaintenanceWindow, error) {
	cfg, _, _ := e.config()
	var out []*MaintenanceWindow
	for _, w := range cfg.MaintenanceWindows {
		if w.End.After(now) {
			out = append(out, w)
		}
	}
	stored, err := ListMaintenance(ctx, e.db, now, now.Add(100*365*24*time.Hour))
	if err != nil {
		return nil, err
	}
	return append(out, stored...), nil
}
