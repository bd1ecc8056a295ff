package cli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	amconfig "github.com/prometheus/alertmanager/config"
	amlabels "github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/rulegen"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/testutil"
)

// srectl runs srectl in-process and returns its exit code and outputs.
func srectl(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

// inRepo makes the repository root the working directory, so that paths
// (and the "# Source:" comments they produce) are the ones `make generate` uses.
func inRepo(t *testing.T) {
	t.Chdir(testutil.RepoRoot(t))
}

// listDir returns the relative paths of the files under dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	sort.Strings(out)
	return out
}

func parseRules(t *testing.T, name string, data []byte) *rulefmt.RuleGroups {
	t.Helper()
	rgs, errs := rulefmt.Parse(data, false, model.UTF8Validation, slo.Parser, promslog.NewNopLogger())
	require.Empty(t, errs, "%s does not load as a Prometheus rule file", name)
	return rgs
}

// `make generate` is this command: its output must be exactly what rules/
// and rules/tests hold, and pass the pinned promtool.
func TestGenerateDirectory(t *testing.T) {
	inRepo(t)
	out := t.TempDir()
	tests := filepath.Join(out, "tests")
	code, stdout, stderr := srectl(t, "generate", "-i", "examples/slos", "-o", out, "--tests", tests)
	require.Equal(t, 0, code, stderr)
	require.Empty(t, stdout, "rules go to -o, not to standard output")

	committed := listDir(t, "rules")
	require.Equal(t, committed, listDir(t, out), "the same files as rules/")
	for _, name := range committed {
		want, err := os.ReadFile(filepath.Join("rules", name))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(out, name))
		require.NoError(t, err)
		require.Equal(t, string(want), string(got), name)
	}
	for _, name := range []string{"api.yml", "checkout.yml", "ingest.yml"} {
		data, err := os.ReadFile(filepath.Join(out, name))
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(string(data), rulegen.Header), name)
		parseRules(t, name, data)
	}

	promtool := testutil.Tool(t, "promtool")
	rules, _ := filepath.Glob(filepath.Join(out, "*.yml"))
	res, err := exec.Command(promtool, append([]string{"check", "rules"}, rules...)...).CombinedOutput()
	require.NoError(t, err, string(res))

	// Generating again rewrites nothing (unchanged files keep their mtime).
	st1, err := os.Stat(filepath.Join(out, "api.yml"))
	require.NoError(t, err)
	code, _, stderr = srectl(t, "generate", "-q", "-i", "examples/slos", "-o", out, "--tests", tests)
	require.Equal(t, 0, code, stderr)
	st2, err := os.Stat(filepath.Join(out, "api.yml"))
	require.NoError(t, err)
	require.Equal(t, st1.ModTime(), st2.ModTime())
}

// Files generated for a service that is gone are removed; files a user
// put in the directory are kept.
func TestGenerateRemovesStale(t *testing.T) {
	inRepo(t)
	out := t.TempDir()
	stale := filepath.Join(out, "gone.yml")
	mine := filepath.Join(out, "handwritten.yml")
	require.NoError(t, os.WriteFile(stale, []byte(rulegen.Header+"groups: []\n"), 0o644))
	require.NoError(t, os.WriteFile(mine, []byte("groups: []\n"), 0o644))
	code, _, stderr := srectl(t, "generate", "-q", "-i", "examples/slos/api.yml", "-o", out)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, []string{"api.yml", "handwritten.yml"}, listDir(t, out))
}

