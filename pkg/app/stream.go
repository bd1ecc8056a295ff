package app

import (
	"context"

	"github.com/rootuip/sre/pkg/stream"
)

func init() {
	register(module{Name: "90-stream", Setup: setupStream})
}

// setupStream mounts the live event stream, GET /api/v1/events: every event
// of a.Bus as Server-Sent Events (see package stream and docs/events.md).
func setupStream(_ context.Context, a *App) error {
	h := stream.New(a.Bus, stream.Options{Logger: a.Logger.With("component", "stream"), Registerer: a.Registry})
	h.Register(a.Mux)
	return nil
}
