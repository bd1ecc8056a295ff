package slo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"

	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/parallel"
	"github.com/rootuip/sre/pkg/yamlerr"
)

// Error is a problem in a spec file, at a line and column, about a field.
type Error struct {
	File   string
	Line   int
	Column int
	// Field is the path of the field, e.g. slos[0].objective.
	Field string
	Msg   string
}

func (e *Error) Error() string {
	file := e.File
	if file == "" {
		file = "<input>"
	}
	loc := file
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", file, e.Line, e.Column)
	}
	if e.Field == "" {
		return loc + ": " + e.Msg
	}
	return loc + ": " + e.Field + ": " + e.Msg
}

// Errors is a list of problems, one per line in its message.
type Errors []*Error

// MaxErrorsShown is how many errors Errors.Error lists before "and N
// more errors".
const MaxErrorsShown = 100

func (es Errors) Error() string {
	n := min(len(es), MaxErrorsShown)
	s := make([]string, n, n+1)
	for i, e := range es[:n] {
		s[i] = e.Error()
	}
	if more := len(es) - n; more > 0 {
		s = append(s, fmt.Sprintf("... and %d more errors", more))
	}
	return strings.Join(s, "\n")
}

func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// Importer reads another SLO format into specs. Importers register
// themselves with RegisterImporter (see packages sloth and openslo).
type Importer interface {
	// Name names the format, e.g. "sloth prometheus/v1".
	Name() string
	// Match reports whether a YAML document is in this format.
	Match(doc *yaml.Node) bool
	// Import converts the matching documents of one file.
	Import(file string, docs []*yaml.Node) ([]*Spec, error)
}

var (
	importersMu sync.RWMutex
	importers   []Importer
)

// RegisterImporter makes LoadFile, LoadDir and Parse read another format.
func RegisterImporter(i Importer) {
	importersMu.Lock()
	defer importersMu.Unlock()
	importers = append(importers, i)
}

// LoadFile reads and validates every spec in a YAML file (documents
// separated by ---).
func LoadFile(path string) ([]*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load SLO spec: %w", err)
	}
	return Parse(data, path)
}

// LoadDir reads every *.yml and *.yaml file under dir (recursively, in
// lexical order; the extension in any case, as Sloth), which must hold at
// least one, and validates that no (service, SLO) pair is defined twice.
// A path naming a file is read with LoadFile.
func LoadDir(dir string) ([]*Spec, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("load SLO specs: %w", err)
	}
	if !st.IsDir() {
		return LoadFile(dir)
	}
	// WalkDir does not follow a root that is a symbolic link (a directory
	// of specs linked from a checkout): walk the directory it names, and
	// name its files under dir.
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("load SLO specs: %w", err)
	}
	var files []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// As Sloth: the extension in any case (.yml, .YAML).
		if ext := strings.ToLower(filepath.Ext(p)); !d.IsDir() && (ext == ".yml" || ext == ".yaml") {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.Join(dir, rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load SLO specs: %w", err)
	}
	if len(files) == 0 {
		// As an empty file: generating nothing would remove every rule.
		return nil, Errors{{File: dir, Msg: "no SLO spec found (no .yml or .yaml file in the directory)"}}
	}
	sort.Strings(files)
	return LoadFiles(files...)
}

// LoadFiles reads files and directories, and checks that no (service, SLO)
// pair is defined twice across them.
func LoadFiles(paths ...string) ([]*Spec, error) {
	var (
		all  []*Spec
		errs Errors
	)
	// Files are read, decoded and validated in parallel (each on its own),
	// and their results taken in order, as one after the other.
	type loaded struct {
		specs []*Spec
		err   error
	}
	results := make([]loaded, len(paths))
	parallel.ForEach(len(paths), func(i int) {
		p := paths[i]
		if st, serr := os.Stat(p); serr == nil && st.IsDir() {
			results[i].specs, results[i].err = LoadDir(p)
		} else {
			results[i].specs, results[i].err = LoadFile(p)
		}
	})
	for _, r := range results {
		specs, err := r.specs, r.err
		if err != nil {
			var es Errors
			if errors.As(err, &es) {
				errs = append(errs, es...)
				continue
			}
			return nil, err
		}
		all = append(all, specs...)
	}
	errs = append(errs, checkUnique(all)...)
	if len(errs) > 0 {
		return nil, errs
	}
	return all, nil
}

