package sla

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/bidi"
	"github.com/rootuip/sre/pkg/mdtext"
)

// Formats a report renders to.
var Formats = []string{"json", "md", "csv", "html"}

// Render writes the report in a format: json, md (Markdown), csv or html.
func Render(w io.Writer, r *Report, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "md", "markdown":
		return renderMarkdown(w, r)
	case "csv":
		return renderCSV(w, r)
	case "html":
		var b bytes.Buffer
		if err := htmlTemplate.Execute(&b, r); err != nil {
			return fmt.Errorf("render the HTML report: %w", err)
		}
		// Bidirectional control characters of the names (a customer or
		// service name that reads otherwise than it is) are shown, not
		// applied, as on the console.
		_, err := w.Write(bidi.HTML(b.Bytes()))
		return err
	}
	return fmt.Errorf("unknown format %q (want one of %s)", format, strings.Join(Formats, ", "))
}

// ContentType is the media type of a format.
func ContentType(format string) string {
	switch format {
	case "md", "markdown":
		return "text/markdown; charset=utf-8"
	case "csv":
		return "text/csv; charset=utf-8"
	case "html":
		return "text/html; charset=utf-8"
	}
	return "application/json"
}

// row is one objective of the report, flattened.
type row struct {
	Service string
	Kind    string // availability | latency
	*Objective
}

// Rows returns the objectives in service order, availability first.
func (r *Report) rows() []row {
	var out []row
	for _, name := range r.ServiceNames() {
		s := r.Services[name]
		if s.Availability != nil {
			out = append(out, row{name, "availability", s.Availability})
		}
		if s.Latency != nil {
			out = append(out, row{name, "latency", s.Latency})
		}
	}
	return out
}

func (r *Report) rangeText() string {
	s := fmt.Sprintf("%s (%s to %s)", r.Period, r.Start.UTC().Format(time.RFC3339), r.End.UTC().Format(time.RFC3339))
	if r.Partial {
		s += ", month to date"
	}
	return s
}

// coveredText says how much of a range of length span the data covers:
// the time and the share, "15m of the period (0.03%)". The share alone
// read "0.0%" for an SLO minutes old in a 30d report.
func coveredText(coverage float64, span time.Duration) string {
	covered := time.Duration(coverage * float64(span))
	unit := time.Minute
	if covered < time.Minute {
		unit = time.Second
	}
	pct := coverage * 100
	share := strconv.FormatFloat(pct, 'f', 1, 64) + "%"
	switch {
	case pct < 0.01:
		share = "under 0.01%"
	case pct < 1:
		share = strconv.FormatFloat(pct, 'f', 2, 64) + "%"
	}
	return model.Duration(covered.Round(unit)).String() + " of the period (" + share + ")"
}

func fmtCredit(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) + "%" }

func renderMarkdown(w io.Writer, r *Report) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# SLA report: %s (%s)\n\n", mdtext.Cell(r.Name), mdtext.Cell(r.Customer))
	fmt.Fprintf(&b, "Period: %s\n\n", r.rangeText())
	b.WriteString("| Service | Objective | Target | Achieved | Status | Scope | Credit |\n")
	b.WriteString("|---|---|---:|---:|---|---|---:|\n")
	for _, o := range r.rows() {
		cr := ""
		if o.Credit > 0 {
			cr = fmtCredit(o.Credit)
		}
		fmt.Fprintf(&b, "| %s | %s (%s) | %s | %s | %s | %s | %s |\n", mdtext.Cell(o.Service), o.Kind, mdtext.Cell(o.SLO), o.Target, o.Achieved, o.Status, o.Scope, cr)
	}
	for _, o := range r.rows() {
		if o.Coverage != nil && *o.Coverage < 0.995 {
			fmt.Fprintf(&b, "\nThe data of %s %s covers %s: its figure is over that part.\n", mdtext.Cell(o.Service), o.Kind, coveredText(*o.Coverage, r.End.Sub(r.Start)))
		}
	}
	fmt.Fprintf(&b, "\nViolations: %d\n\nService credit: %s\n", r.Violations, fmtCredit(r.Credits))
	_, err := w.Write(b.Bytes())
	return err
}

func renderCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"customer", "period", "start", "end", "service", "objective", "slo", "target", "achieved", "status", "scope", "credit"})
	for _, o := range r.rows() {
		// No credit (none earned, or no data for the period) is an empty
		// cell, as in the other formats (JSON leaves the field out).
		cr := ""
		if o.Credit > 0 {
			cr = fmtCredit(o.Credit)
		}
		_ = cw.Write([]string{
			csvSafe(r.Customer), r.Period, r.Start.UTC().Format(time.RFC3339), r.End.UTC().Format(time.RFC3339),
			csvSafe(o.Service), o.Kind, csvSafe(o.SLO), o.Target, o.Achieved, o.Status, o.Scope, cr,
		})
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe defuses spreadsheet formulas in configured names.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

var htmlTemplate = template.Must(template.New("sla").Funcs(template.FuncMap{
	"credit": fmtCredit,
	"time":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>SLA report: {{.Name}}</title>
<style>
body{font-family:sans-serif;margin:2em}
table{border-collapse:collapse}
th,td{border:1px solid #ccc;padding:.3em .8em;text-align:left}
.MET{color:#1a7f37}.MISSED{color:#cf222e;font-weight:bold}.NO_DATA{color:#6e7781}
.bidi{font-family:monospace;font-size:.85em;background:#fff3cd;color:#6d4c00;border:1px solid #d4a017;border-radius:.2rem;padding:0 .15rem}
</style>
</head>
<body>
<h1>SLA report: {{.Name}} ({{.Customer}})</h1>
<p>Period: {{.Period}} ({{time .Start}} to {{time .End}}){{if .Partial}}, month to date{{end}}</p>
<table>
<thead><tr><th>Service</th><th>Objective</th><th>Target</th><th>Achieved</th><th>Status</th><th>Scope</th><th>Credit</th></tr></thead>
<tbody>
{{- range .Rows}}
<tr><td>{{.Service}}</td><td>{{.Kind}} ({{.SLO}})</td><td>{{.Target}}</td><td>{{.Achieved}}</td><td class="{{.Status}}">{{.Status}}</td><td>{{.Scope}}</td><td>{{if .Credit}}{{credit .Credit}}{{end}}</td></tr>
{{- end}}
</tbody>
</table>
<p>Violations: {{.Violations}}</p>
<p>Service credit: {{credit .Credits}}</p>
</body>
</html>
`))

// Rows is rows() for templates.
func (r *Report) Rows() []row { return r.rows() }