func TestGenerateStdout(t *testing.T) {
	inRepo(t)
	code, stdout, stderr := srectl(t, "generate", "-q", "-i", "examples/slos")
	require.Equal(t, 0, code, stderr)
	// -q prints no estimate, and still warns that the documents are not
	// one rule file: Prometheus and promtool read the first one only.
	require.Equal(t, "srectl: standard output holds 3 rule files (api.yml, checkout.yml, ingest.yml), one YAML document each: "+
		"Prometheus and promtool read only the first document of a rule file, so redirected to one file the others are lost; -o DIR writes one file each\n", stderr)
	docs := strings.Split(stdout, "---\n")
	require.Len(t, docs, 3, "one document per service")
	for i, name := range []string{"api.yml", "checkout.yml", "ingest.yml"} {
		want, err := os.ReadFile(filepath.Join("rules", name))
		require.NoError(t, err)
		require.Equal(t, string(want), docs[i], "-o - writes what -o DIR writes")
		parseRules(t, name, []byte(docs[i]))
	}
	// What the warning says, as the pinned promtool shows it: the stream
	// redirected to one file checks as a success with the first service's
	// rules only.
	one := filepath.Join(t.TempDir(), "rules.yml")
	require.NoError(t, os.WriteFile(one, []byte(stdout), 0o644))
	res, err := exec.Command(testutil.Tool(t, "promtool"), "check", "rules", one).CombinedOutput()
	require.NoError(t, err, string(res))
	require.Contains(t, string(res), "only the first document is processed")
	apiRules := strings.Count(docs[0], "- record:") + strings.Count(docs[0], "- alert:")
	require.Contains(t, string(res), fmt.Sprintf("SUCCESS: %d rules found", apiRules))

	// -o - is the default.
	code, stdout2, stderr := srectl(t, "generate", "-q", "-i", "examples/slos")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, stdout, stdout2)
	code, stdout3, _ := srectl(t, "generate", "-q", "-i", "examples/slos", "-o", "-")
	require.Equal(t, 0, code)
	require.Equal(t, stdout, stdout3)
}

func TestGeneratePrometheusRule(t *testing.T) {
	inRepo(t)
	out := t.TempDir()
	code, _, stderr := srectl(t, "generate", "-q", "-i", "examples/slos", "-o", out,
		"--prometheus-rule", "--prometheus-rule.label", "release=prom", "--prometheus-rule.label", "team=sre")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, []string{"api.yml", "checkout.yml", "ingest.yml"}, listDir(t, out))
	for _, name := range listDir(t, out) {
		data, err := os.ReadFile(filepath.Join(out, name))
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(string(data), rulegen.Header), name)
		var obj struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
			Metadata   struct {
				Name   string            `yaml:"name"`
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				Groups yaml.Node `yaml:"groups"`
			} `yaml:"spec"`
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		require.NoError(t, dec.Decode(&obj), name)
		require.Equal(t, "monitoring.coreos.com/v1", obj.APIVersion)
		require.Equal(t, "PrometheusRule", obj.Kind)
		require.Equal(t, strings.TrimSuffix(name, ".yml")+"-slos", obj.Metadata.Name)
		require.Equal(t, map[string]string{"release": "prom", "team": "sre"}, obj.Metadata.Labels)

		// spec.groups is exactly the plain rule file's groups.
		groups, err := yaml.Marshal(map[string]*yaml.Node{"groups": &obj.Spec.Groups})
		require.NoError(t, err)
		got := parseRules(t, name, groups)
		plain, err := os.ReadFile(filepath.Join("rules", name))
		require.NoError(t, err)
		want := parseRules(t, name, plain)
		require.NotEmpty(t, got.Groups)
		require.Equal(t, len(want.Groups), len(got.Groups), name)
		for i := range want.Groups {
			require.Equal(t, want.Groups[i].Name, got.Groups[i].Name)
			require.Equal(t, len(want.Groups[i].Rules), len(got.Groups[i].Rules))
			for j := range want.Groups[i].Rules {
				w, g := want.Groups[i].Rules[j], got.Groups[i].Rules[j]
				require.Equal(t, w.Record+w.Alert, g.Record+g.Alert)
				require.Equal(t, w.Expr, g.Expr)
				require.Equal(t, w.Labels, g.Labels)
				require.Equal(t, w.Annotations, g.Annotations)
				require.Equal(t, w.For, g.For)
			}
		}
	}
}

