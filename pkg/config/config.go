// Package config loads sred.yml, the configuration file of the sred daemon.
//
// Decoding is strict (unknown fields are errors). Every section type sets its
// defaults and validates itself in UnmarshalYAML, in the Prometheus style:
//
//	func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
//		*c = DefaultConfig
//		type plain Config
//		if err := unmarshal((*plain)(c)); err != nil {
//			return err
//		}
//		return c.validate()
//	}
//
// The core sections (CoreSections) are decoded by Load; every other
// top-level section belongs to a subsystem, which decodes it with Decode into
// its own type (package app lists the subsystems). This package imports no
// subsystem.
//
// Section types must use this function-style signature (not the yaml.v3
// *yaml.Node one): yaml.v3 only keeps KnownFields strictness through the
// function style, so a *yaml.Node unmarshaler would silently accept typos.
//
// Relative file paths are resolved against the directory of the config file
// (Config.BaseDir); secrets print as <secret> when the config is marshalled.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/secretfile"
	"github.com/rootuip/sre/pkg/yamlerr"
)

// Config is sred.yml: the core sections, decoded and validated here, and
// the raw text of the others, which belong to subsystems: each subsystem
// decodes and validates its own sections with Decode (see package app).
type Config struct {
	Global       GlobalConfig       `yaml:"global"`
	Webhook      WebhookConfig      `yaml:"webhook"`
	Incidents    IncidentsConfig    `yaml:"incidents"`
	Alertmanager AlertmanagerConfig `yaml:"alertmanager"`
	Prometheus   PrometheusConfig   `yaml:"prometheus"`

	// Other holds the subsystems' sections as found in the file; Load
	// rejects a section that no subsystem owns.
	Other map[string]yaml.Node `yaml:",inline"`

	// BaseDir is the directory of the config file ("" when loaded from
	// bytes): subsystems resolve their own relative paths and globs against it.
	BaseDir string `yaml:"-"`

	raw  []byte // the file, for Decode
	file string // its path as given to LoadFile ("" from Load), for Decode's errors
}

// CoreSections are the top-level sections decoded by this package; every
// other section belongs to a subsystem.
var CoreSections = []string{"global", "webhook", "incidents", "alertmanager", "prometheus"}

// GlobalConfig is the `global` section.
type GlobalConfig struct {
	// ExternalURL is the URL under which users reach sred (links in
	// notifications and status updates).
	ExternalURL string `yaml:"external_url,omitempty"`
	// IncidentIDPrefix prefixes incident IDs: INC gives INC-2026-0001.
	IncidentIDPrefix string `yaml:"incident_id_prefix"`
}

// DefaultGlobalConfig holds the defaults of the `global` section.
var DefaultGlobalConfig = GlobalConfig{IncidentIDPrefix: "INC"}

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *GlobalConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultGlobalConfig
	type plain GlobalConfig
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	if c.ExternalURL != "" {
		if err := checkURL(c.ExternalURL); err != nil {
			return fmt.Errorf("global: external_url: %w", err)
		}
	}
	if c.IncidentIDPrefix == "" {
		return errors.New("global: incident_id_prefix must not be empty")
	}
	for _, r := range c.IncidentIDPrefix {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return fmt.Errorf("global: incident_id_prefix %q must contain only letters and digits", c.IncidentIDPrefix)
		}
	}
	return nil
}

// WebhookConfig is the `webhook` section: how the Alertmanager webhook
// endpoint authenticates and limits deliveries.
type WebhookConfig struct {
	// BearerToken, if set, must be presented as "Authorization: Bearer ...",
	// as Alertmanager sends it with http_config.authorization.
	BearerToken commoncfg.Secret `yaml:"bearer_token,omitempty"`
	// BearerTokenFile reads the token from a file (relative to the config file).
	BearerTokenFile string `yaml:"bearer_token_file,omitempty"`
	// MaxBodyBytes bounds a delivery's body; larger bodies get 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// Limits bound label, annotation and group sizes (limits.Webhook says
	// which are truncated and which refused).
	Limits limits.Webhook `yaml:"limits"`
}

// DefaultWebhookConfig holds the defaults of the `webhook` section.
var DefaultWebhookConfig = WebhookConfig{MaxBodyBytes: limits.DefaultWebhookBodyBytes, Limits: limits.DefaultWebhook}

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *WebhookConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultWebhookConfig
	type plain WebhookConfig
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	if c.BearerToken != "" && c.BearerTokenFile != "" {
		return errors.New("webhook: at most one of bearer_token and bearer_token_file must be set")
	}
	if c.MaxBodyBytes <= 0 {
		return fmt.Errorf("webhook: max_body_bytes must be positive, got %d", c.MaxBodyBytes)
	}
	return c.Limits.Validate()
}