func checkUnique(specs []*Spec) Errors {
	var errs Errors
	type where struct {
		file string
		line int
	}
	seen := map[string]where{}
	for _, s := range specs {
		for i := range s.SLOs {
			key := s.Service + "/" + s.SLOs[i].Name
			if w, ok := seen[key]; ok {
				errs = append(errs, s.errorAt(fmt.Sprintf("slos[%d].name", i), "SLO %q of service %q is already defined at %s:%d", s.SLOs[i].Name, s.Service, w.file, w.line))
				continue
			}
			seen[key] = where{s.File, s.SLOs[i].Line}
		}
	}
	return errs
}

// Parse reads and validates the specs in data; file names the source in errors.
func Parse(data []byte, file string) ([]*Spec, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, Errors{yamlError(data, file, err)}
		}
		// An empty document (a trailing ---, or one with only comments)
		// comes back as an empty null scalar: skip it, as Sloth does.
		if len(n.Content) == 0 || isEmptyDocument(n.Content[0]) {
			continue
		}
		docs = append(docs, n.Content[0])
	}
	if len(docs) == 0 {
		return nil, Errors{{File: file, Msg: "no SLO spec found (empty file)"}}
	}

	var (
		specs   []*Spec
		errs    Errors
		foreign = map[Importer][]*yaml.Node{}
		order   []Importer
	)
	importersMu.RLock()
	imps := append([]Importer(nil), importers...)
	importersMu.RUnlock()
docs:
	for _, doc := range docs {
		if doc.Kind == yaml.MappingNode && scalarField(doc, "apiVersion") == APIVersion {
			if e := otherKind(doc, file); e != nil {
				errs = append(errs, e)
				continue
			}
			s, err := decodeSpec(doc, file)
			if err != nil {
				errs = append(errs, err.(Errors)...)
				continue
			}
			specs = append(specs, s)
			continue
		}
		for _, imp := range imps {
			if imp.Match(doc) {
				if _, ok := foreign[imp]; !ok {
					order = append(order, imp)
				}
				foreign[imp] = append(foreign[imp], doc)
				continue docs
			}
		}
		errs = append(errs, unknownFormat(doc, file))
	}
	for _, imp := range order {
		ss, err := imp.Import(file, foreign[imp])
		if err != nil {
			var es Errors
			if errors.As(err, &es) {
				errs = append(errs, es...)
				continue
			}
			errs = append(errs, &Error{File: file, Msg: fmt.Sprintf("import %s: %v", imp.Name(), err)})
			continue
		}
		for _, s := range ss {
			if err := s.Validate(); err != nil {
				errs = append(errs, err.(Errors)...)
				continue
			}
			specs = append(specs, s)
		}
	}
	errs = append(errs, checkUnique(specs)...)
	if len(errs) > 0 {
		return nil, errs
	}
	return specs, nil
}

func isEmptyDocument(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null" && n.Value == "" && n.Style == 0
}