func TestGenerateInhibitRules(t *testing.T) {
	inRepo(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "inhibit.yml")
	code, _, stderr := srectl(t, "generate", "-q", "-i", "examples/slos", "-o", filepath.Join(dir, "rules"), "--inhibit-rules", file)
	require.Equal(t, 0, code, stderr)
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(data), rulegen.Header))

	// It merges into an alertmanager.yml that Alertmanager's parser accepts.
	cfg, err := amconfig.Load("route:\n  receiver: default\nreceivers:\n  - name: default\n" + string(data))
	require.NoError(t, err)
	require.Len(t, cfg.InhibitRules, 1)
	r := cfg.InhibitRules[0]
	require.Equal(t, `{burn_tier=~".+",severity="page"}`, amlabels.Matchers(r.SourceMatchers).String())
	require.Equal(t, `{burn_tier=~".+",severity!="page"}`, amlabels.Matchers(r.TargetMatchers).String())
	require.Equal(t, []string{"service", "slo", "customer"}, r.Equal, "checkout SLOs are grouped by customer")

	// To standard output, after the rules when they go there too.
	code, stdout, stderr := srectl(t, "generate", "-q", "-i", "examples/slos/api.yml", "-o", filepath.Join(dir, "rules"), "--inhibit-rules", "-")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, rulegen.Header+"inhibit_rules:\n  - source_matchers:\n      - severity=\"page\"\n      - burn_tier=~\".+\"\n    target_matchers:\n      - severity!=\"page\"\n      - burn_tier=~\".+\"\n    equal:\n      - service\n      - slo\n", stdout)
	code, stdout, stderr = srectl(t, "generate", "-q", "-i", "examples/slos/api.yml", "--inhibit-rules", "-")
	require.Equal(t, 0, code, stderr)
	docs := strings.Split(stdout, "---\n")
	require.Len(t, docs, 2)
	parseRules(t, "api.yml", []byte(docs[0]))
	require.Contains(t, docs[1], "inhibit_rules:")
}

// The cost and cardinality table goes to standard error, one row per SLO.
func TestGenerateEstimate(t *testing.T) {
	inRepo(t)
	code, _, stderr := srectl(t, "generate", "-i", "examples/slos", "-o", t.TempDir())
	require.Equal(t, 0, code, stderr)
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	require.Regexp(t, `^SERVICE +SLO +RECORDING +ALERTING +SERIES/GROUP +SAMPLES READ/EVAL/GROUP +OUTAGE PAGES IN$`, lines[0])

	specs, err := slo.LoadDir("examples/slos")
	require.NoError(t, err)
	var rows []string
	var tot rulegen.Estimate
	for _, s := range specs {
		for i := range s.SLOs {
			e := rulegen.EstimateSLO(&s.SLOs[i])
			tot.Add(e)
			d := "-"
			if s.SLOs[i].DetectionTime() > 0 {
				d = model.Duration(s.SLOs[i].DetectionTime()).String()
			}
			rows = append(rows, fmt.Sprintf("%s %s %d %d %d %d %s", s.Service, s.SLOs[i].Name, e.RecordingRules, e.AlertingRules, e.SeriesPerGroup, e.SamplesPerEval, d))
		}
	}
	rows = append(rows, fmt.Sprintf("total %d %d %d %d", tot.RecordingRules, tot.AlertingRules, tot.SeriesPerGroup, tot.SamplesPerEval))
	var got []string
	for _, l := range lines[1:] {
		got = append(got, strings.Join(strings.Fields(l), " "))
	}
	require.Equal(t, rows, got)
	// The workbook SLO, counted by hand: rates (2), ratios and burn rates over
	// 7 windows (5m 30m 1h 2h 6h 1d 3d), the period ratio, budget remaining,
	// objective, budget, period, info; 4 burn alerts and the budget alert;
	// samples read at 1m: 2 x (1 + 30 + 60 + 120 + 360 + 1440 + 4320) for the
	// windows (the 5m ratio reads the rates themselves), 2 x 43200 for the
	// period, and the minEvents gates over the long windows (60 + 360 + 1440
	// + 4320). A total outage pages after 2m: 1m for the 1h ratio to pass
	// 14.4 x 0.01%, and for: 1m.
	require.Equal(t, "api availability 22 5 22 105242 2m", got[0])
	// Every example SLO with a page tier pages a total outage within 5m;
	// api/data-integrity has none.
	for _, r := range got[:len(got)-1] {
		f := strings.Fields(r)
		if f[0]+"/"+f[1] == "api/data-integrity" {
			require.Equal(t, "-", f[len(f)-1])
			continue
		}
		d, err := model.ParseDuration(f[len(f)-1])
		require.NoError(t, err, r)
		require.LessOrEqual(t, time.Duration(d), 5*time.Minute, r)
	}
}

