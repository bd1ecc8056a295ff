package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/analysis"
	"github.com/rootuip/sre/pkg/parallel"
	"github.com/rootuip/sre/pkg/rulegen"
	"github.com/rootuip/sre/pkg/scaling"
	"github.com/rootuip/sre/pkg/slo"
	// Sloth, OpenSLO and Pyrra files load into the same model.
	_ "github.com/rootuip/sre/pkg/slo/openslo"
	_ "github.com/rootuip/sre/pkg/slo/pyrra"
	_ "github.com/rootuip/sre/pkg/slo/sloth"
)

func init() {
	registerCommand(10, func(app *kingpin.Application) map[string]func(*Env) error {
		o := generateOptions{promRuleLabels: map[string]string{}}
		cmd := app.Command("generate", "Compile SLO specs into Prometheus rule files (one per service).")
		cmd.Flag("input", "SLO spec file or directory (repeatable). Reads sre.rootuip.io/v1, Sloth prometheus/v1 (and its Kubernetes object sloth.slok.dev/v1), OpenSLO v1 and Pyrra pyrra.dev/v1alpha1.").Short('i').StringsVar(&o.inputs)
		cmd.Flag("scaling", "Scaling policy file or directory (repeatable): render each policy with a Kubernetes target as a KEDA ScaledObject and an HPA v2 (as srectl scaling generate).").StringsVar(&o.scaling)
		cmd.Flag("scaling.prometheus-address", "Prometheus server of the KEDA triggers.").Default("http://prometheus.monitoring.svc:9090").StringVar(&o.scalingProm)
		cmd.Flag("output", "Directory for the rule files, or - for standard output.").Short('o').Default("-").StringVar(&o.output)
		cmd.Flag("tests", "Also write a promtool test suite per SLO into this directory.").StringVar(&o.tests)
		cmd.Flag("prometheus-rule", "Write prometheus-operator PrometheusRule objects instead of plain rule files.").BoolVar(&o.promRule)
		cmd.Flag("prometheus-rule.label", "Label of the PrometheusRule objects (repeatable, name=value).").StringMapVar(&o.promRuleLabels)
		cmd.Flag("inhibit-rules", "Write Alertmanager inhibit_rules (a page silences the same SLO's tickets) to this file, or - for standard output.").IsSetByUser(&o.inhibitSet).StringVar(&o.inhibit)
		cmd.Flag("argo-rollouts", "Also write an Argo Rollouts AnalysisTemplate per service (the SLO burn-rate checks, no call to sred) into this directory.").PlaceHolder("DIR").StringVar(&o.argo)
		cmd.Flag("flagger", "Also write the Flagger MetricTemplates of each service (the SLO burn-rate checks) into this directory.").PlaceHolder("DIR").StringVar(&o.flagger)
		cmd.Flag("flagger.namespace", "Namespace of the Flagger MetricTemplates (none: the Canary's).").StringVar(&o.flaggerNS)
		cmd.Flag("rollouts.prometheus-address", "Prometheus the Argo Rollouts and Flagger templates query.").Default(analysis.DefaultPrometheusAddress).StringVar(&o.rolloutsProm)
		cmd.Flag("quiet", "Do not print the cost and cardinality estimate.").Short('q').BoolVar(&o.quiet)
		return map[string]func(*Env) error{"generate": func(env *Env) error { return runGenerate(env, o) }}
	})
}

type generateOptions struct {
	inputs         []string
	output         string
	tests          string
	promRule       bool
	promRuleLabels map[string]string
	inhibit        string
	inhibitSet     bool
	argo           string
	flagger        string
	flaggerNS      string
	rolloutsProm   string
	quiet          bool
	scaling        []string
	scalingProm    string
}

