package notify

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/rootuip/sre/pkg/incident"
)

// Events of a notification (PagerDuty's event actions).
const (
	EventTrigger     = "trigger"
	EventAcknowledge = "acknowledge"
	EventResolve     = "resolve"
	// EventReminder reminds the acknowledger of an unresolved incident (never
	// sent to PagerDuty).
	EventReminder = "reminder"
	// EventAllClear tells everyone who was paged that the incident's SLO
	// stopped burning (PagerDuty gets a resolve instead).
	EventAllClear = "all_clear"
)

// Message is one notification to one destination, as stored in the outbox.
type Message struct {
	IncidentID string            `json:"incident_id"`
	Channel    string            `json:"channel"`
	Event      string            `json:"event"`
	User       string            `json:"user,omitempty"`
	To         string            `json:"to,omitempty"` // email address, phone number, push ID, Slack member
	Mentions   []string          `json:"mentions,omitempty"`
	Subject    string            `json:"subject"`
	Body       string            `json:"body"`
	Title      string            `json:"title"`
	Service    string            `json:"service,omitempty"`
	Severity   string            `json:"severity"`
	Level      int               `json:"level"`
	Labels     map[string]string `json:"labels,omitempty"`
	URL        string            `json:"url,omitempty"`
	AckURL     string            `json:"ack_url,omitempty"`
	Time       time.Time         `json:"time"`
}

// TemplateData is what subject_template and body_template render.
type TemplateData struct {
	ID         string
	Title      string
	Service    string
	Severity   string
	Status     string
	Labels     map[string]string
	Started    time.Time
	Impact     string
	Level      int
	Users      []string
	Actions    string
	NextUpdate time.Time
	URL        string
	AckURL     string
	// Sent is when the message is written: the default body gives the
	// date of a time on another day than it (see when).
	Sent time.Time
}

// DefaultSubject and DefaultBody give an incident status update.
const (
	DefaultSubject = `[{{ .Severity }}] Incident {{ .ID }}: {{ .Title }}`
	DefaultBody    = `🚨 [{{ .Severity }}] Incident: {{ .Title }}
ID: {{ .ID }}
Started: {{ when .Started .Sent }}
Impact: {{ if .Impact }}{{ .Impact }}{{ else }}being assessed{{ end }}
Actions: {{ .Actions }}
{{ if not .NextUpdate.IsZero }}Next Update: {{ when .NextUpdate .Sent }}
{{ end }}{{ if .URL }}Incident: {{ .URL }}
{{ end }}{{ if .AckURL }}Acknowledge: {{ .AckURL }}
{{ end }}`
)

var funcs = template.FuncMap{
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	"join":  strings.Join,
	"utc":   func(layout string, t time.Time) string { return t.UTC().Format(layout) },
	"when":  incident.When,
}

type templates struct{ subject, body *template.Template }

func parseTemplates(subject, body string) (*templates, error) {
	if subject == "" {
		subject = DefaultSubject
	}
	if body == "" {
		body = DefaultBody
	}
	s, err := template.New("subject").Funcs(funcs).Option("missingkey=error").Parse(subject)
	if err != nil {
		return nil, fmt.Errorf("subject_template: %w", err)
	}
	b, err := template.New("body").Funcs(funcs).Option("missingkey=error").Parse(body)
	if err != nil {
		return nil, fmt.Errorf("body_template: %w", err)
	}
	// Render once with sample data so that field typos fail at load time.
	sample := TemplateData{ID: "INC-2026-0001", Title: "API Service Degradation", Severity: "CRITICAL", Started: time.Unix(0, 0)}
	if err := s.Execute(new(bytes.Buffer), sample); err != nil {
		return nil, fmt.Errorf("subject_template: %w", err)
	}
	if err := b.Execute(new(bytes.Buffer), sample); err != nil {
		return nil, fmt.Errorf("body_template: %w", err)
	}
	return &templates{subject: s, body: b}, nil
}

// parsed holds the templates parsed for Render, by their text: every page
// of every incident renders one of the few configured pairs, and parsing
// (with its check against sample data) cost more than rendering. Parsed
// templates are safe to execute concurrently. It is emptied when it holds
// maxParsed pairs, which only many reloads with changed templates reach.
var parsed struct {
	sync.Mutex
	m map[[2]string]*templates
}

const maxParsed = 64

// cachedTemplates returns the parsed templates of subject and body.
func cachedTemplates(subject, body string) (*templates, error) {
	key := [2]string{subject, body}
	parsed.Lock()
	t := parsed.m[key]
	parsed.Unlock()
	if t != nil {
		return t, nil
	}
	t, err := parseTemplates(subject, body)
	if err != nil {
		return nil, err
	}
	parsed.Lock()
	if parsed.m == nil || len(parsed.m) >= maxParsed {
		parsed.m = map[[2]string]*templates{}
	}
	parsed.m[key] = t
	parsed.Unlock()
	return t, nil
}

// Render renders the subject and body of a message.
func (c *Config) Render(d TemplateData) (subject, body string, err error) {
	t, err := cachedTemplates(c.Subject, c.Body)
	if err != nil {
		return "", "", err
	}
	var sb, bb bytes.Buffer
	if err := t.subject.Execute(&sb, d); err != nil {
		return "", "", fmt.Errorf("render subject: %w", err)
	}
	if err := t.body.Execute(&bb, d); err != nil {
		return "", "", fmt.Errorf("render body: %w", err)
	}
	return strings.TrimSpace(sb.String()), bb.String(), nil
}