// Token returns the bearer token deliveries must present: bearer_token,
// or bearer_token_file, read at each use so that a rotated token is in
// force without a reload (the zero Source when neither is set).
func (c WebhookConfig) Token() secretfile.Source {
	if c.BearerTokenFile != "" {
		return secretfile.FromFile(c.BearerTokenFile)
	}
	return secretfile.Inline(string(c.BearerToken))
}

// IncidentsConfig is the `incidents` section: how alerts map to incidents.
type IncidentsConfig struct {
	// ServiceLabels are tried in order to name an incident's service.
	ServiceLabels []string `yaml:"service_labels"`
	// SeverityLabel is the alert label carrying the severity.
	SeverityLabel string `yaml:"severity_label"`
	// SeverityMap maps label values (case-insensitive) to severities.
	SeverityMap map[string]incident.Severity `yaml:"severity_map"`
	// DefaultSeverity applies when the label is missing or unmapped.
	DefaultSeverity incident.Severity `yaml:"default_severity"`
	// AutoResolve resolves an incident when all its alerts have resolved.
	AutoResolve bool `yaml:"auto_resolve"`
	// AutoResolveAfter resolves an open incident whose alerts are still
	// firing in sred's view but whose Alertmanager group has sent no
	// delivery for this long (its resolve was lost). 0 turns it off. It must
	// exceed Alertmanager's repeat_interval for the incident's route.
	AutoResolveAfter model.Duration `yaml:"auto_resolve_after,omitempty"`
	// FlapWindow: an incident that fires again within this time of its
	// resolution re-opens, flagged as flapping, instead of opening a new one.
	FlapWindow model.Duration `yaml:"flap_window"`
	// FlapThreshold damps a flapping incident: the re-opening (each within
	// FlapWindow of its resolution) that brings its re-openings to this
	// number, and every later one, do not restart its escalation (0: never).
	FlapThreshold int `yaml:"flap_threshold"`
	// TitleTemplate is a Go text/template for incident titles (see docs/sred.md).
	TitleTemplate string `yaml:"title_template"`
	// StatusUpdateTemplate is a Go text/template for status updates.
	StatusUpdateTemplate string `yaml:"status_update_template"`
	// MetricServices, when set, are the only service label values of the
	// incident statistics on /metrics; every other service counts under
	// service="other".
	MetricServices []string `yaml:"metric_services,omitempty"`
	// MaxMetricServices caps the service label values of the incident
	// statistics when MetricServices is empty: the services with the most
	// incidents keep their name, the rest count under service="other".
	MaxMetricServices int `yaml:"max_metric_services"`
}

// DefaultIncidentsConfig holds the defaults of the `incidents` section.
var DefaultIncidentsConfig = IncidentsConfig{
	ServiceLabels: []string{"service", "job"},
	SeverityLabel: "severity",
	SeverityMap: map[string]incident.Severity{
		"critical": incident.SeverityCritical,
		"page":     incident.SeverityCritical,
		"high":     incident.SeverityHigh,
		"error":    incident.SeverityHigh,
		"warning":  incident.SeverityMedium,
		"medium":   incident.SeverityMedium,
		"low":      incident.SeverityLow,
		"info":     incident.SeverityLow,
	},
	DefaultSeverity:      incident.SeverityMedium,
	AutoResolve:          true,
	FlapWindow:           model.Duration(time.Hour),
	FlapThreshold:        2,
	TitleTemplate:        incident.DefaultTitleTemplate,
	StatusUpdateTemplate: incident.DefaultStatusUpdateTemplate,
	MaxMetricServices:    100,
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *IncidentsConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultIncidentsConfig
	c.ServiceLabels = nil
	c.SeverityMap = nil
	type plain IncidentsConfig
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	if c.ServiceLabels == nil {
		c.ServiceLabels = append([]string(nil), DefaultIncidentsConfig.ServiceLabels...)
	}
	if c.SeverityMap == nil {
		c.SeverityMap = map[string]incident.Severity{}
		for k, v := range DefaultIncidentsConfig.SeverityMap {
			c.SeverityMap[k] = v
		}
	}
	return c.validate()
}