func runGenerate(env *Env, o generateOptions) error {
	// kingpin reads a lone "-" argument as the empty string.
	if o.output == "" {
		o.output = "-"
	}
	if o.inhibitSet && o.inhibit == "" {
		o.inhibit = "-"
	}
	if len(o.inputs) == 0 && len(o.scaling) == 0 {
		return &ExitError{Code: 2, Err: errors.New("required flag(s) '--input' (or --scaling) not provided")}
	}
	if len(o.scaling) > 0 {
		if err := runScalingGenerate(env, o.scaling, o.output, []string{"keda", "hpa"}, scaling.RenderOptions{PrometheusAddress: o.scalingProm}); err != nil {
			return err
		}
		if len(o.inputs) == 0 {
			return nil
		}
		if o.output == "-" {
			io.WriteString(env.Stdout, "---\n")
		}
	}
	if o.tests != "" && o.output == "-" {
		return &ExitError{Code: 2, Err: errors.New("--tests needs -o DIR: the suites reference the rule files")}
	}
	if o.tests != "" && o.promRule {
		return &ExitError{Code: 2, Err: errors.New("--tests needs plain rule files, not --prometheus-rule: promtool test rules cannot read PrometheusRule objects (generate the suites in a second run, with -o DIR and --tests, without --prometheus-rule)")}
	}
	if err := checkOutputs(o); err != nil {
		return &ExitError{Code: 2, Err: err}
	}
	specs, err := slo.LoadFiles(o.inputs...)
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	printWarnings(env, specs)
	files, err := rulegen.Generate(specs)
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	if o.promRule {
		if err := rulegen.CheckPrometheusRuleNames(files); err != nil {
			return &ExitError{Code: 1, Err: fmt.Errorf("generate: %w", err)}
		}
	}
	// Everything is rendered before anything is written: an error leaves
	// the output directories as they were.
	// Files are encoded and checked in parallel; the first error in file
	// order is reported, as one after the other.
	rendered := make([][]byte, len(files))
	errs := make([]error, len(files))
	parallel.ForEach(len(files), func(i int) {
		if o.promRule {
			rendered[i], errs[i] = files[i].MarshalPrometheusRule(o.promRuleLabels)
		} else {
			rendered[i], errs[i] = files[i].Marshal()
		}
	})
	outputs := make(map[string][]byte, len(files))
	order := make([]string, 0, len(files))
	// API.yml and api.yml are one file on case-insensitive file systems
	// (macOS, Windows): one service's rules would replace the other's.
	fileOf := map[string]*rulegen.File{}
	for i, f := range files {
		if errs[i] != nil {
			return errs[i]
		}
		if other, ok := fileOf[strings.ToLower(f.Name)]; ok && o.output != "-" {
			return &ExitError{Code: 1, Err: fmt.Errorf("generate: the rule files of services %q and %q would be %s and %s, one file on case-insensitive file systems (macOS, Windows): rename one", other.Service, f.Service, other.Name, f.Name)}
		}
		fileOf[strings.ToLower(f.Name)] = f
		outputs[f.Name] = rendered[i]
		order = append(order, f.Name)
	}
	var suites map[string][]byte
	if o.tests != "" {
		suites = map[string][]byte{}
		suiteOf := map[string]string{} // file name -> service/SLO
		for _, s := range specs {
			rel, err := filepath.Rel(o.tests, filepath.Join(o.output, s.Service+".yml"))
			if err != nil {
				return fmt.Errorf("tests: %w", err)
			}
			for i := range s.SLOs {
				suite, err := rulegen.BuildSuite(filepath.ToSlash(rel), s, &s.SLOs[i])
				if errors.Is(err, rulegen.ErrNoFixture) {
					fmt.Fprintf(env.Stderr, "no test suite for %s/%s: %v\n", s.Service, s.SLOs[i].Name, err)
					continue
				}
				if err != nil {
					return fmt.Errorf("test suite of %s/%s: %w", s.Service, s.SLOs[i].Name, err)
				}
				data, err := suite.Marshal()
				if err != nil {
					return fmt.Errorf("test suite of %s/%s: %w", s.Service, s.SLOs[i].Name, err)
				}
				name, id := rulegen.SuiteFileName(s.Service, s.SLOs[i].Name), s.Service+"/"+s.SLOs[i].Name
				// Compared in lower case: one file on case-insensitive
				// file systems.
				if other, ok := suiteOf[strings.ToLower(name)]; ok {
					return &ExitError{Code: 1, Err: fmt.Errorf("tests: the test suites of SLOs %s and %s would both be %s: rename one of them", other, id, filepath.Join(o.tests, name))}
				}
				suiteOf[strings.ToLower(name)] = id
				suites[name] = data
			}
		}
	}
	var inhibit []byte
	if o.inhibit != "" {
		if inhibit, err = rulegen.MarshalInhibitRules(rulegen.InhibitRules(specs)); err != nil {
			return err
		}
	}
	engines := map[string]map[string][]byte{}
	if o.argo != "" {
		gen, err := analysis.ArgoAnalysisTemplates(specs, o.rolloutsProm)
		if err != nil {
			return fmt.Errorf("argo rollouts templates: %w", err)
		}
		engines[o.argo] = generatedFiles(gen)
	}
	if o.flagger != "" {
		gen, err := analysis.FlaggerMetricTemplates(specs, o.rolloutsProm, o.flaggerNS)
		if err != nil {
			return fmt.Errorf("flagger templates: %w", err)
		}
		engines[o.flagger] = generatedFiles(gen)
	}

	if o.output == "-" {
		for i, name := range order {
			if i > 0 {
				io.WriteString(env.Stdout, "---\n")
			}
			env.Stdout.Write(outputs[name])
		}
		if len(order) > 1 && !o.promRule {
			// kubectl applies every document of a stream; Prometheus and
			// promtool read the first of a rule file and drop the others
			// (promtool check rules still says SUCCESS).
			fmt.Fprintf(env.Stderr, "srectl: standard output holds %d rule files (%s), one YAML document each: Prometheus and promtool read only the first document of a rule file, so redirected to one file the others are lost; -o DIR writes one file each\n",
				len(order), strings.Join(order, ", "))
		}
	} else if err := writeGenerated(o.output, outputs); err != nil {
		return err
	}
	if suites != nil {
		if err := writeGenerated(o.tests, suites); err != nil {
			return err
		}
	}
	for dir, files := range engines {
		if err := writeGenerated(dir, files); err != nil {
			return err
		}
	}
	if o.inhibit == "-" {
		if o.output == "-" {
			io.WriteString(env.Stdout, "---\n")
		}
		env.Stdout.Write(inhibit)
	} else if o.inhibit != "" {
		if err := os.WriteFile(o.inhibit, inhibit, 0o644); err != nil {
			return fmt.Errorf("write inhibit rules: %w", err)
		}
	}

	if !o.quiet {
		printEstimate(env.Stderr, specs)
	}
	return nil
}

