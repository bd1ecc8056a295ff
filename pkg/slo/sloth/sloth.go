// Package sloth imports Sloth's prometheus/v1 SLO specs, and its Kubernetes
// objects (apiVersion sloth.slok.dev/v1, kind PrometheusServiceLevel, the
// same spec in camelCase under spec:), into the slo model. Importing the
// package registers both formats with slo.LoadFile and slo.LoadDir.
//
// As with Sloth, the burn-rate alerts are named after alerting.name (both
// tiers; SLOBurnRatePage and SLOBurnRateTicket without it), keep the
// severity label of page_alert and ticket_alert (severity="page" and
// severity="ticket" without it) and carry Sloth's labels sloth_severity,
// sloth_id, sloth_service and sloth_slo, so that Alertmanager routes written
// for Sloth's alerts keep matching. A severity other than page or ticket is
// kept with a warning (Spec.Warnings): sred reads severity (severity_map),
// and the generated inhibit rules match such pages by burn_tier.
//
// Not supported: SLI plugins (sli.plugin). Sloth has no per-SLO period: the
// period is 30d, Sloth's default.
package sloth

import (
	"fmt"
	"maps"
	"regexp"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/yamlerr"
)

// Version is the Sloth spec version this package reads.
const Version = "prometheus/v1"

// CRDVersion and CRDKind name Sloth's Kubernetes object.
const (
	CRDVersion = "sloth.slok.dev/v1"
	CRDKind    = "PrometheusServiceLevel"
)

func init() {
	slo.RegisterImporter(importer{})
	slo.RegisterImporter(crdImporter{})
}

type spec struct {
	Version string            `yaml:"version"`
	Service string            `yaml:"service"`
	Labels  map[string]string `yaml:"labels"`
	SLOs    []sloSpec         `yaml:"slos"`
}

type sloSpec struct {
	Name        string            `yaml:"name"`
	Objective   float64           `yaml:"objective"`
	Description string            `yaml:"description"`
	Labels      map[string]string `yaml:"labels"`
	SLI         struct {
		Raw *struct {
			ErrorRatioQuery string `yaml:"error_ratio_query"`
		} `yaml:"raw"`
		Events *struct {
			ErrorQuery string `yaml:"error_query"`
			TotalQuery string `yaml:"total_query"`
		} `yaml:"events"`
		// Any content (id, options: {...}): refused whole below.
		Plugin *yaml.Node `yaml:"plugin"`
	} `yaml:"sli"`
	Alerting struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
		PageAlert   alert             `yaml:"page_alert"`
		TicketAlert alert             `yaml:"ticket_alert"`
	} `yaml:"alerting"`
	Line int
}

