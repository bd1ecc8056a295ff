// Package dashboards builds the Grafana dashboards of ROOTUIP SRE from code
// (grafana-foundation-sdk) so that they stay consistent with the metrics sred
// exports and the recording rules the generator produces.
//
// The dashboards read only sre_* metrics exported by sred, slo:* recording
// rules of the rule generator and Prometheus' ALERTS series for the
// generated alerts; never raw application metrics.
package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// Dashboard is one generated dashboard.
type Dashboard struct {
	// File is the file name under the output directory, e.g. "executive.json".
	File  string
	Model dashboard.Dashboard
}

// Tag is set on every generated dashboard.
const Tag = "rootuip-sre"

// All builds every dashboard, in a stable order.
func All() ([]Dashboard, error) {
	builders := []struct {
		file  string
		build func() *dashboard.DashboardBuilder
	}{
		{"executive.json", executive},
		{"operations.json", operations},
		{"engineering.json", engineering},
		{"slo-detail.json", sloDetail},
	}
	out := make([]Dashboard, 0, len(builders))
	for _, b := range builders {
		d, err := b.build().Build()
		if err != nil {
			return nil, fmt.Errorf("build dashboard %s: %w", b.file, err)
		}
		out = append(out, Dashboard{File: b.file, Model: d})
	}
	return out, nil
}

// Marshal renders a dashboard as indented JSON with a trailing newline, the
// form committed under dashboards/.
func Marshal(d Dashboard) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d.Model); err != nil {
		return nil, fmt.Errorf("marshal dashboard %s: %w", d.File, err)
	}
	return buf.Bytes(), nil
}

// Write generates every dashboard into dir, creating it if needed, and
// returns the paths written.
func Write(dir string) ([]string, error) {
	ds, err := All()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	var paths []string
	for _, d := range ds {
		b, err := Marshal(d)
		if err != nil {
			return nil, err
		}
		p := filepath.Join(dir, d.File)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return nil, fmt.Errorf("write dashboard: %w", err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// base starts a dashboard with the settings they all share: UTC time, the
// Prometheus data source variable, links to the other dashboards.
func base(uid, title, description string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{Tag}).
		Editable().
		Refresh("1m").
		Time("now-24h", "now").
		Timezone(common.TimeZoneUtc).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").
			Label("Data source").
			Type("prometheus")).
		Link(dashboard.NewDashboardLinkBuilder("ROOTUIP SRE").
			Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{Tag}).
			AsDropdown(true).
			IncludeVars(true).
			KeepTime(true))
}

// labelVariable is a query variable over the values of a label of a series.
func labelVariable(name, label, query string) *dashboard.QueryVariableBuilder {
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(datasource).
		Query(dashboard.StringOrMap{String: cog.ToPtr(query)}).
		Definition(query).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc)
}