// An invalid spec: file:line:column in stderr, exit 1, nothing written.
func TestGenerateInvalidSpec(t *testing.T) {
	dir := t.TempDir()
	specs := filepath.Join(dir, "slos")
	require.NoError(t, os.MkdirAll(specs, 0o755))
	good, err := os.ReadFile(filepath.Join("..", "..", "examples", "slos", "api.yml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(specs, "api.yml"), good, 0o644))
	bad := "apiVersion: sre.rootuip.io/v1\nkind: ServiceLevelObjectives\nservice: web\nslos:\n  - name: availability\n    objective: 0.999\n    sli:\n      bool:\n        selector: up{job=\"web\"}\n"
	require.NoError(t, os.WriteFile(filepath.Join(specs, "web.yml"), []byte(bad), 0o644))

	out := filepath.Join(dir, "out")
	tests := filepath.Join(dir, "tests")
	inhibit := filepath.Join(dir, "inhibit.yml")
	for _, args := range [][]string{
		{"generate", "-i", specs, "-o", out, "--tests", tests, "--inhibit-rules", inhibit},
		{"generate", "-i", specs},
		{"generate", "-i", specs, "--prometheus-rule", "-o", out},
	} {
		code, stdout, stderr := srectl(t, args...)
		require.Equal(t, 1, code, "%v", args)
		require.Equal(t, "srectl: "+filepath.Join(specs, "web.yml")+":6:16: slos[0].objective: objective 0.999 looks like a fraction; write it as a percentage (99.9)\n", stderr)
		require.Empty(t, stdout)
		require.Equal(t, []string{"slos/api.yml", "slos/web.yml"}, listDir(t, dir), "nothing written")
	}

	// Every problem of every file is reported, each with its position.
	bad2 := filepath.Join(dir, "bad2.yml")
	require.NoError(t, os.WriteFile(bad2, []byte("apiVersion: sre.rootuip.io/v1\nkind: ServiceLevelObjectives\nservice: db\nslos:\n  - name: x\n    objective: 100\n    period: 1h\n    sli:\n      bool:\n        selector: up\n"), 0o644))
	code, _, stderr := srectl(t, "generate", "-i", specs, "-i", bad2, "-o", out)
	require.Equal(t, 1, code)
	require.Equal(t, "srectl: "+filepath.Join(specs, "web.yml")+":6:16: slos[0].objective: objective 0.999 looks like a fraction; write it as a percentage (99.9)\n"+
		bad2+":6:16: slos[0].objective: objective 100 leaves no error budget; it must be below 100\n"+
		bad2+":7:13: slos[0].period: period 1h must be between 1d and 366d\n", stderr)
	require.NoFileExists(t, out)
}

func TestGenerateUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"generate"}, 2, "srectl: required flag(s) '--input' (or --scaling) not provided\n"},
		{[]string{"generate", "-i", filepath.Join("..", "..", "examples", "slos"), "--tests", filepath.Join(dir, "tests")}, 2,
			"srectl: --tests needs -o DIR: the suites reference the rule files\n"},
		{[]string{"generate", "-i", filepath.Join(dir, "missing.yml"), "-o", dir}, 1,
			"srectl: load SLO spec: open " + filepath.Join(dir, "missing.yml") + ": no such file or directory\n"},
	} {
		code, stdout, stderr := srectl(t, c.args...)
		require.Equal(t, c.code, code, "%v: %s", c.args, stderr)
		require.Equal(t, c.stderr, stderr, "%v", c.args)
		require.Empty(t, stdout)
		require.Empty(t, listDir(t, dir), "nothing written")
	}
}