type alert struct {
	Disable     bool              `yaml:"disable"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// crd is Sloth's PrometheusServiceLevel object. Its spec has the fields of
// prometheus/v1 in camelCase; the field names and types below match spec's
// and sloSpec's so that one converts into the other.
type crd struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   *yaml.Node `yaml:"metadata"`
	Spec       crdSpec    `yaml:"spec"`
}

type crdSpec struct {
	Service string            `yaml:"service"`
	Labels  map[string]string `yaml:"labels"`
	SLOs    []crdSLO          `yaml:"slos"`
}

type crdSLO struct {
	Name        string            `yaml:"name"`
	Objective   float64           `yaml:"objective"`
	Description string            `yaml:"description"`
	Labels      map[string]string `yaml:"labels"`
	SLI         struct {
		Raw *struct {
			ErrorRatioQuery string `yaml:"errorRatioQuery"`
		} `yaml:"raw"`
		Events *struct {
			ErrorQuery string `yaml:"errorQuery"`
			TotalQuery string `yaml:"totalQuery"`
		} `yaml:"events"`
		Plugin *yaml.Node `yaml:"plugin"`
	} `yaml:"sli"`
	Alerting struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
		PageAlert   alert             `yaml:"pageAlert"`
		TicketAlert alert             `yaml:"ticketAlert"`
	} `yaml:"alerting"`
	Line int
}

type crdImporter struct{}

func (crdImporter) Name() string { return CRDVersion }

func (crdImporter) Match(doc *yaml.Node) bool {
	return scalar(doc, "apiVersion") == CRDVersion
}

func (crdImporter) Import(file string, docs []*yaml.Node) ([]*slo.Spec, error) {
	var (
		out  []*slo.Spec
		errs slo.Errors
	)
	for _, doc := range docs {
		var in crd
		pos, err := slo.DecodeStrictPositions(file, doc, &in, "")
		if err != nil {
			errs = append(errs, err.(slo.Errors)...)
			continue
		}
		if in.Kind != CRDKind {
			p := pos["kind"]
			if p.Line == 0 {
				p.Line, p.Column = doc.Line, doc.Column
			}
			errs = append(errs, &slo.Error{File: file, Line: p.Line, Column: p.Column, Field: "kind", Msg: fmt.Sprintf("unsupported kind %q (want %s)", in.Kind, CRDKind)})
			continue
		}
		// Errors point at the field under spec:.
		specPos := map[string]slo.Position{}
		for path, p := range pos {
			if rest, ok := strings.CutPrefix(path, "spec."); ok {
				specPos[rest] = p
			}
		}
		slos := make([]sloSpec, len(in.Spec.SLOs))
		for i, o := range in.Spec.SLOs {
			slos[i] = sloSpec(o)
		}
		s, es := convert(file, doc, spec{Service: in.Spec.Service, Labels: in.Spec.Labels, SLOs: slos}, specPos, CRDVersion+" "+CRDKind)
		errs = append(errs, es...)
		if s != nil {
			out = append(out, s)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

type importer struct{}

func (importer) Name() string { return "sloth " + Version }

func (importer) Match(doc *yaml.Node) bool {
	return scalar(doc, "version") == Version
}

// scalar is the value of field key of mapping doc as the decoder reads it
// (a merged field, an alias followed), "" when it is no scalar.
func scalar(doc *yaml.Node, key string) string {
	if n := yamlerr.Lookup(doc, key); n != nil && n.Kind == yaml.ScalarNode {
		return n.Value
	}
	return ""
}

var windowRE = regexp.MustCompile(`\{\{\s*\.window\s*\}\}`)

func (importer) Import(file string, docs []*yaml.Node) ([]*slo.Spec, error) {
	var (
		out  []*slo.Spec
		errs slo.Errors
	)
	for _, doc := range docs {
		var in spec
		pos, err := slo.DecodeStrictPositions(file, doc, &in, "")
		if err != nil {
			errs = append(errs, err.(slo.Errors)...)
			continue
		}
		s, es := convert(file, doc, in, pos, "sloth "+Version)
		errs = append(errs, es...)
		if s != nil {
			out = append(out, s)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// convert makes a spec of a decoded Sloth spec; pos holds the positions of
// its fields by Sloth field path (slos[0].sli.events.error_query, or the
// camelCase errorQuery of the Kubernetes object).
func convert(file string, doc *yaml.Node, in spec, pos map[string]slo.Position, source string) (*slo.Spec, slo.Errors) {
	var errs slo.Errors
	s := &slo.Spec{
		APIVersion: slo.APIVersion,
		Kind:       slo.Kind,
		Service:    in.Service,
		Labels:     in.Labels,
		File:       file,
		Line:       doc.Line,
		Source:     source,
	}
	// Validation errors point at the Sloth field they are about.
	for path, p := range pos {
		s.SetPosition(nativePath(path), p.Line, p.Column)
	}
	for i, o := range in.SLOs {
		if o.SLI.Plugin != nil {
			field := fmt.Sprintf("slos[%d].sli.plugin", i)
			p := pos[field]
			errs = append(errs, &slo.Error{File: file, Line: p.Line, Column: p.Column, Field: field, Msg: "Sloth SLI plugins are not supported; use events or raw"})
			continue
		}
		n := slo.SLO{
			Name:        o.Name,
			Objective:   o.Objective,
			Period:      slo.DefaultPeriod,
			Description: o.Description,
			Labels:      o.Labels,
			Line:        o.Line,
		}
		// Both or none set: validation reports it ("exactly one of ...").
		if o.SLI.Events != nil {
			n.SLI.Events = &slo.EventsSLI{
				ErrorQuery: windowRE.ReplaceAllString(o.SLI.Events.ErrorQuery, slo.WindowPlaceholder),
				TotalQuery: windowRE.ReplaceAllString(o.SLI.Events.TotalQuery, slo.WindowPlaceholder),
			}
		}
		if o.SLI.Raw != nil {
			n.SLI.Raw = &slo.RawSLI{ErrorRatioQuery: windowRE.ReplaceAllString(o.SLI.Raw.ErrorRatioQuery, slo.WindowPlaceholder)}
		}
		// A severity of alerting.labels is both tiers' unless a tier sets
		// its own, as Sloth merges them.
		n.Alerting.Labels = maps.Clone(o.Alerting.Labels)
		delete(n.Alerting.Labels, "severity")
		n.Alerting.Annotations = map[string]string{}
		for k, v := range o.Alerting.Annotations {
			if k == "runbook_url" || k == "runbook" {
				n.Alerting.RunbookURL = v
				continue
			}
			n.Alerting.Annotations[k] = v
		}
		n.Alerting.Name = o.Alerting.Name
		n.Alerting.Page = tier(o.Alerting.PageAlert, o.Alerting.Labels["severity"], slo.SeverityPage, in.Service, o.Name)
		n.Alerting.Ticket = tier(o.Alerting.TicketAlert, o.Alerting.Labels["severity"], slo.SeverityTicket, in.Service, o.Name)
		s.SLOs = append(s.SLOs, n)
		s.Warnings = append(s.Warnings, severityWarnings(file, pos, i, in.Service, &n, source)...)
	}
	return s, errs
}

// fieldNames maps Sloth's field names to the native spec's.
var fieldNames = map[string]string{
	"version":           "apiVersion",
	"error_query":       "errorQuery",
	"total_query":       "totalQuery",
	"error_ratio_query": "errorRatioQuery",
	"page_alert":        "page",
	"ticket_alert":      "ticket",
	"disable":           "disabled",
	// sloth.slok.dev/v1 PrometheusServiceLevel
	"pageAlert":   "page",
	"ticketAlert": "ticket",
}

// nativePath turns a Sloth field path (slos[0].sli.events.error_query) into
// the native one (slos[0].sli.events.errorQuery). Label and annotation
// keys are kept as they are.
func nativePath(path string) string {
	if !strings.Contains(path, "_") && !strings.Contains(path, "version") && !strings.Contains(path, "disable") && !strings.Contains(path, "Alert") {
		// None of fieldNames' keys can be in it.
		return path
	}
	parts := strings.Split(path, ".")
	for i, p := range parts {
		if i > 0 && (parts[i-1] == "labels" || parts[i-1] == "annotations") {
			continue
		}
		if n, ok := fieldNames[p]; ok {
			parts[i] = n
		}
	}
	return strings.Join(parts, ".")
}

// tier makes the tier of this severity (page or ticket) of a Sloth alert:
// its severity label, else the severity of alerting.labels (shared), when
// set, is the tier's Severity, and the alerts carry Sloth's labels as
// Sloth's alerts do.
func tier(a alert, shared, severity, service, sloName string) slo.Tier {
	l := maps.Clone(a.Labels)
	if l == nil {
		l = map[string]string{}
	}
	t := slo.Tier{Disabled: a.Disable, Severity: shared, Annotations: a.Annotations}
	if v, ok := l["severity"]; ok {
		t.Severity = v
	}
	delete(l, "severity")
	l["sloth_severity"] = severity
	l["sloth_id"] = service + "-" + sloName
	l["sloth_service"] = service
	l["sloth_slo"] = sloName
	t.Labels = l
	return t
}

// severityWarnings warns of a page_alert or ticket_alert severity label
// other than page or ticket: the alerts keep it, as Sloth's do, but sred
// reads severity, and the generated inhibit rules match such pages by
// burn_tier instead (and keep tickets of severity page from silencing
// anything).
func severityWarnings(file string, pos map[string]slo.Position, i int, service string, o *slo.SLO, source string) []*slo.Error {
	fields := map[string]string{slo.SeverityPage: "page_alert", slo.SeverityTicket: "ticket_alert"}
	if strings.HasPrefix(source, CRDVersion) {
		fields = map[string]string{slo.SeverityPage: "pageAlert", slo.SeverityTicket: "ticketAlert"}
	}
	var out []*slo.Error
	for _, t := range []struct {
		severity string
		tier     slo.Tier
	}{{slo.SeverityPage, o.Alerting.Page}, {slo.SeverityTicket, o.Alerting.Ticket}} {
		if t.tier.Severity == "" || t.tier.Severity == t.severity || t.tier.Disabled {
			continue
		}
		field := fmt.Sprintf("slos[%d].alerting.%s.labels.severity", i, fields[t.severity])
		p, ok := pos[field]
		if !ok {
			field = fmt.Sprintf("slos[%d].alerting.labels.severity", i)
			p = pos[field]
		}
		msg := fmt.Sprintf("SLO %s/%s: the %s alerts keep severity %q, as Sloth's do, instead of severity=%q (they also carry sloth_severity=%q): sred maps %q to an incident severity through severity_map (a value not in it gets the default severity)",
			service, o.Name, t.severity, t.tier.Severity, t.severity, t.severity, t.tier.Severity)
		switch {
		case t.severity == slo.SeverityPage:
			msg += `, and srectl generate --inhibit-rules gives this SLO an inhibit rule of its own, matching its pages by burn_tier`
		case t.tier.Severity == slo.SeverityPage && !o.Alerting.Page.Disabled:
			msg += `, and srectl generate --inhibit-rules gives this SLO an inhibit rule of its own, matching its pages by burn_tier, and leaves its tickets out of the rule matching pages by severity="page"`
		case t.tier.Severity == slo.SeverityPage:
			msg += `, and srectl generate --inhibit-rules leaves its tickets out of the rule matching pages by severity="page"`
		}
		out = append(out, &slo.Error{File: file, Line: p.Line, Column: p.Column, Field: field, Msg: msg})
	}
	return out
}
