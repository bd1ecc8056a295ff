package runbook

import (
	"context"

	"github.com/rootuip/sre/pkg/incident"
)

// IncidentService adapts the incident service to what the engine needs:
// the timeline, mitigation by automation and resolution.
type IncidentService struct{ *incident.Service }

// MarkMitigated implements Incidents.
func (s IncidentService) MarkMitigated(ctx context.Context, id, by string) error {
	_, err := s.Service.MarkMitigated(ctx, id, by)
	return err
}

// Resolve implements Incidents.
func (s IncidentService) Resolve(ctx context.Context, id, actor, reason string) error {
	_, err := s.Service.Resolve(ctx, id, actor, reason)
	return err
}