// Sloth and OpenSLO files generate rules like native specs.
func TestGenerateImported(t *testing.T) {
	sloth := filepath.Join("..", "slo", "sloth", "testdata")
	openslo := filepath.Join("..", "slo", "openslo", "testdata")
	code, stdout, stderr := srectl(t, "generate", "-q", "-i", filepath.Join(sloth, "sloth.yml"), "-i", filepath.Join(openslo, "openslo.yml"))
	require.Equal(t, 0, code, stderr)
	docs := strings.Split(stdout, "---\n")
	require.Len(t, docs, 2)
	require.Contains(t, docs[0], "# Source: "+filepath.Join(sloth, "sloth.yml")+"\n")
	require.Contains(t, docs[1], "# Source: "+filepath.Join(openslo, "openslo.yml")+"\n")
	g := parseRules(t, "myservice", []byte(docs[0]))
	require.Equal(t, "slo:myservice:requests-availability", g.Groups[0].Name)
	// As Sloth's, the page alerts are named after alerting.name and keep
	// page_alert's severity label, with a warning naming file, field and SLO.
	var pages int
	for _, r := range g.Groups[0].Rules {
		if r.Labels["sloth_severity"] == "page" {
			pages++
			require.Equal(t, "MyServiceHighErrorRate", r.Alert)
			require.Equal(t, "critical", r.Labels["severity"])
		}
	}
	require.Equal(t, 2, pages, "page_fast and page_slow")
	require.Contains(t, stderr, "warning: "+filepath.Join(sloth, "sloth.yml")+`:21:21: slos[0].alerting.page_alert.labels.severity: SLO myservice/requests-availability: the page alerts keep severity "critical"`)
	g = parseRules(t, "web", []byte(docs[1]))
	require.Equal(t, "slo:web:web-availability", g.Groups[0].Name)
}

// --argo-rollouts and --flagger write the templates golden-tested and
// validated against the published CRDs in pkg/analysis
// (TestGenerateEngineTemplates): the same bytes, one file per service.
func TestGenerateRolloutEngines(t *testing.T) {
	inRepo(t)
	dir := t.TempDir()
	argo, flagger := filepath.Join(dir, "argo"), filepath.Join(dir, "flagger")
	code, _, stderr := srectl(t, "generate", "-q", "-i", "examples/slos", "-o", filepath.Join(dir, "rules"),
		"--argo-rollouts", argo, "--flagger", flagger, "--flagger.namespace", "flagger-system")
	require.Equal(t, 0, code, stderr)
	for sub, out := range map[string]string{"argo-rollouts": argo, "flagger": flagger} {
		want := listDir(t, filepath.Join("pkg", "analysis", "testdata", "golden", sub))
		require.Equal(t, want, listDir(t, out))
		for _, f := range want {
			golden, err := os.ReadFile(filepath.Join("pkg", "analysis", "testdata", "golden", sub, f))
			require.NoError(t, err)
			got, err := os.ReadFile(filepath.Join(out, f))
			require.NoError(t, err)
			require.Equal(t, string(golden), string(got), "%s/%s", sub, f)
		}
	}
	// The Prometheus address is a flag; one directory cannot take both.
	code, _, stderr = srectl(t, "generate", "-q", "-i", "examples/slos/api.yml", "-o", filepath.Join(dir, "rules"),
		"--argo-rollouts", argo, "--rollouts.prometheus-address", "http://prom.example:9090")
	require.Equal(t, 0, code, stderr)
	data, err := os.ReadFile(filepath.Join(argo, "api.yml"))
	require.NoError(t, err)
	require.Contains(t, string(data), "value: http://prom.example:9090")
	require.NoFileExists(t, filepath.Join(argo, "checkout.yml"), "stale generated files are removed")
	code, _, stderr = srectl(t, "generate", "-q", "-i", "examples/slos/api.yml", "--argo-rollouts", argo, "--flagger", argo)
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "--argo-rollouts and --flagger name the same directory")
}