func (c *IncidentsConfig) validate() error {
	if c.MaxMetricServices < 1 {
		return fmt.Errorf("incidents: max_metric_services must be at least 1, got %d", c.MaxMetricServices)
	}
	for _, s := range c.MetricServices {
		if s == "" {
			return errors.New("incidents: metric_services: empty service name")
		}
	}
	if len(c.ServiceLabels) == 0 {
		return errors.New("incidents: service_labels must not be empty")
	}
	for _, l := range c.ServiceLabels {
		if !model.LabelName(l).IsValid() {
			return fmt.Errorf("incidents: service_labels: invalid label name %q", l)
		}
	}
	if !model.LabelName(c.SeverityLabel).IsValid() {
		return fmt.Errorf("incidents: severity_label: invalid label name %q", c.SeverityLabel)
	}
	norm := make(map[string]incident.Severity, len(c.SeverityMap))
	keys := make([]string, 0, len(c.SeverityMap))
	for k := range c.SeverityMap {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		sev, err := incident.ParseSeverity(string(c.SeverityMap[k]))
		if err != nil {
			return fmt.Errorf("incidents: severity_map[%q]: %w", k, err)
		}
		lk := strings.ToLower(k)
		if prev, ok := norm[lk]; ok && prev != sev {
			return fmt.Errorf("incidents: severity_map: %q is mapped twice (keys are case-insensitive)", lk)
		}
		norm[lk] = sev
	}
	c.SeverityMap = norm
	sev, err := incident.ParseSeverity(string(c.DefaultSeverity))
	if err != nil {
		return fmt.Errorf("incidents: default_severity: %w", err)
	}
	c.DefaultSeverity = sev
	if c.FlapWindow < 0 {
		return fmt.Errorf("incidents: flap_window must not be negative, got %s", c.FlapWindow)
	}
	if c.FlapThreshold < 0 {
		return fmt.Errorf("incidents: flap_threshold must not be negative, got %d", c.FlapThreshold)
	}
	if c.AutoResolveAfter < 0 || (c.AutoResolveAfter > 0 && time.Duration(c.AutoResolveAfter) < time.Minute) {
		return fmt.Errorf("incidents: auto_resolve_after must be 0 (off) or at least 1m, got %s", c.AutoResolveAfter)
	}
	if err := incident.CheckTitleTemplate(c.TitleTemplate); err != nil {
		return fmt.Errorf("incidents: title_template: %w", err)
	}
	if err := incident.CheckStatusUpdateTemplate(c.StatusUpdateTemplate); err != nil {
		return fmt.Errorf("incidents: status_update_template: %w", err)
	}
	return nil
}

// AlertmanagerConfig is the `alertmanager` section: how sred talks back to
// Alertmanager (reconciliation, silences, Watchdog). Empty URL disables it.
type AlertmanagerConfig struct {
	URL              string                     `yaml:"url,omitempty"`
	HTTPClientConfig commoncfg.HTTPClientConfig `yaml:",inline"`
	// ReconcileInterval is how often sred polls /api/v2/alerts to catch
	// resolves it never received (0 disables polling).
	ReconcileInterval model.Duration `yaml:"reconcile_interval"`
	// SilenceOnAck creates a silence for an incident's alerts when it is
	// acknowledged.
	SilenceOnAck bool `yaml:"silence_on_ack"`
	// SilenceOnSnooze creates a silence for an incident's alerts for the
	// duration of a snooze.
	SilenceOnSnooze bool `yaml:"silence_on_snooze"`
	// ExpireSilencesOnResolve expires the silences sred created for an
	// incident when it resolves; otherwise they run until their end.
	ExpireSilencesOnResolve bool `yaml:"expire_silences_on_resolve"`
	// Watchdog recognises an always-firing heartbeat alert.
	Watchdog WatchdogConfig `yaml:"watchdog"`
}

// DefaultAlertmanagerConfig holds the defaults of the `alertmanager` section.
var DefaultAlertmanagerConfig = AlertmanagerConfig{
	HTTPClientConfig:        commoncfg.DefaultHTTPClientConfig,
	ReconcileInterval:       model.Duration(time.Minute),
	ExpireSilencesOnResolve: true,
	Watchdog:                DefaultWatchdogConfig,
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *AlertmanagerConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultAlertmanagerConfig
	type plain AlertmanagerConfig
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	if c.URL != "" {
		if err := checkURL(c.URL); err != nil {
			return fmt.Errorf("alertmanager: url: %w", err)
		}
	}
	if err := c.HTTPClientConfig.Validate(); err != nil {
		return fmt.Errorf("alertmanager: %w", err)
	}
	if c.ReconcileInterval < 0 {
		return fmt.Errorf("alertmanager: reconcile_interval must not be negative, got %s", c.ReconcileInterval)
	}
	if c.URL == "" && c.SilenceOnAck {
		return errors.New("alertmanager: silence_on_ack needs alertmanager.url")
	}
	if c.URL == "" && c.SilenceOnSnooze {
		return errors.New("alertmanager: silence_on_snooze needs alertmanager.url")
	}
	return nil
}

