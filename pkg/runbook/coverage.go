package runbook

import (
	"context"
	"fmt"
	"time"

	"github.com/rootuip/sre/pkg/store"
)

// Coverage is the automation coverage and toil over the incidents created
// in a time range, for the exporter.
type Coverage struct {
	// Incidents created in the range.
	Incidents int `json:"incidents"`
	// WithRun is the number of those where a runbook executed (dry-runs excluded).
	WithRun int `json:"with_run"`
	// Mitigated is the number that automation mitigated (a verify step passed).
	Mitigated int `json:"mitigated"`
	// Resolved is the number resolved so far.
	Resolved int `json:"resolved"`
	// ResolvedByHand is the number resolved without automation mitigating them: toil.
	ResolvedByHand int `json:"resolved_by_hand"`
}

// RunRatio is the share of incidents where a runbook ran (0 with no incidents).
func (c Coverage) RunRatio() float64 { return ratio(c.WithRun, c.Incidents) }

// MitigatedRatio is the share of incidents mitigated by automation.
func (c Coverage) MitigatedRatio() float64 { return ratio(c.Mitigated, c.Incidents) }

// ToilRatio is the share of resolved incidents that were resolved by hand.
func (c Coverage) ToilRatio() float64 { return ratio(c.ResolvedByHand, c.Resolved) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// AutomationCoverage computes Coverage over the incidents created in
// [from, to), reading the incidents table of the incident service and the
// runs of this package.
func AutomationCoverage(ctx context.Context, db *store.DB, from, to time.Time) (Coverage, error) {
	var c Coverage
	err := db.QueryRowContext(ctx, `SELECT
		COUNT(*),
		COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM runbook_runs r WHERE r.incident_id = i.id AND r.started_at > 0 AND r.dry_run = 0) THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN i.mitigated_by = 'automation' OR EXISTS (SELECT 1 FROM runbook_runs r WHERE r.incident_id = i.id AND r.verified = 1 AND r.dry_run = 0) THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN i.resolved_at IS NOT NULL THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN i.resolved_at IS NOT NULL AND i.mitigated_by <> 'automation'
			AND NOT EXISTS (SELECT 1 FROM runbook_runs r WHERE r.incident_id = i.id AND r.verified = 1 AND r.dry_run = 0) THEN 1 ELSE 0 END), 0)
		FROM incidents i WHERE i.created_at >= $1 AND i.created_at < $2`, ms(from), ms(to)).
		Scan(&c.Incidents, &c.WithRun, &c.Mitigated, &c.Resolved, &c.ResolvedByHand)
	if err != nil {
		return c, fmt.Errorf("automation coverage: %w", err)
	}
	return c, nil
}
