package app

import (
	"context"

	"github.com/rootuip/sre/pkg/stream"
)

// Stream is the live event stream, GET /api/v1/events.
var Stream = Spec[struct{}]{
	Name: "stream",
	Build: func(ctx context.Context, a *App, _ struct{}) (func(context.Context, struct{}), error) {
		return nil, setupStream(ctx, a)
	},
}

// setupStream mounts the live event stream, GET /api/v1/events: every event
// of a.Bus as Server-Sent Events (see package stream and docs/events.md).
func setupStream(_ context.Context, a *App) error {
	h := stream.New(a.Bus, stream.Options{Logger: a.Logger.With("component", "stream"), Registerer: a.Registry})
	h.Register(a.Mux)
	return nil
}