// WatchdogConfig recognises the Watchdog alert, an always-firing heartbeat:
// when it has not arrived for Timeout, sred opens a CRITICAL incident. It is
// off by default (empty Alertname): turning it on without a Watchdog alert
// in Prometheus would open that incident Timeout after start.
type WatchdogConfig struct {
	// Alertname of the heartbeat alert; empty (the default) disables the check.
	Alertname string `yaml:"alertname"`
	// Timeout after the last Watchdog delivery before the pipeline is
	// considered broken. It must exceed Alertmanager's repeat_interval for it.
	Timeout model.Duration `yaml:"timeout"`
}

// DefaultWatchdogConfig holds the Watchdog defaults.
var DefaultWatchdogConfig = WatchdogConfig{Timeout: model.Duration(10 * time.Minute)}

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *WatchdogConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultWatchdogConfig
	type plain WatchdogConfig
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	if c.Alertname != "" && !model.LabelValue(c.Alertname).IsValid() {
		return fmt.Errorf("alertmanager: watchdog: invalid alertname %q", c.Alertname)
	}
	if c.Alertname != "" && c.Timeout <= 0 {
		return fmt.Errorf("alertmanager: watchdog: timeout must be positive, got %s", c.Timeout)
	}
	return nil
}

// PrometheusConfig is the `prometheus` section: the Prometheus server that
// budgets, SLA reports and runbook promql steps query.
type PrometheusConfig struct {
	URL              string                     `yaml:"url,omitempty"`
	HTTPClientConfig commoncfg.HTTPClientConfig `yaml:",inline"`
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *PrometheusConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = PrometheusConfig{HTTPClientConfig: commoncfg.DefaultHTTPClientConfig}
	type plain PrometheusConfig
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	if c.URL != "" {
		if err := checkURL(c.URL); err != nil {
			return fmt.Errorf("prometheus: url: %w", err)
		}
	}
	if err := c.HTTPClientConfig.Validate(); err != nil {
		return fmt.Errorf("prometheus: %w", err)
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q: missing host", s)
	}
	return nil
}

// Load parses a config from YAML bytes. Relative paths stay relative to the
// working directory (BaseDir is ""). sections names the top-level sections
// that subsystems own (besides CoreSections); any other top-level key is an
// error, as a typo must not be ignored.
func Load(b []byte, sections ...string) (*Config, error) {
	return load(b, "", sections)
}

// LoadFile parses the config file at path, resolving relative paths against
// its directory. sections are as for Load.
func LoadFile(path string, sections ...string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	cfg, err := load(b, filepath.Dir(abs), sections)
	if err == nil {
		cfg.file = path
		err = cfg.checkFiles()
	}
	if err != nil {
		// "load config sred.yml:4:9: ...", at the line and column of
		// the problem, as the errors of the SLO specs read: a check of a
		// core section ("incidents: auto_resolve_after must be ...") at
		// the value it quotes or the field it names, else at its
		// section's key.
		// An unknown field names its section and the field meant
		// ("unknown field \"intervall\" in global (did you mean
		// \"interval\"?)").
		return nil, fmt.Errorf("load config %w", yamlerr.FileSection(path, b, "", yamlerr.Fields(err, Config{}, sections...)))
	}
	return cfg, nil
}

func load(b []byte, baseDir string, sections []string) (*Config, error) {
	cfg := &Config{}
	// Sections absent from the file get their defaults by decoding an empty
	// document first; the real document then overrides what it sets.
	if err := decodeStrict([]byte(emptySections), cfg); err != nil {
		return nil, fmt.Errorf("defaults: %w", err)
	}
	if len(bytes.TrimSpace(b)) > 0 {
		if err := decodeStrict(b, cfg); err != nil {
			return nil, notSredConfig(b, err)
		}
	}
	known := map[string]bool{}
	for _, s := range sections {
		known[s] = true
	}
	if err := checkSections(b, cfg.Other, known); err != nil {
		return nil, notSredConfig(b, err)
	}
	cfg.raw = b
	cfg.BaseDir = baseDir
	if baseDir != "" {
		cfg.resolvePaths(baseDir)
	}
	return cfg, nil
}

