package incident

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"text/template"
	"time"
)

// DefaultTitleTemplate names an incident after its summary annotation, or
// its alert names and service.
const DefaultTitleTemplate = `{{ with .CommonAnnotations.summary }}{{ . }}{{ else }}{{ join .Alertnames ", " }} on {{ .Service }}{{ end }}`

// DefaultStatusUpdateTemplate is the default "Incident Status Updates"
// template.
const DefaultStatusUpdateTemplate = `🚨 [{{ .Incident.Severity }}] Incident: {{ .Incident.Title }}
ID: {{ .Incident.ID }}
Status: {{ .Incident.Status }}
Started: {{ when .Incident.DetectedAt .Sent }}
Impact: {{ with .Impact }}{{ . }}{{ else }}{{ with .Incident.Impact }}{{ . }}{{ else }}under assessment{{ end }}{{ end }}
Actions: {{ with .Actions }}{{ . }}{{ else }}investigating{{ end }}
{{- if not .NextUpdate.IsZero }}
Next Update: {{ when .NextUpdate .Sent }}
{{- end }}
{{- with .StatusPage }}
Status Page: {{ . }}
{{- end }}
`

// TitleData is what title_template renders.
type TitleData struct {
	Service           string
	Severity          Severity
	Receiver          string
	GroupLabels       map[string]string
	CommonLabels      map[string]string
	CommonAnnotations map[string]string
	// Alertnames are the distinct alertname labels of the group, sorted.
	Alertnames []string
	// BurnRate is the burn_rate_threshold annotation of the fastest
	// burn-rate tier firing (page_fast first, whatever its factor; the
	// highest factor among other tiers), as the rule generator writes it,
	// e.g. "14.4"; empty when none has one.
	BurnRate string
	// BurnTier is the burn_tier label of that alert (e.g. "page_fast").
	BurnTier string
}

// StatusUpdateData is what status_update_template renders.
type StatusUpdateData struct {
	Incident   *Incident
	Impact     string
	Actions    string
	NextUpdate time.Time
	StatusPage string
	// URL links to the incident in sred (global.external_url based).
	URL string
	// Sent is when the update is written: the default template gives the
	// date of a time on another day than it (When).
	Sent time.Time
}

// When gives t as a time of day in UTC ("15:04 UTC") when it falls on the
// UTC day of sent (or sent is zero), and with its date otherwise
// ("2026-03-03 15:04 UTC"): an incident that started the day before, or a
// next update due after midnight, must not read as today's.
func When(t, sent time.Time) string {
	t = t.UTC()
	if sent.IsZero() {
		return t.Format("15:04 UTC")
	}
	ty, tm, td := t.Date()
	sy, sm, sd := sent.UTC().Date()
	if ty == sy && tm == sm && td == sd {
		return t.Format("15:04 UTC")
	}
	return t.Format("2006-01-02 15:04 UTC")
}

var templateFuncs = template.FuncMap{
	"join":  strings.Join,
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	// when is When: {{ when .NextUpdate .Sent }}.
	"when": When,
	// utc formats a time in UTC with a Go layout: {{ utc "15:04" .Time }}.
	"utc": func(layout string, t any) string {
		switch v := t.(type) {
		case time.Time:
			return v.UTC().Format(layout)
		case *time.Time:
			if v == nil {
				return ""
			}
			return v.UTC().Format(layout)
		}
		return fmt.Sprint(t)
	},
}

func parseTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Funcs(templateFuncs).Option("missingkey=zero").Parse(text)
}

// CheckTitleTemplate parses a title template and renders it once with
// sample data, so that errors show at config load.
func CheckTitleTemplate(text string) error {
	_, err := renderTitle(text, sampleTitleData)
	return err
}

// CheckStatusUpdateTemplate parses a status-update template and renders it
// once with sample data.
func CheckStatusUpdateTemplate(text string) error {
	_, err := RenderStatusUpdate(text, StatusUpdateData{Incident: &Incident{
		ID: "INC-2026-0001", Title: "sample", Severity: SeverityHigh, Status: StatusTriggered,
		DetectedAt: time.Unix(0, 0), Labels: map[string]string{},
	}})
	return err
}

var sampleTitleData = TitleData{
	Service: "api", Severity: SeverityHigh, Receiver: "sred",
	GroupLabels:       map[string]string{"alertname": "HighErrorRate"},
	CommonLabels:      map[string]string{"alertname": "HighErrorRate", "service": "api"},
	CommonAnnotations: map[string]string{},
	Alertnames:        []string{"HighErrorRate"},
	BurnRate:          "14.4",
	BurnTier:          "page_fast",
}

func renderTitle(text string, d TitleData) (string, error) {
	t, err := parseTemplate("title", text)
	if err != nil {
		return "", err
	}
	return execTitle(t, d)
}

// titleCache keeps the last parsed title template: parsing costs more than
// executing, and the text only changes on reload.
var titleCache struct {
	sync.Mutex
	text string
	t    *template.Template
}

func renderTitleCached(text string, d TitleData) (string, error) {
	titleCache.Lock()
	t := titleCache.t
	if t == nil || titleCache.text != text {
		var err error
		if t, err = parseTemplate("title", text); err != nil {
			titleCache.Unlock()
			return "", err
		}
		titleCache.text, titleCache.t = text, t
	}
	titleCache.Unlock()
	return execTitle(t, d)
}

// MaxTitle bounds an incident's title, in characters: a rendered title
// template is cut there, and an import refuses a longer one.
const MaxTitle = 500

func execTitle(t *template.Template, d TitleData) (string, error) {
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return "", err
	}
	s := strings.Join(strings.Fields(b.String()), " ")
	if r := []rune(s); len(r) > MaxTitle {
		s = string(r[:MaxTitle])
	}
	return s, nil
}

// RenderStatusUpdate renders a status update for an incident.
func RenderStatusUpdate(text string, d StatusUpdateData) (string, error) {
	t, err := parseTemplate("status_update", text)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return "", err
	}
	return b.String(), nil
}

// AnnotationBurnRate is the annotation in which the rule generator writes
// a burn-rate alert's factor (rulegen.AnnotationBurnRate): TitleData.BurnRate.
const AnnotationBurnRate = "burn_rate_threshold"