// AckClaims is what an acknowledge token carries.
type AckClaims struct {
	IncidentID string `json:"i"`
	User       string `json:"u"`
	Expires    int64  `json:"e"` // unix seconds
}

var b64 = base64.RawURLEncoding

// SignAck returns a token that lets user acknowledge the incident until exp.
func SignAck(key string, c AckClaims) (string, error) {
	if key == "" {
		return "", errors.New("no ack secret configured")
	}
	p, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, []byte(key))
	m.Write(p)
	return b64.EncodeToString(p) + "." + b64.EncodeToString(m.Sum(nil)), nil
}

// Errors of VerifyAck.
var (
	ErrAckTokenInvalid = errors.New("invalid acknowledge token")
	ErrAckTokenExpired = errors.New("acknowledge token expired")
)

// VerifyAck checks a token's signature and expiry.
func VerifyAck(key, token string, now time.Time) (AckClaims, error) {
	var c AckClaims
	if key == "" {
		return c, ErrAckTokenInvalid
	}
	p64, s64, ok := strings.Cut(token, ".")
	if !ok || len(token) > 2048 {
		return c, ErrAckTokenInvalid
	}
	p, err1 := b64.DecodeString(p64)
	sig, err2 := b64.DecodeString(s64)
	if err1 != nil || err2 != nil {
		return c, ErrAckTokenInvalid
	}
	m := hmac.New(sha256.New, []byte(key))
	m.Write(p)
	if !hmac.Equal(sig, m.Sum(nil)) {
		return c, ErrAckTokenInvalid
	}
	if err := json.Unmarshal(p, &c); err != nil || c.IncidentID == "" {
		return c, ErrAckTokenInvalid
	}
	if now.Unix() >= c.Expires {
		return c, ErrAckTokenExpired
	}
	return c, nil
}

// ProviderData is what a provider's body_template renders.
type ProviderData struct {
	Channel string // sms, phone or push
	To      string // phone number or push ID of the user
	From    string
	User    string
	Subject string
	Body    string
	// Text is the short text of an SMS: the subject and the acknowledge link.
	Text       string
	IncidentID string
	Title      string
	Service    string
	Severity   string
	Level      int
	URL        string
	AckURL     string
}

var providerFuncs = template.FuncMap{
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	"join":  strings.Join,
	// json encodes a value as JSON (strings come out quoted and escaped).
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"xml": xmlEscape,
}

func parseProviderTemplate(s string) (*template.Template, error) {
	t, err := template.New("body").Funcs(providerFuncs).Option("missingkey=error").Parse(s)
	if err != nil {
		return nil, fmt.Errorf("body_template: %w", err)
	}
	if err := t.Execute(new(bytes.Buffer), ProviderData{Channel: "sms", Subject: "x"}); err != nil {
		return nil, fmt.Errorf("body_template: %w", err)
	}
	return t, nil
}

// providerData is what a provider's body_template renders. The provider's
// limit applies whatever renders the text, so the alert text the template
// gets is cut as the default form's is (fit.go): .Subject and .Title to
// smsMaxUnits UTF-16 units for SMS, phoneSayMax characters for a call,
// pushTitleMax bytes for push; .Body to smsMaxUnits, phoneSayMax and
// pushBodyMax; each ending with … when cut. The rendered output itself is
// not cut: it is the operator's format (JSON, a form), which a cut would
// break.
func providerData(m *Message, from string) ProviderData {
	subjMax, bodyMax, c := providerLimits(m.Channel)
	return ProviderData{Channel: m.Channel, To: m.To, From: from, User: m.User, Subject: fitMarked(m.Subject, subjMax, c),
		Body: fitMarked(m.Body, bodyMax, c), Text: smsText(m), IncidentID: m.IncidentID, Title: fitMarked(m.Title, subjMax, c),
		Service: m.Service, Severity: m.Severity, Level: m.Level, URL: m.URL, AckURL: m.AckURL}
}

// providerLimits are the bounds of a provider channel's subject and body
// and their cost.
func providerLimits(channel string) (subject, body int, c cost) {
	switch channel {
	case ChannelSMS:
		return smsMaxUnits, smsMaxUnits, utf16Units
	case ChannelPhone:
		return phoneSayMax, phoneSayMax, func(rune) int { return 1 }
	}
	return pushTitleMax, pushBodyMax, bytesCost
}

// fitMarked returns s cut to max (fit), ending with cutMark within max
// when it was cut.
func fitMarked(s string, max int, c cost) string {
	f, cut := fit(s, max, c)
	if !cut {
		return s
	}
	f, _ = fit(f, max-size(cutMark, c), c)
	return f + cutMark
}

// smsText is the subject and the acknowledge link, at most smsMaxUnits
// UTF-16 units: the subject is cut (ending with …), the link kept whole.
func smsText(m *Message) string {
	link := ""
	if m.AckURL != "" {
		link = "\nAck: " + m.AckURL
	}
	subj, cut := fit(m.Subject, smsMaxUnits-size(link, utf16Units), utf16Units)
	if cut {
		subj, _ = fit(subj, smsMaxUnits-size(link, utf16Units)-len([]rune(cutMark)), utf16Units)
		subj += cutMark
	}
	return subj + link
}