// checkSections rejects the top-level sections that are neither core nor
// known, with the error yaml's strict decoding gives for an unknown field.
func checkSections(b []byte, other map[string]yaml.Node, known map[string]bool) error {
	bad := false
	for name := range other {
		if !known[name] {
			bad = true
		}
	}
	if !bad {
		return nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return err
	}
	var msgs []string
	if len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode {
		// A section a merge key brings in (<<: *shared) at its anchor.
		pairs, err := yamlerr.Pairs(doc.Content[0])
		if err != nil {
			return err
		}
		for _, p := range pairs {
			k := p.Key
			if _, ok := other[k.Value]; ok && !known[k.Value] {
				msgs = append(msgs, fmt.Sprintf("line %d: field %s not found in type config.Config", k.Line, k.Value))
			}
		}
	}
	return &yaml.TypeError{Errors: msgs}
}

// Decode decodes the top-level section name into v (a pointer) strictly:
// unknown fields are errors. Errors read "file:line:col: msg", one problem
// a line, as those of the core sections and of the SLO specs do
// (yamlerr.FileSection: a problem the decoder cannot place is placed at the
// value it quotes, else at the section's key); from Load (no file) they
// read "line N: msg". A section
// absent from the file, or empty, is decoded from "{}", so that v's
// UnmarshalYAML sets its defaults. Subsystems call it from their Load.
func (c *Config) Decode(name string, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("decode section %s: want a non-nil pointer, got %T", name, v)
	}
	// A document type with this one section as a field and the others
	// inline: decoding the whole file into it keeps yaml's strictness and
	// line numbers inside the section.
	doc := reflect.StructOf([]reflect.StructField{
		{Name: "Section", Type: rv.Type().Elem(), Tag: reflect.StructTag(`yaml:"` + name + `"`)},
		{Name: "Other", Type: reflect.TypeFor[map[string]yaml.Node](), Tag: `yaml:",inline"`},
	})
	d := reflect.New(doc)
	if err := decodeStrict([]byte(name+": {}\n"), d.Interface()); err != nil {
		return fmt.Errorf("defaults: %w", err)
	}
	if _, ok := c.Other[name]; ok {
		if err := decodeStrict(c.raw, d.Interface()); err != nil {
			if c.file != "" {
				return yamlerr.FileSection(c.file, c.raw, name, yamlerr.Fields(err, d.Interface()))
			}
			return err
		}
	}
	rv.Elem().Set(d.Elem().Field(0))
	return nil
}

// Locate positions the error of a check a subsystem makes after decoding
// its sections (a policy naming a user the oncall section lacks, a
// missing secret file): each line at the node of the file it names, found
// in the section its leading path names or else in sections, as
// yamlerr.FileChecks says ("sred.yml:12:20: escalation: policies[0] (p):
// levels[1].users[0]: unknown user \"nobody\""); a line naming no node reads
// "sred.yml: msg". From Load (no file) err is returned as it is.
func (c *Config) Locate(err error, sections ...string) error {
	if err == nil || c.file == "" {
		return err
	}
	return yamlerr.FileChecks(c.file, c.raw, sections, err)
}

// emptySections lists every core section: each gets its defaults from its
// UnmarshalYAML even when absent from the file, so an empty section must be
// valid (usually meaning "feature off").
const emptySections = `
global: {}
webhook: {}
incidents: {}
alertmanager: {}
prometheus: {}
`

func decodeStrict(b []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		// A syntax error at the line of the problem, not of the construct
		// it is in.
		return yamlerr.Located(b, err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("config must hold a single YAML document")
	}
	return nil
}

// ResolvePath returns p joined to BaseDir when p is relative.
func (c *Config) ResolvePath(p string) string {
	if p == "" || filepath.IsAbs(p) || c.BaseDir == "" {
		return p
	}
	return filepath.Join(c.BaseDir, p)
}

func (c *Config) resolvePaths(dir string) {
	c.Webhook.BearerTokenFile = c.ResolvePath(c.Webhook.BearerTokenFile)
	c.Alertmanager.HTTPClientConfig.SetDirectory(dir)
	c.Prometheus.HTTPClientConfig.SetDirectory(dir)
}

// String returns the core sections as YAML with secrets hidden (the
// subsystems' sections are left out: only their own types hide secrets).
func (c *Config) String() string {
	core := *c
	core.Other = nil
	b, err := yaml.Marshal(&core)
	if err != nil {
		return fmt.Sprintf("<error creating config string: %s>", err)
	}
	return string(b)
}
