package escalation

// The escalation status of an incident, for the API.

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/notify"
)

// Status is the escalation of one incident, for the API.
type Status struct {
	IncidentID string          `json:"incident_id"`
	Policy     string          `json:"policy,omitempty"`
	State      string          `json:"state"`
	Epoch      int             `json:"epoch"`
	Level      int             `json:"level"`
	StartedAt  time.Time       `json:"started_at"`
	Frozen     Frozen          `json:"frozen"`
	Pending    []PendingStep   `json:"pending"`
	Notices    []notify.Record `json:"notifications"`
}

// PendingStep is a timer not fired yet.
type PendingStep struct {
	Kind  string    `json:"kind"`
	Level int       `json:"level"`
	At    time.Time `json:"at"`
}

// Get returns the escalation status of an incident (nil if it has none).
func (e *Engine) Get(ctx context.Context, incidentID string) (*Status, error) {
	var st *stateRow
	err := e.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		st, err = e.load(ctx, tx, incidentID)
		return err
	})
	if err != nil || st == nil {
		return nil, err
	}
	out := &Status{IncidentID: incidentID, Policy: st.policy, State: st.state, Epoch: st.epoch, Level: st.level, StartedAt: st.started, Frozen: st.frozen, Pending: []PendingStep{}}
	pending, err := jobs.List(ctx, e.db, jobs.Filter{Queue: Queue, Group: incidentID, States: []string{jobs.StatePending}})
	if err != nil {
		return nil, fmt.Errorf("pending steps of %s: %w", incidentID, err)
	}
	for _, j := range pending {
		var p job
		if err := j.Decode(&p); err != nil {
			return nil, err
		}
		out.Pending = append(out.Pending, PendingStep{Kind: string(j.Kind), Level: p.Level, At: j.RunAt})
	}
	if out.Notices, err = notify.List(ctx, e.db, incidentID); err != nil {
		return nil, err
	}
	return out, nil
}