func unknownFormat(doc *yaml.Node, file string) *Error {
	e := &Error{File: file, Line: doc.Line, Column: doc.Column}
	if doc.Kind != yaml.MappingNode {
		e.Msg = "expected a mapping with apiVersion: " + APIVersion
		return e
	}
	v := scalarField(doc, "apiVersion")
	if v == "" {
		v = scalarField(doc, "version")
	}
	if v == "" {
		e.Field = "apiVersion"
		e.Msg = fmt.Sprintf("missing apiVersion (want %s)", APIVersion)
		if yamlerr.Lookup(doc, "groups") != nil {
			// srectl validate rules/, or a rule file next to the specs.
			e.Msg += ": this is a Prometheus rule file (groups:), not an SLO spec"
		} else if yamlerr.Lookup(doc, "webhook") != nil || yamlerr.Lookup(doc, "notifications") != nil || yamlerr.Lookup(doc, "escalation") != nil {
			// srectl validate sred.yml: its checker is another command.
			e.Msg += ": this is a sred configuration (webhook:, notifications:, escalation:), not an SLO spec; check it with srectl check config"
		} else {
			// srectl validate on another directory of examples/.
			for _, h := range otherFiles {
				if yamlerr.Lookup(doc, h.keys[0]) != nil && yamlerr.Lookup(doc, h.keys[1]) != nil {
					e.Msg += fmt.Sprintf(": this is %s (%s:, %s:), not an SLO spec; check it with %s", h.what, h.keys[0], h.keys[1], h.check)
					break
				}
			}
		}
		return e
	}
	if v == chaosAPIVersion {
		e.Field = "apiVersion"
		if n := yamlerr.Lookup(doc, "apiVersion"); n != nil {
			e.Line, e.Column = n.Line, n.Column
		}
		e.Msg = fmt.Sprintf("unsupported version %q: this is a chaos experiment, not an SLO spec; check it with srectl chaos validate", v)
		return e
	}
	e.Field = "apiVersion"
	if n := yamlerr.Lookup(doc, "apiVersion"); n != nil {
		e.Line, e.Column = n.Line, n.Column
	} else if n := yamlerr.Lookup(doc, "version"); n != nil {
		e.Field = "version"
		e.Line, e.Column = n.Line, n.Column
	}
	names := []string{APIVersion}
	importersMu.RLock()
	for _, imp := range importers {
		names = append(names, imp.Name())
	}
	importersMu.RUnlock()
	e.Msg = fmt.Sprintf("unsupported version %q (supported: %s)", v, strings.Join(names, ", "))
	return e
}

// otherFiles are the files of sred without an apiVersion that srectl
// validate may be given by mistake (srectl validate examples/runbooks/),
// told apart by two top-level keys, with the command that checks them.
var otherFiles = []struct {
	keys        [2]string
	what, check string
}{
	{[2]string{"route", "receivers"}, "an Alertmanager configuration", "amtool check-config"},
	{[2]string{"matchers", "steps"}, "a runbook", "srectl runbook validate"},
	{[2]string{"target", "metric"}, "a scaling policy", "srectl scaling check"},
	{[2]string{"service", "canary"}, "a rollout definition", "srectl rollout validate"},
	{[2]string{"service", "blue_green"}, "a rollout definition", "srectl rollout validate"},
}

// chaosAPIVersion is the apiVersion of chaos experiments (pkg/chaos).
const chaosAPIVersion = "chaos.sre.rootuip.io/v1"

// otherKind reports a document of apiVersion sre.rootuip.io/v1 whose kind
// is not ServiceLevelObjectives, before its fields are decoded: a rollout
// analysis (kind RolloutAnalysis) shares the apiVersion, and was reported
// field by field as unknown fields of an SLO spec.
func otherKind(doc *yaml.Node, file string) *Error {
	n := yamlerr.Lookup(doc, "kind")
	if n == nil || n.Kind != yaml.ScalarNode || n.Value == Kind {
		return nil
	}
	e := &Error{File: file, Line: n.Line, Column: n.Column, Field: "kind",
		Msg: fmt.Sprintf("unsupported kind %q (want %s)", n.Value, Kind)}
	if n.Value == "RolloutAnalysis" {
		e.Msg += ": this is a rollout analysis, not an SLO spec; sred loads it from analysis.spec_files of sred.yml: check it with srectl check config"
	}
	return e
}

// scalarField is the value of field key of mapping m as the decoder reads
// it (a merged field, an alias followed), "" when it is no scalar.
func scalarField(m *yaml.Node, key string) string {
	if n := yamlerr.Lookup(m, key); n != nil && n.Kind == yaml.ScalarNode {
		return n.Value
	}
	return ""
}

// decodeSpec decodes and validates one native document.
func decodeSpec(doc *yaml.Node, file string) (*Spec, error) {
	d := &decoder{file: file, pos: positions{}, durations: map[string]string{}, budget: aliasBudget(doc)}
	s := &Spec{}
	d.decode(doc, reflect.ValueOf(s).Elem(), "")
	if len(d.errs) > 0 {
		return nil, d.errs
	}
	for i := range s.SLOs {
		s.SLOs[i].periodText = d.durations[fmt.Sprintf("slos[%d].period", i)]
		if l := s.SLOs[i].SLI.Latency; l != nil {
			l.thresholdText = d.durations[fmt.Sprintf("slos[%d].sli.latency.threshold", i)]
		}
	}
	s.File, s.Line, s.Source, s.pos = file, doc.Line, APIVersion, d.pos
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}