// Two output options naming the same directory (however spelled) are
// refused before anything is read or written: --tests would remove the
// rule files as stale suites, --argo-rollouts and --flagger overwrite them.
// So is an inhibit rules file in a missing directory (it was written last,
// after the rules).
func TestGenerateOutputConflicts(t *testing.T) {
	inRepo(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	code, _, stderr := srectl(t, "generate", "-q", "-i", "examples/slos/api.yml", "-o", out)
	require.Equal(t, 0, code, stderr)
	before := listDir(t, dir)
	rules, err := os.ReadFile(filepath.Join(out, "api.yml"))
	require.NoError(t, err)
	for _, c := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"--tests", out}, "srectl: -o and --tests name the same directory " + out},
		{[]string{"--tests", out + "/../out/"}, "srectl: -o and --tests name the same directory " + out + "/../out/"},
		{[]string{"--argo-rollouts", out}, "srectl: -o and --argo-rollouts name the same directory " + out},
		{[]string{"--flagger", out}, "srectl: -o and --flagger name the same directory " + out},
		{[]string{"--tests", filepath.Join(dir, "t"), "--flagger", filepath.Join(dir, "t")}, "srectl: --tests and --flagger name the same directory " + filepath.Join(dir, "t")},
		{[]string{"--tests", filepath.Join(out, "api.yml")}, "srectl: --tests " + filepath.Join(out, "api.yml") + ": not a directory"},
		// The suites would name PrometheusRule objects as rule files,
		// which promtool test rules cannot read.
		{[]string{"--tests", filepath.Join(dir, "t"), "--prometheus-rule"}, "srectl: --tests needs plain rule files, not --prometheus-rule"},
		{[]string{"--tests", filepath.Join(dir, "t"), "--inhibit-rules", filepath.Join(dir, "missing", "inhibit.yml")},
			"srectl: --inhibit-rules " + filepath.Join(dir, "missing", "inhibit.yml") + ": directory " + filepath.Join(dir, "missing") + " does not exist"},
	} {
		args := append([]string{"generate", "-q", "-i", "examples/slos", "-o", out}, c.args...)
		code, stdout, stderr := srectl(t, args...)
		require.Equal(t, 2, code, "%v: %s", c.args, stderr)
		require.True(t, strings.HasPrefix(stderr, c.stderr), "%v: %s", c.args, stderr)
		require.Empty(t, stdout)
		require.Equal(t, before, listDir(t, dir), "%v: nothing written", c.args)
		got, err := os.ReadFile(filepath.Join(out, "api.yml"))
		require.NoError(t, err)
		require.Equal(t, string(rules), string(got))
	}
}

