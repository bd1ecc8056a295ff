package app

import (
	"context"
	"sync"

	"github.com/rootuip/sre/pkg/ui"
)

func init() {
	register(module{Name: "90-ui", Setup: setupUI})
}

// consoles holds what each App's subsystems give the console (filled by
// their setup, which runs before "90-ui").
var consoles sync.Map // *App -> *ui.Sources

// console returns the console sources of a, for subsystems to fill in.
func (a *App) console() *ui.Sources {
	s, _ := consoles.LoadOrStore(a, &ui.Sources{})
	return s.(*ui.Sources)
}

// setupUI mounts the SRE console: the home page (/), SLO, incident,
// on-call and runbook pages. Every message sred sends links to
// <external_url>/incidents/<id>.
func setupUI(_ context.Context, a *App) error {
	src := a.console()
	src.Incidents = a.Incidents
	if e := a.EscalationEngine(); e != nil {
		src.Escalation = e
	}
	// Until the authentication middleware sets a principal on every
	// request, requests without one act as in the no-auth mode.
	ui.New(*src, ui.Options{Logger: a.Logger.With("component", "ui"), AllowAnonymous: true}).Register(a.Mux)
	return nil
}