// checkOutputs refuses, before anything is read or written, two output
// options naming the same directory (one would remove or overwrite the
// other's files: rule files are stale test suites to --tests), and an
// output that cannot be written: a directory that is a file, or an
// inhibit rules file in a directory that does not exist.
func checkOutputs(o generateOptions) error {
	type output struct{ flag, dir string }
	var dirs []output
	for _, d := range []output{{"-o", o.output}, {"--tests", o.tests}, {"--argo-rollouts", o.argo}, {"--flagger", o.flagger}} {
		if d.dir != "" && d.dir != "-" {
			dirs = append(dirs, d)
		}
	}
	seen := map[string]output{}
	for _, d := range dirs {
		p, err := samePath(d.dir)
		if err != nil {
			return fmt.Errorf("%s %s: %w", d.flag, d.dir, err)
		}
		if other, ok := seen[p]; ok {
			return fmt.Errorf("%s and %s name the same directory %s: each needs its own (the generated files of one would replace or remove the other's)", other.flag, d.flag, d.dir)
		}
		seen[p] = d
		st, err := os.Stat(d.dir)
		if err == nil && !st.IsDir() {
			return fmt.Errorf("%s %s: not a directory", d.flag, d.dir)
		}
		// A new directory named like a file (-o rules.yml, as sloth
		// generate -o takes a file) is a mistake: it made a directory
		// rules.yml holding api.yml.
		if errors.Is(err, fs.ErrNotExist) && fileLike(d.dir) {
			return fmt.Errorf("%s %s: %s names a directory, which srectl creates to write a file per spec into, and this one would be named like a file: name a directory (%s %s)",
				d.flag, d.dir, d.flag, d.flag, strings.TrimSuffix(d.dir, filepath.Ext(d.dir)))
		}
	}
	if o.inhibit != "" && o.inhibit != "-" {
		if st, err := os.Stat(o.inhibit); err == nil && st.IsDir() {
			return fmt.Errorf("--inhibit-rules %s: is a directory (name a file)", o.inhibit)
		}
		dir := filepath.Dir(o.inhibit)
		st, err := os.Stat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("--inhibit-rules %s: directory %s does not exist", o.inhibit, dir)
		}
		if err != nil {
			return fmt.Errorf("--inhibit-rules %s: %w", o.inhibit, err)
		}
		if !st.IsDir() {
			return fmt.Errorf("--inhibit-rules %s: %s is not a directory", o.inhibit, dir)
		}
	}
	return nil
}