// -o names a directory, where sloth generate -o names a file: -o rules.yml
// made a directory rules.yml holding api.yml, which promtool check rules
// rules.yml then refused ("is a directory"). A new output directory named
// like a file is refused before anything is written; an existing directory
// of that name is still used.
func TestGenerateOutputNamedLikeAFile(t *testing.T) {
	inRepo(t)
	dir := t.TempDir()
	for _, c := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"-o", filepath.Join(dir, "rules.yml")}, "srectl: -o " + filepath.Join(dir, "rules.yml") +
			": -o names a directory, which srectl creates to write a file per spec into, and this one would be named like a file: name a directory (-o " + filepath.Join(dir, "rules") + ")\n"},
		{[]string{"-o", filepath.Join(dir, "rules"), "--tests", filepath.Join(dir, "tests.yaml")}, "srectl: --tests " + filepath.Join(dir, "tests.yaml") +
			": --tests names a directory, which srectl creates to write a file per spec into, and this one would be named like a file: name a directory (--tests " + filepath.Join(dir, "tests") + ")\n"},
	} {
		code, stdout, stderr := srectl(t, append([]string{"generate", "-q", "-i", "examples/slos/api.yml"}, c.args...)...)
		require.Equal(t, 2, code, "%v: %s", c.args, stderr)
		require.Equal(t, c.stderr, stderr, c.args)
		require.Empty(t, stdout)
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Empty(t, entries, "%v: nothing written, no directory made", c.args)
	}
	existing := filepath.Join(dir, "rules.yml")
	require.NoError(t, os.Mkdir(existing, 0o755))
	code, _, stderr := srectl(t, "generate", "-q", "-i", "examples/slos/api.yml", "-o", existing)
	require.Equal(t, 0, code, stderr)
	require.FileExists(t, filepath.Join(existing, "api.yml"))
}

// Test suites are named <service>-<slo>.yml: service a-b with SLO c and
// service a with SLO b-c would share one file, and one suite was lost.
func TestGenerateSuiteNameCollision(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "slos.yml")
	doc := "apiVersion: sre.rootuip.io/v1\nkind: ServiceLevelObjectives\nservice: %s\nslos:\n  - name: %s\n    objective: 99.9\n    sli: {bool: {selector: up}}\n"
	require.NoError(t, os.WriteFile(spec, []byte(fmt.Sprintf(doc, "a-b", "c")+"---\n"+fmt.Sprintf(doc, "a", "b-c")), 0o644))
	out, tests := filepath.Join(dir, "out"), filepath.Join(dir, "tests")
	code, stdout, stderr := srectl(t, "generate", "-q", "-i", spec, "-o", out, "--tests", tests)
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Equal(t, "srectl: tests: the test suites of SLOs a-b/c and a/b-c would both be "+filepath.Join(tests, "a-b-c.yml")+": rename one of them\n", stderr)
	require.Equal(t, []string{"slos.yml"}, listDir(t, dir), "nothing written")
}

// An input directory without spec files is an error, as an empty file is
// (and as Sloth's "0 slo specs have been discovered"): generating from it
// removed every rule file. Extensions match in any case, as Sloth's.
func TestGenerateNoSpecs(t *testing.T) {
	inRepo(t)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	require.NoError(t, os.MkdirAll(in, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(in, "README.md"), []byte("specs go here\n"), 0o644))
	code, _, stderr := srectl(t, "generate", "-q", "-i", "examples/slos/api.yml", "-o", out)
	require.Equal(t, 0, code, stderr)
	want := "srectl: " + in + ": no SLO spec found (no .yml or .yaml file in the directory)\n"
	code, _, stderr = srectl(t, "generate", "-q", "-i", in, "-o", out)
	require.Equal(t, 1, code)
	require.Equal(t, want, stderr)
	require.Equal(t, []string{"api.yml"}, listDir(t, out), "the rules are kept")
	code, stdout, stderr := srectl(t, "validate", in)
	require.Equal(t, 1, code)
	require.Equal(t, want, stderr)
	require.Empty(t, stdout)

	api, err := os.ReadFile("examples/slos/api.yml")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(in, "API.YML"), api, 0o644))
	code, stdout, stderr = srectl(t, "validate", in)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "in 1 spec are valid")
}

