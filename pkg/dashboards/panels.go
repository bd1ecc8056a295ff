package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/bargauge"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/text"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Every panel queries the Prometheus data source chosen in the dashboard's
// "datasource" variable.
var datasource = common.DataSourceRef{
	Type: cog.ToPtr("prometheus"),
	Uid:  cog.ToPtr("${datasource}"),
}

// query is one PromQL target of a panel.
type query struct {
	expr    string
	legend  string
	instant bool
}

func q(expr, legend string) query { return query{expr: expr, legend: legend} }

// instant marks a query evaluated once at the end of the range (stats, tables).
func instant(expr, legend string) query { return query{expr: expr, legend: legend, instant: true} }

func targets(qs []query) []cog.Builder[variants.Dataquery] {
	out := make([]cog.Builder[variants.Dataquery], 0, len(qs))
	for i, x := range qs {
		b := prometheus.NewDataqueryBuilder().
			Datasource(datasource).
			RefId(string(rune('A' + i))).
			Expr(x.expr)
		if x.legend != "" {
			b = b.LegendFormat(x.legend)
		}
		if x.instant {
			b = b.Instant()
		} else {
			b = b.Range()
		}
		out = append(out, b)
	}
	return out
}

// thresholds builds absolute thresholds: base colour, then (value, colour) steps.
func thresholds(base string, steps ...step) *dashboard.ThresholdsConfigBuilder {
	ts := []dashboard.Threshold{{Value: nil, Color: base}}
	for _, s := range steps {
		ts = append(ts, dashboard.Threshold{Value: cog.ToPtr(s.value), Color: s.color})
	}
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(ts)
}

type step struct {
	value float64
	color string
}

// budgetThresholds colour a remaining-budget ratio by the default error
// budget policy: red below 20%, yellow from 20% to 50%, green above 50%.
// SLOs with their own budgetPolicy: the policy state panels (policyState)
// show the state sred computed with their thresholds.
func budgetThresholds() *dashboard.ThresholdsConfigBuilder {
	return thresholds("red", step{0.2, "yellow"}, step{0.5, "green"})
}

// panelSpec holds what every panel kind shares.
type panelSpec struct {
	title, description string
	unit               string
	width, height      uint32
	queries            []query
	thresholds         *dashboard.ThresholdsConfigBuilder
	min, max           *float64
	mappings           []dashboard.ValueMapping
}

func (p panelSpec) size() (uint32, uint32) {
	w, h := p.width, p.height
	if w == 0 {
		w = 6
	}
	if h == 0 {
		h = 6
	}
	return w, h
}

// panelBuilder is what the stat, bar gauge, time series and table panel
// builders have in common.
type panelBuilder[B any] interface {
	Title(string) B
	Description(string) B
	Datasource(common.DataSourceRef) B
	Span(uint32) B
	Height(uint32) B
	Unit(string) B
	Targets([]cog.Builder[variants.Dataquery]) B
	Thresholds(cog.Builder[dashboard.ThresholdsConfig]) B
	Min(float64) B
	Max(float64) B
	Mappings([]dashboard.ValueMapping) B
}

// withSpec sets what every panel kind takes from its spec: title,
// description, data source, size, unit and queries.
func withSpec[B panelBuilder[B]](b B, p panelSpec) B {
	w, h := p.size()
	return b.
		Title(p.title).Description(p.description).
		Datasource(datasource).
		Span(w).Height(h).
		Unit(p.unit).
		Targets(targets(p.queries))
}

// withThresholds sets the spec's thresholds, when it has some.
func withThresholds[B panelBuilder[B]](b B, p panelSpec) B {
	if p.thresholds != nil {
		b = b.Thresholds(p.thresholds)
	}
	return b
}

// withMinMax sets the spec's min and max, when it has them.
func withMinMax[B panelBuilder[B]](b B, p panelSpec) B {
	if p.min != nil {
		b = b.Min(*p.min)
	}
	if p.max != nil {
		b = b.Max(*p.max)
	}
	return b
}

// withMappings sets the spec's value mappings, when it has some.
func withMappings[B panelBuilder[B]](b B, p panelSpec) B {
	if len(p.mappings) > 0 {
		b = b.Mappings(p.mappings)
	}
	return b
}

func newStat(p panelSpec) *stat.PanelBuilder {
	b := withSpec(stat.NewPanelBuilder(), p).
		ColorMode(common.BigValueColorModeBackground).
		GraphMode(common.BigValueGraphModeNone).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}))
	return withMappings(withMinMax(withThresholds(b, p), p), p)
}

func newBarGauge(p panelSpec) *bargauge.PanelBuilder {
	b := withSpec(bargauge.NewPanelBuilder(), p).
		Orientation(common.VizOrientationHorizontal).
		DisplayMode(common.BarGaugeDisplayModeGradient).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}))
	return withMinMax(withThresholds(b, p), p)
}

func newTimeseries(p panelSpec) *timeseries.PanelBuilder {
	b := withSpec(timeseries.NewPanelBuilder(), p).
		LineWidth(1).
		FillOpacity(10).
		Legend(common.NewVizLegendOptionsBuilder().
			DisplayMode(common.LegendDisplayModeTable).
			Placement(common.LegendPlacementBottom).
			ShowLegend(true).
			Calcs([]string{"lastNotNull", "max"})).
		Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending))
	if p.thresholds != nil {
		b = b.Thresholds(p.thresholds).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed))
	}
	return withMinMax(b, p)
}

// newTable shows instant query results, one row per series, labels as columns.
func newTable(p panelSpec) *table.PanelBuilder {
	b := withSpec(table.NewPanelBuilder(), p).
		WithTransformation(dashboard.DataTransformerConfig{
			Id:      "merge",
			Options: map[string]any{},
		}).
		WithTransformation(dashboard.DataTransformerConfig{
			Id: "organize",
			Options: map[string]any{
				"excludeByName": map[string]any{"Time": true},
			},
		})
	return withMappings(withThresholds(b, p), p)
}

func newText(title, markdown string, width, height uint32) *text.PanelBuilder {
	return text.NewPanelBuilder().
		Title(title).
		Span(width).Height(height).
		Mode(text.TextModeMarkdown).
		Content(markdown)
}

// rangeMapping maps values in [from, to) to a display text and colour; nil
// bounds are open.
func rangeMapping(from, to *float64, label, color string, index int32) dashboard.ValueMapping {
	return dashboard.ValueMapping{RangeMap: &dashboard.RangeMap{
		Type: dashboard.MappingTypeRangeToText,
		Options: dashboard.DashboardRangeMapOptions{
			From:   from,
			To:     to,
			Result: dashboard.ValueMappingResult{Text: cog.ToPtr(label), Color: cog.ToPtr(color), Index: cog.ToPtr(index)},
		},
	}}
}

func f(v float64) *float64 { return &v }