// fileLike reports whether a path ends in the extension of a file srectl
// reads or writes (.yml, .yaml, .json).
func fileLike(p string) bool {
	switch strings.ToLower(filepath.Ext(p)) {
	case ".yml", ".yaml", ".json":
		return true
	}
	return false
}

// samePath is the cleaned absolute form of a path, with symbolic links
// resolved as far as the path exists, to compare output directories.
func samePath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	// Resolve the longest existing prefix; keep the rest as written.
	rest := ""
	for cur := abs; ; {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest), nil
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return abs, nil
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

func generatedFiles(gen []analysis.Generated) map[string][]byte {
	out := make(map[string][]byte, len(gen))
	for _, g := range gen {
		out[g.Name] = g.Data
	}
	return out
}

// writeGenerated writes files into dir and removes generated files (those
// starting with rulegen.Header) that are no longer produced. Unchanged files
// are not rewritten.
func writeGenerated(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write rules: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("write rules: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yml") {
			continue
		}
		if _, ok := files[e.Name()]; ok {
			continue
		}
		p := filepath.Join(dir, e.Name())
		old, err := os.ReadFile(p)
		if err == nil && bytes.HasPrefix(old, []byte(rulegen.Header)) {
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("remove stale %s: %w", p, err)
			}
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(dir, n)
		if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, files[n]) {
			continue
		}
		if err := os.WriteFile(p, files[n], 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	return nil
}

func printEstimate(w io.Writer, specs []*slo.Spec) {
	// tabwriter writes every cell and its padding separately: unbuffered,
	// that was some 20 write system calls per SLO on standard error.
	bw := bufio.NewWriterSize(w, 64<<10)
	defer bw.Flush()
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tSLO\tRECORDING\tALERTING\tSERIES/GROUP\tSAMPLES READ/EVAL/GROUP\tOUTAGE PAGES IN")
	var tot rulegen.Estimate
	for _, s := range specs {
		for i := range s.SLOs {
			e := rulegen.EstimateSLO(&s.SLOs[i])
			tot.Add(e)
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\n", s.Service, s.SLOs[i].Name, e.RecordingRules, e.AlertingRules, e.SeriesPerGroup, e.SamplesPerEval, detection(&s.SLOs[i]))
		}
	}
	fmt.Fprintf(tw, "total\t\t%d\t%d\t%d\t%d\t\n", tot.RecordingRules, tot.AlertingRules, tot.SeriesPerGroup, tot.SamplesPerEval)
	tw.Flush()
}

// detection is the time a total outage takes to page (SLO.DetectionTime),
// or "-" without a page tier.
func detection(o *slo.SLO) string {
	d := o.DetectionTime()
	if d == 0 {
		return "-"
	}
	return model.Duration(d).String()
}