// Services or SLOs whose file names differ only in case (API.yml, api.yml)
// would be one file on case-insensitive file systems (macOS, Windows): one
// service's rules or one SLO's suite silently replaced the other.
func TestGenerateCaseCollision(t *testing.T) {
	dir := t.TempDir()
	doc := "apiVersion: sre.rootuip.io/v1\nkind: ServiceLevelObjectives\nservice: %s\nslos:\n  - name: %s\n    objective: 99.9\n    sli: {bool: {selector: up}}\n"
	out, tests := filepath.Join(dir, "out"), filepath.Join(dir, "tests")
	for _, c := range []struct {
		docs, want string
	}{
		{fmt.Sprintf(doc, "API", "a") + "---\n" + fmt.Sprintf(doc, "api", "b"),
			"srectl: generate: the rule files of services \"API\" and \"api\" would be API.yml and api.yml, one file on case-insensitive file systems (macOS, Windows): rename one\n"},
		{fmt.Sprintf(doc, "api", "Latency") + "  - name: latency\n    objective: 99\n    sli: {bool: {selector: up}}\n",
			"srectl: tests: the test suites of SLOs api/Latency and api/latency would both be " + filepath.Join(tests, "api-latency.yml") + ": rename one of them\n"},
	} {
		spec := filepath.Join(dir, "slos.yml")
		require.NoError(t, os.WriteFile(spec, []byte(c.docs), 0o644))
		code, stdout, stderr := srectl(t, "generate", "-q", "-i", spec, "-o", out, "--tests", tests)
		require.Equal(t, 1, code, stderr)
		require.Empty(t, stdout)
		require.Equal(t, c.want, stderr)
		require.NoDirExists(t, out, "nothing written")
	}
	// To standard output there is no file to share.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "slos.yml"), []byte(fmt.Sprintf(doc, "API", "a")+"---\n"+fmt.Sprintf(doc, "api", "b")), 0o644))
	code, stdout, stderr := srectl(t, "generate", "-q", "-i", filepath.Join(dir, "slos.yml"), "-o", "-")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "slo:API:a")
	require.Contains(t, stdout, "slo:api:b")
}

// Services whose Kubernetes names are the same (my_service, my-service)
// are refused before anything is written when generating Kubernetes
// objects (PrometheusRule, Argo Rollouts and Flagger templates); plain
// rule files, named as the service is, are fine.
func TestGenerateKubernetesNameCollision(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "slos.yml")
	doc := "apiVersion: sre.rootuip.io/v1\nkind: ServiceLevelObjectives\nservice: %s\nslos:\n  - name: a\n    objective: 99.9\n    sli: {bool: {selector: up}}\n"
	require.NoError(t, os.WriteFile(spec, []byte(fmt.Sprintf(doc, "my_service")+"---\n"+fmt.Sprintf(doc, "my-service")), 0o644))
	out := filepath.Join(dir, "out")
	for _, c := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"--prometheus-rule"}, `srectl: generate: services "my-service" and "my_service" would both be the PrometheusRule "my-service-slos"`},
		{[]string{"--argo-rollouts", filepath.Join(dir, "argo")}, `srectl: argo rollouts templates: service "my_service" and service "my-service" would both be the AnalysisTemplate "my-service-slo-burn-rate"`},
		{[]string{"--flagger", filepath.Join(dir, "flagger")}, `srectl: flagger templates: SLO my_service/a and SLO my-service/a would both be the MetricTemplate "my-service-a-burn-rate"`},
	} {
		code, _, stderr := srectl(t, append([]string{"generate", "-q", "-i", spec, "-o", out}, c.args...)...)
		require.Equal(t, 1, code, "%v: %s", c.args, stderr)
		require.True(t, strings.HasPrefix(stderr, c.stderr), "%v: %s", c.args, stderr)
		require.Equal(t, []string{"slos.yml"}, listDir(t, dir), "nothing written")
	}
	code, _, stderr := srectl(t, "generate", "-q", "-i", spec, "-o", out)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, []string{"my-service.yml", "my_service.yml"}, listDir(t, out))
}
