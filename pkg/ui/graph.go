package ui

import (
	"maps"
	"net/http"
	"slices"
	"sort"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/correlation"
	"github.com/rootuip/sre/pkg/incident"
)

// graphIncidentLimit caps the open incidents the dependency graph page
// reads (with their alert groups' services, in one query).
const graphIncidentLimit = 200

// graphIncident is an open incident as the graph page shows it.
type graphIncident struct {
	ID, Title, Root string
	Severity        incident.Severity
	Status          incident.Status
}

// graphService is one service of the graph.
type graphService struct {
	Name, Description, Source string
	// Depth is the length of the longest dependency chain below it (0: it
	// depends on nothing).
	Depth int
	// DependsOn and Dependants are the direct edges, each marked failing
	// when that service has an open incident.
	DependsOn, Dependants []graphEdge
	Incidents             []graphIncident
	Failing, Root         bool
}

type graphEdge struct {
	Name    string
	Failing bool
}

type graphData struct {
	Disabled bool
	Services []graphService
	// Roots are the likely roots of the failing services, one per group
	// of services related by the graph.
	Roots []string
	// Outside are failing services the graph does not know.
	Outside   []string
	Failing   int
	Truncated bool
}

// graphPage serves GET /graph: every service of the dependency graph
// (`services` in sred.yml) with what it depends on, what depends on it and
// its open incidents; the likely root of the failing services (the
// deepest failing dependency, incident.Correlation.Root) is highlighted.
func (u *UI) graphPage(w http.ResponseWriter, r *http.Request) {
	var d graphData
	var g *correlation.Graph
	if u.src.Graph != nil {
		g = u.src.Graph()
	}
	if g == nil {
		d.Disabled = true
		u.render(w, r, http.StatusOK, "graph.html", "Dependencies", "graph", d)
		return
	}
	// One query: the open incidents with the services of their alert
	// groups (correlation attached them: they are affected too).
	open, more, err := u.src.Incidents.OpenWithServices(r.Context(), graphIncidentLimit)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	d.Truncated = more
	byService := map[string][]graphIncident{}
	for _, inc := range open {
		gi := graphIncident{ID: inc.ID, Title: inc.Title, Root: inc.RootService, Severity: inc.Severity, Status: inc.Status}
		services := append([]string{inc.Service}, inc.Services...)
		slices.Sort(services)
		for _, s := range slices.Compact(services) {
			if s != "" {
				byService[s] = append(byService[s], gi)
			}
		}
	}
	paths := g.Paths()
	corr := &incident.Correlation{DependsOn: paths}
	var failing []string
	for s := range byService {
		if _, ok := g.Services[s]; ok {
			failing = append(failing, s)
		} else {
			d.Outside = append(d.Outside, s)
		}
	}
	sort.Strings(d.Outside)
	d.Failing = len(failing)
	roots := map[string]bool{}
	for _, group := range relatedGroups(failing, paths) {
		root := corr.Root(group)
		roots[root] = true
		d.Roots = append(d.Roots, root)
	}
	sort.Strings(d.Roots)

	dependants := map[string][]string{}
	for _, name := range g.Names() {
		for _, dep := range g.Services[name].DependsOn {
			dependants[dep] = append(dependants[dep], name)
		}
	}
	depth := map[string]int{}
	var depthOf func(string) int
	depthOf = func(s string) int {
		if v, ok := depth[s]; ok {
			return v
		}
		best := 0
		for _, dep := range g.Services[s].DependsOn {
			best = max(best, depthOf(dep)+1)
		}
		depth[s] = best
		return best
	}
	edges := func(names []string) []graphEdge {
		names = slices.Sorted(slices.Values(names))
		out := make([]graphEdge, 0, len(names))
		for _, n := range names {
			out = append(out, graphEdge{Name: n, Failing: len(byService[n]) > 0})
		}
		return out
	}
	for _, name := range g.Names() {
		s := g.Services[name]
		d.Services = append(d.Services, graphService{
			Name: name, Description: s.Description, Source: auth.FilePath(r.Context(), g.Sources[name]), Depth: depthOf(name),
			DependsOn: edges(s.DependsOn), Dependants: edges(dependants[name]),
			Incidents: byService[name], Failing: len(byService[name]) > 0, Root: roots[name],
		})
	}
	// Dependencies first: the services nothing else runs without at the top.
	sort.SliceStable(d.Services, func(i, j int) bool { return d.Services[i].Depth < d.Services[j].Depth })
	u.render(w, r, http.StatusOK, "graph.html", "Dependencies", "graph", d)
}

// relatedGroups splits the failing services into groups connected by
// (transitive) dependencies: each group is one outage with one likely root.
func relatedGroups(failing []string, paths map[string]map[string][]string) [][]string {
	sort.Strings(failing)
	parent := map[string]string{}
	var find func(string) string
	find = func(s string) string {
		if parent[s] == s {
			return s
		}
		parent[s] = find(parent[s])
		return parent[s]
	}
	for _, s := range failing {
		parent[s] = s
	}
	for i, a := range failing {
		for _, b := range failing[i+1:] {
			if paths[a][b] != nil || paths[b][a] != nil {
				parent[find(b)] = find(a)
			}
		}
	}
	groups := map[string][]string{}
	for _, s := range failing {
		groups[find(s)] = append(groups[find(s)], s)
	}
	out := make([][]string, 0, len(groups))
	for _, k := range slices.Sorted(maps.Keys(groups)) {
		out = append(out, groups[k])
	}
	return out
}
