package app

import (
	"context"
	"net/http"
	"sync/atomic"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/config"
	"github.com/rootuip/sre/pkg/correlation"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/web"
)

// Correlation is the service dependency graph (`services`, and the files
// `correlation.service_files` imports) and the correlation rules
// (`correlation`): it installs them in the incident service, whose place
// stage attaches alert groups of related services to one open incident.
var Correlation = Spec[correlationConfig]{
	Name:     "correlation",
	Sections: []string{"services", "correlation"},
	Load:     loadCorrelation,
	Build:    buildCorrelation,
}

type correlationConfig struct {
	graph *correlation.Graph
	rules *incident.Correlation
}

func loadCorrelation(cfg *config.Config) (correlationConfig, error) {
	var svcs correlation.Services
	if err := cfg.Decode("services", &svcs); err != nil {
		return correlationConfig{}, err
	}
	var c correlation.Config
	if err := cfg.Decode("correlation", &c); err != nil {
		return correlationConfig{}, err
	}
	g, err := correlation.Load(svcs, c, cfg.ResolvePath)
	if err != nil {
		return correlationConfig{}, err
	}
	return correlationConfig{graph: g, rules: correlation.Compile(g, c)}, nil
}

// ServiceGraph returns the service dependency graph of a loaded config.
func ServiceGraph(cfg *Config) *correlation.Graph {
	return Correlation.Of(cfg).graph
}

func buildCorrelation(_ context.Context, a *App, c correlationConfig) (func(context.Context, correlationConfig), error) {
	var graph atomic.Pointer[correlation.Graph]
	graph.Store(c.graph)
	a.Graph = graph.Load
	a.Incidents.SetCorrelation(c.rules)
	a.Mux.HandleFunc("GET /api/v1/services", func(w http.ResponseWriter, r *http.Request) {
		cur := graph.Load()
		g := *cur
		g.Sources = make(map[string]string, len(cur.Sources))
		for name, src := range cur.Sources {
			g.Sources[name] = auth.FilePath(r.Context(), src)
		}
		web.JSON(w, http.StatusOK, &g)
	})
	return func(_ context.Context, c correlationConfig) {
		graph.Store(c.graph)
		a.Incidents.SetCorrelation(c.rules)
	}, nil
}
